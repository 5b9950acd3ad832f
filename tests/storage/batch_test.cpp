// event_store::write (group commit of independent requests) and consumer
// cursors (write_request::cursors, save_cursor, read_transaction::cursor).
#define BOOST_TEST_MODULE batch
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "raw_lmdb.hpp"
#include "temp_dir.hpp"

using namespace varve;
using varve_test::make_event;
using varve_test::make_events;
using varve_test::store_fixture;

namespace {

/// What the tests compare a missing cursor as.
constexpr global_position none = ~global_position{0};

write_request single(std::string stream, expected_version expected, std::vector<new_event> events) {
  write_request w;
  w.appends.push_back({std::move(stream), expected, std::move(events)});
  return w;
}

/// Closes the store, gives the record at `position` an unknown format (the
/// writer fails on it when a walk back reads it) and opens the store again.
void damage_record_and_reopen(store_fixture& f, global_position position) {
  f.store.reset();
  {
    varve_test::raw_env raw(f.opts.directory);
    auto record = raw.get_event(position);
    BOOST_REQUIRE(record);
    (*record)[0] = static_cast<char>(99);
    raw.put_event(position, *record);
  }
  f.store = varve_test::open_store(f.opts);
}

/// The rows of view `view` as `tx` sees them.
std::map<std::string, std::string> view_rows(const read_transaction& tx, const std::string& view) {
  std::map<std::string, std::string> rows;
  VARVE_REQUIRE_OK(tx.scan_view(view, "", [&](std::string_view k, std::string_view v) {
    rows.emplace(k, v);
    return true;
  }));
  return rows;
}

}  // namespace

struct batch_fixture : store_fixture {
  /// Runs a batch, requiring the transaction itself to commit.
  std::vector<write_outcome> write(const std::vector<write_request>& batch) {
    auto r = store->write(batch);
    BOOST_REQUIRE_MESSAGE(r.ok(), "write: " << varve_test::describe(r));
    BOOST_REQUIRE_EQUAL(r->size(), batch.size());
    return std::move(r).value();
  }

  std::optional<global_position> cursor(std::string_view consumer) const {
    auto tx = read();
    auto c = tx.cursor(consumer);
    BOOST_REQUIRE_MESSAGE(c.ok(), "cursor " << consumer << ": " << varve_test::describe(c));
    return c.value();
  }
};

BOOST_FIXTURE_TEST_SUITE(batches, batch_fixture)

BOOST_AUTO_TEST_CASE(conflicting_request_fails_alone_and_the_others_commit_consecutively) {
  append("x", expected_version::any(), make_events(2, "x"));  // x at version 2, head 2

  std::vector<write_request> batch;
  batch.push_back(single("a", expected_version::any(), make_events(2, "a")));
  batch.push_back(single("x", expected_version::exact(0), make_events(1, "x-bad")));  // conflict
  batch.push_back(single("b", expected_version::no_stream(), make_events(3, "b")));
  batch.push_back(single("c", expected_version::any(), make_events(1, "c")));
  batch.push_back(single("x", expected_version::exact(2), make_events(1, "x-good")));
  const auto out = write(batch);

  VARVE_CHECK_ERRC(out[1], errc::wrong_expected_version);
  for (std::size_t i : {0u, 2u, 3u, 4u}) {
    BOOST_TEST_CONTEXT("request " << i) {
      VARVE_REQUIRE_OK(out[i]);
      BOOST_REQUIRE_EQUAL(out[i]->size(), 1u);
    }
  }
  const auto& a = out[0].value()[0];
  const auto& b = out[2].value()[0];
  const auto& c = out[3].value()[0];
  const auto& x = out[4].value()[0];
  BOOST_TEST(a.first_position == 3u);
  BOOST_TEST(a.last_position == 4u);
  BOOST_TEST(b.first_position == 5u);
  BOOST_TEST(b.last_position == 7u);
  BOOST_TEST(c.first_position == 8u);
  BOOST_TEST(x.first_position == 9u);
  BOOST_TEST(x.first_version == 3u);
  BOOST_TEST(b.first_version == 1u);
  BOOST_TEST(b.last_version == 3u);

  BOOST_TEST(head() == 2u + 2u + 3u + 1u + 1u);
  BOOST_TEST(version_of("x") == 3u);
  const auto log = this->log();
  BOOST_REQUIRE_EQUAL(log.size(), 9u);
  for (std::size_t i = 0; i < log.size(); ++i)
    BOOST_TEST(log[i].position == i + 1);
  for (const auto& e : log) {
    BOOST_TEST(e.payload.find("x-bad") == std::string::npos, "the failed request left a trace");
  }
  BOOST_TEST(log[2].stream == "a");
  BOOST_TEST(log[4].stream == "b");
  BOOST_TEST(log[7].stream == "c");
  BOOST_TEST(log[8].stream == "x");
  BOOST_TEST(log[8].payload == "x-good-0");
  BOOST_TEST(store->stats()->streams == 4u);
}

