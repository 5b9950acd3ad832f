// Killing a process while it creates a store, at every call it makes on the
// data file and on the creation marker. A real appender process
// (varve_test_appender) creates a store and appends three events; strace(1)
// traces only the calls that touch its data.mdb and data.mdb.creating and,
// in each round, sends it SIGKILL as it enters one of them: the k-th call of
// one kind (looking for the file, creating it, locking the marker, reading
// the first page, writing pages, writing a meta page, ...), for every kind
// and every k the appender makes. A first, untouched run counts the calls.
//
// After each kill the store must open (a creation cut short is not taken for
// a store whose data went missing), pass verify, hold every event the
// appender acknowledged, and take more appends from another process.
//
// Then creators that race: one is held (by strace) as it writes the store's
// first page while two more start, and is killed; the two must not both
// take the empty file for theirs.
#define BOOST_TEST_MODULE creation_kill
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../child_process.hpp"
#include "../storage/temp_dir.hpp"

using namespace varve;
namespace fs = std::filesystem;

namespace {

constexpr int events = 3;

struct appender_run {
  std::vector<global_position> acknowledged;  // positions the appender printed
  int status = 0;                             // from waitpid
};

struct started_appender {
  pid_t pid = 0;
  int out = -1;  // its standard output
};

/// Starts the appender on `store`, under strace when `strace_args` is not
/// empty.
started_appender start_appender(const fs::path& store, const std::string& key_file,
                                std::vector<std::string> strace_args,
                                std::uint64_t exact_start = 0) {
  std::vector<std::string> args = std::move(strace_args);
  args.push_back(VARVE_APPENDER);
  if (!key_file.empty()) {
    args.push_back("--key-file");
    args.push_back(key_file);
  }
  args.insert(args.end(), {store.string(), "s", std::to_string(events)});
  if (exact_start != 0) args.push_back(std::to_string(exact_start));
  auto [pid, fd] = varve_test::spawn_with_stdout_pipe(args);
  return {pid, fd};
}

/// Collects the positions a started appender printed, and its end.
appender_run finish_appender(started_appender started) {
  appender_run run;
  for (std::string line = varve_test::read_line(started.out); !line.empty();
       line = varve_test::read_line(started.out))
    if (line.back() == '\n') run.acknowledged.push_back(std::stoull(line));
  ::close(started.out);
  BOOST_REQUIRE(::waitpid(started.pid, &run.status, 0) == started.pid);
  return run;
}

appender_run run_appender(const fs::path& store, const std::string& key_file,
                          std::vector<std::string> strace_args, std::uint64_t exact_start = 0) {
  return finish_appender(start_appender(store, key_file, std::move(strace_args), exact_start));
}

/// strace's command line: it follows only the calls on `store`'s data.mdb
/// and its creation marker.
std::vector<std::string> traced(const fs::path& store, std::vector<std::string> options) {
  std::vector<std::string> args{VARVE_STRACE, "-qq",
                                "-e",         "signal=none",
                                "-P",         (store / "data.mdb").string(),
                                "-P",         (store / "data.mdb.creating").string()};
  args.insert(args.end(), options.begin(), options.end());
  return args;
}

/// The calls on data.mdb an untouched run makes, by kind: how many of each.
std::map<std::string, int> count_calls(const fs::path& dir, const std::string& key_file) {
  const fs::path store = dir / "counted";
  const fs::path log = dir / "calls.log";
  auto run = run_appender(store, key_file, traced(store, {"-o", log.string()}));
  // The exit status is not asked for: a sanitizer's leak check cannot run
  // under strace. What the appender printed says it did its work.
  BOOST_REQUIRE_EQUAL(run.acknowledged.size(), std::size_t{events});
  std::map<std::string, int> calls;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    const auto paren = line.find('(');
    if (line.starts_with("+++") || line.starts_with("---") || paren == std::string::npos) continue;
    ++calls[line.substr(0, paren)];
  }
  return calls;
}

void check_store(const fs::path& store, const std::string& key_file,
                 const std::vector<global_position>& acknowledged, const std::string& round) {
  std::uint64_t head = 0;
  {
    options o;
    o.directory = store;
    o.key_file = key_file;
    auto opened = event_store::open(o);
    BOOST_REQUIRE_MESSAGE(opened.ok(), round << ": " << varve_test::describe(opened));
    auto report = (*opened)->verify();
    BOOST_REQUIRE(report.ok());
    BOOST_REQUIRE_MESSAGE(report->faults.empty(),
                          round << ": " << (report->faults.empty() ? "" : report->faults.front()));
    auto txn = (*opened)->read().value();
    head = txn.head();
    BOOST_REQUIRE_MESSAGE(head >= acknowledged.size(),
                          round << ": " << acknowledged.size() << " acknowledged, head " << head);
    for (global_position p = 1; p <= head; ++p) {
      auto e = txn.event_at(p);
      BOOST_REQUIRE_MESSAGE(e.ok(), round << ": position " << p << ": " << varve_test::describe(e));
      BOOST_REQUIRE_EQUAL(e->version, p);
      BOOST_REQUIRE_EQUAL(txn.stream_name(e->stream_id).value(), "s");
    }
  }
  BOOST_REQUIRE_MESSAGE(!fs::exists(store / "data.mdb.creating"),
                        round << ": the creation marker outlived an open");
  // Another process appends where the killed one stopped.
  auto more = run_appender(store, key_file, {}, head);
  BOOST_REQUIRE_MESSAGE(WIFEXITED(more.status) && WEXITSTATUS(more.status) == 0,
                        round << ": the next appender failed");
  BOOST_REQUIRE_EQUAL(more.acknowledged.size(), std::size_t{events});
  BOOST_REQUIRE_EQUAL(more.acknowledged.front(), head + 1);
}

