// Varve::testkit's projection harness: the real projection engine over a
// real store, run synchronously. Passing and failing runs, both modes,
// handler failures, rebuilds, restarts.
#define BOOST_TEST_MODULE testkit_projection_harness
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <memory>
#include <varve/testkit/projection_harness.hpp>

#include "counter.hpp"

using namespace counter_model;
using namespace std::chrono_literals;
using varve::testkit::projection_harness;
using rows_t = std::vector<std::pair<std::string, std::string>>;

namespace {

/// View "totals": stream -> the sum of its counter's additions. An amount
/// of 13 fails the handler (returns an error), 66 makes it throw.
varve::projection_spec totals(varve::delivery mode = varve::delivery::exactly_once) {
  varve::projection_spec spec;
  spec.name = "totals";
  spec.mode = mode;
  spec.filter.categories = {"counter"};
  spec.handle = [](const varve::delivered_event& d,
                   varve::view_batch& view) -> varve::result<void> {
    auto e = counter::codec::decode(d.event.type, d.event.payload);
    if (!e) return varve::error{varve::errc::corruption, "a counter event does not decode"};
    const std::int64_t n = std::holds_alternative<added>(*e) ? std::get<added>(*e).n : 0;
    if (n == 13) return varve::error{varve::errc::unavailable, "thirteen"};
    if (n == 66) throw std::runtime_error("sixty-six");
    auto current = view.get(d.stream);
    if (!current) return current.err();
    const std::int64_t total = (*current ? std::stoll(**current) : 0) + n;
    view.put(d.stream, std::to_string(total));
    return {};
  };
  return spec;
}

bool says(const varve::testkit::verdict& v, std::string_view text) {
  return v.message().find(text) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(exactly_once_over_given_events_is_live_at_the_head) {
  projection_harness h(totals());
  h.given<counter>("counter-a", {added{1}, added{2}}).given<counter>("counter-b", {added{5}});
  h.given_events("other-1", {varve::new_event{.type = "x", .payload = "not a counter"}});
  BOOST_TEST(h.run());
  BOOST_TEST(h.view("counter-a").value_or("none") == "3");
  BOOST_TEST(!h.view("other-1"));
  BOOST_TEST((h.rows() == rows_t{{"counter-a", "3"}, {"counter-b", "5"}}));
  auto s = h.status();
  BOOST_TEST(s.state == "live");
  BOOST_TEST(s.mode == "exactly_once");
  BOOST_TEST(s.position == 4u);
  BOOST_TEST(s.head == 4u);
  BOOST_TEST(s.handled == 3u);
  auto txn = h.store().store()->read();
  BOOST_TEST(txn->cursor("totals").value().value_or(0) == 4u);
}

BOOST_AUTO_TEST_CASE(at_least_once_reaches_the_store_with_its_checkpoint) {
  auto spec = totals(varve::delivery::at_least_once);
  spec.checkpoint_interval = 250ms;
  projection_harness h(spec);
  h.given<counter>("counter-a", {added{1}, added{2}, added{4}});
  BOOST_TEST(h.run());
  BOOST_TEST(h.status().mode == "at_least_once");
  BOOST_TEST(h.view("counter-a").value_or("none") == "7");
  bool checkpoint = false;
  for (const auto& t : h.timers())
    checkpoint |= t.timer == varve::engine_timer::checkpoint && t.delay == 250ms;
  BOOST_TEST(checkpoint);
  auto txn = h.store().store()->read();
  BOOST_TEST(txn->cursor("totals").value().value_or(0) == 3u);
}

BOOST_AUTO_TEST_CASE(events_given_after_a_run_are_handled_by_the_next_one) {
  projection_harness h(totals());
  h.given<counter>("counter-a", {added{1}});
  BOOST_TEST(h.run());
  h.given<counter>("counter-a", {added{10}}).given<counter>("counter-c", {added{2}});
  BOOST_TEST(h.view("counter-a").value_or("none") == "1");  // not run yet
  BOOST_TEST(h.run());
  BOOST_TEST(h.view("counter-a").value_or("none") == "11");
  BOOST_TEST(h.status().position == 3u);
  BOOST_TEST(h.status().wakeups >= 1u);
}

BOOST_AUTO_TEST_CASE(a_handler_that_keeps_failing_stops_it_and_run_says_why) {
  auto spec = totals();
  spec.max_retries = 2;
  projection_harness h(spec);
  h.given<counter>("counter-a", {added{1}, added{13}, added{2}});
  auto v = h.run();
  BOOST_TEST(!v);
  BOOST_TEST(says(v, "projection 'totals' is failed at position 1 of 3"), v.message());
  BOOST_TEST(says(v, "position 2: unavailable: thirteen"), v.message());
  auto s = h.status();
  BOOST_TEST(s.state == "failed");
  BOOST_TEST(s.error == "position 2: unavailable: thirteen");
  BOOST_TEST(h.view("counter-a").value_or("none") == "1");  // up to the failure
  std::vector<std::chrono::milliseconds> backoffs;
  for (const auto& t : h.timers())
    if (t.timer == varve::engine_timer::retry) backoffs.push_back(t.delay);
  BOOST_TEST((backoffs == std::vector<std::chrono::milliseconds>{10ms, 20ms}));
}

BOOST_AUTO_TEST_CASE(a_handler_that_throws_fails_with_handler_failed) {
  auto spec = totals();
  spec.max_retries = 0;
  projection_harness h(spec);
  h.given<counter>("counter-a", {added{66}});
  auto v = h.run();
  BOOST_TEST(!v);
  BOOST_TEST(says(v, "handler_failed: the handler threw: sixty-six"), v.message());
}

BOOST_AUTO_TEST_CASE(policy_skip_keeps_dead_letters_and_goes_on) {
  auto spec = totals();
  spec.max_retries = 0;
  spec.on_failure = varve::failure_policy::skip;
  projection_harness h(spec);
  h.given<counter>("counter-a", {added{1}, added{13}, added{2}});
  BOOST_TEST(h.run());
  BOOST_TEST(h.view("counter-a").value_or("none") == "3");
  auto letters = h.dead_letters();
  BOOST_REQUIRE(letters.size() == 1u);
  BOOST_TEST(letters[0].first == 2u);
  BOOST_TEST(letters[0].second.stream == "counter-a");
  BOOST_TEST(letters[0].second.error == "unavailable: thirteen");
  BOOST_TEST(h.status().dead_letters == 1u);
}

BOOST_AUTO_TEST_CASE(a_deterministic_projection_rebuilds_identically) {
  for (auto mode : {varve::delivery::exactly_once, varve::delivery::at_least_once}) {
    projection_harness h(totals(mode));
    h.given<counter>("counter-a", {added{1}, added{2}}).given<counter>("counter-b", {added{5}});
    BOOST_TEST(h.rebuilds_identically());  // runs first
    BOOST_TEST((h.rows() == rows_t{{"counter-a", "3"}, {"counter-b", "5"}}));
  }
}

BOOST_AUTO_TEST_CASE(a_projection_that_counts_its_calls_does_not_rebuild_identically) {
  auto calls = std::make_shared<int>(0);
  varve::projection_spec spec;
  spec.name = "calls";
  spec.handle = [calls](const varve::delivered_event& d, varve::view_batch& view) {
    view.put(d.stream, std::to_string(++*calls));
    return varve::result<void>{};
  };
  projection_harness h(spec);
  h.given<counter>("counter-a", {added{1}}).given<counter>("counter-b", {added{2}});
  BOOST_TEST(h.run());
  auto v = h.rebuilds_identically();
  BOOST_TEST(!v);
  BOOST_TEST(says(v, "view 'calls' differs after a rebuild from the same events (2 keys)"),
             v.message());
  BOOST_TEST(says(v, "key 'counter-a': '1' before, '3' after"), v.message());
}

BOOST_AUTO_TEST_CASE(a_batch_handler_and_an_encrypted_store) {
  varve::projection_spec spec;
  spec.name = "count";
  spec.batch_events = 2;
  spec.handle_batch = [](std::span<const varve::delivered_event> events, varve::view_batch& view) {
    auto current = view.get("events");
    if (!current) return varve::result<void>{current.err()};
    const auto n = (*current ? std::stoull(**current) : 0) + events.size();
    view.put("events", std::to_string(n));
    return varve::result<void>{};
  };
  projection_harness h(spec, {.encrypted = true});
  h.given<counter>("counter-a", {added{1}, added{2}, added{3}, added{4}, added{5}});
  BOOST_TEST(h.run());
  BOOST_TEST(h.store().store()->encrypted());
  BOOST_TEST(h.view("events").value_or("none") == "5");
}

BOOST_AUTO_TEST_CASE(a_restart_goes_on_from_the_stored_checkpoint) {
  for (auto mode : {varve::delivery::exactly_once, varve::delivery::at_least_once}) {
    projection_harness h(totals(mode));
    h.given<counter>("counter-a", {added{1}, added{2}});
    BOOST_TEST(h.run());
    h.restart();
    auto txn = h.store().store()->read();
    auto cursor = txn->cursor_state("totals");
    BOOST_REQUIRE(cursor.ok() && cursor->has_value());
    BOOST_CHECK(varve::parse_checkpoint_state((*cursor)->state)->state ==
                varve::projection_state::stopped);
    BOOST_CHECK_THROW(h.status(), varve::testkit::testkit_error);
    h.given<counter>("counter-a", {added{4}});
    BOOST_TEST(h.run());
    BOOST_TEST(h.view("counter-a").value_or("none") == "7");  // nothing twice
    BOOST_TEST(h.status().handled == 1u);
  }
}

BOOST_AUTO_TEST_CASE(a_spec_without_a_handler_fails_at_the_start) {
  varve::projection_spec spec;
  spec.name = "empty";
  projection_harness h(spec);
  auto v = h.run();
  BOOST_TEST(!v);
  BOOST_TEST(says(v, "projection 'empty' is failed at position 0 of 0"), v.message());
  BOOST_TEST(says(v, "projection 'empty' has no handler"), v.message());
}

BOOST_AUTO_TEST_CASE(control_requests_through_the_engine) {
  projection_harness h(totals());
  BOOST_CHECK_THROW(h.engine(), varve::testkit::testkit_error);
  h.given<counter>("counter-a", {added{1}});
  BOOST_TEST(h.run());
  std::optional<varve::projection_status> replied;
  h.engine().pause([&](const varve::projection_status& s) { replied = s; });
  h.given<counter>("counter-a", {added{2}});
  auto v = h.run();
  BOOST_REQUIRE(replied);
  BOOST_TEST(replied->state == "paused");
  BOOST_TEST(!v);
  BOOST_TEST(says(v, "is paused at position 1 of 2"), v.message());
}
