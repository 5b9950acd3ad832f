// Command-line options every benchmark program shares (CLI11).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/concurrent.hpp"
#include "common/record.hpp"

namespace varve::bench {

/// Every workload name the harness knows (BENCHMARKS.md). `--workloads` also
/// takes "W1" for W1a and W1b, "W9" for W9a..W9d, and "all". A program runs the ones it implements.
inline const std::vector<std::string> known_workloads = {
    "W1a", "W1b", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9a", "W9b", "W9c", "W9d"};

struct options {
  std::vector<std::string> workloads;  ///< empty: every workload the program implements
  std::string out;                     ///< JSONL file to append to; "" or "-": stdout
  std::string dir;                     ///< parent of the temporary directories
  std::uint64_t events = 1'000'000;    ///< W1, W3, W4: events written
  std::uint32_t batch = 1000;          ///< W1, and W3/W4 set-up: events per transaction
  std::uint32_t streams = 1000;        ///< W1b and W4: streams written round-robin
  std::vector<std::uint32_t> writers = {1, 16, 64, 256, 1024};  ///< W2 writer counts
  double w2_seconds = 3.0;                 ///< W2: measured window per writer count
  double w2_warmup_seconds = 0.5;          ///< W2: appends before the window, not counted
  std::uint64_t w2_events_per_writer = 0;  ///< W2: > 0 runs a fixed count instead
  std::uint32_t payload = 100;             ///< payload bytes
  bool no_sync = false;                    ///< no fsync at commit
  std::uint32_t repeat = 3;                ///< W3, W4: repetitions, the best is reported
  std::uint32_t w4_reads = 200;            ///< W4: stream reads per repetition
  std::uint32_t w9_reads = 100;            ///< W9b: query reads per repetition
  std::uint32_t w9_writers = 64;           ///< W9a (its W2 part), W9c: writers / clients

  bool sync() const noexcept { return !no_sync; }
  /// True when `workload` was asked for (or no list was given).
  bool wants(std::string_view workload) const;
  /// The `params` of a record with the common fields filled in.
  struct params make_params(std::uint32_t writers, std::uint64_t events, std::uint32_t batch) const;
  /// The W2 driver's configuration for `writers` writers.
  concurrent_config w2_config(std::uint32_t writers) const;
};

/// Adds the shared options to `app` (see bench/README.md). Call finish() after
/// parsing.
void add_common_options(CLI::App& app, options& o);

/// Expands "W1" and "all" in the workload list.
void finish(options& o);

}  // namespace varve::bench
