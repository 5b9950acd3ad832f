// Queries over the whole log by event type, stream category and tag, and
// the append conditions built on them (dynamic consistency boundaries: the
// model of the DCB specification, dcb.events).
//
// A query is an OR of items. An item matches an event when
//   - its type is one of the item's `types` (any type when none are given),
//   - its stream's category is one of the item's `categories` (any when none),
//   - and it carries every one of the item's `tags`.
// An item with nothing in it matches every event (query::all()); a query
// with no items matches no event.
//
// A query has at most max_query_items items and max_query_terms types,
// tags and categories in all (a read or condition over more is refused with
// invalid_argument): conditions are checked in the single writer's
// transaction, and their cost grows with the items.
//
// The category of a stream is its name up to the first '-' ("account-42"
// is in "account"); a name without '-' has no category (EventStoreDB's
// $ce rule).
//
// Reads of a query go through the store's type, category and tag indexes
// (storage/FORMAT.md), written in the transaction of the events: they never
// see an event the log does not have, nor miss one it has.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "varve/storage/event.hpp"

namespace varve {

/// Bounds of one query (see above).
inline constexpr std::size_t max_query_items = 256;
inline constexpr std::size_t max_query_terms = 1024;

/// One alternative of a query (see above).
struct query_item {
  std::vector<std::string> types{};
  std::vector<std::string> tags{};
  std::vector<std::string> categories{};

  friend bool operator==(const query_item&, const query_item&) = default;
};

/// An OR of items (see above).
struct query {
  std::vector<query_item> items{};

  /// Every event.
  static query all() { return query{{query_item{}}}; }
  /// Events of any of these types.
  static query of_types(std::vector<std::string> types) {
    return query{{query_item{std::move(types), {}, {}}}};
  }
  /// Events that carry all of these tags.
  static query of_tags(std::vector<std::string> tags) {
    return query{{query_item{{}, std::move(tags), {}}}};
  }

  /// Whether an event of stream `stream_name` matches.
  bool matches(const event_view& event, std::string_view stream_name) const;

  /// A canonical text of the query: items and their lists sorted and
  /// without duplicates, so two queries that match the same way by
  /// construction have the same text (used to key decision actors).
  std::string to_string() const;

  friend bool operator==(const query&, const query&) = default;
};

/// The category of a stream name: up to the first '-'; empty when the name
/// has none.
std::string_view category_of(std::string_view stream_name);

/// The condition of a DCB append: the request fails when an event that
/// matches `fail_if_events_match` is in the log at a position after
/// `after` (anywhere in the log when `after` is empty). Events appended
/// earlier in the same batch count: of two requests in one batch that
/// contend for one boundary, the second fails.
///
/// The failure is errc::wrong_expected_version, and its message names the
/// first matching position. A request whose appends are all found already
/// in their streams (events with the same ids, the idempotency rule of
/// event_store::append) returns their places and is not checked against
/// its condition: retrying an append that committed is safe.
struct append_condition {
  query fail_if_events_match{};
  std::optional<global_position> after{};
};

}  // namespace varve
