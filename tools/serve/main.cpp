// varve_serve: opens a store and serves it to other processes (clients and
// remote projection hosts, see varve/remote/) with CAF's middleman.
//
//   varve_serve --varve.data-dir=DIR [--varve.serve-host=H] [--varve.serve-port=P]
//               [--any-port] [other varve.* options]
//
// Prints "listening on HOST:PORT" once it accepts connections (--any-port:
// a free port chosen by the system), and runs until SIGTERM or SIGINT; then
// it stops publishing, commits what its storage actor gathered and exits 0.
#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string_view>
#include <thread>
#include <vector>

#include <varve/config/varve_config.hpp>
#include <varve/remote/service.hpp>

int main(int argc, char** argv) {
  // Our own flag, before CAF sees the arguments.
  bool any_port = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::string_view(argv[i]) == "--any-port")
      any_port = true;
    else
      args.push_back(argv[i]);
  }
  // Block the stop signals in every thread (CAF's threads inherit the mask);
  // the main thread waits for them with sigwait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  varve::varve_config cfg;
  varve::remote::configure_remote(cfg);
  if (int code = varve::configure(cfg, static_cast<int>(args.size()), args.data(),
                                  {.data_dir = "var/demo", .config_file = "config/varve.ini"}))
    return code;
  if (cfg.cli_helptext_printed) {
    std::cout << "  --any-port   listen on a free port chosen by the system\n";
    return 0;
  }
  auto store = varve::event_store::open(cfg.store_options());
  if (!store) {
    std::cerr << "varve_serve: cannot open " << cfg.data_dir << ": " << store.err().to_string()
              << "\n";
    return 1;
  }
  std::shared_ptr<varve::event_store> shared = std::move(*store);
  int code = 0;
  {
    caf::actor_system sys{cfg};
    auto storage = varve::spawn_storage(sys, shared, cfg.storage());
    auto service = varve::remote::spawn_service(sys, shared, storage);
    const auto port = any_port ? std::uint16_t{0} : static_cast<std::uint16_t>(cfg.serve_port);
    auto bound = varve::remote::publish(sys, service, cfg.serve_host, port);
    if (!bound) {
      std::cerr << "varve_serve: " << bound.err().message() << "\n";
      code = 1;
    } else {
      std::cout << "listening on " << cfg.serve_host << ":" << *bound << std::endl;
      int sig = 0;
      sigwait(&stop, &sig);
      std::cerr << "varve_serve: stopping (signal " << sig << ")\n";
      sys.middleman().unpublish(service, *bound);
    }
    caf::anon_send_exit(service, caf::exit_reason::user_shutdown);
    // The storage actor commits what it gathered, then quits.
    {
      caf::scoped_actor self{sys};
      self->monitor(storage);
      caf::anon_send_exit(storage, caf::exit_reason::user_shutdown);
      self->receive([](const caf::down_msg&) {});
    }
    shared.reset();
    // The store is closed once the storage actor is gone. CAF's middleman may
    // wait for remote peers at shutdown: do not let that keep us alive.
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::seconds(5));
      std::cerr << "varve_serve: actor system shutdown timed out; exiting\n";
      std::_Exit(0);
    }).detach();
  }
  return code;
}
