// The W4 driver: whole-stream reads among many streams, each timed.
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

}  // namespace varve::bench
