// The projection engine without CAF (varve::projection_engine): its state
// machine driven step by step through a scripted engine_io, so that the
// order of reads, commits, timers and control requests is the test's.
#define BOOST_TEST_MODULE projection_engine
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <deque>
#include <set>
#include <varve/projections/engine.hpp>

#include "../storage/temp_dir.hpp"

using namespace varve;
using namespace std::chrono_literals;

namespace {

/// Records what the engine asks for; the test answers.
struct scripted_io : engine_io {
  struct read_call {
    global_position after;
    std::size_t limit;
    std::uint64_t ticket;
  };
  struct write_call {
    write_request request;
    std::uint64_t ticket;
  };
  struct wake_call {
    engine_timer timer;
    std::chrono::milliseconds delay;
    std::uint64_t ticket;
  };
  std::deque<read_call> reads;
  std::deque<write_call> writes;
  std::deque<wake_call> wakes;

  void read(global_position after, std::size_t limit, std::uint64_t ticket) override {
    reads.push_back({after, limit, ticket});
  }
  void write(write_request request, std::uint64_t ticket) override {
    writes.push_back({std::move(request), ticket});
  }
  void wake(engine_timer timer, std::chrono::milliseconds delay, std::uint64_t ticket) override {
    wakes.push_back({timer, delay, ticket});
  }
};

/// Events of one stream "s", by hand: the engine only needs their views.
struct log_of {
  std::vector<delivered_event> events;
  explicit log_of(global_position from, global_position to) {
    for (global_position p = from; p <= to; ++p) {
      event_view v;
      v.position = p;
      v.version = p;
      v.time = static_cast<timestamp_us>(p);
      v.type = "test-event";
      v.payload = "x";
      events.push_back(delivered_event{v, "s"});
    }
  }
  log_batch batch(global_position head) const { return log_batch{events, head, 0, nullptr}; }
};

struct engine_fixture {
  varve_test::temp_dir dir;
  std::shared_ptr<event_store> store = varve_test::open_store(varve_test::test_options(dir / "s"));
  scripted_io io;
  std::vector<global_position> handled;

  projection_spec spec(delivery mode = delivery::exactly_once) {
    projection_spec s;
    s.name = "p";
    s.mode = mode;
    s.handle = [this](const delivered_event& d, view_batch& v) -> result<void> {
      handled.push_back(d.event.position);
      v.put("last", std::to_string(d.event.position));
      return {};
    };
    return s;
  }

  /// The next wake-up, which must be `timer`; takes it.
  std::uint64_t take_wake(engine_timer timer) {
    BOOST_REQUIRE(!io.wakes.empty());
    auto w = io.wakes.front();
    io.wakes.pop_front();
    BOOST_REQUIRE(w.timer == timer);
    return w.ticket;
  }
  /// Commits the oldest write asked for and tells the engine.
  void commit_next(projection_engine& e) {
    BOOST_REQUIRE(!io.writes.empty());
    auto w = std::move(io.writes.front());
    io.writes.pop_front();
    auto out = store->write({&w.request, 1});
    BOOST_REQUIRE(out.ok() && out->front().ok());
    e.on_written(w.ticket, std::nullopt);
  }
  checkpoint_state stored() {
    auto txn = store->read();
    BOOST_REQUIRE(txn.ok());
    auto c = txn->cursor_state("p");
    BOOST_REQUIRE(c.ok() && c->has_value());
    auto s = parse_checkpoint_state((*c)->state);
    BOOST_REQUIRE(s.ok());
    return *s;
  }
  global_position cursor() {
    auto txn = store->read();
    BOOST_REQUIRE(txn.ok());
    return txn->cursor("p").value().value_or(0);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(projection_engine_suite, engine_fixture)

BOOST_AUTO_TEST_CASE(a_control_request_during_a_commit_waits_for_it_then_commits_its_own) {
  projection_engine e(spec(), store, io);
  e.start();
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));
  BOOST_REQUIRE_EQUAL(io.reads.size(), 1u);
  log_of log(1, 3);
  e.on_batch(io.reads.front().ticket, log.batch(3));
  BOOST_CHECK(e.state() == projection_state::committing);
  BOOST_REQUIRE_EQUAL(io.writes.size(), 1u);

