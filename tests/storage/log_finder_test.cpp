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
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "indexes.hpp"
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
    if (encrypted) opts.master_key = varve_test::test_key(5);
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

  /// Appends fillers (not in `log`) in one transaction that takes the log
  /// past the next multiple of the segment span: the recent index entries
  /// become a segment, and one entry is left after it.
  /// Returns the fillers' last position (the log's head).
  global_position pass_a_span_end() {
    const global_position span = varve::detail::index::segment_span;
    const global_position at = store->read()->head();
    const std::size_t fillers = static_cast<std::size_t>(span - at % span + 1);
    auto r = store->append("filler", expected_version::any(),
                           std::vector<new_event>(fillers, make_event("filler", "f")));
    BOOST_REQUIRE(r.ok());
    return r->last_position;
  }

  /// Appends three events of type "moved" in transactions of their own
  /// (three recent entries after a span end), then moves the type's
  /// posting of the second event into the first event's entry (damage: no
  /// posting missing, none listed twice, one outside its entry's range).
  /// Returns the three positions; the store is open again.
  std::vector<global_position> move_a_posting_back() {
    pass_a_span_end();
    std::vector<global_position> at;
    for (int t = 0; t < 3; ++t) {
      // "moved-..." streams: each event has a type key and a category key.
      auto r = store->append("moved-" + std::to_string(t), expected_version::any(),
                             std::vector<new_event>{make_event("moved", "m")});
      BOOST_REQUIRE(r.ok());
      at.push_back(r->last_position);
    }
    store.reset();
    {
      varve_test::raw_env env(opts.directory);
      auto older = env.get_recent_index(at[0]);
      auto newer = env.get_recent_index(at[1]);
      BOOST_REQUIRE(older.has_value() && newer.has_value());
      varve::detail::index::postings first, second;
      BOOST_REQUIRE(varve::detail::index::list_postings(*older, at[0], first));
      BOOST_REQUIRE(varve::detail::index::list_postings(*newer, at[1], second));
      BOOST_REQUIRE_EQUAL(second.size(), 2u);  // the type's key and the category's
      first.push_back(second.front());
      second.erase(second.begin());
      std::sort(first.begin(), first.end());
      env.put_recent_index(at[0], varve::detail::index::encode_lists(at[0], first));
      env.put_recent_index(at[1], varve::detail::index::encode_lists(at[1], second));
    }
    store = varve_test::open_store(opts);
    return at;
  }

  /// Appends fillers that take the log to the next multiple of the segment
  /// span (the append seals the recent entries) and checks that it fails
  /// with corruption naming `named` and the rebuild, and appends nothing.
  void check_sealing_is_refused(const std::string& named) {
    const global_position head = store->read()->head();
    const global_position span = varve::detail::index::segment_span;
    auto refused =
        store->append("filler", expected_version::any(),
                      std::vector<new_event>(static_cast<std::size_t>(span - head % span),
                                             make_event("filler", "f")));
    VARVE_CHECK_ERRC(refused, errc::corruption);
    if (!refused.ok()) {
      const std::string& m = refused.err().message();
      BOOST_TEST(m.find(named) != std::string::npos, m);
      BOOST_TEST(m.find("rebuild") != std::string::npos, m);
    }
    BOOST_TEST(store->read()->head() == head);
  }

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
  std::atomic<const char*> checked{nullptr};
  const detail::log_finder finder(raw, main, events, checked);
  BOOST_TEST(finder.descends());
  // In log order, in a shuffled order, and what mdb_get gives for each.
  std::vector<global_position> positions;
  for (global_position p = 1; p <= head(); ++p)
    positions.push_back(p);
  std::vector<global_position> shuffled = positions;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(5));
  for (const auto* order : {&positions, &shuffled}) {
    std::vector<std::string_view> found(order->size());
    std::size_t failed = 0;
    BOOST_REQUIRE_EQUAL(finder.find(*order, found, failed), 0);
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
  std::size_t failed = 0;
  BOOST_TEST(finder.find(past, found, failed) == MDB_NOTFOUND);
  BOOST_TEST(failed == 1u);
  // What came before the failure was found.
  global_position three = 3;
  MDB_val k3{sizeof three, &three}, v3{};
  BOOST_REQUIRE_EQUAL(mdb_get(raw, events, &k3, &v3), 0);
  BOOST_TEST(found[0].data() == v3.mv_data);
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

BOOST_AUTO_TEST_CASE(a_damaged_page_number_in_the_main_tables_leaf_misplaces_no_read) {
  // LMDB never reads a page's own number; the finder places the map with it
  // only when a second page LMDB read agrees.
  store.reset();
  std::uint64_t home = 0, last = 0, root = 0;
  {
    varve_test::raw_env env(opts.directory);
    home = env.page_of(nullptr, "events");
    MDB_envinfo info{};
    BOOST_REQUIRE_EQUAL(mdb_env_info(env.get(), &info), 0);
    last = info.me_last_pgno;
    MDB_txn* raw = nullptr;
    BOOST_REQUIRE_EQUAL(mdb_txn_begin(env.get(), nullptr, MDB_RDONLY, &raw), 0);
    MDB_dbi main = 0;
    BOOST_REQUIRE_EQUAL(mdb_dbi_open(raw, nullptr, 0, &main), 0);
    MDB_val k{6, const_cast<char*>("events")}, table{};
    BOOST_REQUIRE_EQUAL(mdb_get(raw, main, &k, &table), 0);
    BOOST_REQUIRE_EQUAL(table.mv_size, 48u);  // MDB_db: the root at byte 40
    std::memcpy(&root, static_cast<const char*>(table.mv_data) + 40, 8);
    mdb_txn_abort(raw);
  }
  // Taken for true, the wrong number would place the log's root 100 pages
  // past the end of the file.
  BOOST_REQUIRE_GT(home + root, last + 102);
  const std::uint64_t wrong = home + root - (last + 100);
  varve_test::patch_page(opts.directory, home, 0,
                         std::string_view(reinterpret_cast<const char*>(&wrong), sizeof wrong));
  store = varve_test::open_store(opts);
  auto tx = store->read();
  BOOST_REQUIRE(tx.ok());
  check_streams(now, *tx);
  check_query(now, *tx);
}

BOOST_AUTO_TEST_CASE(a_query_meeting_a_damaged_node_visits_what_precedes_it_then_names_corruption) {
  // A node flagged as held in overflow pages (F_BIGDATA) whose value is a
  // record: LMDB answers MDB_PAGE_NOTFOUND and refuses the transaction's
  // further reads; the query must still have visited every event before it.
  const global_position damaged = head() / 2;
  BOOST_REQUIRE(log[damaged].payload.size() < 2000);  // in its page
  store.reset();
  std::uint64_t pgno = 0;
  {
    varve_test::raw_env env(opts.directory);
    pgno = env.page_of_event(damaged);
  }
  const std::string page = varve_test::read_page(opts.directory, pgno);
  std::size_t node = 0;
  for (std::uint16_t at : varve_test::node_offsets(page)) {
    global_position key = 0;
    std::memcpy(&key, page.data() + at + 8, 8);
    if (key == damaged) node = at;
  }
  BOOST_REQUIRE(node != 0);
  const std::uint16_t bigdata = 1;
  varve_test::patch_page(opts.directory, pgno, node + 4,
                         std::string_view(reinterpret_cast<const char*>(&bigdata), 2));
  store = varve_test::open_store(opts);
  auto tx = store->read();
  BOOST_REQUIRE(tx.ok());
  std::vector<global_position> seen;
  auto r = tx->scan_query(query::of_types({"common", "rare"}), 1, direction::forward, SIZE_MAX,
                          [&](const event_view& e) {
                            seen.push_back(e.position);
                            return true;
                          });
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code() == errc::corruption, r.err().to_string());
  BOOST_TEST_MESSAGE(r.err().to_string());
  BOOST_REQUIRE_EQUAL(seen.size(), damaged - 1);
  for (std::size_t i = 0; i < seen.size(); ++i)
    BOOST_TEST(seen[i] == i + 1);
}

