// The other process of the remote tests.
//
//   varve_test_peer serve DIR [--fail-next-commit]
//       A store service: a store, its storage actor and a registry of
//       counters, published on a free loopback port. Prints
//       "listening on 127.0.0.1:PORT" and serves until killed.
//       --fail-next-commit: the store's next commit fails with EIO (fault
//       injection), so clients meet a store in its failed state.
//   varve_test_peer host DIR PORT NAME
//       A projection host: the counting projection NAME over the service on
//       PORT, into the store in DIR. Prints "hosting NAME" and runs until
//       killed (SIGTERM: stops cleanly).
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <string_view>
#include <varve/remote/projection_host.hpp>
#include <varve/remote/service.hpp>
#include <varve/storage/testing.hpp>

#include "peer.hpp"

namespace {

std::shared_ptr<varve::event_store> open_store(const char* dir) {
  varve::options opts;
  opts.directory = dir;
  opts.sync = varve::durability::no_sync;
  auto store = varve::event_store::open(opts);
  if (!store) {
    std::cerr << "varve_test_peer: " << store.err().to_string() << "\n";
    return nullptr;
  }
  return std::move(*store);
}

struct peer_config : caf::actor_system_config {
  peer_config() {
    varve::remote::configure_remote(*this);
    add_message_types<caf::id_block::varve_remote_test>();
  }
};

int serve(const char* dir, bool fail_next_commit) {
  auto store = open_store(dir);
  if (!store) return 1;
  if (fail_next_commit) varve::testing_fail_next_commit(*store, EIO);
  peer_config cfg;
  caf::actor_system sys{cfg};
  auto storage = varve::spawn_storage(sys, store);
  auto counters = varve::spawn_registry<tally::counter>(sys, {store, storage, {}});
  auto service = varve::remote::spawn_service(sys, store, storage,
                                              {{"counter", caf::actor_cast<caf::actor>(counters)}});
  auto port = varve::remote::publish(sys, service, "127.0.0.1", 0);
  if (!port) {
    std::cerr << "varve_test_peer: " << port.err().to_string() << "\n";
    return 1;
  }
  std::cout << "listening on 127.0.0.1:" << *port << std::endl;
  for (;;)
    ::pause();
}

int host(const char* dir, std::uint16_t port, const std::string& name) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  auto store = open_store(dir);
  if (!store) return 1;
  peer_config cfg;
  caf::actor_system sys{cfg};
  auto storage = varve::spawn_storage(sys, store);
  varve::remote::remote_projection_options o;
  o.port = port;
  o.request_timeout = std::chrono::milliseconds(5000);
  o.min_backoff = std::chrono::milliseconds(20);
  o.max_backoff = std::chrono::milliseconds(500);
  auto spec = tally::counting(name);
  spec.batch_events = 100;  // small batches: a kill lands between many checkpoints
  auto h = varve::remote::spawn_remote_projection(sys, store, storage, spec, o);
  std::cout << "hosting " << name << std::endl;
  int sig = 0;
  sigwait(&stop, &sig);
  caf::scoped_actor self{sys};
  self->monitor(h);
  caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
  self->receive([](const caf::down_msg&) {});
  self->monitor(storage);
  caf::anon_send_exit(storage, caf::exit_reason::user_shutdown);
  self->receive([](const caf::down_msg&) {});
  std::_Exit(0);  // the middleman may wait for the service: do not
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "serve" && argc >= 3)
    return serve(argv[2], argc > 3 && std::string_view(argv[3]) == "--fail-next-commit");
  if (mode == "host" && argc == 5)
    return host(argv[2], static_cast<std::uint16_t>(std::stoi(argv[3])), argv[4]);
  std::cerr << "usage: varve_test_peer serve DIR [--fail-next-commit]\n"
               "       varve_test_peer host DIR PORT NAME\n";
  return 2;
}
