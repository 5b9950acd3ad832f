// The W4 driver (whole-stream reads among many streams, each timed) and
// W9b's (reads of every event of one rare type, each timed).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/latency.hpp"
#include "common/options.hpp"
#include "common/record.hpp"

namespace varve::bench {

/// Reads the whole stream `name` (in a transaction or statement of its own)
/// and returns how many events it read.
using stream_reader = std::function<std::uint64_t(const std::string& name)>;

/// Runs `o.repeat` repetitions of `o.w4_reads` stream reads through `read`,
/// the i-th read of a repetition to names[i * 7919 % names.size()] (7919 is
/// prime, so the first `streams` reads visit distinct streams), each timed
/// on its own. A read shorter than `per_stream` events throws. Returns the
/// W4 record of the best repetition (events per second of read time, p50
/// and p99 per stream read).
measurement run_stream_reads(const options& o, std::string_view system,
                             const std::vector<std::string>& names, std::uint64_t per_stream,
                             const stream_reader& read);

/// Reads every event of W9's rare type (in a transaction of its own) and
/// returns how many it read.
using query_reader = std::function<std::uint64_t()>;

/// Runs `o.repeat` repetitions of `o.w9_reads` reads through `read`, each
/// timed on its own. A read of other than `expected` events throws. Returns
/// the W9b record of the repetition with the fastest median read: events/s
/// = `expected` / that median (robust to reads preempted on a shared
/// machine), p50 and p99 per read, `mean_events_per_s` (events / read time,
/// the best repetition's); the caller names its variant.
measurement run_query_reads(const options& o, std::string_view system, std::uint64_t expected,
                            const query_reader& read);

}  // namespace varve::bench
