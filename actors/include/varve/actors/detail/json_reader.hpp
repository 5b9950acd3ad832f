// The fast way JSON events are read back: simdjson's On Demand parser, field
// by field into a VARVE_JSON type, without building nlohmann's document.
// Part of varve/actors/codec.hpp.
//
// It reads a type declared with VARVE_JSON whose fields are all of these:
// bool, integers, floating point, std::string, std::vector of them,
// std::map<std::string, of them>, and VARVE_JSON types. For those types it
// is the reader: bytes that are not such an object (another JSON type in a
// field, a number that does not fit its field, not an object, bytes after
// the object, malformed JSON) do not decode. As with nlohmann, a missing
// field keeps its value in Type{}, fields the type does not have are
// skipped (their values are not checked), and of two equal keys the last
// counts. Other types are read by nlohmann (json_format).
//
// Thread-safe: each thread has its own parser and buffer.
#pragma once

#include <simdjson.h>

#include <concepts>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

namespace varve::detail {

/// One field of a VARVE_JSON type: its name in JSON and its member.
template <class T, class M>
struct json_field {
  std::string_view name;
  M T::*member;
};

/// The field list VARVE_JSON makes (the leading int lets the macro put a
/// comma before each field).
template <class... F>
std::tuple<F...> json_field_list(int, F... fields) {
  return {fields...};
}

/// Whether T was declared with VARVE_JSON (it has a field list).
template <class T>
concept json_fields_declared = requires(const T* p) {
  varve_json_fields(p);
};

template <class T>
struct fast_json;  // whether the reader reads T, below

template <class T>
constexpr bool fast_json_v = fast_json<std::remove_cv_t<T>>::value;

template <class T>
struct fast_json
    : std::bool_constant<std::is_same_v<T, bool> || std::is_integral_v<T> ||
                         std::is_floating_point_v<T> || std::is_same_v<T, std::string>> {};
template <class U, class A>
struct fast_json<std::vector<U, A>> : std::bool_constant<fast_json_v<U>> {};
template <class U, class C, class A>
struct fast_json<std::map<std::string, U, C, A>> : std::bool_constant<fast_json_v<U>> {};

template <class T>
constexpr bool all_fields_fast() {
  if constexpr (json_fields_declared<T>) {
    using fields = decltype(varve_json_fields(static_cast<const T*>(nullptr)));
    return []<class... F>(std::tuple<F...>*) {
      return (fast_json_v<
                  std::remove_cvref_t<decltype(std::declval<T&>().*(std::declval<F>().member))>> &&
              ...);
    }(static_cast<fields*>(nullptr));
  } else {
    return false;
  }
}

/// The VARVE_JSON types whose fields the reader reads, recursively. (A
/// type that contains itself through a vector or map is read by nlohmann.)
template <class T>
requires json_fields_declared<T>
struct fast_json<T> : std::bool_constant<all_fields_fast<T>()> {
};

namespace json_read {

template <class T>
bool value(simdjson::ondemand::value v, T& out);

/// Sets each field of `out` that `seen` (a bit per field, in declaration
/// order) does not have to its value in T{}.
template <class T, class Fields>
void reset_unseen(T& out, const Fields& fields, std::uint64_t seen) {
  static const T defaults{};  // read only once built
  std::size_t i = 0;
  std::apply(
      [&](const auto&... f) {
        ((((seen >> i) & 1u) == 0 ? void(out.*(f.member) = defaults.*(f.member)) : void(), ++i),
         ...);
      },
      fields);
}

template <class T>
bool object(simdjson::ondemand::object obj, T& out) {
  const auto fields = varve_json_fields(static_cast<const T*>(nullptr));
  constexpr std::size_t count = std::tuple_size_v<decltype(fields)>;
  static_assert(count <= 64);
  std::uint64_t seen = 0;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    bool ok = true;
    std::apply(
        [&](const auto&... f) {
          // The first field of that name (VARVE_JSON names each once).
          std::size_t i = 0;
          (void)((key == f.name ? (ok = value(field.value(), out.*(f.member)),
                                   seen |= std::uint64_t{1} << i, true)
                                : (++i, false)) ||
                 ...);
        },
        fields);
    if (!ok) return false;
  }
  // `out` may hold an earlier value: what the object does not have reads as in T{}.
  if constexpr (count > 0) {
    constexpr std::uint64_t all = count == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << count) - 1;
    if (seen != all) reset_unseen(out, fields, seen);
  }
  return true;
}

template <class T>
bool value(simdjson::ondemand::value v, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    return !v.get_bool().get(out);
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    std::int64_t x = 0;
    if (v.get_int64().get(x)) return false;
    if (x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max()) return false;
    out = static_cast<T>(x);
    return true;
  } else if constexpr (std::is_integral_v<T>) {
    std::uint64_t x = 0;
    if (v.get_uint64().get(x)) return false;
    if (x > std::numeric_limits<T>::max()) return false;
    out = static_cast<T>(x);
    return true;
  } else if constexpr (std::is_floating_point_v<T>) {
    double x = 0;
    if (v.get_double().get(x)) return false;
    out = static_cast<T>(x);
    return true;
  } else if constexpr (std::is_same_v<T, std::string>) {
    std::string_view s;
    if (v.get_string().get(s)) return false;
    out.assign(s);
    return true;
  } else if constexpr (json_fields_declared<T>) {
    simdjson::ondemand::object obj;
    if (v.get_object().get(obj)) return false;
    return object(obj, out);
  } else {
    if constexpr (requires { typename T::mapped_type; }) {
      simdjson::ondemand::object obj;
      if (v.get_object().get(obj)) return false;
      out.clear();
      for (auto field : obj) {
        std::string_view key;
        if (field.unescaped_key().get(key)) return false;
        typename T::mapped_type x{};
        if (!value(field.value(), x)) return false;
        out.insert_or_assign(std::string(key), std::move(x));
      }
      return true;
    } else {
      simdjson::ondemand::array arr;
      if (v.get_array().get(arr)) return false;
      out.clear();
      for (auto item : arr) {
        simdjson::ondemand::value iv;
        if (item.get(iv)) return false;
        typename T::value_type x{};
        if (!value(iv, x)) return false;
        out.push_back(std::move(x));
      }
      return true;
    }
  }
}

}  // namespace json_read

/// `out` read from `bytes`, a JSON object; false when the bytes are not
/// what the reader expects (see the top). `out` may hold an earlier value:
/// every field is overwritten (a field the object does not have with its
/// value in T{}), and strings, vectors and maps keep their storage. On
/// false, `out` holds a valid value made of some fields read and some old.
template <class T>
requires fast_json_v<T> && json_fields_declared<T>
bool read_json_fast(std::string_view bytes, T& out) {
  // simdjson reads up to SIMDJSON_PADDING bytes past the end: the stored
  // bytes (in the map, maybe at its end) are copied into a padded buffer.
  thread_local std::string buffer;
  thread_local simdjson::ondemand::parser parser;
  if (buffer.size() < bytes.size() + simdjson::SIMDJSON_PADDING)
    buffer.resize(bytes.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(buffer.data(), bytes.data(), bytes.size());
  simdjson::ondemand::document doc;
  if (parser.iterate(buffer.data(), bytes.size(), buffer.size()).get(doc)) return false;
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj)) return false;
  if (!json_read::object(obj, out)) return false;
  // At the end of the document: nothing after the object.
  return doc.current_location().error() == simdjson::OUT_OF_BOUNDS;
}

}  // namespace varve::detail
