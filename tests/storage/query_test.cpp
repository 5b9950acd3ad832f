// Tags, queries and append conditions: each MUST and SHOULD of the DCB
// specification (dcb.events), the type/category/tag indexes against a
// filtered scan, the index catch-up of a store of an older format, and
// verify's check of the indexes.
#define BOOST_TEST_MODULE query
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "raw_lmdb.hpp"
#include "temp_dir.hpp"

using namespace varve;
using varve_test::describe;
using varve_test::make_event;
using varve_test::store_fixture;

namespace {

new_event tagged(std::string type, std::vector<std::string> tags, std::string payload = "{}") {
  new_event e = make_event(std::move(type), std::move(payload));
  e.tags = std::move(tags);
  return e;
}

std::vector<global_position> positions(const std::vector<recorded_event>& events) {
  std::vector<global_position> out;
  for (const auto& e : events)
    out.push_back(e.position);
  return out;
}

/// The positions of `q`'s matches, found by scanning the whole log.
std::vector<global_position> scanned(const event_store& store, const query& q,
                                     global_position from = 1, direction dir = direction::forward) {
  auto tx = store.read();
  BOOST_REQUIRE(tx.ok());
  std::vector<global_position> out;
  auto visit = [&](const event_view& e) {
    auto name = tx->stream_name(e.stream_id);
    BOOST_REQUIRE(name.ok());
    if (q.matches(e, *name)) out.push_back(e.position);
    return true;
  };
  BOOST_REQUIRE(tx->scan_log(1, direction::forward, SIZE_MAX, visit).ok());
  if (dir == direction::forward) {
    std::erase_if(out, [&](global_position p) { return p < from; });
  } else {
    std::erase_if(out, [&](global_position p) { return p > from; });
    std::reverse(out.begin(), out.end());
  }
  return out;
}

/// Shredded streams are skipped by the log scan; scan them with envelopes.
std::vector<global_position> queried(const event_store& store, const query& q,
                                     global_position from = 1, direction dir = direction::forward,
                                     std::size_t limit = SIZE_MAX) {
  auto r = store.read_query(q, from, dir, limit);
  BOOST_REQUIRE_MESSAGE(r.ok(), "read_query: " << describe(r));
  return positions(*r);
}

/// A course subscription log: courses c0..c2, students s0..s3.
void fill_courses(event_store& store) {
  std::vector<append_request> reqs;
  for (int c = 0; c < 3; ++c)
    reqs.push_back({"course-c" + std::to_string(c),
                    expected_version::no_stream(),
                    {tagged("course_defined", {"course:c" + std::to_string(c)})}});
  BOOST_REQUIRE(store.append(reqs).ok());
  for (int s = 0; s < 4; ++s)
    for (int c = 0; c < 3; ++c)
      if ((s + c) % 2 == 0)
        BOOST_REQUIRE(store
                          .append("subscription-" + std::to_string(s) + std::to_string(c),
                                  expected_version::any(),
                                  std::vector<new_event>{tagged("student_subscribed",
                                                                {"course:c" + std::to_string(c),
                                                                 "student:s" + std::to_string(s)})})
                          .ok());
}

/// `count` events of type "e" to `stream`, 1000 a transaction, event i
/// tagged "k:<i % 5>".
void fill_five_tags(event_store& store, const std::string& stream, int count) {
  for (int t = 0; t < count; t += 1000) {
    std::vector<new_event> events;
    for (int i = t; i < std::min(count, t + 1000); ++i)
      events.push_back(tagged("e", {"k:" + std::to_string(i % 5)}));
    BOOST_REQUIRE(store.append(stream, expected_version::any(), events).ok());
  }
}

/// The key of the segment of the 4096-position span (tier 2) beginning at
/// `first`: tier, then the first position BE (9 bytes).
std::string segment_key_of(global_position first) {
  std::string key(9, '\0');
  key[0] = '\2';
  for (int b = 0; b < 8; ++b)
    key[8 - b] = static_cast<char>((first >> (8 * b)) & 0xff);
  return key;
}

/// A key of the per-key segment layout of format 3 (17 bytes: tier 2, the
/// span's first position BE, key id 1 BE), the span beginning at `first`.
std::string per_key_segment_key(global_position first) {
  std::string key = segment_key_of(first) + std::string(8, '\0');
  key[16] = '\1';
  return key;
}

/// Closes the fixture's store, lets `edit` change its tables, and opens it
/// again.
template <class Edit>
void edit_closed(varve_test::store_fixture& f, Edit&& edit) {
  f.store.reset();
  {
    varve_test::raw_env raw(f.dir / "store");
    edit(raw);
  }
  f.reopen();
}

/// verify() reports no fault.
void require_verified(event_store& store) {
  auto report = store.verify();
  BOOST_REQUIRE(report.ok());
  BOOST_TEST(report->faults.empty());
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(dcb, store_fixture)

// MUST: read events by type.
BOOST_AUTO_TEST_CASE(a_query_by_type_reads_exactly_the_events_of_that_type_in_log_order) {
  fill_courses(*store);
  const auto got = queried(*store, query::of_types({"course_defined"}));
  BOOST_TEST(got == (std::vector<global_position>{1, 2, 3}));
  BOOST_TEST(queried(*store, query::of_types({"student_subscribed"})) ==
             scanned(*store, query::of_types({"student_subscribed"})));
  BOOST_TEST(queried(*store, query::of_types({"no_such_type"})).empty());
}

// MUST: read events by tag; an item needs all its tags.
BOOST_AUTO_TEST_CASE(a_query_by_tags_reads_the_events_that_carry_all_of_them) {
  fill_courses(*store);
  const query one = query::of_tags({"course:c0"});
  const query both = query::of_tags({"course:c0", "student:s2"});
  BOOST_TEST(queried(*store, one) == scanned(*store, one));
  BOOST_TEST(queried(*store, one).size() == 3u);  // defined, s0 and s2
  const auto got = store->read_query(both).value();
  BOOST_REQUIRE_EQUAL(got.size(), 1u);
  BOOST_TEST(got[0].type == "student_subscribed");
  BOOST_TEST((got[0].tags == std::vector<std::string>{"course:c0", "student:s2"}));
}

// MUST: type and tags together, items as alternatives.
BOOST_AUTO_TEST_CASE(an_item_ands_type_and_tags_and_items_or_together) {
  fill_courses(*store);
  query q;
  q.items.push_back({{"course_defined"}, {"course:c1"}, {}});
  q.items.push_back({{"student_subscribed"}, {"student:s1"}, {}});
  BOOST_TEST(queried(*store, q) == scanned(*store, q));
  BOOST_TEST(queried(*store, q).size() == 1u + 1u);  // s1 is only in c1
  BOOST_TEST(queried(*store, query{}).empty());
  BOOST_TEST(queried(*store, query::all()).size() == head());
}

BOOST_AUTO_TEST_CASE(a_query_by_category_reads_the_streams_named_before_the_first_dash) {
  fill_courses(*store);
  BOOST_TEST(category_of("course-c1") == "course");
  BOOST_TEST(category_of("plain").empty());
  query q;
  q.items.push_back({{}, {}, {"course"}});
  BOOST_TEST(queried(*store, q) == (std::vector<global_position>{1, 2, 3}));
  q.items[0].categories = {"subscription"};
  BOOST_TEST(queried(*store, q) == scanned(*store, q));
}

// SHOULD: read from a given position, both ways, with a limit.
BOOST_AUTO_TEST_CASE(a_query_reads_from_a_position_forward_or_backward_with_a_limit) {
  fill_courses(*store);
  const query q = query::of_tags({"course:c0"});
  const auto all = queried(*store, q);
  BOOST_REQUIRE_EQUAL(all.size(), 3u);
  BOOST_TEST(queried(*store, q, all[1]) == (std::vector<global_position>{all[1], all[2]}));
  BOOST_TEST(queried(*store, q, all[1] + 1) == (std::vector<global_position>{all[2]}));
  BOOST_TEST(queried(*store, q, from_end, direction::backward) ==
             (std::vector<global_position>{all[2], all[1], all[0]}));
  BOOST_TEST(queried(*store, q, all[1], direction::backward) ==
             (std::vector<global_position>{all[1], all[0]}));
  BOOST_TEST(queried(*store, q, 1, direction::forward, 2) ==
             (std::vector<global_position>{all[0], all[1]}));
  BOOST_TEST(queried(*store, q, head() + 5).empty());
}

// MUST: append several events atomically.
BOOST_AUTO_TEST_CASE(a_conditional_append_writes_all_its_events_or_none) {
  fill_courses(*store);
  const global_position read_at = head();
  std::vector<append_request> reqs{
      {"subscription-x",
       expected_version::no_stream(),
       {tagged("student_subscribed", {"course:c1", "student:s9"}),
        tagged("notified", {"student:s9"})}},
      {"student-s9", expected_version::any(), {tagged("counted", {"student:s9"})}}};
  const append_condition cond{query::of_tags({"student:s9"}), read_at};
  auto ok = store->append(reqs, cond);
  BOOST_REQUIRE_MESSAGE(ok.ok(), describe(ok));
  BOOST_TEST(head() == read_at + 3);
  // The same condition now fails, and writes nothing of either stream.
  reqs[0].stream = "subscription-y";
  reqs[1].stream = "student-s10";
  auto refused = store->append(reqs, cond);
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.err().code() == errc::wrong_expected_version);
  BOOST_TEST(head() == read_at + 3);
  BOOST_TEST(version_of("subscription-y") == 0u);
  BOOST_TEST(version_of("student-s10") == 0u);
}

// MUST: fail when a matching event exists after the condition's position;
// the error names the first one.
BOOST_AUTO_TEST_CASE(an_append_fails_when_a_matching_event_follows_the_position_read) {
  fill_courses(*store);
  const query q = query::of_tags({"course:c2"});
  const global_position read_at = head();
  BOOST_REQUIRE(store
                    ->append("other-1", expected_version::any(),
                             std::vector<new_event>{tagged("course_renamed", {"course:c1"})})
                    .ok());
  // An event that does not match does not fail the condition.
  const std::vector<append_request> sub{
      {"subscription-z",
       expected_version::any(),
       {tagged("student_subscribed", {"course:c2", "student:s3"})}}};
  auto first = store->append(sub, append_condition{q, read_at});
  BOOST_REQUIRE_MESSAGE(first.ok(), describe(first));
  const global_position matching = first->front().first_position;
  auto second = store->append(sub, append_condition{q, read_at});
  BOOST_REQUIRE(!second.ok());
  BOOST_TEST(second.err().code() == errc::wrong_expected_version);
  BOOST_TEST_MESSAGE(second.err().message());
  BOOST_TEST(varve_test::mentions_number(second.err().message(), matching));
  // Without a position, any matching event at all fails it.
  auto unbounded = store->append(sub, append_condition{query::of_tags({"course:c0"}), {}});
  BOOST_TEST(!unbounded.ok());
  // A position at the head passes.
  BOOST_TEST(store->append(sub, append_condition{q, head()}).ok());
}

BOOST_AUTO_TEST_CASE(of_two_requests_in_one_batch_for_one_boundary_only_the_first_succeeds) {
  fill_courses(*store);
  const global_position read_at = head();
  std::vector<write_request> batch(2);
  for (int i = 0; i < 2; ++i) {
    batch[i].appends.push_back({"username-" + std::to_string(i),
                                expected_version::any(),
                                {tagged("username_claimed", {"username:ada"})}});
    batch[i].condition =
        append_condition{query{{{{"username_claimed"}, {"username:ada"}, {}}}}, read_at};
  }
  auto out = store->write(batch);
  BOOST_REQUIRE(out.ok());
  BOOST_TEST((*out)[0].ok());
  BOOST_REQUIRE(!(*out)[1].ok());
  BOOST_TEST((*out)[1].err().code() == errc::wrong_expected_version);
  BOOST_TEST(queried(*store, query::of_tags({"username:ada"})).size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_retried_conditional_append_with_the_same_ids_returns_the_first_places) {
  const std::vector<append_request> reqs{{"username-1",
                                          expected_version::no_stream(),
                                          {tagged("username_claimed", {"username:bob"})}}};
  std::vector<append_request> with_ids = reqs;
  with_ids[0].events[0].id = event_id::generate();
  const append_condition cond{query::of_tags({"username:bob"}), 0};
  auto first = store->append(with_ids, cond);
  BOOST_REQUIRE(first.ok());
  auto retried = store->append(with_ids, cond);
  BOOST_REQUIRE_MESSAGE(retried.ok(), describe(retried));
  BOOST_TEST(retried->front().idempotent);
  BOOST_TEST(retried->front().first_position == first->front().first_position);
  BOOST_TEST(head() == 1u);
  // Other events (no ids) under the same condition fail.
  with_ids[0].stream = "username-2";
  with_ids[0].expected = expected_version::any();
  with_ids[0].events[0].id.reset();
  BOOST_TEST(!store->append(with_ids, cond).ok());
}

BOOST_AUTO_TEST_CASE(bad_tags_and_bad_queries_are_refused_and_write_nothing) {
  auto refused = [&](new_event e, std::string_view word) {
    auto r = store->append("s-1", expected_version::any(), std::vector<new_event>{std::move(e)});
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.err().code() == errc::invalid_argument);
    BOOST_TEST_CONTEXT(r.err().message()) {
      BOOST_TEST(r.err().message().find(word) != std::string::npos);
    }
  };
  refused(tagged("t", {""}), "tag");
  refused(tagged("t", {std::string(256, 'x')}), "256");
  refused(tagged("t", {"a", "a"}), "twice");
  refused(tagged("t", {std::string("\xff\xfe")}), "UTF-8");
  std::vector<std::string> many;
  for (int i = 0; i < 33; ++i)
    many.push_back("t" + std::to_string(i));
  refused(tagged("t", many), "33");
  BOOST_TEST(head() == 0u);
  auto bad_query = store->read_query(query::of_tags({""}));
  BOOST_REQUIRE(!bad_query.ok());
  BOOST_TEST(bad_query.err().code() == errc::invalid_argument);
  auto bad_condition = store->append(
      std::vector<append_request>{{"s-1", expected_version::any(), {tagged("t", {})}}},
      append_condition{query::of_types({""}), {}});
  BOOST_TEST(!bad_condition.ok());
  BOOST_TEST(head() == 0u);
  // 32 tags of 255 bytes are fine.
  std::vector<std::string> most;
  for (int i = 0; i < 32; ++i)
    most.push_back(std::string(253, 'x') + std::to_string(10 + i));
  BOOST_TEST(
      store->append("s-1", expected_version::any(), std::vector<new_event>{tagged("t", most)})
          .ok());
  BOOST_TEST(store->read_query(query::of_tags({most[31]})).value().size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_query_over_its_bounds_is_refused_in_reads_conditions_and_retries) {
  fill_courses(*store);
  const auto before = head();
  query too_many_items;
  for (std::size_t i = 0; i <= max_query_items; ++i)
    too_many_items.items.push_back(query_item{{}, {"course:c1"}, {}});
  query too_many_terms;
  too_many_terms.items.push_back(query_item{{}, {}, {}});
  for (std::size_t i = 0; i <= max_query_terms; ++i)
    too_many_terms.items[0].types.push_back("type" + std::to_string(i));
  for (const query* q : {&too_many_items, &too_many_terms}) {
    auto read = store->read_query(*q);
    BOOST_REQUIRE(!read.ok());
    BOOST_TEST(read.err().code() == errc::invalid_argument);
    BOOST_TEST_MESSAGE(read.err().message());
    auto cond = store->append(
        std::vector<append_request>{{"s-1", expected_version::any(), {tagged("t", {})}}},
        append_condition{*q, {}});
    BOOST_REQUIRE(!cond.ok());
    BOOST_TEST(cond.err().code() == errc::invalid_argument);
  }
  BOOST_TEST(head() == before);
  // At the bounds: the same answer as one item (items that share a key
  // read its list once).
  query most;
  for (std::size_t i = 0; i < max_query_items; ++i)
    most.items.push_back(query_item{{"student_subscribed"}, {"course:c1"}, {}});
  BOOST_TEST(queried(*store, most) == queried(*store, query{{most.items[0]}}),
             boost::test_tools::per_element());
  BOOST_TEST(queried(*store, most) == scanned(*store, most), boost::test_tools::per_element());

  // A retry whose events are all in place still has its condition checked
  // for being a query at all.
  std::vector<append_request> with_id{
      {"username-1", expected_version::any(), {tagged("username_claimed", {"username:al"})}}};
  with_id[0].events[0].id = event_id::generate();
  BOOST_REQUIRE(store->append(with_id, append_condition{query::of_tags({"username:al"}), {}}).ok());
  auto bad_retry = store->append(with_id, append_condition{query::of_tags({""}), {}});
  BOOST_REQUIRE(!bad_retry.ok());
  BOOST_TEST(bad_retry.err().code() == errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(the_indexes_equal_a_filtered_scan_after_random_appends_shreds_and_reopen) {
  std::mt19937 rng(42);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const std::vector<std::string> types{"a", "b", "c", "rare"};
  for (int round = 0; round < 6; ++round) {
    std::vector<write_request> batch(1 + pick(8));
    for (auto& req : batch) {
      const std::string stream =
          (pick(2) ? "cat" : "dog") + std::string("-") + std::to_string(pick(20));
      append_request a{stream, expected_version::any(), {}};
      for (int i = 0, n = 1 + pick(100); i < n; ++i) {
        std::vector<std::string> tags;
        if (pick(3) == 0) tags.push_back("k:" + std::to_string(pick(10)));
        if (pick(4) == 0) tags.push_back("j:" + std::to_string(pick(3)));
        a.events.push_back(tagged(types[pick(10) == 0 ? 3 : pick(3)], tags));
      }
      req.appends.push_back(std::move(a));
    }
    BOOST_REQUIRE(store->write(batch).ok());
    if (round == 2 && version_of("cat-3") > 0) BOOST_REQUIRE(store->shred("cat-3").ok());
    if (round == 4) reopen();
  }
  std::vector<query> queries{query::of_types({"rare"}), query::of_types({"a", "c"}),
                             query::of_tags({"k:3"}), query::of_tags({"k:1", "j:2"})};
  queries.push_back(query{{{{"b"}, {"k:2"}, {}}, {{}, {}, {"dog"}}}});
  for (const query& q : queries) {
    BOOST_TEST_CONTEXT(q.to_string()) {
      // Shredded events are in query reads (envelopes) and not in log
      // scans: compare without them.
      auto got = store->read_query(q).value();
      std::erase_if(got, [](const recorded_event& e) { return e.shredded; });
      BOOST_TEST(positions(got) == scanned(*store, q));
      const auto mid = head() / 2;
      auto back = store->read_query(q, mid, direction::backward).value();
      std::erase_if(back, [](const recorded_event& e) { return e.shredded; });
      BOOST_TEST(positions(back) == scanned(*store, q, mid, direction::backward));
    }
  }
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_TEST(report->faults.empty());
  BOOST_TEST(report->index_entries >= head());
}

BOOST_AUTO_TEST_CASE(queries_and_conditions_read_every_tier_of_the_index_in_both_directions) {
  // 2^20 + 3 * 2^16 + 5 * 4096 + 777 events: one segment span of each tier
  // (merged as the log passed their ends), tier-2 spans, and recent entries.
  constexpr global_position total = (1u << 20) + 3 * (1u << 16) + 5 * 4096 + 777;
  global_position written = 0;
  for (int b = 0; written < total; ++b) {
    std::vector<new_event> events;
    const global_position n = std::min<global_position>(total - written, 9'973);
    for (global_position i = 0; i < n; ++i) {
      const global_position p = written + i + 1;
      std::vector<std::string> tags{"k:" + std::to_string(p % 13)};
      if (p % 4099 == 0) tags.push_back("seldom");
      new_event e = tagged(p % 997 == 0 ? "rare" : "common", std::move(tags), "");
      events.push_back(std::move(e));
    }
    BOOST_REQUIRE(
        store->append("s-" + std::to_string(b % 5), expected_version::any(), events).ok());
    written += n;
  }
  BOOST_REQUIRE_EQUAL(head(), total);
  const std::vector<query> queries{query::of_types({"rare"}), query::of_tags({"seldom"}),
                                   query::of_tags({"k:4", "seldom"}),
                                   query{{{{"rare"}, {}, {}}, {{}, {"seldom"}, {}}}}};
  const std::vector<global_position> froms{
      1, 4096, 4097, 65536, 65537, (1u << 20), (1u << 20) + 1, total - 900, total - 777, total};
  for (const query& q : queries) {
    const auto all = scanned(*store, q);  // one scan of the log per query
    BOOST_TEST_CONTEXT(q.to_string()) {
      BOOST_TEST(queried(*store, q) == all);
      for (global_position from : froms) {
        BOOST_TEST_CONTEXT("from " << from) {
          std::vector<global_position> forward, backward;
          std::copy_if(all.begin(), all.end(), std::back_inserter(forward),
                       [&](global_position p) { return p >= from; });
          std::copy_if(all.rbegin(), all.rend(), std::back_inserter(backward),
                       [&](global_position p) { return p <= from; });
          BOOST_TEST(queried(*store, q, from) == forward);
          BOOST_TEST(queried(*store, q, from, direction::backward) == backward);
          backward.resize(std::min<std::size_t>(backward.size(), 3));
          BOOST_TEST(queried(*store, q, from, direction::backward, 3) == backward);
        }
      }
    }
  }
  // Conditions read the same index: one after a position in the oldest
  // span fails on the next "seldom" event; after the last one it succeeds.
  const auto seldom = scanned(*store, query::of_tags({"seldom"}));
  BOOST_REQUIRE(seldom.size() > 2);
  write_request conflicting{{{"s-x", expected_version::any(), {tagged("common", {"seldom"})}}}};
  conflicting.condition = append_condition{query::of_tags({"seldom"}), seldom[1] - 1};
  auto failed = store->write(std::vector<write_request>{conflicting});
  BOOST_REQUIRE(failed.ok());
  BOOST_REQUIRE(!(*failed)[0].ok());
  BOOST_TEST((*failed)[0].err().message().find("position " + std::to_string(seldom[1])) !=
             std::string::npos);
  conflicting.condition->after = seldom.back();
  auto passed = store->write(std::vector<write_request>{conflicting});
  BOOST_REQUIRE(passed.ok());
  BOOST_TEST((*passed)[0].ok());
  reopen();
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_TEST(report->faults.empty());
  BOOST_TEST(report->index_entries == 3 * (total + 1) + seldom.size());  // type, category, k:
}

BOOST_AUTO_TEST_CASE(many_small_transactions_are_read_through_a_few_recent_index_entries) {
  // 900 transactions of 5 events: their recent index entries are folded
  // together every max_recent_entries, and become segments at 4096; reads
  // find every event all along.
  for (int t = 0; t < 900; ++t) {
    std::vector<new_event> events;
    for (int i = t * 5; i < t * 5 + 5; ++i)
      events.push_back(tagged(i % 10 == 0 ? "tenth" : "other", {"k:" + std::to_string(i % 3)}));
    BOOST_REQUIRE(
        store->append("small-" + std::to_string(t % 7), expected_version::any(), events).ok());
    if (t == 100) {
      BOOST_TEST(queried(*store, query::of_tags({"k:1"})) ==
                 scanned(*store, query::of_tags({"k:1"})));
    }
  }
  for (const query& q : {query::of_types({"tenth"}), query::of_tags({"k:1"})}) {
    BOOST_TEST_CONTEXT(q.to_string()) {
      BOOST_TEST(queried(*store, q) == scanned(*store, q));
      BOOST_TEST(queried(*store, q, 4100, direction::backward) ==
                 scanned(*store, q, 4100, direction::backward));
    }
  }
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_TEST(report->faults.empty());
  store.reset();
  varve_test::raw_env raw(dir / "store");
  BOOST_TEST(raw.entries("index_recent", MDB_INTEGERKEY) <= 16u);
}

BOOST_AUTO_TEST_CASE(
    a_span_is_sealed_from_its_recent_entries_and_the_transaction_crossing_its_end) {
  // Transactions of 700 events, each with two of 1,500 tags: the 6th
  // crosses position 4096 and seals the span from the 5 recent entries as
  // stored and its own events up to 4096; its events after 4096 become the
  // next recent entry. The 12th seals the second span the same way.
  for (int t = 0; t < 12; ++t) {
    std::vector<new_event> events;
    for (int i = t * 700; i < t * 700 + 700; ++i)
      events.push_back(tagged(i % 50 == 0 ? "fiftieth" : "other",
                              {"a:" + std::to_string(i % 1000), "b:" + std::to_string(i % 500)}));
    BOOST_REQUIRE(
        store->append(t % 2 ? "odd-" + std::to_string(t) : "even", expected_version::any(), events)
            .ok());
  }
  BOOST_REQUIRE_EQUAL(head(), 8400u);
  const std::vector<query> queries{query::of_types({"fiftieth"}), query::of_tags({"a:7"}),
                                   query::of_tags({"b:499"}), query::of_tags({"a:95", "b:95"}),
                                   query{{query_item{{}, {}, {"odd"}}}}};
  for (int reopened = 0; reopened < 2; ++reopened) {
    if (reopened) reopen();
    for (const query& q : queries) {
      BOOST_TEST_CONTEXT(q.to_string()) {
        BOOST_TEST(!scanned(*store, q).empty());
        BOOST_TEST(queried(*store, q) == scanned(*store, q));
        BOOST_TEST(queried(*store, q, 4096, direction::backward) ==
                   scanned(*store, q, 4096, direction::backward));
        BOOST_TEST(queried(*store, q, 4097) == scanned(*store, q, 4097));
      }
    }
  }
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_TEST(report->faults.empty());
  BOOST_TEST(report->index_entries == 8400u * 4 - 6 * 700);  // type, 2 tags, odd-* category
  store.reset();
  varve_test::raw_env raw(dir / "store");
  BOOST_TEST(raw.entries("index_recent", MDB_INTEGERKEY) == 1u);  // 8193..8400
}

BOOST_AUTO_TEST_CASE(a_fold_of_recent_entries_rewrites_the_newest_and_keeps_the_older_larger_one) {
  // Single-event transactions: the 17th finds 16 entries and folds them all
  // (each covers one position) into one covering 1..17. The 33rd finds that
  // one and 15 newer ones (15 positions, fewer than its 17): it folds only
  // those, into one covering 18..33, and leaves 1..17 as it was.
  for (int t = 0; t < 33; ++t)
    BOOST_REQUIRE(store
                      ->append("fold-1", expected_version::any(),
                               std::vector<new_event>{tagged("e", {"k:1"})})
                      .ok());
  const query q = query::of_tags({"k:1"});
  BOOST_TEST(queried(*store, q) == scanned(*store, q));
  BOOST_TEST(queried(*store, q, 33, direction::backward) ==
             scanned(*store, q, 33, direction::backward));
  store.reset();
  varve_test::raw_env raw(dir / "store");
  BOOST_TEST(raw.entries("index_recent", MDB_INTEGERKEY) == 2u);
  BOOST_TEST(raw.get_recent_index(1).has_value());
  BOOST_TEST(raw.get_recent_index(18).has_value());
}

BOOST_AUTO_TEST_CASE(tags_are_kept_and_bound_in_an_encrypted_store_while_the_map_grows) {
  varve_test::temp_dir d;
  options o = varve_test::test_options(d / "enc");
  o.master_key = std::array<std::uint8_t, 32>{7};
  o.map_size = 1 << 20;
  auto enc = varve_test::open_store(o);
  for (int i = 0; i < 40; ++i) {
    std::vector<append_request> reqs{
        {"course-" + std::to_string(i),
         expected_version::no_stream(),
         {tagged("course_defined", {"course:" + std::to_string(i)}, std::string(2000, 'p'))}}};
    const query q = query::of_tags({"course:" + std::to_string(i)});
    BOOST_REQUIRE(enc->append(reqs, append_condition{q, {}}).ok());
    BOOST_TEST(!enc->append(reqs, append_condition{q, {}}).ok());
  }
  enc.reset();
  enc = varve_test::open_store(o);
  auto got = enc->read_query(query::of_tags({"course:17"})).value();
  BOOST_REQUIRE_EQUAL(got.size(), 1u);
  BOOST_TEST(got[0].payload == std::string(2000, 'p'));
  BOOST_TEST(got[0].stream == "course-17");
  BOOST_REQUIRE(enc->shred("course-17").ok());
  got = enc->read_query(query::of_tags({"course:17"})).value();
  BOOST_REQUIRE_EQUAL(got.size(), 1u);
  BOOST_TEST(got[0].shredded);
  BOOST_TEST(got[0].tags == std::vector<std::string>{"course:17"});
  auto report = enc->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_TEST(report->faults.empty());
  enc.reset();
  {
    // A tag changed in the file does not authenticate.
    varve_test::raw_env raw(d / "enc");
    auto record = raw.get_event(5);
    BOOST_REQUIRE(record);
    const auto at = record->find("course:4");
    BOOST_REQUIRE(at != std::string::npos);
    (*record)[at + 7] = '9';
    raw.put_event(5, *record);
  }
  enc = varve_test::open_store(o);
  auto tampered = enc->read().value().event_at(5);
  BOOST_REQUIRE(!tampered.ok());
  BOOST_TEST(tampered.err().code() == errc::auth_failed);
}

BOOST_AUTO_TEST_CASE(a_store_without_indexes_gets_them_built_once_when_opened) {
  fill_courses(*store);
  const auto before = queried(*store, query::of_tags({"course:c1"}));
  store.reset();
  {
    // As a store of format 2 (or one an older build appended to) is: no
    // index entries, no indexed position.
    varve_test::raw_env raw(dir / "store");
    raw.remove_indexes();
    raw.put("meta", "format_version", varve_test::le32(2));
  }
  reopen();
  BOOST_TEST(queried(*store, query::of_tags({"course:c1"})) == before);
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_TEST(report->faults.empty());
  store.reset();
  varve_test::raw_env raw(dir / "store");
  BOOST_TEST(raw.get("meta", "format_version").value_or("") == varve_test::le32(4));
  BOOST_TEST(raw.entries("index_keys") > 0u);
}

BOOST_AUTO_TEST_CASE(a_large_store_without_indexes_gets_them_in_several_transactions) {
  // 2.1M index entries (type, category, 5 tags): opening adds about 2^20 of
  // them per transaction.
  constexpr int batches = 30, per_batch = 10'000;
  for (int b = 0; b < batches; ++b) {
    std::vector<new_event> events;
    for (int i = 0; i < per_batch; ++i)
      events.push_back(tagged(
          i % 1000 == 0 ? "rare" : "common",
          {"k:" + std::to_string(i % 7), "a:" + std::to_string(i % 3), "b:" + std::to_string(i % 5),
           "c:" + std::to_string(i % 11), "d:" + std::to_string(b)}));
    BOOST_REQUIRE(
        store->append("big-" + std::to_string(b % 3), expected_version::any(), events).ok());
  }
  store.reset();
  {
    varve_test::raw_env raw(dir / "store");
    raw.remove_indexes();
  }
  reopen();
  BOOST_TEST(queried(*store, query::of_types({"rare"})).size() == std::size_t{batches * 10});
  BOOST_TEST(queried(*store, query::of_tags({"k:3"})) == scanned(*store, query::of_tags({"k:3"})));
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_TEST(report->faults.empty());
  BOOST_TEST(report->index_entries == 7u * batches * per_batch);  // type, category, 5 tags
}

BOOST_AUTO_TEST_CASE(indexes_of_the_older_chunk_layout_are_built_again_when_opened) {
  fill_courses(*store);
  const auto before = scanned(*store, query::of_tags({"course:c1"}));
  const global_position at = head();
  store.reset();
  {
    // What a build with per-key chunks left: 16-byte keys (key id, first
    // position) in `index`, and every position covered.
    varve_test::raw_env raw(dir / "store");
    raw.remove_indexes();
    raw.put("index", std::string(15, '\0') + '\1', std::string("\1", 1));
    raw.put("meta", "indexed_through", varve_test::le64(at));
  }
  reopen();
  BOOST_TEST(queried(*store, query::of_tags({"course:c1"})) == before);
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_TEST(report->faults.empty());
  // And a condition over them holds.
  write_request late{{{"course-c1", expected_version::any(), {tagged("x", {"course:c1"})}}}};
  late.condition = append_condition{query::of_tags({"course:c1"}), 0};
  auto out = store->write(std::vector<write_request>{late});
  BOOST_REQUIRE(out.ok());
  BOOST_TEST(!(*out)[0].ok());
}

BOOST_AUTO_TEST_CASE(indexes_of_the_older_per_key_segment_layout_are_built_again_when_opened) {
  fill_courses(*store);
  const auto before = scanned(*store, query::of_tags({"student:s2"}));
  const global_position at = head();
  store.reset();
  {
    // What a build with one segment per key and span left: 17-byte keys
    // (tier, span's first position, key id) in `index`, a span segmented.
    varve_test::raw_env raw(dir / "store");
    raw.remove_indexes();
    raw.put("index", per_key_segment_key(1), std::string("\1", 1));
    raw.put("meta", "indexed_through", varve_test::le64(at));
  }
  reopen();
  BOOST_TEST(queried(*store, query::of_tags({"student:s2"})) == before);
  require_verified(*store);
}

BOOST_AUTO_TEST_CASE(a_store_of_format_3_gets_its_indexes_built_again_and_becomes_format_4) {
  // 9000 events: segments (2, 1) and (2, 4097). A build of format 3 may have
  // left a per-key segment anywhere among them (here between the two, so
  // that the first and last keys look right): format 3 alone means rebuild.
  fill_five_tags(*store, "three-1", 9000);
  const auto before = scanned(*store, query::of_tags({"k:3"}));
  edit_closed(*this, [](varve_test::raw_env& raw) {
    raw.put("index", per_key_segment_key(1), std::string("\1", 1));
    raw.put("meta", "format_version", varve_test::le32(3));
  });
  BOOST_TEST(queried(*store, query::of_tags({"k:3"})) == before);
  require_verified(*store);
  store.reset();
  {
    // Builds of format 3, which would write and read per-key segments,
    // now refuse the store.
    varve_test::raw_env raw(dir / "store");
    BOOST_TEST(raw.get("meta", "format_version").value_or("") == varve_test::le32(4));
  }
  reopen();
}

BOOST_AUTO_TEST_CASE(a_segment_whose_first_list_does_not_start_at_its_lists_is_corruption) {
  fill_five_tags(*store, "offset-1", 5000);
  edit_closed(*this, [](varve_test::raw_env& raw) {
    // The segment of span (2, 1): u32 n, n ids, then n + 1 offsets; the
    // first offset made 1 leaves a byte before the first list.
    auto value = raw.get("index", segment_key_of(1));
    BOOST_REQUIRE(value.has_value());
    std::uint32_t n = 0;
    std::memcpy(&n, value->data(), sizeof n);
    (*value)[4 + n * 8] = '\1';
    raw.put("index", segment_key_of(1), *value);
  });
  auto read = store->read_query(query::of_tags({"k:1"}));
  BOOST_REQUIRE(!read.ok());
  BOOST_TEST(read.err().code() == errc::corruption);
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  bool named = false;
  for (const auto& f : report->faults)
    named = named || f.find("does not decode") != std::string::npos;
  BOOST_TEST(named);
}

BOOST_AUTO_TEST_CASE(a_merge_over_a_segment_with_a_zero_gap_is_corruption_and_appends_nothing) {
  // Merging 16 segments into one copies each list's gaps as they are: a
  // gap of 0 (two entries at one position) in one of them stops the
  // append that passes 65536, which writes nothing.
  fill_five_tags(*store, "merge-1", 65000);
  edit_closed(*this, [](varve_test::raw_env& raw) {
    auto value = raw.get("index", segment_key_of(4097));
    BOOST_REQUIRE(value.has_value());
    BOOST_REQUIRE(value->back() != '\0');
    value->back() = '\0';  // the last gap of the last key's list
    raw.put("index", segment_key_of(4097), *value);
  });
  std::vector<new_event> events;
  for (int i = 0; i < 1000; ++i)
    events.push_back(tagged("e", {"k:" + std::to_string(i % 5)}));
  auto refused = store->append("merge-1", expected_version::any(), events);
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.err().code() == errc::corruption);
  BOOST_TEST(refused.err().message().find("does not decode") != std::string::npos,
             refused.err().message());
  BOOST_TEST(head() == 65000u);
}

BOOST_AUTO_TEST_CASE(a_segment_of_another_layout_after_this_layouts_ones_is_rebuilt_when_opened) {
  // A 9-byte segment first, a 17-byte one (the per-key layout) after it,
  // as a build of format 3 appending to this layout's store would leave:
  // opening rebuilds the indexes; queries miss nothing.
  fill_five_tags(*store, "mixed-1", 6000);
  const auto before = scanned(*store, query::of_tags({"k:3"}));
  edit_closed(*this, [](varve_test::raw_env& raw) {
    raw.put("index", per_key_segment_key(4097), std::string("\1", 1));
  });
  BOOST_TEST(queried(*store, query::of_tags({"k:3"})) == before);
  require_verified(*store);
}

BOOST_AUTO_TEST_CASE(a_sealed_span_without_its_segment_is_corruption_not_an_empty_span) {
  // Every sealed span has a segment (each event has a type key). A span
  // whose segment is gone, here replaced by a per-key one as a running
  // build of format 3 would seal it after this build upgraded the store
  // (between two of this layout's segments, where opening does not look),
  // is reported: queries and conditions answer corruption, not fewer
  // events; nothing is appended; rebuilding repairs it.
  fill_five_tags(*store, "gap-1", 13000);
  const auto before = scanned(*store, query::of_tags({"k:3"}));
  const global_position at = head();
  edit_closed(*this, [](varve_test::raw_env& raw) {
    raw.erase("index", segment_key_of(4097));
    raw.put("index", per_key_segment_key(4097), std::string("\1", 1));
  });
  auto q = store->read_query(query::of_tags({"k:3"}), 1, direction::forward, SIZE_MAX);
  BOOST_REQUIRE(!q.ok());
  BOOST_TEST(q.err().code() == errc::corruption);
  BOOST_TEST(q.err().message().find("4097") != std::string::npos, q.err().message());
  BOOST_TEST(q.err().message().find("rebuild") != std::string::npos, q.err().message());
  // A condition from the damaged span on (one from before it meets a real
  // match first, and answers that).
  auto refused = store->append(
      std::vector<append_request>{append_request{"gap-2", expected_version::any(),
                                                 std::vector<new_event>{tagged("e", {"k:3"})}}},
      append_condition{query::of_tags({"k:3"}), 4096});
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.err().code() == errc::corruption);
  BOOST_TEST(head() == at);
  BOOST_REQUIRE(store->rebuild_indexes().ok());
  BOOST_TEST(queried(*store, query::of_tags({"k:3"})) == before);
  require_verified(*store);
}

BOOST_AUTO_TEST_CASE(a_merge_over_a_span_without_its_segment_is_refused_not_made) {
  // 15 spans of 4096 sealed, span 4097's segment gone: the append that
  // passes 65536 would merge the 16 spans into one and hide the hole. It
  // is refused, nothing written; rebuilding repairs it.
  fill_five_tags(*store, "merge-1", 65000);
  const global_position at = head();
  edit_closed(*this, [](varve_test::raw_env& raw) { raw.erase("index", segment_key_of(4097)); });
  std::vector<new_event> more;
  for (int i = 0; i < 1000; ++i)
    more.push_back(tagged("e", {"k:" + std::to_string(i % 5)}));
  auto refused = store->append("merge-1", expected_version::any(), more);
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.err().code() == errc::corruption);
  BOOST_TEST(refused.err().message().find("rebuild") != std::string::npos, refused.err().message());
  BOOST_TEST(head() == at);
  BOOST_REQUIRE(store->rebuild_indexes().ok());
  BOOST_REQUIRE(store->append("merge-1", expected_version::any(), more).ok());
  BOOST_TEST(queried(*store, query::of_tags({"k:3"})) == scanned(*store, query::of_tags({"k:3"})));
  require_verified(*store);
}

BOOST_AUTO_TEST_CASE(an_index_position_past_the_log_is_reported_refused_and_rebuilt) {
  fill_courses(*store);
  const global_position at = head();
  store.reset();
  {
    varve_test::raw_env raw(dir / "store");
    raw.put("meta", "indexed_through", varve_test::le64(at + 100));
  }
  reopen();
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  bool named = false;
  for (const auto& f : report->faults)
    named = named || f.find("indexed_through") != std::string::npos;
  BOOST_TEST(named);
  // An append would index its events wrong: refused, nothing written.
  auto refused = store->append("course-c9", expected_version::any(),
                               std::vector<new_event>{tagged("course_defined", {"course:c9"})});
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.err().code() == errc::corruption);
  BOOST_TEST(refused.err().message().find("rebuild") != std::string::npos);
  BOOST_TEST(head() == at);
  BOOST_REQUIRE(store->rebuild_indexes().ok());
  BOOST_REQUIRE(store
                    ->append("course-c9", expected_version::any(),
                             std::vector<new_event>{tagged("course_defined", {"course:c9"})})
                    .ok());
  BOOST_TEST(queried(*store, query::of_tags({"course:c9"})) ==
             scanned(*store, query::of_tags({"course:c9"})));
  report = store->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_TEST(report->faults.empty());
}

BOOST_AUTO_TEST_CASE(rebuild_indexes_repairs_a_damaged_index_while_another_handle_reads) {
  fill_courses(*store);
  const auto before = scanned(*store, query::of_tags({"student:s2"}));
  store.reset();
  {
    varve_test::raw_env raw(dir / "store");
    raw.empty("index_recent", MDB_INTEGERKEY);
  }
  reopen();
  auto damaged = store->verify();
  BOOST_REQUIRE(damaged.ok());
  BOOST_TEST(!damaged->faults.empty());
  auto reader = store->read();  // a reader that began before the rebuild
  BOOST_REQUIRE(reader.ok());
  BOOST_REQUIRE(store->rebuild_indexes().ok());
  BOOST_TEST(queried(*store, query::of_tags({"student:s2"})) == before);
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_TEST(report->faults.empty());
  // The old reader still reads its snapshot.
  std::size_t n = 0;
  BOOST_TEST(reader
                 ->scan_log(1, direction::forward, SIZE_MAX,
                            [&](const event_view&) {
                              ++n;
                              return true;
                            })
                 .ok());
  BOOST_TEST(n == head());
}

BOOST_AUTO_TEST_CASE(verify_reports_an_index_that_disagrees_with_the_log) {
  fill_courses(*store);
  store.reset();
  {
    varve_test::raw_env raw(dir / "store");
    raw.empty("index");
    raw.empty("index_recent", MDB_INTEGERKEY);
  }
  reopen();
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_TEST(!report->faults.empty());
  bool named = false;
  for (const auto& f : report->faults)
    named = named || f.find("index lacks") != std::string::npos;
  BOOST_TEST(named);
}

BOOST_AUTO_TEST_SUITE_END()
