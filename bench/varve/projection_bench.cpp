// varve, projections: W6. Over a log of 1M events (written round-robin over
// 1000 streams): catch-up of an at-least-once projection with a grouped
// handler (W6a), then live commit->handler latency on that projection while
// one writer actor appends through the storage actor (W6c), then catch-up of
// an exactly-once projection writing one view row per event (W6b).
// W9d through the engine: over a log of 1M events of which 0.1% have a rare
// type, catch-up of an exactly-once projection filtered on that type,
// reading through the type index, and the same projection with the index
// off (every event read, the filter checked on each).
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <varve/projections/projection.hpp>
#include <varve/projections/type_ids.hpp>
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

namespace {

struct w6_settings {
  std::size_t batch = 1000;             ///< projection_spec::batch_events
  std::size_t checkpoint_every = 1000;  ///< at-least-once
  std::uint64_t live_events = 2000;     ///< W6c appends, at most
  double live_seconds = 3;              ///< W6c: stop appending after this long
};

/// What the handlers share with the driving thread. Handlers run on the
/// scheduler's thread and wake the driving thread only when they reach the
/// position it waits for (no lock or wake-up per event).
struct probe {
  std::atomic<varve::global_position> seen{0};  // newest position handled
  std::atomic<varve::global_position> target{UINT64_MAX};
  std::atomic<std::uint64_t> handled{0};
  std::uint64_t sink = 0;  // handler thread only; read after wait()
  std::mutex mutex;
  std::condition_variable cv;
  // Live phase (W6c): set before the projection starts, never changed.
  varve::global_position live_base = UINT64_MAX;
  std::vector<std::uint64_t> handled_ns;

  void saw(varve::global_position last, std::uint64_t n) {
    handled.fetch_add(n, std::memory_order_relaxed);
    seen.store(last);
    if (last >= target.load()) {
      std::lock_guard lock(mutex);
      cv.notify_all();
    }
  }
  /// Waits until the handler has seen `position`.
  void wait(varve::global_position position) {
    std::unique_lock lock(mutex);
    target.store(position);
    if (!cv.wait_for(lock, std::chrono::minutes(10), [&] { return seen.load() >= position; }))
      throw std::runtime_error("W6: the projection did not reach position " +
                               std::to_string(position));
  }
};

std::string position_key(varve::global_position p) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i, p >>= 8)
    key[static_cast<std::size_t>(i)] = static_cast<char>(p & 0xff);
  return key;
}

void stop(caf::scoped_actor& self, const varve::projection_actor& p) {
  self->send_exit(p, caf::exit_reason::user_shutdown);
  self->wait_for(p);
}

