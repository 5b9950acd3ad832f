// One JSON object per measurement, one per line (JSONL), as BENCHMARKS.md asks.
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace varve::bench {

/// The `params` object of a record.
struct params {
  std::uint32_t writers = 1;    ///< concurrent writers (1 for single-threaded workloads)
  std::uint64_t events = 0;     ///< events measured (written or read)
  std::uint32_t batch = 1;      ///< events per transaction (1 for W2)
  std::uint32_t payload = 100;  ///< payload bytes per event
  bool sync = true;             ///< durable fsync at every commit
  bool encrypted = false;
  /// Further parameters of a workload (e.g. "streams"), merged into `params`.
  nlohmann::json extra = nlohmann::json::object();
};

/// One measurement. Optional fields are left out of the record when empty.
struct measurement {
  std::string workload;  ///< "W1a", "W1b", "W2", "W3", "W4", ...
  std::string system;    ///< "lmdb-raw", "lmdb-group", "sqlite", "postgres", "varve"
  struct params params;
  double events_per_s = 0;
  std::optional<double> p50_us;
  std::optional<double> p99_us;
  std::optional<double> events_per_commit;
  /// Further fields (e.g. "seconds", "commits"), merged at the top level.
  nlohmann::json extra = nlohmann::json::object();
};

nlohmann::json to_json(const measurement& m);

/// Appends records to a JSONL file (or stdout for "" / "-"), one flushed line
/// each, and prints a one-line human summary of each to stderr.
class record_sink {
 public:
  explicit record_sink(const std::string& path);
  void write(const measurement& m);

 private:
  std::ofstream file_;
  bool to_stdout_;
};

}  // namespace varve::bench