BOOST_AUTO_TEST_CASE(chained_exact_versions_to_one_stream_in_one_batch_both_succeed) {
  std::vector<write_request> batch;
  batch.push_back(single("chain", expected_version::exact(0), make_events(1, "v1")));
  batch.push_back(single("chain", expected_version::exact(1), make_events(2, "v2")));
  batch.push_back(single("chain", expected_version::exact(1), make_events(1, "stale")));
  batch.push_back(single("chain", expected_version::exact(3), make_events(1, "v4")));
  const auto out = write(batch);

  VARVE_REQUIRE_OK(out[0]);
  VARVE_REQUIRE_OK(out[1]);
  VARVE_CHECK_ERRC(out[2], errc::wrong_expected_version);
  VARVE_REQUIRE_OK(out[3]);
  BOOST_TEST(out[0].value()[0].first_version == 1u);
  BOOST_TEST(out[1].value()[0].first_version == 2u);
  BOOST_TEST(out[1].value()[0].last_version == 3u);
  BOOST_TEST(out[3].value()[0].first_version == 4u);
  BOOST_TEST(out[3].value()[0].first_position == 4u);

  const auto events = stream_events("chain");
  BOOST_REQUIRE_EQUAL(events.size(), 4u);
  for (std::size_t i = 0; i < events.size(); ++i) {
    BOOST_TEST(events[i].version == i + 1);
    BOOST_TEST(events[i].position == i + 1);
  }
}

BOOST_AUTO_TEST_CASE(request_with_a_bad_event_fails_alone) {
  std::vector<write_request> batch;
  batch.push_back(single("good-1", expected_version::any(), make_events(1)));
  batch.push_back(single("bad", expected_version::any(), {make_event("ok"), make_event("")}));
  batch.push_back(single("", expected_version::any(), make_events(1)));
  batch.push_back(single("good-2", expected_version::any(), make_events(2)));
  const auto out = write(batch);

  VARVE_REQUIRE_OK(out[0]);
  VARVE_CHECK_ERRC(out[1], errc::invalid_argument);
  VARVE_CHECK_ERRC(out[2], errc::invalid_argument);
  VARVE_REQUIRE_OK(out[3]);
  BOOST_TEST(out[3].value()[0].first_position == 2u);
  BOOST_TEST(head() == 3u);
  BOOST_TEST(version_of("bad") == 0u);
  BOOST_TEST(read().stream_count() == 2u);
}

BOOST_AUTO_TEST_CASE(request_to_several_streams_fails_whole_when_one_part_fails) {
  append("held", expected_version::any(), make_events(1));

  write_request multi;
  multi.appends.push_back({"m1", expected_version::any(), make_events(2)});
  multi.appends.push_back({"held", expected_version::no_stream(), make_events(1)});  // conflict
  write_request multi_bad;
  multi_bad.appends.push_back({"m2", expected_version::any(), make_events(1)});
  multi_bad.appends.push_back({"m3", expected_version::any(), {make_event("")}});
  write_request fine;
  fine.appends.push_back({"f1", expected_version::no_stream(), make_events(1)});
  fine.appends.push_back({"f2", expected_version::no_stream(), make_events(2)});

  const auto out = write({multi, multi_bad, fine});
  VARVE_CHECK_ERRC(out[0], errc::wrong_expected_version);
  VARVE_CHECK_ERRC(out[1], errc::invalid_argument);
  VARVE_REQUIRE_OK(out[2]);
  BOOST_REQUIRE_EQUAL(out[2]->size(), 2u);
  BOOST_TEST(out[2].value()[0].first_position == 2u);
  BOOST_TEST(out[2].value()[1].first_position == 3u);
  BOOST_TEST(out[2].value()[1].last_position == 4u);
  BOOST_TEST(head() == 4u);
  for (auto name : {"m1", "m2", "m3"})
    BOOST_TEST(version_of(name) == 0u, name);
  BOOST_TEST(version_of("held") == 1u);
}

