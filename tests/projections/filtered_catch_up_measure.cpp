// A measurement run by hand (not a test; it asserts no timing): the
// catch-up of an exactly-once projection of a rare event type over a long
// log, reading through the store's type index and reading every event.
//
//   build/tests/projections_filtered_catch_up_measure [EVENTS [RARE_EVERY [RUNS]]]
//
// Defaults: 1,000,000 events in 1000 streams, one in 1000 of type "rare"
// (0.1%), the rest "common"; 3 runs of each. Each run is a fresh engine
// from position 0 (varve::testkit::projection_harness: the projection
// engine and the local source's reader, synchronously, commits as the
// storage actor makes them) over the same store, no fsync. Prints the
// median and every run (with the minor page faults it took: the first run
// of a process maps in the pages it reads), and checks that both handled
// the same events.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <varve/testkit/projection_harness.hpp>

using namespace varve;
using varve::testkit::projection_harness;

namespace {

/// Minor page faults of this process so far (pages of the map touched for
/// the first time count here).
long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

projection_spec rare_projection(bool indexed, std::uint64_t* handled) {
  projection_spec spec;
  spec.name = "rare";
  spec.filter.event_types = {"rare"};
  spec.filter.indexed = indexed;
  spec.handle = [handled](const delivered_event& d, view_batch& view) -> result<void> {
    ++*handled;
    view.put("last", std::to_string(d.event.position));
    return {};
  };
  return spec;
}

void fill(projection_harness& h, std::uint64_t events, std::uint64_t rare_every) {
  constexpr std::uint64_t per_append = 1000, streams = 1000;
  std::vector<new_event> batch;
  for (std::uint64_t i = 0; i < events;) {
    batch.clear();
    const std::uint64_t n = std::min(per_append, events - i);
    for (std::uint64_t k = 0; k < n; ++k, ++i)
      batch.push_back(new_event{.type = (i + 1) % rare_every == 0 ? "rare" : "common",
                                .payload = R"({"amount":100,"note":"some bytes of payload"})"});
    h.given_events("account-" + std::to_string((i / per_append) % streams), batch);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const std::uint64_t rare_every = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1000;
  const int runs = argc > 3 ? std::atoi(argv[3]) : 3;
  std::printf("catch-up of a projection of 1 type in %llu (%llu events, %d runs each)\n",
              static_cast<unsigned long long>(rare_every), static_cast<unsigned long long>(events),
              runs);
  double median[2] = {0, 0};
  std::uint64_t handled_by[2] = {0, 0};
  for (bool indexed : {true, false}) {
    std::uint64_t handled = 0;
    projection_harness h(rare_projection(indexed, &handled), {.map_size = std::uint64_t{1} << 30});
    const auto filled = std::chrono::steady_clock::now();
    fill(h, events, rare_every);
    std::printf("  %s: filled in %.2f s\n", indexed ? "index" : "scan",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - filled).count());
    std::vector<double> ms;
    std::vector<long> faults;
    for (int r = 0; r < runs; ++r) {
      if (r > 0) {
        h.engine().rebuild([](const projection_status&) {});  // from position 0 again
        handled = 0;
      }
      const long faults_before = minor_faults();
      const auto start = std::chrono::steady_clock::now();
      auto v = h.run();
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
      faults.push_back(minor_faults() - faults_before);
      if (!v) {
        std::fprintf(stderr, "%s\n", v.message().c_str());
        return 1;
      }
      if (r == 0) handled_by[indexed ? 0 : 1] = handled;
    }
    std::vector<double> sorted = ms;
    std::sort(sorted.begin(), sorted.end());
    median[indexed ? 0 : 1] = sorted[sorted.size() / 2];
    std::printf("  %s: median %.1f ms, runs", indexed ? "index" : "scan ", median[indexed ? 0 : 1]);
    for (double m : ms)
      std::printf(" %.1f", m);
    std::printf(" ms (page faults");
    for (long f : faults)
      std::printf(" %ld", f);
    std::printf("); %llu events handled, cursor at %llu\n",
                static_cast<unsigned long long>(handled),
                static_cast<unsigned long long>(h.status().position));
  }
  if (handled_by[0] != handled_by[1]) {
    std::fprintf(stderr, "the two reads handled different events: %llu and %llu\n",
                 static_cast<unsigned long long>(handled_by[0]),
                 static_cast<unsigned long long>(handled_by[1]));
    return 1;
  }
  std::printf("speed-up: %.1fx\n", median[1] / median[0]);
}
