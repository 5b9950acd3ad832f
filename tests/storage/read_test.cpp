// Reads: streams and the log in both directions, point lookups across the
// chunked stream index, not-found answers, counts, view lifetimes, stats.
#define BOOST_TEST_MODULE read
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "temp_dir.hpp"

using namespace varve;
using varve_test::make_event;
using varve_test::make_events;
using varve_test::store_fixture;

namespace {

std::vector<stream_version> versions_of(const std::vector<event_view>& events) {
  std::vector<stream_version> out;
  for (const auto& e : events)
    out.push_back(e.version);
  return out;
}

std::vector<global_position> positions_of(const std::vector<event_view>& events) {
  std::vector<global_position> out;
  for (const auto& e : events)
    out.push_back(e.position);
  return out;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> out;
  if (first <= last) {
    for (auto v = first; v <= last; ++v)
      out.push_back(v);
  } else {
    for (auto v = first; v >= last; --v)
      out.push_back(v);
  }
  return out;
}

std::string payload_for(std::string_view stream, stream_version v) {
  return std::string(stream) + ":" + std::to_string(v);
}

}  // namespace

struct read_fixture : store_fixture {
  /// Stream name -> positions of its versions (index 0 = version 1).
  std::map<std::string, std::vector<global_position>> positions;

  /// Appends `n` events to `stream` with an exact expectation, remembering
  /// where they landed; payloads are "<stream>:<version>".
  void put(const std::string& stream, std::size_t n) {
    auto& mine = positions[stream];
    std::vector<new_event> events;
    for (std::size_t i = 0; i < n; ++i) {
      events.push_back(make_event("t", payload_for(stream, mine.size() + i + 1)));
    }
    const auto r = append(stream, expected_version::exact(mine.size()), events);
    BOOST_REQUIRE_EQUAL(r.last_position - r.first_position + 1, n);
    for (auto p = r.first_position; p <= r.last_position; ++p)
      mine.push_back(p);
  }

  std::vector<event_view> read_stream(const read_transaction& tx, std::string_view name,
                                      stream_version from, direction dir, std::size_t limit) {
    auto r = tx.read_stream(name, from, dir, limit);
    BOOST_REQUIRE_MESSAGE(
        r.ok(), "read_stream " << name << " from " << from << ": " << varve_test::describe(r));
    return std::move(r).value();
  }

  std::vector<event_view> read_log(const read_transaction& tx, global_position from, direction dir,
                                   std::size_t limit) {
    auto r = tx.read_log(from, dir, limit);
    BOOST_REQUIRE_MESSAGE(r.ok(), "read_log from " << from << ": " << varve_test::describe(r));
    return std::move(r).value();
  }
};

BOOST_FIXTURE_TEST_SUITE(reads, read_fixture)

BOOST_AUTO_TEST_CASE(stream_reads_forward_and_backward_from_a_version_with_a_limit) {
  for (int i = 0; i < 10; ++i) {
    put("s", 1);
    put("other", 1);
  }
  const auto& pos = positions["s"];
  auto tx = read();

  auto fwd = read_stream(tx, "s", 3, direction::forward, 4);
  BOOST_TEST(versions_of(fwd) == range(3, 6), boost::test_tools::per_element());
  BOOST_TEST(positions_of(fwd) == std::vector<global_position>(pos.begin() + 2, pos.begin() + 6),
             boost::test_tools::per_element());
  for (const auto& e : fwd)
    BOOST_TEST(e.payload == payload_for("s", e.version));

  auto back = read_stream(tx, "s", 7, direction::backward, 3);
  BOOST_TEST(versions_of(back) == range(7, 5), boost::test_tools::per_element());
  auto newest = read_stream(tx, "s", from_end, direction::backward, 2);
  BOOST_TEST(versions_of(newest) == range(10, 9), boost::test_tools::per_element());
  auto from_zero = read_stream(tx, "s", 0, direction::forward, 2);
  BOOST_TEST(versions_of(from_zero) == range(1, 2), boost::test_tools::per_element());
  auto from_one = read_stream(tx, "s", 1, direction::forward, 100);
  BOOST_TEST(versions_of(from_one) == range(1, 10), boost::test_tools::per_element());
  auto tail = read_stream(tx, "s", 9, direction::forward, 10);
  BOOST_TEST(versions_of(tail) == range(9, 10), boost::test_tools::per_element());
  auto past = read_stream(tx, "s", 11, direction::forward, 10);
  BOOST_TEST(past.empty());
  auto down_to_one = read_stream(tx, "s", 2, direction::backward, 10);
  BOOST_TEST(versions_of(down_to_one) == range(2, 1), boost::test_tools::per_element());
  auto back_past_head = read_stream(tx, "s", 50, direction::backward, 2);
  BOOST_TEST(versions_of(back_past_head) == range(10, 9), boost::test_tools::per_element());
  auto none = read_stream(tx, "s", 1, direction::forward, 0);
  BOOST_TEST(none.empty());

  // The owned-copy convenience agrees.
  auto owned = store->read_stream("s", 4, direction::backward, 2);
  VARVE_REQUIRE_OK(owned);
  BOOST_REQUIRE_EQUAL(owned->size(), 2u);
  BOOST_TEST((*owned)[0].version == 4u);
  BOOST_TEST((*owned)[1].version == 3u);
  BOOST_TEST((*owned)[0].position == pos[3]);
  BOOST_TEST((*owned)[0].stream == "s");
}

