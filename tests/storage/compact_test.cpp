// event_store::compact: what shredding, deleting snapshots and erasing view
// rows leave in data.mdb is gone after compaction; the store holds the same
// entries; compaction never runs while the store is open anywhere.
#define BOOST_TEST_MODULE compact
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "raw_lmdb.hpp"
#include "temp_dir.hpp"

using namespace varve;
using varve_test::make_event;
using varve_test::open_store;
using varve_test::temp_dir;
using varve_test::test_options;

namespace {

constexpr std::string_view marker = "FORGET-ME-4b1d";

std::string file_of(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

bool holds(const std::filesystem::path& dir, std::string_view text) {
  return file_of(dir / "data.mdb").find(text) != std::string::npos;
}

std::array<std::uint8_t, 32> key_of(std::uint8_t seed) {
  std::array<std::uint8_t, 32> k{};
  for (std::size_t i = 0; i < k.size(); ++i)
    k[i] = static_cast<std::uint8_t>(seed * 17 + i);
  return k;
}

/// Everything a store holds, as text, for before/after comparisons.
std::string contents(event_store& store) {
  std::string out;
  auto log = store.read_log();
  BOOST_REQUIRE(log.ok());
  for (const auto& e : *log)
    out += std::to_string(e.position) + " " + e.stream + " " + std::to_string(e.version) + " " +
           e.type + " " + e.payload + " " + e.metadata + (e.shredded ? " shredded" : "") + "\n";
  auto tx = store.read();
  BOOST_REQUIRE(tx.ok());
  (void)tx->scan_cursors([&](std::string_view name, const cursor_view& c) {
    out += "cursor " + std::string(name) + " " + std::to_string(c.position) + "\n";
    return true;
  });
  (void)tx->scan_view("profiles", "", [&](std::string_view k, std::string_view v) {
    out += "view " + std::string(k) + "=" + std::string(v) + "\n";
    return true;
  });
  return out;
}

/// A store with a stream, a snapshot and view rows holding the marker,
/// which are then shredded, deleted and erased; and other data that stays.
void fill_and_forget(event_store& store) {
  for (int i = 0; i < 30; ++i) {
    auto r = store.append("customer-1", expected_version::any(),
                          {{make_event("profile_changed", std::string(marker) + "-payload",
                                       std::string(marker) + "-meta")}});
    BOOST_REQUIRE(r.ok());
    BOOST_REQUIRE(store
                      .append("order-" + std::to_string(i), expected_version::any(),
                              {{make_event("placed", "kept-" + std::to_string(i))}})
                      .ok());
  }
  write_request w;
  w.snapshots.push_back({"customer-1", 30, 1, std::string(marker) + "-snapshot"});
  w.views.push_back({"profiles", view_update::op::put, "customer-1", std::string(marker) + "-row"});
  w.views.push_back({"profiles", view_update::op::put, "customer-2", "kept-row"});
  w.cursors.push_back({"projector", 60});
  auto written = store.write({&w, 1});
  BOOST_REQUIRE(written.ok() && (*written)[0].ok());
  write_request erase;
  erase.views.push_back({"profiles", view_update::op::erase, "customer-1", ""});
  written = store.write({&erase, 1});
  BOOST_REQUIRE(written.ok() && (*written)[0].ok());
  BOOST_REQUIRE(store.shred("customer-1").ok());
}

}  // namespace

BOOST_AUTO_TEST_CASE(compaction_removes_what_a_plain_store_forgot_and_keeps_the_rest) {
  temp_dir dir;
  const options o = test_options(dir / "store");
  std::string before;
  {
    auto store = open_store(o);
    fill_and_forget(*store);
    before = contents(*store);
  }
  BOOST_TEST_MESSAGE("marker in data.mdb before compaction: " << holds(o.directory, marker));
  auto report = event_store::compact(o.directory);
  VARVE_REQUIRE_OK(report);
  BOOST_TEST_MESSAGE("compacted " << report->bytes_before << " -> " << report->bytes_after
                                  << " bytes, " << report->entries << " entries");
  BOOST_CHECK(!holds(o.directory, marker));
  BOOST_CHECK(report->entries > 60u);
  BOOST_CHECK(!std::filesystem::exists(o.directory / "data.mdb.compact"));
  auto store = open_store(o);
  BOOST_CHECK_EQUAL(contents(*store), before);
  auto verified = store->verify();
  VARVE_REQUIRE_OK(verified);
  BOOST_CHECK_EQUAL(verified->faults_total, 0u);
  // And it goes on taking appends.
  auto next = store->append("order-0", expected_version::exact(1), {{make_event("paid", "p")}});
  VARVE_REQUIRE_OK(next);
  BOOST_CHECK_EQUAL(next->first_position, 61u);
}

BOOST_AUTO_TEST_CASE(compaction_of_an_encrypted_store_keeps_live_keys_and_drops_clear_leftovers) {
  temp_dir dir;
  options o = test_options(dir / "store");
  o.master_key = key_of(1);
  std::string wrapped, before;
  {
    auto store = open_store(o);
    fill_and_forget(*store);
    before = contents(*store);
  }
  {
    // The wrapped key of a live stream (stream id 2, "order-0").
    varve_test::raw_env raw(o.directory);
    wrapped = raw.get("keys", std::string("\x02\0\0\0\0\0\0\0", 8)).value_or("");
  }
  BOOST_REQUIRE_EQUAL(wrapped.size(), 40u);
  auto report = event_store::compact(o.directory);
  VARVE_REQUIRE_OK(report);
  BOOST_CHECK(holds(o.directory, wrapped));  // live keys stay
  BOOST_CHECK(!holds(o.directory, marker));  // snapshot and view row in clear are gone
  auto store = open_store(o);
  BOOST_CHECK_EQUAL(contents(*store), before);
}

BOOST_AUTO_TEST_CASE(a_shredded_streams_wrapped_key_is_gone_after_compaction) {
  temp_dir dir;
  options o = test_options(dir / "store");
  o.master_key = key_of(2);
  {
    auto store = open_store(o);
    BOOST_REQUIRE(
        store->append("customer-1", expected_version::any(), {{make_event("a", "b")}}).ok());
  }
  std::string wrapped;
  {
    varve_test::raw_env raw(o.directory);
    wrapped = raw.get("keys", std::string("\x01\0\0\0\0\0\0\0", 8)).value_or("");
  }
  BOOST_REQUIRE_EQUAL(wrapped.size(), 40u);
  {
    auto store = open_store(o);
    for (int i = 0; i < 50; ++i)  // other writes, so that LMDB's pages move on
      BOOST_REQUIRE(store
                        ->append("other-" + std::to_string(i), expected_version::any(),
                                 {{make_event("a", "b")}})
                        .ok());
    BOOST_REQUIRE(store->shred("customer-1").ok());
  }
  BOOST_TEST_MESSAGE(
      "old wrapped key in data.mdb before compaction: " << holds(o.directory, wrapped));
  VARVE_REQUIRE_OK(event_store::compact(o.directory));
  BOOST_CHECK(!holds(o.directory, wrapped));
  auto store = open_store(o);
  auto events = store->read_stream("customer-1");
  VARVE_REQUIRE_OK(events);
  BOOST_CHECK(events->front().shredded);
}

BOOST_AUTO_TEST_CASE(compaction_is_refused_while_the_store_is_open_here_or_elsewhere) {
  temp_dir dir;
  const options o = test_options(dir / "store");
  auto store = open_store(o);
  BOOST_REQUIRE(store->append("s", expected_version::any(), {{make_event("a", "b")}}).ok());
  VARVE_CHECK_ERRC(event_store::compact(o.directory), errc::busy);
  store.reset();

  // Another process holds the store open until told to close it.
  int to_child[2], from_child[2];
  BOOST_REQUIRE(::pipe(to_child) == 0 && ::pipe(from_child) == 0);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    auto held = event_store::open(o);
    const char ready = held.ok() ? 'y' : 'n';
    (void)!::write(from_child[1], &ready, 1);
    char go = 0;
    (void)!::read(to_child[0], &go, 1);
    ::_exit(0);
  }
  char ready = 0;
  BOOST_REQUIRE_EQUAL(::read(from_child[0], &ready, 1), 1);
  BOOST_REQUIRE_EQUAL(ready, 'y');
  auto refused = event_store::compact(o.directory);
  VARVE_CHECK_ERRC(refused, errc::busy);
  if (!refused.ok()) BOOST_TEST_MESSAGE(refused.err().message());
  const char go = 'g';
  BOOST_REQUIRE_EQUAL(::write(to_child[1], &go, 1), 1);
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
  VARVE_CHECK_OK(event_store::compact(o.directory));
  BOOST_CHECK_EQUAL(open_store(o)->read()->head(), 1u);
}

