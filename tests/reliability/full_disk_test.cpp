// A store on a small filesystem (a size-limited tmpfs) is filled: appends
// fail with storage_full, nothing committed is lost, the store stays
// readable, and appends work again once space is freed. A store created on
// a disk too full to take its first pages opens once space is freed.
// Skipped, with a message, where mounting is not permitted.
#define BOOST_TEST_MODULE full_disk
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/mount.h>
#include <sys/wait.h>

#include <unistd.h>
#include <cerrno>
#include <csignal>
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
  // The disk fills at each point of a creation in turn, one more page free
  // each round: before the lock file's reader slots, within LMDB's two meta
  // pages, within the tables' first commit. Each store opens once space is
  // freed, and keeps what is appended then.
  small_disk disk(1);
  if (disk.skipped()) return;
  const auto page = static_cast<std::uintmax_t>(::sysconf(_SC_PAGESIZE));
  bool cut_within_meta_pages = false;
  for (std::uintmax_t free_pages = 0;; ++free_pages) {
    BOOST_REQUIRE_MESSAGE(free_pages < 64, "a creation never succeeded");
    options o = varve_test::test_options(disk.dir / ("store-" + std::to_string(free_pages)));
    o.sync = durability::sync;
    const auto filler = disk.fill_leaving(free_pages);
    auto full = event_store::open(o);
    if (full) {
      full->reset();
      std::filesystem::remove(filler);
      break;
    }
    VARVE_REQUIRE_ERRC(full, errc::storage_full);
    std::error_code ec;
    const auto data_size = std::filesystem::file_size(o.directory / "data.mdb", ec);
    BOOST_TEST_MESSAGE(free_pages << " pages free: " << full.err().message() << "; data.mdb is "
                                  << (ec ? std::string("absent") : std::to_string(data_size)));
    if (!ec && data_size > 0 && data_size < 2 * page) cut_within_meta_pages = true;
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
    std::filesystem::remove_all(o.directory);
  }
  BOOST_CHECK_MESSAGE(cut_within_meta_pages, "no round cut the creation within the meta pages");
}

namespace {

/// In a child process: opens the store of `o` and begins o.max_readers
/// read transactions at once. Its exit code: 0 when all began, 3 when the
/// open was refused with storage_full, 4 when a read was, another number
/// otherwise; or the signal that killed it (as waitpid's status).
int readers_in_child(const options& o) {
  const pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    ::signal(SIGBUS, SIG_DFL);  // not caught by Boost.Test's monitor: the parent sees it
    ::signal(SIGSEGV, SIG_DFL);
    int code = 0;
    {
      auto store = event_store::open(o);
      if (!store) {
        code = store.err().code() == errc::storage_full ? 3 : 2;
      } else {
        std::vector<read_transaction> readers;
        for (std::uint32_t i = 0; i < o.max_readers && code == 0; ++i) {
          auto txn = (*store)->read();
          if (!txn)
            code = txn.err().code() == errc::storage_full ? 4 : 5;
          else if (txn->head() != 3)
            code = 6;
          else
            readers.push_back(std::move(*txn));
        }
      }
    }
    ::_exit(code);
  }
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(child, &status, 0), child);
  BOOST_REQUIRE_MESSAGE(!WIFSIGNALED(status), "killed by signal " << WTERMSIG(status));
  return WEXITSTATUS(status);
}

}  // namespace

BOOST_AUTO_TEST_CASE(readers_begun_on_a_full_disk_do_not_kill_the_process) {
  // LMDB's lock file is sized without being written: its reader slots
  // beyond the first page are a hole until a reader takes one. On a full
  // disk, the first reader to write such a slot through the map would die
  // of SIGBUS.
  small_disk disk(1);
  if (disk.skipped()) return;
  options o = varve_test::test_options(disk.dir / "store");
  o.map_size = 256 << 10;
  {
    auto store = varve_test::open_store(o);
    BOOST_REQUIRE(store
                      ->append("s", expected_version::no_stream(),
                               std::vector<new_event>(3, varve_test::make_event("e", "x")))
                      .ok());
  }
  // The lock file was made while there was room: every slot works on a
  // full disk.
  auto filler = disk.fill_leaving(0);
  BOOST_CHECK_EQUAL(readers_in_child(o), 0);
  // A lock file made anew on a full disk: the open says so.
  std::filesystem::remove(filler);
  std::filesystem::remove(o.directory / "lock.mdb");
  filler = disk.fill_leaving(0);
  BOOST_CHECK_EQUAL(readers_in_child(o), 3);
  std::filesystem::remove(filler);
  BOOST_CHECK_EQUAL(readers_in_child(o), 0);
  BOOST_CHECK_EQUAL(varve_test::open_store(o)->read()->head(), 3u);
}
