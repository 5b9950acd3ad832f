// The bank: a CQRS application on an embedded Varve store, and the main job
// of scripts/demo.sh.
//
// Accounts are aggregates behind a registry; `clients` concurrent clients
// send `commands` commands (open, then deposits and withdrawals; overdrafts
// are refused by the aggregate). An exactly-once projection keeps every
// balance in the view "balances"; an at-least-once projection appends an
// audit line per event to a file, using the global position as its
// idempotency key. At the end it checks that the balances view equals a fold
// of the log, prints what it did, and how to look inside with varvectl.
//
//   varve_bank [--bank.accounts=N] [--bank.commands=N] [--bank.clients=N]
//              [--varve.data-dir=DIR] [--varve.sync=...]   (see config/varve.ini)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <thread>
#include <varve/config/varve_config.hpp>
#include <varve/projections/manager.hpp>

#include "account.hpp"
#include "balances.hpp"

namespace {

using namespace varve;
using account = bank::account;
using codec = default_codec<account::event>;
using clock_type = std::chrono::steady_clock;

struct bank_config : varve_config {
  std::size_t accounts = 1000;
  std::size_t commands = 100000;
  std::size_t clients = 64;
  bank_config() {
    opt_group{custom_options_, "bank"}
        .add(accounts, "accounts", "number of accounts to open")
        .add(commands, "commands", "commands to send in all (opens included)")
        .add(clients, "clients", "concurrent clients");
  }
};

using job = std::pair<std::string, account::command>;

/// A client: sends its commands one after the other, each after the answer
/// to the previous one, then reports (accepted, rejected) to `collector`.
struct client_state {
  static inline const char* name = "bank.client";
  registry_actor<account> accounts;
  std::shared_ptr<const std::vector<job>> jobs;
  caf::actor collector;
  std::size_t next = 0, accepted = 0, rejected = 0;
};

using client_pointer = caf::stateful_actor<client_state>*;

void send_next(client_pointer self) {
  auto& st = self->state;
  if (st.next == st.jobs->size()) {
    self->send(st.collector, st.accepted, st.rejected);
    self->quit();
    return;
  }
  const job& j = (*st.jobs)[st.next++];
  std::visit(
      [&](const auto& cmd) {
        self->request(st.accounts, caf::infinite, command_atom_v, j.first, cmd)
            .then(
                [self](const command_reply&) {
                  ++self->state.accepted;
                  send_next(self);
                },
                [self](caf::error& e) {
                  if (error_from(e).code() != errc::rejected)
                    std::fprintf(stderr, "bank: %s\n", error_from(e).to_string().c_str());
                  ++self->state.rejected;
                  send_next(self);
                });
      },
      j.second);
}

void client(client_pointer self, registry_actor<account> accounts,
            std::shared_ptr<const std::vector<job>> jobs, caf::actor collector) {
  self->state.accounts = std::move(accounts);
  self->state.jobs = std::move(jobs);
  self->state.collector = std::move(collector);
  send_next(self);
}

/// The audit file, opened for appending. It holds account data: it is
/// created mode 0600, and one made earlier with a wider mode is restricted
/// to 0600, whatever the umask. nullptr when it cannot be opened so.
std::shared_ptr<std::FILE> open_audit_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return nullptr;
  std::FILE* f = ::fchmod(fd, 0600) == 0 ? ::fdopen(fd, "a") : nullptr;
  if (!f) {
    ::close(fd);
    return nullptr;
  }
  return std::shared_ptr<std::FILE>(f, std::fclose);
}