BOOST_AUTO_TEST_CASE(cursor_update_is_stored_atomically_with_its_appends) {
  write_request with_cursor = single("orders", expected_version::no_stream(), make_events(3));
  with_cursor.cursors.push_back({"projector", 3});
  write_request conflicting = single("orders", expected_version::no_stream(), make_events(1));
  conflicting.cursors.push_back({"loser", 99});
  conflicting.cursors.push_back({"projector", 1000});

  const auto out = write({with_cursor, conflicting});
  VARVE_REQUIRE_OK(out[0]);
  VARVE_CHECK_ERRC(out[1], errc::wrong_expected_version);

  BOOST_TEST(cursor("projector").value_or(none) == 3);
  BOOST_TEST(!cursor("loser").has_value());
  BOOST_TEST(head() == 3u);

  // Later batches move the cursor forward with their appends.
  write_request next = single("orders", expected_version::exact(3), make_events(1));
  next.cursors.push_back({"projector", 4});
  const auto out2 = write({next});
  VARVE_REQUIRE_OK(out2[0]);
  BOOST_TEST(cursor("projector").value_or(none) == 4);

  reopen();
  BOOST_TEST(cursor("projector").value_or(none) == 4);
  BOOST_TEST(!cursor("loser").has_value());
}

BOOST_AUTO_TEST_CASE(save_cursor_and_cursor_round_trip) {
  VARVE_REQUIRE_OK(store->save_cursor("reader-a", 5));
  VARVE_REQUIRE_OK(store->save_cursor("reader-b", 0));
  BOOST_TEST(cursor("reader-a").value_or(none) == 5);
  BOOST_TEST(cursor("reader-b").value_or(none) == 0);

  VARVE_REQUIRE_OK(store->save_cursor("reader-a", 7));
  BOOST_TEST(cursor("reader-a").value_or(none) == 7);
  BOOST_TEST(cursor("reader-b").value_or(none) == 0);

  const global_position big = std::uint64_t{1} << 40;
  VARVE_REQUIRE_OK(store->save_cursor("reader-c", big));
  reopen();
  BOOST_TEST(cursor("reader-a").value_or(none) == 7);
  BOOST_TEST(cursor("reader-c").value_or(none) == big);
  BOOST_TEST(head() == 0u);  // cursors are not events
}

BOOST_AUTO_TEST_CASE(consumer_with_no_cursor_reads_nullopt) {
  BOOST_TEST(!cursor("nobody").has_value());
  VARVE_REQUIRE_OK(store->save_cursor("somebody", 1));
  BOOST_TEST(!cursor("nobody").has_value());
  BOOST_TEST(!cursor("somebody-else").has_value());
  BOOST_TEST(!cursor("somebod").has_value());
}

