// Projections: checkpoints, catch-up to live, filters, failure policies,
// shredded events, management, lag and wake-ups.
#define BOOST_TEST_MODULE projection
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <caf/event_based_actor.hpp>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <varve/projections/manager.hpp>

#include "../actors/actor_fixture.hpp"

using namespace varve;
using varve_test::actor_fixture;
using varve_test::make_events;

namespace {

/// Positions handed to a handler, shared with the test thread.
struct recorder {
  std::mutex mutex;
  std::vector<global_position> positions;
  std::vector<bool> shredded;

  void add(const event_view& e) {
    std::lock_guard<std::mutex> lock(mutex);
    positions.push_back(e.position);
    shredded.push_back(e.shredded);
  }
  std::vector<global_position> seen() {
    std::lock_guard<std::mutex> lock(mutex);
    return positions;
  }
};

/// An exactly-once projection that keeps one row per event (position ->
/// stream) and a count per stream.
projection_spec counting(std::string name, std::shared_ptr<recorder> rec = nullptr) {
  projection_spec spec;
  spec.name = std::move(name);
  spec.batch_events = 100;
  spec.handle = [rec](const delivered_event& d, view_batch& view) -> result<void> {
    if (rec) rec->add(d.event);
    view.put("event/" + std::to_string(d.event.position), std::string(d.stream));
    auto count = view.get("count/" + std::string(d.stream));
    if (!count) return count.err();
    const int n = *count ? std::stoi(**count) : 0;
    view.put("count/" + std::string(d.stream), std::to_string(n + 1));
    return {};
  };
  return spec;
}

struct projection_fixture : actor_fixture {
  void append(std::string stream, int n) {
    BOOST_REQUIRE(store->append(stream, expected_version::any(), make_events(n)).ok());
  }
  void append_through_actor(std::string stream, int n) {
    caf::scoped_actor self{sys};
    for (int i = 0; i < n; ++i)
      self->request(storage, caf::infinite, append_atom_v,
                    varve_test::one_event(stream, expected_version::any()))
          .receive([](const append_result&) {}, [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
  }

  projection_status status(const projection_actor& p) {
    caf::scoped_actor self{sys};
    projection_status out;
    self->request(p, caf::infinite, status_atom_v)
        .receive([&](const projection_status& s) { out = s; },
                 [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
    return out;
  }

  /// Waits until the projection has handled everything up to the head (or
  /// `pred` holds); fails after 20 s.
  template <class Pred>
  projection_status wait_for(const projection_actor& p, Pred pred) {
    for (int i = 0; i < 2000; ++i) {
      auto s = status(p);
      if (pred(s)) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    auto s = status(p);
    BOOST_FAIL("projection " << s.name << " stuck at " << s.position << " of " << s.head
                             << ", state " << s.state << ", error " << s.error);
    return s;
  }
  projection_status wait_caught_up(const projection_actor& p) {
    const auto head = read().head();
    return wait_for(p, [&](const projection_status& s) { return s.position >= head; });
  }

  void stop(const projection_actor& p, caf::exit_reason reason = caf::exit_reason::user_shutdown) {
    caf::scoped_actor self{sys};
    caf::anon_send_exit(p, reason);
    self->wait_for(p);
  }

  std::optional<std::string> view_value(std::string_view view, std::string_view key) {
    auto txn = read();
    auto v = txn.view_get(view, key);
    BOOST_REQUIRE(v.ok());
    return *v ? std::optional<std::string>(std::string(**v)) : std::nullopt;
  }

  std::size_t view_rows(std::string_view view, std::string_view prefix) {
    auto txn = read();
    std::size_t n = 0;
    auto r = txn.scan_view(view, prefix, [&](std::string_view k, std::string_view) {
      if (!k.starts_with(prefix)) return false;
      ++n;
      return true;
    });
    BOOST_REQUIRE(r.ok());
    return n;
  }

  /// A manager (polling every 5 ms) of `spec`, whose handler spends 300 ms
  /// on the event at position 150 (once); returns once that batch is under
  /// way, so that control requests left now meet a busy projection.
  projection_manager spawn_busy_manager(projection_spec spec) {
    auto inner = spec.handle;
    auto in_slow = std::make_shared<std::atomic<bool>>(false);
    spec.handle = [inner, in_slow](const delivered_event& d, view_batch& v) -> result<void> {
      if (d.event.position == 150 && !in_slow->exchange(true))
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
      return inner(d, v);
    };
    auto manager =
        spawn_projection_manager(sys, store, storage, {spec}, std::chrono::milliseconds(5));
    for (int i = 0; i < 2000 && !*in_slow; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    BOOST_REQUIRE(*in_slow);
    return manager;
  }

  /// Leaves a control request as varvectl does.
  void leave_request(const std::string& name, std::string request) {
    write_request w;
    w.views.push_back(
        view_update{std::string(control_view), view_update::op::put, name, std::move(request)});
    BOOST_REQUIRE(store->write({&w, 1}).ok());
  }

  /// Waits until the manager has erased the control request of `name`.
  void wait_request_taken(std::string_view name) {
    for (int i = 0; i < 5000 && view_value(control_view, name); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    BOOST_REQUIRE(!view_value(control_view, name));
  }

  global_position cursor(std::string_view name) {
    auto c = read().cursor(name);
    BOOST_REQUIRE(c.ok());
    return c->value_or(0);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(projections, projection_fixture)

BOOST_AUTO_TEST_CASE(exactly_once_restarts_from_its_checkpoint_and_repeats_nothing) {
  append("a", 300);
  append("b", 200);
  auto rec = std::make_shared<recorder>();
  auto p = spawn_projection(sys, store, storage, counting("counts", rec));
  wait_caught_up(p);
  stop(p);
  BOOST_CHECK_EQUAL(cursor("counts"), 500u);
  append("a", 50);
  auto again = spawn_projection(sys, store, storage, counting("counts", rec));
  wait_caught_up(again);
  auto seen = rec->seen();
  BOOST_REQUIRE_EQUAL(seen.size(), 550u);
  for (std::size_t i = 0; i < seen.size(); ++i)
    BOOST_CHECK_EQUAL(seen[i], i + 1);
  BOOST_CHECK_EQUAL(view_value("counts", "count/a").value_or("(none)"), "350");
  BOOST_CHECK_EQUAL(view_value("counts", "count/b").value_or("(none)"), "200");
  BOOST_CHECK_EQUAL(view_rows("counts", "event/"), 550u);
  stop(again);
}

BOOST_AUTO_TEST_CASE(a_stopped_projection_says_so_in_its_stored_state) {
  append("s", 250);
  for (auto mode : {delivery::exactly_once, delivery::at_least_once}) {
    auto spec = counting(mode == delivery::exactly_once ? "eo" : "alo");
    spec.mode = mode;
    auto p = spawn_projection(sys, store, storage, spec);
    wait_caught_up(p);
    stop(p);
    stats();  // what the projection sent as it stopped is committed
    auto txn = read();
    auto cur = txn.cursor_state(spec.name);
    BOOST_REQUIRE(cur.ok() && cur->has_value());
    BOOST_CHECK_EQUAL((*cur)->position, 250u);
    const auto j = nlohmann::json::parse((*cur)->state);
    BOOST_CHECK_EQUAL(j.value("state", ""), "stopped");
    // And a new instance goes on from there.
    auto again = spawn_projection(sys, store, storage, spec);
    auto s = wait_for(again, [](const projection_status& s) { return s.state == "live"; });
    BOOST_CHECK_EQUAL(s.position, 250u);
    stop(again);
  }
}

BOOST_AUTO_TEST_CASE(at_least_once_repeats_at_most_the_unsaved_tail) {
  append("a", 1000);
  auto rec = std::make_shared<recorder>();
  auto spec = counting("audit", rec);
  spec.mode = delivery::at_least_once;
  spec.checkpoint_every = 300;
  spec.checkpoint_interval = std::chrono::hours(1);
  auto p = spawn_projection(sys, store, storage, spec);
  wait_caught_up(p);
  stop(p, caf::exit_reason::kill);  // no last checkpoint
  stats();                          // a checkpoint sent before the kill may still be committing
  const auto saved = cursor("audit");
  BOOST_CHECK_GE(saved, 1000u - 300u);
  auto again = spawn_projection(sys, store, storage, spec);
  wait_caught_up(again);
  stop(again);  // a graceful stop saves the cursor
  stats();      // the storage actor has committed what came before
  BOOST_CHECK_EQUAL(cursor("audit"), 1000u);
  auto seen = rec->seen();
  BOOST_CHECK_EQUAL(seen.size(), 1000u + (1000u - saved));
  std::vector<bool> covered(1001, false);
  for (auto pos : seen)
    covered[pos] = true;
  BOOST_CHECK(std::all_of(covered.begin() + 1, covered.end(), [](bool b) { return b; }));
}

BOOST_AUTO_TEST_CASE(catching_up_while_appends_go_on_delivers_each_event_once_in_order) {
  append("old", 3000);
  auto rec = std::make_shared<recorder>();
  auto p = spawn_projection(sys, store, storage, counting("live", rec));
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w)
    writers.emplace_back([this, w] { append_through_actor("w-" + std::to_string(w), 250); });
  for (auto& t : writers)
    t.join();
  auto s = wait_caught_up(p);
  BOOST_CHECK_EQUAL(s.state, "live");
  auto seen = rec->seen();
  BOOST_REQUIRE_EQUAL(seen.size(), 4000u);
  for (std::size_t i = 0; i < seen.size(); ++i)
    BOOST_REQUIRE_EQUAL(seen[i], i + 1);
  stop(p);
}

BOOST_AUTO_TEST_CASE(a_head_published_while_a_view_commit_is_in_flight_is_not_missed) {
  // The handler of the last event appends one more through the storage
  // actor, so its head notification reaches the projection while the
  // projection's own view commit is in flight.
  append("s", 5);
  auto spec = counting("racing");
  auto inner = spec.handle;
  auto appended = std::make_shared<std::atomic<bool>>(false);
  spec.handle = [this, inner, appended](const delivered_event& d, view_batch& v) -> result<void> {
    if (d.event.position == 5 && !appended->exchange(true)) append_through_actor("t", 1);
    return inner(d, v);
  };
  auto p = spawn_projection(sys, store, storage, spec);
  auto s = wait_for(p, [](const projection_status& s) { return s.position >= 6; });
  BOOST_CHECK_EQUAL(s.position, 6u);
  BOOST_CHECK_EQUAL(view_value("racing", "count/t").value_or("(none)"), "1");
  stop(p);
}

BOOST_AUTO_TEST_CASE(a_filter_sees_only_its_streams_and_types_and_its_cursor_still_moves) {
  append("account-1", 10);
  append("order-1", 10);
  BOOST_REQUIRE(
      store->append("account-2", expected_version::any(), {{varve_test::make_event("closed", "x")}})
          .ok());
  auto rec = std::make_shared<recorder>();
  auto spec = counting("accounts", rec);
  spec.filter.categories = {"account"};
  spec.filter.event_types = {"test-event"};
  auto p = spawn_projection(sys, store, storage, spec);
  auto s = wait_caught_up(p);
  BOOST_CHECK_EQUAL(s.position, 21u);
  BOOST_CHECK_EQUAL(rec->seen().size(), 10u);
  BOOST_CHECK_EQUAL(view_value("accounts", "count/account-1").value_or("(none)"), "10");
  BOOST_CHECK(!view_value("accounts", "count/order-1"));
  BOOST_CHECK_EQUAL(cursor("accounts"), 21u);
  stop(p);
}

BOOST_AUTO_TEST_CASE(a_failing_handler_is_retried_then_stops_keeping_its_error) {
  append("s", 20);
  auto spec = counting("fragile");
  spec.max_retries = 2;
  spec.retry_backoff = std::chrono::milliseconds(1);
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto inner = spec.handle;
  spec.handle = [inner, calls](const delivered_event& d, view_batch& v) -> result<void> {
    if (d.event.position == 7) {
      ++*calls;
      throw std::runtime_error("cannot handle 7");
    }
    return inner(d, v);
  };
  auto p = spawn_projection(sys, store, storage, spec);
  auto s = wait_for(p, [](const projection_status& s) { return s.state == "failed"; });
  BOOST_CHECK_EQUAL(calls->load(), 3);  // first try and two retries
  BOOST_CHECK_EQUAL(s.position, 6u);
  BOOST_CHECK(s.error.find("cannot handle 7") != std::string::npos);
  BOOST_CHECK_EQUAL(cursor("fragile"), 6u);
  BOOST_CHECK_EQUAL(view_rows("fragile", "event/"), 6u);
  auto state = read().cursor_state("fragile");
  BOOST_CHECK((*state)->state.find("failed") != std::string::npos);
  stop(p);
}

BOOST_AUTO_TEST_CASE(a_failing_handler_with_skip_leaves_a_dead_letter_and_goes_on) {
  append("s", 20);
  auto spec = counting("tolerant");
  spec.max_retries = 1;
  spec.retry_backoff = std::chrono::milliseconds(1);
  spec.on_failure = failure_policy::skip;
  auto inner = spec.handle;
  spec.handle = [inner](const delivered_event& d, view_batch& v) -> result<void> {
    if (d.event.position == 7) {
      v.put("poison", "must not stay");
      return error{errc::rejected, "bad event"};
    }
    return inner(d, v);
  };
  auto p = spawn_projection(sys, store, storage, spec);
  auto s = wait_caught_up(p);
  BOOST_CHECK_EQUAL(s.dead_letters, 1u);
  BOOST_CHECK_EQUAL(view_rows("tolerant", "event/"), 19u);
  BOOST_CHECK(!view_value("tolerant", "poison"));
  std::string key(8, '\0');
  key[7] = 7;
  auto letter = view_value(dead_letter_view("tolerant"), key);
  BOOST_REQUIRE(letter);
  BOOST_CHECK(letter->find("bad event") != std::string::npos);
  stop(p);
}

BOOST_AUTO_TEST_CASE(a_handler_that_recovers_within_its_retries_handles_the_event_once) {
  append("s", 5);
  auto spec = counting("flaky");
  spec.retry_backoff = std::chrono::milliseconds(1);
  auto failures = std::make_shared<std::atomic<int>>(0);
  auto inner = spec.handle;
  spec.handle = [inner, failures](const delivered_event& d, view_batch& v) -> result<void> {
    if (d.event.position == 3 && failures->fetch_add(1) < 2)
      return error{errc::unavailable, "try again"};
    return inner(d, v);
  };
  auto p = spawn_projection(sys, store, storage, spec);
  auto s = wait_caught_up(p);
  BOOST_CHECK_EQUAL(s.state, "live");
  BOOST_CHECK_EQUAL(s.dead_letters, 0u);
  BOOST_CHECK_EQUAL(view_value("flaky", "count/s").value_or("(none)"), "5");
  stop(p);
}

BOOST_AUTO_TEST_CASE(a_shredded_stream_in_the_middle_is_delivered_as_shredded) {
  append("a", 3);
  append("secret", 3);
  append("b", 3);
  BOOST_REQUIRE(store->shred("secret").ok());
  auto rec = std::make_shared<recorder>();
  auto p = spawn_projection(sys, store, storage, counting("all", rec));
  auto s = wait_caught_up(p);
  BOOST_CHECK_EQUAL(s.state, "live");
  BOOST_CHECK_EQUAL(rec->seen().size(), 9u);
  std::lock_guard<std::mutex> lock(rec->mutex);
  for (std::size_t i = 0; i < 9; ++i)
    BOOST_CHECK_EQUAL(rec->shredded[i], i >= 3 && i < 6);
  stop(p);
}

BOOST_AUTO_TEST_CASE(the_manager_pauses_resumes_resets_and_rebuilds) {
  append("s", 100);
  auto manager = spawn_projection_manager(sys, store, storage, {counting("managed")});
  caf::scoped_actor self{sys};
  auto ask = [&](auto... xs) {
    projection_status out;
    self->request(manager, caf::infinite, xs...)
        .receive([&](const projection_status& s) { out = s; },
                 [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
    return out;
  };
  auto list = [&] {
    std::vector<projection_status> out;
    self->request(manager, caf::infinite, list_atom_v)
        .receive([&](const std::vector<projection_status>& s) { out = s; },
                 [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
    return out;
  };
  for (int i = 0; i < 500 && list().front().position < 100; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  BOOST_CHECK_EQUAL(list().front().position, 100u);

  BOOST_CHECK_EQUAL(ask(pause_atom_v, std::string("managed")).state, "paused");
  append_through_actor("s", 10);
  auto paused = ask(status_atom_v, std::string("managed"));
  BOOST_CHECK_EQUAL(paused.position, 100u);
  BOOST_CHECK_EQUAL(paused.lag_events, 10u);  // lag is reported while paused
  BOOST_CHECK_GE(paused.lag_seconds, 0.0);

  ask(resume_atom_v, std::string("managed"));
  for (int i = 0; i < 500 && list().front().position < 110; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  BOOST_CHECK_EQUAL(list().front().lag_events, 0u);
  BOOST_CHECK_EQUAL(view_value("managed", "count/s").value_or("(none)"), "110");

  ask(rebuild_atom_v, std::string("managed"));
  for (int i = 0; i < 500 && list().front().position < 110; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  BOOST_CHECK_EQUAL(view_value("managed", "count/s").value_or("(none)"),
                    "110");  // cleared, replayed once
  BOOST_CHECK_EQUAL(view_rows("managed", "event/"), 110u);

  ask(reset_atom_v, std::string("managed"), std::uint64_t{100});
  for (int i = 0; i < 500 && list().front().position < 110; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  BOOST_CHECK_EQUAL(view_value("managed", "count/s").value_or("(none)"),
                    "120");  // reset keeps the view

  self->request(manager, caf::infinite, pause_atom_v, std::string("nobody"))
      .receive(
          [](const projection_status&) { BOOST_FAIL("paused an unknown projection"); },
          [](caf::error& e) { BOOST_CHECK_EQUAL(to_string(error_from(e).code()), "not_found"); });
  caf::anon_send_exit(manager, caf::exit_reason::user_shutdown);
  self->wait_for(manager);
}

BOOST_AUTO_TEST_CASE(the_manager_applies_requests_left_in_the_control_view) {
  append("s", 10);
  leave_request("ctl", R"({"command":"pause"})");
  auto manager = spawn_projection_manager(sys, store, storage, {counting("ctl")},
                                          std::chrono::milliseconds(20));
  caf::scoped_actor self{sys};
  std::string state;
  for (int i = 0; i < 500 && state != "paused"; ++i) {
    self->request(manager, caf::infinite, status_atom_v, std::string("ctl"))
        .receive([&](const projection_status& s) { state = s.state; },
                 [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  BOOST_CHECK_EQUAL(state, "paused");
  wait_request_taken("ctl");  // the request is consumed
  caf::anon_send_exit(manager, caf::exit_reason::user_shutdown);
  self->wait_for(manager);
}

BOOST_AUTO_TEST_CASE(a_control_request_stays_until_the_projection_has_carried_it_out) {
  // varvectl's "rebuild --wait" takes the request's disappearance as "the
  // rebuild has started": a projection busy with a slow batch must not
  // have its request erased before it rebuilt.
  append("s", 200);
  auto rec = std::make_shared<recorder>();
  auto manager = spawn_busy_manager(counting("slow", rec));
  leave_request("slow", R"({"command":"rebuild"})");
  wait_request_taken("slow");
  // Gone: the rebuild has committed and the replay has begun.
  auto seen = rec->seen();
  BOOST_CHECK_GE(std::count(seen.begin(), seen.end(), global_position{1}), 2);
  caf::scoped_actor self{sys};
  caf::anon_send_exit(manager, caf::exit_reason::user_shutdown);
  self->wait_for(manager);
}

BOOST_AUTO_TEST_CASE(a_request_replaced_while_the_last_is_carried_out_is_applied_next) {
  append("s", 200);
  auto manager = spawn_busy_manager(counting("busy"));
  leave_request("busy", R"({"command":"pause"})");  // taken at once, carried out after the batch
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  leave_request("busy", R"({"command":"resume"})");  // replaces it while it is carried out
  wait_request_taken("busy");
  caf::scoped_actor self{sys};
  std::string state;
  for (int i = 0; i < 500 && state != "live"; ++i) {
    self->request(manager, caf::infinite, status_atom_v, std::string("busy"))
        .receive([&](const projection_status& s) { state = s.state; },
                 [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  BOOST_CHECK_EQUAL(state, "live");  // paused, then resumed
  caf::anon_send_exit(manager, caf::exit_reason::user_shutdown);
  self->wait_for(manager);
}

BOOST_AUTO_TEST_CASE(a_malformed_control_request_is_reported_on_its_projection_which_goes_on) {
  // Rows another process (another version, a hand-made write) may leave.
  const std::vector<std::pair<std::string, std::string>> malformed{
      {R"({"command":5})", "'command' is a number"},
      {R"({"command":"reset","position":"12"})", "'position' is a string"},
      {R"({"command":"reset","position":-3})", "'position' is a number"},
      {R"({"command":"reset"})", "has no 'position'"},
      {R"({"position":4})", "has no 'command'"},
      {R"(["pause"])", "is an array"},
      {R"({"command":"explode"})", "unknown command 'explode'"},
      {"pause, please", "is not JSON"},
  };
  append("s", 10);
  auto manager =
      spawn_projection_manager(sys, store, storage, {counting("target"), counting("bystander")},
                               std::chrono::milliseconds(5));
  caf::scoped_actor self{sys};
  auto list = [&] {
    std::vector<projection_status> out;
    self->request(manager, caf::infinite, list_atom_v)
        .receive([&](const std::vector<projection_status>& s) { out = s; },
                 [&](caf::error& e) { BOOST_FAIL("the manager: " << sys.render(e)); });
    return out;
  };
  auto wait_positions = [&](global_position at) {
    for (int i = 0; i < 2000; ++i) {
      auto all = list();
      if (all[0].position >= at && all[1].position >= at) return all;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    BOOST_FAIL("the projections did not reach " << at);
    return list();
  };
  wait_positions(10);
  global_position head = 10;
  for (const auto& [row, problem] : malformed) {
    BOOST_TEST_CONTEXT("request " << row) {
      leave_request("target", row);
      wait_request_taken("target");  // ignored, and erased once its error is recorded
      append("s", 1);                // by "another process": the manager notices the head
      auto all = wait_positions(++head);
      BOOST_CHECK_EQUAL(all[0].state, "live");
      BOOST_CHECK_MESSAGE(all[0].error.find(problem) != std::string::npos, all[0].error);
      BOOST_CHECK_EQUAL(all[1].error, "");
      // varvectl sees it too: the stored state carries the error.
      auto cur = read().cursor_state("target");
      BOOST_REQUIRE(cur.ok() && cur->has_value());
      const auto state = nlohmann::json::parse((*cur)->state, nullptr, false);
      BOOST_REQUIRE(state.is_object() && state.contains("error") && state["error"].is_string());
      BOOST_CHECK_MESSAGE(state["error"].get<std::string>().find(problem) != std::string::npos,
                          (*cur)->state);
    }
  }
  BOOST_CHECK_EQUAL(view_value("target", "count/s").value_or("(none)"), std::to_string(head));
  // A well-formed request after them is carried out.
  leave_request("target", R"({"command":"pause"})");
  wait_request_taken("target");
  BOOST_CHECK_EQUAL(list()[0].state, "paused");
  caf::anon_send_exit(manager, caf::exit_reason::user_shutdown);
  self->wait_for(manager);
}

BOOST_AUTO_TEST_CASE(
    a_malformed_cursor_state_is_reported_and_the_projection_goes_on_from_its_cursor) {
  append("s", 20);
  const std::vector<std::pair<std::string, std::string>> malformed{
      {R"({"state":[]})", "'state' is an array"},
      {R"({"state":{"paused":true}})", "'state' is an object"},
      {R"({"mode":"exactly_once"})", "has no 'state'"},
      {R"("paused")", "is a string"},
      {"\xff not json", "is not JSON"},
  };
  int n = 0;
  for (const auto& [state, problem] : malformed) {
    BOOST_TEST_CONTEXT("cursor state " << state) {
      const std::string name = "cursor-" + std::to_string(n++);
      write_request w;
      w.cursors.push_back(cursor_update{name, 12, state, {}});
      BOOST_REQUIRE(store->write({&w, 1}).ok());
      const global_position head = read().head();
      auto rec = std::make_shared<recorder>();
      auto p = spawn_projection(sys, store, storage, counting(name, rec));
      auto s = wait_for(p, [&](const projection_status& s) { return s.position >= head; });
      BOOST_CHECK_EQUAL(s.state, "live");
      BOOST_CHECK_MESSAGE(s.error.find(problem) != std::string::npos, s.error);
      std::vector<global_position> expected;  // from the stored position on
      for (global_position at = 13; at <= head; ++at)
        expected.push_back(at);
      auto seen = rec->seen();
      BOOST_CHECK_EQUAL_COLLECTIONS(seen.begin(), seen.end(), expected.begin(), expected.end());
      append_through_actor("s", 1);  // and it follows new events
      wait_for(p, [&](const projection_status& s) { return s.position > head; });
      stop(p);
      // The stored state is sound again, and keeps the error for varvectl.
      stats();
      auto cur = read().cursor_state(name);
      BOOST_REQUIRE(cur.ok() && cur->has_value());
      const auto stored = nlohmann::json::parse((*cur)->state, nullptr, false);
      BOOST_REQUIRE(stored.is_object() && stored.contains("state") && stored.contains("error"));
      BOOST_CHECK_EQUAL(stored["state"], "stopped");
      BOOST_CHECK(stored["error"].is_string() &&
                  stored["error"].get<std::string>().find(problem) != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_burst_of_commits_wakes_the_projection_far_fewer_times) {
  // A storage actor that commits every request on its own: 1000 requests
  // sent at once are 1000 commits, each published.
  storage_config one_by_one;
  one_by_one.max_batch_events = 1;
  auto burst_storage = spawn_storage(sys, store, one_by_one);
  // A handler slower than the commits, as in a burst: each call takes 2 ms.
  auto rec = std::make_shared<recorder>();
  projection_spec spec;
  spec.name = "burst";
  spec.mode = delivery::at_least_once;
  spec.handle_batch = [rec](std::span<const delivered_event> events, view_batch&) -> result<void> {
    for (const auto& d : events)
      rec->add(d.event);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return {};
  };
  auto p = spawn_projection(sys, store, burst_storage, spec);
  wait_for(p, [](const projection_status& s) { return s.state == "live"; });
  {
    caf::scoped_actor self{sys};
    for (int i = 0; i < 1000; ++i)
      self->send(burst_storage, append_atom_v,
                 varve_test::one_event("burst", expected_version::any()));
  }
  auto s = wait_for(p, [](const projection_status& s) { return s.position >= 1000; });
  BOOST_TEST_MESSAGE("1000 commits, " << s.wakeups << " wake-ups");
  BOOST_CHECK_EQUAL(rec->seen().size(), 1000u);
  BOOST_CHECK_LT(s.wakeups, 200u);
  stop(p);
  caf::scoped_actor self{sys};
  self->request(burst_storage, caf::infinite, stats_atom_v)
      .receive([](const commit_stats& st) { BOOST_CHECK_GE(st.commits, 1000u); },
               [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
  caf::anon_send_exit(burst_storage, caf::exit_reason::user_shutdown);
  self->wait_for(burst_storage);
}

BOOST_AUTO_TEST_SUITE_END()