BOOST_AUTO_TEST_CASE(a_query_with_a_limit_reads_no_index_entry_past_what_it_visits) {
  // Two events of a type in one transaction, a third in the next; the
  // next transaction's recent index entry is damaged. A query for the
  // first event with a limit of 1 does not need that entry. Fillers first
  // take the log past a span end, which turns the recent entries into a
  // segment: the two transactions then have entries of their own (no fold
  // joins them).
  pass_a_span_end();
  std::vector<global_position> marked;
  for (std::size_t n : {2, 1}) {
    auto r = store->append("marked", expected_version::any(),
                           std::vector<new_event>(n, make_event("marker", "m")));
    BOOST_REQUIRE(r.ok());
    for (global_position p = r->first_position; p <= r->last_position; ++p)
      marked.push_back(p);
  }
  store.reset();
  {
    varve_test::raw_env env(opts.directory);
    MDB_txn* raw = nullptr;
    BOOST_REQUIRE_EQUAL(mdb_txn_begin(env.get(), nullptr, 0, &raw), 0);
    MDB_dbi recent = 0;
    BOOST_REQUIRE_EQUAL(mdb_dbi_open(raw, "index_recent", MDB_INTEGERKEY, &recent), 0);
    MDB_cursor* c = nullptr;
    BOOST_REQUIRE_EQUAL(mdb_cursor_open(raw, recent, &c), 0);
    MDB_val k{}, v{};
    BOOST_REQUIRE_EQUAL(mdb_cursor_get(c, &k, &v, MDB_LAST), 0);
    global_position first = 0;
    std::memcpy(&first, k.mv_data, 8);
    BOOST_REQUIRE_EQUAL(first, marked[2]);  // the last transaction's own entry
    std::string garbage(v.mv_size / 2, '\x7f');
    mdb_cursor_close(c);
    MDB_val value{garbage.size(), garbage.data()};
    BOOST_REQUIRE_EQUAL(mdb_put(raw, recent, &k, &value, 0), 0);
    BOOST_REQUIRE_EQUAL(mdb_txn_commit(raw), 0);
  }
  store = varve_test::open_store(opts);
  auto tx = store->read();
  BOOST_REQUIRE(tx.ok());
  auto one = tx->read_query(query::of_types({"marker"}), 1, direction::forward, 1);
  BOOST_REQUIRE_MESSAGE(one.ok(), varve_test::describe(one));
  BOOST_REQUIRE_EQUAL(one->size(), 1u);
  BOOST_TEST(one->front().position == marked[0]);
  auto all = tx->read_query(query::of_types({"marker"}), 1, direction::forward, SIZE_MAX);
  VARVE_CHECK_ERRC(all, errc::corruption);
  if (!all.ok())
    BOOST_TEST(all.err().message().find("rebuild") != std::string::npos, all.err().message());
}

