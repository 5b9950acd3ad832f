// Exactly-once projections with real actors and a real store: the view
// agrees with the cursor (each event up to it counted once) across stops
// and restarts while appends go on, failing commits, control requests at
// any moment, a manager's requests left in the store, a child process
// killed with SIGKILL while catching up, and new instances started without
// waiting for the old one to end.
#define BOOST_TEST_MODULE exactly_once
#define BOOST_TEST_DYN_LINK
#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <caf/event_based_actor.hpp>

#include <atomic>
#include <map>
#include <random>
#include <thread>
#include <varve/projections/manager.hpp>
#include <varve/storage/testing.hpp>

#include "../actors/actor_fixture.hpp"
#include "counting_handler.hpp"

using namespace varve;
using varve_test::actor_fixture;

namespace {

projection_spec counting(std::string name, std::size_t batch, bool filtered, bool batch_handler) {
  projection_spec spec;
  spec.name = std::move(name);
  spec.batch_events = batch;
  if (filtered) spec.filter.event_types = {"a"};
  auto one = varve_test::count_in_view;
  if (batch_handler)
    spec.handle_batch = [one](std::span<const delivered_event> g, view_batch& v) -> result<void> {
      for (auto& d : g) {
        auto r = one(d, v);
        if (!r) return r;
      }
      return {};
    };
  else
    spec.handle = one;
  return spec;
}

/// The view agrees with the cursor: every event up to it that passes the
/// filter counted exactly once. Returns the cursor.
global_position check_view(const event_store& store, const std::string& name, bool filtered) {
  auto txn = store.read();
  BOOST_REQUIRE(txn.ok());
  auto cur = txn->cursor(name);
  BOOST_REQUIRE(cur.ok());
  const global_position at = cur->value_or(0);
  std::map<std::string, std::string> view;
  auto scanned = txn->scan_view(name, "", [&](std::string_view k, std::string_view v) {
    view.emplace(std::string(k), std::string(v));
    return true;
  });
  BOOST_REQUIRE(scanned.ok());
  auto evs = txn->read_log(1, direction::forward, at == 0 ? 0 : at);
  BOOST_REQUIRE(evs.ok());
  std::int64_t expect_total = 0;
  for (auto& e : *evs) {
    if (e.position > at) break;
    const bool passes = !filtered || e.type == "a";
    auto it = view.find("e" + std::to_string(e.position));
    const std::int64_t n = it == view.end() ? 0 : std::stoll(it->second);
    BOOST_CHECK_MESSAGE(n == (passes ? 1 : 0),
                        "event " << e.position << " counted " << n << " (cursor " << at << ")");
    if (passes) ++expect_total;
  }
  std::size_t rows = 0;
  for (auto& [k, v] : view)
    if (k[0] == 'e') {
      ++rows;
      BOOST_CHECK_MESSAGE(std::stoull(k.substr(1)) <= at, "row " << k << " past cursor " << at);
    }
  const std::int64_t total = view.count("total") ? std::stoll(view["total"]) : 0;
  BOOST_CHECK_EQUAL(total, expect_total);
  BOOST_CHECK_EQUAL(static_cast<std::int64_t>(rows), expect_total);
  BOOST_CHECK_EQUAL(view.count("z") == 1, total % 2 == 1);
  return at;
}

std::string stored_state(const event_store& store, const std::string& name) {
  auto txn = store.read();
  auto c = txn->cursor_state(name);
  if (!c.ok() || !*c) return "<none>";
  auto s = parse_checkpoint_state((*c)->state);
  if (!s) return "<bad>";
  return std::string(to_string(s->state));
}

struct fx : actor_fixture {
  std::mt19937_64 rng{42};
  void append_mixed(int n) {
    std::vector<new_event> evs;
    for (int i = 0; i < n; ++i) {
      new_event e;
      e.type = rng() % 3 == 0 ? "a" : "b";
      e.payload = "{}";
      evs.push_back(e);
    }
    BOOST_REQUIRE(
        store->append("s-" + std::to_string(rng() % 7), expected_version::any(), evs).ok());
  }
  void stop(const projection_actor& p) {
    caf::scoped_actor self{sys};
    caf::anon_send_exit(p, caf::exit_reason::user_shutdown);
    self->wait_for(p);
  }
  projection_status status(const projection_actor& p) {
    return varve_test::projection_status_of(sys, p);
  }
  projection_status control(const projection_actor& p, int which) {
    caf::scoped_actor self{sys};
    projection_status out;
    auto ok = [&](const projection_status& s) { out = s; };
    auto bad = [&](caf::error& e) { BOOST_FAIL(sys.render(e)); };
    switch (which) {
      case 0:
        self->request(p, caf::infinite, pause_atom_v).receive(ok, bad);
        break;
      case 1:
        self->request(p, caf::infinite, resume_atom_v).receive(ok, bad);
        break;
      default:
        self->request(p, caf::infinite, rebuild_atom_v).receive(ok, bad);
        break;
    }
    return out;
  }
  void barrier() { (void)stats(); }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(exactly_once_suite, fx)

// A projection paused before it handled anything (cursor 0) and stopped
// right after a restart, before its checkpoint was read, keeps "paused"?
BOOST_AUTO_TEST_CASE(a_projection_paused_at_zero_stays_paused_across_a_quick_restart) {
  append_mixed(10);
  auto spec = counting("p", 10, false, false);
  auto p = spawn_projection(sys, store, storage, spec);
  control(p, 0);
  stop(p);
  barrier();
  BOOST_REQUIRE_EQUAL(stored_state(*store, "p"), "paused");
  int lost = 0;
  for (int i = 0; i < 50 && lost == 0; ++i) {
    // keep the storage actor busy so that the stats answer comes late
    for (int k = 0; k < 20; ++k)
      caf::anon_send(
          storage, append_atom_v,
          varve_test::one_event("busy", expected_version::any(), std::string(20000, 'x')));
    auto q = spawn_projection(sys, store, storage, spec);
    stop(q);
    barrier();
    if (stored_state(*store, "p") != "paused") lost = i + 1;
  }
  BOOST_CHECK_MESSAGE(
      lost == 0, "after restart " << lost << " the stored state is " << stored_state(*store, "p"));
  auto txn = store->read();
  auto c = txn->cursor_state("p");
  if (c.ok() && *c) BOOST_TEST_MESSAGE("state json: " << (*c)->state);
}

// Stops and restarts in a loop while appends go on; commits failing now and
// then (ENOSPC); the view agrees with the cursor after each stop.
BOOST_AUTO_TEST_CASE(view_and_cursor_agree_across_stops_restarts_and_failing_commits) {
  for (int variant = 0; variant < 4; ++variant) {
    const bool filtered = variant & 1, batch_handler = variant & 2;
    const std::string name = "loop" + std::to_string(variant);
    std::atomic<bool> done{false};
    std::thread writer([&] {
      std::mt19937_64 r(variant);
      caf::scoped_actor self{sys};
      while (!done) {
        append_request ar{"w-" + std::to_string(r() % 5), expected_version::any(), {}};
        for (int i = 0, n = 1 + static_cast<int>(r() % 20); i < n; ++i)
          ar.events.push_back(new_event{r() % 3 == 0 ? "a" : "b", "{}", "", {}});
        self->request(storage, caf::infinite, append_atom_v, ar)
            .receive([](const append_result&) {}, [](caf::error&) {});
      }
    });
    for (int i = 0; i < 10; ++i)
      append_mixed(500);
    for (int round = 0; round < 60; ++round) {
      auto spec = counting(name, 1 + rng() % 40, filtered, batch_handler);
      auto p = spawn_projection(sys, store, storage, spec);
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
      if (rng() % 4 == 0) testing_fail_next_commit(*store, ENOSPC);
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 5000));
      auto s = status(p);
      if (s.state == "failed" && rng() % 2) control(p, 1);
      stop(p);
      barrier();
      check_view(*store, name, filtered);
    }
    done = true;
    writer.join();
    auto p = spawn_projection(sys, store, storage, counting(name, 50, filtered, batch_handler));
    const auto head = read().head();
    for (int i = 0; i < 3000; ++i) {
      auto s = status(p);
      if (s.state == "failed") control(p, 1);
      if (s.position >= head) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop(p);
    barrier();
    auto at = check_view(*store, name, filtered);
    BOOST_TEST_MESSAGE("variant " << variant << " cursor " << at << " head " << head);
  }
}

// Pause/resume/rebuild at random moments during catch-up, through the
// projection (not waiting for the answers).
BOOST_AUTO_TEST_CASE(view_and_cursor_agree_under_control_requests_during_catch_up) {
  for (int i = 0; i < 60; ++i)
    append_mixed(500);
  for (int variant = 0; variant < 4; ++variant) {
    const bool filtered = variant & 1, batch_handler = variant & 2;
    const std::string name = "ctl" + std::to_string(variant);
    for (int round = 0; round < 10; ++round) {
      auto p = spawn_projection(sys, store, storage,
                                counting(name, 1 + rng() % 30, filtered, batch_handler));
      caf::scoped_actor self{sys};
      int sent = 0, answered = 0;
      for (int k = 0; k < 30; ++k) {
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
        switch (rng() % 5) {
          case 0:
            caf::anon_send(p, pause_atom_v);
            break;
          case 1:
          case 2:
            caf::anon_send(p, resume_atom_v);
            break;
          case 3:
            caf::anon_send(p, rebuild_atom_v);
            break;
          default:
            append_mixed(50);
        }
        ++sent;
      }
      (void)sent;
      (void)answered;
      if (rng() % 2) {
        control(p, 1);
        const auto head = read().head();
        for (int i = 0; i < 3000 && status(p).position < head; ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      stop(p);
      barrier();
      check_view(*store, name, filtered);
    }
  }
}

// Control requests left in the store for a projection manager.
BOOST_AUTO_TEST_CASE(view_and_cursor_agree_under_requests_left_for_a_manager) {
  for (int i = 0; i < 60; ++i)
    append_mixed(500);
  std::vector<projection_spec> specs;
  specs.push_back(counting("m0", 7, false, false));
  specs.push_back(counting("m1", 13, true, true));
  for (int round = 0; round < 6; ++round) {
    auto mgr = spawn_projection_manager(sys, store, storage, specs, std::chrono::milliseconds(2));
    for (int k = 0; k < 30; ++k) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 4000));
      control_request r;
      switch (rng() % 4) {
        case 0:
          r.command = control_command::pause;
          break;
        case 1:
        case 2:
          r.command = control_command::resume;
          break;
        default:
          r.command = control_command::rebuild;
          break;
      }
      write_request w;
      w.views.push_back(view_update{std::string(control_view), view_update::op::put,
                                    rng() % 2 ? "m0" : "m1", to_json(r)});
      caf::scoped_actor self{sys};
      self->request(storage, caf::infinite, write_atom_v, w)
          .receive([](const std::vector<append_result>&) {}, [](caf::error&) {});
      if (rng() % 3 == 0) append_mixed(30);
    }
    caf::scoped_actor self{sys};
    caf::anon_send_exit(mgr, caf::exit_reason::user_shutdown);
    self->wait_for(mgr);
    barrier();
    check_view(*store, "m0", false);
    check_view(*store, "m1", true);
  }
}

