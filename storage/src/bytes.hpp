// Fixed-width integer encoding helpers (private to varve::storage).
//
// Record fields are little-endian; keys that must sort numerically across
// several fields (the stream index) are big-endian; integer keys under
// MDB_INTEGERKEY are native-endian, as LMDB requires.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace varve::bytes {

template <class T>
inline T bswap(T v) {
  if constexpr (sizeof(T) == 8)
    return static_cast<T>(__builtin_bswap64(static_cast<std::uint64_t>(v)));
  if constexpr (sizeof(T) == 4)
    return static_cast<T>(__builtin_bswap32(static_cast<std::uint32_t>(v)));
  if constexpr (sizeof(T) == 2)
    return static_cast<T>(__builtin_bswap16(static_cast<std::uint16_t>(v)));
  if constexpr (sizeof(T) == 1) return v;
}

template <class T>
inline void put_le(char* out, T v) {
  if constexpr (std::endian::native == std::endian::big) v = bswap(v);
  std::memcpy(out, &v, sizeof v);
}
template <class T>
inline T get_le(const char* in) {
  T v;
  std::memcpy(&v, in, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = bswap(v);
  return v;
}
template <class T>
inline void put_be(char* out, T v) {
  if constexpr (std::endian::native == std::endian::little) v = bswap(v);
  std::memcpy(out, &v, sizeof v);
}
template <class T>
inline T get_be(const char* in) {
  T v;
  std::memcpy(&v, in, sizeof v);
  if constexpr (std::endian::native == std::endian::little) v = bswap(v);
  return v;
}

/// A native-endian u64 key for an MDB_INTEGERKEY table.
struct u64_key {
  std::uint64_t value;
  explicit u64_key(std::uint64_t v) : value(v) {}
  std::string_view view() const { return {reinterpret_cast<const char*>(&value), sizeof value}; }
};

inline std::uint64_t get_native_u64(std::string_view s) {
  std::uint64_t v;
  std::memcpy(&v, s.data(), sizeof v);
  return v;
}

/// Variable-length integers (LEB128: 7 bits per byte, low bits first, the
/// high bit set on every byte but the last): 1 byte below 128, 10 at most.
inline std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
inline char* put_varint(char* out, std::uint64_t v) {
  while (v >= 0x80) {
    *out++ = static_cast<char>(static_cast<std::uint8_t>(v) | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<char>(v);
  return out;
}
/// Reads a varint at `in`, not past `end`; nullptr when it runs past `end`
/// or over 64 bits, else where it ends.
inline const char* get_varint(const char* in, const char* end, std::uint64_t& v) {
  if (in < end && static_cast<std::uint8_t>(*in) < 0x80) [[likely]] {
    v = static_cast<std::uint8_t>(*in);
    return in + 1;
  }
  if (end - in >= 3) {  // two or three bytes (versions, ids, links): no loop
    const std::uint64_t b0 = static_cast<std::uint8_t>(in[0]) & 0x7Fu;
    const auto b1 = static_cast<std::uint8_t>(in[1]);
    if (b1 < 0x80) {
      v = b0 | std::uint64_t{b1} << 7;
      return in + 2;
    }
    const auto b2 = static_cast<std::uint8_t>(in[2]);
    if (b2 < 0x80) {
      v = b0 | std::uint64_t{b1 & 0x7Fu} << 7 | std::uint64_t{b2} << 14;
      return in + 3;
    }
  }
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
/// Signed values as varints: 0, -1, 1, -2, ... as 0, 1, 2, 3, ...
inline std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
inline std::int64_t unzigzag(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

}  // namespace varve::bytes