BOOST_AUTO_TEST_CASE(empty_consumer_name_is_refused) {
  auto r = store->save_cursor("", 1);
  VARVE_CHECK_ERRC(r, errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(batch_outcomes_follow_request_order_over_many_requests) {
  std::vector<write_request> batch;
  for (int i = 0; i < 300; ++i) {
    // Appended, not `"s" + std::to_string(...)`: GCC 12 at -O2 and above
    // takes that for an overlapping copy (a false -Wrestrict).
    batch.push_back(single(std::string("s").append(std::to_string(i % 17)), expected_version::any(),
                           make_events(1 + i % 3, std::string("r").append(std::to_string(i)))));
  }
  auto before = store->stats();
  VARVE_REQUIRE_OK(before);
  const auto out = write(batch);
  global_position next = 1;
  for (std::size_t i = 0; i < out.size(); ++i) {
    VARVE_REQUIRE_OK(out[i]);
    const auto& r = out[i].value()[0];
    BOOST_TEST(r.first_position == next);
    BOOST_TEST(r.last_position - r.first_position + 1 == 1 + i % 3);
    next = r.last_position + 1;
  }
  BOOST_TEST(head() == next - 1);
  const auto log = this->log();
  BOOST_REQUIRE_EQUAL(log.size(), next - 1);
  // The first event of request i carries payload "r<i>-0".
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto& r = out[i].value()[0];
    BOOST_TEST(log[r.first_position - 1].payload == "r" + std::to_string(i) + "-0");
    BOOST_TEST(log[r.first_position - 1].stream == "s" + std::to_string(i % 17));
  }
  auto stats = store->stats();
  VARVE_REQUIRE_OK(stats);
  BOOST_TEST(stats->commits - before->commits == 1u, "one batch is one commit");
  BOOST_TEST(stats->events_written - before->events_written == next - 1);
}

BOOST_AUTO_TEST_CASE(a_conditional_erase_removes_a_view_row_only_while_it_holds_the_value) {
  auto put = [&](std::string key, std::string value) {
    write_request r;
    r.views.push_back(view_update{"v", view_update::op::put, std::move(key), std::move(value)});
    BOOST_REQUIRE(write({r}).front().ok());
  };
  auto erase_if = [&](std::string key, std::string value) {
    write_request r;
    r.views.push_back(
        view_update{"v", view_update::op::erase_if_equal, std::move(key), std::move(value)});
    BOOST_REQUIRE(write({r}).front().ok());
  };
  auto get = [&](std::string_view key) -> std::optional<std::string> {
    auto tx = read();
    auto v = tx.view_get("v", key);
    BOOST_REQUIRE(v.ok());
    return *v ? std::optional<std::string>(std::string(**v)) : std::nullopt;
  };
  put("a", "first");
  put("a", "second");      // replaced meanwhile
  erase_if("a", "first");  // what the eraser saw: stale
  BOOST_CHECK_EQUAL(get("a").value_or("(erased)"), "second");
  erase_if("a", "second");
  BOOST_CHECK(!get("a"));
  erase_if("missing", "x");  // nothing there: fine
}

BOOST_AUTO_TEST_CASE(a_view_update_without_a_name_goes_to_the_view_of_the_update_before_it) {
  const std::string long_name = "a-view-name-longer-than-fifteen-bytes";
  write_request r;
  r.views.push_back(view_update{long_name, view_update::op::put, "a", "1"});
  r.views.push_back(view_update{{}, view_update::op::put, "b", "2"});
  r.views.push_back(view_update{"other", view_update::op::put, "c", "3"});
  r.views.push_back(view_update{{}, view_update::op::put, "d", "4"});
  r.views.push_back(view_update{long_name, view_update::op::erase, "a", {}});
  r.views.push_back(view_update{{}, view_update::op::put, "e", "5"});
  const auto out = write({r});
  BOOST_REQUIRE_MESSAGE(out.front().ok(), varve_test::describe(out.front()));
  auto rows = [&](const std::string& view) { return view_rows(read(), view); };
  BOOST_TEST((rows(long_name) == std::map<std::string, std::string>{{"b", "2"}, {"e", "5"}}));
  BOOST_TEST((rows("other") == std::map<std::string, std::string>{{"c", "3"}, {"d", "4"}}));
  BOOST_TEST(rows("").empty());

  // The first update of a request must name its view; the request fails
  // whole, and the one beside it in the batch commits.
  write_request unnamed, fine;
  unnamed.views.push_back(view_update{long_name, view_update::op::put, "f", "6"});
  unnamed.views.front().view.clear();
  unnamed.views.push_back(view_update{long_name, view_update::op::put, "g", "7"});
  fine.views.push_back(view_update{"other", view_update::op::put, "h", "8"});
  const auto both = write({unnamed, fine});
  BOOST_REQUIRE(!both[0].ok());
  BOOST_TEST(both[0].err().code() == errc::invalid_argument);
  BOOST_TEST(both[0].err().message().find("names no view") != std::string::npos,
             both[0].err().message());
  BOOST_TEST(both[1].ok());
  BOOST_TEST(rows(long_name).size() == 2u);
  BOOST_TEST(rows("other").size() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_CASE(a_store_holds_max_views_views_and_refuses_one_more_by_name, store_fixture) {
  store.reset();
  opts.max_views = 5;
  store = varve_test::open_store(opts);
  for (int i = 0; i < 5; ++i) {
    write_request r;
    r.views.push_back(view_update{"v" + std::to_string(i), view_update::op::put, "k", "x"});
    auto out = store->write({&r, 1});
    BOOST_REQUIRE(out.ok());
    BOOST_TEST((*out)[0].ok(), "view " << i << ": " << varve_test::describe((*out)[0]));
  }
  write_request sixth;
  sixth.views.push_back(view_update{"v5", view_update::op::put, "k", "x"});
  auto out = store->write({&sixth, 1});
  BOOST_REQUIRE(out.ok());
  BOOST_REQUIRE(!(*out)[0].ok());
  BOOST_TEST((*out)[0].err().code() == errc::invalid_argument);
  BOOST_TEST((*out)[0].err().message().find("max_views") != std::string::npos);
  // The five are still there, and writable.
  write_request again;
  again.views.push_back(view_update{"v4", view_update::op::put, "k2", "y"});
  auto ok = store->write({&again, 1});
  BOOST_REQUIRE(ok.ok());
  BOOST_TEST((*ok)[0].ok());
}

BOOST_FIXTURE_TEST_CASE(one_request_writing_several_views_in_turn_leaves_each_as_written,
                        store_fixture) {
  // Runs of updates to one view, back and forth between views, with a clear
  // and erases between the puts, and puts out of key order.
  write_request r;
  auto add = [&](std::string view, view_update::op op, std::string key, std::string value = "") {
    r.views.push_back(view_update{std::move(view), op, std::move(key), std::move(value)});
  };
  using op = view_update::op;
  for (int i = 0; i < 300; ++i)
    add("a", op::put, "k" + std::to_string(1000 + (i * 7) % 300), "a" + std::to_string(i));
  add("b", op::put, "x", "b1");
  add("a", op::erase, "k1001");
  add("a", op::put, "k0", "first");
  add("b", op::clear, "");
  add("b", op::put, "y", "b2");
  add("a", op::erase_if_equal, "k0", "first");
  add("a", op::put, "k9999", "last");
  auto out = store->write({&r, 1});
  BOOST_REQUIRE(out.ok());
  BOOST_REQUIRE_MESSAGE((*out)[0].ok(), varve_test::describe((*out)[0]));
  auto rows = [&](const std::string& view) { return view_rows(read(), view); };
  auto a = rows("a");
  BOOST_TEST(a.size() == 300u);  // 300 puts, one erased, one added
  BOOST_TEST(!a.contains("k1001"));
  BOOST_TEST(!a.contains("k0"));
  BOOST_TEST(a["k9999"] == "last");
  BOOST_TEST(a["k1000"] == "a0");
  BOOST_TEST(a["k1007"] == "a1");
  auto b = rows("b");
  BOOST_TEST(b.size() == 1u);
  BOOST_TEST(b["y"] == "b2");

  // A bad key deep in a run of one view fails the request whole.
  write_request bad;
  for (int i = 0; i < 10; ++i)
    bad.views.push_back(view_update{"a", op::put, "z" + std::to_string(i), "v"});
  bad.views.push_back(view_update{"a", op::put, "", "v"});
  auto refused = store->write({&bad, 1});
  BOOST_REQUIRE(refused.ok());
  VARVE_CHECK_ERRC((*refused)[0], errc::invalid_argument);
  BOOST_TEST(rows("a").size() == 300u);

  // So does an update of a kind that does not exist (bytes off the wire).
  write_request unknown;
  unknown.views.push_back(view_update{"a", op::put, "z", "v"});
  unknown.views.push_back(view_update{"a", static_cast<op>(7), "z", "v"});
  auto odd = store->write({&unknown, 1});
  BOOST_REQUIRE(odd.ok());
  VARVE_CHECK_ERRC((*odd)[0], errc::invalid_argument);
  BOOST_TEST((*odd)[0].err().message().find("kind") != std::string::npos);
  BOOST_TEST(rows("a").size() == 300u);
}

BOOST_FIXTURE_TEST_CASE(a_cursor_update_with_a_stale_expected_position_fails_its_request,
                        store_fixture) {
  write_request first;
  first.cursors.push_back({"proj", 10, "{}", 0});
  auto r1 = store->write({&first, 1});
  BOOST_REQUIRE(r1.ok() && (*r1)[0].ok());
  write_request stale;
  stale.appends.push_back({"s", expected_version::any(), make_events(1)});
  stale.cursors.push_back({"proj", 20, "{}", 5});
  auto r2 = store->write({&stale, 1});
  BOOST_REQUIRE(r2.ok());
  VARVE_CHECK_ERRC((*r2)[0], errc::wrong_expected_version);
  BOOST_CHECK_EQUAL(read().head(), 0u);  // the request's append did not happen either
  write_request next;
  next.cursors.push_back({"proj", 20, "{}", 10});
  auto r3 = store->write({&next, 1});
  BOOST_REQUIRE(r3.ok() && (*r3)[0].ok());
  auto cur = read().cursor_state("proj");
  BOOST_REQUIRE(cur.ok() && *cur);
  BOOST_CHECK_EQUAL((*cur)->position, 20u);
  BOOST_CHECK_EQUAL((*cur)->state, "{}");
}

BOOST_FIXTURE_TEST_CASE(a_request_that_fails_after_writing_leaves_no_trace, store_fixture) {
  // "damaged" has 63 events; the 64th fills a stream-index chunk, which makes
  // the writer walk the stream back from its head. A damaged record on that
  // walk fails the request after its event went into the log: the request
  // must fail whole, and the other request of the batch commit alone.
  append("damaged", expected_version::any(), make_events(63, "d"));
  append("other", expected_version::any(), make_events(1, "o"));
  damage_record_and_reopen(*this, 10);  // a fresh handle: no cached chunk
  std::vector<write_request> batch(2);
  batch[0].appends.push_back({"damaged", expected_version::exact(63), make_events(1, "lost")});
  batch[1].appends.push_back({"other", expected_version::exact(1), make_events(2, "kept")});
  auto out = store->write(batch);
  BOOST_REQUIRE_MESSAGE(out.ok(), varve_test::describe(out));
  VARVE_CHECK_ERRC((*out)[0], errc::corruption);
  VARVE_REQUIRE_OK((*out)[1]);
  BOOST_CHECK_EQUAL((*out)[1]->front().first_position, 65u);  // no position burnt by the failed one
  BOOST_CHECK_EQUAL(head(), 66u);
  BOOST_CHECK_EQUAL(version_of("damaged"), 63u);
  BOOST_CHECK_EQUAL(version_of("other"), 3u);
  auto tx = read();
  for (global_position p = 65; p <= 66; ++p) {
    auto e = tx.event_at(p);
    VARVE_REQUIRE_OK(e);
    BOOST_CHECK(e->payload.find("kept") == 0);
  }
}

BOOST_FIXTURE_TEST_CASE(a_batch_run_again_without_a_failed_request_writes_the_right_chunks,
                        store_fixture) {
  // "s" has 60 events appended by this handle, whose writer keeps the
  // positions of its open stream-index chunk; the first request of the
  // batch takes them over and crosses the chunk boundary at 64. The second
  // fails after writing ("damaged" is walked back over a damaged record),
  // and the batch runs again without it: the first request's chunk must
  // list the right events all the same.
  append("damaged", expected_version::any(), make_events(63, "d"));
  damage_record_and_reopen(*this, 10);  // no cached chunk for "damaged"
  append("s", expected_version::any(), make_events(60, "s"));
  std::vector<write_request> batch(2);
  batch[0].appends.push_back({"s", expected_version::exact(60), make_events(6, "crossing")});
  batch[1].appends.push_back({"damaged", expected_version::exact(63), make_events(1, "lost")});
  auto out = store->write(batch);
  BOOST_REQUIRE_MESSAGE(out.ok(), varve_test::describe(out));
  VARVE_REQUIRE_OK((*out)[0]);
  VARVE_CHECK_ERRC((*out)[1], errc::corruption);
  append("s", expected_version::exact(66), make_events(2, "after"));
  for (int reopened = 0; reopened < 2; ++reopened) {
    if (reopened) {
      store.reset();
      store = varve_test::open_store(opts);
    }
    const auto events = stream_events("s");
    BOOST_REQUIRE_EQUAL(events.size(), 68u);
    for (std::size_t i = 0; i < events.size(); ++i)
      BOOST_TEST_REQUIRE(events[i].version == i + 1);
    BOOST_TEST(events[60].payload.find("crossing") == 0);
    BOOST_TEST(events[66].payload.find("after") == 0);
  }
}
