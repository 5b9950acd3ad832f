// How an aggregate's events become stored bytes and back.
//
// The default codec is JSON (nlohmann::json): each event is stored as a JSON
// object, readable with `varvectl read`, from other languages, and across
// added fields. An event type is a struct, or a std::variant of structs;
// each struct names its stored type with a static member and declares its
// JSON form in one line, in its own namespace:
//
//   struct deposited {
//     static constexpr std::string_view type_name = "deposited";  // stored; never change it
//     std::int64_t amount = 0;
//   };
//   VARVE_JSON(deposited, amount)
//
//   struct closed {
//     static constexpr std::string_view type_name = "account_closed";
//   };
//   VARVE_JSON(closed)
//
// VARVE_JSON(Type, field...) (at most 33 fields) stores the fields by name;
// a field missing from a stored object reads as its value in a
// default-constructed Type, so adding a field with a default keeps older
// events readable; fields not in the list are not stored, and stored fields
// the type does not have are ignored. Reading is strict otherwise: a value
// of another JSON type, a number that does not fit its field (1.5 or 2^40
// for an int32), bytes after the object: the event does not decode
// (errc::corruption when an aggregate hydrates), rather than reading as
// something else. Types whose fields are bool, integers, floating point,
// std::string, std::vector and std::map<std::string, ...> of them and
// other VARVE_JSON types are read with simdjson (~75 ns for a 100-byte
// event); others with nlohmann, with nlohmann's conversions. A hand-written `to_json`/`from_json`
// pair (or NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE) works as well. A type without a JSON form, or
// without `type_name`, fails to compile with a static_assert that says so.
//
// Other codecs: `using codec = varve::binary_codec<event>;` in the
// aggregate stores CAF's binary form instead (varve/actors/binary_codec.hpp),
// and any type with the three static functions of json_codec below (type_of,
// encode, decode) is a codec. A fourth, decode_into, lets a hydration reuse
// one event object for all the events it folds.
//
// Commands need neither a codec nor CAF: in one process they travel inside
// messages as they are (varve::runtime, spawn_registry). Only commands sent
// to another process need CAF's inspect overloads and type ids (see
// examples/remote_projection).
#pragma once

#include <nlohmann/json.hpp>

#include <concepts>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <variant>

#include "varve/actors/detail/json_reader.hpp"

namespace varve {

namespace detail {

template <class T>
struct is_variant : std::false_type {};
template <class... Ts>
struct is_variant<std::variant<Ts...>> : std::true_type {};

/// Whether T names its stored type.
template <class T>
concept named_event = requires {
  { T::type_name } -> std::convertible_to<std::string_view>;
};

/// Whether T has a JSON form both ways.
template <class T>
concept json_convertible = requires(nlohmann::json& j, const nlohmann::json& cj, const T& x, T& y) {
  nlohmann::adl_serializer<T>::to_json(j, x);
  nlohmann::adl_serializer<T>::from_json(cj, y);
};

/// Applies `Check` to each alternative of a variant, or to the one type.
template <class Event, template <class> class Check>
struct each_alternative : Check<Event> {};
template <class... Ts, template <class> class Check>
struct each_alternative<std::variant<Ts...>, Check>
    : std::bool_constant<(Check<Ts>::value && ...)> {};

template <class T>
struct is_named : std::bool_constant<named_event<T>> {};

/// Whether the alternatives of a variant store distinct type names (a
/// second alternative with the name of an earlier one would be stored under
/// that name and read back as the earlier one).
template <class Event>
constexpr bool distinct_type_names() {
  if constexpr (is_variant<Event>::value) {
    return []<class... Ts>(std::type_identity<std::variant<Ts...>>) {
      constexpr std::string_view names[] = {std::string_view(Ts::type_name)...};
      for (std::size_t i = 0; i < sizeof...(Ts); ++i)
        for (std::size_t j = i + 1; j < sizeof...(Ts); ++j)
          if (names[i] == names[j]) return false;
      return true;
    }(std::type_identity<Event>{});
  } else {
    return true;
  }
}
template <class T>
struct is_json : std::bool_constant<json_convertible<T>> {};

/// JSON as a storage format.
struct json_format {
  /// load_into() keeps the storage of what it loads into (the fast reader).
  static constexpr bool reuses_storage = true;
  template <class T>
  static bool save(const T& x, std::string& out) {
    try {
      out = nlohmann::json(x).dump();
      return true;
    } catch (const nlohmann::json::exception&) {  // e.g. a string that is not UTF-8
      return false;
    }
  }
  template <class T>
  static std::optional<T> load(std::string_view bytes) {
    if constexpr (json_fields_declared<T> && fast_json_v<T>) {
      T out{};
      if (!read_json_fast(bytes, out)) return std::nullopt;
      return out;
    }
    auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    try {
      return j.template get<T>();
    } catch (const nlohmann::json::exception&) {  // another shape
      return std::nullopt;
    }
  }
  /// load() into `out`, which may hold an earlier value: the fast reader
  /// reuses its storage; nlohmann's path assigns a new value.
  template <class T>
  static bool load_into(std::string_view bytes, T& out) {
    if constexpr (json_fields_declared<T> && fast_json_v<T>) {
      return read_json_fast(bytes, out);
    } else {
      auto x = load<T>(bytes);
      if (!x) return false;
      out = std::move(*x);
      return true;
    }
  }
};

/// A codec over a storage format: the stored type is the event's
/// `type_name`, the bytes are Format's.
template <class Event, class Format>
struct named_codec {
  static_assert(each_alternative<Event, is_named>::value,
                "varve: every event type needs `static constexpr std::string_view type_name = "
                "\"...\";`, the name stored with the event");
  static_assert(!each_alternative<Event, is_named>::value || distinct_type_names<Event>(),
                "varve: two event types of one aggregate have the same type_name: the second "
                "would be stored under the first's name and read back as the first");

