// How an aggregate's events become stored bytes and back.
//
// The default codec serialises with CAF's binary serializer over the event
// type's `inspect` overload, so the same event types travel in messages. An
// event type is a struct, or a std::variant of structs; each struct names its
// stored type with a static member:
//
//   struct deposited {
//     static constexpr std::string_view type_name = "deposited";
//     std::int64_t amount = 0;
//   };
//   template <class Inspector>
//   typename Inspector::result_type inspect(Inspector& f, deposited& x) {
//     return f(caf::meta::type_name("deposited"), x.amount);
//   }
//
// An aggregate may supply its own codec type (`using codec = ...;`) with the
// same three static functions.
#pragma once

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace varve {

namespace detail {

template <class T>
struct is_variant : std::false_type {};
template <class... Ts>
struct is_variant<std::variant<Ts...>> : std::true_type {};

template <class T>
bool save(const T& x, std::string& out) {
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  if (sink(const_cast<T&>(x))) return false;
  out.assign(buf.begin(), buf.end());
  return true;
}

template <class T>
std::optional<T> load(std::string_view bytes) {
  T x{};
  caf::binary_deserializer source{nullptr, bytes.data(), bytes.size()};
  if (source(x) || source.remaining() != 0) return std::nullopt;
  return x;
}

template <class Variant, std::size_t I = 0>
std::optional<Variant> load_alternative(std::string_view type, std::string_view bytes) {
  if constexpr (I == std::variant_size_v<Variant>) {
    return std::nullopt;
  } else {
    using alt = std::variant_alternative_t<I, Variant>;
    if (type == alt::type_name) {
      auto x = load<alt>(bytes);
      if (!x) return std::nullopt;
      return Variant{std::move(*x)};
    }
    return load_alternative<Variant, I + 1>(type, bytes);
  }
}

}  // namespace detail

template <class Event>
struct default_codec {
  /// The type stored with the event (readable in the log, used by filters).
  static std::string type_of(const Event& e) {
    if constexpr (detail::is_variant<Event>::value)
      return std::visit([](const auto& x) { return std::string(x.type_name); }, e);
    else
      return std::string(Event::type_name);
  }

  /// The stored bytes; false when the event cannot be serialised.
  static bool encode(const Event& e, std::string& out) {
    if constexpr (detail::is_variant<Event>::value)
      return std::visit([&](const auto& x) { return detail::save(x, out); }, e);
    else
      return detail::save(e, out);
  }

  /// The event of that type from its bytes; std::nullopt on an unknown type
  /// or bytes that do not decode.
  static std::optional<Event> decode(std::string_view type, std::string_view bytes) {
    if constexpr (detail::is_variant<Event>::value) {
      return detail::load_alternative<Event>(type, bytes);
    } else {
      if (type != Event::type_name) return std::nullopt;
      return detail::load<Event>(bytes);
    }
  }
};

}  // namespace varve
