// A program of a project that uses Varve::actors: it opens a store in a fresh
// temporary directory, spawns the storage actor, appends through it (one
// request refused for a stale expected version), reads the stream back
// through it, stops it and checks the store directly. Prints "actors
// roundtrip: ok" and exits 0 when every result is as expected; otherwise
// names the first wrong one and exits 1.
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <stdlib.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <varve/actors/error.hpp>
#include <varve/actors/storage_actor.hpp>
#include <varve/storage/event_store.hpp>

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "actors roundtrip: FAILED: " << what << "\n";
    ++failures;
  }
}

struct config : caf::actor_system_config {
  config() {
    set("scheduler.max-threads", 2);
    set("logger.console", caf::atom("none"));
    add_message_types<caf::id_block::varve>();
    varve::add_error_category(*this);
  }
};

varve::append_request request(varve::expected_version expected, std::vector<std::string> payloads) {
  varve::append_request r{.stream = "account-1", .expected = expected};
  for (auto& p : payloads)
    r.events.push_back({.type = "deposited", .payload = std::move(p)});
  return r;
}

/// Appends, refuses a stale append, appends again and reads back, all
/// through the storage actor.
void talk_to(caf::actor_system& sys, const varve::storage_actor& storage) {
  caf::scoped_actor self{sys};
  auto append = [&](varve::append_request r) -> std::optional<varve::append_result> {
    std::optional<varve::append_result> out;
    self->request(storage, caf::infinite, varve::append_atom_v, std::move(r))
        .receive([&](const varve::append_result& res) { out = res; },
                 [&](caf::error& e) {
                   check(varve::error_from(e).code() == varve::errc::wrong_expected_version,
                         "append: " + varve::error_from(e).to_string());
                 });
    return out;
  };

  auto first = append(request(varve::expected_version::no_stream(), {"10", "20"}));
  check(first && first->first_version == 1 && first->last_version == 2, "first append: v1..v2");
  auto stale = append(request(varve::expected_version::exact(0), {"99"}));
  check(!stale, "an append with a stale expected version must be refused");
  auto second = append(request(varve::expected_version::exact(2), {"30"}));
  check(second && second->first_version == 3 && second->first_position == 3,
        "second append: v3 at position 3");

  std::vector<varve::recorded_event> events;
  self->request(storage, caf::infinite, varve::read_atom_v, std::string("account-1"),
                std::uint64_t{1}, false, std::uint64_t{100})
      .receive([&](const std::vector<varve::recorded_event>& got) { events = got; },
               [&](caf::error& e) { check(false, "read: " + varve::error_from(e).to_string()); });
  const std::vector<std::string> expected{"10", "20", "30"};
  check(events.size() == expected.size(), "read " + std::to_string(events.size()) + " events");
  for (std::size_t i = 0; i < events.size() && i < expected.size(); ++i)
    check(events[i].payload == expected[i] && events[i].version == i + 1 &&
              events[i].stream == "account-1" && events[i].type == "deposited",
          "event " + std::to_string(i) + " reads '" + events[i].payload + "'");
}

}  // namespace

int main() {
  char pattern[] = "/tmp/varve-package-actors.XXXXXX";
  if (!mkdtemp(pattern)) {
    std::cerr << "actors roundtrip: no temporary directory\n";
    return 1;
  }
  const std::filesystem::path root = pattern;
  {
    varve::options opts;
    opts.directory = root / "store";
    opts.sync = varve::durability::no_sync;
    auto opened = varve::event_store::open(opts);
    if (!opened) {
      std::cerr << "actors roundtrip: FAILED: open: " << opened.err().to_string() << "\n";
      return 1;
    }
    std::shared_ptr<varve::event_store> store = std::move(opened).value();

    config cfg;
    caf::actor_system sys{cfg};
    auto storage = varve::spawn_storage(sys, store);
    talk_to(sys, storage);
    caf::anon_send_exit(storage, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
    storage = nullptr;

    // Stopped, the actor has let go of the store; what it wrote is there.
    check(store.use_count() == 1, "the storage actor still holds the store after it quit");
    auto txn = store->read();
    check(txn && txn->head() == 3, "the store's head is 3");
  }
  std::filesystem::remove_all(root);
  if (failures) return 1;
  std::cout << "actors roundtrip: ok\n";
  return 0;
}
