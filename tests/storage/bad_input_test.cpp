// Hostile or broken input at the edges of a store: damaged and foreign data
// files, a directory that is a file, a second opener with another key, file
// modes, and expected versions that cannot hold.
#define BOOST_TEST_MODULE bad_input
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <array>
#include <fstream>

#include "temp_dir.hpp"

using namespace varve;
using varve_test::make_events;

namespace {

std::array<std::uint8_t, 32> key(std::uint8_t b) {
  std::array<std::uint8_t, 32> k{};
  k.fill(b);
  return k;
}

/// A child process that holds the store of `o` open (LMDB's lock held
/// shared, as by any reader or writer) from construction until release()
/// or destruction; fails the test when the child cannot open it.
class held_by_another_process {
 public:
  explicit held_by_another_process(const options& o) {
    int ready[2], done[2];
    BOOST_REQUIRE(::pipe(ready) == 0 && ::pipe(done) == 0);
    child_ = ::fork();
    BOOST_REQUIRE(child_ >= 0);
    if (child_ == 0) {
      ::close(ready[0]);
      ::close(done[1]);
      auto held = event_store::open(o);
      char c = held.ok() ? 'y' : 'n';
      (void)!::write(ready[1], &c, 1);
      (void)!::read(done[0], &c, 1);  // until the parent closes its end
      ::_exit(0);
    }
    ::close(ready[1]);
    ::close(done[0]);
    done_ = done[1];
    char c = 0;
    const bool answered = ::read(ready[0], &c, 1) == 1;
    ::close(ready[0]);
    if (!answered || c != 'y') release();
    BOOST_REQUIRE_MESSAGE(answered && c == 'y', "the other process could not open the store");
  }
  held_by_another_process(const held_by_another_process&) = delete;
  held_by_another_process& operator=(const held_by_another_process&) = delete;
  ~held_by_another_process() { release(); }

  /// Lets the child close the store and exit, and waits for it.
  void release() {
    if (child_ <= 0) return;
    ::close(done_);
    int status = 0;
    ::waitpid(child_, &status, 0);
    child_ = -1;
  }

