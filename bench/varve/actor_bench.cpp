// varve, actor path: W2 (concurrent single-event appends through the storage
// actor: N event-based writer actors, each to its own stream with its exact
// expected version, each waiting for its answer before the next), W5
// (aggregate rehydration of a 10k-event stream, without and with snapshots),
// W9a (W2 with two tags per event) and W9c (DCB decisions: a query read,
// then an append under the condition that nothing matching came after it).
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <varve/actors/aggregate.hpp>
#include <varve/actors/binary_codec.hpp>
#include <varve/actors/decider.hpp>
#include <vector>

#include "actor_config.hpp"
#include "common/clock.hpp"
#include "common/latency.hpp"
#include "common/main.hpp"
#include "common/options.hpp"
#include "common/payload.hpp"
#include "common/record.hpp"
#include "common/tempdir.hpp"
#include "store_setup.hpp"

namespace vb = varve::bench;
namespace vv = varve::bench::vv;

// ------------------------------------------------------------------ W5's aggregate

namespace counter {

/// The one event: an amount, padded to the run's payload size when stored.
struct incremented {
  static constexpr std::string_view type_name = "incremented";
  std::int64_t amount = 0;
  std::string pad;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, incremented& x) {
  return f(caf::meta::type_name("incremented"), x.amount, x.pad);
}

struct increment {
  std::int64_t amount = 1;
  std::string pad;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, increment& x) {
  return f(caf::meta::type_name("increment"), x.amount, x.pad);
}

struct state {
  std::int64_t total = 0;
  std::uint64_t count = 0;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state& x) {
  return f(caf::meta::type_name("counter_state"), x.total, x.count);
}

VARVE_JSON(incremented, amount, pad)
VARVE_JSON(state, total, count)

/// A counter: the smallest aggregate that folds every event, its events
/// stored with `Codec`: CAF's binary form (W5a, W5b, as when W5's figures
/// were first taken) or JSON, the default codec (W5c). Snapshots are JSON.
template <class Codec>
struct basic_aggregate {
  static constexpr std::string_view category = "counter";
  static constexpr std::uint32_t snapshot_schema = 1;
  using state = counter::state;
  using event = incremented;
  using command = increment;
  using codec = Codec;
  static void apply(state& s, const event& e) {
    s.total += e.amount;
    ++s.count;
  }
  static varve::decision<event> decide(const state&, const command& c) {
    return std::vector<event>{incremented{c.amount, c.pad}};
  }
};
using aggregate = basic_aggregate<varve::binary_codec<incremented>>;
using json_aggregate = basic_aggregate<varve::json_codec<incremented>>;

}  // namespace counter

// ------------------------------------------------------------------ W9c's decision model

namespace dcb {

/// W9c-decider's event: a subscription, stored as JSON (the default codec),
/// padded to about the run's payload size.
struct student_subscribed {
  static constexpr std::string_view type_name = "student-subscribed";
  std::string course;
  std::string student;
  std::string pad;
};
VARVE_JSON(student_subscribed, course, student, pad)

struct subscribe {
  std::string course;   ///< its tag, "course:<n>"
  std::string student;  ///< its tag, "student:<n>"
  std::string stream;   ///< the deciding client's stream
  std::string pad;
};

/// The same decision as W9c's storage-actor clients make: read the events
/// tagged with the course or the student, count, subscribe (no capacity
/// rule: every decision appends).
struct subscription {
  using event = student_subscribed;
  using command = subscribe;
  struct state {
    std::string course, student;
    std::uint64_t course_students = 0, student_courses = 0;
  };
  static varve::query boundary(const command& c) {
    return varve::query{
        {varve::query_item{{}, {c.course}, {}}, varve::query_item{{}, {c.student}, {}}}};
  }
  static state initial(const command& c) { return {c.course, c.student}; }
  static void apply(state& s, const event& e) {
    if (e.course == s.course) ++s.course_students;
    if (e.student == s.student) ++s.student_courses;
  }
  static varve::dcb_decision<event> decide(const state&, const command& c) {
    return std::vector<varve::tagged_event<event>>{
        {c.stream, student_subscribed{c.course, c.student, c.pad}, {c.course, c.student}}};
  }
};

}  // namespace dcb

namespace {

// ------------------------------------------------------------------ W2

/// One W2 point: what the writer actors share with the driving thread. The
/// clock fields are set before the writers start; each writer writes only its
/// own slots; the driving thread reads them after every writer has finished.
struct w2_run {
  bool timed = true;
  std::uint64_t per_writer = 0;  // fixed mode
  std::uint64_t start = 0, window_start = 0, window_end = UINT64_MAX;

  std::vector<vb::latency_recorder> recorders;
  std::vector<std::uint64_t> counts, versions, last_completion;
  // W9c: conflicts (answers inside the window) and events read, per client.
  std::vector<std::uint64_t> retries, attempts, events_read;
  std::atomic<bool> stop{false};

