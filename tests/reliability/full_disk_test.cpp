// A store on a small filesystem (a size-limited tmpfs) is filled: appends
// fail with storage_full, nothing committed is lost, the store stays
// readable, and appends work again once space is freed. A store created on
// a disk too full to take its first pages opens once space is freed.
// Skipped, with a message, where mounting is not permitted.
#define BOOST_TEST_MODULE full_disk
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/mount.h>

#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "../storage/temp_dir.hpp"

using namespace varve;
namespace fs = std::filesystem;

namespace {

/// A tmpfs of `mib` MiB mounted on a fresh directory, unmounted at the end.
struct small_disk {
  varve_test::temp_dir dir;
  bool mounted = false;
  std::string error;

  explicit small_disk(int mib) {
    const std::string opts = "size=" + std::to_string(mib) + "m,mode=0700";
    if (::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, opts.c_str()) == 0)
      mounted = true;
    else
      error = std::strerror(errno);
  }
  ~small_disk() {
    if (mounted) ::umount2(dir.path().c_str(), MNT_DETACH);
  }

  /// True, with a message, when the test cannot run here.
  bool skipped() const {
    if (!mounted) BOOST_TEST_MESSAGE("skipped: cannot mount a tmpfs here (" << error << ")");
    return !mounted;
  }

  /// Fills the disk with a file, then shrinks it to leave `free_pages`
  /// pages free; returns its path (removing it frees the space).
  fs::path fill_leaving(std::uintmax_t free_pages) const {
    const auto filler = dir / "filler";
    const auto page = static_cast<std::uintmax_t>(::sysconf(_SC_PAGESIZE));
    {
      std::ofstream out(filler, std::ios::binary);
      const std::string chunk(page, 'f');
      while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size())) && out.flush()) {
      }
    }
    const auto size = fs::file_size(filler) / page * page;
    BOOST_REQUIRE(size > free_pages * page);
    fs::resize_file(filler, size - free_pages * page);
    return filler;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_full_disk_refuses_appends_keeps_what_was_committed_and_recovers) {
  small_disk disk(16);
  if (disk.skipped()) return;
  // Leave the store 6 MiB, with a file that can be removed later.
  const auto filler = disk.fill_leaving((6 << 20) / ::sysconf(_SC_PAGESIZE));
  options o = varve_test::test_options(disk.dir / "store");
  o.sync = durability::sync;
  o.map_size = 1 << 20;
  o.max_map_size = std::uint64_t{1} << 30;  // the disk fills long before the map
  auto store = varve_test::open_store(o);

  const std::string payload(4000, 'p');
  std::uint64_t committed = 0;
  result<append_result> last = append_result{};
  for (int i = 0; i < 10000; ++i) {
    std::vector<new_event> events(10, varve_test::make_event("fill", payload));
    last = store->append("fill", expected_version::exact(committed), events);
    if (!last) break;
    committed += 10;
  }
  BOOST_REQUIRE_MESSAGE(!last.ok(), "the disk never filled");
  BOOST_CHECK_EQUAL(to_string(last.err().code()), "storage_full");
  BOOST_TEST_MESSAGE("full after " << committed << " events: " << last.err().message());
  BOOST_CHECK(!store->failed());  // a full disk is not an I/O fault

  // Everything committed is there and readable.
  auto check = [&](event_store& s) {
    auto txn = s.read();
    BOOST_REQUIRE(txn.ok());
    BOOST_CHECK_EQUAL(txn->head(), committed);
    auto first = txn->event_at(1);
    BOOST_REQUIRE(first.ok());
    BOOST_CHECK(first->payload == payload);
    auto report = s.verify();
    BOOST_REQUIRE(report.ok());
    BOOST_CHECK(report->faults.empty());
  };
  check(*store);

  // Free space: appends work again, and continue the stream without a gap.
  std::filesystem::remove(filler);
  auto again = store->append("fill", expected_version::exact(committed),
                             std::vector<new_event>(10, varve_test::make_event("fill", payload)));
  BOOST_REQUIRE_MESSAGE(again.ok(), varve_test::describe(again));
  BOOST_CHECK_EQUAL(again->first_position, committed + 1);
  committed += 10;
  store.reset();
  auto reopened = varve_test::open_store(o);
  check(*reopened);
}

BOOST_AUTO_TEST_CASE(a_store_created_on_a_full_disk_opens_once_space_is_freed) {
  small_disk disk(1);
  if (disk.skipped()) return;
  // Two pages free: room for the first page of the lock file and the
  // first of LMDB's two meta pages, not the second.
  const auto filler = disk.fill_leaving(2);
  options o = varve_test::test_options(disk.dir / "store");
  o.sync = durability::sync;
  auto full = event_store::open(o);
  VARVE_REQUIRE_ERRC(full, errc::storage_full);
  BOOST_TEST_MESSAGE("creating on a full disk: "
                     << full.err().message() << "; data.mdb is "
                     << std::filesystem::file_size(o.directory / "data.mdb") << " bytes");
  std::filesystem::remove(filler);
  {
    auto store = varve_test::open_store(o);
    BOOST_REQUIRE(store
                      ->append("s", expected_version::no_stream(),
                               std::vector<new_event>(3, varve_test::make_event("e", "x")))
                      .ok());
    auto report = store->verify();
    BOOST_REQUIRE(report.ok());
    BOOST_CHECK(report->faults.empty());
  }
  BOOST_CHECK_EQUAL(varve_test::open_store(o)->read()->head(), 3u);
  BOOST_CHECK(!std::filesystem::exists(o.directory / "data.mdb.creating"));
}