BOOST_AUTO_TEST_CASE(a_compaction_cut_short_leaves_the_store_as_it_was) {
  temp_dir dir;
  const options o = test_options(dir / "store");
  {
    auto store = open_store(o);
    BOOST_REQUIRE(store->append("s", expected_version::any(), {{make_event("a", "b")}}).ok());
  }
  // What a compaction killed before its rename leaves: a partial copy.
  {
    std::ofstream partial(o.directory / "data.mdb.compact", std::ios::binary);
    partial << std::string(5000, 'x');
  }
  BOOST_CHECK_EQUAL(open_store(o)->read()->head(), 1u);
  VARVE_REQUIRE_OK(event_store::compact(o.directory));
  BOOST_CHECK(!std::filesystem::exists(o.directory / "data.mdb.compact"));
  BOOST_CHECK_EQUAL(open_store(o)->read()->head(), 1u);
}

BOOST_AUTO_TEST_CASE(compacting_where_there_is_no_store_is_not_found) {
  temp_dir dir;
  VARVE_CHECK_ERRC(event_store::compact(dir / "nothing"), errc::not_found);
}

BOOST_AUTO_TEST_CASE(a_store_whose_creation_was_cut_short_is_not_compacted_until_opened) {
  temp_dir dir;
  const auto store = dir / "store";
  std::filesystem::create_directories(store);
  std::ofstream(store / "data.mdb.creating").flush();
  std::ofstream(store / "data.mdb").flush();
  auto r = event_store::compact(store);
  VARVE_REQUIRE_ERRC(r, errc::not_found);
  BOOST_TEST(r.err().message().find("creation") != std::string::npos, r.err().message());
  BOOST_CHECK_EQUAL(std::filesystem::file_size(store / "data.mdb"), 0u);
  BOOST_CHECK(std::filesystem::exists(store / "data.mdb.creating"));
  BOOST_CHECK_EQUAL(open_store(test_options(store))->read()->head(), 0u);
  BOOST_CHECK(event_store::compact(store).ok());
}

