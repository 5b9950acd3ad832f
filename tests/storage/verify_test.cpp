// event_store::verify finds what is wrong with a store, and backup copies a
// store that verifies, while writers go on.
#define BOOST_TEST_MODULE verify
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "indexes.hpp"
#include "raw_lmdb.hpp"
#include "temp_dir.hpp"

using namespace varve;
using varve_test::make_events;
using varve_test::store_fixture;

namespace {

/// Three streams written interleaved past two index chunks, and one shredded.
void fill(event_store& store) {
  for (int v = 0; v < 150; ++v)
    for (const char* s : {"a", "b", "c"})
      BOOST_REQUIRE(store.append(s, expected_version::exact(v), make_events(1)).ok());
  BOOST_REQUIRE(store.append("d", expected_version::no_stream(), make_events(5)).ok());
  BOOST_REQUIRE(store.shred("d").ok());
}

bool mentions(const verify_report& r, std::string_view text) {
  for (const auto& f : r.faults)
    if (f.find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(verify, store_fixture)

BOOST_AUTO_TEST_CASE(a_sound_store_verifies_without_faults) {
  fill(*store);
  std::uint64_t last_done = 0;
  auto report = store->verify([&](std::uint64_t done, std::uint64_t) { last_done = done; });
  BOOST_REQUIRE(report.ok());
  BOOST_CHECK_MESSAGE(report->faults.empty(),
                      (report->faults.empty() ? std::string() : report->faults.front()));
  BOOST_CHECK_EQUAL(report->events, 455u);
  BOOST_CHECK_EQUAL(report->streams, 4u);
  BOOST_CHECK_EQUAL(report->shredded, 5u);
  BOOST_CHECK_EQUAL(report->chunks, 6u);  // 2 full chunks in each of a, b, c
  BOOST_CHECK_EQUAL(last_done, 455u);
}

BOOST_AUTO_TEST_CASE(a_damaged_record_is_a_fault_and_the_walk_goes_on) {
  fill(*store);
  store.reset();
  {
    varve_test::raw_env raw(dir / "store");
    auto record = raw.get_event(10);
    raw.put_event(10, record->substr(0, 30));
  }
  reopen();
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_CHECK(mentions(*report, "position 10"));
  BOOST_CHECK_EQUAL(report->events, 455u);
}

BOOST_AUTO_TEST_CASE(a_wrong_index_chunk_or_head_is_a_fault) {
  fill(*store);
  store.reset();
  {
    varve_test::raw_env raw(dir / "store");
    // Stream "a" has id 1: make its first chunk point version 1 elsewhere,
    // and its head claim one event too many.
    std::string chunk_key(16, '\0');
    chunk_key[7] = 1;
    auto chunk = raw.get("stream_index", chunk_key);
    BOOST_REQUIRE(chunk);
    (*chunk)[0] ^= 0x40;
    raw.put("stream_index", chunk_key, *chunk);
    std::string id(8, '\0');
    id[0] = 1;
    auto head = raw.get("stream_heads", id);
    BOOST_REQUIRE(head);
    (*head)[0] = static_cast<char>((*head)[0] + 1);
    raw.put("stream_heads", id, *head);
  }
  reopen();
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_CHECK(mentions(*report, "index chunk 0 points at"));
  BOOST_CHECK(mentions(*report, "stream 'a': head says version 151"));
}

BOOST_AUTO_TEST_CASE(a_recent_index_entry_listing_a_position_past_its_range_is_a_fault) {
  // Each recent index entry covers the positions up to the next one's
  // first. Moving the third transaction's postings into the second's entry
  // keeps the index's postings as they were, but the second entry now
  // lists a position of the third's range, which reads and folds refuse:
  // verify reports it too.
  for (int i = 0; i < 6; ++i)
    BOOST_REQUIRE(store->append("s", expected_version::any(), make_events(1)).ok());
  store.reset();
  {
    varve_test::raw_env raw(dir / "store");
    auto second = raw.get_recent_index(2), third = raw.get_recent_index(3);
    BOOST_REQUIRE(second && third);
    namespace ix = varve::detail::index;
    ix::postings moved, kept;
    BOOST_REQUIRE(ix::list_postings(*second, 2, kept));
    BOOST_REQUIRE(ix::list_postings(*third, 3, moved));
    BOOST_REQUIRE(!moved.empty());
    kept.insert(kept.end(), moved.begin(), moved.end());
    std::sort(kept.begin(), kept.end());
    raw.put_recent_index(2, ix::encode_lists(2, kept));
    raw.put_recent_index(3, ix::encode_lists(3, {}));
  }
  reopen();
  auto report = store->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_CHECK_MESSAGE(mentions(*report, "entry at position 2 lists positions after 2"),
                      (report->faults.empty() ? std::string("no fault") : report->faults.front()));
}

BOOST_AUTO_TEST_CASE(a_backup_taken_while_a_writer_runs_verifies) {
  fill(*store);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i)
      BOOST_REQUIRE(store->append("busy", expected_version::any(), make_events(10)).ok());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto copied = store->backup(dir / "backup");
  stop = true;
  writer.join();
  BOOST_REQUIRE_MESSAGE(copied.ok(), varve_test::describe(copied));
  auto copy = varve_test::open_store(varve_test::test_options(dir / "backup"));
  auto report = copy->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_CHECK(report->faults.empty());
  BOOST_CHECK_GE(report->events, 455u);
  BOOST_CHECK_LE(report->events, read().head());
  auto again = store->backup(dir / "backup");
  BOOST_CHECK(!again.ok() && again.err().code() == errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(a_backup_is_private_whatever_the_umask) {
  fill(*store);
  const mode_t before = ::umask(022);
  auto copied = store->backup(dir / "backups" / "monday");
  ::umask(before);
  BOOST_REQUIRE_MESSAGE(copied.ok(), varve_test::describe(copied));
  struct stat file = {};
  struct stat directory = {};
  BOOST_REQUIRE_EQUAL(::stat((dir / "backups" / "monday" / "data.mdb").c_str(), &file), 0);
  BOOST_REQUIRE_EQUAL(::stat((dir / "backups" / "monday").c_str(), &directory), 0);
  BOOST_CHECK_EQUAL(file.st_mode & 07777, 0600u);
  BOOST_CHECK_EQUAL(directory.st_mode & 07777, 0700u);
  auto copy = varve_test::open_store(varve_test::test_options(dir / "backups" / "monday"));
  auto report = copy->verify();
  BOOST_REQUIRE(report.ok());
  BOOST_CHECK(report->faults.empty());
  BOOST_CHECK_EQUAL(report->events, 455u);
}

BOOST_AUTO_TEST_SUITE_END()
