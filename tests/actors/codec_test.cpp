// Event codecs: the JSON codec that aggregates use by default, the CAF
// binary codec they may choose, and how snapshot states are stored. No
// actors: the codecs are plain functions.
#define BOOST_TEST_MODULE codec
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <map>
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
