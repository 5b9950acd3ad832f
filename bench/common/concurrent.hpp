// The W2 driver: N writer threads appending one event at a time, each waiting
// for its answer before the next, timed per append.
#pragma once

#include <cstdint>
#include <functional>

#include "common/latency.hpp"

namespace varve::bench {

struct concurrent_config {
  std::uint32_t writers = 1;
  /// Timed mode (events_per_writer == 0): appends completing inside a window of
  /// `seconds`, after `warmup_seconds` of uncounted appends, are counted; each
  /// writer stops at its first append completing after the window. Latencies:
  /// of the counted appends and of the appends still in flight when the window
  /// closed (so that a starved writer shows).
  double seconds = 3.0;
  double warmup_seconds = 0.5;
  /// Fixed mode (> 0): every writer makes exactly this many appends, all
  /// counted, timed from the start to the last completion.
  std::uint64_t events_per_writer = 0;
  /// Called by the driving thread when the measured window opens and closes
  /// (e.g. to read a committer's counters). May be empty.
  std::function<void()> on_window_start;
  std::function<void()> on_window_end;
};

struct concurrent_result {
  std::uint64_t events = 0;  ///< appends counted
  double seconds = 0;        ///< length of the measured window
  latency_summary latency;   ///< see concurrent_config
  double events_per_s() const noexcept { return seconds > 0 ? events / seconds : 0; }
};

/// One writer's append: makes one append (tracking its own expected version)
/// and returns once it is durable; throws on failure. Destroyed on the writer's
/// thread after its last append.
using append_fn = std::function<void()>;

/// Makes writer `index`'s append function. Called on that writer's own thread,
/// concurrently for all writers, before the clock starts: open connections and
/// prepare statements here.
using writer_factory = std::function<append_fn(std::uint32_t index)>;

/// Runs the writers and measures them. The first exception thrown by a factory
/// or an append stops every writer and is rethrown here once all have joined.
concurrent_result run_concurrent_appends(const concurrent_config& config,
                                         const writer_factory& make_writer);

}  // namespace varve::bench