  /// The type stored with the event (readable in the log, used by filters).
  static std::string type_of(const Event& e) {
    if constexpr (is_variant<Event>::value)
      return std::visit([](const auto& x) { return std::string(x.type_name); }, e);
    else
      return std::string(Event::type_name);
  }

  /// The stored bytes into `out`; false when the event cannot be encoded.
  static bool encode(const Event& e, std::string& out) {
    if constexpr (is_variant<Event>::value)
      return std::visit([&](const auto& x) { return Format::save(x, out); }, e);
    else
      return Format::save(e, out);
  }

  /// The event of that type from its bytes; std::nullopt on an unknown type
  /// or bytes that do not decode.
  static std::optional<Event> decode(std::string_view type, std::string_view bytes) {
    if constexpr (is_variant<Event>::value) {
      return decode_alternative(type, bytes);
    } else {
      if (type != Event::type_name) return std::nullopt;
      return Format::template load<Event>(bytes);
    }
  }

  /// The decode() that decode_into() decodes as, when decode_into() reuses
  /// the event's storage (else nullptr): a codec derived from this one that
  /// declares a decode() of its own (an upcaster, say) is decoded with that
  /// one, not with decode_into() (see event_decoder).
  static constexpr std::optional<Event> (*decode_into_decodes_as)(
      std::string_view, std::string_view) = Format::reuses_storage ? &named_codec::decode : nullptr;

  /// decode() into `out`, which may hold an earlier event: what decodes is
  /// the same, and with the fast JSON reader `out`'s strings and containers
  /// keep their storage (the fold of a long stream allocates once, not once
  /// per event). False on an unknown type or bytes that do not decode; `out`
  /// then holds some valid event.
  static bool decode_into(std::string_view type, std::string_view bytes, Event& out) {
    if constexpr (is_variant<Event>::value) {
      return decode_alternative_into(type, bytes, out);
    } else {
      if (type != Event::type_name) return false;
      return Format::template load_into<Event>(bytes, out);
    }
  }

 private:
  template <std::size_t I = 0>
  static bool decode_alternative_into(std::string_view type, std::string_view bytes, Event& out) {
    if constexpr (I == std::variant_size_v<Event>) {
      return false;
    } else {
      using alt = std::variant_alternative_t<I, Event>;
      if (type != alt::type_name) return decode_alternative_into<I + 1>(type, bytes, out);
      if (out.index() != I) out.template emplace<I>();
      return Format::template load_into<alt>(bytes, std::get<I>(out));
    }
  }

  template <std::size_t I = 0>
  static std::optional<Event> decode_alternative(std::string_view type, std::string_view bytes) {
    if constexpr (I == std::variant_size_v<Event>) {
      return std::nullopt;
    } else {
      using alt = std::variant_alternative_t<I, Event>;
      if (type != alt::type_name) return decode_alternative<I + 1>(type, bytes);
      auto x = Format::template load<alt>(bytes);
      if (!x) return std::nullopt;
      return Event{std::in_place_index<I>, std::move(*x)};
    }
  }
};

/// A format that refuses everything: what json_codec falls back to after
/// its static_assert, so that the compiler reports that and little else.
struct no_format {
  static constexpr bool reuses_storage = false;
  template <class T>
  static bool save(const T&, std::string&) {
    return false;
  }
  template <class T>
  static std::optional<T> load(std::string_view) {
    return std::nullopt;
  }
  template <class T>
  static bool load_into(std::string_view, T&) {
    return false;
  }
};

}  // namespace detail

/// Events (a struct, or a std::variant of structs) as JSON objects; the
/// default codec of aggregates. Thread-safe: it has no state.
template <class Event>
struct json_codec
    : detail::named_codec<
          Event, std::conditional_t<detail::each_alternative<Event, detail::is_json>::value,
                                    detail::json_format, detail::no_format>> {
  static_assert(detail::each_alternative<Event, detail::is_json>::value,
                "varve: an event type has no JSON form. Declare one next to it with "
                "VARVE_JSON(Type, field...) (varve/actors/codec.hpp), or choose another codec "
                "in the aggregate (using codec = varve::binary_codec<event>;)");
};

/// The codec of an aggregate that declares none.
template <class Event>
using default_codec = json_codec<Event>;

namespace detail {

/// Decodes a stream of events with `Codec`, one at a time: into one event
/// object with the codec's decode_into() when that reuses the event's
/// storage (json_codec's fast reader) and decodes as the codec's own
/// decode() (a codec derived from json_codec that declares its own decode()
/// is decoded with that), and the event is default-constructible; otherwise
/// with decode(), the event constructed afresh.
template <class Codec, class Event>
class event_decoder {
  using decode_function = std::optional<Event> (*)(std::string_view, std::string_view);
  static constexpr bool may_reuse =
      std::is_default_constructible_v<Event> && requires(std::string_view s, Event& e) {
    { Codec::decode_into(s, s, e) } -> std::same_as<bool>;
    { Codec::decode_into_decodes_as } -> std::convertible_to<decode_function>;
    static_cast<decode_function>(&Codec::decode);
  };
  struct none {};