void kill_at_every_call(const std::string& key_file) {
  varve_test::temp_dir dir;
  const auto calls = count_calls(dir.path(), key_file);
  // Looking for the files, creating them, locking the marker, reading the
  // first page and writing the first meta page are the calls of a creation.
  for (const char* call : {"newfstatat", "openat", "flock", "pread64", "pwrite64", "unlink"})
    BOOST_REQUIRE_MESSAGE(calls.count(call), "no " << call << " on data.mdb was traced");
  int rounds = 0;
  for (const auto& [call, count] : calls) {
    for (int k = 1; k <= count; ++k) {
      const std::string round = call + " #" + std::to_string(k) + " of " + std::to_string(count);
      const fs::path store = dir / ("store-" + std::to_string(++rounds));
      auto run = run_appender(
          store, key_file,
          traced(store, {"-o", "/dev/null", "-e",
                         "inject=" + call + ":signal=KILL:when=" + std::to_string(k)}));
      // strace dies of the signal its tracee died of.
      BOOST_REQUIRE_MESSAGE(WIFSIGNALED(run.status) && WTERMSIG(run.status) == SIGKILL,
                            round << ": the appender was not killed (status " << run.status << ")");
      check_store(store, key_file, run.acknowledged, round);
    }
  }
  BOOST_TEST_MESSAGE(rounds << " kills, each at another call on data.mdb or its marker");
}

}  // namespace

BOOST_AUTO_TEST_CASE(
    a_store_killed_at_any_call_of_its_creation_opens_and_keeps_what_it_acknowledged) {
  kill_at_every_call({});
}

BOOST_AUTO_TEST_CASE(an_encrypted_store_killed_at_any_call_of_its_creation_opens_with_its_key) {
  varve_test::temp_dir dir;
  const fs::path key = dir / "master.key";
  {
    std::ofstream out(key);
    out << std::string(64, 'c') << "\n";
  }
  BOOST_REQUIRE(::chmod(key.c_str(), 0600) == 0);
  kill_at_every_call(key.string());
}

namespace {

/// The one child of `parent` (strace's tracee).
pid_t only_child(pid_t parent) {
  const std::string file =
      "/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) + "/children";
  std::ifstream in(file);
  pid_t child = 0;
  BOOST_REQUIRE_MESSAGE(in >> child, "no child process listed in " << file);
  return child;
}

void race_creators(const std::string& key_file, int rounds) {
  varve_test::temp_dir dir;
  for (int r = 1; r <= rounds; ++r) {
    const std::string round = "round " + std::to_string(r);
    const fs::path store = dir / ("race-" + std::to_string(r));
    // The creator stops for 2 s as it enters its first write of data.mdb:
    // the file is made and empty, and the creator holds LMDB's lock (and
    // the creation lock).
    auto creator = start_appender(
        store, key_file,
        traced(store, {"-o", "/dev/null", "-e", "inject=pwrite64:delay_enter=2000000:when=1"}));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!fs::exists(store / "data.mdb") && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    BOOST_REQUIRE_MESSAGE(fs::exists(store / "data.mdb"),
                          round << ": the creator made no data.mdb");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    BOOST_REQUIRE_EQUAL(fs::file_size(store / "data.mdb"), 0u);
    // Each waiter is held a moment as it enters its own first write of
    // data.mdb, the second longer: were both to find the file empty once
    // the creator is gone, the second would write the store's first pages
    // over the commits the first had made meanwhile.
    auto held_for = [&](int us) {
      return traced(store, {"-o", "/dev/null", "-e",
                            "inject=pwrite64:delay_enter=" + std::to_string(us) + ":when=1"});
    };
    auto first = start_appender(store, key_file, held_for(100000));
    auto second = start_appender(store, key_file, held_for(500000));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // both wait for the creator
    BOOST_REQUIRE(::kill(only_child(creator.pid), SIGKILL) == 0);
    auto killed = finish_appender(creator);
    BOOST_REQUIRE_MESSAGE(WIFSIGNALED(killed.status) && WTERMSIG(killed.status) == SIGKILL,
                          round << ": the creator was not killed (status " << killed.status << ")");
    BOOST_REQUIRE(killed.acknowledged.empty());
    std::set<global_position> acknowledged;
    for (auto* started : {&first, &second}) {
      auto run = finish_appender(*started);
      // Its exit status is not asked for (a sanitizer's leak check cannot
      // run under strace): what it printed says it did its work.
      BOOST_REQUIRE_MESSAGE(run.acknowledged.size() == std::size_t{events},
                            round << ": a waiting appender acknowledged " << run.acknowledged.size()
                                  << " of " << events << " events (status " << run.status << ")");
      acknowledged.insert(run.acknowledged.begin(), run.acknowledged.end());
    }
    // Six distinct positions, 1 to 6: neither overwrote the other's.
    BOOST_REQUIRE_EQUAL(acknowledged.size(), std::size_t{2 * events});
    BOOST_REQUIRE_EQUAL(*acknowledged.rbegin(), global_position{2 * events});
    check_store(store, key_file, {acknowledged.begin(), acknowledged.end()}, round);
    {
      options o;
      o.directory = store;
      o.key_file = key_file;
      BOOST_REQUIRE_EQUAL((*event_store::open(o))->read()->head(), global_position{3 * events});
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(creators_waiting_for_one_killed_mid_creation_keep_what_they_acknowledged) {
  race_creators({}, 4);
}
