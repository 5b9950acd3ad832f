// A store service for the remote tests: a store, its storage actor and a
// registry of counters, published on a free loopback port.
//
//   varve_test_service DIR [--fail-next-commit]
//
// Prints "listening on 127.0.0.1:PORT" and serves until killed.
// --fail-next-commit: the store's next commit fails with EIO (fault
// injection), so clients meet a store in its failed state.
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <unistd.h>
#include <iostream>
#include <string_view>
#include <varve/remote/service.hpp>
#include <varve/storage/testing.hpp>

#include "counter.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: varve_test_service DIR [--fail-next-commit]\n";
    return 2;
  }
  varve::options opts;
  opts.directory = argv[1];
  opts.sync = varve::durability::no_sync;
  auto store = varve::event_store::open(opts);
  if (!store) {
    std::cerr << "varve_test_service: " << store.err().to_string() << "\n";
    return 1;
  }
  std::shared_ptr<varve::event_store> shared = std::move(*store);
  if (argc > 2 && std::string_view(argv[2]) == "--fail-next-commit")
    varve::testing_fail_next_commit(*shared, EIO);

  caf::actor_system_config cfg;
  varve::remote::configure_remote(cfg);
  cfg.add_message_types<caf::id_block::varve_remote_test>();
  caf::actor_system sys{cfg};
  auto storage = varve::spawn_storage(sys, shared);
  auto counters = varve::spawn_registry<tally::counter>(sys, {shared, storage, {}});
  auto service = varve::remote::spawn_service(sys, shared, storage,
                                              {{"counter", caf::actor_cast<caf::actor>(counters)}});
  auto port = varve::remote::publish(sys, service, "127.0.0.1", 0);
  if (!port) {
    std::cerr << "varve_test_service: " << port.err().to_string() << "\n";
    return 1;
  }
  std::cout << "listening on 127.0.0.1:" << *port << std::endl;
  for (;;)
    ::pause();
}
