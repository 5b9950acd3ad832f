// A randomized model check of the projection engine (scripted engine_io):
// reads answered at once or later, commits that land, fail or are lost in a
// crash, control requests, stops, and handlers that fail, against a model
// of what the view must hold for the cursor as stored. Exactly-once, the
// view's counters must count each event up to the cursor once, whatever
// the order of replies (the next batch is handled while a commit is in
// flight). FUZZ_SEEDS=N runs N seeds per configuration.
#define BOOST_TEST_MODULE projection_engine_model
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <varve/projections/engine.hpp>

#include "../storage/temp_dir.hpp"
#include "counting_handler.hpp"

using namespace varve;
using namespace std::chrono_literals;

namespace {

struct cfg {
  bool batch_handler = false;
  bool filtered = false;  // event_types {"a"}, indexed: covered reads
  bool tag_filter = false;
  bool async_reads = false;  // remote-like: answered later, no view txn
  failure_policy policy = failure_policy::skip;
  std::size_t batch_events = 5;
  int fail_write_pct = 0;
  int control_pct = 0;
  int stop_pct = 0;
  int crash_pct = 0;
  int transient_pct = 0;
  int poison_pct = 0;
  std::size_t total_events = 300;
};

struct run;

struct fuzz_io : engine_io {
  run* r;
  bool dead = false;
  struct rd {
    global_position after;
    std::size_t limit;
    std::uint64_t ticket;
  };
  std::deque<rd> reads;
  struct wr {
    write_request req;
    std::uint64_t ticket;
  };
  std::deque<wr> writes;
  std::deque<std::uint64_t> read_wakes;
  std::vector<std::pair<engine_timer, std::uint64_t>> delayed;
  explicit fuzz_io(run* rr) : r(rr) {}
  void read(global_position after, std::size_t limit, std::uint64_t ticket) override;
  void write(write_request request, std::uint64_t ticket) override {
    writes.push_back({std::move(request), ticket});
  }
  void wake(engine_timer timer, std::chrono::milliseconds, std::uint64_t ticket) override {
    if (timer == engine_timer::read)
      read_wakes.push_back(ticket);
    else
      delayed.push_back({timer, ticket});
  }
};

struct run {
  cfg c;
  std::mt19937_64 rng;
  varve_test::temp_dir dir;
  std::shared_ptr<event_store> store = varve_test::open_store(varve_test::test_options(dir / "s"));
  std::vector<std::string> types{""};  // by position
  std::vector<bool> tagged{false};
  std::set<global_position> poison;
  std::map<global_position, int> transient;
  std::map<global_position, std::int64_t> expected;
  global_position model_cursor = 0;
  std::set<global_position> reset_targets;
  std::unique_ptr<fuzz_io> io;
  std::unique_ptr<projection_engine> e;
  std::uint64_t steps = 0;
  std::string trace;
  int replies = 0;

  explicit run(cfg cc, std::uint64_t seed) : c(cc), rng(seed) {}

  int pct() { return static_cast<int>(rng() % 100); }

  bool passes(global_position p) const {
    if (c.filtered && types[p] != "a") return false;
    if (c.tag_filter && !tagged[p]) return false;
    return true;
  }

  bool should_fail(global_position p) {
    if (poison.count(p)) return true;
    auto it = transient.find(p);
    if (it != transient.end() && it->second > 0) {
      --it->second;
      return true;
    }
    return false;
  }

  result<void> apply_one(const delivered_event& d, view_batch& v) {
    return varve_test::count_in_view(d, v);
  }

  projection_spec spec() {
    projection_spec s;
    s.name = "p";
    s.batch_events = c.batch_events;
    s.on_failure = c.policy;
    s.max_retries = 2;
    if (c.filtered) s.filter.event_types = {"a"};
    if (c.tag_filter) s.filter.tags = {"k:v"};
    if (c.batch_handler) {
      s.handle_batch = [this](std::span<const delivered_event> g, view_batch& v) -> result<void> {
        bool fail = false;
        for (const auto& d : g) {
          if (should_fail(d.event.position)) fail = true;
          auto r = apply_one(d, v);
          if (!r) return r;
        }
        if (fail) return error{errc::handler_failed, "boom"};
        return {};
      };
    } else {
      s.handle = [this](const delivered_event& d, view_batch& v) -> result<void> {
        auto r = apply_one(d, v);
        if (!r) return r;
        if (should_fail(d.event.position)) return error{errc::handler_failed, "boom"};
        return {};
      };
    }
    return s;
  }

