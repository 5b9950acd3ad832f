// The CAF binary codec: an opt-in event codec that stores each event with
// CAF's binary serializer over its `inspect` overload, the form in which the
// same types travel in messages between processes.
//
//   struct account {
//     ...
//     using codec = varve::binary_codec<event>;
//   };
//
// Each event struct names its stored type with a static member `type_name`
// (as for json_codec, varve/actors/codec.hpp) and has an inspect overload:
//
//   template <class Inspector>
//   typename Inspector::result_type inspect(Inspector& f, deposited& x) {
//     return f(caf::meta::type_name("deposited"), x.amount);
//   }
//
// The stored bytes are CAF's wire format: a field added, removed or
// reordered makes older events unreadable, and other languages cannot read
// them. Prefer the JSON codec for new stores.
#pragma once

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "varve/actors/codec.hpp"

namespace varve {

namespace detail {

/// The CAF binary form of `x` into `out`; false when it does not serialise.
template <class T>
bool caf_save(const T& x, std::string& out) {
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  if (sink(const_cast<T&>(x))) return false;
  out.assign(buf.begin(), buf.end());
  return true;
}

/// The T in `bytes` (all of them); std::nullopt when they do not decode.
template <class T>
std::optional<T> caf_load(std::string_view bytes) {
  T x{};
  caf::binary_deserializer source{nullptr, bytes.data(), bytes.size()};
  if (source(x) || source.remaining() != 0) return std::nullopt;
  return x;
}

struct caf_format {
  static constexpr bool reuses_storage = false;  // see load_into
  template <class T>
  static bool save(const T& x, std::string& out) {
    return caf_save(x, out);
  }
  template <class T>
  static std::optional<T> load(std::string_view bytes) {
    return caf_load<T>(bytes);
  }
  /// load() assigned to `out`: CAF's loaders do not all overwrite what
  /// they load into (an empty std::vector<bool> keeps the bits it had, and
  /// an inspect overload may rely on a fresh object), so each event is
  /// decoded afresh.
  template <class T>
  static bool load_into(std::string_view bytes, T& out) {
    auto x = caf_load<T>(bytes);
    if (!x) return false;
    out = std::move(*x);
    return true;
  }
};

}  // namespace detail

/// Events (a struct, or a std::variant of structs) as CAF binary bytes.
template <class Event>
struct binary_codec : detail::named_codec<Event, detail::caf_format> {};

}  // namespace varve