  std::mutex mutex;
  std::condition_variable cv;
  std::uint32_t finished = 0;
  std::string error;

  void fail(std::string why) {
    std::lock_guard lock(mutex);
    if (error.empty()) error = std::move(why);
    stop.store(true);
  }
  void finish() {
    std::lock_guard lock(mutex);
    ++finished;
    cv.notify_all();
  }
};

struct writer {
  w2_run* run;
  std::uint32_t index;
  std::string stream;
  std::uint64_t version = 0;
  varve::storage_actor storage;
  const vb::payloads* pl;
  const vb::tag_pool* tags = nullptr;  // W9a: two tags per event
  std::uint32_t writers = 1;
};

void writer_done(caf::event_based_actor* self, const std::shared_ptr<writer>& w) {
  w->run->versions[w->index] = w->version;
  w->run->finish();
  self->quit();
}

/// One append, timed like common/concurrent.cpp's driver times a writer's
/// append() call; the next one starts from its answer.
void append_next(caf::event_based_actor* self, std::shared_ptr<writer> w) {
  const std::uint64_t s = vb::now_ns();
  varve::append_request req{w->stream,
                            varve::expected_version::exact(w->version),
                            {varve::new_event{std::string(vb::event_type),
                                              std::string((*w->pl)[w->version + w->index])}}};
  if (w->tags) {
    const std::uint64_t n = w->version * w->writers + w->index;
    req.events[0].tags = {std::string(w->tags->course(n)), std::string(w->tags->student(n))};
  }
  self->request(w->storage, caf::infinite, varve::append_atom_v, std::move(req))
      .then(
          [self, w, s](const varve::append_result& r) {
            const std::uint64_t e = vb::now_ns();
            w2_run& run = *w->run;
            if (r.last_version != w->version + 1) {
              run.fail("append to " + w->stream + ": landed at version " +
                       std::to_string(r.last_version));
              return writer_done(self, w);
            }
            ++w->version;
            vb::latency_recorder& rec = run.recorders[w->index];
            if (run.timed) {
              if (e > run.window_end) {
                // In flight when the window closed: its latency counts, not its event.
                if (s < run.window_end) rec.add_ns(e - s);
                return writer_done(self, w);
              }
              if (e >= run.window_start) {
                rec.add_ns(e - s);
                ++run.counts[w->index];
              }
            } else {
              rec.add_ns(e - s);
              ++run.counts[w->index];
            }
            run.last_completion[w->index] = e;
            if (run.stop.load(std::memory_order_relaxed) ||
                (!run.timed && w->version == run.per_writer))
              return writer_done(self, w);
            append_next(self, w);
          },
          [self, w](caf::error& err) {
            w->run->fail("append to " + w->stream + ": " + varve::error_from(err).to_string());
            writer_done(self, w);
          });
}

void sleep_until(std::uint64_t deadline, const std::atomic<bool>& stop) {
  for (;;) {
    const std::uint64_t now = vb::now_ns();
    if (now >= deadline || stop.load()) return;
    std::this_thread::sleep_for(
        std::chrono::nanoseconds(std::min<std::uint64_t>(deadline - now, 50'000'000)));
  }
}

/// One W2 point. `reference_for` names the ratio a reference run is for
/// ("W9a", "W9c"); `tags` gives every event two tags (W9a).
void run_w2(const vb::options& o, const vv::store_settings& ss, vb::record_sink& out,
            std::uint32_t writers, const char* reference_for = nullptr,
            const vb::tag_pool* tags = nullptr) {
  vb::temp_dir dir(o.dir);
  auto store = vv::open_store(vv::store_options(dir / "store", ss, o.sync()));
  const vb::payloads pl(o.payload);
  const auto cfg = o.w2_config(writers);

  w2_run run;
  run.timed = cfg.events_per_writer == 0;
  run.per_writer = cfg.events_per_writer;
  run.recorders.resize(writers);
  run.counts.assign(writers, 0);
  run.versions.assign(writers, 0);
  run.last_completion.assign(writers, 0);
  varve::commit_stats at_start, at_end;
  {
    vv::actor_config acfg;
    caf::actor_system sys{acfg};
    auto storage = varve::spawn_storage(sys, store);
    caf::scoped_actor self{sys};
    std::vector<std::shared_ptr<writer>> ws;
    ws.reserve(writers);
    for (std::uint32_t i = 0; i < writers; ++i)
      ws.push_back(std::make_shared<writer>(
          writer{&run, i, vb::stream_name("writer", i), 0, storage, &pl, tags, writers}));

    run.start = vb::now_ns();
    run.window_start =
        run.timed ? run.start + static_cast<std::uint64_t>(cfg.warmup_seconds * 1e9) : run.start;
    run.window_end =
        run.timed ? run.window_start + static_cast<std::uint64_t>(cfg.seconds * 1e9) : UINT64_MAX;
    if (!run.timed) at_start = vv::ask<varve::commit_stats>(self, storage, varve::stats_atom_v);
    for (auto& w : ws)
      sys.spawn([w](caf::event_based_actor* a) -> caf::behavior {
        append_next(a, w);
        return {[](int) {}};  // answers arrive through the request's handlers
      });
    if (run.timed) {
      sleep_until(run.window_start, run.stop);
      at_start = vv::ask<varve::commit_stats>(self, storage, varve::stats_atom_v);
      sleep_until(run.window_end, run.stop);
      at_end = vv::ask<varve::commit_stats>(self, storage, varve::stats_atom_v);
    }
    {
      std::unique_lock lock(run.mutex);
      run.cv.wait(lock, [&] { return run.finished == writers; });
    }
    if (!run.timed) at_end = vv::ask<varve::commit_stats>(self, storage, varve::stats_atom_v);
    self->send_exit(storage, caf::exit_reason::user_shutdown);
    self->wait_for(storage);
  }
  if (!run.error.empty()) throw std::runtime_error("W2: " + run.error);

  // Every writer's stream holds exactly its appends.
  std::uint64_t stored = 0;
  {
    auto txn = vv::must(store->read(), "read");
    for (std::uint32_t i = 0; i < writers; ++i) {
      auto info = vv::must(txn.stream(vb::stream_name("writer", i)), "stream");
      if (!info || (*info).version != run.versions[i])
        throw std::runtime_error("W2: writer " + std::to_string(i) + " stream version mismatch");
      stored += run.versions[i];
    }
  }
  vv::verify_store(*store, stored);

  vb::latency_recorder all;
  std::uint64_t events = 0;
  for (std::uint32_t i = 0; i < writers; ++i) {
    all.merge(run.recorders[i]);
    events += run.counts[i];
  }
  double seconds = cfg.seconds;
  if (!run.timed) {
    const std::uint64_t last =
        *std::max_element(run.last_completion.begin(), run.last_completion.end());
    seconds = static_cast<double>(last - run.start) / 1e9;
  }
  const vb::latency_summary lat = all.summarize();
  const std::uint64_t commits = at_end.commits - at_start.commits;
  const std::uint64_t committed = at_end.events - at_start.events;

  vb::measurement m;
  m.workload = "W2";
  m.system = vv::system_name;
  m.params = o.make_params(writers, events, 1);
  if (reference_for) m.params.extra["reference_for"] = reference_for;
  if (tags) m.params.extra["tags"] = 2;
  m.events_per_s = seconds > 0 ? static_cast<double>(events) / seconds : 0;
  m.p50_us = lat.p50_us;
  m.p99_us = lat.p99_us;
  if (commits > 0)
    m.events_per_commit = static_cast<double>(committed) / static_cast<double>(commits);
  m.extra["seconds"] = seconds;
  m.extra["max_us"] = lat.max_us;
  m.extra["commits"] = commits;
  m.extra["stored_events"] = stored;
  m.extra["commit_p50_us"] = at_end.commit_p50_us;  // storage actor: apply + commit, recent
  m.extra["fsync_p50_us"] = at_end.fsync_p50_us;
  m.extra["fsync_p99_us"] = at_end.fsync_p99_us;
  out.write(m);
}

// ------------------------------------------------------------------ W9c

/// The type of W9c's events.
constexpr std::string_view subscribed_type = "student-subscribed";

/// One deciding client of W9c (the DCB course example): each decision picks
/// a course and a student, reads every event tagged with either (zero copy,
/// in a read transaction of its own on the store, as an in-process decision
/// would), then sends the storage actor a write_request appending one
/// subscription tagged with both, under the condition "fail if an event
/// tagged with either came after the head I read". A conflict is retried
/// from the read. Clients append to streams of their own (exact versions),
/// so every conflict is the condition's.
struct client {
  w2_run* run;
  std::uint32_t index;
  std::string stream;
  std::uint64_t version = 0;
  varve::storage_actor storage;
  std::shared_ptr<varve::event_store> store;
  const vb::payloads* pl;
  const vb::tag_pool* tags;
  std::uint64_t decision = 0;  // decisions started
  std::uint64_t started = 0;   // when the current decision's first read began
  std::string course, student;
  std::uint64_t sink = 0;
};

void client_done(caf::event_based_actor* self, const std::shared_ptr<client>& c) {
  c->run->versions[c->index] = c->version;
  c->run->finish();
  self->quit();
}

void attempt(caf::event_based_actor* self, std::shared_ptr<client> c);

/// Starts the next decision: a course and a student (tag_pool's draw).
void decide_next(caf::event_based_actor* self, std::shared_ptr<client> c) {
  const std::uint64_t n = (std::uint64_t{c->index} << 32) + c->decision++;
  c->course.assign(c->tags->course(n));
  c->student.assign(c->tags->student(n));
  c->started = vb::now_ns();
  attempt(self, std::move(c));
}

/// One attempt of the current decision: the read, then the conditional append.
void attempt(caf::event_based_actor* self, std::shared_ptr<client> c) {
  w2_run& run = *c->run;
  varve::query q{{varve::query_item{{}, {c->course}, {}}, varve::query_item{{}, {c->student}, {}}}};
  varve::global_position head = 0;
  {
    auto txn = c->store->read();
    if (!txn) {
      run.fail("read: " + txn.err().to_string());
      return client_done(self, c);
    }
    head = txn->head();
    std::uint64_t course_subs = 0, student_subs = 0;
    auto n =
        txn->scan_query(q, 1, varve::direction::forward, SIZE_MAX, [&](const varve::event_view& e) {
          if (e.tags.contains(c->course)) ++course_subs;
          if (e.tags.contains(c->student)) ++student_subs;
          return true;
        });
    if (!n) {
      run.fail("scan_query: " + n.err().to_string());
      return client_done(self, c);
    }
    run.events_read[c->index] += *n;
    ++run.attempts[c->index];
    c->sink += course_subs + student_subs;
  }
  // The decision: subscribe (no capacity rule: every decision appends).
  varve::write_request req;
  req.appends.push_back(
      varve::append_request{c->stream,
                            varve::expected_version::exact(c->version),
                            {varve::new_event{std::string(subscribed_type),
                                              std::string((*c->pl)[c->decision + c->index]),
                                              {},
                                              {},
                                              {},
                                              {c->course, c->student}}}});
  req.condition = varve::append_condition{std::move(q), head};
  self->request(c->storage, caf::infinite, varve::write_atom_v, std::move(req))
      .then(
          [self, c](const std::vector<varve::append_result>& r) {
            const std::uint64_t e = vb::now_ns();
            w2_run& run = *c->run;
            if (r.size() != 1 || r[0].last_version != c->version + 1) {
              run.fail("append to " + c->stream + ": landed at a wrong version");
              return client_done(self, c);
            }
            ++c->version;
            const std::uint64_t s = c->started;
            vb::latency_recorder& rec = run.recorders[c->index];
            if (e > run.window_end) {
              if (s < run.window_end) rec.add_ns(e - s);
              return client_done(self, c);
            }
            if (e >= run.window_start) {
              rec.add_ns(e - s);
              ++run.counts[c->index];
            }
            run.last_completion[c->index] = e;
            if (run.stop.load(std::memory_order_relaxed)) return client_done(self, c);
            decide_next(self, c);
          },
          [self, c](caf::error& err) {
            const varve::error e = varve::error_from(err);
            w2_run& run = *c->run;
            if (e.code() != varve::errc::wrong_expected_version) {
              run.fail("conditional append to " + c->stream + ": " + e.to_string());
              return client_done(self, c);
            }
            const std::uint64_t now = vb::now_ns();
            if (now > run.window_end) {
              // In flight when the window closed: counted as W2 counts such an
              // append, with the time it has taken so far.
              if (c->started < run.window_end) run.recorders[c->index].add_ns(now - c->started);
              return client_done(self, c);
            }
            if (run.stop.load(std::memory_order_relaxed)) return client_done(self, c);
            if (now >= run.window_start) ++run.retries[c->index];
            attempt(self, c);  // read again, decide again
          });
}

/// W9c-decider: a client sending its decisions to the decider of
/// dcb::subscription (varve/actors/decider.hpp), which reads, decides and
/// appends under the condition through the storage actor, and retries
/// after a conflict itself.
struct decider_client {
  w2_run* run;
  std::uint32_t index;
  std::string stream;
  varve::decider_actor<dcb::subscription> decider;
  const vb::tag_pool* tags;
  std::string pad;
  std::uint64_t decision = 0;
  std::uint64_t appended = 0;
};

void decider_client_done(caf::event_based_actor* self, const std::shared_ptr<decider_client>& c) {
  c->run->versions[c->index] = c->appended;
  c->run->finish();
  self->quit();
}

void decide_through(caf::event_based_actor* self, std::shared_ptr<decider_client> c) {
  const std::uint64_t n = (std::uint64_t{c->index} << 32) + c->decision++;
  const std::uint64_t s = vb::now_ns();
  self->request(c->decider, caf::infinite, varve::command_atom_v,
                varve::local_command<dcb::subscribe>{
                    dcb::subscribe{std::string(c->tags->course(n)),
                                   std::string(c->tags->student(n)), c->stream, c->pad}})
      .then(
          [self, c, s](const varve::decision_reply& r) {
            const std::uint64_t e = vb::now_ns();
            w2_run& run = *c->run;
            if (r.events != 1) {
              run.fail("decision of " + c->stream + " appended " + std::to_string(r.events));
              return decider_client_done(self, c);
            }
            ++c->appended;
            vb::latency_recorder& rec = run.recorders[c->index];
            if (e > run.window_end) {
              if (s < run.window_end) rec.add_ns(e - s);
              return decider_client_done(self, c);
            }
            if (e >= run.window_start) {
              rec.add_ns(e - s);
              ++run.counts[c->index];
              run.retries[c->index] += r.attempts > 0 ? r.attempts - 1 : 0;
            }
            run.last_completion[c->index] = e;
            if (run.stop.load(std::memory_order_relaxed)) return decider_client_done(self, c);
            decide_through(self, c);
          },
          [self, c](caf::error& err) {
            c->run->fail("decision of " + c->stream + ": " + varve::error_from(err).to_string());
            decider_client_done(self, c);
          });
}

/// W9c: `clients` deciding clients through the storage actor, timed as W2
/// (warm-up, window, the decision in flight when the window closes counted
/// in the percentiles); a decision's latency runs from its first read to its
/// append's answer, retries included.
void run_w9c(const vb::options& o, const vv::store_settings& ss, vb::record_sink& out,
             std::uint32_t clients, bool through_decider = false) {
  vb::temp_dir dir(o.dir);
  auto store = vv::open_store(vv::store_options(dir / "store", ss, o.sync()));
  const vb::payloads pl(o.payload);
  const vb::tag_pool tags;
  const auto cfg = o.w2_config(clients);
  if (cfg.events_per_writer != 0)
    throw std::runtime_error("W9c: runs a timed window only (no --w2-events-per-writer)");

  w2_run run;
  run.recorders.resize(clients);
  run.counts.assign(clients, 0);
  run.versions.assign(clients, 0);
  run.last_completion.assign(clients, 0);
  run.retries.assign(clients, 0);
  run.attempts.assign(clients, 0);
  run.events_read.assign(clients, 0);
  varve::commit_stats at_start, at_end;
  std::uint64_t sink = 0;
  varve::decider_stats decided;
  if (through_decider) {
    vv::actor_config acfg;
    caf::actor_system sys{acfg};
    auto storage = varve::spawn_storage(sys, store);
    auto decider =
        varve::spawn_decider<dcb::subscription>(sys, varve::decision_context{store, storage, {}});
    caf::scoped_actor self{sys};
    // {"course":"course:123","student":"student:4567","pad":"..."}: ~57 bytes and the pad.
    const std::string pad(o.payload > 57 ? o.payload - 57 : 0, 'p');
    run.start = vb::now_ns();
    run.window_start = run.start + static_cast<std::uint64_t>(cfg.warmup_seconds * 1e9);
    run.window_end = run.window_start + static_cast<std::uint64_t>(cfg.seconds * 1e9);
    for (std::uint32_t i = 0; i < clients; ++i) {
      auto c = std::make_shared<decider_client>(
          decider_client{&run, i, vb::stream_name("client", i), decider, &tags, pad});
      sys.spawn([c](caf::event_based_actor* a) -> caf::behavior {
        decide_through(a, c);
        return {[](int) {}};
      });
    }
    sleep_until(run.window_start, run.stop);
    at_start = vv::ask<varve::commit_stats>(self, storage, varve::stats_atom_v);
    sleep_until(run.window_end, run.stop);
    at_end = vv::ask<varve::commit_stats>(self, storage, varve::stats_atom_v);
    {
      std::unique_lock lock(run.mutex);
      run.cv.wait(lock, [&] { return run.finished == clients; });
    }
    decided = vv::ask<varve::decider_stats>(self, decider, varve::stats_atom_v);
    self->send_exit(decider, caf::exit_reason::user_shutdown);
    self->wait_for(decider);
    self->send_exit(storage, caf::exit_reason::user_shutdown);
    self->wait_for(storage);
  } else {
    vv::actor_config acfg;
    caf::actor_system sys{acfg};
    auto storage = varve::spawn_storage(sys, store);
    caf::scoped_actor self{sys};
    std::vector<std::shared_ptr<client>> cs;
    cs.reserve(clients);
    for (std::uint32_t i = 0; i < clients; ++i) {
      auto c = std::make_shared<client>();
      c->run = &run;
      c->index = i;
      c->stream = vb::stream_name("client", i);
      c->storage = storage;
      c->store = store;
      c->pl = &pl;
      c->tags = &tags;
      cs.push_back(std::move(c));
    }
    run.start = vb::now_ns();
    run.window_start = run.start + static_cast<std::uint64_t>(cfg.warmup_seconds * 1e9);
    run.window_end = run.window_start + static_cast<std::uint64_t>(cfg.seconds * 1e9);
    for (auto& c : cs)
      sys.spawn([c](caf::event_based_actor* a) -> caf::behavior {
        decide_next(a, c);
        return {[](int) {}};  // answers arrive through the request's handlers
      });
    sleep_until(run.window_start, run.stop);
    at_start = vv::ask<varve::commit_stats>(self, storage, varve::stats_atom_v);
    sleep_until(run.window_end, run.stop);
    at_end = vv::ask<varve::commit_stats>(self, storage, varve::stats_atom_v);
    {
      std::unique_lock lock(run.mutex);
      run.cv.wait(lock, [&] { return run.finished == clients; });
    }
    self->send_exit(storage, caf::exit_reason::user_shutdown);
    self->wait_for(storage);
    for (const auto& c : cs)
      sink += c->sink;
  }
  if (!run.error.empty()) throw std::runtime_error("W9c: " + run.error);

  std::uint64_t stored = 0;
  {
    auto txn = vv::must(store->read(), "read");
    for (std::uint32_t i = 0; i < clients; ++i) {
      auto info = vv::must(txn.stream(vb::stream_name("client", i)), "stream");
      if ((info ? info->version : 0) != run.versions[i])
        throw std::runtime_error("W9c: client " + std::to_string(i) + " stream version mismatch");
      stored += run.versions[i];
    }
  }
  vv::verify_store(*store, stored);

  vb::latency_recorder all;
  std::uint64_t events = 0, retries = 0, attempts = 0, read = 0;
  for (std::uint32_t i = 0; i < clients; ++i) {
    all.merge(run.recorders[i]);
    events += run.counts[i];
    retries += run.retries[i];
    attempts += run.attempts[i];
    read += run.events_read[i];
  }
  const vb::latency_summary lat = all.summarize();
  const std::uint64_t commits = at_end.commits - at_start.commits;
  const std::uint64_t committed = at_end.events - at_start.events;

  vb::measurement m;
  m.workload = through_decider ? "W9c-decider" : "W9c";
  m.system = vv::system_name;
  m.params = o.make_params(clients, events, 1);
  m.params.extra["tags"] = 2;
  m.params.extra["mode"] = through_decider ? "decider" : "storage-actor";
  m.events_per_s = static_cast<double>(events) / cfg.seconds;
  m.p50_us = lat.p50_us;  // per decision: first read to the append's answer
  m.p99_us = lat.p99_us;
  if (commits > 0)
    m.events_per_commit = static_cast<double>(committed) / static_cast<double>(commits);
  m.extra["seconds"] = cfg.seconds;
  m.extra["max_us"] = lat.max_us;
  m.extra["commits"] = commits;
  m.extra["stored_events"] = stored;
  m.extra["retries"] = retries;  // conflicts answered inside the window
  m.extra["retries_per_decision"] =
      events > 0 ? static_cast<double>(retries) / static_cast<double>(events) : 0.0;
  if (!through_decider)
    m.extra["events_read_per_attempt"] =
        attempts > 0 ? static_cast<double>(read) / static_cast<double>(attempts) : 0.0;
  else
    m.extra["decider_retries"] = decided.retries;  // reloads after a conflict, whole run
  m.extra["checksum"] = sink;
  m.extra["commit_p50_us"] = at_end.commit_p50_us;
  m.extra["fsync_p50_us"] = at_end.fsync_p50_us;
  m.extra["fsync_p99_us"] = at_end.fsync_p99_us;
  out.write(m);
  std::cerr << "varve      " << m.workload << "  " << retries
            << " conflicts retried in the window (" << m.extra["retries_per_decision"].get<double>()
            << " per decision)\n";
}

// ------------------------------------------------------------------ W5

/// Sends `n` increments to `agg` at once (it handles them one at a time) and
/// waits for the last answer; returns the stream's version.
template <class A>
std::uint64_t feed(caf::actor_system& sys, const varve::aggregate_actor<A>& agg, std::uint64_t n,
                   const std::string& pad) {
  auto done = std::make_shared<std::promise<std::uint64_t>>();
  auto answer = done->get_future();
  sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
    auto left = std::make_shared<std::uint64_t>(n);
    auto last = std::make_shared<std::uint64_t>(0);
    auto failed = std::make_shared<bool>(false);
    for (std::uint64_t i = 0; i < n; ++i)
      self->request(agg, caf::infinite, varve::command_atom_v, counter::increment{1, pad})
          .then(
              [=](const varve::command_reply& r) {
                *last = std::max<std::uint64_t>(*last, r.version);
                if (--*left > 0) return;
                if (!*failed) done->set_value(*last);
                self->quit();
              },
              [=](caf::error& e) {
                if (!*failed) {
                  *failed = true;
                  done->set_exception(std::make_exception_ptr(std::runtime_error(
                      "W5 set-up: command failed: " + varve::error_from(e).to_string())));
                }
                if (--*left == 0) self->quit();
              });
    return {[](int) {}};
  });
  return answer.get();
}