  void append(int n) {
    append_request ar;
    ar.stream = "s-" + std::to_string(rng() % 5);
    for (int i = 0; i < n; ++i) {
      new_event ev;
      ev.type = rng() % 3 == 0 ? "a" : "b";
      bool tag = rng() % 2 == 0;
      if (tag) ev.tags = {"k:v"};
      ev.payload = "{}";
      ar.events.push_back(ev);
      types.push_back(ev.type);
      tagged.push_back(tag);
      global_position p = types.size() - 1;
      if (pct() < c.poison_pct) poison.insert(p);
      if (pct() < c.transient_pct) transient[p] = 1 + static_cast<int>(rng() % 4);
    }
    auto out = store->append({&ar, 1});
    BOOST_REQUIRE(out.ok());
  }
  global_position head() const { return types.size() - 1; }

  // delivering a read now
  void deliver(fuzz_io& from, const fuzz_io::rd& rd, bool with_txn) {
    auto txn = store->read();
    BOOST_REQUIRE(txn.ok());
    const global_position h = txn->head();
    std::vector<event_view> evs;
    global_position covered = 0;
    std::optional<query> q;
    if (c.filtered || c.tag_filter) q = e->filter().index_query(*txn);
    if (q) {
      auto m = txn->read_query(*q, rd.after + 1, direction::forward, rd.limit);
      BOOST_REQUIRE(m.ok());
      evs = std::move(*m);
      covered = evs.size() < rd.limit ? std::max(h, rd.after) : evs.back().position;
    } else {
      auto m = txn->read_log(rd.after + 1, direction::forward, rd.limit);
      BOOST_REQUIRE(m.ok());
      evs = std::move(*m);
    }
    std::vector<std::string> names;
    for (auto& ev : evs)
      names.push_back(std::string(txn->stream_name(ev.stream_id).value()));
    std::vector<delivered_event> ds;
    for (std::size_t i = 0; i < evs.size(); ++i)
      ds.push_back({evs[i], names[i]});
    (void)from;
    e->on_batch(rd.ticket, log_batch{ds, h, 0, with_txn ? &*txn : nullptr, covered});
  }

  bool is_dead_letter_write(const write_request& w) const {
    for (auto& u : w.views)
      if (u.view == dead_letter_view("p") && u.kind == view_update::op::put) return true;
    return false;
  }

  void land(write_request& w, bool fail, std::uint64_t ticket, fuzz_io* notify) {
    if (fail) {
      trace += " F";
      if (notify && !notify->dead) e->on_written(ticket, error{errc::io_error, "injected"});
      return;
    }
    auto out = store->write({&w, 1});
    BOOST_REQUIRE(out.ok());
    const bool ok = out->front().ok();
    if (ok && !w.cursors.empty()) {
      const global_position to = w.cursors.front().position;
      bool clear = false;
      for (auto& u : w.views)
        if (u.view == "p" && u.kind == view_update::op::clear) clear = true;
      if (clear) {
        expected.clear();
      } else if (to > model_cursor && !(w.views.empty() && reset_targets.count(to))) {
        const bool dl = is_dead_letter_write(w);
        for (global_position p = model_cursor + 1; p <= to; ++p)
          if (passes(p) && !(dl && p == to)) expected[p]++;
      }
      trace += " W" + std::to_string(model_cursor) + "->" + std::to_string(to);
      model_cursor = to;
      check();
    } else if (!ok) {
      trace += " X(" + out->front().err().to_string() + ")";
    }
    if (notify && !notify->dead)
      e->on_written(ticket, ok ? std::nullopt : std::optional<error>(out->front().err()));
  }

