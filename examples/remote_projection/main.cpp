// Projections deployed in other processes: one store service and two
// projection hosts, each a process of its own on loopback.
//
// The driver (this program without --example.role) starts the service
// (bank accounts behind a registry, served with varve::remote) and two hosts
// (each runs the exactly-once balances projection against the service into
// its own store), sends commands over the network in three rounds, and in
// between kills host B with SIGKILL and restarts it, then kills the service
// with SIGKILL and restarts it on the same port. At the end it waits for both
// hosts to reach the service's head, stops everything with SIGTERM, runs the
// same projection in process over the service's store, and checks that the
// three views are equal and equal to a fold of the log.
//
//   varve_remote_projection [--example.accounts=N] [--example.commands=N]
//                           [--example.clients=N] [--varve.data-dir=DIR]
//
// The children are this program again: --example.role=service|host.
#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <thread>
#include <varve/config/varve_config.hpp>
#include <varve/projections/manager.hpp>
#include <varve/remote/commands.hpp>
#include <varve/remote/projection_host.hpp>
#include <varve/remote/service.hpp>

#include "../bank/balances.hpp"
#include "bank_commands.hpp"

extern char** environ;

CAF_BEGIN_TYPE_ID_BLOCK(bank_remote, caf::id_block::varve_remote::end)
CAF_ADD_TYPE_ID(bank_remote, (bank::open))
CAF_ADD_TYPE_ID(bank_remote, (bank::deposit))
CAF_ADD_TYPE_ID(bank_remote, (bank::withdraw))
CAF_ADD_TYPE_ID(bank_remote, (bank::close))
CAF_END_TYPE_ID_BLOCK(bank_remote)

namespace {

using namespace varve;
using namespace std::chrono_literals;
using account = bank::account;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

struct example_config : varve_config {
  std::string role;  // "" (driver), "service" or "host"
  std::string name = "host";
  std::size_t port = 0;
  std::size_t accounts = 200;
  std::size_t commands = 6000;
  std::size_t clients = 8;
  example_config() {
    opt_group{custom_options_, "example"}
        .add(role, "role", "what this process is: empty (the driver), service or host")
        .add(name, "name", "a host's name, in what it prints")
        .add(port, "port", "the service's port (service: 0 for any free port)")
        .add(accounts, "accounts", "number of accounts to open")
        .add(commands, "commands", "commands to send in all, over three rounds")
        .add(clients, "clients", "concurrent clients (threads) sending commands");
    varve::remote::configure_remote(*this);
    add_message_types<caf::id_block::bank_remote>();
  }
};

/// Blocks SIGTERM and SIGINT in every thread; wait_for_stop() takes them.
sigset_t stop_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  return s;
}

void wait_for_stop() {
  auto s = stop_signals();
  int sig = 0;
  sigwait(&s, &sig);
}

/// Stops `a` and waits until it is gone.
template <class Handle>
void stop_actor(caf::actor_system& sys, const Handle& a) {
  caf::scoped_actor self{sys};
  self->monitor(a);
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  self->receive([](const caf::down_msg&) {});
}

std::shared_ptr<event_store> open_store(const options& o, const char* who) {
  auto s = event_store::open(o);
  if (!s) {
    std::fprintf(stderr, "%s: cannot open %s: %s\n", who, o.directory.c_str(),
                 s.err().to_string().c_str());
    return nullptr;
  }
  return std::move(*s);
}

// ---------------------------------------------------------------- service

int run_service(example_config& cfg) {
  auto store = open_store(cfg.store_options(), "service");
  if (!store) return 1;
  caf::actor_system sys{cfg};
  auto storage = spawn_storage(sys, store, cfg.storage());
  auto accounts = spawn_registry<account>(sys, {store, storage, cfg.aggregates()});
  auto service = remote::spawn_service(sys, store, storage,
                                       {{"account", caf::actor_cast<caf::actor>(accounts)}});
  auto port = remote::publish(sys, service, "127.0.0.1", static_cast<std::uint16_t>(cfg.port));
  if (!port) {
    std::fprintf(stderr, "service: %s\n", port.err().to_string().c_str());
    return 1;
  }
  std::printf("listening on 127.0.0.1:%u\n", *port);
  std::fflush(stdout);
  wait_for_stop();
  sys.middleman().unpublish(service, *port);
  stop_actor(sys, service);
  stop_actor(sys, accounts);
  stop_actor(sys, storage);  // commits what it gathered
  // The middleman may wait for peers that went away: do not hang on them.
  std::thread([] {
    std::this_thread::sleep_for(5s);
    std::_Exit(0);
  }).detach();
  return 0;
}

// ---------------------------------------------------------------- host