BOOST_AUTO_TEST_CASE(log_reads_forward_and_backward_from_a_position_with_a_limit) {
  for (int i = 0; i < 4; ++i) {
    put("a", 2);
    put("b", 1);
  }
  auto tx = read();
  BOOST_REQUIRE_EQUAL(tx.head(), 12u);

  BOOST_TEST(positions_of(read_log(tx, 5, direction::forward, 3)) == range(5, 7),
             boost::test_tools::per_element());
  BOOST_TEST(positions_of(read_log(tx, from_end, direction::backward, 3)) == range(12, 10),
             boost::test_tools::per_element());
  BOOST_TEST(positions_of(read_log(tx, 4, direction::backward, 10)) == range(4, 1),
             boost::test_tools::per_element());
  BOOST_TEST(positions_of(read_log(tx, 0, direction::forward, 2)) == range(1, 2),
             boost::test_tools::per_element());
  BOOST_TEST(positions_of(read_log(tx, 1, direction::forward, 1000)) == range(1, 12),
             boost::test_tools::per_element());
  BOOST_TEST(positions_of(read_log(tx, 11, direction::forward, 5)) == range(11, 12),
             boost::test_tools::per_element());
  BOOST_TEST(read_log(tx, 13, direction::forward, 5).empty());
  BOOST_TEST(read_log(tx, 1, direction::forward, 0).empty());
  BOOST_TEST(positions_of(read_log(tx, 40, direction::backward, 2)) == range(12, 11),
             boost::test_tools::per_element());

  // Each view names its stream and version.
  const auto all = read_log(tx, 1, direction::forward, 100);
  for (const auto& e : all) {
    auto name = tx.stream_name(e.stream_id);
    VARVE_REQUIRE_OK(name);
    BOOST_TEST(e.payload == payload_for(*name, e.version));
    BOOST_TEST(positions[std::string(*name)][e.version - 1] == e.position);
  }

  auto owned = store->read_log(from_end, direction::backward, 2);
  VARVE_REQUIRE_OK(owned);
  BOOST_REQUIRE_EQUAL(owned->size(), 2u);
  BOOST_TEST((*owned)[0].position == 12u);
  BOOST_TEST((*owned)[1].position == 11u);
}

BOOST_AUTO_TEST_CASE(log_reads_into_a_reused_vector_replace_its_contents) {
  put("a", 5);
  put("b", 5);
  auto tx = read();
  std::vector<event_view> batch;
  auto n = tx.read_log(1, direction::forward, 4, batch);
  VARVE_REQUIRE_OK(n);
  BOOST_TEST(*n == 4u);
  BOOST_TEST(positions_of(batch) == range(1, 4), boost::test_tools::per_element());
  n = tx.read_log(5, direction::forward, 100, batch);
  VARVE_REQUIRE_OK(n);
  BOOST_TEST(*n == 6u);
  BOOST_TEST(positions_of(batch) == range(5, 10), boost::test_tools::per_element());
  BOOST_TEST(positions_of(batch) == positions_of(read_log(tx, 5, direction::forward, 100)),
             boost::test_tools::per_element());
  n = tx.read_log(11, direction::forward, 100, batch);
  VARVE_REQUIRE_OK(n);
  BOOST_TEST(*n == 0u);
  BOOST_TEST(batch.empty());
}

BOOST_AUTO_TEST_CASE(scans_stop_when_the_visitor_returns_false) {
  put("s", 10);
  auto tx = read();
  std::vector<global_position> seen;
  auto visit = [&](const event_view& e) {
    seen.push_back(e.position);
    return seen.size() < 3;
  };
  auto n = tx.scan_log(1, direction::forward, 100, visit);
  VARVE_REQUIRE_OK(n);
  BOOST_TEST(seen == range(1, 3), boost::test_tools::per_element());
  BOOST_TEST(*n == 3u);

  seen.clear();
  auto m = tx.scan_stream("s", from_end, direction::backward, 100, visit);
  VARVE_REQUIRE_OK(m);
  BOOST_TEST(seen == range(10, 8), boost::test_tools::per_element());
  BOOST_TEST(*m == 3u);
}

