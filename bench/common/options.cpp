#include "common/options.hpp"

#include <algorithm>

namespace varve::bench {

bool options::wants(std::string_view workload) const {
  return workloads.empty() ||
         std::find(workloads.begin(), workloads.end(), workload) != workloads.end();
}

struct params options::make_params(std::uint32_t w, std::uint64_t e, std::uint32_t b) const {
  struct params p;
  p.writers = w;
  p.events = e;
  p.batch = b;
  p.payload = payload;
  p.sync = sync();
  p.encrypted = false;
  return p;
}

concurrent_config options::w2_config(std::uint32_t w) const {
  concurrent_config c;
  c.writers = w;
  c.seconds = w2_seconds;
  c.warmup_seconds = w2_warmup_seconds;
  c.events_per_writer = w2_events_per_writer;
  return c;
}

void add_common_options(CLI::App& app, options& o) {
  std::vector<std::string> accepted = known_workloads;
  accepted.push_back("W1");
  accepted.push_back("W9");
  accepted.push_back("all");

  app.add_option(
         "-w,--workloads", o.workloads,
         "Workloads to run, comma-separated (W1 = W1a,W1b; W9 = W9a..W9d; all). Default: every "
         "workload this program implements")
      ->delimiter(',')
      ->check(CLI::IsMember(accepted));
  app.add_option("-o,--out", o.out, "Append JSONL records to this file (default: stdout)");
  app.add_option("--dir", o.dir, "Parent directory of the temporary stores (default: $TMPDIR)");
  app.add_option("--events", o.events, "W1/W3/W4: events written")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  app.add_option("--batch", o.batch, "W1 (and W3/W4 set-up): events per transaction")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10'000'000u));
  app.add_option("--streams", o.streams, "W1b/W4: streams written round-robin")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10'000'000u));
  app.add_option("--writers", o.writers, "W2: writer counts, comma-separated")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::Range(1u, 100'000u));
  app.add_option("--w2-seconds", o.w2_seconds, "W2: measured window per writer count")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 3600.0));
  app.add_option("--w2-warmup", o.w2_warmup_seconds,
                 "W2: seconds of appends before the window, not counted")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--w2-events-per-writer", o.w2_events_per_writer,
                 "W2: run this many appends per writer instead of a timed window (0: timed)")
      ->capture_default_str();
  app.add_option("--payload", o.payload, "Payload bytes per event")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1u << 20));
  app.add_flag("--no-sync", o.no_sync, "Do not fsync at every commit");
  app.add_option("--repeat", o.repeat, "W3/W4: repetitions (the best is reported)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000u));
  app.add_option("--w4-reads", o.w4_reads, "W4: stream reads per repetition")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10'000'000u));
  app.add_option("--w9-reads", o.w9_reads, "W9b: query reads per repetition")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10'000'000u));
  app.add_option("--w9-writers", o.w9_writers,
                 "W9a (its W2 part) and W9c: concurrent writers / deciding clients")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100'000u));
}

void finish(options& o) {
  std::vector<std::string> expanded;
  for (const auto& w : o.workloads) {
    if (w == "all") {
      expanded.clear();
      o.workloads.clear();
      return;
    }
    if (w == "W1") {
      expanded.push_back("W1a");
      expanded.push_back("W1b");
    } else if (w == "W9") {
      for (const char* x : {"W9a", "W9b", "W9c", "W9d"})
        expanded.push_back(x);
    } else {
      expanded.push_back(w);
    }
  }
  o.workloads = std::move(expanded);
}

}  // namespace varve::bench