BOOST_AUTO_TEST_CASE(a_fold_over_recent_entries_that_list_one_position_twice_is_refused) {
  // Entries of consecutive ranges list each position once. One that also
  // lists the next entry's position (damage) would fold into a zero gap,
  // a value no reader decodes: the append that folds them fails, names
  // the entry and the rebuild, and appends nothing.
  pass_a_span_end();
  // One recent entry is left past the span end; 15 more make 16.
  global_position last = 0;
  for (int t = 0; t < 15; ++t) {
    auto r = store->append("twice", expected_version::any(),
                           std::vector<new_event>{make_event("twice", "t")});
    BOOST_REQUIRE(r.ok());
    last = r->last_position;
  }
  store.reset();
  {
    varve_test::raw_env env(opts.directory);
    BOOST_REQUIRE_EQUAL(env.entries("index_recent", MDB_INTEGERKEY), 16u);
    auto before = env.get_recent_index(last - 1);
    BOOST_REQUIRE(before.has_value());
    varve::detail::index::postings listed;
    BOOST_REQUIRE(varve::detail::index::list_postings(*before, last - 1, listed));
    BOOST_REQUIRE(!listed.empty());
    listed.emplace_back(listed.front().first, last);  // the next entry's position
    std::sort(listed.begin(), listed.end());
    env.put_recent_index(last - 1, varve::detail::index::encode_lists(last - 1, listed));
  }
  store = varve_test::open_store(opts);
  auto refused = store->append("twice", expected_version::any(),
                               std::vector<new_event>{make_event("twice", "t")});
  VARVE_CHECK_ERRC(refused, errc::corruption);
  if (!refused.ok()) {
    const std::string named = "entry at position " + std::to_string(last - 1) + " does not fold";
    BOOST_TEST(refused.err().message().find(named) != std::string::npos, refused.err().message());
    BOOST_TEST(refused.err().message().find("rebuild") != std::string::npos,
               refused.err().message());
  }
  BOOST_TEST(store->read()->head() == last);
}

