// Projections whose filter the store's indexes answer: they read only the
// positions listed for their event types, tags and categories, and their
// cursor moves over the ranges with nothing for them. Driven by the real
// engine and the local source's reader (varve::testkit::projection_harness)
// over real stores on disk.
#define BOOST_TEST_MODULE projection_filtered_read
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <varve/testkit/projection_harness.hpp>

using namespace varve;
using varve::testkit::projection_harness;

namespace {

/// What a handler was handed, in order.
struct seen_event {
  global_position position = 0;
  std::string stream, type, payload;
  std::vector<std::string> tags;
  bool shredded = false;
  friend bool operator==(const seen_event&, const seen_event&) = default;
};

std::ostream& operator<<(std::ostream& os, const seen_event& e) {
  return os << "@" << e.position << " " << e.stream << " " << e.type;
}

seen_event seen_of(const delivered_event& d) {
  seen_event s{d.event.position,
               std::string(d.stream),
               std::string(d.event.type),
               std::string(d.event.payload),
               {},
               d.event.shredded};
  for (std::string_view t : d.event.tags)
    s.tags.emplace_back(t);
  return s;
}

/// An event as appended, with the stream it went to.
struct appended_event {
  std::string stream;
  new_event event;
};

/// A projection that records what it is handed and counts it in its view
/// (key "count"), per event or per batch.
projection_spec recording(projection_filter filter, std::shared_ptr<std::vector<seen_event>> seen,
                          bool per_batch = false, delivery mode = delivery::exactly_once) {
  projection_spec spec;
  spec.name = "p";
  spec.mode = mode;
  spec.filter = std::move(filter);
  auto count = [](view_batch& view, std::size_t n) -> result<void> {
    auto now = view.get("count");
    if (!now) return now.err();
    view.put("count", std::to_string((*now ? std::stoull(**now) : 0) + n));
    return {};
  };
  if (per_batch) {
    spec.handle_batch = [seen, count](std::span<const delivered_event> events, view_batch& view) {
      for (const auto& d : events)
        seen->push_back(seen_of(d));
      return count(view, events.size());
    };
  } else {
    spec.handle = [seen, count](const delivered_event& d, view_batch& view) {
      seen->push_back(seen_of(d));
      return count(view, 1);
    };
  }
  return spec;
}

/// A mixed log: streams of three categories and one named like a category,
/// three types, tags on some events. Deterministic.
std::vector<appended_event> mixed_log(std::size_t n) {
  static const char* streams[] = {"order-1",     "order-2", "account-1",
                                  "account-2-x", "account", "misc"};
  static const char* types[] = {"placed", "paid", "closed"};
  std::vector<appended_event> out;
  for (std::size_t i = 0; i < n; ++i) {
    appended_event a;
    a.stream = streams[(i * 7 + i / 5) % 6];
    a.event.type = types[(i * 13 + i / 3) % 3];
    a.event.payload = "{\"i\":" + std::to_string(i) + "}";
    if (i % 4 == 0) a.event.tags.push_back("region:eu");
    if (i % 6 == 0) a.event.tags.push_back("customer:" + std::to_string(i % 5));
    if (i % 45 == 0) a.event.tags.push_back("vip");
    out.push_back(std::move(a));
  }
  return out;
}

/// Appends `events` one append per run of one stream, as an application
/// would; returns the positions they got (the head before + 1...).
void append_all(projection_harness& h, const std::vector<appended_event>& events) {
  std::size_t i = 0;
  while (i < events.size()) {
    std::size_t j = i;
    std::vector<new_event> run;
    while (j < events.size() && events[j].stream == events[i].stream)
      run.push_back(events[j++].event);
    h.given_events(events[i].stream, run);
    i = j;
  }
}

/// What a handler must be handed: the events of `log` (at positions
/// first, first + 1, ...) that `pass` lets through. Written out here, not
/// with projection_filter::matches: the test's own reading of the filter.
std::vector<seen_event> expected_of(const std::vector<appended_event>& log, global_position first,
                                    const std::function<bool(const appended_event&)>& pass) {
  std::vector<seen_event> out;
  for (std::size_t i = 0; i < log.size(); ++i)
    if (pass(log[i]))
      out.push_back(seen_event{first + i, log[i].stream, log[i].event.type, log[i].event.payload,
                               log[i].event.tags, false});
  return out;
}

bool has_tag(const appended_event& e, const std::string& tag) {
  return std::find(e.event.tags.begin(), e.event.tags.end(), tag) != e.event.tags.end();
}
bool in_category(const appended_event& e, const std::string& c) {
  return e.stream == c || e.stream.starts_with(c + "-");
}

/// How many reads of the log the engine asked for.
std::size_t reads(const projection_harness& h) {
  return static_cast<std::size_t>(std::count_if(
      h.timers().begin(), h.timers().end(),
      [](const varve::testkit::timer_call& t) { return t.timer == engine_timer::read; }));
}

global_position stored_cursor(projection_harness& h) {
  auto txn = h.store().store()->read();
  BOOST_REQUIRE(txn.ok());
  auto c = txn->cursor("p");
  BOOST_REQUIRE(c.ok());
  return c->value_or(0);
}

struct filter_case {
  std::string what;
  projection_filter filter;
  std::function<bool(const appended_event&)> pass;
};

std::vector<filter_case> filter_cases() {
  std::vector<filter_case> out;
  out.push_back({"one type", {.event_types = {"paid"}}, [](const appended_event& e) {
                   return e.event.type == "paid";
                 }});
  out.push_back({"two types", {.event_types = {"paid", "closed"}}, [](const appended_event& e) {
                   return e.event.type != "placed";
                 }});
  out.push_back({"one tag", {.tags = {"region:eu"}}, [](const appended_event& e) {
                   return has_tag(e, "region:eu");
                 }});
  out.push_back(
      {"two tags (both)", {.tags = {"region:eu", "customer:0"}}, [](const appended_event& e) {
         return has_tag(e, "region:eu") && has_tag(e, "customer:0");
       }});
  out.push_back(
      {"type and tag", {.event_types = {"closed"}, .tags = {"vip"}}, [](const appended_event& e) {
         return e.event.type == "closed" && has_tag(e, "vip");
       }});
  out.push_back({"a category (a stream is named like it)",
                 {.categories = {"account"}},
                 [](const appended_event& e) { return in_category(e, "account"); }});
  out.push_back({"a category without a stream of its name",
                 {.categories = {"order"}},
                 [](const appended_event& e) { return in_category(e, "order"); }});
  out.push_back({"a category and a type",
                 {.categories = {"order"}, .event_types = {"placed"}},
                 [](const appended_event& e) {
                   return in_category(e, "order") && e.event.type == "placed";
                 }});
  out.push_back({"a category with '-'", {.categories = {"account-2"}}, [](const appended_event& e) {
                   return in_category(e, "account-2");
                 }});
  out.push_back({"a prefix and a tag",
                 {.stream_prefixes = {"mi"}, .tags = {"region:eu"}},
                 [](const appended_event& e) {
                   return e.stream.starts_with("mi") && has_tag(e, "region:eu");
                 }});
  out.push_back(
      {"a tag nobody carries", {.tags = {"nobody"}}, [](const appended_event&) { return false; }});
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_filtered_projection_is_handed_exactly_the_events_its_filter_passes) {
  const auto first = mixed_log(1200);
  const auto more = mixed_log(300);
  for (const auto& c : filter_cases()) {
    for (bool per_batch : {false, true}) {
      BOOST_TEST_CONTEXT(c.what << (per_batch ? ", batch handler" : ", event handler")) {
        auto seen = std::make_shared<std::vector<seen_event>>();
        auto spec = recording(c.filter, seen, per_batch);
        spec.batch_events = 17;  // many reads, some ending at their limit
        projection_harness h(spec);
        append_all(h, first);
        BOOST_TEST(h.run());
        BOOST_TEST(*seen == expected_of(first, 1, c.pass), boost::test_tools::per_element());
        // Live: new commits reach it, the others move its cursor only.
        append_all(h, more);
        BOOST_TEST(h.run());
        auto all = expected_of(first, 1, c.pass);
        auto later = expected_of(more, first.size() + 1, c.pass);
        all.insert(all.end(), later.begin(), later.end());
        BOOST_TEST(*seen == all, boost::test_tools::per_element());
        BOOST_TEST(h.view("count").value_or("0") == std::to_string(all.size()));
        BOOST_TEST(stored_cursor(h) == first.size() + more.size());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_projection_of_a_type_not_in_the_log_reaches_the_head_in_one_read) {
  for (delivery mode : {delivery::exactly_once, delivery::at_least_once}) {
    BOOST_TEST_CONTEXT(to_string(mode)) {
      auto seen = std::make_shared<std::vector<seen_event>>();
      auto spec = recording({.event_types = {"rare"}}, seen, false, mode);
      spec.batch_events = 10;
      projection_harness h(spec);
      std::vector<new_event> common(500, new_event{.type = "common", .payload = "{}"});
      h.given_events("s-1", common);
      BOOST_TEST(h.run());
      BOOST_TEST(seen->empty());
      BOOST_TEST(h.status().position == 500u);
      BOOST_TEST(stored_cursor(h) == 500u);
      // 500 events, 10 per read: read one by one, 50 reads or more; through
      // the type index, one read finds nothing up to the head.
      BOOST_TEST(reads(h) <= 2u);
      // One match among more of the rest: handled, and read from the index.
      const std::size_t before = reads(h);
      h.given_events("s-1", common);
      h.given_events("s-2", {new_event{.type = "rare", .payload = "{\"r\":1}"}});
      h.given_events("s-1", common);
      BOOST_TEST(h.run());
      BOOST_REQUIRE(seen->size() == 1u);
      BOOST_TEST(seen->front().position == 1001u);
      BOOST_TEST(stored_cursor(h) == 1501u);
      BOOST_TEST(reads(h) - before <= 6u);  // per head it was told, not per 10 events
    }
  }
}

BOOST_AUTO_TEST_CASE(a_filtered_projection_goes_on_after_a_restart_without_handling_twice) {
  for (delivery mode : {delivery::exactly_once, delivery::at_least_once}) {
    BOOST_TEST_CONTEXT(to_string(mode)) {
      auto seen = std::make_shared<std::vector<seen_event>>();
      auto spec = recording({.tags = {"vip"}}, seen, false, mode);
      spec.batch_events = 5;
      projection_harness h(spec);
      const auto log = mixed_log(900);  // a "vip" tag every 45 events
      append_all(h, log);
      BOOST_TEST(h.run());
      const std::size_t handled = seen->size();
      BOOST_TEST(handled == 20u);
      h.restart();
      BOOST_TEST(stored_cursor(h) == 900u);
      const auto more = mixed_log(450);
      append_all(h, more);
      BOOST_TEST(h.run());
      auto all = expected_of(log, 1, [](const appended_event& e) { return has_tag(e, "vip"); });
      auto later =
          expected_of(more, 901, [](const appended_event& e) { return has_tag(e, "vip"); });
      all.insert(all.end(), later.begin(), later.end());
      BOOST_TEST(*seen == all, boost::test_tools::per_element());
      // A view's reads see what is committed (at-least-once: checkpointed)
      // plus the batch's own writes: the count holds exactly-once only.
      if (mode == delivery::exactly_once)
        BOOST_TEST(h.view("count").value_or("0") == std::to_string(all.size()));
      BOOST_TEST(stored_cursor(h) == 1350u);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_filtered_projection_reads_the_payloads_of_an_encrypted_store) {
  auto seen = std::make_shared<std::vector<seen_event>>();
  auto spec = recording({.categories = {"order"}, .tags = {"region:eu"}}, seen, true);
  spec.batch_events = 13;
  projection_harness h(spec, {.encrypted = true});
  const auto log = mixed_log(800);
  append_all(h, log);
  BOOST_TEST(h.run());
  auto want = expected_of(log, 1, [](const appended_event& e) {
    return in_category(e, "order") && has_tag(e, "region:eu");
  });
  BOOST_TEST(!want.empty());
  BOOST_TEST(*seen == want, boost::test_tools::per_element());  // payloads decrypted, every one
  BOOST_TEST(stored_cursor(h) == 800u);
}

BOOST_AUTO_TEST_CASE(events_of_a_shredded_stream_reach_a_filtered_projection_as_envelopes) {
  auto seen = std::make_shared<std::vector<seen_event>>();
  auto spec = recording({.event_types = {"registered"}, .tags = {"user:1"}}, seen);
  projection_harness h(spec, {.encrypted = true});
  h.given_events(
      "user-1",
      {new_event{.type = "registered", .payload = "{\"name\":\"ada\"}", .tags = {"user:1"}}});
  h.given_events(
      "user-2",
      {new_event{.type = "registered", .payload = "{\"name\":\"bob\"}", .tags = {"user:2"}}});
  h.given_events("user-1", {new_event{.type = "renamed", .payload = "{}", .tags = {"user:1"}}});
  h.given_events("user-1",
                 {new_event{.type = "registered", .payload = "{\"again\":1}", .tags = {"user:1"}}});
  BOOST_REQUIRE(h.store().store()->shred("user-1").ok());
  BOOST_TEST(h.run());
  BOOST_REQUIRE(seen->size() == 2u);
  for (const auto& e : *seen) {
    BOOST_TEST(e.shredded);
    BOOST_TEST(e.stream == "user-1");
    BOOST_TEST(e.type == "registered");
    BOOST_TEST(e.payload.empty());
    BOOST_TEST(e.tags == std::vector<std::string>{"user:1"}, boost::test_tools::per_element());
  }
  BOOST_TEST((*seen)[0].position == 1u);
  BOOST_TEST((*seen)[1].position == 4u);
  BOOST_TEST(stored_cursor(h) == 4u);
}

BOOST_AUTO_TEST_CASE(a_failing_event_of_a_filtered_projection_is_retried_then_dead_lettered) {
  auto seen = std::make_shared<std::vector<seen_event>>();
  auto spec = recording({.event_types = {"paid"}}, seen);
  auto inner = spec.handle;
  auto attempts = std::make_shared<int>(0);
  global_position failing = 0;
  spec.handle = [inner, attempts, &failing](const delivered_event& d, view_batch& v) {
    if (d.event.position == failing) {
      ++*attempts;
      return result<void>(error{errc::unavailable, "always"});
    }
    return inner(d, v);
  };
  spec.on_failure = failure_policy::skip;
  spec.max_retries = 2;
  spec.retry_backoff = std::chrono::milliseconds(1);
  spec.batch_events = 8;
  projection_harness h(spec);
  const auto log = mixed_log(400);
  // The tenth "paid" event fails every time.
  std::size_t paid = 0;
  for (std::size_t i = 0; i < log.size() && failing == 0; ++i)
    if (log[i].event.type == "paid" && ++paid == 10) failing = i + 1;
  BOOST_REQUIRE(failing != 0);
  append_all(h, log);
  BOOST_TEST(h.run());
  BOOST_TEST(*attempts == 3);  // the first attempt and two retries
  auto want = expected_of(log, 1, [](const appended_event& e) { return e.event.type == "paid"; });
  want.erase(std::remove_if(want.begin(), want.end(),
                            [&](const seen_event& e) { return e.position == failing; }),
             want.end());
  BOOST_TEST(*seen == want, boost::test_tools::per_element());
  const auto letters = h.dead_letters();
  BOOST_REQUIRE(letters.size() == 1u);
  BOOST_TEST(letters.front().first == failing);
  BOOST_TEST(letters.front().second.type == "paid");
  BOOST_TEST(stored_cursor(h) == 400u);
  BOOST_TEST(h.status().dead_letters == 1u);
}

BOOST_AUTO_TEST_CASE(a_filter_with_an_invalid_tag_fails_the_projection_with_the_reason) {
  auto seen = std::make_shared<std::vector<seen_event>>();
  projection_harness h(recording({.tags = {std::string(300, 't')}}, seen));
  h.given_events("s-1", {new_event{.type = "x", .payload = "{}"}});
  auto v = h.run();
  BOOST_TEST(!v);
  BOOST_TEST(h.status().state == "failed");
  BOOST_TEST(h.status().error.find("invalid_argument") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_unindexed_filter_is_handed_the_same_events_after_reading_them_all) {
  const auto log = mixed_log(600);
  auto pass = [](const appended_event& e) {
    return e.event.type == "paid" && has_tag(e, "region:eu");
  };
  std::vector<std::vector<seen_event>> got;
  std::vector<std::size_t> read_counts;
  for (bool indexed : {true, false}) {
    auto seen = std::make_shared<std::vector<seen_event>>();
    auto spec =
        recording({.event_types = {"paid"}, .tags = {"region:eu"}, .indexed = indexed}, seen);
    spec.batch_events = 50;
    projection_harness h(spec);
    append_all(h, log);
    BOOST_TEST(h.run());
    got.push_back(*seen);
    read_counts.push_back(reads(h));
  }
  BOOST_TEST(got[0] == expected_of(log, 1, pass), boost::test_tools::per_element());
  BOOST_TEST(got[1] == got[0], boost::test_tools::per_element());
  BOOST_TEST(read_counts[1] >= 12u);  // 600 events, 50 per read
  BOOST_TEST(read_counts[0] < read_counts[1]);
}
