// Fixed-width integer encoding helpers (private to varve::storage).
//
// Record fields are little-endian; keys that must sort numerically across
// several fields (the stream index) are big-endian; integer keys under
// MDB_INTEGERKEY are native-endian, as LMDB requires.
#pragma once

#include <bit>
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

}  // namespace varve::bytes
