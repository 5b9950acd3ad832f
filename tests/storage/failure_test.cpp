// Failed commits (injected with varve/storage/testing.hpp): an I/O error
// leaves nothing of the write and stops all later writes of that handle
// (failed_state) while reads go on; ENOSPC is storage_full and leaves the
// store usable. Positions are never burnt by a failed commit.
#define BOOST_TEST_MODULE failure
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "temp_dir.hpp"
#include "varve/storage/testing.hpp"

using namespace varve;
using varve_test::make_events;
using varve_test::store_fixture;

BOOST_FIXTURE_TEST_SUITE(failures, store_fixture)

BOOST_AUTO_TEST_CASE(io_error_at_commit_writes_nothing_and_stops_later_writes) {
  append("s", expected_version::any(), make_events(2, "kept"));
  BOOST_TEST(!store->failed());

  testing_fail_next_commit(*store, EIO);
  auto failed = store->append("s", expected_version::exact(2), make_events(3, "lost"));
  VARVE_REQUIRE_ERRC(failed, errc::io_error);
  BOOST_TEST_MESSAGE("message: " << failed.err().message());
  BOOST_TEST(store->failed());

  // Reads go on, and see nothing of the failed commit.
  BOOST_TEST(head() == 2u);
  BOOST_TEST(version_of("s") == 2u);
  for (const auto& e : log())
    BOOST_TEST(e.payload.find("lost") == std::string::npos);

  // Every later write of this handle is refused.
  auto append_after = store->append("s", expected_version::any(), make_events(1));
  VARVE_CHECK_ERRC(append_after, errc::failed_state);
  auto cursor_after = store->save_cursor("c", 1);
  VARVE_CHECK_ERRC(cursor_after, errc::failed_state);
  std::vector<write_request> batch(1);
  batch[0].appends.push_back({"t", expected_version::any(), make_events(1)});
  auto write_after = store->write(batch);
  VARVE_CHECK_ERRC(write_after, errc::failed_state);
  BOOST_TEST(head() == 2u);

  // A new handle starts clean and continues at the next position.
  reopen();
  BOOST_TEST(!store->failed());
  const auto next = append("s", expected_version::exact(2), make_events(1, "after"));
  BOOST_TEST(next.first_position == 3u);
  BOOST_TEST(next.first_version == 3u);
}

BOOST_AUTO_TEST_CASE(io_error_at_commit_of_a_batch_writes_none_of_it) {
  append("s", expected_version::any(), make_events(1));
  std::vector<write_request> batch(3);
  // Stream names appended, not "b" + std::to_string(i): GCC 12 at -O2 and
  // above takes that for an overlapping copy (a false -Wrestrict).
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i].appends.push_back({std::string("b").append(std::to_string(i)),
                                expected_version::no_stream(), make_events(2, "lost")});
    batch[i].cursors.push_back({"consumer", 1});
  }
  testing_fail_next_commit(*store, EIO);
  auto r = store->write(batch);
  VARVE_REQUIRE_ERRC(r, errc::io_error);
  BOOST_TEST(head() == 1u);
  BOOST_TEST(read().stream_count() == 1u);
  auto tx = read();
  auto c = tx.cursor("consumer");
  VARVE_REQUIRE_OK(c);
  BOOST_TEST(!c->has_value());
}

BOOST_AUTO_TEST_CASE(disk_full_at_commit_is_storage_full_and_the_store_stays_usable) {
  append("s", expected_version::any(), make_events(2));
  testing_fail_next_commit(*store, ENOSPC);
  auto full = store->append("s", expected_version::exact(2), make_events(2, "lost"));
  VARVE_REQUIRE_ERRC(full, errc::storage_full);
  BOOST_TEST(!store->failed());
  BOOST_TEST(head() == 2u);
  BOOST_TEST(version_of("s") == 2u);

  // The same append goes through next time, at the next position.
  const auto again = append("s", expected_version::exact(2), make_events(2, "kept"));
  BOOST_TEST(again.first_position == 3u);
  BOOST_TEST(again.first_version == 3u);
  const auto events = stream_events("s");
  BOOST_REQUIRE_EQUAL(events.size(), 4u);
  BOOST_TEST(events[2].payload == "kept-0");
}

BOOST_AUTO_TEST_CASE(a_stream_index_chunk_written_by_a_rerun_transaction_lists_the_right_events) {
  // The writer keeps each stream's positions since its last stream-index
  // chunk (64 versions) between transactions and hands them to the
  // transaction that appends to it. When that transaction is run again (a
  // full map, grown in between), the positions must still be whole, or the
  // chunk it writes lists wrong events.
  append("s", expected_version::any(), make_events(58));
  append("other", expected_version::any(), make_events(3));  // the positions of s are not dense
  append("s", expected_version::exact(58), make_events(2));
  // The first put of the next transaction is the chunk of versions 1..64.
  struct first_put_is_map_full final : fault_injector {
    bool fired = false;
    int before(lmdb_call call) override {
      if (call != lmdb_call::put || fired) return 0;
      fired = true;
      return lmdb_map_full;
    }
  };
  auto faults = std::make_shared<first_put_is_map_full>();
  testing_inject_faults(*store, faults);
  const auto crossing = append("s", expected_version::exact(60), make_events(6, "crossing"));
  testing_inject_faults(*store, nullptr);
  BOOST_TEST(faults->fired);
  BOOST_TEST(crossing.first_version == 61u);
  append("s", expected_version::exact(66), make_events(2, "after"));

  const auto events = stream_events("s");
  BOOST_REQUIRE_EQUAL(events.size(), 68u);
  for (std::size_t i = 0; i < events.size(); ++i)
    BOOST_TEST_REQUIRE(events[i].version == i + 1);
  BOOST_TEST(events[60].payload == "crossing-0");
  BOOST_TEST(events[66].payload == "after-0");
  auto report = store->verify();
  BOOST_REQUIRE(report);
  BOOST_TEST(report->faults_total == 0u, (report->faults.empty() ? "" : report->faults.front()));
}

BOOST_AUTO_TEST_SUITE_END()