  std::optional<projection_status> replied;
  e.pause([&](const projection_status& s) { replied = s; });
  BOOST_CHECK_EQUAL(io.writes.size(), 1u);  // one write of the cursor at a time
  BOOST_CHECK(!replied);
  commit_next(e);  // the batch; then the pause is carried out
  BOOST_CHECK_EQUAL(cursor(), 3u);
  BOOST_REQUIRE_EQUAL(io.writes.size(), 1u);
  BOOST_CHECK(!replied);  // answered once stored
  commit_next(e);
  BOOST_REQUIRE(replied);
  BOOST_CHECK_EQUAL(replied->state, "paused");
  BOOST_CHECK(stored().state == projection_state::paused);
  BOOST_CHECK(e.state() == projection_state::paused);
}

BOOST_AUTO_TEST_CASE(a_read_overtaken_by_a_pause_is_dropped) {
  projection_engine e(spec(), store, io);
  e.start();
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));
  const auto ticket = io.reads.front().ticket;  // in flight, as to a remote service
  e.pause([](const projection_status&) {});
  commit_next(e);
  BOOST_CHECK(e.state() == projection_state::paused);
  log_of log(1, 5);
  e.on_batch(ticket, log.batch(5));  // its answer comes late
  BOOST_CHECK(handled.empty());
  BOOST_CHECK(io.writes.empty());
  BOOST_CHECK_EQUAL(e.status().position, 0u);
}

BOOST_AUTO_TEST_CASE(retries_say_attempt_k_of_n_then_the_policy_stops_it) {
  auto s = spec();
  s.max_retries = 2;
  s.retry_backoff = 10ms;
  s.handle = [](const delivered_event&, view_batch&) -> result<void> {
    return error{errc::unavailable, "down"};
  };
  projection_engine e(s, store, io);
  e.start();
  log_of log(1, 1);
  std::vector<std::chrono::milliseconds> delays;
  for (unsigned attempt = 2; attempt <= 3; ++attempt) {
    e.on_timer(engine_timer::read, take_wake(engine_timer::read));
    e.on_batch(io.reads.back().ticket, log.batch(1));
    commit_next(e);  // the state "retrying" is stored before the backoff
    BOOST_CHECK(e.state() == projection_state::retrying);
    BOOST_CHECK_EQUAL(e.status().state_text(),
                      "retrying (attempt " + std::to_string(attempt) + " of 3)");
    BOOST_CHECK_EQUAL(stored().attempt, attempt);
    BOOST_REQUIRE(!io.wakes.empty());
    delays.push_back(io.wakes.front().delay);
    e.on_timer(engine_timer::retry, take_wake(engine_timer::retry));
  }
  BOOST_CHECK(delays == (std::vector<std::chrono::milliseconds>{10ms, 20ms}));  // doubled
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));
  e.on_batch(io.reads.back().ticket, log.batch(1));
  commit_next(e);
  BOOST_CHECK(e.state() == projection_state::failed);
  BOOST_CHECK(stored().state == projection_state::failed);
  BOOST_CHECK_EQUAL(stored().error, "position 1: unavailable: down");
  BOOST_CHECK_EQUAL(cursor(), 0u);
}