BOOST_AUTO_TEST_CASE(a_seal_over_a_recent_entry_listing_past_its_range_is_refused) {
  // A posting moved from one recent entry into the one before it (damage:
  // no posting is missing, none is listed twice) lies outside the older
  // entry's range. The append that seals the entries into segments fails,
  // naming the entry and the rebuild, and appends nothing.
  const std::vector<global_position> at = move_a_posting_back();
  check_sealing_is_refused("entry at position " + std::to_string(at[0]) + " lists position " +
                           std::to_string(at[1]));
}

BOOST_AUTO_TEST_CASE(a_recent_entry_keyed_inside_the_sealed_positions_is_refused) {
  // Recent entries cover positions after meta 'segmented_through'. One
  // keyed at it (damage) lists a position the segments list already; the
  // append that seals the entries fails, naming the entry and the
  // rebuild, and appends nothing, rather than dropping the entry.
  const global_position sealed = pass_a_span_end() - 1;
  BOOST_REQUIRE_EQUAL(sealed % varve::detail::index::segment_span, 0u);
  auto r = store->append("inside", expected_version::any(),
                         std::vector<new_event>{make_event("inside", "i")});
  BOOST_REQUIRE(r.ok());
  store.reset();
  {
    varve_test::raw_env env(opts.directory);
    auto entry = env.get_recent_index(r->last_position);
    BOOST_REQUIRE(entry.has_value());
    varve::detail::index::postings listed;
    BOOST_REQUIRE(varve::detail::index::list_postings(*entry, r->last_position, listed));
    BOOST_REQUIRE(!listed.empty());
    const varve::detail::index::postings moved{{listed.front().first, sealed}};
    env.put_recent_index(sealed, varve::detail::index::encode_lists(sealed, moved));
  }
  store = varve_test::open_store(opts);
  check_sealing_is_refused("entry at position " + std::to_string(sealed) + ", outside");
}

BOOST_AUTO_TEST_CASE(a_recent_entry_that_lists_the_next_entrys_position_fails_reads) {
  // Each recent entry lists positions of its own range only. One that also
  // lists the first position of the next entry (damage) would hand a query
  // that event twice; forward and backward, the read fails instead, naming
  // the entry and the rebuild.
  pass_a_span_end();
  std::vector<global_position> at;
  for (int t = 0; t < 3; ++t) {
    auto r = store->append("overlap", expected_version::any(),
                           std::vector<new_event>{make_event("overlap", "o")});
    BOOST_REQUIRE(r.ok());
    at.push_back(r->last_position);
  }
  {
    auto before = store->read();
    BOOST_REQUIRE(before.ok());
    auto clean = before->read_query(query::of_types({"overlap"}), 1, direction::forward, SIZE_MAX);
    BOOST_REQUIRE_MESSAGE(clean.ok(), varve_test::describe(clean));
    BOOST_REQUIRE_EQUAL(clean->size(), 3u);
  }
  store.reset();
  {
    varve_test::raw_env env(opts.directory);
    auto entry = env.get_recent_index(at[0]);
    BOOST_REQUIRE(entry.has_value());  // the first transaction's own entry
    varve::detail::index::postings listed;
    BOOST_REQUIRE(varve::detail::index::list_postings(*entry, at[0], listed));
    const std::size_t n = listed.size();
    for (std::size_t i = 0; i < n; ++i)  // every key of the entry: the type's too
      listed.emplace_back(listed[i].first, at[1]);
    std::sort(listed.begin(), listed.end());
    env.put_recent_index(at[0], varve::detail::index::encode_lists(at[0], listed));
  }
  store = varve_test::open_store(opts);
  auto tx = store->read();
  BOOST_REQUIRE(tx.ok());
  for (direction dir : {direction::forward, direction::backward}) {
    std::vector<global_position> seen;
    auto r = tx->scan_query(query::of_types({"overlap"}), dir == direction::forward ? 1 : at[2],
                            dir, SIZE_MAX, [&](const varve::event_view& e) {
                              seen.push_back(e.position);
                              return true;
                            });
    VARVE_CHECK_ERRC(r, errc::corruption);
    if (!r.ok()) {
      BOOST_TEST(r.err().message().find("rebuild") != std::string::npos, r.err().message());
      const std::string& m = r.err().message();
      const bool names_it = m.find(std::to_string(at[0])) != std::string::npos ||
                            m.find(std::to_string(at[1])) != std::string::npos;
      BOOST_TEST(names_it, m);
    }
    BOOST_TEST((std::adjacent_find(seen.begin(), seen.end()) == seen.end()));
  }
}

