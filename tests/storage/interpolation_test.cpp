// The search the log's pages and the index entries are read with
// (storage/src/interpolation.hpp): whatever the spread of the keys, it
// finds what std::lower_bound finds, and keys out of order (a damaged page)
// never send it out of its range.
#define BOOST_TEST_MODULE interpolation
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "interpolation.hpp"

using varve::detail::interpolated_lower_bound;

namespace {

/// Keys of `n` in ascending order, spread as `kind` says: 0 evenly
/// (positions of records of one size), 1 gaps growing exponentially, 2
/// long runs of one key, 3 two clusters far apart.
std::vector<std::uint64_t> keys(int kind, std::size_t n, std::mt19937_64& rng) {
  std::vector<std::uint64_t> out;
  std::uint64_t k = rng() % 100;
  for (std::size_t i = 0; i < n; ++i) {
    switch (kind) {
      case 0:
        k += 20 + rng() % 3;
        break;
      case 1:
        k += std::uint64_t{1} << (i * 40 / std::max<std::size_t>(n, 1));
        break;
      case 2:
        k += rng() % 8 == 0 ? rng() % 5 : 0;
        break;
      default:
        k += i == n / 2 ? std::uint64_t{1} << 50 : rng() % 4;
        break;
    }
    out.push_back(k);
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(finds_what_lower_bound_finds_however_the_keys_are_spread) {
  std::mt19937_64 rng(7);
  std::size_t checked = 0;
  for (int kind = 0; kind < 4; ++kind) {
    for (std::size_t n : {0, 1, 2, 3, 5, 17, 200, 4096}) {
      const auto k = keys(kind, n, rng);
      auto key = [&](std::size_t i) { return k[i]; };
      // Every key, the values around each, and values past both ends, in
      // the whole range and in sub-ranges.
      std::vector<std::uint64_t> probes{0, 1, ~std::uint64_t{0}};
      for (std::uint64_t x : k)
        for (std::uint64_t d : {x - 1, x, x + 1})
          probes.push_back(d);
      for (std::size_t lo : {std::size_t{0}, n / 3})
        for (std::size_t hi : {n, n - n / 4}) {
          if (lo > hi) continue;
          for (std::uint64_t x : probes) {
            const auto want = static_cast<std::size_t>(
                std::lower_bound(k.begin() + static_cast<std::ptrdiff_t>(lo),
                                 k.begin() + static_cast<std::ptrdiff_t>(hi), x) -
                k.begin());
            const std::size_t got = interpolated_lower_bound(lo, hi, x, key);
            BOOST_REQUIRE_MESSAGE(got == want, "spread " << kind << ", " << n << " keys, [" << lo
                                                         << ", " << hi << "), " << x << ": " << got
                                                         << ", expected " << want);
            ++checked;
          }
        }
    }
  }
  BOOST_TEST(checked > 100000u);
}

BOOST_AUTO_TEST_CASE(keys_out_of_order_give_an_index_within_the_range) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 2000; ++round) {
    const std::size_t n = 1 + rng() % 300;
    std::vector<std::uint64_t> k(n);
    for (auto& x : k)
      x = rng() % 1000;
    const std::size_t lo = rng() % n, hi = lo + rng() % (n - lo + 1);
    auto key = [&](std::size_t i) {
      BOOST_REQUIRE(i >= lo && i < hi);  // reads only its range
      return k[i];
    };
    const std::size_t got = interpolated_lower_bound(lo, hi, rng() % 1100, key);
    BOOST_REQUIRE(got >= lo && got <= hi);
  }
}
