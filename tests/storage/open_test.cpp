// event_store::open: option checks, unusable paths, format version, reopen,
// and the on-disk layout as an independent reader (mdb_stat) sees it.
#define BOOST_TEST_MODULE open
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "raw_lmdb.hpp"
#include "store_files.hpp"
#include "temp_dir.hpp"

#ifndef VARVE_MDB_STAT
#error "VARVE_MDB_STAT must name the mdb_stat program"
#endif

using namespace varve;
using varve_test::make_events;
using varve_test::mentions_number;
using varve_test::open_store;
using varve_test::temp_dir;
using varve_test::test_options;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << bytes;
}

/// Runs a shell command and returns what it printed on stdout.
std::string run(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  BOOST_REQUIRE_MESSAGE(pipe != nullptr, "popen " << command);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;)
    out.append(buf, n);
  *status = ::pclose(pipe);
  return out;
}

void fill(event_store& store, const std::string& stream, std::size_t n) {
  auto r = store.append(stream, expected_version::any(), make_events(n, stream));
  BOOST_REQUIRE_MESSAGE(r.ok(), varve_test::describe(r));
}

/// Kilobytes of `file` this process has mapped in its page tables (Rss
/// over its mappings in /proc/self/smaps).
std::uint64_t mapped_kib(const fs::path& file) {
  std::ifstream smaps("/proc/self/smaps");
  std::uint64_t kib = 0;
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    // A mapping's first line starts with its address range: "lo-hi perms ...".
    const bool header = !line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
                        line.find('-') < line.find(' ');
    if (header) {
      inside =
          line.size() >= file.string().size() &&
          line.compare(line.size() - file.string().size(), std::string::npos, file.string()) == 0;
    } else if (inside && line.rfind("Rss:", 0) == 0) {
      kib += std::stoull(line.substr(4));
    }
  }
  return kib;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(opening)

BOOST_AUTO_TEST_CASE(bad_options_are_refused_naming_the_option) {
  temp_dir dir;
  struct bad_case {
    std::string option;
    options opts;
  };
  std::vector<bad_case> cases;
  auto base = [&] { return test_options(dir / "store"); };

  cases.push_back({"directory", base()});
  cases.back().opts.directory.clear();
  cases.push_back({"map_size", base()});
  cases.back().opts.map_size = 0;
  cases.push_back({"map_size", base()});
  cases.back().opts.map_size = std::uint64_t{32} << 10;  // a new store's tables need more
  cases.push_back({"max_map_size", base()});
  cases.back().opts.max_map_size = 0;
  cases.push_back({"max_map_size", base()});
  cases.back().opts.map_size = std::uint64_t{8} << 20;
  cases.back().opts.max_map_size = std::uint64_t{4} << 20;
  cases.push_back({"max_event_bytes", base()});
  cases.back().opts.max_event_bytes = 0;
  cases.push_back({"max_readers", base()});
  cases.back().opts.max_readers = 0;

  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("bad " << c.option) {
      auto r = event_store::open(c.opts);
      VARVE_CHECK_ERRC(r, errc::invalid_argument);
      if (!r.ok()) {
        BOOST_TEST_MESSAGE(c.option << ": " << r.err().message());
        BOOST_TEST(r.err().message().find(c.option) != std::string::npos,
                   "message names " << c.option << ": " << r.err().message());
      }
    }
  }

  // map_size == max_map_size is fine.
  auto equal = base();
  equal.map_size = equal.max_map_size = std::uint64_t{4} << 20;
  auto r = event_store::open(equal);
  VARVE_CHECK_OK(r);
}

BOOST_AUTO_TEST_CASE(directory_that_cannot_be_written_is_refused) {
  temp_dir dir;
  if (::geteuid() == 0) {
    // Root writes through chmod 0500; a path below a regular file fails for
    // anyone.
    write_file(dir / "afile", "not a directory");
    auto r = event_store::open(test_options(dir / "afile" / "sub"));
    VARVE_CHECK_ERRC(r, errc::invalid_argument);
    if (!r.ok()) BOOST_TEST_MESSAGE("below a file: " << r.err().message());
    BOOST_TEST_MESSAGE("running as root: chmod 0500 does not stop writes; chmod case skipped");
    return;
  }
  const auto ro = dir / "readonly";
  fs::create_directory(ro);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  auto inside = event_store::open(test_options(ro / "store"));
  VARVE_CHECK_ERRC(inside, errc::invalid_argument);
  auto itself = event_store::open(test_options(ro));
  VARVE_CHECK_ERRC(itself, errc::invalid_argument);
  fs::permissions(ro, fs::perms::owner_all);
}