 private:
  pid_t child_ = -1;
  int done_ = -1;
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_truncated_data_file_is_refused_at_open) {
  varve_test::temp_dir dir;
  auto o = varve_test::test_options(dir / "store");
  {
    auto s = varve_test::open_store(o);
    BOOST_REQUIRE(s->append("s", expected_version::any(), make_events(100)).ok());
  }
  std::filesystem::resize_file(dir / "store" / "data.mdb", 100);
  auto r = event_store::open(o);
  BOOST_REQUIRE(!r.ok());
  BOOST_CHECK(r.err().code() == errc::corruption || r.err().code() == errc::io_error);
  BOOST_TEST_MESSAGE(r.err().to_string());
}

BOOST_AUTO_TEST_CASE(a_data_file_cut_anywhere_is_refused_at_open_without_a_signal) {
  // Cut below its last page, a data file mapped by LMDB kills the first
  // reader of a missing page with SIGBUS: open must refuse it first.
  varve_test::temp_dir dir;
  auto o = varve_test::test_options(dir / "store");
  {
    auto s = varve_test::open_store(o);
    for (int i = 0; i < 40; ++i)
      BOOST_REQUIRE(
          s->append("s-" + std::to_string(i % 7), expected_version::any(), make_events(50)).ok());
  }
  const auto data = dir / "store" / "data.mdb";
  const auto size = std::filesystem::file_size(data);
  const auto copy = dir / "whole.mdb";
  std::filesystem::copy_file(data, copy);
  std::uint64_t seed = 42;
  int refused = 0;
  for (int round = 0; round < 30; ++round) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    const auto cut = 8192 + (seed >> 20) % (size - 8192);  // past both meta pages
    std::filesystem::copy_file(copy, data, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::resize_file(data, cut);
    auto r = event_store::open(o);
    BOOST_TEST_CONTEXT("cut at " << cut << " of " << size) {
      if (r.ok()) {
        // Only free pages at the end were cut (LMDB leaves them unwritten
        // too): the store is whole, and reads of every page succeed.
        auto report = (*r)->verify();
        VARVE_REQUIRE_OK(report);
        BOOST_CHECK(report->faults_total == 0u);
        VARVE_CHECK_OK((*r)->read_log());
        continue;
      }
      ++refused;
      VARVE_CHECK_ERRC(r, errc::corruption);
      BOOST_CHECK(r.err().message().find("truncated") != std::string::npos);
    }
  }
  BOOST_TEST(refused >= 20);  // most cuts take pages in use
  std::filesystem::copy_file(copy, data, std::filesystem::copy_options::overwrite_existing);
  BOOST_CHECK(varve_test::open_store(o)->verify()->faults_total == 0u);
}

BOOST_AUTO_TEST_CASE(an_empty_data_file_is_refused_not_made_a_new_store) {
  varve_test::temp_dir dir;
  auto o = varve_test::test_options(dir / "store");
  {
    auto s = varve_test::open_store(o);
    BOOST_REQUIRE(s->append("s", expected_version::any(), make_events(3)).ok());
  }
  std::filesystem::resize_file(dir / "store" / "data.mdb", 0);
  auto r = event_store::open(o);
  VARVE_REQUIRE_ERRC(r, errc::corruption);
  BOOST_TEST_MESSAGE(r.err().message());
  BOOST_CHECK(r.err().message().find("empty") != std::string::npos);
  BOOST_CHECK_EQUAL(std::filesystem::file_size(dir / "store" / "data.mdb"), 0u);
}

BOOST_AUTO_TEST_CASE(an_empty_data_file_with_the_creation_marker_is_created_anew) {
  // What a process killed after LMDB made data.mdb, before its first page,
  // leaves: nothing in it was ever acknowledged.
  varve_test::temp_dir dir;
  const auto store = dir / "store";
  std::filesystem::create_directories(store);
  std::ofstream(store / "data.mdb.creating").flush();
  std::ofstream(store / "data.mdb").flush();
  auto o = varve_test::test_options(store);
  {
    auto s = varve_test::open_store(o);
    BOOST_CHECK_EQUAL(s->read()->head(), 0u);
    BOOST_REQUIRE(s->append("s", expected_version::any(), make_events(2)).ok());
  }
  BOOST_CHECK(!std::filesystem::exists(store / "data.mdb.creating"));
  // From now on an empty data file is damage again.
  std::filesystem::resize_file(store / "data.mdb", 0);
  VARVE_CHECK_ERRC(event_store::open(o), errc::corruption);
}

BOOST_AUTO_TEST_CASE(a_creation_cut_short_within_its_meta_pages_is_created_anew_with_the_marker) {
  // What a creation whose first write the disk cut short leaves: the first
  // of LMDB's two meta pages, and the marker. Without the marker the same
  // file is refused, and left as it is.
  varve_test::temp_dir dir;
  { varve_test::open_store(varve_test::test_options(dir / "whole")); }
  std::string first_page(static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)), '\0');
  {
    std::ifstream in(dir / "whole" / "data.mdb", std::ios::binary);
    BOOST_REQUIRE(in.read(first_page.data(), static_cast<std::streamsize>(first_page.size())));
  }
  for (const bool marked : {false, true}) {
    BOOST_TEST_CONTEXT((marked ? "with" : "without") << " the marker") {
      const auto store = dir / (marked ? "marked" : "unmarked");
      std::filesystem::create_directories(store);
      std::ofstream(store / "data.mdb", std::ios::binary) << first_page;
      if (marked) std::ofstream(store / "data.mdb.creating").flush();
      auto o = varve_test::test_options(store);
      auto opened = event_store::open(o);
      if (!marked) {
        VARVE_CHECK_ERRC(opened, errc::corruption);
        BOOST_CHECK_EQUAL(std::filesystem::file_size(store / "data.mdb"), first_page.size());
        continue;
      }
      BOOST_REQUIRE_MESSAGE(opened.ok(), varve_test::describe(opened));
      BOOST_CHECK(!std::filesystem::exists(store / "data.mdb.creating"));
      BOOST_REQUIRE((*opened)->append("s", expected_version::no_stream(), make_events(2)).ok());
      opened->reset();
      BOOST_CHECK_EQUAL(varve_test::open_store(o)->read()->head(), 2u);
    }
  }
}