/// The at-least-once audit projection: one line per event in a file. After
/// a crash it may see events again; the position in each line lets it skip
/// what the file already has.
projection_spec audit_projection(const std::string& path) {
  projection_spec spec;
  spec.name = "audit";
  spec.mode = delivery::at_least_once;
  auto written = std::make_shared<global_position>(0);
  {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) *written = std::max<global_position>(*written, std::stoull(line));
  }
  std::shared_ptr<std::FILE> out = open_audit_file(path);
  spec.handle_batch = [written, out, path](std::span<const delivered_event> events,
                                           view_batch&) -> result<void> {
    if (!out) return error{errc::io_error, "the audit file " + path + " cannot be opened"};
    std::string lines;
    global_position last = *written;
    for (const auto& d : events) {
      if (d.event.position <= last) continue;  // already written: idempotent
      lines.append(std::to_string(d.event.position)).append(1, ' ').append(d.stream);
      lines.append(1, ' ').append(d.event.type).append(1, '\n');
      last = d.event.position;
    }
    if (std::fwrite(lines.data(), 1, lines.size(), out.get()) != lines.size() ||
        std::fflush(out.get()) != 0)
      return error{errc::io_error, "the audit file cannot be written"};
    *written = last;  // only once written: a failed batch is delivered again
    return {};
  };
  return spec;
}

/// Commands for this run: open every account, then deposits and
/// withdrawals on random accounts (some overdraw and are refused).
std::vector<std::vector<job>> make_jobs(const bank_config& cfg, const std::string& run) {
  std::vector<std::vector<job>> per_client(cfg.clients);
  std::mt19937_64 rng(42);
  for (std::size_t a = 0; a < cfg.accounts; ++a)
    per_client[a % cfg.clients].push_back(
        {run + "-" + std::to_string(a), bank::open{"owner " + std::to_string(a)}});
  for (std::size_t n = cfg.accounts; n < cfg.commands; ++n) {
    // Each account stays with one client, so its commands arrive in order.
    const std::size_t a = rng() % cfg.accounts;
    const std::int64_t amount = 1 + static_cast<std::int64_t>(rng() % 100);
    account::command c = rng() % 3 == 0 ? account::command{bank::withdraw{amount}}
                                        : account::command{bank::deposit{amount}};
    per_client[a % cfg.clients].push_back({run + "-" + std::to_string(a), std::move(c)});
  }
  return per_client;
}

/// The balance of every account stream, folded from the log.
std::map<std::string, std::int64_t> fold_balances(const event_store& store) {
  std::map<std::string, std::int64_t> balances;
  auto txn = store.read();
  if (!txn) return balances;
  auto n = txn->scan_log(1, direction::forward, SIZE_MAX, [&](const event_view& e) {
    auto stream = txn->stream_name(e.stream_id);
    if (!stream || !stream->starts_with("account-")) return true;
    auto ev = codec::decode(e.type, e.payload);
    if (!ev) return true;
    std::int64_t& b = balances[std::string(*stream)];
    if (auto* x = std::get_if<bank::deposited>(&*ev)) b += x->amount;
    if (auto* x = std::get_if<bank::withdrawn>(&*ev)) b -= x->amount;
    return true;
  });
  (void)n;
  return balances;
}

