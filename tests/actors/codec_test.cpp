// Event codecs: the JSON codec that aggregates use by default, the CAF
// binary codec they may choose, and how snapshot states are stored. No
// actors: the codecs are plain functions.
#define BOOST_TEST_MODULE codec
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <caf/meta/type_name.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <varve/actors/binary_codec.hpp>
#include <varve/actors/codec.hpp>
#include <varve/actors/detail/state_codec.hpp>
#include <vector>

namespace shop {

struct item_added {
  static constexpr std::string_view type_name = "item_added";
  std::string sku;
  std::int64_t quantity = 0;
  std::vector<std::string> tags;
};
VARVE_JSON(item_added, sku, quantity, tags)

/// A later version of item_added's C++ type: one more field, with a default.
struct item_added_v2 {
  static constexpr std::string_view type_name = "item_added";
  std::string sku;
  std::int64_t quantity = 0;
  std::vector<std::string> tags;
  std::string currency = "EUR";
};
VARVE_JSON(item_added_v2, sku, quantity, tags, currency)

struct cart_checked_out {
  static constexpr std::string_view type_name = "cart_checked_out";
};
VARVE_JSON(cart_checked_out)

using cart_event = std::variant<item_added, cart_checked_out>;

struct cart_state {
  std::map<std::string, std::int64_t> items;
  bool checked_out = false;
};
VARVE_JSON(cart_state, items, checked_out)

/// A state with a CAF inspect overload only.
struct legacy_state {
  std::int64_t total = 0;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, legacy_state& x) {
  return f(caf::meta::type_name("legacy_state"), x.total);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item_added& x) {
  return f(caf::meta::type_name("item_added"), x.sku, x.quantity, x.tags);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cart_checked_out&) {
  return f(caf::meta::type_name("cart_checked_out"));
}

}  // namespace shop

using namespace shop;
using json_codec = varve::json_codec<cart_event>;
using binary_codec = varve::binary_codec<cart_event>;

BOOST_AUTO_TEST_CASE(an_event_is_stored_as_a_json_object_under_its_type_name) {
  const cart_event e = item_added{"apple", 3, {"fruit", "red"}};
  BOOST_TEST(json_codec::type_of(e) == "item_added");
  std::string bytes;
  BOOST_REQUIRE(json_codec::encode(e, bytes));
  const auto j = nlohmann::json::parse(bytes);
  BOOST_TEST(j == nlohmann::json::parse(R"({"sku":"apple","quantity":3,"tags":["fruit","red"]})"));
  auto back = json_codec::decode("item_added", bytes);
  BOOST_REQUIRE(back);
  const auto& x = std::get<item_added>(*back);
  BOOST_TEST(x.sku == "apple");
  BOOST_TEST(x.quantity == 3);
  BOOST_TEST(x.tags == (std::vector<std::string>{"fruit", "red"}));
}

BOOST_AUTO_TEST_CASE(an_event_without_fields_is_stored_as_an_empty_object) {
  std::string bytes;
  BOOST_REQUIRE(json_codec::encode(cart_checked_out{}, bytes));
  BOOST_TEST(bytes == "{}");
  auto back = json_codec::decode("cart_checked_out", bytes);
  BOOST_REQUIRE(back);
  BOOST_TEST(std::holds_alternative<cart_checked_out>(*back));
  BOOST_TEST(!json_codec::decode("cart_checked_out", "[]"));
  BOOST_TEST(!json_codec::decode("cart_checked_out", "7"));
}

BOOST_AUTO_TEST_CASE(a_field_added_later_reads_as_its_default_from_older_events) {
  std::string old_bytes;
  BOOST_REQUIRE(varve::json_codec<item_added>::encode(item_added{"pear", 2, {}}, old_bytes));
  auto now = varve::json_codec<item_added_v2>::decode("item_added", old_bytes);
  BOOST_REQUIRE(now);
  BOOST_TEST(now->sku == "pear");
  BOOST_TEST(now->quantity == 2);
  BOOST_TEST(now->currency == "EUR");
  // And the other way: a field the reader does not know is ignored.
  std::string new_bytes;
  BOOST_REQUIRE(
      varve::json_codec<item_added_v2>::encode(item_added_v2{"fig", 1, {}, "CHF"}, new_bytes));
  auto older = varve::json_codec<item_added>::decode("item_added", new_bytes);
  BOOST_REQUIRE(older);
  BOOST_TEST(older->sku == "fig");
}

