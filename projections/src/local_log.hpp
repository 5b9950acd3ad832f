// Reading the log of a store in this process for a projection engine: in
// batches, zero copy, with stream names cached by stream id (a stream's name
// never changes). A projection whose filter the store's indexes can answer
// (projection_filter) reads only the positions they list for it, and hands
// the engine how far that read covered the log. No CAF.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "varve/projections/engine.hpp"

namespace varve::detail {

class local_log_reader {
 public:
  explicit local_log_reader(std::shared_ptr<const event_store> store) : store_(std::move(store)) {}

  /// Reads up to `limit` events after `after` in one read transaction and
  /// hands them to `engine` (on_batch, views valid during the call), or the
  /// error (on_read_failed). With a filter the indexes answer
  /// (projection_filter::index_query): up to `limit` matching events, and
  /// the batch covers the log up to the transaction's head when fewer
  /// matched, else up to the last of them.
  void read(projection_engine& engine, global_position after, std::size_t limit,
            std::uint64_t ticket);

  /// The log's head now; std::nullopt when the store cannot be read.
  std::optional<global_position> head() const;

 private:
  std::string_view name_of(const read_transaction& txn, std::uint64_t id);

  std::shared_ptr<const event_store> store_;
  std::vector<std::string> names_;  ///< by stream id, for ids below max_cached_names
  std::vector<event_view> events_;  ///< a batch's events, reused
  std::vector<delivered_event> delivered_;
  global_position head_ = 0;
  timestamp_us head_time_ = 0;
};

}  // namespace varve::detail