/// Spawns a lone aggregate actor for `id` and waits for its answer to
/// stats_atom: the time, in ns, from the spawn to the answer (hydration is
/// done before the first message is handled).
template <class A>
std::uint64_t hydrate(caf::actor_system& sys, caf::scoped_actor& self,
                      const varve::aggregate_context& ctx, const std::string& id,
                      varve::aggregate_info& info) {
  const std::uint64_t t0 = vb::now_ns();
  auto a = varve::spawn_aggregate<A>(sys, id, ctx);
  info = vv::ask<varve::aggregate_info>(self, a, varve::stats_atom_v);
  const std::uint64_t t1 = vb::now_ns();
  self->send_exit(a, caf::exit_reason::user_shutdown);
  self->wait_for(a);
  return t1 - t0;
}

/// The same hydration without the actor: the aggregate actor's own steps
/// (load_snapshot, then catch_up) on a fresh state, timed directly; median
/// of `repeat`, in ms.
template <class A>
double direct_hydration_ms(const varve::aggregate_context& ctx, const std::string& id,
                           std::uint64_t events, std::uint32_t repeat) {
  std::vector<std::uint64_t> ns;
  for (std::uint32_t r = 0; r <= repeat; ++r) {
    varve::detail::aggregate_state<A> st;
    st.stream = varve::stream_of<A>(id);
    st.ctx = ctx;
    const std::uint64_t t0 = vb::now_ns();
    varve::detail::load_snapshot<A>(st);
    const auto ok = varve::detail::catch_up<A>(st, &st.replayed);
    const std::uint64_t t1 = vb::now_ns();
    if (!ok) throw std::runtime_error("W5: catch_up: " + ok.err().to_string());
    if (st.version != events || st.state.count != events)
      throw std::runtime_error("W5: hydrated to a wrong state");
    if (r > 0) ns.push_back(t1 - t0);  // the first is a warm-up
  }
  std::sort(ns.begin(), ns.end());
  return static_cast<double>(vb::percentile_sorted(ns, 0.5)) / 1e6;
}

