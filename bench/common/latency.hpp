// Per-operation latency samples and their percentiles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace varve::bench {

struct latency_summary {
  std::uint64_t count = 0;
  double p50_us = 0;
  double p99_us = 0;
  double max_us = 0;
  double mean_us = 0;
};

/// Collects one sample (nanoseconds) per operation. Not thread-safe: give each
/// thread its own recorder and merge them afterwards.
class latency_recorder {
 public:
  void reserve(std::size_t n) { samples_.reserve(n); }
  void add_ns(std::uint64_t ns) { samples_.push_back(ns); }
  void merge(const latency_recorder& other);
  std::size_t count() const noexcept { return samples_.size(); }
  void clear() noexcept { samples_.clear(); }

  /// Percentiles by the nearest-rank method (p99 of 100 samples is the 99th
  /// smallest). Sorts the samples in place. All zero when there are none.
  latency_summary summarize();

 private:
  std::vector<std::uint64_t> samples_;
};

/// Nearest-rank percentile `q` (0 < q <= 1) of sorted samples, in nanoseconds.
std::uint64_t percentile_sorted(const std::vector<std::uint64_t>& sorted, double q);

}  // namespace varve::bench
