#include "common/stream_reads.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "common/clock.hpp"

namespace varve::bench {

measurement run_stream_reads(const options& o, std::string_view system,
                             const std::vector<std::string>& names, std::uint64_t per_stream,
                             const stream_reader& read) {
  double best = 0;
  latency_summary best_latency;
  for (std::uint32_t r = 0; r < o.repeat; ++r) {
    latency_recorder rec;
    rec.reserve(o.w4_reads);
    std::uint64_t total_ns = 0, events = 0;
    for (std::uint32_t i = 0; i < o.w4_reads; ++i) {
      const auto& name = names[(static_cast<std::uint64_t>(i) * 7919) % names.size()];
      const std::uint64_t start = now_ns();
      const std::uint64_t n = read(name);
      const std::uint64_t ns = now_ns() - start;
      if (n < per_stream) throw std::runtime_error("W4: short read of " + name);
      rec.add_ns(ns);
      total_ns += ns;
      events += n;
    }
    const double rate = static_cast<double>(events) / (static_cast<double>(total_ns) / 1e9);
    if (rate > best) {
      best = rate;
      best_latency = rec.summarize();
    }
  }

  measurement m;
  m.workload = "W4";
  m.system = system;
  m.params = o.make_params(1, per_stream, o.batch);
  m.params.extra["stored_events"] = o.events;
  m.params.extra["streams"] = o.streams;
  m.params.extra["reads"] = o.w4_reads;
  m.params.extra["repeat"] = o.repeat;
  m.events_per_s = best;
  m.p50_us = best_latency.p50_us;  // per stream read
  m.p99_us = best_latency.p99_us;
  return m;
}

measurement run_query_reads(const options& o, std::string_view system, std::uint64_t expected,
                            const query_reader& read) {
  // The rate of the median read of the best repetition: every read reads the
  // same events, so the median is the read's time and a read the scheduler
  // preempted (on a shared machine) does not move it; the mean rate is kept
  // as an extra.
  latency_summary best_latency;
  double best_mean = 0;
  for (std::uint32_t r = 0; r < o.repeat; ++r) {
    latency_recorder rec;
    rec.reserve(o.w9_reads);
    std::uint64_t total_ns = 0, events = 0;
    for (std::uint32_t i = 0; i < o.w9_reads; ++i) {
      const std::uint64_t start = now_ns();
      const std::uint64_t n = read();
      const std::uint64_t ns = now_ns() - start;
      if (n != expected)
        throw std::runtime_error("W9b: read " + std::to_string(n) + " events, expected " +
                                 std::to_string(expected));
      rec.add_ns(ns);
      total_ns += ns;
      events += n;
    }
    best_mean =
        std::max(best_mean, static_cast<double>(events) / (static_cast<double>(total_ns) / 1e9));
    const latency_summary l = rec.summarize();
    if (r == 0 || l.p50_us < best_latency.p50_us) best_latency = l;
  }

  measurement m;
  m.workload = "W9b";
  m.system = system;
  m.params = o.make_params(1, expected, o.batch);
  m.params.extra["stored_events"] = o.events;
  m.params.extra["reads"] = o.w9_reads;
  m.params.extra["repeat"] = o.repeat;
  m.events_per_s =
      best_latency.p50_us > 0 ? static_cast<double>(expected) / (best_latency.p50_us / 1e6) : 0;
  m.p50_us = best_latency.p50_us;  // per read of every rare event
  m.p99_us = best_latency.p99_us;
  m.extra["mean_events_per_s"] = best_mean;  // events / read time, best repetition
  return m;
}

}  // namespace varve::bench