BOOST_AUTO_TEST_CASE(store_path_that_is_a_regular_file_is_refused) {
  temp_dir dir;
  const std::string content = "precious bytes\n";
  write_file(dir / "afile", content);
  auto r = event_store::open(test_options(dir / "afile"));
  VARVE_CHECK_ERRC(r, errc::invalid_argument);
  BOOST_TEST(fs::is_regular_file(dir / "afile"));
  BOOST_TEST(slurp(dir / "afile") == content);
}

BOOST_AUTO_TEST_CASE(missing_directory_without_create_if_missing_is_refused) {
  temp_dir dir;
  auto o = test_options(dir / "missing");
  o.create_if_missing = false;
  auto r = event_store::open(o);
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST((r.err().code() == errc::not_found || r.err().code() == errc::invalid_argument),
             "got " << r.err().to_string());
  BOOST_TEST(!fs::exists(dir / "missing"));
}

BOOST_AUTO_TEST_CASE(an_open_without_create_if_missing_creates_nothing_in_an_empty_directory) {
  temp_dir dir;
  fs::create_directories(dir / "empty");
  auto o = test_options(dir / "empty");
  o.create_if_missing = false;
  VARVE_CHECK_ERRC(event_store::open(o), errc::not_found);
  BOOST_CHECK(!fs::exists(dir / "empty" / "data.mdb"));
  BOOST_CHECK(!fs::exists(dir / "empty" / "data.mdb.creating"));
}

BOOST_AUTO_TEST_CASE(an_open_without_create_if_missing_leaves_a_creation_cut_short_to_its_creator) {
  // An encrypted store whose creator was killed before its tables: a tool
  // that only reads must not complete it as a plain store.
  temp_dir dir;
  const auto store = dir / "store";
  fs::create_directories(store);
  std::ofstream(store / "data.mdb.creating").flush();
  std::ofstream(store / "data.mdb").flush();
  auto o = test_options(store);
  o.create_if_missing = false;
  auto r = event_store::open(o);
  VARVE_REQUIRE_ERRC(r, errc::not_found);
  BOOST_TEST_MESSAGE(r.err().message());
  BOOST_CHECK(fs::exists(store / "data.mdb.creating"));
  o.create_if_missing = true;
  o.master_key = std::array<std::uint8_t, 32>{7};
  auto created = event_store::open(o);
  BOOST_REQUIRE_MESSAGE(created.ok(), varve_test::describe(created));
  BOOST_CHECK((*created)->encrypted());
  BOOST_CHECK(!fs::exists(store / "data.mdb.creating"));
}