double median_ms(std::vector<std::uint64_t> v) {
  std::sort(v.begin(), v.end());
  return static_cast<double>(vb::percentile_sorted(v, 0.5)) / 1e6;
}

/// One W5 variant: the stream `id` of aggregate type A written through its
/// aggregate, then rehydrated `repeat` times.
template <class A>
void run_w5_variant(const vb::options& o, vb::record_sink& out, caf::actor_system& sys,
                    caf::scoped_actor& self, const std::shared_ptr<varve::event_store>& store,
                    const varve::storage_actor& storage, const std::filesystem::path& dir,
                    const char* workload, const std::string& id, std::uint64_t snapshot_every,
                    std::uint64_t events, std::uint32_t repeat, const std::string& pad) {
  std::string encoded;
  if (!A::codec::encode(counter::incremented{1, pad}, encoded))
    throw std::runtime_error("W5: the event does not encode");
  // The stream, written through its aggregate (which also writes the snapshots).
  varve::aggregate_options opts;
  opts.snapshot_every = snapshot_every;
  const varve::aggregate_context ctx{store, storage, opts};
  auto writer = varve::spawn_aggregate<A>(sys, id, ctx);
  const std::uint64_t fed_at = vb::now_ns();
  const std::uint64_t version = feed<A>(sys, writer, events, pad);
  const double feed_s = static_cast<double>(vb::now_ns() - fed_at) / 1e9;
  self->send_exit(writer, caf::exit_reason::user_shutdown);
  self->wait_for(writer);
  vv::ask<varve::commit_stats>(self, storage, varve::stats_atom_v);  // snapshots committed
  if (version != events) throw std::runtime_error("W5: the stream is at a wrong version");
  vv::sync_files(dir / "store");
  {
    auto txn = vv::must(store->read(), "read");
    auto snap = vv::must(txn.snapshot(varve::stream_of<A>(id)), "snapshot");
    const std::uint64_t want = snapshot_every ? events / snapshot_every * snapshot_every : 0;
    if ((snap ? snap->version : 0) != want)
      throw std::runtime_error("W5: the snapshot is not where expected");
  }

  // Hydration of the stream, against a lone actor of an empty stream (spawn,
  // first round trip, stop), alternating; the first of each is a warm-up.
  std::vector<std::uint64_t> full, empty;
  varve::aggregate_info info, none;
  for (std::uint32_t r = 0; r <= repeat; ++r) {
    const std::uint64_t e = hydrate<A>(sys, self, ctx, "empty", none);
    const std::uint64_t f = hydrate<A>(sys, self, ctx, id, info);
    if (info.version != events || none.version != 0)
      throw std::runtime_error("W5: hydrated to a wrong version");
    if (r == 0) continue;
    empty.push_back(e);
    full.push_back(f);
  }
  const double full_ms = median_ms(full), empty_ms = median_ms(empty);
  const double ms = std::max(0.0, full_ms - empty_ms);

  vb::measurement m;
  m.workload = workload;
  m.system = vv::system_name;
  m.params = o.make_params(1, events, 1);
  m.params.payload = static_cast<std::uint32_t>(encoded.size());
  m.params.extra["snapshot_every"] = snapshot_every;
  m.params.extra["repeat"] = repeat;
  // Events replayed per second of rehydration (0 when a snapshot left none).
  m.events_per_s = ms > 0 ? static_cast<double>(info.replayed) / (ms / 1e3) : 0;
  m.extra["ms"] = ms;
  m.extra["spawn_to_answer_ms"] = full_ms;
  m.extra["empty_stream_ms"] = empty_ms;
  m.extra["min_ms"] = (static_cast<double>(*std::min_element(full.begin(), full.end())) -
                       static_cast<double>(*std::min_element(empty.begin(), empty.end()))) /
                      1e6;
  m.extra["direct_ms"] = direct_hydration_ms<A>(ctx, id, events, repeat);
  m.extra["replayed"] = info.replayed;
  // The set-up's burst: `events` commands sent at once to one aggregate
  // (one append each, no fsync), answered one at a time.
  m.extra["burst_commands_per_s"] = static_cast<double>(events) / feed_s;
  m.extra["snapshot_version"] = info.snapshot_version;
  out.write(m);
  std::cerr << "varve      " << workload << "  rehydration of " << events << " events: " << ms
            << " ms (spawn to answer " << full_ms << " ms, empty stream " << empty_ms
            << " ms, replayed " << info.replayed << "; without the actor "
            << m.extra["direct_ms"].template get<double>() << " ms)\n";
}