  void check() {
    auto txn = store->read();
    BOOST_REQUIRE(txn.ok());
    auto cur = txn->cursor("p");
    BOOST_REQUIRE(cur.ok());
    BOOST_REQUIRE_EQUAL(cur->value_or(0), model_cursor);
    std::int64_t sum = 0;
    std::map<std::string, std::string> view;
    auto scanned = txn->scan_view("p", "", [&](std::string_view k, std::string_view v) {
      view.emplace(std::string(k), std::string(v));
      return true;
    });
    BOOST_REQUIRE(scanned.ok());
    bool bad = false;
    std::ostringstream why;
    for (auto& [k, v] : view) {
      if (k[0] != 'e') continue;
      global_position p = std::stoull(k.substr(1));
      std::int64_t n = std::stoll(v);
      sum += n;
      if (expected[p] != n) {
        bad = true;
        why << " pos " << p << " view " << n << " expected " << expected[p] << ";";
      }
    }
    for (auto& [p, n] : expected)
      if (n != 0 && !view.count("e" + std::to_string(p))) {
        bad = true;
        why << " pos " << p << " missing, expected " << n << ";";
      }
    std::int64_t total = view.count("total") ? std::stoll(view["total"]) : 0;
    if (total != sum) {
      bad = true;
      why << " total " << total << " sum " << sum << ";";
    }
    if ((total % 2 == 1) != (view.count("z") == 1)) {
      bad = true;
      why << " z parity wrong total " << total << ";";
    }
    if (bad) {
      std::cerr << "TRACE:" << trace.substr(trace.size() > 3000 ? trace.size() - 3000 : 0) << "\n";
      BOOST_FAIL("view/cursor disagree at cursor " << model_cursor << ":" << why.str());
    }
  }

  void new_engine() {
    io = std::make_unique<fuzz_io>(this);
    e = std::make_unique<projection_engine>(spec(), store, *io);
    e->start();
    e->on_head(head());
    trace += " START(" + std::to_string(e->status().position) + "," + e->status().state + ")";
  }

  void step() {
    ++steps;
    const int a = static_cast<int>(rng() % 100);
    if (a < 10) {
      if (head() < c.total_events) {
        append(1 + static_cast<int>(rng() % 7));
        if (rng() % 4) e->on_head(head());
      }
      return;
    }
    if (a < 35) {
      if (!io->read_wakes.empty()) {
        auto t = io->read_wakes.front();
        io->read_wakes.pop_front();
        e->on_timer(engine_timer::read, t);
      }
      return;
    }
    if (a < 50) {
      if (!io->reads.empty()) {
        auto rd = io->reads.front();
        io->reads.pop_front();
        deliver(*io, rd, false);
      }
      return;
    }
    if (a < 70) {
      if (!io->writes.empty()) {
        auto w = std::move(io->writes.front());
        io->writes.pop_front();
        land(w.req, pct() < c.fail_write_pct, w.ticket, io.get());
      }
      return;
    }
    if (a < 78) {
      if (!io->delayed.empty()) {
        std::size_t i = rng() % io->delayed.size();
        auto d = io->delayed[i];
        io->delayed.erase(io->delayed.begin() + static_cast<long>(i));
        e->on_timer(d.first, d.second);
      }
      return;
    }
    if (a < 86) {
      if (pct() < c.control_pct) control();
      return;
    }
    if (a < 90) {
      if (pct() < c.stop_pct) graceful_stop();
      return;
    }
    if (a < 94) {
      if (pct() < c.crash_pct) crash();
      return;
    }
    if (!io->read_wakes.empty()) {
      auto t = io->read_wakes.front();
      io->read_wakes.pop_front();
      e->on_timer(engine_timer::read, t);
    }
  }

  void control() {
    auto done = [this](const projection_status&) { ++replies; };
    switch (rng() % 6) {
      case 0:
        trace += " PAUSE";
        return e->pause(done);
      case 1:
      case 2:
        trace += " RESUME";
        return e->resume(done);
      case 3: {
        global_position to = model_cursor == 0 ? 0 : rng() % (model_cursor + 1);
        // only backward (or same) resets: remember the target
        reset_targets.insert(to);
        trace += " RESET" + std::to_string(to);
        return e->reset(to, done);
      }
      case 4:
        trace += " REBUILD";
        return e->rebuild(done);
      default:
        trace += " ERR";
        return e->report_error("note", done);
    }
  }

  void graceful_stop() {
    trace += " STOP";
    write_request last = e->stop();
    io->dead = true;
    while (!io->writes.empty()) {
      auto w = std::move(io->writes.front());
      io->writes.pop_front();
      land(w.req, pct() < c.fail_write_pct, w.ticket, nullptr);
    }
    land(last, false, 0, nullptr);
    new_engine();
  }

  void crash() {
    trace += " CRASH";
    io->dead = true;
    std::size_t keep = io->writes.empty() ? 0 : rng() % (io->writes.size() + 1);
    for (std::size_t i = 0; i < keep; ++i) {
      auto w = std::move(io->writes.front());
      io->writes.pop_front();
      land(w.req, false, w.ticket, nullptr);
    }
    new_engine();
  }