BOOST_AUTO_TEST_CASE(missing_directory_is_created_with_mode_0700) {
  temp_dir dir;
  auto store = open_store(test_options(dir / "created"));
  BOOST_TEST(fs::is_directory(dir / "created"));
  struct stat st {};
  BOOST_REQUIRE(::stat((dir / "created").c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0700u);
}

BOOST_AUTO_TEST_CASE(newer_format_version_is_refused_and_the_data_left_untouched) {
  temp_dir dir;
  const auto path = dir / "store";
  {
    auto store = open_store(test_options(path));
    fill(*store, "kept", 3);
  }
  {
    varve_test::raw_env env(path);
    const auto version = env.get("meta", "format_version");
    BOOST_REQUIRE_MESSAGE(version.has_value(), "meta has format_version");
    BOOST_TEST(*version == varve_test::le32(4), "format_version is u32 LE 4");
    env.put("meta", "format_version", varve_test::le32(99));
  }
  const auto data_before = slurp(path / "data.mdb");

  auto refused = event_store::open(test_options(path));
  VARVE_REQUIRE_ERRC(refused, errc::format_version);
  BOOST_TEST_MESSAGE("message: " << refused.err().message());
  BOOST_TEST(mentions_number(refused.err().message(), 99), refused.err().message());

  BOOST_TEST((slurp(path / "data.mdb") == data_before), "data.mdb changed by a refused open");
  {
    varve_test::raw_env env(path);
    BOOST_TEST(env.get("meta", "format_version").value_or("") == varve_test::le32(99));
    BOOST_TEST(env.entries("events", MDB_INTEGERKEY) == 3u);
    env.put("meta", "format_version", varve_test::le32(2));
  }

  // Put back, the store opens with everything in it.
  auto store = open_store(test_options(path));
  auto events = store->read_stream("kept");
  VARVE_REQUIRE_OK(events);
  BOOST_TEST(events->size() == 3u);
}

BOOST_AUTO_TEST_CASE(reopen_after_close_finds_the_store_as_it_was) {
  temp_dir dir;
  auto o = test_options(dir / "store");
  {
    auto store = open_store(o);
    fill(*store, "one", 2);
    fill(*store, "two", 1);
    BOOST_TEST(store->opts().directory == o.directory);
  }
  // Reopen with other (valid) options: sizes and durability are not stored.
  o.sync = durability::sync;
  o.map_size = std::uint64_t{2} << 20;
  for (int round = 0; round < 3; ++round) {
    auto store = open_store(o);
    auto st = store->stats();
    VARVE_REQUIRE_OK(st);
    BOOST_TEST(st->head == 3u + round);
    BOOST_TEST(st->streams == 2u);
    BOOST_TEST(st->map_size >= o.map_size);
    fill(*store, "one", 1);
  }
  auto store = open_store(o);
  auto one = store->read_stream("one");
  VARVE_REQUIRE_OK(one);
  BOOST_REQUIRE_EQUAL(one->size(), 5u);
  BOOST_TEST(one->back().version == 5u);
  BOOST_TEST(one->back().position == 6u);
}

BOOST_AUTO_TEST_CASE(open_maps_the_pages_held_in_the_page_cache_unless_told_not_to) {
  temp_dir dir;
  auto o = test_options(dir / "store");
  {
    auto store = open_store(o);
    // About 4 MB, every page of it just written: in the page cache.
    const std::vector<new_event> events(1000, varve_test::make_event("t", std::string(100, 'x')));
    for (int i = 0; i < 20; ++i) {
      auto r = store->append("s-" + std::to_string(i), expected_version::any(), events);
      VARVE_REQUIRE_OK(r);
    }
  }
  const auto used_kib = fs::file_size(dir / "store" / "data.mdb") / 1024;
  BOOST_REQUIRE_GT(used_kib, 2000u);
  const fs::path data = fs::canonical(dir / "store" / "data.mdb");

  o.prefault_map = false;
  {
    auto store = open_store(o);
    BOOST_TEST(mapped_kib(data) < used_kib / 4);  // what opening read: metas, a few pages
  }
  o.prefault_map = true;
  auto store = open_store(o);
  void* probe = ::mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  BOOST_REQUIRE(probe != MAP_FAILED);
  const bool kernel_populates = ::madvise(probe, 4096, 22 /* MADV_POPULATE_READ */) == 0;
  ::munmap(probe, 4096);
  if (!kernel_populates) {
    BOOST_TEST_MESSAGE("this kernel lacks MADV_POPULATE_READ (Linux 5.14): open maps nothing");
    return;
  }
  BOOST_TEST(mapped_kib(data) >= used_kib * 9 / 10);
  auto all = store->read_log(1, direction::forward, SIZE_MAX);  // and the store reads as before
  VARVE_REQUIRE_OK(all);
  BOOST_TEST(all->size() == 20000u);
}

BOOST_AUTO_TEST_CASE(garbage_data_file_is_refused_as_corruption) {
  temp_dir dir;
  const auto path = dir / "store";
  fs::create_directory(path);
  write_file(path / "data.mdb", std::string(64 * 1024, '\xa5'));
  auto r = event_store::open(test_options(path));
  VARVE_CHECK_ERRC(r, errc::corruption);
  BOOST_TEST(slurp(path / "data.mdb") == std::string(64 * 1024, '\xa5'));
}

BOOST_AUTO_TEST_CASE(mdb_stat_lists_the_named_databases) {
  temp_dir dir;
  const auto path = dir / "store";
  {
    auto store = open_store(test_options(path));
    fill(*store, "s", 2);
    VARVE_REQUIRE_OK(store->save_cursor("c", 1));
  }
  int status = 0;
  const std::string out =
      run(std::string(VARVE_MDB_STAT) + " -a '" + path.string() + "' 2>&1", &status);
  BOOST_TEST_REQUIRE(status == 0, "mdb_stat failed:\n" << out);
  std::istringstream lines(out);
  std::vector<std::string> names;
  for (std::string line; std::getline(lines, line);) {
    const std::string prefix = "Status of ";
    if (line.rfind(prefix, 0) == 0) names.push_back(line.substr(prefix.size()));
  }
  for (const char* db : {"meta", "events", "stream_names", "stream_heads", "stream_index",
                         "cursors", "keys", "snapshots"}) {
    BOOST_TEST((std::find(names.begin(), names.end(), db) != names.end()), "mdb_stat lists "
                                                                               << db << ":\n"
                                                                               << out);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(a_second_handle_on_a_store_in_one_process_is_refused) {
  // LMDB allows one environment per file per process: a second one would
  // drop the first one's locks when it closes.
  varve_test::temp_dir dir;
  const auto o = test_options(dir / "store");
  auto first = open_store(o);
  BOOST_REQUIRE(first->append("s", expected_version::any(), {{varve_test::make_event("e")}}).ok());
  auto second = event_store::open(o);
  VARVE_REQUIRE_ERRC(second, errc::busy);
  BOOST_TEST_MESSAGE(second.err().message());
  BOOST_CHECK(second.err().message().find("already open in this process") != std::string::npos);
  // The same directory under another name is the same store.
  std::filesystem::create_directory_symlink(o.directory, dir / "alias");
  VARVE_CHECK_ERRC(event_store::open(test_options(dir / "alias")), errc::busy);
  BOOST_CHECK(first->append("s", expected_version::exact(1), {{varve_test::make_event("e")}}).ok());
  first.reset();
  auto again = event_store::open(o);  // closed: it opens again
  VARVE_REQUIRE_OK(again);
  BOOST_CHECK_EQUAL((*again)->read()->head(), 2u);
}

BOOST_AUTO_TEST_CASE(error_if_exists_opens_only_a_store_it_creates) {
  varve_test::temp_dir dir;
  auto o = test_options(dir / "store");
  o.error_if_exists = true;
  {
    auto created = event_store::open(o);
    VARVE_REQUIRE_OK(created);
    BOOST_REQUIRE(
        (*created)->append("s", expected_version::any(), {{varve_test::make_event("e")}}).ok());
  }
  auto again = event_store::open(o);
  VARVE_REQUIRE_ERRC(again, errc::invalid_argument);
  BOOST_CHECK(again.err().message().find("already exists") != std::string::npos);
  // That it exists is the answer, before whether a key fits it.
  auto keyed = o;
  keyed.master_key = std::array<std::uint8_t, 32>{};
  auto with_key = event_store::open(keyed);
  VARVE_REQUIRE_ERRC(with_key, errc::invalid_argument);
  BOOST_CHECK(with_key.err().message().find("already exists") != std::string::npos);
  o.error_if_exists = false;
  BOOST_CHECK_EQUAL(open_store(o)->read()->head(), 1u);  // untouched
}

/// A store directory that this process is creating: it holds the creation
/// lock on the marker, data.mdb.creating, and has created nothing yet.
struct creation_in_progress {
  temp_dir dir;
  fs::path store = dir / "store";
  std::optional<detail::creation_guard> guard;

  creation_in_progress() {
    fs::create_directories(store);
    auto creating = detail::prepare_data_file(store);
    BOOST_REQUIRE_MESSAGE(creating.ok() && creating->has_value(), "no creation lock taken");
    guard.emplace(std::move(**creating));
  }
};

BOOST_FIXTURE_TEST_CASE(a_child_forked_while_a_store_is_created_does_not_hold_its_creation_lock,
                        creation_in_progress) {
  // One thread creates the store, holding the creation lock, while another
  // forks: the child inherits the marker's descriptor. Once the creator
  // lets go, the next opener must not wait for the child (10 s, then busy).
  int held[2];
  BOOST_REQUIRE(::pipe(held) == 0);
  const pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    ::close(held[1]);
    char c;
    (void)!::read(held[0], &c, 1);  // lives on until the parent closes its end
    ::_exit(0);
  }
  ::close(held[0]);
  guard.reset();  // the creator stops before creating anything: the marker stays
  auto opened = event_store::open(test_options(store));
  ::close(held[1]);
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(child, &status, 0), child);
  BOOST_REQUIRE_MESSAGE(opened.ok(), varve_test::describe(opened));
  BOOST_CHECK((*opened)->append("s", expected_version::no_stream(), make_events(1)).ok());
  BOOST_CHECK(!fs::exists(store / "data.mdb.creating"));
}

BOOST_FIXTURE_TEST_CASE(the_creation_lock_holds_while_the_process_opens_and_closes_the_marker,
                        creation_in_progress) {
  // A thread of the creating process that reads the marker (a backup, a
  // file scanner) must not release the lock to another creator.
  { std::ifstream(store / "data.mdb.creating").get(); }
  const pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    const int fd = ::open((store / "data.mdb.creating").c_str(), O_RDWR | O_CLOEXEC);
    const bool locked_out = fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::_exit(locked_out ? 0 : 1);
  }
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(child, &status, 0), child);
  BOOST_CHECK_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "another process could take the creation lock");
}