/// Polls the projection's status until its (committed) position reaches `head`.
void wait_position(caf::scoped_actor& self, const varve::projection_actor& p,
                   varve::global_position head) {
  for (;;) {
    auto s = vv::ask<varve::projection_status>(self, p, varve::status_atom_v);
    if (s.state == "failed") throw std::runtime_error("W6: projection failed: " + s.error);
    if (s.position >= head) return;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

/// W6c's appender: `n` single-event appends through the storage actor, one
/// at a time, each stamped when sent and when its answer arrives (the
/// storage actor answers right after the commit returns, before it notifies
/// the subscribers).
struct live_writer {
  varve::storage_actor storage;
  const vb::payloads* pl;
  std::uint64_t n;         // appends at most
  std::uint64_t deadline;  // no new append after this time
  std::uint64_t made = 0;  // appends made
  std::vector<std::uint64_t> sent_ns, answered_ns;
  std::vector<varve::global_position> positions;
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::string error;
};

void live_append(caf::event_based_actor* self, std::shared_ptr<live_writer> w, std::uint64_t k) {
  auto finish = [self, w, k](std::string err) {
    std::lock_guard lock(w->mutex);
    w->made = k;
    w->done = true;
    w->error = std::move(err);
    w->cv.notify_all();
    self->quit();
  };
  if (k == w->n || vb::now_ns() > w->deadline) return finish("");
  varve::append_request req{
      "live",
      varve::expected_version::exact(k),
      {varve::new_event{std::string(vb::event_type), std::string((*w->pl)[k])}}};
  w->sent_ns[k] = vb::now_ns();
  self->request(w->storage, caf::infinite, varve::append_atom_v, std::move(req))
      .then(
          [self, w, k](const varve::append_result& r) {
            w->answered_ns[k] = vb::now_ns();
            w->positions[k] = r.last_position;
            live_append(self, w, k + 1);
          },
          [w, finish](caf::error& e) mutable {
            finish("live append: " + varve::error_from(e).to_string());
          });
}

vb::measurement record(const vb::options& o, const char* workload, std::uint64_t events,
                       std::size_t batch) {
  vb::measurement m;
  m.workload = workload;
  m.system = vv::system_name;
  m.params = o.make_params(1, events, static_cast<std::uint32_t>(batch));
  return m;
}

void run_w6(const vb::options& o, const vv::store_settings& ss, const w6_settings& ws,
            vb::record_sink& out) {
  vb::temp_dir dir(o.dir);
  const vb::payloads pl(o.payload);
  {
    auto setup = vv::open_store(vv::store_options(dir / "store", ss, false));  // set-up: no fsync
    vv::write_batches(*setup, pl, o.events, o.batch, o.streams, true);
    vv::verify_store(*setup, o.events);
  }
  vv::sync_files(dir / "store");
  // Measured with fsync at every commit (view rows, cursors, live appends).
  auto store = vv::open_store(vv::store_options(dir / "store", ss, o.sync()));

  vv::actor_config acfg;
  acfg.add_message_types<caf::id_block::varve_projections>();
  caf::actor_system sys{acfg};
  auto storage = varve::spawn_storage(sys, store);
  caf::scoped_actor self{sys};

  // ---- W6a: at-least-once catch-up, grouped handler.
  auto pa = std::make_shared<probe>();
  varve::projection_spec alo;
  alo.name = "bench-at-least-once";
  alo.mode = varve::delivery::at_least_once;
  alo.batch_events = ws.batch;
  alo.checkpoint_every = ws.checkpoint_every;
  alo.handle_batch = [pa](std::span<const varve::delivered_event> group,
                          varve::view_batch&) -> varve::result<void> {
    const std::uint64_t now = vb::now_ns();
    std::uint64_t sink = 0;
    for (const auto& d : group) {
      const auto& e = d.event;
      sink += e.version + e.payload.size() +
              static_cast<unsigned char>(e.payload.empty() ? 0 : e.payload[0]) + d.stream.size();
      if (e.position > pa->live_base) {
        const auto k = e.position - pa->live_base - 1;
        if (k < pa->handled_ns.size()) pa->handled_ns[k] = now;
      }
    }
    pa->sink += sink;
    pa->saw(group.empty() ? 0 : group.back().event.position, group.size());
    return {};
  };
  const std::uint64_t head = o.events;
  // W6c's live events will be at head+1 .. head+live_events (nothing else
  // appends events); set before the handler first runs, never changed.
  pa->live_base = head;
  pa->handled_ns.assign(ws.live_events, 0);
  vb::stopwatch clock;
  auto p = varve::spawn_projection(sys, store, storage, alo);
  pa->wait(head);
  const double alo_seconds = clock.elapsed_s();
  if (pa->handled.load() != head) throw std::runtime_error("W6a: handled a wrong number of events");
  auto m = record(o, "W6a", head, ws.batch);
  m.params.extra["mode"] = "at_least_once";
  m.params.extra["handler"] = "batch";
  m.params.extra["checkpoint_every"] = ws.checkpoint_every;
  m.params.extra["streams"] = o.streams;
  m.events_per_s = static_cast<double>(head) / alo_seconds;
  m.extra["seconds"] = alo_seconds;
  m.extra["checksum"] = pa->sink;
  out.write(m);

  // ---- W6c: live commit -> handler, on the same projection, now live.
  auto lw = std::make_shared<live_writer>();
  lw->storage = storage;
  lw->pl = &pl;
  lw->n = ws.live_events;
  lw->deadline = vb::now_ns() + static_cast<std::uint64_t>(ws.live_seconds * 1e9);
  lw->sent_ns.assign(lw->n, 0);
  lw->answered_ns.assign(lw->n, 0);
  lw->positions.assign(lw->n, 0);
  vb::stopwatch live_clock;
  sys.spawn([lw](caf::event_based_actor* a) -> caf::behavior {
    live_append(a, lw, 0);
    return {[](int) {}};
  });
  {
    std::unique_lock lock(lw->mutex);
    lw->cv.wait(lock, [&] { return lw->done; });
    if (!lw->error.empty()) throw std::runtime_error("W6c: " + lw->error);
  }
  const std::uint64_t made = lw->made;
  if (made == 0) throw std::runtime_error("W6c: no live append");
  pa->wait(head + made);
  const double live_seconds = live_clock.elapsed_s();
  vb::latency_recorder commit_to_handler, append_to_handler;
  std::uint64_t before_answer = 0;
  {
    std::lock_guard lock(pa->mutex);
    for (std::uint64_t k = 0; k < made; ++k) {
      if (lw->positions[k] != head + k + 1)
        throw std::runtime_error("W6c: a live append landed at an unexpected position");
      const std::uint64_t h = pa->handled_ns[k];
      if (h == 0) throw std::runtime_error("W6c: a live event was not handled");
      // The handler may run before the appender has taken its answer: then
      // the commit was seen by the handler first, latency 0.
      if (h < lw->answered_ns[k]) ++before_answer;
      commit_to_handler.add_ns(h > lw->answered_ns[k] ? h - lw->answered_ns[k] : 0);
      append_to_handler.add_ns(h - lw->sent_ns[k]);
    }
  }
  const auto c2h = commit_to_handler.summarize();
  const auto a2h = append_to_handler.summarize();
  m = record(o, "W6c", made, 1);
  m.params.extra["mode"] = "at_least_once";
  m.params.extra["handler"] = "batch";
  m.params.extra["appenders"] = 1;
  m.events_per_s = static_cast<double>(made) / live_seconds;
  m.p50_us = c2h.p50_us;
  m.p99_us = c2h.p99_us;
  m.extra["max_us"] = c2h.max_us;
  m.extra["append_to_handler_p50_us"] = a2h.p50_us;
  m.extra["append_to_handler_p99_us"] = a2h.p99_us;
  m.extra["handled_before_answer"] = before_answer;
  m.extra["seconds"] = live_seconds;
  out.write(m);
  stop(self, p);

  // ---- W6b: exactly-once catch-up, one view row per event.
  const std::uint64_t total = vv::must(store->read(), "read").head();
  auto pb = std::make_shared<probe>();
  varve::projection_spec eo;
  eo.name = "bench-exactly-once";
  eo.mode = varve::delivery::exactly_once;
  eo.batch_events = ws.batch;
  eo.handle = [pb](const varve::delivered_event& d,
                   varve::view_batch& view) -> varve::result<void> {
    const auto& e = d.event;
    std::string row(d.stream);
    row += ':';
    row += std::to_string(e.version);
    view.put(position_key(e.position), row);
    pb->saw(e.position, 1);
    return {};
  };
  const auto before = vv::ask<varve::commit_stats>(self, storage, varve::stats_atom_v);
  clock.restart();
  auto q = varve::spawn_projection(sys, store, storage, eo);
  pb->wait(total);
  wait_position(self, q, total);  // its last batch is committed
  const double eo_seconds = clock.elapsed_s();
  const auto after = vv::ask<varve::commit_stats>(self, storage, varve::stats_atom_v);
  stop(self, q);
  std::uint64_t rows = 0;
  {
    auto txn = vv::must(store->read(), "read");
    vv::must(txn.scan_view(eo.name, "",
                           [&](std::string_view, std::string_view) {
                             ++rows;
                             return true;
                           }),
             "scan_view");
    if (rows != total) throw std::runtime_error("W6b: the view has a wrong number of rows");
    if (vv::must(txn.cursor(eo.name), "cursor").value_or(0) != total)
      throw std::runtime_error("W6b: the cursor is not at the head");
  }
  m = record(o, "W6b", total, ws.batch);
  m.params.extra["mode"] = "exactly_once";
  m.params.extra["handler"] = "event";
  m.params.extra["streams"] = o.streams;
  m.events_per_s = static_cast<double>(total) / eo_seconds;
  const std::uint64_t commits = after.commits - before.commits;
  if (commits > 0) m.events_per_commit = static_cast<double>(total) / static_cast<double>(commits);
  m.extra["seconds"] = eo_seconds;
  m.extra["commits"] = commits;
  m.extra["view_rows"] = rows;
  m.extra["fsync_p50_us"] = after.fsync_p50_us;
  out.write(m);

  self->send_exit(storage, caf::exit_reason::user_shutdown);
  self->wait_for(storage);
}

/// W9d through the projection engine (see the top of the file): both
/// projections write a view row per rare event and commit with fsync as
/// W6b does; measured from spawning each to its committed position at the
/// head.
void run_w9d_engine(const vb::options& o, const vv::store_settings& ss, vb::record_sink& out) {
  vb::temp_dir dir(o.dir);
  const vb::payloads pl(o.payload);
  {
    auto setup = vv::open_store(vv::store_options(dir / "store", ss, false));  // set-up: no fsync
    vv::write_typed(*setup, pl, o.events, o.batch);
  }
  vv::sync_files(dir / "store");
  auto store = vv::open_store(vv::store_options(dir / "store", ss, o.sync()));
  const std::uint64_t rare = vb::rare_count(o.events);

  vv::actor_config acfg;
  acfg.add_message_types<caf::id_block::varve_projections>();
  caf::actor_system sys{acfg};
  auto storage = varve::spawn_storage(sys, store);
  caf::scoped_actor self{sys};
  for (bool indexed : {true, false}) {
    auto handled = std::make_shared<std::atomic<std::uint64_t>>(0);
    varve::projection_spec spec;
    spec.name = indexed ? "bench-rare-indexed" : "bench-rare-scan";
    spec.mode = varve::delivery::exactly_once;
    spec.filter.event_types = {std::string(vb::rare_event_type)};
    spec.filter.indexed = indexed;
    spec.handle = [handled](const varve::delivered_event& d,
                            varve::view_batch& view) -> varve::result<void> {
      view.put(position_key(d.event.position), std::string(d.event.type));
      handled->fetch_add(1, std::memory_order_relaxed);
      return {};
    };
    vb::stopwatch clock;
    auto p = varve::spawn_projection(sys, store, storage, spec);
    wait_position(self, p, o.events);
    const double seconds = clock.elapsed_s();
    stop(self, p);
    if (handled->load() != rare)
      throw std::runtime_error("W9d: the projection handled a wrong number of events");
    auto m = record(o, indexed ? "W9d-engine" : "W9d-engine-scan", o.events, spec.batch_events);
    m.params.extra["mode"] = indexed ? "engine-index" : "engine-scan";
    m.params.extra["rare_events"] = rare;
    m.events_per_s = static_cast<double>(o.events) / seconds;  // log positions covered
    m.extra["seconds"] = seconds;
    out.write(m);
  }
  self->send_exit(storage, caf::exit_reason::user_shutdown);
  self->wait_for(storage);
}

}  // namespace

int main(int argc, char** argv) {
  return vb::guarded_main([&] {
    CLI::App app{
        "varve, projections: W6 (catch-up at-least-once and exactly-once, live latency), W9d "
        "(catch-up of a rare type through the engine, with and without the type index)"};
    vb::options o;
    vb::add_common_options(app, o);
    vv::store_settings ss;
    vv::add_store_options(app, ss);
    w6_settings ws;
    app.add_option("--w6-batch", ws.batch, "W6: events a projection reads per batch")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}));
    app.add_option("--w6-checkpoint-every", ws.checkpoint_every,
                   "W6a: at-least-once checkpoint every N events")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 40));
    app.add_option("--w6-live-events", ws.live_events, "W6c: live appends measured, at most")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{10'000'000}));
    app.add_option("--w6-live-seconds", ws.live_seconds, "W6c: stop appending after this long")
        ->capture_default_str()
        ->check(CLI::Range(0.001, 3600.0));
    CLI11_PARSE(app, argc, argv);
    vb::finish(o);

    vb::record_sink out(o.out);
    if (o.wants("W6")) run_w6(o, ss, ws, out);
    if (o.wants("W9d")) run_w9d_engine(o, ss, out);
    return 0;
  });
}