  // at the end: no more faults; let it catch up
  void drain() {
    c.fail_write_pct = c.control_pct = c.stop_pct = c.crash_pct = 0;
    poison.clear();
    transient.clear();
    while (head() < c.total_events)
      append(5);
    e->on_head(head());
    for (int i = 0; i < 200000; ++i) {
      if (e->state() == projection_state::failed || e->state() == projection_state::paused)
        e->resume([](const projection_status&) {});
      if (!io->writes.empty()) {
        auto w = std::move(io->writes.front());
        io->writes.pop_front();
        land(w.req, false, w.ticket, io.get());
      } else if (!io->read_wakes.empty()) {
        auto t = io->read_wakes.front();
        io->read_wakes.pop_front();
        e->on_timer(engine_timer::read, t);
      } else if (!io->reads.empty()) {
        auto rd = io->reads.front();
        io->reads.pop_front();
        deliver(*io, rd, false);
      } else if (!io->delayed.empty()) {
        auto d = io->delayed.front();
        io->delayed.erase(io->delayed.begin());
        e->on_timer(d.first, d.second);
      } else {
        break;
      }
    }
    // stop: write the final cursor
    write_request last = e->stop();
    land(last, false, 0, nullptr);
    check();
    auto st = model_cursor;
    if (st < head()) {
      // at most filtered tail not committed; accept if nothing after passes
      for (global_position p = st + 1; p <= head(); ++p)
        BOOST_CHECK_MESSAGE(!passes(p), "not caught up: cursor " << st << " head " << head());
    }
  }
};

void fuzz_io::read(global_position after, std::size_t limit, std::uint64_t ticket) {
  if (r->c.async_reads) {
    reads.push_back({after, limit, ticket});
    return;
  }
  r->deliver(*this, {after, limit, ticket}, true);
}

void fuzz(cfg c, int seeds, int steps) {
  const char* env = std::getenv("FUZZ_SEEDS");
  if (env) seeds = std::atoi(env);
  for (int s = 0; s < seeds; ++s) {
    BOOST_TEST_CONTEXT("seed " << s) {
      run r(c, static_cast<std::uint64_t>(s) * 7919 + 13);
      r.append(10);
      r.new_engine();
      for (int i = 0; i < steps; ++i)
        r.step();
      r.drain();
    }
  }
}

/// The fault mix of the suites below: failing and lost commits, control
/// requests, stops, crashes, and handler failures that pass or persist.
cfg under_faults(bool async_reads) {
  cfg c;
  c.async_reads = async_reads;
  c.fail_write_pct = 10;
  c.control_pct = 30;
  c.stop_pct = 20;
  c.crash_pct = 20;
  c.transient_pct = 5;
  c.poison_pct = 2;
  return c;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_engine_agrees_with_its_model_with_reads_answered_at_once) {
  cfg c;
  fuzz(c, 30, 3000);
}
BOOST_AUTO_TEST_CASE(the_engine_agrees_with_its_model_with_reads_answered_later) {
  cfg c;
  c.async_reads = true;
  fuzz(c, 30, 3000);
}
BOOST_AUTO_TEST_CASE(the_engine_agrees_with_its_model_under_faults_with_reads_answered_at_once) {
  fuzz(under_faults(false), 60, 3000);
}
BOOST_AUTO_TEST_CASE(the_engine_agrees_with_its_model_under_faults_with_reads_answered_later) {
  fuzz(under_faults(true), 60, 3000);
}
BOOST_AUTO_TEST_CASE(the_engine_agrees_with_its_model_with_a_batch_handler_under_faults) {
  for (bool async : {false, true}) {
    cfg c = under_faults(async);
    c.batch_handler = true;
    fuzz(c, 40, 3000);
  }
}
BOOST_AUTO_TEST_CASE(the_engine_agrees_with_its_model_with_filters_under_faults) {
  for (bool async : {false, true})
    for (bool tags : {false, true}) {
      cfg c = under_faults(async);
      c.filtered = true;
      c.tag_filter = tags;
      c.batch_handler = tags;
      fuzz(c, 40, 3000);
    }
}
BOOST_AUTO_TEST_CASE(the_engine_agrees_with_its_model_one_event_a_batch_stopping_at_failures) {
  for (bool async : {false, true}) {
    cfg c = under_faults(async);
    c.batch_events = 1;
    c.policy = failure_policy::stop;
    c.transient_pct = 10;
    c.poison_pct = 0;
    fuzz(c, 40, 3000);
  }
}