BOOST_AUTO_TEST_CASE(bytes_that_are_not_an_event_of_that_type_do_not_decode) {
  BOOST_TEST(!json_codec::decode("item_removed", R"({"sku":"apple"})"));  // unknown type
  BOOST_TEST(!json_codec::decode("item_added", "{\"sku\": "));            // not JSON
  BOOST_TEST(!json_codec::decode("item_added", R"({"sku":42})"));         // wrong field type
  BOOST_TEST(!json_codec::decode("item_added", R"(["apple",3])"));        // not an object
  BOOST_TEST(!json_codec::decode("item_added", ""));
  std::string binary;
  BOOST_REQUIRE(binary_codec::encode(item_added{"apple", 3, {}}, binary));
  BOOST_TEST(!json_codec::decode("item_added", binary));
}

BOOST_AUTO_TEST_CASE(a_string_that_is_not_utf8_is_refused_not_stored_mangled) {
  std::string bytes = "untouched";
  BOOST_TEST(!json_codec::encode(item_added{"\xff\xfe", 1, {}}, bytes));
}

BOOST_AUTO_TEST_CASE(the_binary_codec_stores_cafs_form_and_reads_it_back) {
  const cart_event e = item_added{"kiwi", 5, {"green"}};
  std::string bytes;
  BOOST_REQUIRE(binary_codec::encode(e, bytes));
  BOOST_TEST(binary_codec::type_of(e) == "item_added");
  BOOST_TEST(!nlohmann::json::accept(bytes));
  auto back = binary_codec::decode("item_added", bytes);
  BOOST_REQUIRE(back);
  BOOST_TEST(std::get<item_added>(*back).quantity == 5);
  BOOST_TEST(!binary_codec::decode("item_added", bytes + "x"));  // trailing bytes
  BOOST_TEST(!binary_codec::decode("cart_checked_out", bytes));  // another type's bytes
}

BOOST_AUTO_TEST_CASE(a_snapshot_state_with_a_json_form_is_stored_as_json) {
  cart_state s;
  s.items = {{"apple", 3}, {"pear", 1}};
  std::string bytes;
  BOOST_REQUIRE(varve::detail::save_state(s, bytes));
  BOOST_TEST(nlohmann::json::parse(bytes)["items"]["apple"] == 3);
  auto back = varve::detail::load_state<cart_state>(bytes);
  BOOST_REQUIRE(back);
  BOOST_TEST(back->items.size() == 2u);
  BOOST_TEST(!varve::detail::load_state<cart_state>("not json"));
}

BOOST_AUTO_TEST_CASE(a_snapshot_state_with_an_inspect_overload_only_is_stored_in_cafs_form) {
  std::string bytes;
  BOOST_REQUIRE(varve::detail::save_state(legacy_state{41}, bytes));
  BOOST_TEST(!nlohmann::json::accept(bytes));
  auto back = varve::detail::load_state<legacy_state>(bytes);
  BOOST_REQUIRE(back);
  BOOST_TEST(back->total == 41);
}

