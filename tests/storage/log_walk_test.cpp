// Log scans read each leaf page in place (storage/src/log_leaf.hpp): the
// cursor reads a page's first record, the page itself the others, and the
// cursor takes over again at the page's end or at a record held in overflow
// pages. Whatever the start, direction, limit or stop, a scan hands out
// exactly the events that point reads give, in log order, plain or
// encrypted.
#define BOOST_TEST_MODULE log_walk
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "raw_lmdb.hpp"
#include "temp_dir.hpp"

using namespace varve;
using varve_test::make_event;

namespace {

/// What a scan must hand out for one position.
struct expected_event {
  std::string stream;
  stream_version version = 0;
  std::string payload;
};

/// Payload sizes that put records of every kind on the log's pages: a few
/// bytes, a hundred, most of a node (in the page), and over a node (an
/// overflow run of two pages).
std::size_t payload_size(std::mt19937_64& rng) {
  const auto roll = rng() % 100;
  if (roll < 45) return 1 + rng() % 16;
  if (roll < 85) return 80 + rng() % 60;
  if (roll < 95) return 1200 + rng() % 700;
  return 5000 + rng() % 3000;
}

struct walk_fixture {
  varve_test::temp_dir dir;
  varve::options opts;
  std::unique_ptr<event_store> store;
  std::vector<expected_event> log{{}};  // index = position

  explicit walk_fixture(bool encrypted = false) : opts(varve_test::test_options(dir / "store")) {
    if (encrypted) opts.master_key = varve_test::test_key(1);
    store = varve_test::open_store(opts);
    // Commits of 1 to 90 events over five streams: pages that commits
    // share, pages that one commit fills, overflow runs between them.
    std::mt19937_64 rng(20261130);
    std::array<stream_version, 5> versions{};
    while (log.size() <= 2500) {
      const std::size_t s = rng() % versions.size();
      const std::string stream = "walk-" + std::to_string(s);
      std::vector<new_event> events;
      for (std::size_t n = 1 + rng() % 90; n > 0; --n) {
        std::string payload(payload_size(rng), '\0');
        for (char& c : payload)
          c = static_cast<char>('a' + rng() % 26);
        events.push_back(make_event("walked", payload));
      }
      auto r = store->append(stream, expected_version::exact(versions[s]), events);
      BOOST_REQUIRE_MESSAGE(r.ok(), "append: " << varve_test::describe(r));
      for (const new_event& e : events)
        log.push_back({stream, ++versions[s], e.payload});
    }
  }

  global_position head() const { return log.size() - 1; }