/// W5a: CAF binary events, no snapshots; W5b: the same with a snapshot
/// every 100 events; W5c: JSON events (the default codec), no snapshots.
void run_w5(const vb::options& o, const vv::store_settings& ss, vb::record_sink& out,
            std::uint64_t events, std::uint32_t repeat) {
  vb::temp_dir dir(o.dir);
  auto store = vv::open_store(vv::store_options(dir / "store", ss, false));  // set-up: no fsync
  const vb::payloads pl(o.payload);
  // An event's stored bytes (binary): 8 (amount) + 1 (length) + pad.
  const std::string pad(pl[0].substr(0, o.payload > 9 ? o.payload - 9 : 0));
  vv::actor_config acfg;
  caf::actor_system sys{acfg};
  auto storage = varve::spawn_storage(sys, store);
  caf::scoped_actor self{sys};
  run_w5_variant<counter::aggregate>(o, out, sys, self, store, storage, dir.path(), "W5a", "plain",
                                     0, events, repeat, pad);
  run_w5_variant<counter::aggregate>(o, out, sys, self, store, storage, dir.path(), "W5b",
                                     "snapshotted", 100, events, repeat, pad);
  // JSON holds text: the pad is letters, sized for the same stored bytes
  // ({"amount":1,"pad":"..."} is 21 bytes and the pad).
  const std::string json_pad(o.payload > 21 ? o.payload - 21 : 0, 'p');
  run_w5_variant<counter::json_aggregate>(o, out, sys, self, store, storage, dir.path(), "W5c",
                                          "json", 0, events, repeat, json_pad);
  self->send_exit(storage, caf::exit_reason::user_shutdown);
  self->wait_for(storage);
}

}  // namespace

