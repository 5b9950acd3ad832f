// Stream and query reads find their records a group at a time by walking
// LMDB's pages in the read transaction's snapshot (storage/src/log_finder):
// whatever the tree's depth, the records' sizes (overflow runs included),
// the order the positions come in or what was committed since the
// transaction began, they read exactly what point reads give.
#define BOOST_TEST_MODULE log_finder
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "log_finder.hpp"
#include "raw_lmdb.hpp"
#include "temp_dir.hpp"

using namespace varve;
using varve_test::make_event;

namespace {

/// What a read must give for one position.
struct expected_event {
  std::string stream;
  stream_version version = 0;
  std::string type;
  std::string payload;
};

/// What the log held at some point: the events by position and each
/// stream's positions.
struct expectations {
  std::vector<expected_event> log;
  std::map<std::string, std::vector<global_position>> streams;
  global_position head() const { return log.size() - 1; }
};

std::size_t payload_size(std::mt19937_64& rng) {
  const auto roll = rng() % 100;
  if (roll < 60) return 1 + rng() % 40;
  if (roll < 95) return 60 + rng() % 200;
  return 3000 + rng() % 6000;  // an overflow run
}

struct finder_fixture {
  varve_test::temp_dir dir;
  varve::options opts;
  std::unique_ptr<event_store> store;
  expectations now{{{}}, {}};  // log index = position
  std::vector<expected_event>& log = now.log;
  std::map<std::string, std::vector<global_position>>& streams = now.streams;
  static constexpr std::size_t stream_count = 40;

  explicit finder_fixture(bool encrypted = false, std::size_t events = 12000)
      : opts(varve_test::test_options(dir / "store")) {
    if (encrypted) {
      std::array<std::uint8_t, 32> key{};
      for (std::size_t i = 0; i < key.size(); ++i)
        key[i] = static_cast<std::uint8_t>(3 * i + 5);
      opts.master_key = key;
    }
    store = varve_test::open_store(opts);
    append_events(events, 20261130);
  }

  /// Appends about `events` events in batches spread over the streams (so
  /// that a stream's positions are scattered over the log's pages), of
  /// two types, one of them rare.
  void append_events(std::size_t events, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const std::size_t target = log.size() + events;
    while (log.size() < target) {
      std::vector<write_request> batch(1 + rng() % 50);
      for (auto& request : batch) {
        const std::string name = "finder-" + std::to_string(rng() % stream_count);
        append_request a;
        a.stream = name;
        a.expected = expected_version::any();
        a.events.push_back(
            make_event(rng() % 50 == 0 ? "rare" : "common", std::string(payload_size(rng), 'p')));
        request.appends.push_back(std::move(a));
      }
      auto out = store->write(batch);
      BOOST_REQUIRE_MESSAGE(out.ok(), "write: " << varve_test::describe(out));
      for (std::size_t i = 0; i < batch.size(); ++i) {
        const auto& r = (*out)[i];
        BOOST_REQUIRE_MESSAGE(r.ok(), "append: " << varve_test::describe(r));
        const append_request& a = batch[i].appends[0];
        BOOST_REQUIRE_EQUAL(r->front().first_position, log.size());
        auto& mine = streams[a.stream];
        mine.push_back(log.size());
        log.push_back({a.stream, mine.size(), a.events[0].type, a.events[0].payload});
      }
    }
  }

  global_position head() const { return log.size() - 1; }