BOOST_AUTO_TEST_CASE(each_failing_event_gets_its_own_retries) {
  auto s = spec();
  s.max_retries = 1;
  auto failed_once = std::make_shared<std::set<global_position>>();
  auto inner = s.handle;
  s.handle = [inner, failed_once](const delivered_event& d, view_batch& v) -> result<void> {
    if (d.event.position >= 2 && failed_once->insert(d.event.position).second)
      return error{errc::unavailable, "once"};
    return inner(d, v);
  };
  projection_engine e(s, store, io);
  e.start();
  log_of log(1, 3);
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));
  e.on_batch(io.reads.back().ticket, log.batch(3));  // 1 handled, 2 fails
  commit_next(e);
  BOOST_CHECK(e.state() == projection_state::retrying);
  e.on_timer(engine_timer::retry, take_wake(engine_timer::retry));
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));
  log_of rest(2, 3);
  e.on_batch(io.reads.back().ticket, rest.batch(3));  // 2 handled, 3 fails for the first time
  commit_next(e);
  BOOST_CHECK(e.state() == projection_state::retrying);  // not failed: 3 has a retry of its own
  BOOST_CHECK_EQUAL(e.status().attempt, 2u);
  e.on_timer(engine_timer::retry, take_wake(engine_timer::retry));
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));
  log_of last(3, 3);
  e.on_batch(io.reads.back().ticket, last.batch(3));
  commit_next(e);
  BOOST_CHECK(e.state() == projection_state::live);
  BOOST_CHECK_EQUAL(cursor(), 3u);
}

BOOST_AUTO_TEST_CASE(an_at_least_once_checkpoint_lets_reading_go_on_and_a_commit_waits_for_it) {
  auto s = spec(delivery::at_least_once);
  s.checkpoint_every = 2;
  s.max_retries = 0;
  auto inner = s.handle;
  s.handle = [inner](const delivered_event& d, view_batch& v) -> result<void> {
    if (d.event.position == 3) return error{errc::rejected, "no"};
    return inner(d, v);
  };
  projection_engine e(s, store, io);
  e.start();
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));
  log_of first(1, 2);
  e.on_batch(io.reads.back().ticket, first.batch(4));
  BOOST_REQUIRE_EQUAL(io.writes.size(), 1u);  // the checkpoint, in flight
  BOOST_CHECK(e.state() == projection_state::catching_up);
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));  // reading goes on
  log_of second(3, 4);
  e.on_batch(io.reads.back().ticket, second.batch(4));
  BOOST_CHECK(e.state() == projection_state::committing);
  BOOST_CHECK_EQUAL(io.writes.size(), 1u);  // the failure's commit waits for the checkpoint
  commit_next(e);
  BOOST_CHECK_EQUAL(cursor(), 2u);
  BOOST_REQUIRE_EQUAL(io.writes.size(), 1u);
  commit_next(e);
  BOOST_CHECK(e.state() == projection_state::failed);
  BOOST_CHECK(stored().state == projection_state::failed);
}

BOOST_AUTO_TEST_CASE(a_batch_handler_reads_its_own_writes_through_its_index) {
  view_batch v("v", nullptr);
  BOOST_CHECK(!v.get("a").value());
  v.put("a", "1");
  v.put("b", "2");
  BOOST_CHECK_EQUAL(v.get("a").value().value_or("-"), "1");
  v.put("a", "3");  // a later write of the same key wins
  v.erase("b");
  BOOST_CHECK_EQUAL(v.get("a").value().value_or("-"), "3");
  BOOST_CHECK(!v.get("b").value());
  const auto mark = v.savepoint();
  v.put("b", "4");
  v.rollback(mark);
  BOOST_CHECK(!v.get("b").value());
  BOOST_CHECK_EQUAL(v.updates().size(), 4u);  // every write, in order, for the commit
  // A big batch of read-modify-writes of new keys: each get finds at once
  // that the batch does not hold its key (a scan of the batch would take
  // minutes here, past the test's time limit).
  for (int i = 0; i < 300000; ++i) {
    // Not "k" + std::to_string(i): GCC 12 at -O2 and above takes that for an
    // overlapping copy (a false -Wrestrict).
    const std::string key = std::string("k").append(std::to_string(i));
    auto n = v.get(key).value();
    v.put(key, n ? *n + "+" : "1");
  }
  BOOST_CHECK_EQUAL(v.get("k7").value().value_or("-"), "1");
  BOOST_CHECK_EQUAL(v.updates().size(), 300004u);
}

/// Exactly-once, batches of 3 over a log of 12: a counter of events whose
/// handler reads the count its batch before wrote.
struct pipeline_fixture : engine_fixture {
  std::vector<std::string> seen_counts;  ///< the count each event read
  log_of log{1, 12};

