// lmdb-group: W2 on the lmdb-raw layout with ideal group commit in plain C++.
// Writer threads queue their append and wait; one committer thread takes every
// queued request, applies them in one write transaction, commits once (one
// fsync) and wakes each writer with its answer.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "baselines/lmdb_layout.hpp"
#include "common/concurrent.hpp"
#include "common/main.hpp"
#include "common/options.hpp"
#include "common/payload.hpp"
#include "common/record.hpp"
#include "common/tempdir.hpp"

namespace vb = varve::bench;
namespace lm = varve::bench::lmdb;

namespace {

constexpr const char* system_name = "lmdb-group";

class group_committer {
 public:
  enum class outcome : std::uint32_t { pending = 0, appended, conflict, failed };

  group_committer(lm::store& s, const vb::payloads& pl, std::uint32_t writers)
      : store_(s), payloads_(pl), slots_(writers) {
    queue_.reserve(writers);
    thread_ = std::thread([this] { run(); });
  }

  ~group_committer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  group_committer(const group_committer&) = delete;
  group_committer& operator=(const group_committer&) = delete;

  /// Writer `writer` appends one event to `stream` expecting `expected`;
  /// returns once it is durable (true) or refused for its version (false).
  bool append(std::uint32_t writer, std::string_view stream, std::uint64_t expected,
              std::uint64_t payload) {
    slot& s = slots_[writer];
    s.stream = stream;
    s.expected = expected;
    s.payload = payload;
    s.result.store(outcome::pending, std::memory_order_relaxed);
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(&s);
    }
    wake_.notify_one();
    // Slots live as long as the committer, so the committer may notify after
    // the writer has already seen its answer.
    s.result.wait(outcome::pending, std::memory_order_acquire);
    switch (s.result.load(std::memory_order_acquire)) {
      case outcome::appended:
        return true;
      case outcome::conflict:
        return false;
      default:
        throw std::runtime_error("group commit failed: " + error_message());
    }
  }

  std::uint64_t commits() const noexcept { return commits_.load(std::memory_order_relaxed); }
  std::uint64_t events() const noexcept { return events_.load(std::memory_order_relaxed); }

 private:
  struct alignas(64) slot {
    std::string_view stream;
    std::uint64_t expected = 0;
    std::uint64_t payload = 0;
    std::atomic<outcome> result{outcome::pending};
  };

  void run() {
    std::vector<slot*> batch;
    batch.reserve(slots_.size());
    std::vector<outcome> answers;
    answers.reserve(slots_.size());
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, nothing left
        batch.swap(queue_);
      }
      answers.assign(batch.size(), outcome::failed);
      if (!failed_) {
        try {
          lm::txn t(store_.env(), 0);
          lm::appender a(store_, t.get());
          std::uint64_t appended = 0;
          for (std::size_t i = 0; i < batch.size(); ++i) {
            slot& s = *batch[i];
            const bool ok = a.append(s.stream, s.expected, 1, payloads_, s.payload);
            answers[i] = ok ? outcome::appended : outcome::conflict;
            appended += ok ? 1 : 0;
          }
          t.commit();  // one fsync for the whole batch
          commits_.fetch_add(1, std::memory_order_relaxed);
          events_.fetch_add(appended, std::memory_order_relaxed);
        } catch (const std::exception& e) {
          std::lock_guard lock(error_mutex_);
          error_ = e.what();
          failed_ = true;
          answers.assign(batch.size(), outcome::failed);
        }
      }
      for (std::size_t i = 0; i < batch.size(); ++i) {
        batch[i]->result.store(answers[i], std::memory_order_release);
        batch[i]->result.notify_one();
      }
      batch.clear();
    }
  }

  std::string error_message() {
    std::lock_guard lock(error_mutex_);
    return error_;
  }

  lm::store& store_;
  const vb::payloads& payloads_;
  std::vector<slot> slots_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<slot*> queue_;
  bool stopping_ = false;

  bool failed_ = false;  // committer thread only
  std::mutex error_mutex_;
  std::string error_;

  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> events_{0};
  std::thread thread_;
};

void run_w2(const vb::options& o, const lm::store_config& cfg, vb::record_sink& out,
            std::uint32_t writers) {
  vb::temp_dir dir(o.dir);
  lm::store s(dir.path(), cfg);
  const vb::payloads pl(o.payload);
  vb::concurrent_result result;
  std::uint64_t commits = 0, committed = 0;
  {
    group_committer committer(s, pl, writers);
    std::uint64_t commits0 = 0, events0 = 0;
    auto config = o.w2_config(writers);
    config.on_window_start = [&] {
      commits0 = committer.commits();
      events0 = committer.events();
    };
    config.on_window_end = [&] {
      commits = committer.commits() - commits0;
      committed = committer.events() - events0;
    };
    result = vb::run_concurrent_appends(config, [&](std::uint32_t w) {
      return vb::append_fn([&committer, w, name = vb::stream_name("writer", w),
                            version = std::uint64_t{0}]() mutable {
        if (!committer.append(w, name, version, version + w))
          throw std::runtime_error("unexpected version conflict on " + name);
        ++version;
      });
    });
  }
  const std::uint64_t stored = lm::verify(s);

  vb::measurement m;
  m.workload = "W2";
  m.system = system_name;
  m.params = o.make_params(writers, result.events, 1);
  m.events_per_s = result.events_per_s();
  m.p50_us = result.latency.p50_us;
  m.p99_us = result.latency.p99_us;
  if (commits > 0)
    m.events_per_commit = static_cast<double>(committed) / static_cast<double>(commits);
  m.extra["seconds"] = result.seconds;
  m.extra["max_us"] = result.latency.max_us;
  m.extra["commits"] = commits;
  m.extra["stored_events"] = stored;
  out.write(m);
}

}  // namespace

int main(int argc, char** argv) {
  return vb::guarded_main([&] {
    CLI::App app{"lmdb-group: W2 on the lmdb-raw layout with ideal group commit"};
    vb::options o;
    vb::add_common_options(app, o);
    double map_gib = 8;
    app.add_option("--map-size-gib", map_gib, "LMDB map size")
        ->capture_default_str()
        ->check(CLI::Range(0.01, 1024.0));
    CLI11_PARSE(app, argc, argv);
    vb::finish(o);
    vb::raise_fd_limit();

    lm::store_config cfg;
    cfg.sync = o.sync();
    cfg.map_size = static_cast<std::uint64_t>(map_gib * 1024 * 1024 * 1024);
    vb::record_sink out(o.out);
    if (o.wants("W2"))
      for (std::uint32_t w : o.writers)
        run_w2(o, cfg, out, w);
    return 0;
  });
}
