// One piece of work at a time for an aggregate actor. Part of
// varve/actors/aggregate.hpp.
//
// While a command's append or a hydration is in flight, the requests that
// arrive (commands, stats, passivation) wait here in arrival order, and run
// once it is answered. The actor itself keeps taking messages: CAF's
// `await` would instead skip them in the mailbox and scan every skipped
// message again at each turn, which makes a burst of N commands cost
// O(N^2) (measured: a third of a benchmark's CPU time for bursts of 10k).
#pragma once

#include <deque>
#include <functional>
#include <utility>

namespace varve::detail {

class work_queue {
 public:
  /// A request that waits: `run` carries it out; `drop` answers it when the
  /// actor stops before it ran (nothing of it was applied).
  struct item {
    std::function<void()> run;
    std::function<void()> drop;
  };

  work_queue() = default;
  work_queue(const work_queue&) = delete;
  work_queue& operator=(const work_queue&) = delete;
  /// Takes the other queue's items and its busy flag, leaving it empty.
  work_queue(work_queue&& other) noexcept
      : items_(std::exchange(other.items_, {})),
        abandon_(std::exchange(other.abandon_, {})),
        busy_(std::exchange(other.busy_, false)) {}
  work_queue& operator=(work_queue&& other) noexcept {
    if (this != &other) {
      drop_all();
      items_ = std::exchange(other.items_, {});
      abandon_ = std::exchange(other.abandon_, {});
      busy_ = std::exchange(other.busy_, false);
    }
    return *this;
  }
  /// Answers what is left: the request in flight gets its `abandon` answer,
  /// each one waiting its `drop` answer.
  ~work_queue() { drop_all(); }

  /// True while work is in flight (between begin() and end()).
  bool busy() const { return busy_; }
  bool empty() const { return items_.empty(); }
  /// Work is in flight; `abandon` answers its requester if the actor stops
  /// before end() (it may or may not have taken effect).
  void begin(std::function<void()> abandon = {}) {
    busy_ = true;
    abandon_ = std::move(abandon);
  }
  void end() {
    busy_ = false;
    abandon_ = nullptr;
  }

  /// Runs `i` now when nothing is in flight, else queues it.
  void submit(item i) {
    if (busy_) {
      items_.push_back(std::move(i));
      return;
    }
    i.run();
  }
  /// Runs waiting items, in order, until one puts work in flight again.
  void run_waiting() {
    while (!busy_ && !items_.empty()) {
      item next = std::move(items_.front());
      items_.pop_front();
      next.run();
    }
  }
  /// Queues `i` behind what waits (it runs after it).
  void defer(item i) { items_.push_back(std::move(i)); }

 private:
  void drop_all() {
    if (auto abandon = std::exchange(abandon_, {})) abandon();
    auto items = std::exchange(items_, {});
    for (auto& i : items)
      if (i.drop) i.drop();
  }

  std::deque<item> items_;
  std::function<void()> abandon_;
  bool busy_ = false;
};

}  // namespace varve::detail
