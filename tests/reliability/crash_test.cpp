// The crash test: a writer process (concurrent appenders through the storage
// actor and an exactly-once projection, fsync on) is killed with SIGKILL at
// random moments; after each kill the store is reopened and checked:
// every acknowledged event is there with its payload, positions are gapless,
// the stream index and the type, category and tag indexes agree with the
// log (verify), no request is half written,
// and the projection's view equals a rebuild up to its cursor.
//
// Rounds: VARVE_CRASH_ROUNDS (default 20; scripts/stress.sh runs 200).
#define BOOST_TEST_MODULE crash
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "../child_process.hpp"
#include "../storage/temp_dir.hpp"

using namespace varve;

namespace {

struct acknowledged {
  std::string stream;
  stream_version version = 0;
  std::string payload;
};

/// Starts the writer with its stdout on a pipe; returns pid and read end.
std::pair<pid_t, int> start_writer(const std::string& dir, int writers) {
  return varve_test::spawn_with_stdout_pipe({VARVE_CRASH_WRITER, dir, std::to_string(writers)});
}

/// Collects the writer's report lines until the pipe closes.
void collect(int fd, std::map<global_position, acknowledged>& acks) {
  std::string buffer;
  char chunk[65536];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  std::istringstream lines(buffer);
  std::string line;
  while (std::getline(lines, line)) {
    if (lines.eof()) break;  // a line cut short by the kill was never complete
    std::istringstream in(line);
    global_position pos = 0;
    acknowledged a;
    in >> pos >> a.stream >> a.version >> a.payload;
    if (in) acks[pos] = a;
  }
}

/// "stream:version:req=PID-N:i/n" -> (stream, PID-N, n).
struct request_part {
  std::string stream, request;
  int parts = 0;
};
request_part parse(std::string_view payload) {
  request_part r;
  r.stream = std::string(payload.substr(0, payload.find(':')));
  const auto req = payload.find(":req=") + 5;
  const auto colon = payload.find(':', req);
  r.request = std::string(payload.substr(req, colon - req));
  const auto slash = payload.find('/', colon);
  r.parts = std::atoi(std::string(payload.substr(slash + 1)).c_str());
  return r;
}

void check_store(const std::string& dir, const std::map<global_position, acknowledged>& acks,
                 int round) {
  options o;
  o.directory = dir;
  auto opened = event_store::open(o);
  BOOST_REQUIRE_MESSAGE(opened.ok(), "round " << round << ": " << varve_test::describe(opened));
  auto& store = **opened;

  // Positions gapless, records decode, index and heads agree with the log.
  auto report = store.verify();
  BOOST_REQUIRE(report.ok());
  BOOST_REQUIRE_MESSAGE(
      report->faults.empty(),
      "round " << round << ": "
               << (report->faults.empty() ? std::string() : report->faults.front()));

  auto txn = store.read().value();
  // Every acknowledged event is there, with its payload, where it was acknowledged.
  for (const auto& [pos, a] : acks) {
    auto e = txn.event_at(pos);
    BOOST_REQUIRE_MESSAGE(e.ok(), "round " << round << ": acknowledged position " << pos
                                           << " is gone: " << varve_test::describe(e));
    BOOST_REQUIRE_EQUAL(e->payload, a.payload);
    BOOST_REQUIRE_EQUAL(txn.stream_name(e->stream_id).value(), a.stream);
    BOOST_REQUIRE_EQUAL(e->version, a.version);
  }
  // No half request: the parts of every request are all there.
  std::map<std::pair<std::string, std::string>, std::pair<int, int>> parts;  // (seen, expected)
  const auto head = txn.head();
  auto n = txn.scan_log(1, direction::forward, SIZE_MAX, [&](const event_view& e) {
    auto r = parse(e.payload);
    auto& p = parts[{r.stream, r.request}];
    ++p.first;
    p.second = r.parts;
    return true;
  });
  BOOST_REQUIRE(n.ok());
  for (const auto& [key, p] : parts)
    BOOST_REQUIRE_MESSAGE(p.first == p.second, "round " << round << ": request " << key.second
                                                        << " of " << key.first << " has " << p.first
                                                        << " of " << p.second << " events");

  // The projection's view equals a rebuild up to its cursor.
  const global_position cursor = txn.cursor("crash_view").value().value_or(0);
  BOOST_REQUIRE_LE(cursor, head);
  std::map<std::string, std::uint64_t> counts;
  auto rebuilt = txn.scan_log(1, direction::forward, cursor, [&](const event_view& e) {
    const std::string stream(txn.stream_name(e.stream_id).value());
    ++counts[stream];
    auto row = txn.view_get("crash_view", "event/" + std::to_string(e.position));
    BOOST_REQUIRE(row.ok());
    BOOST_REQUIRE_MESSAGE(*row && **row == stream + ":" + std::to_string(e.version),
                          "round " << round << ": view row for position " << e.position);
    return true;
  });
  BOOST_REQUIRE(rebuilt.ok());
  std::size_t rows = 0;
  auto scanned = txn.scan_view("crash_view", "event/", [&](std::string_view k, std::string_view) {
    if (!k.starts_with("event/")) return false;
    ++rows;
    return true;
  });
  BOOST_REQUIRE(scanned.ok());
  BOOST_REQUIRE_MESSAGE(rows == cursor, "round " << round << ": " << rows
                                                 << " event rows for a cursor at " << cursor);
  for (const auto& [stream, count] : counts) {
    auto v = txn.view_get("crash_view", "count/" + stream);
    BOOST_REQUIRE(v.ok() && *v);
    BOOST_REQUIRE_EQUAL(std::stoull(std::string(**v)), count);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(killing_the_writer_at_random_moments_loses_nothing_acknowledged) {
  const char* env = std::getenv("VARVE_CRASH_ROUNDS");
  const int rounds = env ? std::atoi(env) : 20;
  varve_test::temp_dir dir;
  const std::string store_dir = (dir / "store").string();
  std::map<global_position, acknowledged> acks;
  std::mt19937 rng(std::random_device{}());
  std::uint64_t killed_after_events = 0;
  for (int round = 1; round <= rounds; ++round) {
    auto [pid, fd] = start_writer(store_dir, 16);
    std::thread reader([&, fd = fd] { collect(fd, acks); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 400));
    BOOST_REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    reader.join();
    BOOST_REQUIRE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    killed_after_events = acks.size();
    check_store(store_dir, acks, round);
  }
  BOOST_TEST_MESSAGE(rounds << " rounds survived; " << killed_after_events
                            << " acknowledged events checked");
  BOOST_CHECK_GT(acks.size(), 0u);
}