BOOST_AUTO_TEST_CASE(an_empty_data_file_is_refused_while_another_process_has_the_store_open) {
  // The other process holds LMDB's lock shared: it is not creating the
  // store, and the empty file is damage, not a store in the making.
  varve_test::temp_dir dir;
  auto o = varve_test::test_options(dir / "store");
  {
    auto s = varve_test::open_store(o);
    BOOST_REQUIRE(s->append("s", expected_version::any(), make_events(3)).ok());
  }
  held_by_another_process other(o);
  std::filesystem::resize_file(dir / "store" / "data.mdb", 0);
  auto r = event_store::open(o);
  other.release();
  VARVE_REQUIRE_ERRC(r, errc::corruption);
  BOOST_CHECK(r.err().message().find("empty") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_creation_marker_left_beside_a_whole_store_is_removed_at_open) {
  // A creator killed after another process created the store it raced with
  // leaves its marker: it must not excuse an emptied data file later.
  varve_test::temp_dir dir;
  auto o = varve_test::test_options(dir / "store");
  {
    auto s = varve_test::open_store(o);
    BOOST_REQUIRE(s->append("s", expected_version::any(), make_events(3)).ok());
  }
  std::ofstream(dir / "store" / "data.mdb.creating").flush();
  BOOST_CHECK_EQUAL(varve_test::open_store(o)->read()->head(), 3u);
  BOOST_CHECK(!std::filesystem::exists(dir / "store" / "data.mdb.creating"));
  std::filesystem::resize_file(dir / "store" / "data.mdb", 0);
  VARVE_CHECK_ERRC(event_store::open(o), errc::corruption);
}

BOOST_AUTO_TEST_CASE(a_creation_marker_that_is_a_symbolic_link_is_not_followed) {
  varve_test::temp_dir dir;
  const auto store = dir / "store";
  std::filesystem::create_directories(store);
  std::filesystem::create_symlink(dir / "elsewhere", store / "data.mdb.creating");
  auto r = event_store::open(varve_test::test_options(store));
  VARVE_REQUIRE_ERRC(r, errc::io_error);
  BOOST_TEST_MESSAGE(r.err().message());
  BOOST_CHECK(r.err().message().find("data.mdb.creating") != std::string::npos);
  BOOST_CHECK(!std::filesystem::exists(dir / "elsewhere"));
  BOOST_CHECK(!std::filesystem::exists(store / "data.mdb"));
}

BOOST_AUTO_TEST_CASE(a_creation_marker_that_is_not_a_regular_file_excuses_nothing) {
  varve_test::temp_dir dir;
  const auto store = dir / "store";
  std::filesystem::create_directories(store);
  BOOST_REQUIRE(::mkfifo((store / "data.mdb.creating").c_str(), 0600) == 0);
  std::ofstream(store / "data.mdb").flush();  // emptied: damage
  auto r = event_store::open(varve_test::test_options(store));
  VARVE_REQUIRE_ERRC(r, errc::io_error);
  BOOST_TEST_MESSAGE(r.err().message());
  BOOST_CHECK(r.err().message().find("not a regular file") != std::string::npos);
  BOOST_CHECK_EQUAL(std::filesystem::file_size(store / "data.mdb"), 0u);
}

BOOST_AUTO_TEST_CASE(a_failed_open_of_a_whole_store_leaves_no_creation_marker) {
  // A marker beside a store whose tables are committed (a creator killed
  // before it removed it, or one that raced another) goes at the next
  // open, even one that fails: it must not excuse an emptied file later.
  varve_test::temp_dir dir;
  auto o = varve_test::test_options(dir / "store");
  o.master_key = std::array<std::uint8_t, 32>{1};
  {
    auto s = varve_test::open_store(o);
    BOOST_REQUIRE(s->append("s", expected_version::any(), make_events(3)).ok());
  }
  const auto marker = dir / "store" / "data.mdb.creating";
  std::ofstream(marker).flush();
  auto wrong = o;
  wrong.master_key = std::array<std::uint8_t, 32>{2};
  VARVE_CHECK_ERRC(event_store::open(wrong), errc::auth_failed);
  BOOST_CHECK(!std::filesystem::exists(marker));
  std::ofstream(marker).flush();
  auto again = o;
  again.error_if_exists = true;
  VARVE_CHECK_ERRC(event_store::open(again), errc::invalid_argument);
  BOOST_CHECK(!std::filesystem::exists(marker));
  std::filesystem::resize_file(dir / "store" / "data.mdb", 0);
  VARVE_CHECK_ERRC(event_store::open(o), errc::corruption);
}

BOOST_AUTO_TEST_CASE(a_data_file_removed_under_an_open_store_is_not_made_a_new_store) {
  varve_test::temp_dir dir;
  auto o = varve_test::test_options(dir / "store");
  {
    auto s = varve_test::open_store(o);
    BOOST_REQUIRE(s->append("s", expected_version::any(), make_events(3)).ok());
  }
  held_by_another_process other(o);
  std::filesystem::remove(dir / "store" / "data.mdb");
  auto r = event_store::open(o);
  other.release();
  VARVE_REQUIRE_ERRC(r, errc::corruption);
  BOOST_TEST_MESSAGE(r.err().message());
  BOOST_CHECK(r.err().message().find("missing while process") != std::string::npos);
  BOOST_CHECK(!std::filesystem::exists(dir / "store" / "data.mdb"));
  BOOST_CHECK(!std::filesystem::exists(dir / "store" / "data.mdb.creating"));
}

BOOST_AUTO_TEST_CASE(a_foreign_data_file_is_refused_at_open) {
  varve_test::temp_dir dir;
  std::filesystem::create_directories(dir / "store");
  std::ofstream(dir / "store" / "data.mdb") << std::string(8192, 'x');
  auto r = event_store::open(varve_test::test_options(dir / "store"));
  BOOST_REQUIRE(!r.ok());
  BOOST_CHECK_EQUAL(r.err().code(), errc::corruption);
}

BOOST_AUTO_TEST_CASE(a_store_directory_that_is_a_file_is_refused) {
  varve_test::temp_dir dir;
  std::ofstream(dir / "store") << "not a directory";
  auto r = event_store::open(varve_test::test_options(dir / "store"));
  BOOST_REQUIRE(!r.ok());
  BOOST_CHECK_EQUAL(r.err().code(), errc::invalid_argument);
  BOOST_CHECK(r.err().message().find("not a directory") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_second_opener_with_another_key_is_refused_while_the_first_works_on) {
  varve_test::temp_dir dir;
  auto o = varve_test::test_options(dir / "store");
  o.master_key = key(1);
  auto first = varve_test::open_store(o);
  BOOST_REQUIRE(first->append("s", expected_version::any(), make_events(3)).ok());
  auto other = o;
  other.master_key = key(2);
  // The second opener is another process (one handle per store per process).
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    auto second = event_store::open(other);
    ::_exit(!second.ok() && second.err().code() == errc::auth_failed ? 0 : 1);
  }
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
  BOOST_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  BOOST_CHECK(first->append("s", expected_version::exact(3), make_events(1)).ok());
  BOOST_CHECK_EQUAL(first->read_stream("s")->size(), 4u);
}

BOOST_AUTO_TEST_CASE(data_and_lock_files_are_readable_by_the_owner_only) {
  varve_test::temp_dir dir;
  auto s = varve_test::open_store(varve_test::test_options(dir / "store"));
  BOOST_REQUIRE(s->append("s", expected_version::any(), make_events(1)).ok());
  for (const char* name : {"data.mdb", "lock.mdb"}) {
    struct stat st {};
    BOOST_REQUIRE(::stat((dir / "store" / name).c_str(), &st) == 0);
    BOOST_CHECK_MESSAGE((st.st_mode & 077) == 0,
                        name << " has mode " << std::oct << (st.st_mode & 0777));
  }
  struct stat st {};
  BOOST_REQUIRE(::stat((dir / "store").c_str(), &st) == 0);
  BOOST_CHECK_EQUAL(st.st_mode & 077, 0u);
}

BOOST_AUTO_TEST_CASE(expected_versions_that_cannot_hold_are_conflicts_that_write_nothing) {
  varve_test::store_fixture f;
  BOOST_REQUIRE(f.store->append("s", expected_version::any(), make_events(2)).ok());
  for (auto e : {expected_version::exact(~std::uint64_t{0}), expected_version::exact(3),
                 expected_version::no_stream()}) {
    auto r = f.store->append("s", e, make_events(1));
    BOOST_REQUIRE(!r.ok());
    BOOST_CHECK_EQUAL(r.err().code(), errc::wrong_expected_version);
  }
  auto missing = f.store->append("t", expected_version::stream_exists(), make_events(1));
  BOOST_CHECK(!missing.ok() && missing.err().code() == errc::wrong_expected_version);
  BOOST_CHECK_EQUAL(f.head(), 2u);
}