namespace shop {

struct address {
  std::string city;
  std::uint16_t zip = 0;
};
VARVE_JSON(address, city, zip)

/// Every kind of field the fast reader reads, and a nested type.
struct order_placed {
  static constexpr std::string_view type_name = "order_placed";
  std::int32_t lines = 0;
  std::uint64_t total_cents = 0;
  double weight = 0;
  bool gift = false;
  std::string note;
  std::vector<std::int64_t> skus;
  std::map<std::string, std::string> labels;
  address ship_to;
  std::vector<address> stops;
};
VARVE_JSON(order_placed, lines, total_cents, weight, gift, note, skus, labels, ship_to, stops)

/// A field the fast reader does not read (std::array): nlohmann reads it.
struct measured {
  static constexpr std::string_view type_name = "measured";
  std::array<int, 2> range{};
};
VARVE_JSON(measured, range)

/// What nlohmann alone makes of `text`: the reference.
template <class T>
std::optional<T> nlohmann_reads(std::string_view text) {
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  try {
    return j.get<T>();
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace shop

BOOST_AUTO_TEST_CASE(what_decodes_decodes_as_nlohmann_reads_it_and_what_would_be_coerced_does_not) {
  using codec = varve::json_codec<order_placed>;
  struct text_case {
    std::string text;
    bool decodes;
  };
  const std::vector<text_case> cases{
      {R"({"lines":2,"total_cents":1999,"weight":1.5,"gift":true,"note":"caf\u00e9 \"x\"",)"
       R"("skus":[1,2,3],"labels":{"a":"b"},"ship_to":{"city":"Bern","zip":3000},)"
       R"("stops":[{"city":"Thun"},{"zip":1}]})",
       true},
      {R"({})", true},                                    // every field its default
      {R"({"lines":1,"lines":7})", true},                 // the last of two equal keys
      {R"({"unknown":[1,{"x":null}],"lines":3})", true},  // unknown fields skipped
      {R"({"weight":3})", true},                          // an integer where a double is
      {R"({"lines":2.9})", false},              // a float where an integer is (nlohmann: 2)
      {R"({"lines":3000000000})", false},       // out of an int32's range (nlohmann: wraps)
      {R"({"total_cents":-1})", false},         // negative into unsigned (nlohmann: 2^64-1)
      {R"({"ship_to":{"zip":70000}})", false},  // out of a uint16's range
      {R"({"gift":1})", false},                 // not a boolean
      {R"({"note":5})", false},                 // not a string
      {R"({"skus":{"a":1}})", false},           // not an array
      {R"({"lines":1} trailing)", false},       // bytes after the object
      {R"({"lines":1}{"lines":2})", false},
      {R"([1,2])", false},              // not an object
      {R"({"note":"\ud800"})", false},  // a lone surrogate
      {R"({"lines":1)", false},         // cut short
      {"{\"note\":\"\xff\"}", false},   // not UTF-8
      {"", false},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.text) {
      auto decoded = codec::decode("order_placed", c.text);
      BOOST_TEST(decoded.has_value() == c.decodes);
      if (decoded) {
        auto reference = nlohmann_reads<order_placed>(c.text);
        BOOST_REQUIRE(reference);
        BOOST_TEST(nlohmann::json(*decoded) == nlohmann::json(*reference));
      }
    }
  }
  auto full = codec::decode("order_placed", cases[0].text);
  BOOST_REQUIRE(full);
  BOOST_TEST(full->note == "caf\xc3\xa9 \"x\"");
  BOOST_TEST(full->skus == (std::vector<std::int64_t>{1, 2, 3}));
  BOOST_TEST(full->stops.size() == 2u);
  BOOST_TEST(full->stops[1].zip == 1u);
  BOOST_TEST(full->ship_to.city == "Bern");
}

BOOST_AUTO_TEST_CASE(a_type_with_a_field_the_fast_reader_does_not_read_is_read_by_nlohmann) {
  static_assert(!varve::detail::fast_json_v<measured>);
  static_assert(varve::detail::fast_json_v<order_placed>);
  std::string bytes;
  BOOST_REQUIRE(varve::json_codec<measured>::encode(measured{{3, 9}}, bytes));
  auto back = varve::json_codec<measured>::decode("measured", bytes);
  BOOST_REQUIRE(back);
  BOOST_TEST(back->range[1] == 9);
}

BOOST_AUTO_TEST_CASE(bytes_at_the_very_end_of_a_page_are_read_without_reading_past_them) {
  // The fast reader copies the bytes before simdjson reads past them: a
  // value that ends where its memory ends reads (ASan would say otherwise).
  const std::string text = R"({"lines":4})";
  auto heap = std::make_unique<char[]>(text.size());
  std::memcpy(heap.get(), text.data(), text.size());
  auto back = varve::json_codec<order_placed>::decode("order_placed", {heap.get(), text.size()});
  BOOST_REQUIRE(back);
  BOOST_TEST(back->lines == 4);
}

BOOST_AUTO_TEST_CASE(decoding_into_an_earlier_event_reads_as_decoding_afresh) {
  // The fast reader: what an object lacks reads as in Type{}, not as the
  // earlier event's value.
  using codec = varve::json_codec<order_placed>;
  const std::vector<std::string> texts{
      R"({"lines":2,"total_cents":1999,"weight":1.5,"gift":true,"note":"long enough to allocate",)"
      R"("skus":[1,2,3],"labels":{"a":"b"},"ship_to":{"city":"Bern","zip":3000},)"
      R"("stops":[{"city":"Thun"},{"zip":1}]})",
      R"({})",
      R"({"ship_to":{"city":"Chur"},"stops":[{"zip":7}]})",
      R"({"note":"again","labels":{"c":"d"}})",
      R"({"lines":1,"ship_to":{"zip":4}})",
  };
  order_placed into;
  for (std::size_t round = 0; round < 2; ++round)
    for (const auto& text : texts) {
      BOOST_TEST_CONTEXT(text) {
        BOOST_REQUIRE(codec::decode_into("order_placed", text, into));
        auto afresh = codec::decode("order_placed", text);
        BOOST_REQUIRE(afresh);
        BOOST_TEST(nlohmann::json(into) == nlohmann::json(*afresh));
      }
    }
  BOOST_TEST(!codec::decode_into("order_placed", R"({"lines":"two"})", into));
  BOOST_TEST(!codec::decode_into("item_added", "{}", into));

  // A field added later, after an event that had it.
  item_added_v2 v2;
  BOOST_REQUIRE(varve::json_codec<item_added_v2>::decode_into(
      "item_added", R"({"sku":"fig","quantity":1,"currency":"CHF"})", v2));
  BOOST_TEST(v2.currency == "CHF");
  BOOST_REQUIRE(varve::json_codec<item_added_v2>::decode_into(
      "item_added", R"({"sku":"pear","quantity":2,"tags":[]})", v2));
  BOOST_TEST(v2.currency == "EUR");
  BOOST_TEST(v2.sku == "pear");
}

BOOST_AUTO_TEST_CASE(decoding_into_an_event_of_another_alternative_switches_to_it) {
  for (auto codec_name : {"json", "binary"}) {
    BOOST_TEST_CONTEXT(codec_name) {
      const bool json = std::string_view(codec_name) == "json";
      auto encode = [&](const cart_event& e) {
        std::string bytes;
        BOOST_REQUIRE(json ? json_codec::encode(e, bytes) : binary_codec::encode(e, bytes));
        return bytes;
      };
      auto decode_into = [&](std::string_view type, const std::string& bytes, cart_event& out) {
        return json ? json_codec::decode_into(type, bytes, out)
                    : binary_codec::decode_into(type, bytes, out);
      };
      cart_event e = item_added{"apple", 3, {"fruit", "red", "round"}};
      BOOST_REQUIRE(decode_into("item_added", encode(item_added{"kiwi", 1, {"green"}}), e));
      BOOST_TEST(std::get<item_added>(e).tags == (std::vector<std::string>{"green"}));
      BOOST_TEST(std::get<item_added>(e).sku == "kiwi");
      BOOST_REQUIRE(decode_into("cart_checked_out", encode(cart_checked_out{}), e));
      BOOST_TEST(std::holds_alternative<cart_checked_out>(e));
      BOOST_REQUIRE(decode_into("item_added", encode(item_added{"fig", 2, {}}), e));
      BOOST_TEST(std::get<item_added>(e).quantity == 2);
      BOOST_TEST(std::get<item_added>(e).tags.empty());
      BOOST_TEST(!decode_into("item_removed", encode(item_added{"fig", 2, {}}), e));
    }
  }
}

/// What `d` makes of an event's bytes: a copy of the event it hands out.
template <class C, class E>
std::optional<E> decoded(varve::detail::event_decoder<C, E>& d, std::string_view type,
                         std::string_view bytes) {
  std::optional<E> out;
  if (!d(type, bytes, [&](E& e) { out.emplace(e); })) BOOST_TEST(!out);
  return out;
}

BOOST_AUTO_TEST_CASE(an_event_decoder_hands_out_each_event_as_decoded_afresh) {
  // What hydrations and decisions fold with: one event object, reused.
  varve::detail::event_decoder<varve::json_codec<item_added_v2>, item_added_v2> decode;
  auto first = decoded(decode, "item_added", R"({"sku":"fig","quantity":1,"currency":"CHF"})");
  BOOST_REQUIRE(first);
  BOOST_TEST(first->currency == "CHF");
  auto second = decoded(decode, "item_added", R"({"sku":"pear"})");
  BOOST_REQUIRE(second);
  BOOST_TEST(second->currency == "EUR");
  BOOST_TEST(second->quantity == 0);
  BOOST_TEST(!decoded(decode, "item_added", R"({"sku":1})"));
  BOOST_TEST(!decoded(decode, "cart_checked_out", "{}"));
}

namespace shop {

/// Bits: CAF loads an empty std::vector<bool> by leaving the vector as it was.
struct lights_set {
  static constexpr std::string_view type_name = "lights_set";
  std::vector<bool> on;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lights_set& x) {
  return f(caf::meta::type_name("lights_set"), x.on);
}

/// A codec that reads an older type name too (an upcaster): its decode()
/// is the one that counts.
struct upcasting_codec : varve::json_codec<item_added_v2> {
  static std::optional<item_added_v2> decode(std::string_view type, std::string_view bytes) {
    if (type == "item_added_v0") {
      auto e = varve::json_codec<item_added_v2>::decode("item_added", bytes);
      if (e) e->quantity *= 10;
      return e;
    }
    return varve::json_codec<item_added_v2>::decode(type, bytes);
  }
};

/// An event that cannot be assigned, with a codec of its own (no decode_into).
struct stamped {
  static constexpr std::string_view type_name = "stamped";
  const std::int64_t at;
};
struct stamped_codec {
  static std::string type_of(const stamped&) { return "stamped"; }
  static bool encode(const stamped& e, std::string& out) {
    out = std::to_string(e.at);
    return true;
  }
  static std::optional<stamped> decode(std::string_view type, std::string_view bytes) {
    if (type != "stamped" || bytes.empty()) return std::nullopt;
    return stamped{std::stoll(std::string(bytes))};
  }
};

}  // namespace shop

BOOST_AUTO_TEST_CASE(the_binary_codec_decodes_each_event_afresh) {
  varve::detail::event_decoder<varve::binary_codec<lights_set>, lights_set> decode;
  std::string some, none;
  BOOST_REQUIRE(varve::binary_codec<lights_set>::encode(lights_set{{true, false, true}}, some));
  BOOST_REQUIRE(varve::binary_codec<lights_set>::encode(lights_set{}, none));
  auto first = decoded(decode, "lights_set", some);
  BOOST_REQUIRE(first);
  BOOST_TEST(first->on.size() == 3u);
  auto second = decoded(decode, "lights_set", none);
  BOOST_REQUIRE(second);
  BOOST_TEST(second->on.empty());
}

BOOST_AUTO_TEST_CASE(a_codec_that_declares_its_own_decode_is_decoded_with_it) {
  varve::detail::event_decoder<upcasting_codec, item_added_v2> decode;
  auto old = decoded(decode, "item_added_v0", R"({"sku":"fig","quantity":2})");
  BOOST_REQUIRE(old);
  BOOST_TEST(old->quantity == 20);
  auto now = decoded(decode, "item_added", R"({"sku":"fig","quantity":2})");
  BOOST_REQUIRE(now);
  BOOST_TEST(now->quantity == 2);
  // json_codec itself, whose decode_into decodes as its decode.
  varve::detail::event_decoder<varve::json_codec<item_added_v2>, item_added_v2> plain;
  BOOST_TEST(!decoded(plain, "item_added_v0", R"({"sku":"fig","quantity":2})"));
}

BOOST_AUTO_TEST_CASE(an_event_that_cannot_be_assigned_decodes_with_a_codec_of_its_own) {
  varve::detail::event_decoder<stamped_codec, stamped> decode;
  auto a = decoded(decode, "stamped", "17");
  BOOST_REQUIRE(a);
  BOOST_TEST(a->at == 17);
  auto b = decoded(decode, "stamped", "42");
  BOOST_REQUIRE(b);
  BOOST_TEST(b->at == 42);
  BOOST_TEST(!decoded(decode, "stamped", ""));
}
