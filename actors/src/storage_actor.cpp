// The storage actor: group commit over event_store::write.
#include "varve/actors/storage_actor.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/response_promise.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>
#include <variant>

#include "varve/actors/error.hpp"

namespace varve {

namespace {

/// The most recent samples of a latency, for percentiles.
class latency_window {
 public:
  void add(std::uint64_t us) {
    if (samples_.size() < capacity) {
      samples_.push_back(us);
    } else {
      samples_[next_] = us;
      next_ = (next_ + 1) % capacity;
    }
  }
  std::uint64_t percentile(double p) const {
    if (samples_.empty()) return 0;
    std::vector<std::uint64_t> sorted = samples_;
    auto at = sorted.begin() + static_cast<std::ptrdiff_t>(p * (sorted.size() - 1));
    std::nth_element(sorted.begin(), at, sorted.end());
    return *at;
  }

 private:
  static constexpr std::size_t capacity = 4096;
  std::vector<std::uint64_t> samples_;
  std::size_t next_ = 0;
};

/// What a requester is owed: the result of one stream, or of all.
enum class answer_kind { single, all };

/// Who waits for a queued request, and for what.
struct pending_answer {
  caf::response_promise promise;
  answer_kind answer;
};

/// The requests of one commit and their requesters, index by index. Two of
/// them take turns (one fills while the other commits) and keep their
/// capacity, so that a batch costs no allocation of its own.
struct request_batch {
  std::vector<write_request> requests;
  std::vector<pending_answer> answers;

  bool empty() const { return requests.empty(); }
  std::size_t size() const { return requests.size(); }
  void clear() {
    requests.clear();
    answers.clear();
  }
  void swap(request_batch& o) noexcept {
    requests.swap(o.requests);
    answers.swap(o.answers);
  }
};

struct storage_state {
  static inline const char* name = "varve.storage";

  std::shared_ptr<event_store> store;
  storage_config cfg;

  request_batch batch;
  request_batch committing;  // the batch flush() commits; empty between flushes
  std::size_t batch_events = 0;
  std::size_t batch_bytes = 0;
  bool flush_scheduled = false;
  // Group commit: how many requests the last commit answered, and since when
  // the flush has been waiting for them to come back (see wait_for_more).
  std::size_t last_requests = 0;
  bool batch_has_condition = false;  // a request of the batch has an append condition
  std::optional<std::chrono::steady_clock::time_point> waiting_since;

  std::vector<head_subscriber> subscribers;

