#include "common/latency.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace varve::bench {

void latency_recorder::merge(const latency_recorder& other) {
  samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
}

std::uint64_t percentile_sorted(const std::vector<std::uint64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<std::size_t>(std::ceil(q * n));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

latency_summary latency_recorder::summarize() {
  latency_summary s;
  if (samples_.empty()) return s;
  std::sort(samples_.begin(), samples_.end());
  s.count = samples_.size();
  s.p50_us = static_cast<double>(percentile_sorted(samples_, 0.50)) / 1e3;
  s.p99_us = static_cast<double>(percentile_sorted(samples_, 0.99)) / 1e3;
  s.max_us = static_cast<double>(samples_.back()) / 1e3;
  const long double sum = std::accumulate(samples_.begin(), samples_.end(), 0.0L);
  s.mean_us = static_cast<double>(sum / static_cast<long double>(samples_.size()) / 1e3L);
  return s;
}

}  // namespace varve::bench
