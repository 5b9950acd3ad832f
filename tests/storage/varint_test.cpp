// The variable-length integers of records and index entries
// (storage/src/bytes.hpp): what get_varint reads is what put_varint wrote,
// and for any bytes (longer forms of small values, cut short, over 64 bits)
// it reads what the plain byte-at-a-time reading of LEB128 reads.
#define BOOST_TEST_MODULE varint
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <random>

#include "bytes.hpp"

namespace {

/// LEB128 a byte at a time, at most 10 bytes and 64 bits: the reference.
const char* reference(const char* in, const char* end, std::uint64_t& v) {
  std::uint64_t out = 0;
  for (unsigned shift = 0; in < end && shift < 64; shift += 7) {
    const auto b = static_cast<std::uint8_t>(*in++);
    if (shift == 63 && b > 1) return nullptr;
    out |= std::uint64_t{b & 0x7Fu} << shift;
    if (b < 0x80) {
      v = out;
      return in;
    }
  }
  return nullptr;
}

/// get_varint and the reference agree on `bytes[0, size)`.
bool agree(const char* bytes, std::size_t size) {
  std::uint64_t got = 0, want = 0;
  const char* g = varve::bytes::get_varint(bytes, bytes + size, got);
  const char* w = reference(bytes, bytes + size, want);
  return g == w && (!g || got == want);
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_value_reads_back_as_written_and_no_shorter_read_succeeds) {
  std::mt19937_64 rng(7);
  std::vector<std::uint64_t> values{
      0,     1,     127,     128,     255,
      16383, 16384, 2097151, 2097152, std::numeric_limits<std::uint64_t>::max()};
  for (unsigned bits = 1; bits <= 64; ++bits)
    for (int i = 0; i < 200; ++i)
      values.push_back(bits == 64 ? rng() : rng() & ((std::uint64_t{1} << bits) - 1));
  for (std::uint64_t x : values) {
    std::array<char, 16> buf{};
    char* end = varve::bytes::put_varint(buf.data(), x);
    const auto size = static_cast<std::size_t>(end - buf.data());
    BOOST_TEST_CONTEXT(x) {
      BOOST_TEST(size == varve::bytes::varint_size(x));
      std::uint64_t back = 0;
      BOOST_TEST(varve::bytes::get_varint(buf.data(), end, back) == end);
      BOOST_TEST(back == x);
      BOOST_TEST(varve::bytes::get_varint(buf.data(), buf.data() + buf.size(), back) == end);
      BOOST_TEST(back == x);
      for (std::size_t cut = 0; cut < size; ++cut)
        BOOST_TEST(!varve::bytes::get_varint(buf.data(), buf.data() + cut, back));
    }
  }
}

BOOST_AUTO_TEST_CASE(any_three_bytes_read_as_the_plain_reading_reads_them) {
  // Every first three bytes, with 1, 2, 3 and 4 bytes available: longer
  // forms of small values (0x80 0x00) included, as the plain reading takes them.
  std::size_t disagreements = 0;
  std::array<char, 4> buf{};
  for (std::uint32_t x = 0; x < (1u << 24); ++x) {
    buf[0] = static_cast<char>(x);
    buf[1] = static_cast<char>(x >> 8);
    buf[2] = static_cast<char>(x >> 16);
    buf[3] = static_cast<char>(x & 0x7F);
    for (std::size_t size = 1; size <= 4; ++size)
      if (!agree(buf.data(), size)) ++disagreements;
  }
  BOOST_TEST(disagreements == 0u);
}

BOOST_AUTO_TEST_CASE(long_and_overlong_bytes_read_as_the_plain_reading_reads_them) {
  std::mt19937_64 rng(11);
  std::array<char, 12> buf{};
  std::size_t disagreements = 0;
  for (int i = 0; i < 200000; ++i) {
    // Continuation bits mostly set, so that forms up to and past 10 bytes come up.
    for (auto& c : buf)
      c = static_cast<char>((rng() & 0xFF) | (rng() % 8 ? 0x80 : 0));
    for (std::size_t size = 0; size <= buf.size(); ++size)
      if (!agree(buf.data(), size)) ++disagreements;
  }
  BOOST_TEST(disagreements == 0u);
}
