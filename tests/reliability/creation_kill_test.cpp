// Killing a process while it creates a store, at every call it makes on the
// data file. A real appender process (varve_test_appender) creates a store
// and appends three events; strace(1) traces only the calls that touch its
// data.mdb and, in each round, sends it SIGKILL as it enters one of them:
// the k-th call of one kind (looking for the file, creating it, reading its
// first page, writing pages, writing a meta page, ...), for every kind and
// every k the appender makes. A first, untouched run counts the calls.
//
// After each kill the store must open (a creation cut short is not taken for
// a store whose data went missing), pass verify, hold every event the
// appender acknowledged, and take more appends from another process.
#define BOOST_TEST_MODULE creation_kill
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
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

/// Runs the appender on `store`, under strace when `strace_args` is not
/// empty, and collects the positions it printed.
appender_run run_appender(const fs::path& store, const std::string& key_file,
                          std::vector<std::string> strace_args, std::uint64_t exact_start = 0) {
  std::vector<std::string> args = std::move(strace_args);
  args.push_back(VARVE_APPENDER);
  if (!key_file.empty()) {
    args.push_back("--key-file");
    args.push_back(key_file);
  }
  args.insert(args.end(), {store.string(), "s", std::to_string(events)});
  if (exact_start != 0) args.push_back(std::to_string(exact_start));
  auto [pid, fd] = varve_test::spawn_with_stdout_pipe(args);
  appender_run run;
  for (std::string line = varve_test::read_line(fd); !line.empty();
       line = varve_test::read_line(fd))
    if (line.back() == '\n') run.acknowledged.push_back(std::stoull(line));
  ::close(fd);
  BOOST_REQUIRE(::waitpid(pid, &run.status, 0) == pid);
  return run;
}

/// strace's command line: it follows only the calls on `store`'s data.mdb.
std::vector<std::string> traced(const fs::path& store, std::vector<std::string> options) {
  std::vector<std::string> args{VARVE_STRACE,  "-qq", "-e",
                                "signal=none", "-P",  (store / "data.mdb").string()};
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
  // Looking for the file, creating it, reading its first page and writing
  // the first meta page are the calls of a creation.
  for (const char* call : {"newfstatat", "openat", "pread64", "pwrite64"})
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
  BOOST_TEST_MESSAGE(rounds << " kills, each at another call on data.mdb");
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