int run(bank_config& cfg) {
  auto opened = event_store::open(cfg.store_options());
  if (!opened) {
    std::fprintf(stderr, "bank: %s\n", opened.err().to_string().c_str());
    return 1;
  }
  std::shared_ptr<event_store> store = std::move(*opened);
  // Each run opens new accounts: "account-r<run>-<n>".
  const std::uint64_t before = store->read()->stream_count();
  const std::string run_id = "r" + std::to_string(before / std::max<std::size_t>(cfg.accounts, 1));
  const std::string audit_path = cfg.data_dir + "-audit.log";

  caf::actor_system sys{cfg};
  auto storage = spawn_storage(sys, store, cfg.storage());
  auto accounts = spawn_registry<account>(sys, {store, storage, cfg.aggregates()});
  std::vector<projection_spec> specs{bank::balances_projection(), audit_projection(audit_path)};
  for (auto& s : specs)
    cfg.apply(s);
  auto manager = spawn_projection_manager(sys, store, storage, std::move(specs));

  std::printf("bank: store %s (sync=%s%s), run %s: %zu accounts, %zu commands, %zu clients\n",
              cfg.data_dir.c_str(), cfg.sync.c_str(), store->encrypted() ? ", encrypted" : "",
              run_id.c_str(), cfg.accounts, cfg.commands, cfg.clients);
  const auto per_client = make_jobs(cfg, run_id);
  const auto head_before = store->read()->head();
  caf::scoped_actor self{sys};
  const auto t0 = clock_type::now();
  for (const auto& jobs : per_client)
    sys.spawn(client, accounts, std::make_shared<const std::vector<job>>(jobs),
              caf::actor_cast<caf::actor>(self));
  std::size_t accepted = 0, rejected = 0;
  for (std::size_t i = 0; i < per_client.size(); ++i)
    self->receive([&](std::size_t a, std::size_t r) {
      accepted += a;
      rejected += r;
    });
  const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();

  commit_stats stats;
  self->request(storage, caf::infinite, stats_atom_v)
      .receive([&](const commit_stats& s) { stats = s; }, [](caf::error&) {});
  const auto head = store->read()->head();

  // Wait for both projections to reach the head.
  std::vector<projection_status> projections;
  for (int i = 0; i < 6000; ++i) {
    self->request(manager, caf::infinite, list_atom_v)
        .receive([&](const std::vector<projection_status>& s) { projections = s; },
                 [](caf::error&) {});
    bool done = true;
    for (const auto& p : projections)
      done = done && p.position >= head;
    if (done) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  std::printf(
      "commands: %zu sent, %zu accepted, %zu refused (overdrafts), %.2f s, %.0f commands/s\n",
      accepted + rejected, accepted, rejected, seconds, (accepted + rejected) / seconds);
  std::printf(
      "events:   %llu appended in %llu commits, %.1f events per commit, commit p50 %llu us, p99 "
      "%llu us\n",
      static_cast<unsigned long long>(head - head_before),
      static_cast<unsigned long long>(stats.commits),
      stats.commits ? static_cast<double>(stats.events) / stats.commits : 0.0,
      static_cast<unsigned long long>(stats.commit_p50_us),
      static_cast<unsigned long long>(stats.commit_p99_us));
  for (const auto& p : projections)
    std::printf("projection %-9s %-13s at %llu of %llu, %s%s%s\n", p.name.c_str(), p.mode.c_str(),
                static_cast<unsigned long long>(p.position),
                static_cast<unsigned long long>(p.head), p.state.c_str(),
                p.error.empty() ? "" : ", error: ", p.error.c_str());

  // The balances view must equal a fold of the log.
  const auto folded = fold_balances(*store);
  std::size_t matching = 0, wrong = 0;
  {
    auto txn = store->read();
    for (const auto& [stream, balance] : folded) {
      auto v = txn->view_get("balances", stream);
      if (v && *v && std::stoll(std::string(**v)) == balance)
        ++matching;
      else
        ++wrong;
    }
  }
  std::printf("check:    balances view %s the log for %zu accounts%s\n",
              wrong == 0 ? "equals a fold of" : "DIFFERS from", matching + wrong,
              wrong == 0 ? "" : " (mismatches found)");
  std::printf("audit:    %s\n", audit_path.c_str());
  std::printf(
      "look inside:\n"
      "  build/tools/varvectl --db %s stats\n"
      "  build/tools/varvectl --db %s read account-%s-7\n"
      "  build/tools/varvectl --db %s projections\n"
      "  build/tools/varvectl --db %s verify\n",
      cfg.data_dir.c_str(), cfg.data_dir.c_str(), run_id.c_str(), cfg.data_dir.c_str(),
      cfg.data_dir.c_str());

  caf::anon_send_exit(manager, caf::exit_reason::user_shutdown);
  self->wait_for(manager);
  caf::anon_send_exit(accounts, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(storage, caf::exit_reason::user_shutdown);
  return wrong == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bank_config cfg;
  if (int code =
          configure(cfg, argc, argv, {.data_dir = "var/demo", .config_file = "config/varve.ini"});
      code != 0 || cfg.cli_helptext_printed)
    return code;
  std::fprintf(stderr, "%s\n", cfg.scheduler_summary().c_str());
  if (cfg.accounts == 0 || cfg.clients == 0 || cfg.commands < cfg.accounts) {
    std::fprintf(stderr,
                 "varve_bank: bad configuration: bank.commands must be at least "
                 "bank.accounts, and both and bank.clients above 0\n");
    return 2;
  }
  return run(cfg);
}