BOOST_AUTO_TEST_CASE(
    a_store_whose_creator_was_killed_before_it_removed_its_marker_waits_for_an_open) {
  // Killed after LMDB wrote the first pages, before the tables were
  // committed: the data file holds pages and the marker is still there.
  temp_dir dir;
  auto o = test_options(dir / "store");
  {
    auto s = open_store(o);
    BOOST_REQUIRE(s->append("s", expected_version::any(), {{make_event("e", "x")}}).ok());
  }
  std::ofstream(o.directory / "data.mdb.creating").flush();
  auto r = event_store::compact(o.directory);
  VARVE_REQUIRE_ERRC(r, errc::not_found);
  BOOST_TEST(r.err().message().find("creation") != std::string::npos, r.err().message());
  BOOST_CHECK_EQUAL(open_store(o)->read()->head(), 1u);
  BOOST_CHECK(!std::filesystem::exists(o.directory / "data.mdb.creating"));
  BOOST_CHECK(event_store::compact(o.directory).ok());
}

BOOST_AUTO_TEST_CASE(a_damaged_store_is_not_compacted) {
  temp_dir dir;
  const options o = test_options(dir / "store");
  {
    auto store = open_store(o);
    for (int i = 0; i < 200; ++i)
      BOOST_REQUIRE(store
                        ->append("s-" + std::to_string(i % 9), expected_version::any(),
                                 {{make_event("e", std::string(200, 'p'))}})
                        .ok());
  }
  // Random bytes over the headers of pages 2..9 (branch, leaf and free
  // pages; some of them in use).
  const auto data = o.directory / "data.mdb";
  std::string file = file_of(data);
  for (std::size_t page = 2; page < 10; ++page)
    for (std::size_t i = 0; i < 16; ++i)
      file[page * 4096 + i] = static_cast<char>(0xA5 ^ i);
  {
    std::ofstream out(data, std::ios::binary | std::ios::trunc);
    out << file;
  }
  auto refused = event_store::compact(o.directory);
  VARVE_REQUIRE_ERRC(refused, errc::corruption);
  BOOST_TEST_MESSAGE(refused.err().message());
  BOOST_CHECK(file_of(data) == file);  // left as it was
  BOOST_CHECK(!std::filesystem::exists(o.directory / "data.mdb.compact"));
}

BOOST_AUTO_TEST_CASE(a_store_with_a_small_map_compacts) {
  // The copy is committed table by table: in a map the size of the
  // original (64 KiB, never grown) those commits ran out of room.
  temp_dir dir;
  options o = test_options(dir / "store");
  o.map_size = std::uint64_t{64} << 10;
  o.master_key = key_of(3);
  {
    auto store = open_store(o);
    write_request w;
    w.appends.push_back({"s", expected_version::any(), {make_event("e", std::string(300, 'p'))}});
    for (const char* view : {"balances", "big", "names"})
      w.views.push_back({view, view_update::op::put, "k", "v"});
    auto written = store->write({&w, 1});
    BOOST_REQUIRE(written.ok() && (*written)[0].ok());
  }
  VARVE_REQUIRE_OK(event_store::compact(o.directory));
  BOOST_CHECK_EQUAL(open_store(o)->read()->head(), 1u);
}
