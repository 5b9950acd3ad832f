// The writer process of the crash test: concurrent appenders through the
// storage actor plus an exactly-once projection, on a store with fsync on.
// It reports every acknowledged append on stdout, one line per event:
//
//   <position> <stream> <version> <payload>
//
// and runs until it is killed.
//
//   varve_crash_writer DIR WRITERS
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include <unistd.h>

#include <cstdio>
#include <random>
#include <thread>
#include <varve/config/varve_config.hpp>
#include <varve/projections/manager.hpp>

using namespace varve;

namespace {

std::string payload_of(const std::string& stream, stream_version version, int request, int part,
                       int parts) {
  // Requests are numbered per process: the id carries the process id.
  static const std::string process = std::to_string(::getpid());
  return stream + ":" + std::to_string(version) + ":req=" + process + "-" +
         std::to_string(request) + ":" + std::to_string(part) + "/" + std::to_string(parts);
}

/// Appends requests of 1 to 3 events to its own stream with exact versions,
/// one after the other, and prints each acknowledged event.
void appender(caf::event_based_actor* self, storage_actor storage, std::string stream,
              stream_version version, std::uint64_t seed) {
  auto rng = std::make_shared<std::mt19937_64>(seed);
  auto next = std::make_shared<stream_version>(version);
  auto request_no = std::make_shared<int>(0);
  auto step = std::make_shared<std::function<void()>>();
  *step = [=] {
    const int parts = 1 + static_cast<int>((*rng)() % 3);
    const int req = (*request_no)++;
    append_request r{stream, expected_version::exact(*next), {}};
    for (int i = 0; i < parts; ++i)
      r.events.push_back(new_event{"crash-test",
                                   payload_of(stream, *next + 1 + i, req, i + 1, parts),
                                   {},
                                   {},
                                   {},
                                   // Tags, so that verify checks the tag index too.
                                   {"writer:" + stream, "part:" + std::to_string(i + 1)}});
    self->request(storage, caf::infinite, append_atom_v, std::move(r))
        .then(
            [=](const append_result& res) {
              std::string lines;
              for (int i = 0; i < parts; ++i) {
                const auto v = res.first_version + i;
                lines += std::to_string(res.first_position + i) + " " + stream + " " +
                         std::to_string(v) + " " + payload_of(stream, v, req, i + 1, parts) + "\n";
              }
              std::fputs(lines.c_str(), stdout);
              std::fflush(stdout);
              *next = res.last_version;
              (*step)();
            },
            [=](caf::error& e) {
              std::fprintf(stderr, "crash_writer: %s\n", error_from(e).to_string().c_str());
              self->quit();
            });
  };
  (*step)();
}

/// The view the test compares with a rebuild: one row per event.
projection_spec crash_view() {
  projection_spec spec;
  spec.name = "crash_view";
  spec.batch_events = 50;
  spec.handle = [](const delivered_event& d, view_batch& view) -> result<void> {
    view.put("event/" + std::to_string(d.event.position),
             std::string(d.stream) + ":" + std::to_string(d.event.version));
    auto count = view.get("count/" + std::string(d.stream));
    if (!count) return count.err();
    view.put("count/" + std::string(d.stream),
             std::to_string((*count ? std::stoull(**count) : 0) + 1));
    return {};
  };
  return spec;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: varve_crash_writer DIR WRITERS\n");
    return 2;
  }
  varve_config cfg;
  char* none[] = {argv[0]};
  if (configure(cfg, 1, none, {.data_dir = argv[1]}) != 0) return 2;
  options o;
  o.directory = argv[1];
  auto opened = event_store::open(o);
  if (!opened) {
    std::fprintf(stderr, "crash_writer: %s\n", opened.err().to_string().c_str());
    return 1;
  }
  std::shared_ptr<event_store> store = std::move(*opened);
  caf::actor_system sys{cfg};
  auto storage = spawn_storage(sys, store);
  auto manager = spawn_projection_manager(sys, store, storage, {crash_view()});
  const int writers = std::atoi(argv[2]);
  std::random_device rd;
  for (int w = 0; w < writers; ++w) {
    const std::string stream = "writer-" + std::to_string(w);
    auto info = store->read()->stream(stream);
    const stream_version version = info && *info ? (*info)->version : 0;
    sys.spawn(appender, storage, stream, version, (std::uint64_t{rd()} << 32) ^ rd());
  }
  for (;;)
    std::this_thread::sleep_for(std::chrono::seconds(60));  // until killed
}