 public:
  event_decoder() {
    // Compared when running: not every build (sanitizers) folds function
    // addresses into constant expressions.
    if constexpr (may_reuse)
      reuses_ = static_cast<decode_function>(&Codec::decode) == Codec::decode_into_decodes_as;
  }

  /// Calls `use(event)` with the event stored as `type` and `bytes` (an
  /// lvalue, valid during the call); false, without calling it, when the
  /// bytes do not decode.
  template <class F>
  bool operator()(std::string_view type, std::string_view bytes, F&& use) {
    if constexpr (may_reuse) {
      if (reuses_) {
        if (!Codec::decode_into(type, bytes, event_)) return false;
        use(event_);
        return true;
      }
    }
    auto e = Codec::decode(type, bytes);
    if (!e) return false;
    use(*e);
    return true;
  }

 private:
  bool reuses_ = false;
  [[no_unique_address]] std::conditional_t<may_reuse, Event, none> event_{};
};

/// The codec of an aggregate or a decision model: its `codec` when it
/// declares one, else the default codec of its events.
template <class A>
struct codec_of {
  using type = default_codec<typename A::event>;
};
template <class A>
requires requires {
  typename A::codec;
}
struct codec_of<A> {
  using type = typename A::codec;
};

}  // namespace detail

}  // namespace varve

/// Declares the JSON form of `Type` (to_json and from_json, found by
/// argument-dependent lookup): an object with the listed fields by name.
/// Use it in Type's namespace, after Type. A field missing from a stored
/// object reads as in `Type{}`. With no fields, the form is `{}`.
#define VARVE_JSON(...)                                                                           \
  VARVE_DETAIL_JSON_PICK(__VA_ARGS__, MANY, MANY, MANY, MANY, MANY, MANY, MANY, MANY, MANY, MANY, \
                         MANY, MANY, MANY, MANY, MANY, MANY, MANY, MANY, MANY, MANY, MANY, MANY,  \
                         MANY, MANY, MANY, MANY, MANY, MANY, MANY, MANY, MANY, MANY, MANY, ONE,   \
                         unused)                                                                  \
  (__VA_ARGS__)
#define VARVE_DETAIL_JSON_PICK(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, \
                               _16, _17, _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28,  \
                               _29, _30, _31, _32, _33, _34, which, ...)                         \
  VARVE_DETAIL_JSON_##which
#define VARVE_DETAIL_JSON_MANY(Type, ...)                                                   \
  NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Type, __VA_ARGS__)                        \
  [[maybe_unused]] inline auto varve_json_fields(const Type*) {                             \
    using varve_json_self = Type;                                                           \
    return ::varve::detail::json_field_list(                                                \
        0 NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(VARVE_DETAIL_JSON_FIELD, __VA_ARGS__))); \
  }
#define VARVE_DETAIL_JSON_FIELD(f)                                               \
  , ::varve::detail::json_field<varve_json_self, decltype(varve_json_self::f)> { \
#f, &varve_json_self::f                                                      \
  }
#define VARVE_DETAIL_JSON_ONE(Type)                                                              \
  [[maybe_unused]] inline void to_json(nlohmann::json& j, const Type&) {                         \
    j = nlohmann::json::object();                                                                \
  }                                                                                              \
  [[maybe_unused]] inline void from_json(const nlohmann::json& j, Type&) {                       \
    if (!j.is_object()) throw nlohmann::json::type_error::create(302, "expected an object", &j); \
  }                                                                                              \
  [[maybe_unused]] inline std::tuple<> varve_json_fields(const Type*) {                          \
    return {};                                                                                   \
  }
