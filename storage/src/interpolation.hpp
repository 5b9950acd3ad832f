// Searching sorted keys that grow about linearly with their index (private
// to varve::storage): the log's positions in a page of its tree (no gaps,
// records mostly of one size), key ids in an index entry (ids are handed
// out in order, a span's keys spread over them). A guess from the first
// and last keys, a gallop from the guess, then a binary search: a few
// probes where a binary search makes log2(n), each probe maybe a cache
// miss.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace varve::detail {

/// The first index i in [lo, hi) whose key(i) >= x; hi when none. Keys in
/// ascending order give the answer std::lower_bound would; keys out of
/// order give some index in [lo, hi].
template <class Key>
std::size_t interpolated_lower_bound(std::size_t lo, std::size_t hi, std::uint64_t x, Key&& key) {
  if (lo >= hi) return hi;
  const std::uint64_t first = key(lo);
  if (first >= x) return lo;
  const std::uint64_t last = key(hi - 1);
  if (last < x) return hi;
  std::size_t a = lo, b = hi - 1;  // key(a) < x <= key(b)
  if (b - a > 1 && last > first) {
    const double share = static_cast<double>(x - first) / static_cast<double>(last - first);
    std::size_t guess = a + 1 + static_cast<std::size_t>(share * static_cast<double>(b - a - 1));
    guess = std::min(guess, b - 1);
    std::size_t step = 1;
    if (key(guess) < x) {
      for (a = guess; a + step < b; step *= 2) {
        if (key(a + step) >= x) {
          b = a + step;
          break;
        }
        a += step;
      }
    } else {
      for (b = guess; b - a > step; step *= 2) {
        if (key(b - step) < x) {
          a = b - step;
          break;
        }
        b -= step;
      }
    }
  }
  while (b - a > 1) {
    const std::size_t mid = a + (b - a) / 2;
    if (key(mid) < x)
      a = mid;
    else
      b = mid;
  }
  return b;
}

}  // namespace varve::detail