int run_host(example_config& cfg) {
  auto store = open_store(cfg.store_options(), cfg.name.c_str());
  if (!store) return 1;
  caf::actor_system sys{cfg};
  auto storage = spawn_storage(sys, store, cfg.storage());
  remote::remote_projection_options o;
  o.port = static_cast<std::uint16_t>(cfg.port);
  o.request_timeout = 3000ms;
  o.min_backoff = 20ms;
  o.max_backoff = 500ms;
  auto host = remote::spawn_remote_projection(sys, store, storage, bank::balances_projection(), o);
  wait_for_stop();
  stop_actor(sys, host);
  stop_actor(sys, storage);
  std::thread([] {
    std::this_thread::sleep_for(5s);
    std::_Exit(0);
  }).detach();
  return 0;
}

// ---------------------------------------------------------------- driver

/// A child process: this program with another role.
struct child {
  std::string what;
  pid_t pid = 0;

  /// Starts it; when `listen`, reads its "listening on HOST:PORT" line and
  /// returns the port.
  std::uint16_t start(std::vector<std::string> args, bool listen) {
    int fds[2] = {-1, -1};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (listen) {
      if (::pipe(fds) != 0) return 0;
      posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
      posix_spawn_file_actions_addclose(&actions, fds[0]);
    }
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      std::fprintf(stderr, "driver: cannot start %s: %s\n", what.c_str(), std::strerror(rc));
      pid = 0;
      return 0;
    }
    if (!listen) return 1;
    ::close(fds[1]);
    std::string out;
    char c;
    while (out.find('\n') == std::string::npos && ::read(fds[0], &c, 1) == 1)
      out += c;
    ::close(fds[0]);
    const auto colon = out.rfind(':');
    if (!out.starts_with("listening on ") || colon == std::string::npos) return 0;
    return static_cast<std::uint16_t>(std::stoi(out.substr(colon + 1)));
  }

  /// Sends `sig` and reaps it.
  void stop(int sig) {
    if (pid == 0) return;
    ::kill(pid, sig);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = 0;
  }
  ~child() { stop(SIGKILL); }
};

struct driver {
  example_config& cfg;
  caf::actor_system& sys;
  fs::path root;
  std::uint16_t port = 0;
  child service{"service"}, host_a{"host-a"}, host_b{"host-b"};

  std::vector<std::string> common(const fs::path& dir) const {
    return {"varve_remote_projection", "--varve.data-dir=" + dir.string(),
            "--varve.sync=" + cfg.sync, "--logger.console=none"};
  }

  bool start_service() {
    auto args = common(root / "service");
    args.push_back("--example.role=service");
    args.push_back("--example.port=" + std::to_string(port));
    const auto p = service.start(std::move(args), true);
    if (p == 0) return false;
    port = p;
    return true;
  }

  bool start_host(child& h) {
    auto args = common(root / h.what);
    args.push_back("--example.role=host");
    args.push_back("--example.name=" + h.what);
    args.push_back("--example.port=" + std::to_string(port));
    return h.start(std::move(args), false) != 0;
  }

  /// Connects, retrying while a restarted service comes up.
  std::optional<remote::client> connect() {
    for (int i = 0; i < 100; ++i) {
      auto c = remote::client::open(sys, "127.0.0.1", port, {3000ms});
      if (c) return std::move(*c);
      std::this_thread::sleep_for(50ms);
    }
    return std::nullopt;
  }

