// Map growth: the map grows by itself up to max_map_size; past it, appends
// fail with storage_full and leave the store as it was.
#define BOOST_TEST_MODULE growth
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <map>
#include <string>
#include <vector>

#include "temp_dir.hpp"

using namespace varve;
using varve_test::make_event;
using varve_test::open_store;
using varve_test::temp_dir;
using varve_test::test_options;

namespace {

constexpr std::uint64_t mib = std::uint64_t{1} << 20;
constexpr std::size_t payload_bytes = 1024;

/// A 1 KiB payload that tells which stream and version it belongs to.
std::string payload_for(std::size_t stream, stream_version version) {
  // Appended, not `"s" + std::to_string(...)`: GCC 12 at -O2 and above takes
  // that for an overlapping copy (a false -Wrestrict).
  std::string p = "s";
  p.append(std::to_string(stream)).append("v").append(std::to_string(version)).append("|");
  p.resize(payload_bytes, static_cast<char>((stream * 131 + version * 7) & 0xff));
  return p;
}

std::string stream_name(std::size_t stream) {
  return "grow-" + std::to_string(stream);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(growth)

BOOST_AUTO_TEST_CASE(map_grows_from_one_mebibyte_to_hold_two_hundred_megabytes) {
  temp_dir dir;
  auto o = test_options(dir / "store");
  o.map_size = 1 * mib;
  o.max_map_size = 1024 * mib;
  auto store = open_store(o);

  constexpr std::size_t streams = 100;
  constexpr std::size_t rounds = 200;
  constexpr std::size_t per_round = 1000;
  std::vector<stream_version> versions(streams, 0);

  for (std::size_t round = 0; round < rounds; ++round) {
    if (round % 2 == 0) {
      // One multi-event append of 1000 events to one stream.
      const std::size_t s = (round / 2) % streams;
      std::vector<new_event> events;
      events.reserve(per_round);
      for (std::size_t i = 0; i < per_round; ++i) {
        events.push_back(make_event("blob", payload_for(s, versions[s] + i + 1)));
      }
      auto r = store->append(stream_name(s), expected_version::exact(versions[s]), events);
      BOOST_REQUIRE_MESSAGE(r.ok(), "round " << round << ": " << varve_test::describe(r));
      BOOST_REQUIRE_EQUAL(r->last_position, (round + 1) * per_round);
      versions[s] += per_round;
    } else {
      // One group commit of 10 requests of 100 events to 10 streams.
      std::vector<write_request> batch(10);
      for (std::size_t k = 0; k < batch.size(); ++k) {
        const std::size_t s = (round * 10 + k) % streams;
        append_request req{stream_name(s), expected_version::exact(versions[s]), {}};
        for (std::size_t i = 0; i < per_round / batch.size(); ++i) {
          req.events.push_back(make_event("blob", payload_for(s, versions[s] + i + 1)));
        }
        versions[s] += per_round / batch.size();
        batch[k].appends.push_back(std::move(req));
      }
      auto r = store->write(batch);
      BOOST_REQUIRE_MESSAGE(r.ok(), "round " << round << ": " << varve_test::describe(r));
      for (const auto& outcome : *r) {
        BOOST_REQUIRE_MESSAGE(outcome.ok(),
                              "round " << round << ": " << varve_test::describe(outcome));
      }
      BOOST_REQUIRE_EQUAL(r->back()->back().last_position, (round + 1) * per_round);
    }
  }

  auto st = store->stats();
  VARVE_REQUIRE_OK(st);
  BOOST_TEST_MESSAGE("map_size " << st->map_size << ", used " << st->used_bytes);
  BOOST_TEST(st->head == rounds * per_round);
  BOOST_TEST(st->streams == streams);
  BOOST_TEST(st->map_size > 200 * mib);
  BOOST_TEST(st->map_size <= o.max_map_size);
  BOOST_TEST(st->used_bytes >= rounds * per_round * payload_bytes);

  auto verify = [&](event_store& s, const char* when) {
    BOOST_TEST_CONTEXT(when) {
      auto txr = s.read();
      VARVE_REQUIRE_OK(txr);
      auto& tx = *txr;
      BOOST_TEST(tx.head() == rounds * per_round);
      BOOST_TEST(tx.stream_count() == streams);
      std::map<std::uint64_t, std::size_t> index_of_id;
      for (std::size_t i = 0; i < streams; ++i) {
        auto info = tx.stream(stream_name(i));
        VARVE_REQUIRE_OK(info);
        BOOST_REQUIRE(info->has_value());
        BOOST_TEST((*info)->version == versions[i]);
        index_of_id[(*info)->id] = i;
      }
      // Every payload, in one pass over the log.
      std::size_t seen = 0;
      std::size_t bad = 0;
      global_position expected_position = 1;
      auto check = [&](const event_view& e) {
        ++seen;
        const auto it = index_of_id.find(e.stream_id);
        const bool ok = e.position == expected_position++ && it != index_of_id.end() &&
                        e.payload == payload_for(it->second, e.version);
        if (!ok && ++bad <= 5) BOOST_ERROR("event at " << e.position << " does not read back");
        return true;
      };
      auto n = tx.scan_log(1, direction::forward, SIZE_MAX, check);
      VARVE_REQUIRE_OK(n);
      BOOST_TEST(*n == rounds * per_round);
      BOOST_TEST(seen == rounds * per_round);
      BOOST_TEST(bad == 0u);
      // Samples by point lookup and stream reads.
      for (global_position p : {1ul, 999ul, 1000ul, 1001ul, 100000ul, 199999ul, 200000ul}) {
        auto e = tx.event_at(p);
        VARVE_REQUIRE_OK(e);
        BOOST_TEST(e->payload == payload_for(index_of_id[e->stream_id], e->version));
      }
      for (std::size_t i : {0ul, 37ul, 99ul}) {
        auto tail = tx.read_stream(stream_name(i), from_end, direction::backward, 3);
        VARVE_REQUIRE_OK(tail);
        BOOST_REQUIRE_EQUAL(tail->size(), 3u);
        BOOST_TEST((*tail)[0].version == versions[i]);
        BOOST_TEST((*tail)[0].payload == payload_for(i, versions[i]));
      }
    }
  };
  verify(*store, "after the appends");
  store.reset();
  store = open_store(o);
  verify(*store, "after reopen");
}

BOOST_AUTO_TEST_CASE(append_past_max_map_size_fails_with_storage_full_and_loses_nothing) {
  temp_dir dir;
  auto o = test_options(dir / "store");
  o.map_size = 1 * mib;
  o.max_map_size = 4 * mib;
  auto store = open_store(o);

  constexpr std::size_t per_append = 8;
  auto events_from = [](stream_version first) {
    std::vector<new_event> events;
    for (std::size_t i = 0; i < per_append; ++i) {
      events.push_back(make_event("blob", payload_for(0, first + i)));
    }
    return events;
  };

  stream_version version = 0;
  bool full = false;
  for (int attempt = 0; attempt < 10000 && !full; ++attempt) {
    auto r = store->append("fill", expected_version::exact(version), events_from(version + 1));
    if (r.ok()) {
      BOOST_REQUIRE_EQUAL(r->first_version, version + 1);
      BOOST_REQUIRE_EQUAL(r->first_position, version + 1);
      version = r->last_version;
      continue;
    }
    BOOST_REQUIRE_MESSAGE(r.err().code() == errc::storage_full,
                          "after " << version << " events: " << r.err().to_string());
    BOOST_TEST_MESSAGE("storage_full after " << version << " events: " << r.err().message());
    full = true;
  }
  BOOST_REQUIRE_MESSAGE(full, "4 MiB never filled up");
  BOOST_TEST(version > 1000u, "the map grew past 1 MiB before it was full");

  auto verify = [&](event_store& s, const char* when) {
    BOOST_TEST_CONTEXT(when) {
      auto st = s.stats();
      VARVE_REQUIRE_OK(st);
      BOOST_TEST(st->head == version);
      BOOST_TEST(st->map_size <= o.max_map_size);
      auto events = s.read_stream("fill");
      VARVE_REQUIRE_OK(events);
      BOOST_REQUIRE_EQUAL(events->size(), version);
      std::size_t bad = 0;
      for (std::size_t i = 0; i < events->size(); ++i) {
        const auto& e = (*events)[i];
        if (e.version != i + 1 || e.position != i + 1 || e.payload != payload_for(0, i + 1)) {
          ++bad;
        }
      }
      BOOST_TEST(bad == 0u);

      // Still full: the same append fails again and leaves nothing.
      auto again = s.append("fill", expected_version::exact(version), events_from(version + 1));
      VARVE_CHECK_ERRC(again, errc::storage_full);
      std::vector<write_request> batch(3);
      for (std::size_t k = 0; k < batch.size(); ++k) {
        batch[k].appends.push_back(
            {"other-" + std::to_string(k), expected_version::any(), events_from(1)});
      }
      auto w = s.write(batch);
      VARVE_CHECK_ERRC(w, errc::storage_full);
      auto after = s.stats();
      VARVE_REQUIRE_OK(after);
      BOOST_TEST(after->head == version);
      BOOST_TEST(after->streams == 1u);
      auto tail = s.read_stream("fill", from_end, direction::backward, 1);
      VARVE_REQUIRE_OK(tail);
      BOOST_REQUIRE_EQUAL(tail->size(), 1u);
      BOOST_TEST(tail->front().version == version);
    }
  };
  verify(*store, "right after storage_full");
  store.reset();
  store = open_store(o);
  verify(*store, "after reopen");
}

BOOST_AUTO_TEST_SUITE_END()