BOOST_AUTO_TEST_CASE(a_forward_query_visits_nothing_a_damaged_entry_lists_past_its_range) {
  // A recent entry is bounded by the next entry's first position before
  // any of its positions is handed out: a forward query over an entry that
  // lists a position of the next entry's range fails, naming the entry and
  // the rebuild, having visited none of that entry's positions.
  const std::vector<global_position> at = move_a_posting_back();
  auto tx = store->read();
  BOOST_REQUIRE(tx.ok());
  std::vector<global_position> seen;
  auto r = tx->scan_query(query::of_types({"moved"}), 1, direction::forward, SIZE_MAX,
                          [&](const varve::event_view& e) {
                            seen.push_back(e.position);
                            return true;
                          });
  VARVE_CHECK_ERRC(r, errc::corruption);
  if (!r.ok()) {
    const std::string named = "entry at position " + std::to_string(at[0]);
    BOOST_TEST(r.err().message().find(named) != std::string::npos, r.err().message());
    BOOST_TEST(r.err().message().find("rebuild") != std::string::npos, r.err().message());
  }
  BOOST_TEST(seen.empty(), seen.size() << " positions visited");
}

BOOST_AUTO_TEST_CASE(a_backward_query_visits_nothing_past_a_position_an_older_entry_holds) {
  // The newest event of a type has its posting moved into the entry before
  // its own (damage). Handing out the newer entry's positions first would
  // skip that event: a backward read of the type with a limit of 1 would
  // succeed with the wrong event. Every older entry is read before any
  // position is handed out: the read fails, naming the entry and the
  // rebuild, and visits nothing.
  pass_a_span_end();
  auto older = store->append("moved-0", expected_version::any(),
                             std::vector<new_event>{make_event("moved", "m")});
  auto newer = store->append("other-0", expected_version::any(),
                             std::vector<new_event>(3, make_event("moved", "m")));
  BOOST_REQUIRE(older.ok() && newer.ok());
  const global_position a = older->last_position, b = newer->first_position;
  const global_position newest = newer->last_position;
  store.reset();
  {
    varve_test::raw_env env(opts.directory);
    auto first = env.get_recent_index(a);
    auto second = env.get_recent_index(b);
    BOOST_REQUIRE(first.has_value() && second.has_value());
    varve::detail::index::postings in_first, in_second;
    BOOST_REQUIRE(varve::detail::index::list_postings(*first, a, in_first));
    BOOST_REQUIRE(varve::detail::index::list_postings(*second, b, in_second));
    // The type's key is the one both entries list (their categories differ).
    std::uint64_t type_id = 0;
    for (const auto& p : in_first)
      for (const auto& q : in_second)
        if (p.first == q.first) type_id = p.first;
    BOOST_REQUIRE(type_id != 0);
    const std::pair<std::uint64_t, global_position> moved{type_id, newest};
    auto it = std::find(in_second.begin(), in_second.end(), moved);
    BOOST_REQUIRE(it != in_second.end());
    in_second.erase(it);
    in_first.push_back(moved);
    std::sort(in_first.begin(), in_first.end());
    env.put_recent_index(a, varve::detail::index::encode_lists(a, in_first));
    env.put_recent_index(b, varve::detail::index::encode_lists(b, in_second));
  }
  store = varve_test::open_store(opts);
  auto tx = store->read();
  BOOST_REQUIRE(tx.ok());
  for (std::size_t limit : {std::size_t{1}, SIZE_MAX}) {
    BOOST_TEST_CONTEXT("limit " << limit) {
      std::vector<global_position> seen;
      auto r = tx->scan_query(query::of_types({"moved"}), tx->head(), direction::backward, limit,
                              [&](const varve::event_view& e) {
                                seen.push_back(e.position);
                                return true;
                              });
      VARVE_CHECK_ERRC(r, errc::corruption);
      if (!r.ok()) {
        const std::string named = "entry at position " + std::to_string(a);
        BOOST_TEST(r.err().message().find(named) != std::string::npos, r.err().message());
        BOOST_TEST(r.err().message().find("rebuild") != std::string::npos, r.err().message());
      }
      BOOST_TEST(seen.empty(), seen.size() << " positions visited");
    }
  }
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