BOOST_AUTO_TEST_CASE(every_version_reads_back_across_stream_index_chunk_boundaries) {
  // Three streams to version 200 each (3 full chunks of 64 + an open one),
  // interleaved round-robin, mostly single appends and some multi-event ones.
  const std::vector<std::string> names = {"red", "green", "blue"};
  std::size_t step = 0;
  for (bool more = true; more;) {
    more = false;
    for (const auto& name : names) {
      const std::size_t have = positions[name].size();
      if (have >= 200) continue;
      std::size_t n = (step % 7 == 3) ? 5 : (step % 11 == 5) ? 70 : 1;
      n = std::min(n, 200 - have);
      put(name, n);
      ++step;
      more = true;
    }
  }

  auto verify = [&](const char* when) {
    BOOST_TEST_CONTEXT(when) {
      auto tx = read();
      BOOST_TEST(tx.head() == 600u);
      for (const auto& name : names) {
        BOOST_TEST_CONTEXT("stream " << name) {
          const auto& pos = positions[name];
          BOOST_REQUIRE_EQUAL(pos.size(), 200u);
          auto info = tx.stream(name);
          VARVE_REQUIRE_OK(info);
          BOOST_REQUIRE(info->has_value());
          BOOST_TEST((*info)->version == 200u);
          BOOST_TEST((*info)->last_position == pos.back());
          const auto sid = (*info)->id;

          std::size_t bad_points = 0;
          for (stream_version v = 1; v <= 200; ++v) {
            const global_position p = pos[v - 1];
            auto fwd = tx.read_stream(name, v, direction::forward, 1);
            auto bwd = tx.read_stream(name, v, direction::backward, 1);
            auto at = tx.event_at(p);
            const bool ok = fwd.ok() && fwd->size() == 1 && (*fwd)[0].version == v &&
                            (*fwd)[0].position == p && bwd.ok() && bwd->size() == 1 &&
                            (*bwd)[0].version == v && (*bwd)[0].position == p && at.ok() &&
                            at->stream_id == sid && at->version == v &&
                            at->payload == payload_for(name, v) &&
                            at->previous_position == (v == 1 ? 0 : pos[v - 2]);
            if (!ok && ++bad_points <= 5) {
              BOOST_ERROR("point lookup of version "
                          << v << " at position " << p << " disagrees (forward "
                          << varve_test::describe(fwd) << ", event_at " << varve_test::describe(at)
                          << ")");
            }
          }
          BOOST_TEST(bad_points == 0u);

          const auto all = read_stream(tx, name, 1, direction::forward, 1000);
          BOOST_TEST(versions_of(all) == range(1, 200), boost::test_tools::per_element());
          BOOST_TEST(positions_of(all) == pos, boost::test_tools::per_element());
          const auto back = read_stream(tx, name, from_end, direction::backward, 1000);
          BOOST_TEST(versions_of(back) == range(200, 1), boost::test_tools::per_element());
          std::vector<global_position> reversed(pos.rbegin(), pos.rend());
          BOOST_TEST(positions_of(back) == reversed, boost::test_tools::per_element());

          // Ranges that straddle chunk boundaries (64, 128, 192).
          BOOST_TEST(
              versions_of(read_stream(tx, name, 60, direction::forward, 10)) == range(60, 69),
              boost::test_tools::per_element());
          BOOST_TEST(
              versions_of(read_stream(tx, name, 130, direction::backward, 5)) == range(130, 126),
              boost::test_tools::per_element());
          BOOST_TEST(
              versions_of(read_stream(tx, name, 190, direction::forward, 20)) == range(190, 200),
              boost::test_tools::per_element());
          BOOST_TEST(
              versions_of(read_stream(tx, name, 193, direction::backward, 3)) == range(193, 191),
              boost::test_tools::per_element());
        }
      }
    }
  };
  verify("written by this handle");
  reopen();
  verify("after reopen");

  // Appending after reopen keeps the index right (the open chunk is rebuilt).
  for (int i = 0; i < 70; ++i)
    put("green", 1);
  auto tx = read();
  const auto& pos = positions["green"];
  BOOST_REQUIRE_EQUAL(pos.size(), 270u);
  const auto all = read_stream(tx, "green", 1, direction::forward, 1000);
  BOOST_TEST(positions_of(all) == pos, boost::test_tools::per_element());
  for (stream_version v : {1u, 64u, 65u, 128u, 192u, 193u, 200u, 201u, 256u, 257u, 270u}) {
    const auto one = read_stream(tx, "green", v, direction::forward, 1);
    BOOST_REQUIRE_EQUAL(one.size(), 1u);
    BOOST_TEST(one[0].position == pos[v - 1], "version " << v);
  }
}

