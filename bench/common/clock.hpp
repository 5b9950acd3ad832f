// Monotonic time for measurements.
#pragma once

#include <chrono>
#include <cstdint>

namespace varve::bench {

using steady = std::chrono::steady_clock;

/// Nanoseconds on the monotonic clock (an arbitrary origin, only differences mean anything).
inline std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
          .count());
}

/// Measures elapsed time from its construction (or the last restart()).
class stopwatch {
 public:
  stopwatch() noexcept : start_(now_ns()) {}
  void restart() noexcept { start_ = now_ns(); }
  std::uint64_t elapsed_ns() const noexcept { return now_ns() - start_; }
  double elapsed_s() const noexcept { return static_cast<double>(elapsed_ns()) / 1e9; }

 private:
  std::uint64_t start_;
};

}  // namespace varve::bench
