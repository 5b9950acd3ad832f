#include "common/stream_reads.hpp"

#include <stdexcept>

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

}  // namespace varve::bench