BOOST_AUTO_TEST_CASE(reading_a_missing_stream_gives_not_found) {
  put("present", 2);
  auto tx = read();
  auto views = tx.read_stream("absent", 1, direction::forward, 10);
  VARVE_CHECK_ERRC(views, errc::not_found);
  auto visit = [](const event_view&) { return true; };
  auto scanned = tx.scan_stream("absent", from_end, direction::backward, 10, visit);
  VARVE_CHECK_ERRC(scanned, errc::not_found);
  auto owned = store->read_stream("absent");
  VARVE_CHECK_ERRC(owned, errc::not_found);
  auto prefix = store->read_stream("presen");
  VARVE_CHECK_ERRC(prefix, errc::not_found);

  // Asking about the stream is not an error: absence is an answer.
  auto info = tx.stream("absent");
  VARVE_REQUIRE_OK(info);
  BOOST_TEST(!info->has_value());
  auto name = tx.stream_name(987654);
  VARVE_CHECK_ERRC(name, errc::not_found);
}

BOOST_AUTO_TEST_CASE(event_at_zero_and_past_the_head_give_not_found) {
  {
    auto tx = read();
    VARVE_CHECK_ERRC(tx.event_at(1), errc::not_found);
    VARVE_CHECK_ERRC(tx.event_at(0), errc::not_found);
  }
  put("s", 3);
  auto tx = read();
  VARVE_CHECK_ERRC(tx.event_at(0), errc::not_found);
  VARVE_CHECK_ERRC(tx.event_at(4), errc::not_found);
  VARVE_CHECK_ERRC(tx.event_at(from_end), errc::not_found);
  VARVE_CHECK_OK(tx.event_at(3));
}

BOOST_AUTO_TEST_CASE(empty_store_reads_as_empty) {
  auto tx = read();
  BOOST_TEST(tx.head() == 0u);
  BOOST_TEST(tx.stream_count() == 0u);
  BOOST_TEST(read_log(tx, 1, direction::forward, 10).empty());
  BOOST_TEST(read_log(tx, from_end, direction::backward, 10).empty());
  auto owned = store->read_log();
  VARVE_REQUIRE_OK(owned);
  BOOST_TEST(owned->empty());
}

BOOST_AUTO_TEST_CASE(counts_come_without_scanning) {
  put("first", 3);
  put("second", 1);
  put("first", 2);
  put("third", 4);
  auto tx = read();
  BOOST_TEST(tx.head() == 10u);
  BOOST_TEST(tx.stream_count() == 3u);
  auto first = tx.stream("first");
  auto second = tx.stream("second");
  auto third = tx.stream("third");
  VARVE_REQUIRE_OK(first);
  VARVE_REQUIRE_OK(second);
  VARVE_REQUIRE_OK(third);
  BOOST_REQUIRE(first->has_value() && second->has_value() && third->has_value());
  BOOST_TEST((*first)->version == 5u);
  BOOST_TEST((*first)->last_position == 6u);
  BOOST_TEST((*second)->version == 1u);
  BOOST_TEST((*second)->last_position == 4u);
  BOOST_TEST((*third)->version == 4u);
  BOOST_TEST((*third)->last_position == 10u);
  // Ids are allocated in creation order.
  BOOST_TEST((*first)->id < (*second)->id);
  BOOST_TEST((*second)->id < (*third)->id);
  for (const auto* info : {&*first, &*second, &*third}) {
    BOOST_TEST((*info)->state == stream_state::live);
  }
  auto name = tx.stream_name((*second)->id);
  VARVE_REQUIRE_OK(name);
  BOOST_TEST(*name == "second");
}