int main(int argc, char** argv) {
  return vb::guarded_main([&] {
    CLI::App app{
        "varve, actor path: W2 (storage actor, event-based writers), W5 (aggregates), W9a (W2 "
        "tagged), W9c (DCB conditional appends)"};
    vb::options o;
    vb::add_common_options(app, o);
    vv::store_settings ss;
    vv::add_store_options(app, ss);
    std::uint64_t w5_events = 10'000;
    std::uint32_t w5_repeat = 50;
    app.add_option("--w5-events", w5_events, "W5: events in the rehydrated stream")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100'000'000}));
    app.add_option("--w5-repeat", w5_repeat, "W5: rehydrations measured (the median is reported)")
        ->capture_default_str()
        ->check(CLI::Range(1u, 100'000u));
    CLI11_PARSE(app, argc, argv);
    vb::finish(o);
    vb::raise_fd_limit();

    vb::record_sink out(o.out);
    if (o.wants("W2"))
      for (std::uint32_t w : o.writers)
        run_w2(o, ss, out, w);
    if (o.wants("W5")) run_w5(o, ss, out, w5_events, w5_repeat);
    // W9a and W9c are ratios to W2 at the same writer count, each measured
    // right after its own untagged, unconditional reference.
    if (o.wants("W9a")) {
      const vb::tag_pool tags;
      run_w2(o, ss, out, o.w9_writers, "W9a");
      run_w2(o, ss, out, o.w9_writers, nullptr, &tags);
    }
    if (o.wants("W9c")) {
      run_w2(o, ss, out, o.w9_writers, "W9c");
      run_w9c(o, ss, out, o.w9_writers);
      run_w9c(o, ss, out, o.w9_writers, true);
    }
    return 0;
  });
}