  commit_stats stats;
  latency_window commit_latency;
  latency_window fsync_latency;
};

using storage_pointer = storage_actor::stateful_pointer<storage_state>;

std::size_t request_events(const write_request& r) {
  std::size_t n = 0;
  for (const auto& a : r.appends)
    n += a.events.size();
  return n;
}

std::size_t request_bytes(const write_request& r) {
  std::size_t n = 0;
  for (const auto& a : r.appends)
    for (const auto& e : a.events)
      n += e.payload.size() + e.metadata.size() + e.type.size();
  for (const auto& v : r.views)
    n += v.key.size() + v.value.size();
  for (const auto& s : r.snapshots)
    n += s.bytes.size();
  return n;
}

std::size_t bucket_of(std::size_t n) {
  std::size_t b = 0;
  while (n > 1)
    n >>= 1, ++b;
  return b;
}

/// Commits everything gathered so far and answers each requester.
void flush(storage_pointer self) {
  auto& st = self->state;
  if (st.batch.empty()) return;
  request_batch& batch = st.committing;
  batch.swap(st.batch);
  st.last_requests = batch.size();
  st.waiting_since.reset();
  st.batch_has_condition = false;
  st.batch_events = 0;
  st.batch_bytes = 0;
  struct done_with_batch {
    request_batch& b;
    ~done_with_batch() { b.clear(); }
  } done{batch};

  const auto started = std::chrono::steady_clock::now();
  write_timing timing;
  auto outcomes = st.store->write(batch.requests, &timing);
  const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();

  st.stats.requests += batch.size();
  if (!outcomes) {
    const caf::error err = to_caf(outcomes.err());
    for (auto& a : batch.answers)
      a.promise.deliver(err);
    st.stats.failed = st.store->failed();
    return;
  }
  std::uint64_t head = 0, events = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    write_outcome& o = (*outcomes)[i];
    pending_answer& a = batch.answers[i];
    if (!o) {
      a.promise.deliver(to_caf(o.err()));
      continue;
    }
    for (const append_result& r : *o) {
      if (r.idempotent) continue;
      head = std::max(head, r.last_position);
      events += r.last_position - r.first_position + 1;
    }
    if (a.answer == answer_kind::single)
      a.promise.deliver(o->front());
    else
      a.promise.deliver(std::move(*o));
  }
  ++st.stats.commits;
  st.stats.events += events;
  auto bucket = bucket_of(batch.size());
  if (st.stats.batch_histogram.size() <= bucket) st.stats.batch_histogram.resize(bucket + 1);
  ++st.stats.batch_histogram[bucket];
  st.commit_latency.add(static_cast<std::uint64_t>(took));
  st.fsync_latency.add(timing.commit_ns / 1000);
  if (head > st.stats.head) {
    st.stats.head = head;
    for (const head_subscriber& sub : st.subscribers)
      caf::anon_send(sub, committed_atom_v, head);
  }
}

/// Queues a request for the next commit.
caf::response_promise enqueue(storage_pointer self, write_request&& request, answer_kind answer) {
  auto& st = self->state;
  auto promise = self->make_response_promise();
  const std::size_t events = request_events(request);
  const std::size_t bytes = request_bytes(request);
  // A request that would take the batch past a bound goes into the next one.
  if (!st.batch.empty() && (st.batch_events + events > st.cfg.max_batch_events ||
                            st.batch_bytes + bytes > st.cfg.max_batch_bytes))
    flush(self);
  st.batch_events += events;
  st.batch_bytes += bytes;
  st.batch_has_condition = st.batch_has_condition || request.condition.has_value();
  st.batch.requests.push_back(std::move(request));
  st.batch.answers.push_back(pending_answer{promise, answer});
  if (st.batch_events >= st.cfg.max_batch_events || st.batch_bytes >= st.cfg.max_batch_bytes) {
    flush(self);
  } else if (!st.flush_scheduled) {
    st.flush_scheduled = true;
    self->send(self, flush_atom_v);
  }
  return promise;
}

/// True when the flush should wait for more requests: fewer have come than
/// the last commit answered (its requesters are still sending their next
/// ones), and the wait began less than `max_wait` ago. The flush then goes
/// to the back of the mailbox again, behind the requests that came
/// meanwhile. A batch with an append condition commits
/// at once: a decision read what was committed, and every microsecond its
/// append waits is one in which another decision over the same boundary
/// can commit first and make it conflict.
bool wait_for_more(storage_state& st) {
  // (An empty batch: a bound already flushed it; nothing to wait for.)
  if (st.cfg.max_wait.count() <= 0 || st.batch.empty() || st.batch_has_condition ||
      st.batch.size() >= st.last_requests)
    return false;
  const auto now = std::chrono::steady_clock::now();
  if (!st.waiting_since) st.waiting_since = now;
  return now - *st.waiting_since < st.cfg.max_wait;
}

global_position current_head(const event_store& store) {
  auto txn = store.read();
  return txn ? txn->head() : 0;
}

storage_actor::behavior_type storage_behavior(storage_pointer self,
                                              std::shared_ptr<event_store> store,
                                              storage_config cfg) {
  self->state.store = std::move(store);
  self->state.cfg = cfg;
  self->state.stats.head = current_head(*self->state.store);
  self->state.stats.failed = self->state.store->failed();
  self->set_exit_handler([self](caf::exit_msg& msg) {
    flush(self);  // nothing acknowledged is dropped at shutdown
    self->quit(msg.reason);
  });
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& subs = self->state.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const head_subscriber& a) { return a.address() == msg.source; }),
               subs.end());
  });
  return {
      [self](append_atom, append_request& r) -> caf::result<append_result> {
        write_request w;
        w.appends.push_back(std::move(r));
        return enqueue(self, std::move(w), answer_kind::single);
      },
      [self](append_atom,
             std::vector<append_request>& rs) -> caf::result<std::vector<append_result>> {
        write_request w;
        w.appends = std::move(rs);
        return enqueue(self, std::move(w), answer_kind::all);
      },
      [self](write_atom, write_request& w) -> caf::result<std::vector<append_result>> {
        return enqueue(self, std::move(w), answer_kind::all);
      },
      [self](read_atom, const std::string& stream, std::uint64_t from, bool backward,
             std::uint64_t limit) -> caf::result<std::vector<recorded_event>> {
        auto events = self->state.store->read_stream(
            stream, from, backward ? direction::backward : direction::forward, limit);
        if (!events) return to_caf(events.err());
        return std::move(*events);
      },
      [self](read_log_atom, std::uint64_t from, bool backward,
             std::uint64_t limit) -> caf::result<std::vector<recorded_event>> {
        auto events = self->state.store->read_log(
            from, backward ? direction::backward : direction::forward, limit);
        if (!events) return to_caf(events.err());
        return std::move(*events);
      },
      [self](subscribe_atom, const head_subscriber& subscriber) -> std::uint64_t {
        self->monitor(subscriber);
        self->state.subscribers.push_back(subscriber);
        return self->state.stats.head;
      },
      [self](unsubscribe_atom, const head_subscriber& subscriber) {
        auto& subs = self->state.subscribers;
        subs.erase(std::remove(subs.begin(), subs.end(), subscriber), subs.end());
        self->demonitor(subscriber.address());
      },
      [self](shred_atom, const std::string& stream) -> caf::result<std::uint64_t> {
        flush(self);  // requests that came before it are committed first
        auto& store = *self->state.store;
        if (auto r = store.shred(stream); !r) return to_caf(r.err());
        auto txn = store.read();
        if (!txn) return to_caf(txn.err());
        auto info = txn->stream(stream);
        if (!info) return to_caf(info.err());
        return *info ? (*info)->version : 0;
      },
      [self](stats_atom) -> commit_stats {
        flush(self);  // the figures include every request that came before
        auto& st = self->state;
        commit_stats out = st.stats;
        out.commit_p50_us = st.commit_latency.percentile(0.5);
        out.commit_p99_us = st.commit_latency.percentile(0.99);
        out.fsync_p50_us = st.fsync_latency.percentile(0.5);
        out.fsync_p99_us = st.fsync_latency.percentile(0.99);
        out.failed = st.store->failed();
        return out;
      },
      [self](flush_atom) {
        if (wait_for_more(self->state)) {
          // Lets the writers' threads run on this core meanwhile.
          std::this_thread::yield();
          self->send(self, flush_atom_v);
          return;
        }
        self->state.flush_scheduled = false;
        flush(self);
      },
  };
}

}  // namespace

storage_actor spawn_storage(caf::actor_system& sys, std::shared_ptr<event_store> store,
                            storage_config cfg) {
  return sys.spawn<caf::detached>(storage_behavior, std::move(store), cfg);
}

}  // namespace varve