  projection_spec counting() {
    projection_spec s = spec();
    s.batch_events = 3;
    s.handle = [this](const delivered_event& d, view_batch& v) -> result<void> {
      auto n = v.get("count");
      if (!n) return n.err();
      seen_counts.push_back(n->value_or("0"));
      v.put("count", std::to_string(std::stoi(n->value_or("0")) + 1));
      handled.push_back(d.event.position);
      return {};
    };
    return s;
  }
  /// Answers the oldest read with the events after its position (up to 3).
  void answer_read(projection_engine& e) {
    BOOST_REQUIRE(!io.reads.empty());
    auto r = io.reads.front();
    io.reads.pop_front();
    const auto first = log.events.begin() + static_cast<std::ptrdiff_t>(r.after);
    const auto n = std::min<std::size_t>(r.limit, log.events.size() - r.after);
    std::vector<delivered_event> part(first, first + static_cast<std::ptrdiff_t>(n));
    e.on_batch(r.ticket, log_batch{part, 12, 0, nullptr});
  }
  /// Starts `e` on a log of 12 and has it handle 4..6 while the commit of
  /// 1..3 is in flight (neither answered).
  void handle_one_ahead(projection_engine& e) {
    e.on_head(12);
    e.start();
    e.on_timer(engine_timer::read, take_wake(engine_timer::read));
    answer_read(e);
    e.on_timer(engine_timer::read, take_wake(engine_timer::read));
    answer_read(e);
  }
  std::string count() {
    auto txn = store->read();
    BOOST_REQUIRE(txn.ok());
    auto v = txn->view_get("p", "count");
    BOOST_REQUIRE(v.ok());
    return *v ? std::string(**v) : "0";
  }
};

BOOST_FIXTURE_TEST_CASE(
    exactly_once_handles_the_next_batch_while_a_commit_is_in_flight_and_commits_it_after,
    pipeline_fixture) {
  projection_engine e(counting(), store, io);
  e.on_head(12);
  e.start();
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));
  answer_read(e);  // 1..3: its commit goes out, and the read of 4..6
  BOOST_REQUIRE_EQUAL(io.writes.size(), 1u);
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));
  BOOST_REQUIRE_EQUAL(io.reads.size(), 1u);
  BOOST_CHECK_EQUAL(io.reads.front().after, 3u);
  answer_read(e);  // 4..6, handled while 1..3 commits
  BOOST_CHECK_EQUAL(handled.size(), 6u);
  BOOST_CHECK_EQUAL(io.writes.size(), 1u);  // its commit waits for the one in flight
  BOOST_CHECK(io.reads.empty());            // and nothing more is read meanwhile
  BOOST_CHECK_EQUAL(e.status().position, 0u);
  commit_next(e);  // 1..3 committed: 4..6 goes out
  BOOST_CHECK_EQUAL(cursor(), 3u);
  BOOST_CHECK_EQUAL(e.status().position, 3u);
  BOOST_REQUIRE_EQUAL(io.writes.size(), 1u);
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));
  answer_read(e);  // 7..9
  commit_next(e);
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));
  answer_read(e);  // 10..12: the head, nothing after it to read ahead
  commit_next(e);
  BOOST_CHECK(io.wakes.empty() || io.wakes.front().timer != engine_timer::read);
  commit_next(e);
  BOOST_CHECK_EQUAL(cursor(), 12u);
  BOOST_CHECK(e.state() == projection_state::live);
  // Each event read the count the one before it wrote, across commits in flight.
  std::vector<std::string> expected;
  for (int i = 0; i < 12; ++i)
    expected.push_back(std::to_string(i));
  BOOST_TEST(seen_counts == expected, boost::test_tools::per_element());
  BOOST_CHECK_EQUAL(count(), "12");
}