// A child process catching up (the next batch handled while a commit is in flight) is killed with
// SIGKILL; the store reopened agrees with its cursor.
BOOST_AUTO_TEST_CASE(a_child_process_catching_up_until_it_is_killed) {
  const char* dirp = std::getenv("EXACTLY_ONCE_CHILD_DIR");
  if (!dirp) return;
  auto o = varve_test::test_options(dirp);
  o.sync = std::getenv("EXACTLY_ONCE_CHILD_SYNC") ? durability::sync : durability::no_sync;

  varve_test::actor_config cfg2;
  caf::actor_system sys2{cfg2};
  std::shared_ptr<event_store> st = varve_test::open_store(o);
  auto stor = spawn_storage(sys2, st, {});
  const bool filtered = std::getenv("EXACTLY_ONCE_CHILD_FILTERED") != nullptr;
  const bool bh = std::getenv("EXACTLY_ONCE_CHILD_BATCH_HANDLER") != nullptr;
  auto p = spawn_projection(
      sys2, st, stor,
      counting("k", std::atoi(std::getenv("EXACTLY_ONCE_CHILD_BATCH_EVENTS")), filtered, bh));
  // appends go on meanwhile
  caf::scoped_actor self{sys2};
  for (int i = 0;; ++i) {
    append_request ar{"c-" + std::to_string(i % 3), expected_version::any(), {}};
    for (int k = 0; k < 5; ++k)
      ar.events.push_back(new_event{k % 2 ? "a" : "b", "{}", "", {}});
    self->request(stor, caf::infinite, append_atom_v, ar)
        .receive([](const append_result&) {}, [](caf::error&) {});
    std::this_thread::sleep_for(std::chrono::microseconds(500));
    if (i % 50 == 0) {
      // restart the projection now and then
      caf::anon_send_exit(p, caf::exit_reason::user_shutdown);
      self->wait_for(p);
      p = spawn_projection(
          sys2, st, stor,
          counting("k", std::atoi(std::getenv("EXACTLY_ONCE_CHILD_BATCH_EVENTS")), filtered, bh));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_process_killed_while_catching_up_leaves_view_and_cursor_in_agreement) {
  if (std::getenv("EXACTLY_ONCE_CHILD_DIR")) return;
  int bad = 0;
  const int rounds = std::getenv("EXACTLY_ONCE_KILL_ROUNDS")
                         ? std::atoi(std::getenv("EXACTLY_ONCE_KILL_ROUNDS"))
                         : 16;
  for (int round = 0; round < rounds; ++round) {
    varve_test::temp_dir d;
    const auto path = (d / "store").string();
    const bool filtered = round % 2, bh = (round / 2) % 2;
    const int batchn = round % 4 == 3 ? 1 : 10 + round;
    {
      auto o = varve_test::test_options(path);
      auto st = varve_test::open_store(o);
      for (int i = 0; i < 200; ++i) {
        std::vector<new_event> evs;
        for (int k = 0; k < 100; ++k)
          evs.push_back(new_event{k % 3 ? "b" : "a", "{}", "", {}});
        BOOST_REQUIRE(st->append("s-" + std::to_string(i % 9), expected_version::any(), evs).ok());
      }
    }
    pid_t pid = fork();
    if (pid == 0) {
      setenv("EXACTLY_ONCE_CHILD_DIR", path.c_str(), 1);
      setenv("EXACTLY_ONCE_CHILD_BATCH_EVENTS", std::to_string(batchn).c_str(), 1);
      if (filtered) setenv("EXACTLY_ONCE_CHILD_FILTERED", "1", 1);
      if (bh) setenv("EXACTLY_ONCE_CHILD_BATCH_HANDLER", "1", 1);
      if (round % 3 == 0) setenv("EXACTLY_ONCE_CHILD_SYNC", "1", 1);
      execl("/proc/self/exe", "exactly_once_test",
            "--run_test=exactly_once_suite/a_child_process_catching_up_until_it_is_killed",
            "--log_level=nothing", "--report_level=no", static_cast<char*>(nullptr));
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + (round * 97) % 700));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    BOOST_CHECK(WIFSIGNALED(status));
    auto o = varve_test::test_options(path);
    auto st = varve_test::open_store(o);
    const auto before = boost::unit_test::results_collector
                            .results(boost::unit_test::framework::current_test_case().p_id)
                            .p_assertions_failed.get();
    auto at = check_view(*st, "k", filtered);
    const auto after = boost::unit_test::results_collector
                           .results(boost::unit_test::framework::current_test_case().p_id)
                           .p_assertions_failed.get();
    if (after != before) ++bad;
    BOOST_TEST_MESSAGE("round " << round << " cursor " << at << " head " << st->read()->head());
  }
  BOOST_CHECK_EQUAL(bad, 0);
}

// Restart without waiting for the old instance to end (a supervisor that
// sends exit and spawns again at once).
BOOST_AUTO_TEST_CASE(
    a_new_instance_started_without_waiting_for_the_old_one_goes_on_from_its_commits) {
  for (int i = 0; i < 100; ++i)
    append_mixed(500);
  int failed = 0;
  std::string why;
  projection_actor old = spawn_projection(sys, store, storage, counting("r", 20, false, false));
  for (int round = 0; round < 40; ++round) {
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    caf::anon_send_exit(old, caf::exit_reason::user_shutdown);
    auto p = spawn_projection(sys, store, storage, counting("r", 20, false, false));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    auto s = status(p);
    if (s.state == "failed") {
      ++failed;
      why = s.error;
      control(p, 1);
    }
    old = p;
    append_mixed(200);
  }
  stop(old);
  barrier();
  check_view(*store, "r", false);
  BOOST_CHECK_MESSAGE(failed == 0, failed << " of 40 new instances failed: " << why);
}

BOOST_AUTO_TEST_SUITE_END()
