// Several processes on one store: what one process caches (stream heads,
// stream ids) must not go stale when another appends, and concurrent
// appenders keep one gapless global order.
//
// The other processes run VARVE_APPENDER (appender_main.cpp).
#define BOOST_TEST_MODULE multiprocess
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "temp_dir.hpp"

#ifndef VARVE_APPENDER
#error "VARVE_APPENDER must name the varve_test_appender program"
#endif

extern char** environ;

using namespace varve;
using varve_test::make_events;
using varve_test::mentions_number;
using varve_test::store_fixture;
namespace fs = std::filesystem;

namespace {

/// A running appender process, its stdout and stderr going to files.
struct child {
  pid_t pid = -1;
  fs::path out;
  fs::path err;
};

/// What an appender reported.
struct report {
  int exit_code = -1;
  std::vector<global_position> positions;
  std::string errors;
};

child spawn_appender(const fs::path& scratch, const std::vector<std::string>& args) {
  static int serial = 0;
  child c;
  c.out = scratch / ("appender-" + std::to_string(++serial) + ".out");
  c.err = scratch / ("appender-" + std::to_string(serial) + ".err");

  posix_spawn_file_actions_t actions;
  BOOST_REQUIRE(posix_spawn_file_actions_init(&actions) == 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, c.out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, c.err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<std::string> all = {VARVE_APPENDER};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = posix_spawn(&c.pid, VARVE_APPENDER, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  BOOST_REQUIRE_MESSAGE(rc == 0, "posix_spawn " << VARVE_APPENDER << ": " << std::strerror(rc));
  return c;
}

report wait_for(const child& c) {
  report r;
  int status = 0;
  pid_t got;
  do {
    got = ::waitpid(c.pid, &status, 0);
  } while (got < 0 && errno == EINTR);
  BOOST_REQUIRE(got == c.pid);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream out(c.out);
  for (std::string line; std::getline(out, line);) {
    if (!line.empty()) r.positions.push_back(std::stoull(line));
  }
  std::ifstream err(c.err);
  std::ostringstream text;
  text << err.rdbuf();
  r.errors = text.str();
  return r;
}

/// Runs an appender to completion and requires it to succeed.
report run_appender(const fs::path& scratch, const std::vector<std::string>& args) {
  const auto r = wait_for(spawn_appender(scratch, args));
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "appender exited " << r.exit_code << ": " << r.errors);
  return r;
}

}  // namespace

struct multiprocess_fixture : store_fixture {
  std::string store_dir() const { return opts.directory.string(); }

  /// Requires the log to be 1..head without gaps, and every stream's versions
  /// to run 1..k in position order. Returns the events per stream.
  std::map<std::string, std::vector<recorded_event>> check_log_is_gapless() {
    const auto events = log();
    BOOST_TEST(events.size() == head());
    std::map<std::string, std::vector<recorded_event>> by_stream;
    std::size_t gaps = 0;
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (events[i].position != i + 1 && ++gaps <= 5) {
        BOOST_ERROR("log entry " << i << " is at position " << events[i].position);
      }
      auto& mine = by_stream[events[i].stream];
      if (events[i].version != mine.size() + 1 && ++gaps <= 5) {
        BOOST_ERROR("stream " << events[i].stream << " has version " << events[i].version
                              << " where " << mine.size() + 1 << " was due");
      }
      mine.push_back(events[i]);
    }
    BOOST_TEST(gaps == 0u);
    for (const auto& [name, list] : by_stream)
      BOOST_TEST(version_of(name) == list.size());
    return by_stream;
  }
};

BOOST_FIXTURE_TEST_SUITE(multiprocess, multiprocess_fixture)

BOOST_AUTO_TEST_CASE(a_process_that_holds_its_store_in_a_global_exits_cleanly) {
  // The appender keeps its store in a global: it is closed after main
  // returns, when the other statics are being destroyed.
  const auto r = run_appender(dir.path(), {store_dir(), "g", "2"});
  BOOST_TEST(r.positions.size() == 2u);
  BOOST_TEST(r.errors.empty());
}

BOOST_AUTO_TEST_CASE(a_process_that_holds_an_encrypted_store_in_a_global_exits_cleanly) {
  // Botan frees its pool of locked memory at exit, before the global store
  // is closed: the store's keys and ciphers must not be released into it.
  const fs::path key = dir / "master.key";
  std::ofstream(key) << std::string(64, 'e') << "\n";
  fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write);
  const std::string store = (dir / "encrypted").string();  // the fixture's store is plain
  const auto r = run_appender(dir.path(), {"--key-file", key.string(), store, "g", "2"});
  BOOST_TEST(r.positions.size() == 2u);
  BOOST_TEST(r.errors.empty());
  BOOST_TEST(
      run_appender(dir.path(), {"--key-file", key.string(), store, "g", "1", "2"}).positions ==
      std::vector<global_position>{3});
}

