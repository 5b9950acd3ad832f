#include "common/concurrent.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/clock.hpp"

namespace varve::bench {

namespace {

std::uint64_t to_ns(double seconds) {
  return static_cast<std::uint64_t>(seconds * 1e9);
}

void sleep_until_ns(std::uint64_t deadline, const std::atomic<bool>& stop) {
  for (;;) {
    const std::uint64_t now = now_ns();
    if (now >= deadline || stop.load(std::memory_order_relaxed)) return;
    // Wake up at least every 50 ms to notice a failed writer.
    std::this_thread::sleep_for(
        std::chrono::nanoseconds(std::min<std::uint64_t>(deadline - now, 50'000'000)));
  }
}

}  // namespace

concurrent_result run_concurrent_appends(const concurrent_config& cfg,
                                         const writer_factory& make_writer) {
  if (cfg.writers == 0) throw std::invalid_argument("run_concurrent_appends: no writers");
  const std::uint32_t n = cfg.writers;
  const bool timed = cfg.events_per_writer == 0;

  std::latch ready(n);
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::uint64_t start = 0, window_start = 0, window_end = 0;  // published by `go`
  std::mutex error_mutex;
  std::exception_ptr first_error;
  std::vector<latency_recorder> recorders(n);
  std::vector<std::uint64_t> counts(n, 0);  // appends completed in the window
  std::vector<std::uint64_t> last_completion(n, 0);

  auto fail = [&](std::exception_ptr e) {
    {
      std::lock_guard lock(error_mutex);
      if (!first_error) first_error = std::move(e);
    }
    stop.store(true);
  };

  auto writer = [&](std::uint32_t index) {
    append_fn append;
    try {
      append = make_writer(index);
    } catch (...) {
      fail(std::current_exception());
    }
    ready.count_down();
    go.wait(false, std::memory_order_acquire);
    if (append && !stop.load()) {
      latency_recorder& rec = recorders[index];
      std::uint64_t& counted = counts[index];
      if (!timed) rec.reserve(cfg.events_per_writer);
      try {
        for (std::uint64_t k = 0; !stop.load(std::memory_order_relaxed); ++k) {
          if (!timed && k == cfg.events_per_writer) break;
          const std::uint64_t s = now_ns();
          append();
          const std::uint64_t e = now_ns();
          if (timed) {
            if (e > window_end) {
              // In flight when the window closed: not counted as throughput, but
              // its latency is, so that a writer starved past the window still
              // shows in the percentiles.
              if (s < window_end) rec.add_ns(e - s);
              break;
            }
            if (e >= window_start) {
              rec.add_ns(e - s);
              ++counted;
            }
          } else {
            rec.add_ns(e - s);
            ++counted;
          }
          last_completion[index] = e;
        }
      } catch (...) {
        fail(std::current_exception());
      }
    }
    try {
      append = nullptr;  // close the writer's resources on its own thread
    } catch (...) {
      fail(std::current_exception());
    }
  };

  std::vector<std::thread> threads;
  threads.reserve(n);
  try {
    for (std::uint32_t i = 0; i < n; ++i)
      threads.emplace_back(writer, i);
  } catch (...) {
    // Could not start every thread: let the started ones through and stop them.
    fail(std::current_exception());
    for (std::size_t i = threads.size(); i < n; ++i)
      ready.count_down();
  }
  ready.wait();

  start = now_ns();
  window_start = timed ? start + to_ns(cfg.warmup_seconds) : start;
  window_end = timed ? window_start + to_ns(cfg.seconds) : UINT64_MAX;
  go.store(true, std::memory_order_release);
  go.notify_all();

  try {  // the writers must be joined whatever happens here
    if (timed) {
      sleep_until_ns(window_start, stop);
      if (cfg.on_window_start && !stop.load()) cfg.on_window_start();
      sleep_until_ns(window_end, stop);
      if (cfg.on_window_end && !stop.load()) cfg.on_window_end();
    } else if (cfg.on_window_start) {
      cfg.on_window_start();
    }
  } catch (...) {
    fail(std::current_exception());
  }
  for (auto& t : threads)
    t.join();
  if (!timed && cfg.on_window_end && !stop.load()) cfg.on_window_end();
  if (first_error) std::rethrow_exception(first_error);

  latency_recorder all;
  std::size_t total = 0;
  for (const auto& r : recorders)
    total += r.count();
  all.reserve(total);
  for (const auto& r : recorders)
    all.merge(r);

  concurrent_result result;
  for (auto c : counts)
    result.events += c;
  if (timed) {
    result.seconds = cfg.seconds;
  } else {
    const std::uint64_t last = *std::max_element(last_completion.begin(), last_completion.end());
    result.seconds = last > start ? static_cast<double>(last - start) / 1e9 : 0;
  }
  result.latency = all.summarize();
  return result;
}

}  // namespace varve::bench
