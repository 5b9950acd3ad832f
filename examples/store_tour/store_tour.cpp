// A tour of the storage core, run by scripts/demo.sh: appends orders to many
// streams in batches (group commit through event_store::write), reads them
// back from the log and per stream, and prints what it did and how fast.
//
//   varve_store_tour [DATA_DIR] [EVENTS]      (defaults: var/demo, 200000)
#include <varve/storage/event_store.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

int fail(const varve::error& e) {
  std::fprintf(stderr, "store_tour: %s\n", e.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  varve::options opts;
  opts.directory = argc > 1 ? argv[1] : "var/demo";
  const std::uint64_t events = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 200000;
  constexpr std::uint64_t streams = 1000, batch = 1000;

  auto opened = varve::event_store::open(opts);
  if (!opened) return fail(opened.err());
  varve::event_store& store = **opened;
  auto before = store.stats();
  if (!before) return fail(before.err());
  std::printf("store %s (sync=%s): %llu events in %llu streams before this run\n",
              opts.directory.c_str(), std::string(varve::to_string(opts.sync)).c_str(),
              static_cast<unsigned long long>(before->head),
              static_cast<unsigned long long>(before->streams));

  // Append: each write() is one transaction and one fsync; each request in it
  // targets one stream, so one bad request would fail alone.
  const std::string payload(100, 'x');
  std::uint64_t appended = 0, commits = 0;
  auto t0 = clock_type::now();
  while (appended < events) {
    std::vector<varve::write_request> requests;
    for (std::uint64_t i = 0; i < batch && appended + i < events; ++i) {
      const std::uint64_t n = appended + i;
      varve::new_event e{.type = n % streams == 0 ? "order_placed" : "item_added",
                         .payload = payload,
                         .metadata = R"({"source":"store_tour"})"};
      requests.push_back({.appends = {{.stream = "order-" + std::to_string(n % streams),
                                       .expected = varve::expected_version::any(),
                                       .events = {e}}}});
    }
    auto outcomes = store.write(requests);
    if (!outcomes) return fail(outcomes.err());
    for (auto& o : *outcomes)
      if (!o) return fail(o.err());
    appended += requests.size();
    ++commits;
  }
  const double append_s = seconds_since(t0);
  std::printf("appended %llu events to %llu streams in %llu commits: %.2f s, %.0f events/s\n",
              static_cast<unsigned long long>(appended), static_cast<unsigned long long>(streams),
              static_cast<unsigned long long>(commits), append_s, appended / append_s);

  // Scan the whole log in one read transaction, zero copy.
  auto txn = store.read();
  if (!txn) return fail(txn.err());
  std::uint64_t scanned = 0, bytes = 0;
  auto count = [&](const varve::event_view& e) {
    ++scanned;
    bytes += e.payload.size();
    return true;
  };
  t0 = clock_type::now();
  auto n = txn->scan_log(1, varve::direction::forward, SIZE_MAX, count);
  if (!n) return fail(n.err());
  const double scan_s = seconds_since(t0);
  std::printf("scanned the log: %llu events, %llu payload bytes in %.3f s, %.0f events/s\n",
              static_cast<unsigned long long>(scanned), static_cast<unsigned long long>(bytes),
              scan_s, scanned / scan_s);

  // Read one stream back, newest first.
  auto last = txn->read_stream("order-7", varve::from_end, varve::direction::backward, 3);
  if (!last) return fail(last.err());
  std::printf("the newest events of order-7:\n");
  for (const auto& e : *last)
    std::printf("  position %llu  version %llu  %.*s  id %s\n",
                static_cast<unsigned long long>(e.position),
                static_cast<unsigned long long>(e.version), static_cast<int>(e.type.size()),
                e.type.data(), e.id.to_string().c_str());

  // A conflicting append is refused and names both versions.
  auto info = txn->stream("order-7");
  if (!info || !*info) return 1;
  auto stale = store.append("order-7", varve::expected_version::exact((*info)->version - 1),
                            {{varve::new_event{.type = "item_added", .payload = payload}}});
  std::printf("an append with a stale expected version: %s\n",
              stale ? "accepted (unexpected)" : stale.err().to_string().c_str());

  auto after = store.stats();
  if (!after) return fail(after.err());
  std::printf("store now: %llu events, %llu streams, %.1f MiB used of a %.0f MiB map\n",
              static_cast<unsigned long long>(after->head),
              static_cast<unsigned long long>(after->streams), after->used_bytes / 1048576.0,
              after->map_size / 1048576.0);
  std::printf("look inside: mdb_stat -a %s\n", opts.directory.c_str());
  return stale ? 1 : 0;
}
