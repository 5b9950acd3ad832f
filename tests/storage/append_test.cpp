// event_store::append: positions and versions, expected-version checks,
// atomicity, idempotency, what is stored, bad input, reopen.
#define BOOST_TEST_MODULE append
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

using namespace varve;
using varve_test::make_event;
using varve_test::make_events;
using varve_test::mentions_number;
using varve_test::mentions_word;
using varve_test::store_fixture;

namespace {

/// Events with caller-given ids.
std::vector<new_event> events_with_ids(std::size_t n, std::string_view prefix) {
  auto events = make_events(n, prefix);
  for (auto& e : events)
    e.id = event_id::generate();
  return events;
}

std::uint64_t id_millis(const event_id& id) {
  std::uint64_t ms = 0;
  for (int i = 0; i < 6; ++i)
    ms = (ms << 8) | id.bytes[i];
  return ms;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(appending, store_fixture)

BOOST_AUTO_TEST_CASE(first_append_lands_at_position_one_and_version_one) {
  BOOST_TEST(head() == 0u);
  const auto r = append("first", expected_version::any(), {make_event("created", "x")});
  BOOST_TEST(r.first_version == 1u);
  BOOST_TEST(r.last_version == 1u);
  BOOST_TEST(r.first_position == 1u);
  BOOST_TEST(r.last_position == 1u);
  BOOST_TEST(!r.idempotent);

  auto tx = read();
  BOOST_TEST(tx.head() == 1u);
  BOOST_TEST(tx.stream_count() == 1u);
  auto info = tx.stream("first");
  VARVE_REQUIRE_OK(info);
  BOOST_REQUIRE(info.value().has_value());
  BOOST_TEST(info.value()->version == 1u);
  BOOST_TEST(info.value()->last_position == 1u);
  BOOST_TEST(info.value()->state == stream_state::live);
  auto ev = tx.event_at(1);
  VARVE_REQUIRE_OK(ev);
  BOOST_TEST(ev->position == 1u);
  BOOST_TEST(ev->version == 1u);
  BOOST_TEST(ev->previous_position == 0u);
  BOOST_TEST(ev->stream_id == info.value()->id);
}

BOOST_AUTO_TEST_CASE(interleaved_appends_to_two_streams_read_back_in_commit_order) {
  const auto a1 = append("alpha", expected_version::any(), {make_event("t", "a1")});
  const auto b1 = append("beta", expected_version::any(), {make_event("t", "b1")});
  const auto a23 =
      append("alpha", expected_version::any(), {make_event("t", "a2"), make_event("t", "a3")});
  const auto b2 = append("beta", expected_version::any(), {make_event("t", "b2")});

  BOOST_TEST(a1.first_position == 1u);
  BOOST_TEST(b1.first_position == 2u);
  BOOST_TEST(a23.first_position == 3u);
  BOOST_TEST(a23.last_position == 4u);
  BOOST_TEST(a23.first_version == 2u);
  BOOST_TEST(a23.last_version == 3u);
  BOOST_TEST(b2.first_position == 5u);
  BOOST_TEST(b2.first_version == 2u);

  const auto log = this->log();
  BOOST_REQUIRE_EQUAL(log.size(), 5u);
  const std::vector<std::string> streams = {"alpha", "beta", "alpha", "alpha", "beta"};
  const std::vector<std::string> payloads = {"a1", "b1", "a2", "a3", "b2"};
  const std::vector<stream_version> versions = {1, 1, 2, 3, 2};
  for (std::size_t i = 0; i < log.size(); ++i) {
    BOOST_TEST_CONTEXT("log entry " << i) {
      BOOST_TEST(log[i].position == i + 1);
      BOOST_TEST(log[i].stream == streams[i]);
      BOOST_TEST(log[i].payload == payloads[i]);
      BOOST_TEST(log[i].version == versions[i]);
    }
  }

  // The view-level read agrees, and stream ids resolve to the names.
  auto tx = read();
  auto views = tx.read_log(1, direction::forward, 100);
  VARVE_REQUIRE_OK(views);
  BOOST_REQUIRE_EQUAL(views->size(), 5u);
  for (std::size_t i = 0; i < views->size(); ++i) {
    auto name = tx.stream_name((*views)[i].stream_id);
    VARVE_REQUIRE_OK(name);
    BOOST_TEST(*name == streams[i]);
  }
}

BOOST_AUTO_TEST_CASE(any_appends_to_a_new_and_to_an_existing_stream) {
  const auto r1 = append("anything", expected_version::any(), make_events(2));
  BOOST_TEST(r1.first_version == 1u);
  const auto r2 = append("anything", expected_version::any(), make_events(3));
  BOOST_TEST(r2.first_version == 3u);
  BOOST_TEST(r2.last_version == 5u);
  BOOST_TEST(version_of("anything") == 5u);
}

BOOST_AUTO_TEST_CASE(no_stream_succeeds_on_a_new_stream_and_fails_on_an_existing_one) {
  const auto r = append("account", expected_version::no_stream(), make_events(7));
  BOOST_TEST(r.first_version == 1u);
  BOOST_TEST(r.last_version == 7u);

  auto again = store->append("account", expected_version::no_stream(), make_events(1));
  VARVE_REQUIRE_ERRC(again, errc::wrong_expected_version);
  const auto& msg = again.err().message();
  BOOST_TEST_MESSAGE("message: " << msg);
  BOOST_TEST(mentions_word(msg, "no_stream"), "message names the expectation: " << msg);
  BOOST_TEST(mentions_number(msg, 7), "message names the actual version 7: " << msg);
  BOOST_TEST(version_of("account") == 7u);
  BOOST_TEST(head() == 7u);
}

BOOST_AUTO_TEST_CASE(stream_exists_succeeds_on_an_existing_stream_and_fails_on_a_missing_one) {
  auto missing = store->append("ghost", expected_version::stream_exists(), make_events(1));
  VARVE_REQUIRE_ERRC(missing, errc::wrong_expected_version);
  const auto& msg = missing.err().message();
  BOOST_TEST_MESSAGE("message: " << msg);
  BOOST_TEST(mentions_word(msg, "stream_exists"), "message names the expectation: " << msg);
  BOOST_TEST((mentions_number(msg, 0) || mentions_word(msg, "not exist") ||
              mentions_word(msg, "no_stream") || mentions_word(msg, "missing")),
             "message names the actual state (version 0 / no stream): " << msg);
  BOOST_TEST(head() == 0u);
  BOOST_TEST(read().stream_count() == 0u);

  append("ghost", expected_version::any(), make_events(2));
  const auto r = append("ghost", expected_version::stream_exists(), make_events(1));
  BOOST_TEST(r.first_version == 3u);
  BOOST_TEST(r.first_position == 3u);
}

BOOST_AUTO_TEST_CASE(exact_version_succeeds_when_it_matches_and_names_both_versions_when_not) {
  append("ledger", expected_version::any(), make_events(5));
  const auto ok = append("ledger", expected_version::exact(5), make_events(1));
  BOOST_TEST(ok.first_version == 6u);

  auto behind = store->append("ledger", expected_version::exact(3), make_events(1));
  VARVE_REQUIRE_ERRC(behind, errc::wrong_expected_version);
  BOOST_TEST_MESSAGE("message: " << behind.err().message());
  BOOST_TEST(mentions_number(behind.err().message(), 3), behind.err().message());
  BOOST_TEST(mentions_number(behind.err().message(), 6), behind.err().message());

  auto ahead = store->append("ledger", expected_version::exact(42), make_events(1));
  VARVE_REQUIRE_ERRC(ahead, errc::wrong_expected_version);
  BOOST_TEST(mentions_number(ahead.err().message(), 42), ahead.err().message());
  BOOST_TEST(mentions_number(ahead.err().message(), 6), ahead.err().message());

  auto on_missing = store->append("nowhere", expected_version::exact(2), make_events(1));
  VARVE_REQUIRE_ERRC(on_missing, errc::wrong_expected_version);
  BOOST_TEST(mentions_number(on_missing.err().message(), 2), on_missing.err().message());

  BOOST_TEST(version_of("ledger") == 6u);
  BOOST_TEST(version_of("nowhere") == 0u);
  BOOST_TEST(head() == 6u);
}

BOOST_AUTO_TEST_CASE(exact_version_never_leaves_a_gap) {
  append("gapless", expected_version::any(), make_events(1));

  auto skip = store->append("gapless", expected_version::exact(3), make_events(1));
  VARVE_REQUIRE_ERRC(skip, errc::wrong_expected_version);
  auto skip_one = store->append("gapless", expected_version::exact(2), make_events(1));
  VARVE_REQUIRE_ERRC(skip_one, errc::wrong_expected_version);
  BOOST_TEST(version_of("gapless") == 1u);
  BOOST_TEST(head() == 1u);

  for (stream_version v = 1; v < 10; ++v) {
    const auto r = append("gapless", expected_version::exact(v), make_events(1));
    BOOST_TEST(r.first_version == v + 1);
    // Each expectation that has just been consumed is now refused.
    auto stale = store->append("gapless", expected_version::exact(v), make_events(1));
    VARVE_CHECK_ERRC(stale, errc::wrong_expected_version);
  }

  const auto events = stream_events("gapless");
  BOOST_REQUIRE_EQUAL(events.size(), 10u);
  for (std::size_t i = 0; i < events.size(); ++i) {
    BOOST_TEST(events[i].version == i + 1);
    BOOST_TEST(events[i].position == i + 1);
  }
  BOOST_TEST(head() == 10u);
}

BOOST_AUTO_TEST_CASE(exact_zero_on_an_empty_stream_behaves_like_no_stream) {
  const auto r = append("fresh", expected_version::exact(0), make_events(2));
  BOOST_TEST(r.first_version == 1u);
  BOOST_TEST(r.last_version == 2u);
  BOOST_TEST(r.first_position == 1u);

  auto again = store->append("fresh", expected_version::exact(0), make_events(1));
  VARVE_REQUIRE_ERRC(again, errc::wrong_expected_version);
  BOOST_TEST(mentions_number(again.err().message(), 0), again.err().message());
  BOOST_TEST(mentions_number(again.err().message(), 2), again.err().message());

  auto as_no_stream = store->append("fresh", expected_version::no_stream(), make_events(1));
  VARVE_REQUIRE_ERRC(as_no_stream, errc::wrong_expected_version);
  BOOST_TEST(version_of("fresh") == 2u);
}

BOOST_AUTO_TEST_CASE(multi_event_append_with_an_empty_type_writes_nothing) {
  append("before", expected_version::any(), make_events(1));
  auto events = make_events(3, "atomic");
  events[1].type.clear();
  auto r = store->append("atomic", expected_version::any(), events);
  VARVE_REQUIRE_ERRC(r, errc::invalid_argument);
  BOOST_TEST(head() == 1u);
  BOOST_TEST(version_of("atomic") == 0u);
  BOOST_TEST(read().stream_count() == 1u);

  // Also into an existing stream.
  auto r2 = store->append("before", expected_version::exact(1), events);
  VARVE_REQUIRE_ERRC(r2, errc::invalid_argument);
  BOOST_TEST(version_of("before") == 1u);
  BOOST_TEST(head() == 1u);
}

BOOST_AUTO_TEST_CASE(multi_event_append_with_an_oversize_event_writes_nothing) {
  opts.max_event_bytes = 1024;
  reopen();
  append("before", expected_version::any(), make_events(1));
  auto events = make_events(4, "atomic");
  events[2].payload.assign(2000, 'x');
  auto r = store->append("atomic", expected_version::any(), events);
  VARVE_REQUIRE_ERRC(r, errc::invalid_argument);
  BOOST_TEST(head() == 1u);
  BOOST_TEST(version_of("atomic") == 0u);
  BOOST_TEST(log().size() == 1u);
}

BOOST_AUTO_TEST_CASE(multi_stream_append_commits_every_stream_together) {
  append("one", expected_version::any(), make_events(1));
  std::vector<append_request> requests(3);
  requests[0] = {"one", expected_version::exact(1), make_events(2, "one")};
  requests[1] = {"two", expected_version::no_stream(), make_events(3, "two")};
  requests[2] = {"three", expected_version::any(), make_events(1, "three")};
  auto r = store->append(requests);
  VARVE_REQUIRE_OK(r);
  BOOST_REQUIRE_EQUAL(r->size(), 3u);
  const auto& res = *r;
  BOOST_TEST(res[0].first_version == 2u);
  BOOST_TEST(res[0].last_version == 3u);
  BOOST_TEST(res[0].first_position == 2u);
  BOOST_TEST(res[0].last_position == 3u);
  BOOST_TEST(res[1].first_version == 1u);
  BOOST_TEST(res[1].last_version == 3u);
  BOOST_TEST(res[1].first_position == 4u);
  BOOST_TEST(res[1].last_position == 6u);
  BOOST_TEST(res[2].first_version == 1u);
  BOOST_TEST(res[2].first_position == 7u);
  BOOST_TEST(res[2].last_position == 7u);
  BOOST_TEST(head() == 7u);
  BOOST_TEST(version_of("one") == 3u);
  BOOST_TEST(version_of("two") == 3u);
  BOOST_TEST(version_of("three") == 1u);
}

BOOST_AUTO_TEST_CASE(multi_stream_append_writes_nothing_when_one_expectation_fails) {
  append("existing", expected_version::any(), make_events(1));
  std::vector<append_request> requests(3);
  requests[0] = {"newcomer", expected_version::any(), make_events(2)};
  requests[1] = {"existing", expected_version::exact(0), make_events(1)};  // conflict
  requests[2] = {"another", expected_version::no_stream(), make_events(1)};
  auto r = store->append(requests);
  VARVE_REQUIRE_ERRC(r, errc::wrong_expected_version);
  BOOST_TEST(head() == 1u);
  BOOST_TEST(version_of("newcomer") == 0u);
  BOOST_TEST(version_of("existing") == 1u);
  BOOST_TEST(version_of("another") == 0u);
  BOOST_TEST(read().stream_count() == 1u);

  // Positions are not burnt by the failure.
  const auto next = append("newcomer", expected_version::any(), make_events(1));
  BOOST_TEST(next.first_position == 2u);
}

BOOST_AUTO_TEST_CASE(multi_stream_append_writes_nothing_when_one_event_is_bad) {
  std::vector<append_request> requests(2);
  requests[0] = {"good", expected_version::any(), make_events(2)};
  requests[1] = {"bad", expected_version::any(), make_events(2)};
  requests[1].events[1].type.clear();
  auto r = store->append(requests);
  VARVE_REQUIRE_ERRC(r, errc::invalid_argument);
  BOOST_TEST(head() == 0u);
  BOOST_TEST(read().stream_count() == 0u);
}

BOOST_AUTO_TEST_CASE(multi_stream_append_naming_a_stream_twice_is_refused) {
  std::vector<append_request> requests(2);
  requests[0] = {"twice", expected_version::any(), make_events(1)};
  requests[1] = {"twice", expected_version::any(), make_events(1)};
  auto r = store->append(requests);
  VARVE_REQUIRE_ERRC(r, errc::invalid_argument);
  BOOST_TEST(head() == 0u);
}

BOOST_AUTO_TEST_CASE(an_append_to_many_streams_naming_one_twice_is_refused_naming_it) {
  // Few streams are compared pairwise, many through a set: both ways, with
  // the repeated stream first and last.
  for (std::size_t n : {3u, 8u, 9u, 40u}) {
    for (bool last : {false, true}) {
      std::vector<append_request> requests;
      for (std::size_t i = 0; i < n; ++i)
        requests.push_back({"s-" + std::to_string(i), expected_version::any(), make_events(1)});
      if (last)
        requests.back().stream = requests[n - 2].stream;
      else
        requests[1].stream = requests[0].stream;
      auto r = store->append(requests);
      VARVE_REQUIRE_ERRC(r, errc::invalid_argument);
      BOOST_TEST(r.err().message().find("'" + requests[last ? n - 1 : 1].stream +
                                        "' appears twice") != std::string::npos,
                 r.err().message());
      BOOST_TEST(head() == 0u);
    }
  }
  // Distinct streams, as many, are appended.
  std::vector<append_request> distinct;
  for (std::size_t i = 0; i < 40; ++i)
    distinct.push_back({"s-" + std::to_string(i), expected_version::any(), make_events(1)});
  BOOST_REQUIRE(store->append(distinct).ok());
  BOOST_TEST(head() == 40u);
}

BOOST_AUTO_TEST_CASE(idempotent_reappend_with_exact_version_returns_the_original_places) {
  const auto events = events_with_ids(3, "idem");
  const auto first = append("orders", expected_version::exact(0), events);
  append("other", expected_version::any(), make_events(2));
  BOOST_TEST(head() == 5u);

  const auto again = append("orders", expected_version::exact(0), events);
  BOOST_TEST(again.idempotent);
  BOOST_TEST(again.first_version == first.first_version);
  BOOST_TEST(again.last_version == first.last_version);
  BOOST_TEST(again.first_position == first.first_position);
  BOOST_TEST(again.last_position == first.last_position);
  BOOST_TEST(head() == 5u);
  BOOST_TEST(version_of("orders") == 3u);

  // Still idempotent after the stream moved on: the events sit at that place.
  append("orders", expected_version::exact(3), make_events(1));
  const auto later = append("orders", expected_version::exact(0), events);
  BOOST_TEST(later.idempotent);
  BOOST_TEST(later.first_position == first.first_position);
  BOOST_TEST(later.last_position == first.last_position);
  BOOST_TEST(head() == 6u);
  BOOST_TEST(version_of("orders") == 4u);

  // Events in the middle of a stream, placed with exact(n > 0).
  const auto tail = events_with_ids(2, "tail");
  const auto placed = append("orders", expected_version::exact(4), tail);
  const auto replay = append("orders", expected_version::exact(4), tail);
  BOOST_TEST(replay.idempotent);
  BOOST_TEST(replay.first_version == 5u);
  BOOST_TEST(replay.last_version == 6u);
  BOOST_TEST(replay.first_position == placed.first_position);
  BOOST_TEST(head() == 8u);
  BOOST_TEST(log().size() == 8u);
}

BOOST_AUTO_TEST_CASE(idempotent_reappend_with_no_stream_returns_the_original_places) {
  const auto events = events_with_ids(2, "idem");
  const auto first = append("created-once", expected_version::no_stream(), events);
  const auto again = append("created-once", expected_version::no_stream(), events);
  BOOST_TEST(again.idempotent);
  BOOST_TEST(again.first_position == first.first_position);
  BOOST_TEST(again.last_position == first.last_position);
  BOOST_TEST(again.first_version == 1u);
  BOOST_TEST(again.last_version == 2u);
  BOOST_TEST(head() == 2u);
  BOOST_TEST(version_of("created-once") == 2u);
}

BOOST_AUTO_TEST_CASE(idempotent_reappend_with_any_and_caller_given_ids_writes_nothing) {
  const auto events = events_with_ids(3, "any");
  append("elsewhere", expected_version::any(), make_events(1));
  const auto first = append("anyway", expected_version::any(), events);
  append("elsewhere", expected_version::any(), make_events(1));
  const auto again = append("anyway", expected_version::any(), events);
  BOOST_TEST(again.idempotent);
  BOOST_TEST(again.first_position == first.first_position);
  BOOST_TEST(again.last_position == first.last_position);
  BOOST_TEST(again.first_version == first.first_version);
  BOOST_TEST(again.last_version == first.last_version);
  BOOST_TEST(head() == 5u);
  BOOST_TEST(version_of("anyway") == 3u);
}

BOOST_AUTO_TEST_CASE(reappending_events_without_ids_writes_them_again) {
  const auto events = make_events(2, "no-id");
  append("dupes", expected_version::any(), events);
  const auto again = append("dupes", expected_version::any(), events);
  BOOST_TEST(!again.idempotent);
  BOOST_TEST(again.first_version == 3u);
  BOOST_TEST(head() == 4u);
}

BOOST_AUTO_TEST_CASE(metadata_type_id_and_caller_time_round_trip) {
  std::string payload;
  for (int i = 0; i < 256; ++i)
    payload.push_back(static_cast<char>(i));
  payload += std::string("\0\0tail", 6);
  new_event e = make_event("OrderPlaced.v2", payload, R"({"correlation":"c-1","user":"ü"})");
  e.id = event_id::generate();
  e.time = timestamp_us{1'600'000'000'123'456};
  new_event bare = make_event("Bare");  // empty payload and metadata
  bare.id = event_id::generate();
  bare.time = timestamp_us{1};

  const auto r = append("round-trip", expected_version::any(), {e, bare});

  auto check = [&](const auto& got, const new_event& want) {
    BOOST_TEST(got.type == want.type);
    BOOST_TEST(got.payload == want.payload);
    BOOST_TEST(got.metadata == want.metadata);
    BOOST_TEST(got.id == *want.id);
    BOOST_TEST(got.time == *want.time);
  };
  {
    auto tx = read();
    auto v = tx.event_at(r.first_position);
    VARVE_REQUIRE_OK(v);
    check(*v, e);
    auto v2 = tx.event_at(r.last_position);
    VARVE_REQUIRE_OK(v2);
    check(*v2, bare);
  }
  const auto events = stream_events("round-trip");
  BOOST_REQUIRE_EQUAL(events.size(), 2u);
  check(events[0], e);
  check(events[1], bare);
  BOOST_TEST(events[0].stream == "round-trip");
  const auto log = this->log();
  BOOST_REQUIRE_EQUAL(log.size(), 2u);
  check(log[0], e);

  reopen();
  const auto reopened = stream_events("round-trip");
  BOOST_REQUIRE_EQUAL(reopened.size(), 2u);
  check(reopened[0], e);
  check(reopened[1], bare);
}

BOOST_AUTO_TEST_CASE(append_time_is_used_when_none_is_given) {
  using namespace std::chrono;
  const auto now_us = [] {
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  };
  const timestamp_us before = now_us();
  append("clocked", expected_version::any(), make_events(1));
  const timestamp_us after = now_us();
  const auto events = stream_events("clocked");
  BOOST_REQUIRE_EQUAL(events.size(), 1u);
  BOOST_TEST(events[0].time >= before);
  BOOST_TEST(events[0].time <= after);
}

BOOST_AUTO_TEST_CASE(generated_ids_are_distinct_and_time_ordered) {
  for (int i = 0; i < 20; ++i)
    append("ids", expected_version::any(), make_events(50));
  const auto events = stream_events("ids");
  BOOST_REQUIRE_EQUAL(events.size(), 1000u);
  std::set<std::string> seen;
  std::uint64_t last_ms = 0;
  for (const auto& e : events) {
    BOOST_TEST(e.id != event_id{});
    seen.insert(e.id.to_string());
    const auto ms = id_millis(e.id);
    BOOST_TEST(ms >= last_ms, "id " << e.id.to_string() << " goes back in time");
    last_ms = ms;
    // The id carries the wall clock (generously: within a minute of the append time).
    const auto time_ms = static_cast<std::uint64_t>(e.time / 1000);
    BOOST_TEST((ms + 60'000 >= time_ms && ms <= time_ms + 60'000),
               "id ms " << ms << " vs event time " << e.time);
  }
  BOOST_TEST(seen.size() == 1000u);
}

BOOST_AUTO_TEST_CASE(bad_input_is_refused_with_invalid_argument) {
  opts.max_event_bytes = 1024;
  reopen();
  append("valid", expected_version::any(), make_events(1));

  struct bad_case {
    std::string what;
    std::string stream;
    std::vector<new_event> events;
  };
  std::vector<bad_case> cases;
  cases.push_back({"empty stream name", "", make_events(1)});
  cases.push_back({"stream name of 512 bytes", std::string(512, 'n'), make_events(1)});
  cases.push_back({"stream name of 4096 bytes", std::string(4096, 'n'), make_events(1)});
  cases.push_back({"stream name with byte 0xff", "bad\xff\xfe", make_events(1)});
  cases.push_back({"stream name with a truncated sequence", "euro\xe2\x82", make_events(1)});
  cases.push_back({"stream name with a lone continuation byte", "\x80start", make_events(1)});
  // After whole words of ASCII (validated eight bytes at a time), and at
  // the end of a word.
  cases.push_back(
      {"stream name with byte 0xff after 16 ASCII bytes", "account-12345678\xff", make_events(1)});
  cases.push_back(
      {"stream name with a truncated sequence ending a word", "account\xe2", make_events(1)});
  cases.push_back({"stream name with a lone continuation byte in the third word",
                   "account-12345678-sub\x80-name", make_events(1)});
  cases.push_back({"no events", "valid", {}});
  cases.push_back({"empty type", "valid", {make_event("", "payload")}});
  cases.push_back(
      {"payload over max_event_bytes", "valid", {make_event("big", std::string(1025, 'p'))}});
  cases.push_back({"type + metadata + payload over max_event_bytes",
                   "valid",
                   {make_event("tttt", std::string(600, 'p'), std::string(421, 'm'))}});

  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.what) {
      for (auto expected : {expected_version::any(), expected_version::exact(1)}) {
        auto r = store->append(c.stream, expected, c.events);
        VARVE_CHECK_ERRC(r, errc::invalid_argument);
        if (!r.ok()) BOOST_TEST_MESSAGE(c.what << ": " << r.err().message());
      }
    }
  }
  BOOST_TEST(head() == 1u);
  BOOST_TEST(read().stream_count() == 1u);
  BOOST_TEST(version_of("valid") == 1u);
}

BOOST_AUTO_TEST_CASE(stream_name_with_overlong_or_surrogate_utf8_is_refused) {
  for (std::string name : {std::string("slash\xc0\xaf"), std::string("surrogate\xed\xa0\x80"),
                           std::string("beyond\xf4\x90\x80\x80")}) {
    auto r = store->append(name, expected_version::any(), make_events(1));
    VARVE_CHECK_ERRC(r, errc::invalid_argument);
  }
  BOOST_TEST(head() == 0u);
}

BOOST_AUTO_TEST_CASE(limits_are_inclusive_511_byte_names_and_max_event_bytes_events) {
  opts.max_event_bytes = 1024;
  reopen();
  const std::string long_name(511, 'n');
  const auto r = append(long_name, expected_version::any(), make_events(1));
  BOOST_TEST(r.first_position == 1u);
  BOOST_TEST(version_of(long_name) == 1u);

  // type + metadata + payload == max_event_bytes exactly.
  const auto full = append("full", expected_version::any(),
                           {make_event("tttt", std::string(600, 'p'), std::string(420, 'm'))});
  BOOST_TEST(full.first_position == 2u);
  const auto events = stream_events("full");
  BOOST_REQUIRE_EQUAL(events.size(), 1u);
  BOOST_TEST(events[0].payload.size() == 600u);
  BOOST_TEST(events[0].metadata.size() == 420u);
}

BOOST_AUTO_TEST_CASE(multibyte_utf8_stream_names_are_accepted) {
  const std::string name = "konto-\xc3\xbc-\xe2\x82\xac-\xf0\x9f\x98\x80";  // ü € 😀
  append(name, expected_version::no_stream(), make_events(2));
  BOOST_TEST(version_of(name) == 2u);
  const auto events = stream_events(name);
  BOOST_REQUIRE_EQUAL(events.size(), 2u);
  BOOST_TEST(events[0].stream == name);
}

BOOST_AUTO_TEST_CASE(reopen_after_close_keeps_everything_and_appends_continue) {
  append("a", expected_version::any(), make_events(3, "a"));
  append("b", expected_version::any(), make_events(2, "b"));
  const auto before = log();
  std::uint64_t id_a = 0;
  std::uint64_t id_b = 0;
  {
    auto tx = read();
    id_a = tx.stream("a").value()->id;
    id_b = tx.stream("b").value()->id;
  }

  reopen();
  const auto after = log();
  BOOST_REQUIRE_EQUAL(after.size(), before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    BOOST_TEST(after[i].position == before[i].position);
    BOOST_TEST(after[i].stream == before[i].stream);
    BOOST_TEST(after[i].version == before[i].version);
    BOOST_TEST(after[i].id == before[i].id);
    BOOST_TEST(after[i].payload == before[i].payload);
  }
  BOOST_TEST(head() == 5u);
  BOOST_TEST(version_of("a") == 3u);

  const auto next = append("a", expected_version::exact(3), make_events(1));
  BOOST_TEST(next.first_position == 6u);
  BOOST_TEST(next.first_version == 4u);
  auto stale = store->append("b", expected_version::exact(1), make_events(1));
  VARVE_CHECK_ERRC(stale, errc::wrong_expected_version);
  const auto fresh = append("c", expected_version::no_stream(), make_events(1));
  BOOST_TEST(fresh.first_position == 7u);

  auto tx = read();
  BOOST_TEST(tx.stream_count() == 3u);
  BOOST_TEST(tx.stream("a").value()->id == id_a);
  BOOST_TEST(tx.stream("b").value()->id == id_b);
  const auto id_c = tx.stream("c").value()->id;
  BOOST_TEST(id_c != id_a);
  BOOST_TEST(id_c != id_b);
}

BOOST_AUTO_TEST_CASE(appends_from_many_threads_keep_one_gapless_order) {
  // The store is shared by threads: each appends to its own stream with
  // exact versions and to a shared one with `any` (3 events at a time),
  // while a reader checks that no snapshot shows a gap or half an append.
  constexpr std::size_t threads = 4;
  constexpr std::size_t per_thread = 300;
  std::vector<std::string> errors(threads);
  std::atomic<bool> writing{true};
  std::atomic<std::size_t> bad_snapshots{0};
  std::atomic<std::size_t> snapshots{0};

  std::thread reader([&] {
    while (writing.load()) {
      auto tx = store->read();
      if (!tx.ok()) {
        ++bad_snapshots;
        continue;
      }
      global_position expected = 1;
      std::size_t shared = 0;
      bool ok = true;
      auto check = [&](const event_view& e) {
        ok = ok && e.position == expected++;
        if (e.type == "shared") ++shared;
        return true;
      };
      auto n = tx->scan_log(1, direction::forward, SIZE_MAX, check);
      if (!n.ok() || !ok || *n != tx->head() || shared % 3 != 0) ++bad_snapshots;
      ++snapshots;
    }
  });

  std::vector<std::thread> writers;
  for (std::size_t t = 0; t < threads; ++t) {
    writers.emplace_back([&, t] {
      const std::string own = "own-" + std::to_string(t);
      stream_version version = 0;
      for (std::size_t i = 0; i < per_thread; ++i) {
        if (i % 2 == 0) {
          std::vector<new_event> events;
          for (int k = 0; k < 3; ++k) {
            events.push_back(make_event(
                "shared", std::to_string(t) + ":" + std::to_string(i) + ":" + std::to_string(k)));
          }
          auto r = store->append("shared", expected_version::any(), events);
          if (!r.ok()) {
            errors[t] = "shared append " + std::to_string(i) + ": " + r.err().to_string();
            return;
          }
        } else {
          auto r = store->append(own, expected_version::exact(version), make_events(1, own));
          if (!r.ok()) {
            errors[t] = own + " append " + std::to_string(i) + ": " + r.err().to_string();
            return;
          }
          version = r->last_version;
        }
      }
    });
  }
  for (auto& w : writers)
    w.join();
  writing = false;
  reader.join();

  for (const auto& e : errors)
    BOOST_TEST(e.empty(), e);
  BOOST_TEST(bad_snapshots.load() == 0u);
  BOOST_TEST_MESSAGE(snapshots.load() << " snapshots checked while writing");

  const auto events = log();
  const std::size_t total = threads * (per_thread / 2) * 4;  // 3 shared + 1 own per pair
  BOOST_REQUIRE_EQUAL(events.size(), total);
  std::map<std::string, stream_version> versions;
  for (std::size_t i = 0; i < events.size(); ++i) {
    BOOST_TEST(events[i].position == i + 1);
    BOOST_TEST(events[i].version == ++versions[events[i].stream]);
    // The three events of a shared append sit together, in order.
    if (events[i].type == "shared" && events[i].payload.ends_with(":0")) {
      BOOST_REQUIRE(i + 2 < events.size());
      const std::string stem = events[i].payload.substr(0, events[i].payload.size() - 1);
      BOOST_TEST(events[i + 1].payload == stem + "1");
      BOOST_TEST(events[i + 2].payload == stem + "2");
    }
  }
  BOOST_TEST(versions["shared"] == threads * (per_thread / 2) * 3);
  for (std::size_t t = 0; t < threads; ++t) {
    BOOST_TEST(versions["own-" + std::to_string(t)] == per_thread / 2);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_CASE(a_reappend_where_one_event_lost_its_id_is_not_idempotent, store_fixture) {
  std::vector<new_event> events = make_events(2, "first");
  events[0].id = event_id::parse("0190a1b2c3d47e5f8a9b0c1d2e3f4a01");
  events[1].id = event_id::parse("0190a1b2c3d47e5f8a9b0c1d2e3f4a02");
  append("s", expected_version::no_stream(), events);
  // The same events, the second now without an id: not the same events.
  std::vector<new_event> again = events;
  again[1].id.reset();
  auto r = store->append("s", expected_version::any(), again);
  VARVE_REQUIRE_ERRC(r, errc::invalid_argument);
  BOOST_TEST_MESSAGE(r.err().message());
  auto exact = store->append("s", expected_version::exact(0), again);
  VARVE_CHECK_ERRC(exact, errc::wrong_expected_version);
  BOOST_CHECK_EQUAL(head(), 2u);
}