  /// Scans from `from` in `dir` with `limit`, the visitor stopping after
  /// `stop` events, and checks what it hands out against the log.
  void check_scan(const read_transaction& tx, global_position from, direction dir,
                  std::size_t limit, std::size_t stop = SIZE_MAX) {
    const bool forward = dir == direction::forward;
    std::vector<global_position> seen;
    bool all_match = true;
    auto r = tx.scan_log(from, dir, limit, [&](const event_view& e) {
      seen.push_back(e.position);
      const bool known = e.position >= 1 && e.position <= head();
      const auto name = known ? tx.stream_name(e.stream_id) : result<std::string_view>("");
      if (!known || !name.ok() || *name != log[e.position].stream ||
          e.version != log[e.position].version || e.payload != log[e.position].payload ||
          e.type != "walked") {
        all_match = false;
      }
      return seen.size() < stop;
    });
    BOOST_TEST_CONTEXT("scan from " << from << (forward ? " forward" : " backward") << ", limit "
                                    << limit << ", stop " << stop) {
      BOOST_REQUIRE_MESSAGE(r.ok(), varve_test::describe(r));
      BOOST_TEST(all_match);
      const global_position first = from == from_end ? head() : from;
      const std::size_t available = forward ? head() - first + 1 : first;
      const std::size_t count = std::min({available, limit, stop});
      BOOST_TEST(*r == count);
      BOOST_REQUIRE_EQUAL(seen.size(), count);
      for (std::size_t i = 0; i < count; ++i)
        BOOST_TEST(seen[i] == (forward ? first + i : first - i), "event " << i);
    }
  }
};

struct encrypted_walk_fixture : walk_fixture {
  encrypted_walk_fixture() : walk_fixture(true) {}
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(log_walk, walk_fixture)

BOOST_AUTO_TEST_CASE(scans_from_every_position_read_what_point_reads_give_in_both_directions) {
  auto tx = store->read();
  BOOST_REQUIRE(tx.ok());
  BOOST_REQUIRE_EQUAL(tx->head(), head());
  for (global_position p = 1; p <= head(); ++p) {
    auto e = tx->event_at(p);
    BOOST_REQUIRE_MESSAGE(e.ok(), "event_at " << p << ": " << varve_test::describe(e));
    BOOST_REQUIRE(e->payload == log[p].payload);
  }
  // 40 events from each position cross page ends and overflow runs in
  // every phase of a page.
  for (global_position from = 1; from <= head(); ++from) {
    check_scan(*tx, from, direction::forward, 40);
    check_scan(*tx, from, direction::backward, 40);
  }
  check_scan(*tx, 1, direction::forward, SIZE_MAX);
  check_scan(*tx, from_end, direction::backward, SIZE_MAX);
  check_scan(*tx, head() / 2, direction::backward, SIZE_MAX);
  check_scan(*tx, head() / 3, direction::forward, SIZE_MAX);
}

BOOST_AUTO_TEST_CASE(a_scan_ends_after_its_limit_or_its_visitor_wherever_that_falls_in_a_page) {
  auto tx = store->read();
  BOOST_REQUIRE(tx.ok());
  for (std::size_t n = 1; n <= 80; ++n) {
    check_scan(*tx, 1, direction::forward, n);
    check_scan(*tx, 1, direction::forward, SIZE_MAX, n);
    check_scan(*tx, from_end, direction::backward, n);
    check_scan(*tx, from_end, direction::backward, SIZE_MAX, n);
  }
}

BOOST_AUTO_TEST_CASE(scans_read_the_pages_a_later_transaction_appended_to) {
  // Appends after the first scan rewrite the last leaf page and add pages:
  // a new transaction reads them, an older one keeps its snapshot.
  auto before = store->read();
  BOOST_REQUIRE(before.ok());
  const global_position old_head = head();
  std::vector<new_event> more;
  for (int i = 0; i < 300; ++i)
    more.push_back(make_event("walked", std::string(1 + i % 200, 'z')));
  auto r = store->append("walk-late", expected_version::no_stream(), more);
  BOOST_REQUIRE(r.ok());
  stream_version v = 0;
  for (const new_event& e : more)
    log.push_back({"walk-late", ++v, e.payload});
  auto after = store->read();
  BOOST_REQUIRE(after.ok());
  check_scan(*after, 1, direction::forward, SIZE_MAX);
  check_scan(*after, from_end, direction::backward, SIZE_MAX);
  std::size_t seen = 0;
  auto old = before->scan_log(1, direction::forward, SIZE_MAX, [&](const event_view&) {
    ++seen;
    return true;
  });
  BOOST_REQUIRE(old.ok());
  BOOST_TEST(seen == old_head);
}

BOOST_AUTO_TEST_CASE(a_node_that_ends_the_walk_inside_a_damaged_page_reads_as_corruption) {
  // A node whose key is 9 bytes of zeros: the walk stops before it. The
  // nodes after it have keys of 0 too, so the cursor, sent back to the last
  // record the page gave, does not find it in the page (its keys are out of
  // order). The scan says corruption, as a cursor stepping through the
  // page did.
  // A page of more than 8 records whose first 4 are in the page.
  store.reset();
  std::uint64_t pgno = 0;
  std::vector<std::uint16_t> nodes;
  for (global_position target = head() / 2; target < head() && nodes.empty(); ++target) {
    {
      varve_test::raw_env env(opts.directory);
      pgno = env.page_of_event(target);
    }
    const std::string page = varve_test::read_page(opts.directory, pgno);
    const auto offsets = varve_test::node_offsets(page);
    bool plain = offsets.size() > 8;
    for (std::size_t i = 0; plain && i < 4; ++i) {
      std::uint16_t flags = 0;
      std::memcpy(&flags, page.data() + offsets[i] + 4, 2);
      plain = flags == 0;
    }
    if (plain) nodes = offsets;
  }
  BOOST_REQUIRE_GT(nodes.size(), 8u);
  const std::uint16_t nine = 9;
  const global_position zero = 0;
  for (std::size_t i = 3; i < nodes.size(); ++i) {
    if (i == 3)
      varve_test::patch_page(opts.directory, pgno, nodes[i] + 6,
                             std::string_view(reinterpret_cast<const char*>(&nine), 2));
    varve_test::patch_page(opts.directory, pgno, nodes[i] + 8,
                           std::string_view(reinterpret_cast<const char*>(&zero), 8));
  }
  store = varve_test::open_store(opts);
  auto tx = store->read();
  BOOST_REQUIRE(tx.ok());
  std::size_t seen = 0;
  auto r = tx->scan_log(1, direction::forward, SIZE_MAX, [&](const event_view&) {
    ++seen;
    return true;
  });
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code() == errc::corruption, r.err().to_string());
  BOOST_TEST_MESSAGE(r.err().to_string());
  BOOST_TEST(seen < head());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(encrypted_log_walk, encrypted_walk_fixture)

BOOST_AUTO_TEST_CASE(an_encrypted_log_scans_from_any_position_as_point_reads_give) {
  BOOST_REQUIRE(store->encrypted());
  auto tx = store->read();
  BOOST_REQUIRE(tx.ok());
  for (global_position from = 1; from <= head(); from += 7) {
    check_scan(*tx, from, direction::forward, 40);
    check_scan(*tx, from, direction::backward, 40);
  }
  check_scan(*tx, 1, direction::forward, SIZE_MAX);
  check_scan(*tx, from_end, direction::backward, SIZE_MAX);
}

BOOST_AUTO_TEST_SUITE_END()