BOOST_AUTO_TEST_CASE(cached_heads_do_not_go_stale_when_another_process_appends) {
  const auto first = append("s", expected_version::exact(0), make_events(1, "mine"));
  BOOST_TEST(first.first_position == 1u);
  BOOST_TEST(version_of("s") == 1u);
  BOOST_TEST(version_of("other") == 0u);  // this process has looked: no such stream

  // Another process moves "s" to version 4 and creates "other" (5 events).
  const auto to_s = run_appender(dir.path(), {store_dir(), "s", "3", "1"});
  BOOST_TEST(to_s.positions == (std::vector<global_position>{2, 3, 4}),
             boost::test_tools::per_element());
  const auto to_other = run_appender(dir.path(), {store_dir(), "other", "5"});
  BOOST_TEST(to_other.positions == (std::vector<global_position>{5, 6, 7, 8, 9}),
             boost::test_tools::per_element());

  // This process's next append with the version it saw last is refused, and
  // the error names the actual version.
  auto stale = store->append("s", expected_version::exact(1), make_events(1, "stale"));
  VARVE_REQUIRE_ERRC(stale, errc::wrong_expected_version);
  BOOST_TEST_MESSAGE("message: " << stale.err().message());
  BOOST_TEST(mentions_number(stale.err().message(), 1), stale.err().message());
  BOOST_TEST(mentions_number(stale.err().message(), 4), stale.err().message());
  auto created_elsewhere =
      store->append("other", expected_version::no_stream(), make_events(1, "late"));
  VARVE_CHECK_ERRC(created_elsewhere, errc::wrong_expected_version);
  BOOST_TEST(head() == 9u);

  // `any` lands at the next position and version.
  const auto next = append("s", expected_version::any(), make_events(1, "mine"));
  BOOST_TEST(next.first_position == 10u);
  BOOST_TEST(next.first_version == 5u);
  const auto exact = append("s", expected_version::exact(5), make_events(1, "mine"));
  BOOST_TEST(exact.first_position == 11u);
  BOOST_TEST(exact.first_version == 6u);

  // A stream created here after the other process created one gets its own id.
  const auto third = append("third", expected_version::no_stream(), make_events(1, "mine"));
  BOOST_TEST(third.first_position == 12u);
  {
    auto tx = read();
    BOOST_TEST(tx.stream_count() == 3u);
    std::set<std::uint64_t> ids;
    for (const char* name : {"s", "other", "third"}) {
      auto info = tx.stream(name);
      VARVE_REQUIRE_OK(info);
      BOOST_REQUIRE_MESSAGE(info->has_value(), name);
      ids.insert((*info)->id);
      auto back = tx.stream_name((*info)->id);
      VARVE_REQUIRE_OK(back);
      BOOST_TEST(*back == name);
    }
    BOOST_TEST(ids.size() == 3u);
  }

  // And the other way round: the other process sees this one's writes.
  const auto to_third = run_appender(dir.path(), {store_dir(), "third", "2", "1"});
  BOOST_TEST(to_third.positions == (std::vector<global_position>{13, 14}),
             boost::test_tools::per_element());
  const auto other_again = append("other", expected_version::exact(5), make_events(1, "mine"));
  BOOST_TEST(other_again.first_position == 15u);
  BOOST_TEST(other_again.first_version == 6u);

  const auto streams = check_log_is_gapless();
  BOOST_TEST(head() == 15u);
  BOOST_TEST(streams.at("s").size() == 6u);
  BOOST_TEST(streams.at("other").size() == 6u);
  BOOST_TEST(streams.at("third").size() == 3u);
  for (const auto& e : streams.at("s")) {
    BOOST_TEST(e.payload.find("stale") == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(concurrent_appenders_in_three_processes_keep_one_gapless_order) {
  constexpr std::size_t per_process = 2000;
  const auto exact_child =
      spawn_appender(dir.path(), {store_dir(), "child-a", std::to_string(per_process), "0"});
  const auto any_child =
      spawn_appender(dir.path(), {store_dir(), "shared", std::to_string(per_process)});

  // Meanwhile this process alternates between the shared stream and its own.
  std::vector<global_position> mine;
  stream_version own_version = 0;
  for (std::size_t i = 0; i < per_process; ++i) {
    const bool shared = i % 2 == 0;
    const auto expected = shared ? expected_version::any() : expected_version::exact(own_version);
    auto r = store->append(shared ? "shared" : "parent", expected,
                           make_events(1, "parent-" + std::to_string(i)));
    BOOST_REQUIRE_MESSAGE(r.ok(), "append " << i << ": " << varve_test::describe(r));
    if (!shared) own_version = r->last_version;
    mine.push_back(r->first_position);
  }
  const auto a = wait_for(exact_child);
  const auto b = wait_for(any_child);
  BOOST_REQUIRE_MESSAGE(a.exit_code == 0, "exact appender: " << a.errors);
  BOOST_REQUIRE_MESSAGE(b.exit_code == 0, "any appender: " << b.errors);
  BOOST_REQUIRE_EQUAL(a.positions.size(), per_process);
  BOOST_REQUIRE_EQUAL(b.positions.size(), per_process);

  // Every reported position appears exactly once, and together they are 1..N.
  std::multiset<global_position> reported;
  using list_ptr = const std::vector<global_position>*;
  for (list_ptr list : {list_ptr{&mine}, list_ptr{&a.positions}, list_ptr{&b.positions}}) {
    BOOST_TEST(std::is_sorted(list->begin(), list->end()));
    reported.insert(list->begin(), list->end());
  }
  const std::size_t total = 3 * per_process;
  BOOST_TEST(reported.size() == total);
  std::set<global_position> distinct(reported.begin(), reported.end());
  BOOST_TEST(distinct.size() == total, "duplicate positions reported");
  BOOST_TEST(*distinct.begin() == 1u);
  BOOST_TEST(*distinct.rbegin() == total);
  BOOST_TEST(head() == total);

  const auto streams = check_log_is_gapless();
  BOOST_TEST(streams.at("child-a").size() == per_process);
  BOOST_TEST(streams.at("shared").size() == per_process + per_process / 2);
  BOOST_TEST(streams.at("parent").size() == per_process / 2);

  // Each reported position holds what its reporter wrote.
  const auto events = log();
  BOOST_REQUIRE_EQUAL(events.size(), total);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < per_process; ++i) {
    const auto& at_a = events[a.positions[i] - 1];
    const auto& at_b = events[b.positions[i] - 1];
    const auto& at_mine = events[mine[i] - 1];
    // Not ":" + std::to_string(i): GCC 12 at -O2 and above takes that for an
    // overlapping copy (a false -Wrestrict).
    const std::string suffix = std::string(":").append(std::to_string(i));
    const bool ok = at_a.stream == "child-a" && at_a.version == i + 1 &&
                    at_a.payload.ends_with(suffix) && at_b.stream == "shared" &&
                    at_b.payload.ends_with(suffix) &&
                    at_mine.payload == "parent-" + std::to_string(i) + "-0";
    if (!ok && ++wrong <= 5) BOOST_ERROR("append " << i << " is not where it was reported");
  }
  BOOST_TEST(wrong == 0u);

  // How much the three writers overlapped (informational: scheduling decides).
  std::size_t switches = 0;
  auto writer = [](const recorded_event& e) {
    if (e.stream == "child-a") return 'a';
    return e.payload.starts_with("parent-") ? 'p' : 'b';
  };
  for (std::size_t i = 1; i < events.size(); ++i) {
    if (writer(events[i]) != writer(events[i - 1])) ++switches;
  }
  BOOST_TEST_MESSAGE("the log switches writer " << switches << " times");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(processes_that_open_while_others_grow_the_map_all_succeed) {
  // Each process opens a store whose map is full, appends an event that
  // makes it grow, and closes it; the others open meanwhile and must adopt
  // the bigger map wherever they meet it (MDB_MAP_RESIZED), never fail.
  varve_test::temp_dir d;
  options o = varve_test::test_options(d / "store");
  o.map_size = std::uint64_t{64} << 10;
  varve_test::open_store(o).reset();
  constexpr int processes = 8, rounds = 8;
  std::vector<pid_t> pids;
  for (int p = 0; p < processes; ++p) {
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      for (int r = 0; r < rounds; ++r) {
        auto store = event_store::open(o);
        if (!store) {
          std::fprintf(stderr, "open: %s\n", store.err().to_string().c_str());
          ::_exit(1);
        }
        std::vector<new_event> events = {varve_test::make_event("big", std::string(40000, 'x'))};
        auto appended = (*store)->append("s-" + std::to_string(p), expected_version::any(), events);
        if (!appended) {
          std::fprintf(stderr, "append: %s\n", appended.err().to_string().c_str());
          ::_exit(1);
        }
        auto stats = (*store)->stats();
        if (!stats) {
          std::fprintf(stderr, "stats: %s\n", stats.err().to_string().c_str());
          ::_exit(1);
        }
      }
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  int failed = 0;
  for (pid_t pid : pids) {
    int status = 0;
    BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
    failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  BOOST_CHECK_EQUAL(failed, 0);
  auto store = varve_test::open_store(o);
  BOOST_CHECK_EQUAL(store->read()->head(), std::uint64_t{processes} * rounds);
  auto report = store->verify();
  VARVE_REQUIRE_OK(report);
  BOOST_CHECK_EQUAL(report->faults_total, 0u);
}