BOOST_FIXTURE_TEST_CASE(a_failed_commit_drops_the_batch_handled_after_it, pipeline_fixture) {
  projection_engine e(counting(), store, io);
  handle_one_ahead(e);  // 4..6 waits for 1..3
  auto w = std::move(io.writes.front());
  io.writes.pop_front();
  e.on_written(w.ticket, error{errc::io_error, "the disk is gone"});
  BOOST_CHECK(e.state() == projection_state::failed);
  BOOST_CHECK_EQUAL(e.status().position, 0u);
  // Only the note of the failure is written: not the batch handled ahead.
  BOOST_REQUIRE_EQUAL(io.writes.size(), 1u);
  BOOST_CHECK(io.writes.front().request.views.empty());
  BOOST_CHECK_EQUAL(io.writes.front().request.cursors.front().position, 0u);
  commit_next(e);
  BOOST_CHECK_EQUAL(cursor(), 0u);
  BOOST_CHECK_EQUAL(count(), "0");
}

BOOST_FIXTURE_TEST_CASE(a_pause_while_a_batch_is_handled_ahead_commits_it_then_pauses,
                        pipeline_fixture) {
  projection_engine e(counting(), store, io);
  handle_one_ahead(e);
  std::optional<projection_status> replied;
  e.pause([&](const projection_status& s) { replied = s; });
  commit_next(e);  // 1..3, then 4..6 goes out: no read ahead of it, a request waits
  BOOST_CHECK(io.wakes.empty());
  commit_next(e);  // 4..6, then the pause
  BOOST_CHECK_EQUAL(cursor(), 6u);
  BOOST_CHECK(!replied);
  commit_next(e);
  BOOST_REQUIRE(replied);
  BOOST_CHECK(e.state() == projection_state::paused);
  BOOST_CHECK_EQUAL(count(), "6");
  BOOST_CHECK(stored().state == projection_state::paused);
}

BOOST_FIXTURE_TEST_CASE(
    stopping_with_a_batch_handled_ahead_keeps_the_cursor_of_the_commit_in_flight,
    pipeline_fixture) {
  projection_engine e(counting(), store, io);
  handle_one_ahead(e);
  write_request last = e.stop();
  BOOST_REQUIRE_EQUAL(last.cursors.size(), 1u);
  BOOST_CHECK_EQUAL(last.cursors[0].position, 3u);  // 4..6 was never sent
  BOOST_CHECK(last.views.empty());
  commit_next(e);  // the commit in flight lands
  auto out = store->write({&last, 1});
  BOOST_REQUIRE(out.ok() && out->front().ok());
  BOOST_CHECK_EQUAL(cursor(), 3u);
  BOOST_CHECK_EQUAL(count(), "3");  // the view matches the cursor
}

BOOST_FIXTURE_TEST_CASE(a_commit_that_finds_the_cursor_moved_by_another_instance_goes_on_from_it,
                        pipeline_fixture) {
  projection_engine e(counting(), store, io);
  e.on_head(12);
  e.start();
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));
  answer_read(e);  // 1..3 in flight
  // Another instance (told to stop as this one started) commits 1..6.
  write_request other;
  other.views.push_back(view_update{"p", view_update::op::put, "count", "6"});
  other.cursors.push_back(cursor_update{"p", 6, "", 0});
  auto landed = store->write({&other, 1});
  BOOST_REQUIRE(landed.ok() && landed->front().ok());
  auto w = std::move(io.writes.front());
  io.writes.pop_front();
  auto refused = store->write({&w.request, 1});
  BOOST_REQUIRE(refused.ok() && !refused->front().ok());
  e.on_written(w.ticket, refused->front().err());
  BOOST_CHECK(e.state() == projection_state::catching_up);
  BOOST_CHECK_EQUAL(e.status().position, 6u);
  BOOST_CHECK(!e.status().error.empty());
  // It reads on from 6; the batch read ahead of the refused commit is gone.
  for (;;) {
    auto t = take_wake(engine_timer::read);
    e.on_timer(engine_timer::read, t);
    if (!io.reads.empty()) break;
  }
  BOOST_CHECK_EQUAL(io.reads.front().after, 6u);
  answer_read(e);
  e.on_timer(engine_timer::read, take_wake(engine_timer::read));
  answer_read(e);
  commit_next(e);
  commit_next(e);
  BOOST_CHECK_EQUAL(cursor(), 12u);
  BOOST_CHECK_EQUAL(count(), "12");
}

BOOST_AUTO_TEST_SUITE_END()