  /// Sends commands [from, to) of the plan from cfg.clients threads, each
  /// with its own accounts (so an account's commands arrive in order).
  bool drive(std::size_t round, std::size_t from, std::size_t to, std::size_t& accepted,
             std::size_t& rejected) {
    std::atomic<std::size_t> ok{0}, refused{0}, failed{0};
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < cfg.clients; ++t)
      threads.emplace_back([&, t] {
        auto c = connect();
        if (!c) {
          ++failed;
          return;
        }
        auto accounts = remote::registry<account>(*c, "account");
        if (!accounts) {
          std::fprintf(stderr, "driver: %s\n", accounts.err().to_string().c_str());
          ++failed;
          return;
        }
        std::mt19937_64 rng(round * 1000 + t);
        for (std::size_t n = from; n < to; ++n) {
          const std::size_t a = n % cfg.accounts;
          if (a % cfg.clients != t) continue;
          const std::string id = std::to_string(a);
          result<command_reply> r = error{errc::invalid_argument, ""};
          const std::int64_t amount = 1 + static_cast<std::int64_t>(rng() % 100);
          if (n < cfg.accounts)
            r = remote::send_command(*c, *accounts, id, bank::open{"owner " + id});
          else if (rng() % 3 == 0)
            r = remote::send_command(*c, *accounts, id, bank::withdraw{amount});
          else
            r = remote::send_command(*c, *accounts, id, bank::deposit{amount});
          if (r)
            ++ok;
          else if (r.err().code() == errc::rejected)
            ++refused;
          else {
            std::fprintf(stderr, "driver: %s\n", r.err().to_string().c_str());
            ++failed;
          }
        }
      });
    for (auto& t : threads)
      t.join();
    accepted += ok;
    rejected += refused;
    return failed == 0;
  }

  /// The service's head (a fresh connection: the service may have restarted).
  std::optional<global_position> head() {
    auto c = connect();
    if (!c) return std::nullopt;
    auto s = c->stats();
    if (!s) return std::nullopt;
    return s->head;
  }

  /// Waits until a host's checkpoint (in its own store) reaches `head`.
  bool wait_host(const child& h, global_position head, double& seconds) {
    options o = cfg.store_options();
    o.directory = root / h.what;
    const auto t0 = clock_type::now();
    std::shared_ptr<event_store> store;
    for (int i = 0; i < 6000; ++i) {  // 60 s
      if (!store && fs::exists(o.directory / "data.mdb")) store = open_store(o, "driver");
      if (store) {
        auto txn = store->read();
        auto cur = txn ? txn->cursor("balances")
                       : result<std::optional<global_position>>(error{errc::not_found, ""});
        if (cur && cur->value_or(0) >= head) {
          seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
          return true;
        }
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
};

std::map<std::string, std::string> view_of(const fs::path& dir, const example_config& cfg,
                                           const std::string& view) {
  std::map<std::string, std::string> out;
  options o = cfg.store_options();
  o.directory = dir;
  auto store = open_store(o, "driver");
  if (!store) return out;
  auto txn = store->read();
  if (!txn) return out;
  auto n = txn->scan_view(view, "", [&](std::string_view k, std::string_view v) {
    out.emplace(std::string(k), std::string(v));
    return true;
  });
  (void)n;
  return out;
}

/// The balances folded from the log of the store in `dir`.
std::map<std::string, std::string> fold(const fs::path& dir, const example_config& cfg) {
  std::map<std::string, std::int64_t> balances;
  options o = cfg.store_options();
  o.directory = dir;
  auto store = open_store(o, "driver");
  if (!store) return {};
  auto txn = store->read();
  if (!txn) return {};
  auto n = txn->scan_log(1, direction::forward, SIZE_MAX, [&](const event_view& e) {
    auto stream = txn->stream_name(e.stream_id);
    auto ev = default_codec<account::event>::decode(e.type, e.payload);
    if (!stream || !ev) return true;
    std::int64_t& b = balances[std::string(*stream)];
    if (auto* x = std::get_if<bank::deposited>(&*ev)) b += x->amount;
    if (auto* x = std::get_if<bank::withdrawn>(&*ev)) b -= x->amount;
    return true;
  });
  (void)n;
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : balances)
    out.emplace(k, std::to_string(v));
  return out;
}

/// The balances projection in this process over the service's (stopped)
/// store, into its own view there.
std::map<std::string, std::string> in_process_view(caf::actor_system& sys,
                                                   const example_config& cfg, const fs::path& dir) {
  options o = cfg.store_options();
  o.directory = dir;
  auto store = open_store(o, "driver");
  if (!store) return {};
  const auto head = store->read()->head();
  auto storage = spawn_storage(sys, store);
  auto spec = bank::balances_projection();
  spec.name = "balances-in-process";
  auto p = spawn_projection(sys, store, storage, spec);
  caf::scoped_actor self{sys};
  for (int i = 0; i < 6000; ++i) {
    projection_status s;
    self->request(p, caf::infinite, status_atom_v)
        .receive([&](projection_status& x) { s = std::move(x); }, [](caf::error&) {});
    if (s.position >= head) break;
    std::this_thread::sleep_for(10ms);
  }
  stop_actor(sys, p);
  stop_actor(sys, storage);
  store.reset();
  return view_of(dir, cfg, "balances-in-process");
}

int run_driver(example_config& cfg) {
  caf::actor_system sys{cfg};
  driver d{cfg, sys, cfg.data_dir};
  // A new run: the three stores start empty (nothing else in the directory
  // is touched).
  std::error_code ec;
  for (const char* part : {"service", "host-a", "host-b"})
    fs::remove_all(d.root / part, ec);
  fs::create_directories(d.root);
  const auto t0 = clock_type::now();
  if (!d.start_service()) {
    std::fprintf(stderr, "remote_projection: the service did not start\n");
    return 1;
  }
  std::printf("remote_projection: service pid %d on 127.0.0.1:%u (store %s)\n", d.service.pid,
              d.port, (d.root / "service").c_str());
  if (!d.start_host(d.host_a) || !d.start_host(d.host_b)) return 1;
  std::printf("remote_projection: hosts pid %d (host-a) and %d (host-b), each with its own store\n",
              d.host_a.pid, d.host_b.pid);

  std::size_t accepted = 0, rejected = 0;
  const std::size_t third = std::max(cfg.commands, cfg.accounts) / 3;
  const std::size_t total = std::max(cfg.commands, cfg.accounts);
  bool ok = d.drive(1, 0, std::max(third, cfg.accounts), accepted, rejected);
  std::printf("remote_projection: round 1: %zu commands accepted, %zu refused\n", accepted,
              rejected);

  // Round 2, with host-b killed and restarted while the commands flow.
  bool round2 = false;
  std::thread sender(
      [&] { round2 = d.drive(2, std::max(third, cfg.accounts), 2 * third, accepted, rejected); });
  std::this_thread::sleep_for(50ms);
  d.host_b.stop(SIGKILL);
  std::printf("remote_projection: host-b killed (SIGKILL) during round 2\n");
  std::this_thread::sleep_for(150ms);
  const bool restarted = d.start_host(d.host_b);
  sender.join();
  if (!restarted) return 1;
  ok = round2 && ok;
  std::printf("remote_projection: host-b restarted (pid %d): resumes from its checkpoint\n",
              d.host_b.pid);

  d.service.stop(SIGKILL);
  std::printf("remote_projection: service killed (SIGKILL); hosts reconnect with backoff\n");
  std::this_thread::sleep_for(300ms);
  if (!d.start_service()) {
    std::fprintf(stderr, "remote_projection: the service did not restart on port %u\n", d.port);
    return 1;
  }
  std::printf("remote_projection: service restarted (pid %d) on the same port\n", d.service.pid);
  ok = d.drive(3, 2 * third, total, accepted, rejected) && ok;
  std::printf("remote_projection: round 3 done: %zu accepted, %zu refused in all\n", accepted,
              rejected);
  if (!ok) {
    std::fprintf(stderr, "remote_projection: some commands failed (see above)\n");
    return 1;
  }

  const auto head = d.head();
  if (!head) {
    std::fprintf(stderr, "remote_projection: cannot read the service's head\n");
    return 1;
  }
  double secs_a = 0, secs_b = 0;
  if (!d.wait_host(d.host_a, *head, secs_a) || !d.wait_host(d.host_b, *head, secs_b)) {
    std::fprintf(stderr, "remote_projection: a host did not reach the head %llu\n",
                 static_cast<unsigned long long>(*head));
    return 1;
  }
  std::printf("remote_projection: both hosts at the head (%llu events)\n",
              static_cast<unsigned long long>(*head));
  d.host_a.stop(SIGTERM);
  d.host_b.stop(SIGTERM);
  d.service.stop(SIGTERM);

  const auto a = view_of(d.root / "host-a", cfg, "balances");
  const auto b = view_of(d.root / "host-b", cfg, "balances");
  const auto local = in_process_view(d.sys, cfg, d.root / "service");
  const auto folded = fold(d.root / "service", cfg);
  const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::printf(
      "remote_projection: %zu accounts in host-a, %zu in host-b, %zu in process, %zu in "
      "the log (%.1f s in all)\n",
      a.size(), b.size(), local.size(), folded.size(), secs);
  if (a.empty() || a != b || a != local || a != folded) {
    std::printf("remote_projection: VIEWS DIFFER\n");
    return 1;
  }
  std::printf(
      "remote_projection: views converge: host-a = host-b = in-process = fold of the "
      "log\n");
  std::printf("look inside: build/tools/varvectl --db %s projections\n",
              (d.root / "host-b").c_str());
  // The middleman may wait for the peers that were killed: do not hang.
  std::thread([] {
    std::this_thread::sleep_for(5s);
    std::_Exit(0);
  }).detach();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto stop = stop_signals();
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  example_config cfg;
  if (int code =
          configure(cfg, argc, argv,
                    {.data_dir = "var/remote_projection", .config_file = "config/varve.ini"}))
    return code;
  if (cfg.cli_helptext_printed) return 0;
  std::fprintf(stderr, "%s\n", cfg.scheduler_summary().c_str());
  if (cfg.role == "service") return run_service(cfg);
  if (cfg.role == "host") return run_host(cfg);
  if (!cfg.role.empty()) {
    std::fprintf(stderr, "remote_projection: unknown role '%s' (service, host or none)\n",
                 cfg.role.c_str());
    return 2;
  }
  return run_driver(cfg);
}