BOOST_AUTO_TEST_CASE(views_stay_valid_while_the_read_transaction_lives) {
  put("s", 50);
  auto tx = read();
  auto views = read_log(tx, 1, direction::forward, 50);
  BOOST_REQUIRE_EQUAL(views.size(), 50u);
  auto one = tx.event_at(25);
  VARVE_REQUIRE_OK(one);

  // Many writes after the views were taken, large enough to allocate and
  // reuse pages; the transaction keeps its snapshot.
  for (int i = 0; i < 200; ++i) {
    append("churn-" + std::to_string(i % 5), expected_version::any(),
           {make_event("big", std::string(8000, static_cast<char>('a' + i % 26)))});
  }
  BOOST_TEST(tx.head() == 50u);
  BOOST_TEST(head() == 250u);
  for (std::size_t i = 0; i < views.size(); ++i) {
    BOOST_TEST(views[i].position == i + 1);
    BOOST_TEST(views[i].payload == payload_for("s", i + 1));
    BOOST_TEST(views[i].type == "t");
  }
  BOOST_TEST(one->payload == payload_for("s", 25));
  BOOST_TEST(tx.event_at(51).ok() == false, "the snapshot does not see later events");

  const auto copy = recorded_event::from(views[9], "s");
  BOOST_TEST(copy.position == 10u);
  BOOST_TEST(copy.stream == "s");
  BOOST_TEST(copy.payload == payload_for("s", 10));
}

BOOST_AUTO_TEST_CASE(owned_copies_outlive_their_read_transaction) {
  put("keep", 5);
  auto stream_copy = store->read_stream("keep");
  auto log_copy = store->read_log();
  VARVE_REQUIRE_OK(stream_copy);
  VARVE_REQUIRE_OK(log_copy);
  for (int i = 0; i < 200; ++i) {
    append("churn", expected_version::any(), {make_event("big", std::string(8000, 'z'))});
  }
  reopen();
  BOOST_REQUIRE_EQUAL(stream_copy->size(), 5u);
  BOOST_REQUIRE_EQUAL(log_copy->size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    BOOST_TEST((*stream_copy)[i].stream == "keep");
    BOOST_TEST((*stream_copy)[i].payload == payload_for("keep", i + 1));
    BOOST_TEST((*stream_copy)[i].type == "t");
    BOOST_TEST((*log_copy)[i].stream == "keep");
    BOOST_TEST((*log_copy)[i].version == i + 1);
  }
}

BOOST_AUTO_TEST_CASE(scan_streams_lists_every_stream_in_name_order) {
  put("charlie", 1);
  put("alpha", 2);
  put("bravo", 3);
  put("alpha-2", 4);
  auto tx = read();
  std::vector<std::pair<std::string, stream_version>> seen;
  auto visit = [&](std::string_view name, const stream_info& info) {
    seen.emplace_back(std::string(name), info.version);
    return true;
  };
  auto n = tx.scan_streams(visit);
  VARVE_REQUIRE_OK(n);
  BOOST_TEST(*n == 4u);
  BOOST_REQUIRE_EQUAL(seen.size(), 4u);
  const std::vector<std::string> order = {"alpha", "alpha-2", "bravo", "charlie"};
  const std::vector<stream_version> versions = {2, 4, 3, 1};
  for (std::size_t i = 0; i < 4; ++i) {
    BOOST_TEST(seen[i].first == order[i]);
    BOOST_TEST(seen[i].second == versions[i]);
  }

  std::size_t calls = 0;
  auto stop = [&](std::string_view, const stream_info&) { return ++calls < 2; };
  auto m = tx.scan_streams(stop);
  VARVE_REQUIRE_OK(m);
  BOOST_TEST(calls == 2u);
  BOOST_TEST(*m == 2u);
}

BOOST_AUTO_TEST_CASE(store_stats_report_head_streams_and_sizes) {
  auto empty = store->stats();
  VARVE_REQUIRE_OK(empty);
  BOOST_TEST(empty->head == 0u);
  BOOST_TEST(empty->streams == 0u);
  BOOST_TEST(empty->map_size >= opts.map_size);
  BOOST_TEST(empty->map_size <= opts.max_map_size);
  const auto commits0 = empty->commits;
  const auto events0 = empty->events_written;
  BOOST_TEST(events0 == 0u);

  put("a", 3);
  put("b", 2);
  put("a", 1);
  auto st = store->stats();
  VARVE_REQUIRE_OK(st);
  BOOST_TEST(st->head == 6u);
  BOOST_TEST(st->streams == 2u);
  BOOST_TEST(st->commits - commits0 == 3u);
  BOOST_TEST(st->events_written - events0 == 6u);
  BOOST_TEST(st->used_bytes > 0u);
  BOOST_TEST(st->used_bytes <= st->map_size);

  reopen();
  auto again = store->stats();
  VARVE_REQUIRE_OK(again);
  BOOST_TEST(again->head == 6u);
  BOOST_TEST(again->streams == 2u);
  BOOST_TEST(again->events_written == 0u, "counts are per handle");
}

BOOST_AUTO_TEST_SUITE_END()
