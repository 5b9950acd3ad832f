// Projections over the store of this process: what only the local log
// source does (concurrent writers, heads during a commit, filters, wake-ups
// in a burst) and the manager's own interface. The behaviours every log
// source shares are in tests/conformance (run against this source too).
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
    return varve_test::projection_status_of(sys, p);
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

BOOST_AUTO_TEST_CASE(counts_read_back_from_the_view_stay_exact_across_stops_while_catching_up) {
  // Exactly-once catching up handles a batch while the one before commits:
  // its reads of the view must see the writes in flight. A count per
  // stream read and written back per event is exact only if they do, and
  // stops while a batch is handled ahead must lose and repeat nothing.
  append("old", 6000);
  auto spec = counting("exact");
  spec.batch_events = 50;
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w)
    writers.emplace_back([this, w] { append_through_actor("w-" + std::to_string(w), 200); });
  for (int round = 0; round < 6; ++round) {
    auto p = spawn_projection(sys, store, storage, spec);
    const global_position goal = 1000 * (round + 1);
    wait_for(p, [&](const projection_status& s) { return s.position >= goal; });
    stop(p);
  }
  for (auto& t : writers)
    t.join();
  auto p = spawn_projection(sys, store, storage, spec);
  wait_caught_up(p);
  stop(p);
  stats();
  BOOST_CHECK_EQUAL(view_value("exact", "count/old").value_or("(none)"), "6000");
  BOOST_CHECK_EQUAL(view_value("exact", "count/w-0").value_or("(none)"), "200");
  BOOST_CHECK_EQUAL(view_value("exact", "count/w-1").value_or("(none)"), "200");
  BOOST_CHECK_EQUAL(view_rows("exact", "event/"), 6400u);
  BOOST_CHECK_EQUAL(cursor("exact"), 6400u);
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

BOOST_AUTO_TEST_CASE(a_tag_filtered_projection_follows_live_commits_and_sees_only_its_events) {
  auto rec = std::make_shared<recorder>();
  auto spec = counting("flagged", rec);
  spec.filter.event_types = {"flagged"};
  spec.filter.tags = {"team:red"};
  auto p = spawn_projection(sys, store, storage, spec);
  wait_caught_up(p);
  // Commits through the storage actor, each one published: most of them
  // have nothing for the projection.
  std::vector<global_position> want;
  caf::scoped_actor self{sys};
  for (int i = 0; i < 300; ++i) {
    new_event e{.type = i % 23 == 5 || i % 31 == 7 ? "flagged" : "plain", .payload = "{}"};
    if (i % 2 == 1) e.tags = {"team:red"};
    if (i % 3 == 0) e.tags.push_back("team:blue");
    const bool match = e.type == "flagged" && i % 2 == 1;
    append_request r{"s-" + std::to_string(i % 4), expected_version::any(), {std::move(e)}};
    self->request(storage, caf::infinite, append_atom_v, std::move(r))
        .receive(
            [&](const append_result& res) {
              if (match) want.push_back(res.first_position);
            },
            [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
  }
  BOOST_REQUIRE(!want.empty());
  auto s = wait_caught_up(p);
  BOOST_CHECK_EQUAL(s.position, 300u);
  BOOST_CHECK_EQUAL(s.state, "live");
  auto seen = rec->seen();
  BOOST_CHECK_EQUAL_COLLECTIONS(seen.begin(), seen.end(), want.begin(), want.end());
  // Past its last event the cursor moves in memory, and is stored at the
  // next checkpoint or at stop.
  stop(p);
  stats();  // what the projection sent as it stopped is committed
  BOOST_CHECK_EQUAL(cursor("flagged"), 300u);
}

BOOST_AUTO_TEST_CASE(
    an_exactly_once_filtered_projection_writes_no_cursor_for_commits_without_its_events) {
  auto rec = std::make_shared<recorder>();
  auto spec = counting("rare", rec);
  spec.filter.event_types = {"rare"};
  spec.checkpoint_interval = std::chrono::hours(1);  // no timer during the test
  auto p = spawn_projection(sys, store, storage, spec);
  wait_caught_up(p);
  const auto before = store->stats().value().commits;
  // 200 commits one after the other, each published, none for the
  // projection; then one that is.
  caf::scoped_actor self{sys};
  auto append = [&](std::string type) {
    append_request r{"s-1", expected_version::any(), {new_event{.type = type, .payload = "{}"}}};
    self->request(storage, caf::infinite, append_atom_v, std::move(r))
        .receive([](const append_result&) {}, [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
  };
  for (int i = 0; i < 200; ++i) {
    append("plain");
    wait_for(p, [&](const projection_status& s) { return s.position >= global_position(i + 1); });
  }
  append("rare");
  auto s = wait_caught_up(p);
  BOOST_CHECK_EQUAL(s.position, 201u);
  BOOST_CHECK_EQUAL(rec->seen().size(), 1u);
  BOOST_CHECK_EQUAL(cursor("rare"), 201u);  // with the view write of the rare event
  // 201 appends; the projection's own: the one view commit.
  const auto commits = store->stats().value().commits - before;
  BOOST_TEST_MESSAGE("201 appends, " << commits << " commits");
  BOOST_CHECK_LE(commits, 201u + 2u);
  // Stopped over a range with nothing for it, the cursor is stored.
  append("plain");
  wait_for(p, [](const projection_status& s) { return s.position >= 202u; });
  stop(p);
  stats();  // what the projection sent as it stopped is committed
  BOOST_CHECK_EQUAL(cursor("rare"), 202u);
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

BOOST_AUTO_TEST_CASE(a_control_request_stays_until_the_projection_has_carried_it_out) {
  // varvectl's "rebuild --wait" takes the request's disappearance as "the
  // rebuild has started": a projection busy with a slow batch must not
  // have its request erased before it rebuilt.
  append("s", 200);
  auto rec = std::make_shared<recorder>();
  auto manager = spawn_busy_manager(counting("slow", rec));
  leave_request("slow", R"({"command":"rebuild"})");
  wait_request_taken("slow");
  // Gone: the slow batch was over (its event 150 handled) and the rebuild
  // committed after it; the replay has begun (it reads asynchronously, so
  // position 1 comes again soon after).
  auto seen = rec->seen();
  BOOST_CHECK_GE(std::count(seen.begin(), seen.end(), global_position{150}), 1);
  for (int i = 0; i < 5000 && std::count(seen.begin(), seen.end(), global_position{1}) < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    seen = rec->seen();
  }
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
