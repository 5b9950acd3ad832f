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

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <thread>
#include <varve/config/varve_config.hpp>
#include <varve/runtime.hpp>

#include "account.hpp"
#include "balances.hpp"

namespace {

using namespace varve;
using account = bank::account;
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

/// What the clients did.
struct outcome {
  std::atomic<std::size_t> accepted{0}, rejected{0};
};

/// A client: sends its commands one after the other, each after the answer
/// to the previous one.
void client(runtime& rt, const std::vector<job>& jobs, outcome& out) {
  for (const auto& [id, command] : jobs) {
    auto reply = rt.execute<account>(id, command);
    if (reply) {
      ++out.accepted;
      continue;
    }
    if (reply.err().code() != errc::rejected)
      std::fprintf(stderr, "bank: %s\n", reply.err().to_string().c_str());
    ++out.rejected;
  }
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
    auto ev = decode_event<account>(e);
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
  const std::string audit_path = cfg.data_dir + "-audit.log";
  auto rt = runtime::open(cfg, {bank::balances_projection(), audit_projection(audit_path)});
  if (!rt) {
    std::fprintf(stderr, "bank: %s\n", rt.err().to_string().c_str());
    return 1;
  }
  const auto& store = rt->store();
  // Each run opens new accounts: "account-r<run>-<n>".
  const std::uint64_t before = store->read()->stream_count();
  const std::string run_id = "r" + std::to_string(before / std::max<std::size_t>(cfg.accounts, 1));

  std::printf("bank: store %s (sync=%s%s), run %s: %zu accounts, %zu commands, %zu clients\n",
              cfg.data_dir.c_str(), cfg.sync.c_str(), store->encrypted() ? ", encrypted" : "",
              run_id.c_str(), cfg.accounts, cfg.commands, cfg.clients);
  const auto per_client = make_jobs(cfg, run_id);
  const auto head_before = store->read()->head();
  outcome out;
  const auto t0 = clock_type::now();
  {
    std::vector<std::jthread> clients;
    for (const auto& jobs : per_client)
      clients.emplace_back([&rt, &jobs, &out] { client(*rt, jobs, out); });
  }
  const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  const std::size_t accepted = out.accepted, rejected = out.rejected;

  const commit_stats stats = rt->commit_stats().value_or({});
  const auto head = store->read()->head();
  // Read your writes: both projections reach the head.
  for (const char* name : {"balances", "audit"})
    if (auto ok = rt->wait_for(name, head, std::chrono::seconds(60)); !ok)
      std::fprintf(stderr, "bank: %s\n", ok.err().to_string().c_str());
  const auto projections = rt->projections().value_or({});

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
  std::size_t matching = 0, wrong = 0;
  for (const auto& [stream, balance] : fold_balances(*store)) {
    auto v = rt->view<std::int64_t>("balances", stream);
    if (v && *v && **v == balance)
      ++matching;
    else
      ++wrong;
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
  return wrong == 0 ? 0 : 1;  // ~runtime stops the actors, in order
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
