// CAF inspectors for the storage types that travel in messages, so that
// they can be registered (type-id blocks), printed and sent between nodes.
// Enumerations and optional fields are carried as plain integers and flags.
#pragma once

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/none.hpp>

#include <varve/storage/event_store.hpp>

namespace varve {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_id& x) {
  return f(caf::meta::type_name("varve::event_id"), x.bytes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, expected_version& x) {
  auto kind = static_cast<std::uint8_t>(x.type());
  auto version = x.version();
  auto load = caf::meta::load_callback([&]() -> caf::error {
    switch (static_cast<expected_version::kind>(kind)) {
      case expected_version::kind::any:
        x = expected_version::any();
        break;
      case expected_version::kind::no_stream:
        x = expected_version::no_stream();
        break;
      case expected_version::kind::stream_exists:
        x = expected_version::stream_exists();
        break;
      default:
        x = expected_version::exact(version);
        break;
    }
    return caf::none;
  });
  return f(caf::meta::type_name("varve::expected_version"), kind, version, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, new_event& x) {
  bool has_id = x.id.has_value();
  event_id id = x.id.value_or(event_id{});
  bool has_time = x.time.has_value();
  timestamp_us time = x.time.value_or(0);
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.id = has_id ? std::optional<event_id>(id) : std::nullopt;
    x.time = has_time ? std::optional<timestamp_us>(time) : std::nullopt;
    return caf::none;
  });
  return f(caf::meta::type_name("varve::new_event"), x.type, x.payload, x.metadata, has_id, id,
           has_time, time, x.tags, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, append_request& x) {
  return f(caf::meta::type_name("varve::append_request"), x.stream, x.expected, x.events);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, append_result& x) {
  return f(caf::meta::type_name("varve::append_result"), x.first_version, x.last_version,
           x.first_position, x.last_position, x.idempotent);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recorded_event& x) {
  return f(caf::meta::type_name("varve::recorded_event"), x.position, x.stream, x.version, x.id,
           x.time, x.type, x.metadata, x.payload, x.shredded, x.tags);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cursor_update& x) {
  bool has_expected = x.expected.has_value();
  global_position expected = x.expected.value_or(0);
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.expected = has_expected ? std::optional<global_position>(expected) : std::nullopt;
    return caf::none;
  });
  return f(caf::meta::type_name("varve::cursor_update"), x.consumer, x.position, x.state,
           has_expected, expected, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_update& x) {
  return f(caf::meta::type_name("varve::snapshot_update"), x.stream, x.version, x.schema, x.bytes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, view_update& x) {
  auto kind = static_cast<std::uint8_t>(x.kind);
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.kind = static_cast<view_update::op>(kind);
    return caf::none;
  });
  return f(caf::meta::type_name("varve::view_update"), x.view, kind, x.key, x.value, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, query_item& x) {
  return f(caf::meta::type_name("varve::query_item"), x.types, x.tags, x.categories);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, query& x) {
  return f(caf::meta::type_name("varve::query"), x.items);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, append_condition& x) {
  bool has_after = x.after.has_value();
  global_position after = x.after.value_or(0);
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.after = has_after ? std::optional<global_position>(after) : std::nullopt;
    return caf::none;
  });
  return f(caf::meta::type_name("varve::append_condition"), x.fail_if_events_match, has_after,
           after, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, write_request& x) {
  bool has_condition = x.condition.has_value();
  append_condition condition = x.condition.value_or(append_condition{});
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.condition =
        has_condition ? std::optional<append_condition>(std::move(condition)) : std::nullopt;
    return caf::none;
  });
  return f(caf::meta::type_name("varve::write_request"), x.appends, x.cursors, x.snapshots, x.views,
           has_condition, condition, load);
}

}  // namespace varve
