// Reading the log, a query's events or a stream as owned copies, in short read transactions of
// a few hundred events each: no transaction stays open while the caller
// prints (a slow pipe must not pin the store's pages).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "varve/storage/event_store.hpp"
#include "varve/storage/query.hpp"

namespace varvectl {

/// Called with each event, between transactions; returns false to stop.
using event_sink = std::function<bool(const varve::recorded_event&)>;

/// Which part of the log to read.
struct log_range {
  varve::global_position from = 1;  ///< forward: 0/1 = first; backward: varve::from_end = newest
  varve::direction dir = varve::direction::forward;
  std::uint64_t limit = UINT64_MAX;
  varve::global_position upto = UINT64_MAX;  ///< forward: stop after this position
};

/// Reads the log in `range` into `sink`; returns the number of events handed
/// over. Errors: those of the reads (corruption, auth_failed, ...).
varve::result<std::uint64_t> read_log(const varve::event_store& store, const log_range& range,
                                      const event_sink& sink);

/// Reads the events that match `q` from position `from` in `dir`, at most
/// `limit`, into `sink`; returns the number handed over. Errors: those of
/// the reads (invalid_argument for a bad query, corruption, ...).
varve::result<std::uint64_t> read_query(const varve::event_store& store, const varve::query& q,
                                        varve::global_position from, varve::direction dir,
                                        std::uint64_t limit, const event_sink& sink);

/// Reads stream `name` from version `from` (forward: 0/1 = first; backward:
/// varve::from_end = last), at most `limit` events. Errors: not_found (no
/// such stream, whatever the limit, 0 included), those of the reads.
varve::result<std::uint64_t> read_stream(const varve::event_store& store, std::string_view name,
                                         varve::stream_version from, varve::direction dir,
                                         std::uint64_t limit, const event_sink& sink);

}  // namespace varvectl