  static bool same(const event_view& e, const expected_event& x) {
    return e.version == x.version && e.type == x.type && e.payload == x.payload;
  }
};

struct encrypted_finder_fixture : finder_fixture {
  encrypted_finder_fixture() : finder_fixture(true, 4000) {}
};

/// Reads every stream whole in both directions and from the middle with
/// limits, and checks each event against the log.
void check_streams(const expectations& f, const read_transaction& tx) {
  for (const auto& [name, positions] : f.streams) {
    BOOST_TEST_CONTEXT("stream " << name) {
      const stream_version n = positions.size();
      for (auto [from, dir, limit] :
           {std::tuple{stream_version{1}, direction::forward, SIZE_MAX},
            std::tuple{from_end, direction::backward, SIZE_MAX},
            std::tuple{n / 2 + 1, direction::forward, std::size_t{70}},
            std::tuple{n / 2 + 1, direction::backward, std::size_t{70}}}) {
        auto r = tx.read_stream(name, from, dir, limit);
        BOOST_REQUIRE_MESSAGE(r.ok(), "read_stream: " << varve_test::describe(r));
        const bool forward = dir == direction::forward;
        const stream_version first = from == from_end ? n : from;
        const std::size_t count = std::min<std::size_t>(limit, forward ? n - first + 1 : first);
        BOOST_REQUIRE_EQUAL(r->size(), count);
        for (std::size_t i = 0; i < count; ++i) {
          const stream_version v = forward ? first + i : first - i;
          const event_view& e = (*r)[i];
          BOOST_TEST(e.position == positions[v - 1]);
          BOOST_TEST(finder_fixture::same(e, f.log[positions[v - 1]]), "version " << v);
        }
      }
    }
  }
}

/// Reads the rare type's events through its index in both directions.
void check_query(const expectations& f, const read_transaction& tx) {
  std::vector<global_position> rare;
  for (global_position p = 1; p <= f.head(); ++p)
    if (f.log[p].type == "rare") rare.push_back(p);
  BOOST_REQUIRE(!rare.empty());
  const query q = query::of_types({"rare"});
  auto forward = tx.read_query(q, 1, direction::forward, SIZE_MAX);
  BOOST_REQUIRE_MESSAGE(forward.ok(), varve_test::describe(forward));
  BOOST_REQUIRE_EQUAL(forward->size(), rare.size());
  for (std::size_t i = 0; i < rare.size(); ++i) {
    BOOST_TEST((*forward)[i].position == rare[i]);
    BOOST_TEST(finder_fixture::same((*forward)[i], f.log[rare[i]]), "position " << rare[i]);
  }
  auto backward = tx.read_query(q, from_end, direction::backward, 7);
  BOOST_REQUIRE_MESSAGE(backward.ok(), varve_test::describe(backward));
  BOOST_REQUIRE_EQUAL(backward->size(), std::min<std::size_t>(7, rare.size()));
  for (std::size_t i = 0; i < backward->size(); ++i)
    BOOST_TEST((*backward)[i].position == rare[rare.size() - 1 - i]);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(log_finder, finder_fixture)

BOOST_AUTO_TEST_CASE(stream_reads_over_a_three_level_tree_give_what_point_reads_give) {
  {
    auto tx = store->read();
    BOOST_REQUIRE(tx.ok());
    BOOST_REQUIRE_EQUAL(tx->head(), head());
    for (global_position p = 1; p <= head(); ++p) {
      auto e = tx->event_at(p);
      BOOST_REQUIRE_MESSAGE(e.ok(), "event_at " << p << ": " << varve_test::describe(e));
      BOOST_REQUIRE(same(*e, log[p]));
    }
    check_streams(now, *tx);
  }
  // The reads above went through a root, a level of branch pages and the
  // leaves.
  store.reset();
  varve_test::raw_env env(opts.directory);
  MDB_txn* raw = nullptr;
  BOOST_REQUIRE_EQUAL(mdb_txn_begin(env.get(), nullptr, MDB_RDONLY, &raw), 0);
  MDB_dbi events = 0;
  BOOST_REQUIRE_EQUAL(mdb_dbi_open(raw, "events", MDB_INTEGERKEY, &events), 0);
  MDB_stat stat{};
  BOOST_REQUIRE_EQUAL(mdb_stat(raw, events, &stat), 0);
  mdb_txn_abort(raw);
  BOOST_TEST(stat.ms_depth >= 3u);
}

BOOST_AUTO_TEST_CASE(every_position_of_the_log_is_found_by_descending_without_asking_lmdb) {
  store.reset();
  varve_test::raw_env env(opts.directory);
  MDB_txn* raw = nullptr;
  BOOST_REQUIRE_EQUAL(mdb_txn_begin(env.get(), nullptr, MDB_RDONLY, &raw), 0);
  MDB_dbi main = 0, events = 0;
  BOOST_REQUIRE_EQUAL(mdb_dbi_open(raw, nullptr, 0, &main), 0);
  BOOST_REQUIRE_EQUAL(mdb_dbi_open(raw, "events", MDB_INTEGERKEY, &events), 0);
  const detail::log_finder finder(raw, main, events);
  BOOST_TEST(finder.descends());
  // In log order, in a shuffled order, and what mdb_get gives for each.
  std::vector<global_position> positions;
  for (global_position p = 1; p <= head(); ++p)
    positions.push_back(p);
  std::vector<global_position> shuffled = positions;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(5));
  for (const auto* order : {&positions, &shuffled}) {
    std::vector<std::string_view> found(order->size());
    global_position missing = 0;
    BOOST_REQUIRE_EQUAL(finder.find(*order, found, missing), 0);
    for (std::size_t i = 0; i < order->size(); ++i) {
      global_position p = (*order)[i];
      MDB_val k{sizeof p, &p}, v{};
      BOOST_REQUIRE_EQUAL(mdb_get(raw, events, &k, &v), 0);
      BOOST_REQUIRE_MESSAGE(found[i].data() == v.mv_data && found[i].size() == v.mv_size,
                            "position " << p << " found elsewhere than LMDB finds it");
    }
  }
  BOOST_TEST(finder.asked_lmdb() == 0u);
  // A position past the log: LMDB's answer, and which one it was.
  const std::vector<global_position> past{3, head() + 1, 4};
  std::vector<std::string_view> found(past.size());
  global_position missing = 0;
  BOOST_TEST(finder.find(past, found, missing) == MDB_NOTFOUND);
  BOOST_TEST(missing == head() + 1);
  mdb_txn_abort(raw);
}

BOOST_AUTO_TEST_CASE(a_transaction_begun_before_a_shred_still_reads_the_shredded_data) {
  // Shredding a plain store's stream rewrites its records: a transaction
  // begun before reads its own snapshot's records, not the rewritten ones.
  const std::string victim = "finder-3";
  auto before = store->read();
  BOOST_REQUIRE(before.ok());
  BOOST_REQUIRE(store->shred(victim).ok());
  auto old = before->read_stream(victim, 1, direction::forward, SIZE_MAX);
  BOOST_REQUIRE_MESSAGE(old.ok(), varve_test::describe(old));
  BOOST_REQUIRE_EQUAL(old->size(), streams[victim].size());
  for (std::size_t i = 0; i < old->size(); ++i) {
    BOOST_TEST(!(*old)[i].shredded);
    BOOST_TEST((*old)[i].payload == log[streams[victim][i]].payload);
  }
  auto after = store->read();
  BOOST_REQUIRE(after.ok());
  auto now_read = after->read_stream(victim, 1, direction::forward, SIZE_MAX);
  BOOST_REQUIRE(now_read.ok());
  for (const event_view& e : *now_read)
    BOOST_TEST(e.shredded);
}

BOOST_AUTO_TEST_CASE(query_reads_give_every_listed_event_in_log_order) {
  auto tx = store->read();
  BOOST_REQUIRE(tx.ok());
  check_query(now, *tx);
  // A small limit: the first groups are small, the answer the same.
  auto one = tx->read_query(query::of_types({"common"}), 1, direction::forward, 1);
  BOOST_REQUIRE(one.ok());
  BOOST_REQUIRE_EQUAL(one->size(), 1u);
  global_position first_common = 1;
  while (log[first_common].type != "common")
    ++first_common;
  BOOST_TEST(one->front().position == first_common);
}

BOOST_AUTO_TEST_CASE(a_transaction_reads_its_snapshot_after_later_commits_rewrote_the_tree) {
  // One transaction reads before the commits, one has not read yet: both
  // find the records of their own snapshot, not the pages written since.
  auto early = store->read();
  auto idle = store->read();
  BOOST_REQUIRE(early.ok() && idle.ok());
  check_streams(now, *early);
  const expectations before = now;
  append_events(6000, 7);
  check_streams(before, *early);
  check_streams(before, *idle);
  check_query(before, *idle);
  auto late = store->read();
  BOOST_REQUIRE(late.ok());
  check_streams(now, *late);
  check_query(now, *late);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(encrypted_log_finder, encrypted_finder_fixture)

BOOST_AUTO_TEST_CASE(an_encrypted_store_reads_streams_and_queries_as_point_reads_give) {
  BOOST_REQUIRE(store->encrypted());
  auto tx = store->read();
  BOOST_REQUIRE(tx.ok());
  check_streams(now, *tx);
  check_query(now, *tx);
}

BOOST_AUTO_TEST_SUITE_END()
