// The projection conformance suite: the same cases against every log source
// (log_sources.hpp), the log in this process and a store service in another
// process, so that a projection behaves the same wherever its log is.
#define BOOST_TEST_MODULE projection_conformance
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "harness.hpp"

using namespace conformance;

BOOST_AUTO_TEST_SUITE(projection_conformance)

BOOST_AUTO_TEST_CASE_TEMPLATE(catches_up_from_its_checkpoint_and_repeats_nothing, Source, sources) {
  harness<Source> h;
  h.append("a", 300);
  h.append("b", 200);
  auto rec = std::make_shared<probe>();
  auto p = h.spawn(counting("counts", rec));
  h.wait_caught_up(p);
  h.stop(p);
  BOOST_CHECK_EQUAL(h.cursor("counts"), 500u);
  h.append("a", 50);
  auto again = h.spawn(counting("counts", rec));
  h.wait_caught_up(again);
  auto seen = rec->seen();
  BOOST_REQUIRE_EQUAL(seen.size(), 550u);
  for (std::size_t i = 0; i < seen.size(); ++i)
    BOOST_CHECK_EQUAL(seen[i], i + 1);
  BOOST_CHECK_EQUAL(h.view_value("counts", "count/a").value_or("(none)"), "350");
  BOOST_CHECK_EQUAL(h.view_value("counts", "count/b").value_or("(none)"), "200");
  BOOST_CHECK_EQUAL(h.view_rows("counts", "event/"), 550u);
  h.stop(again);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(follows_live_heads_delivering_each_event_once_in_order, Source,
                              sources) {
  harness<Source> h;
  h.append("old", 250);
  auto rec = std::make_shared<probe>();
  auto p = h.spawn(counting("live", rec));
  h.wait_caught_up(p);
  for (int i = 0; i < 40; ++i)  // one commit each: each published, none missed
    h.append("new-" + std::to_string(i % 3), 5);
  auto s = h.wait_caught_up(p);
  BOOST_CHECK_EQUAL(s.position, 450u);
  s = h.wait_state(p, "live");
  BOOST_CHECK_EQUAL(s.lag_events, 0u);
  BOOST_CHECK_GE(s.wakeups, 1u);
  auto seen = rec->seen();
  BOOST_REQUIRE_EQUAL(seen.size(), 450u);
  for (std::size_t i = 0; i < seen.size(); ++i)
    BOOST_REQUIRE_EQUAL(seen[i], i + 1);
  h.stop(p);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(view_and_cursor_commit_together_even_when_it_is_killed, Source,
                              sources) {
  harness<Source> h;
  h.append("s", 3000);
  auto spec = counting("atomic");
  auto inner = spec.handle;
  spec.handle = [inner](const delivered_event& d, view_batch& v) -> result<void> {
    if (d.event.position % 100 == 50) std::this_thread::sleep_for(5ms);  // the kill lands mid-way
    return inner(d, v);
  };
  auto p = h.spawn(spec);
  h.wait_for(p, [](const projection_status& s) { return s.position >= 500; });
  h.stop(p, caf::exit_reason::kill);  // no last write: whatever was committed stays
  const auto at = h.cursor("atomic");
  BOOST_TEST_MESSAGE("killed at cursor " << at);
  BOOST_CHECK_GE(at, 500u);
  BOOST_CHECK_LT(at, 3000u);
  BOOST_CHECK_EQUAL(h.view_rows("atomic", "event/"), at);  // view and cursor agree
  BOOST_CHECK_EQUAL(h.view_value("atomic", "count/s").value_or("0"), std::to_string(at));
  auto again = h.spawn(spec);
  h.wait_caught_up(again);
  h.stop(again);
  BOOST_CHECK_EQUAL(h.view_rows("atomic", "event/"), 3000u);
  BOOST_CHECK_EQUAL(h.view_value("atomic", "count/s").value_or("(none)"), "3000");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(at_least_once_delivers_again_at_most_the_unsaved_tail, Source,
                              sources) {
  harness<Source> h;
  h.append("a", 1000);
  auto rec = std::make_shared<probe>();
  auto spec = counting("audit", rec, delivery::at_least_once);
  spec.checkpoint_every = 300;
  spec.checkpoint_interval = std::chrono::hours(1);
  auto p = h.spawn(spec);
  h.wait_caught_up(p);
  // Checkpoints are written beside reading: give the last one (at 900, or
  // later) up to 10 s to land, then kill without a last checkpoint.
  for (int i = 0; i < 1000 && h.cursor("audit") < 1000u - 300u; ++i)
    std::this_thread::sleep_for(10ms);
  h.stop(p, caf::exit_reason::kill);
  const auto saved = h.cursor("audit");
  BOOST_CHECK_GE(saved, 1000u - 300u);
  auto again = h.spawn(spec);
  h.wait_caught_up(again);
  h.stop(again);  // a graceful stop saves the cursor
  BOOST_CHECK_EQUAL(h.cursor("audit"), 1000u);
  BOOST_CHECK(h.stored_state("audit").mode == delivery::at_least_once);
  auto seen = rec->seen();
  BOOST_CHECK_EQUAL(seen.size(), 1000u + (1000u - saved));
  std::vector<bool> covered(1001, false);
  for (auto pos : seen)
    covered[pos] = true;
  BOOST_CHECK(std::all_of(covered.begin() + 1, covered.end(), [](bool b) { return b; }));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_failing_handler_is_retried_then_stops_failed_with_its_error, Source,
                              sources) {
  for (auto mode : {delivery::exactly_once, delivery::at_least_once}) {
    harness<Source> h;
    BOOST_TEST_CONTEXT(to_string(mode)) {
      h.append("s", 20);
      auto spec = counting("fragile", nullptr, mode);
      spec.max_retries = 2;
      auto calls = std::make_shared<std::atomic<int>>(0);
      auto inner = spec.handle;
      spec.handle = [inner, calls](const delivered_event& d, view_batch& v) -> result<void> {
        if (d.event.position == 7) {
          ++*calls;
          throw std::runtime_error("cannot handle 7");
        }
        return inner(d, v);
      };
      auto p = h.spawn(spec);
      auto s = h.wait_state(p, "failed");
      BOOST_CHECK_EQUAL(calls->load(), 3);  // the first try and two retries
      BOOST_CHECK_EQUAL(s.position, 6u);
      BOOST_CHECK_MESSAGE(s.error.find("handler_failed") != std::string::npos, s.error);
      BOOST_CHECK_MESSAGE(s.error.find("cannot handle 7") != std::string::npos, s.error);
      h.settle_writes();
      BOOST_CHECK_EQUAL(h.cursor("fragile"), 6u);
      BOOST_CHECK_EQUAL(h.view_rows("fragile", "event/"), 6u);
      auto stored = h.stored_state("fragile");  // what varvectl shows
      BOOST_CHECK(stored.state == projection_state::failed);
      BOOST_CHECK(stored.error.find("cannot handle 7") != std::string::npos);
      h.stop(p);
      BOOST_CHECK(h.stored_state("fragile").state == projection_state::failed);  // it stays
    }
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(while_it_retries_it_says_retrying_attempt_k_of_n, Source, sources) {
  harness<Source> h;
  h.append("s", 10);
  auto spec = counting("patient");
  spec.max_retries = 3;
  spec.retry_backoff = 150ms;
  auto inner = spec.handle;
  spec.handle = [inner](const delivered_event& d, view_batch& v) -> result<void> {
    if (d.event.position == 4) return error{errc::unavailable, "the mail server is down"};
    return inner(d, v);
  };
  auto p = h.spawn(spec);
  auto s = h.wait_for(p, [](const projection_status& s) { return s.attempt >= 3; });
  BOOST_CHECK_EQUAL(s.state, "retrying");
  BOOST_CHECK_EQUAL(s.attempts, 4u);  // the first try and three retries
  BOOST_CHECK_EQUAL(s.state_text(), "retrying (attempt " + std::to_string(s.attempt) + " of 4)");
  BOOST_CHECK(s.error.find("the mail server is down") != std::string::npos);
  BOOST_CHECK_EQUAL(s.position, 3u);
  auto stored = h.stored_state("patient");  // varvectl sees it too
  BOOST_CHECK(stored.state == projection_state::retrying ||
              stored.state == projection_state::failed);
  if (stored.state == projection_state::retrying) {
    BOOST_CHECK_GE(stored.attempt, 2u);
    BOOST_CHECK_EQUAL(stored.attempts, 4u);
  }
  h.wait_state(p, "failed");
  h.stop(p);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(skip_leaves_a_dead_letter_and_goes_on, Source, sources) {
  for (auto mode : {delivery::exactly_once, delivery::at_least_once}) {
    harness<Source> h;
    BOOST_TEST_CONTEXT(to_string(mode)) {
      h.append("s", 20);
      auto spec = counting("tolerant", nullptr, mode);
      spec.max_retries = 1;
      spec.on_failure = failure_policy::skip;
      auto inner = spec.handle;
      spec.handle = [inner](const delivered_event& d, view_batch& v) -> result<void> {
        if (d.event.position == 7) {
          v.put("poison", "must not stay");
          return error{errc::rejected, "bad event"};
        }
        return inner(d, v);
      };
      auto p = h.spawn(spec);
      auto s = h.wait_caught_up(p);
      BOOST_CHECK_EQUAL(s.dead_letters, 1u);
      BOOST_CHECK_EQUAL(s.error, "");
      h.stop(p);
      BOOST_CHECK_EQUAL(h.view_rows("tolerant", "event/"), 19u);
      BOOST_CHECK(!h.view_value("tolerant", "poison"));
      auto letter = h.view_value(dead_letter_view("tolerant"), position_key(7));
      BOOST_REQUIRE(letter);
      auto d = parse_dead_letter(*letter);
      BOOST_REQUIRE_MESSAGE(d.ok(), *letter);
      BOOST_CHECK_EQUAL(d->stream, "s");
      BOOST_CHECK_EQUAL(d->version, 7u);
      BOOST_CHECK(d->error.find("bad event") != std::string::npos);
      BOOST_CHECK_EQUAL(h.view_rows(dead_letter_view("tolerant"), ""), 1u);
    }
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(control_requests_pause_resume_reset_and_rebuild_it, Source, sources) {
  harness<Source> h;
  h.append("s", 100);
  auto m = h.manage({counting("managed")});
  auto at = [](global_position p) {
    return [p](const projection_status& s) { return s.position >= p; };
  };
  h.wait_managed(m, "managed", at(100));

  h.leave_request("managed", control_request{control_command::pause});
  h.wait_request_taken("managed");
  BOOST_CHECK_EQUAL(h.ask_manager(m, "managed").state, "paused");
  BOOST_CHECK(h.stored_state("managed").state == projection_state::paused);
  h.append("s", 10);
  std::this_thread::sleep_for(50ms);  // (a paused projection reads nothing, however long)
  BOOST_CHECK_EQUAL(h.ask_manager(m, "managed").position, 100u);

  h.leave_request("managed", control_request{control_command::resume});
  h.wait_request_taken("managed");
  h.wait_managed(m, "managed", at(110));
  BOOST_CHECK_EQUAL(h.view_value("managed", "count/s").value_or("(none)"), "110");

  h.leave_request("managed", control_request{control_command::rebuild});
  h.wait_request_taken("managed");  // carried out: the view is cleared, the replay begun
  auto s = h.wait_managed(m, "managed", at(110));
  BOOST_CHECK_EQUAL(s.state, "live");
  BOOST_CHECK_EQUAL(h.view_value("managed", "count/s").value_or("(none)"), "110");  // once
  BOOST_CHECK_EQUAL(h.view_rows("managed", "event/"), 110u);

  h.leave_request("managed", control_request{control_command::reset, 100});
  h.wait_request_taken("managed");
  h.wait_managed(m, "managed", at(110));
  h.stop(m);
  BOOST_CHECK_EQUAL(h.view_value("managed", "count/s").value_or("(none)"), "120");  // view kept
  BOOST_CHECK_EQUAL(h.cursor("managed"), 110u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_failed_projection_resumes_by_request_and_goes_on, Source, sources) {
  harness<Source> h;
  h.append("s", 20);
  auto broken = std::make_shared<std::atomic<bool>>(true);
  auto spec = counting("mended");
  spec.max_retries = 0;
  auto inner = spec.handle;
  spec.handle = [inner, broken](const delivered_event& d, view_batch& v) -> result<void> {
    if (d.event.position == 5 && *broken) return error{errc::unavailable, "not yet"};
    return inner(d, v);
  };
  auto m = h.manage({spec});
  h.wait_managed(m, "mended", [](const projection_status& s) { return s.state == "failed"; });
  *broken = false;  // the cause is fixed; the operator resumes it
  h.leave_request("mended", control_request{control_command::resume});
  h.wait_request_taken("mended");
  auto s = h.wait_managed(m, "mended", [](const projection_status& s) { return s.position >= 20; });
  BOOST_CHECK_EQUAL(s.error, "");
  BOOST_CHECK_EQUAL(h.view_rows("mended", "event/"), 20u);
  h.stop(m);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_paused_projection_stays_paused_across_a_restart, Source, sources) {
  harness<Source> h;
  h.append("s", 30);
  auto p = h.spawn(counting("resting"));
  h.wait_caught_up(p);
  caf::scoped_actor self{h.sys};
  self->request(p, caf::infinite, pause_atom_v)
      .receive([](const projection_status& s) { BOOST_CHECK_EQUAL(s.state, "paused"); },
               [&](caf::error& e) { BOOST_FAIL(h.sys.render(e)); });
  h.stop(p);
  BOOST_CHECK(h.stored_state("resting").state == projection_state::paused);
  h.append("s", 5);
  auto again = h.spawn(counting("resting"));
  auto s = h.status(again);
  BOOST_CHECK_EQUAL(s.state, "paused");
  BOOST_CHECK_EQUAL(s.position, 30u);
  self->request(again, caf::infinite, resume_atom_v)
      .receive([](const projection_status&) {},
               [&](caf::error& e) { BOOST_FAIL(h.sys.render(e)); });
  h.wait_for(again, [](const projection_status& s) { return s.position >= 35; });
  h.stop(again);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(once_caught_up_its_stored_state_says_live, Source, sources) {
  harness<Source> h;
  h.append("s", 250);
  auto p = h.spawn(counting("watched"));
  h.wait_caught_up(p);
  h.settle_writes();
  auto stored = h.stored_state("watched");  // varvectl's "rebuild --wait" waits for this
  BOOST_CHECK_EQUAL(to_string(stored.state), "live");
  BOOST_CHECK_EQUAL(h.cursor("watched"), 250u);
  h.stop(p);
  BOOST_CHECK(h.stored_state("watched").state == projection_state::stopped);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(shredded_events_are_delivered_with_their_envelope, Source, sources) {
  harness<Source> h;
  h.append("a", 3);
  h.append("secret", 3);
  h.append("b", 3);
  h.shred("secret");
  auto rec = std::make_shared<probe>();
  auto p = h.spawn(counting("all", rec));
  auto s = h.wait_caught_up(p);
  BOOST_CHECK_EQUAL(s.state, "live");
  h.stop(p);
  std::lock_guard lock(rec->mutex);
  BOOST_REQUIRE_EQUAL(rec->copies.size(), 9u);
  for (std::size_t i = 0; i < 9; ++i) {
    const auto& e = rec->copies[i].event;
    const bool secret = i >= 3 && i < 6;
    BOOST_CHECK_EQUAL(e.shredded, secret);
    BOOST_CHECK_EQUAL(e.position, i + 1);
    BOOST_CHECK_EQUAL(e.version, i % 3 + 1);
    BOOST_CHECK(e.time > 0);
    BOOST_CHECK_EQUAL(rec->streams[i], secret ? "secret" : i < 3 ? "a" : "b");
  }
  BOOST_CHECK_EQUAL(h.view_value("all", "count/secret").value_or("(none)"), "3");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_filter_of_types_and_tags_hands_over_only_its_events, Source,
                              sources) {
  harness<Source> h;
  std::vector<global_position> want;
  global_position at = 0;
  auto append = [&](int commit) {
    std::vector<new_event> events;
    for (int k = 0; k < 5; ++k) {
      new_event e{.type = (commit + k) % 7 == 0 ? "flagged" : "plain", .payload = "x"};
      if ((commit * 5 + k) % 3 == 0) e.tags = {"team:red", "n:" + std::to_string(k)};
      if ((commit * 5 + k) % 4 == 0) e.tags.push_back("team:blue");
      ++at;
      if (e.type == "flagged" && (commit * 5 + k) % 3 == 0) want.push_back(at);
      events.push_back(std::move(e));
    }
    h.append_events("s-" + std::to_string(commit % 4), std::move(events));
  };
  for (int i = 0; i < 30; ++i)
    append(i);
  auto rec = std::make_shared<probe>();
  auto spec = counting("flagged", rec);
  spec.filter.event_types = {"flagged"};
  spec.filter.tags = {"team:red"};
  spec.batch_events = 7;
  auto p = h.spawn(spec);
  h.wait_caught_up(p);
  for (int i = 30; i < 60; ++i)  // live: one commit each
    append(i);
  auto s = h.wait_caught_up(p);
  BOOST_CHECK_EQUAL(s.position, 300u);
  auto seen = rec->seen();
  BOOST_CHECK_EQUAL_COLLECTIONS(seen.begin(), seen.end(), want.begin(), want.end());
  h.stop(p);
  BOOST_CHECK_EQUAL(h.cursor("flagged"), 300u);
  BOOST_CHECK_EQUAL(h.view_rows("flagged", "event/"), want.size());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_malformed_control_request_is_reported_on_its_projection, Source,
                              sources) {
  const std::vector<std::pair<std::string, std::string>> malformed{
      {R"({"command":5})", "'command' is a number"},
      {R"({"command":"reset","position":-3})", "'position' is a number"},
      {R"({"command":"explode"})", "unknown command 'explode'"},
      {"pause, please", "is not JSON"},
  };
  harness<Source> h;
  h.append("s", 10);
  auto m = h.manage({counting("target"), counting("bystander")});
  global_position head = 10;
  auto at = [&](const projection_status& s) { return s.position >= head; };
  h.wait_managed(m, "target", at);
  for (const auto& [row, problem] : malformed) {
    BOOST_TEST_CONTEXT("request " << row) {
      h.leave_request("target", row);
      h.wait_request_taken("target");  // not carried out, erased once its error is recorded
      h.append("s", 1);
      ++head;
      auto s = h.wait_managed(m, "target", at);  // it goes on
      BOOST_CHECK_NE(s.state, "failed");
      BOOST_CHECK_MESSAGE(s.error.find(problem) != std::string::npos, s.error);
      BOOST_CHECK_EQUAL(h.wait_managed(m, "bystander", at).error, "");
      BOOST_CHECK_MESSAGE(h.stored_state("target").error.find(problem) != std::string::npos,
                          "stored with the cursor for varvectl");
    }
  }
  h.stop(m);
  BOOST_CHECK_EQUAL(h.view_value("target", "count/s").value_or("(none)"), std::to_string(head));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_malformed_cursor_state_is_reported_and_it_goes_on_from_its_cursor,
                              Source, sources) {
  harness<Source> h;
  h.append("s", 20);
  {  // another process left a state in another shape
    write_request w;
    w.cursors.push_back(cursor_update{"odd", 12, R"({"state":{"paused":true}})", {}});
    h.write(std::move(w));
  }
  auto rec = std::make_shared<probe>();
  auto p = h.spawn(counting("odd", rec));
  auto s = h.wait_caught_up(p);
  BOOST_CHECK_MESSAGE(s.error.find("'state' is an object") != std::string::npos, s.error);
  auto seen = rec->seen();
  BOOST_REQUIRE_EQUAL(seen.size(), 8u);  // from the stored position on
  BOOST_CHECK_EQUAL(seen.front(), 13u);
  h.stop(p);
  auto stored = h.stored_state("odd");  // sound again, and it keeps the error
  BOOST_CHECK(stored.state == projection_state::stopped);
  BOOST_CHECK(stored.error.find("'state' is an object") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
