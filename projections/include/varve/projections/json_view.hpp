// Views of JSON values: what a projection's handler writes with put_json
// and reads with get_json, and what readers read with read_json. Any type
// with a JSON form works: numbers, strings, std::map and std::vector of
// them, and structs with VARVE_JSON (varve/actors/codec.hpp) or nlohmann's
// to_json/from_json.
//
//   spec.handle = [](const varve::delivered_event& d, varve::view_batch& view)
//       -> varve::result<void> {
//     auto balance = varve::get_json<std::int64_t>(view, d.stream);
//     if (!balance) return balance.err();
//     return varve::put_json(view, d.stream, balance->value_or(0) + 1);
//   };
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "varve/projections/spec.hpp"

namespace varve {

namespace detail {

template <class T>
result<std::optional<T>> parse_json_value(std::string_view view, std::string_view key,
                                          std::string_view bytes) {
  auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (!j.is_discarded()) {
    try {
      return std::optional<T>(j.template get<T>());
    } catch (const nlohmann::json::exception&) {
    }
  }
  return error{errc::corruption, "the value of '" + std::string(key) + "' in view '" +
                                     std::string(view) + "' is not the JSON of the type asked for"};
}

}  // namespace detail

/// Puts the JSON of `value` under `key` in the batch's view. Errors:
/// invalid_argument when `value` has no JSON text (a string that is not
/// UTF-8); nothing is put then.
template <class T>
result<void> put_json(view_batch& view, std::string_view key, const T& value) {
  std::string text;
  try {
    text = nlohmann::json(value).dump();
  } catch (const nlohmann::json::exception& ex) {
    return error{errc::invalid_argument, "the value for '" + std::string(key) + "' in view '" +
                                             view.view() + "' has no JSON text: " + ex.what()};
  }
  view.put(key, text);
  return {};
}

/// The value under `key` in the batch's view (its own writes included) as
/// a T; std::nullopt when there is none. Errors: corruption when the value
/// is not a T in JSON; those of view_batch::get.
template <class T>
result<std::optional<T>> get_json(const view_batch& view, std::string_view key) {
  auto bytes = view.get(key);
  if (!bytes) return std::move(bytes).err();
  if (!*bytes) return std::optional<T>();
  return detail::parse_json_value<T>(view.view(), key, **bytes);
}

/// The committed value under `key` in `view` as a T; std::nullopt when
/// there is none. Errors: corruption when it is not a T in JSON; those of
/// read_transaction::view_get.
template <class T>
result<std::optional<T>> read_json(const read_transaction& txn, std::string_view view,
                                   std::string_view key) {
  auto bytes = txn.view_get(view, key);
  if (!bytes) return std::move(bytes).err();
  if (!*bytes) return std::optional<T>();
  return detail::parse_json_value<T>(view, key, **bytes);
}

}  // namespace varve
