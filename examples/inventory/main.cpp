// Inventory: two aggregates and a process manager (a saga) between them.
//
// Concurrent clients place orders (1 to 3 lines) over a few products whose
// stock is limited. The saga reacts to each `order_placed`: it reserves every
// line on the product's stock, then confirms the order; when a line cannot be
// reserved it releases what it had reserved (compensation) and rejects the
// order. At the end it checks, by folding the whole log: no stock ever went
// below zero, every order was confirmed or rejected, and the stock reserved
// is exactly the quantities of the confirmed orders.
//
// The saga is plain code on threads of its own (one per client), which send
// commands through the runtime; an exactly-once projection feeds it. The
// projection keeps its own progress: a view "order_saga" with a row per
// order placed and not yet decided (its lines, as JSON), written with its
// cursor in one transaction, so that orders whose saga was cut short (a
// crash) are driven again at the next start. Every command concerns one
// order and is idempotent per order, so driving an order twice changes
// nothing: the example shows it by replaying the whole run through the saga
// at the end (--inventory.replay).
//
//   varve_inventory [--inventory.orders=N] [--inventory.products=N]
//                   [--inventory.stock=N] [--inventory.clients=N]
//                   [--inventory.replay=BOOL] [--varve.data-dir=DIR] [--varve.sync=...]

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <varve/config/varve_config.hpp>
#include <varve/runtime.hpp>

#include "inventory.hpp"

namespace {

using namespace varve;
using inventory::line;
using inventory::order;
using inventory::stock;
using clock_type = std::chrono::steady_clock;

constexpr std::string_view saga_name = "order_saga";

struct inventory_config : varve_config {
  std::size_t orders = 2000;
  std::size_t products = 5;
  std::size_t stock = 1000;
  std::size_t clients = 16;
  bool replay = true;
  inventory_config() {
    opt_group{custom_options_, "inventory"}
        .add(orders, "orders", "orders to place")
        .add(products, "products", "products (at most 8)")
        .add(stock, "stock", "units of each product received at the start")
        .add(clients, "clients", "concurrent clients placing orders")
        .add(replay, "replay", "drive every order of the run through the saga again at the end");
  }
};

// -- The saga -----------------------------------------------------------------
//
// For each order: reserve every line (all at once); all reserved: confirm.
// A line refused: release every line, then reject. Driven again (a
// redelivery, a retry, a restart), the same steps change nothing: reserve
// and confirm are no-ops for an order that holds its stock and is
// confirmed, and an order already rejected only has its lines released
// (nothing held: nothing to do), never reserved again. Releasing before
// rejecting means a crash between the two leaves an order still placed,
// which is driven again, rather than a rejected order holding stock.

/// What the saga did since it started.
struct saga_stats {
  std::uint64_t driven = 0;     ///< orders taken on (again included)
  std::uint64_t confirmed = 0;  ///< confirm accepted (also when it was already confirmed)
  std::uint64_t rejected = 0;   ///< ended rejected (also when it was already rejected)
  std::uint64_t released = 0;   ///< reservations given back (compensation)
  std::uint64_t retries = 0;    ///< orders driven again after an error that was not a refusal
  std::uint64_t anomalies = 0;  ///< reject refused because the order was confirmed
  std::uint64_t in_flight = 0;  ///< orders waiting or on their way
};

/// The order's status as the log has it (a short read in this process: it
/// does not wait for the writer).
order::status status_of(const event_store& store, const std::string& id) {
  order::state s;
  if (auto txn = store.read())
    (void)txn->scan_stream(stream_of<order>(id), 1, direction::forward, SIZE_MAX,
                           [&](const event_view& v) {
                             if (auto e = decode_event<order>(v)) order::apply(s, *e);
                             return true;
                           });
  return s.current;
}

/// The saga: drive() queues an order (from any thread, without blocking;
/// an order already waiting or on its way is not queued twice), and each
/// of its threads takes the orders one at a time, waiting for each answer.
class saga {
 public:
  /// Starts `threads` threads that send their commands through `rt`; the
  /// saga must be stopped before `rt` goes.
  void start(runtime& rt, std::size_t threads) {
    for (std::size_t i = 0; i < threads; ++i)
      threads_.emplace_back([this, &rt] { work(rt); });
  }
  /// Stops the threads after the orders they are driving.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_)
      t.join();
    threads_.clear();
  }
  ~saga() { stop(); }

  void drive(std::string id, std::vector<line> lines) {
    {
      std::lock_guard lock(mutex_);
      if (!in_flight_.insert(id).second) return;  // already on its way
      queue_.emplace_back(std::move(id), std::move(lines));
    }
    wake_.notify_one();
  }

  saga_stats stats() {
    std::lock_guard lock(mutex_);
    auto out = stats_;
    out.in_flight = in_flight_.size();
    return out;
  }

 private:
  enum class outcome { confirmed, rejected, retry, anomaly };

  void work(runtime& rt) {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      auto [id, lines] = std::move(queue_.front());
      queue_.pop_front();
      for (;;) {
        ++stats_.driven;
        lock.unlock();
        const auto done = drive_once(rt, id, lines);
        lock.lock();
        if (done != outcome::retry) {
          if (done == outcome::confirmed) ++stats_.confirmed;
          if (done == outcome::rejected) ++stats_.rejected;
          if (done == outcome::anomaly) ++stats_.anomalies;
          break;
        }
        // An error that is not a domain refusal (an actor gone, a conflict
        // that outlasted the retries): the whole saga again, a little later.
        ++stats_.retries;
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        lock.lock();
        if (stopping_) break;
      }
      in_flight_.erase(id);
    }
  }

  outcome drive_once(runtime& rt, const std::string& id, const std::vector<line>& lines) {
    if (status_of(*rt.store(), id) == order::status::rejected)
      return release_all(rt, id, lines, std::nullopt);
    std::vector<std::future<result<command_reply>>> reserved;
    for (const auto& l : lines)
      reserved.push_back(
          rt.execute_async<stock>(l.product, inventory::reserve_stock{id, l.quantity}));
    std::string refusal;  // the first line refused, in words
    bool failed = false;  // an error that is not a refusal
    for (std::size_t i = 0; i < lines.size(); ++i) {
      auto r = reserved[i].get();
      if (r) continue;
      if (r.err().code() != errc::rejected)
        failed = true;
      else if (refusal.empty())
        refusal = lines[i].product + ": " + r.err().message();
    }
    if (failed) return outcome::retry;
    if (!refusal.empty()) return release_all(rt, id, lines, refusal);
    // Every line reserved: confirm. Refused (the order was rejected
    // meanwhile): give the stock back.
    auto confirmed = rt.execute<order>(id, inventory::confirm_order{});
    if (confirmed) return outcome::confirmed;
    if (confirmed.err().code() != errc::rejected) return outcome::retry;
    return release_all(rt, id, lines, std::nullopt);
  }

  /// Gives back whatever the order holds on each of its products, then
  /// rejects it when `reason` is given.
  outcome release_all(runtime& rt, const std::string& id, const std::vector<line>& lines,
                      std::optional<std::string> reason) {
    std::vector<std::future<result<command_reply>>> released;
    for (const auto& l : lines)
      released.push_back(rt.execute_async<stock>(l.product, inventory::release_stock{id}));
    bool failed = false;
    for (auto& f : released) {
      auto r = f.get();
      failed = failed || !r;
      if (r) {
        std::lock_guard lock(mutex_);
        stats_.released += r->events;
      }
    }
    if (failed) return outcome::retry;
    if (!reason) return outcome::rejected;
    auto rejected = rt.execute<order>(id, inventory::reject_order{*reason});
    if (rejected) return outcome::rejected;
    if (rejected.err().code() != errc::rejected) return outcome::retry;
    // Confirmed, yet a line could not be reserved: cannot happen while
    // confirmed orders keep their reservations.
    return outcome::anomaly;
  }

  std::mutex mutex_;  // guards what follows
  std::condition_variable wake_;
  std::deque<std::pair<std::string, std::vector<line>>> queue_;
  std::set<std::string> in_flight_;  // orders queued or on their way
  saga_stats stats_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// -- The projection that feeds it -----------------------------------------------

/// The exactly-once projection that feeds the saga: on order_placed it
/// records the order as pending (its lines) and hands it to the saga; on a
/// decision it removes the row. A crash at any point leaves the row (or the
/// cursor before the event), and the order is driven again.
projection_spec saga_projection(saga& driver) {
  projection_spec spec;
  spec.name = std::string(saga_name);
  spec.filter.categories = {std::string(order::category)};
  spec.handle = [&driver](const delivered_event& d, view_batch& view) -> result<void> {
    std::string id(d.stream.substr(order::category.size() + 1));
    if (d.event.type != inventory::order_placed::type_name) {  // confirmed or rejected
      view.erase(id);
      return {};
    }
    auto e = decode_event<order>(d.event);
    if (!e) return error{errc::corruption, "an order event does not decode"};
    auto& lines = std::get<inventory::order_placed>(*e).lines;
    if (auto put = put_json(view, id, lines); !put) return put;
    driver.drive(std::move(id), std::move(lines));
    return {};
  };
  return spec;
}

/// The pending rows: orders placed and not yet decided, with their lines
/// (none for a row that does not read).
std::map<std::string, std::vector<line>> pending_orders(const event_store& store) {
  std::map<std::string, std::vector<line>> out;
  auto txn = store.read();
  if (!txn) return out;
  (void)txn->scan_view(saga_name, "", [&](std::string_view key, std::string_view value) {
    auto& lines = out[std::string(key)];
    try {
      lines = nlohmann::json::parse(value).get<std::vector<line>>();
    } catch (const nlohmann::json::exception&) {  // not lines: driven without any
    }
    return true;
  });
  return out;
}

// -- Checking -------------------------------------------------------------------

struct product_fold {
  std::int64_t received = 0, available = 0, lowest = 0;
  std::map<std::string, std::int64_t> reservations;  // order -> quantity, at the end
};

struct order_fold {
  order::state state;
  std::vector<line> lines;
};

struct fold {
  std::map<std::string, product_fold> products;  // by product id
  std::map<std::string, order_fold> orders;      // by order id
  std::size_t unreadable = 0;  // events that do not decode (another codec's, e.g. CAF binary)
};

bool fold_stock(product_fold& p, const event_view& v) {
  auto e = decode_event<stock>(v);
  if (!e) return false;
  if (auto* r = std::get_if<inventory::stock_received>(&*e)) {
    p.received += r->quantity;
    p.available += r->quantity;
  } else if (auto* r = std::get_if<inventory::stock_reserved>(&*e)) {
    p.available -= r->quantity;
    p.reservations[r->order] = r->quantity;
  } else if (auto* r = std::get_if<inventory::stock_released>(&*e)) {
    p.available += r->quantity;
    p.reservations.erase(r->order);
  }
  p.lowest = std::min(p.lowest, p.available);
  return true;
}

bool fold_order(order_fold& o, const event_view& v) {
  auto e = decode_event<order>(v);
  if (!e) return false;
  if (auto* placed = std::get_if<inventory::order_placed>(&*e)) o.lines = placed->lines;
  order::apply(o.state, *e);
  return true;
}

/// Folds every order and stock stream of the store (this run's and those
/// of earlier runs) from the log, in one pass.
fold fold_store(const event_store& store) {
  fold out;
  auto txn = store.read();
  if (!txn) return out;
  std::unordered_map<std::uint64_t, std::string> names;  // stream id -> name
  (void)txn->scan_log(1, direction::forward, SIZE_MAX, [&](const event_view& v) {
    auto it = names.find(v.stream_id);
    if (it == names.end()) {
      auto name = txn->stream_name(v.stream_id);
      it = names.emplace(v.stream_id, name ? std::string(*name) : std::string()).first;
    }
    const std::string& stream = it->second;
    if (stream.starts_with("stock-"))
      out.unreadable += !fold_stock(out.products[stream.substr(6)], v);
    else if (stream.starts_with("order-"))
      out.unreadable += !fold_order(out.orders[stream.substr(6)], v);
    return true;
  });
  return out;
}

struct verdict {
  bool ok = true;
  std::size_t confirmed = 0, rejected = 0, undecided = 0;
  std::size_t mismatches = 0;  // reservations that are not lines of confirmed orders, or missing
  std::int64_t lowest = 0;     // lowest stock seen, all products
  std::int64_t reserved = 0;   // units held by reservations at the end
  std::int64_t confirmed_qty = 0;  // units in the lines of confirmed orders
};

verdict check(const fold& f) {
  verdict v;
  std::set<std::tuple<std::string, std::string, std::int64_t>> held, wanted;  // order, product, qty
  for (const auto& [product, p] : f.products) {
    v.lowest = std::min(v.lowest, p.lowest);
    for (const auto& [id, qty] : p.reservations) {
      held.emplace(id, product, qty);
      v.reserved += qty;
    }
  }
  for (const auto& [id, o] : f.orders) {
    if (o.state.current == order::status::confirmed) {
      ++v.confirmed;
      for (const auto& l : o.lines) {
        wanted.emplace(id, l.product, l.quantity);
        v.confirmed_qty += l.quantity;
      }
    } else if (o.state.current == order::status::rejected) {
      ++v.rejected;
    } else {
      ++v.undecided;
    }
  }
  std::vector<std::tuple<std::string, std::string, std::int64_t>> diff;
  std::set_symmetric_difference(held.begin(), held.end(), wanted.begin(), wanted.end(),
                                std::back_inserter(diff));
  v.mismatches = diff.size();
  v.ok = v.lowest >= 0 && v.undecided == 0 && v.mismatches == 0 && v.reserved == v.confirmed_qty &&
         f.unreadable == 0;
  return v;
}

// -- The run ----------------------------------------------------------------------

using job = std::pair<std::string, std::vector<line>>;

std::vector<std::vector<job>> make_jobs(const inventory_config& cfg, const std::string& run,
                                        const std::vector<std::string>& products) {
  std::vector<std::vector<job>> per_client(cfg.clients);
  std::mt19937_64 rng(7);
  for (std::size_t n = 0; n < cfg.orders; ++n) {
    std::vector<std::string> pick = products;
    std::shuffle(pick.begin(), pick.end(), rng);
    pick.resize(std::min<std::size_t>(1 + rng() % 3, pick.size()));
    std::vector<line> lines;
    for (auto& product : pick)
      lines.push_back({std::move(product), 1 + static_cast<std::int64_t>(rng() % 5)});
    per_client[n % cfg.clients].push_back({run + "-" + std::to_string(n), std::move(lines)});
  }
  return per_client;
}

/// Waits until the saga is idle, its projection at the head and no order
/// pending; false after a minute, or when the projection failed.
bool settle(runtime& rt, saga& driver, projection_status& status) {
  const auto deadline = clock_type::now() + std::chrono::minutes(1);
  while (clock_type::now() < deadline) {
    const auto head = rt.store()->read()->head();
    auto caught_up = rt.wait_for(saga_name, head, std::chrono::seconds(1));
    if (auto s = rt.status(saga_name)) status = *s;
    if (status.state == "failed") return false;
    if (caught_up && driver.stats().in_flight == 0 && pending_orders(*rt.store()).empty() &&
        rt.store()->read()->head() == head)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

int run(inventory_config& cfg) {
  saga driver;  // fed by the projection, from the start
  auto rt = runtime::open(cfg, {saga_projection(driver)});
  if (!rt) {
    std::fprintf(stderr, "inventory: %s\n", rt.err().to_string().c_str());
    return 1;
  }
  const event_store& store = *rt->store();
  // Each run has products and orders of its own: "stock-r<head>-widget",
  // "order-r<head>-<n>".
  const std::uint64_t head0 = store.read()->head();
  const std::string run_id = "r" + std::to_string(head0);
  static constexpr std::array<const char*, 8> names{"widget", "gadget",  "sprocket", "gizmo",
                                                    "flange", "bracket", "valve",    "spring"};
  std::vector<std::string> products;
  for (std::size_t i = 0; i < cfg.products; ++i)
    products.push_back(run_id + "-" + names[i]);
  const auto per_client = make_jobs(cfg, run_id, products);

  driver.start(*rt, cfg.clients);
  // Orders of an earlier run that were placed and not decided (a crash):
  // the saga takes them up again.
  const auto leftovers = pending_orders(store);
  for (const auto& [id, lines] : leftovers)
    driver.drive(id, lines);

  std::printf(
      "inventory: store %s (sync=%s), run %s: %zu orders over %zu products (%zu units each), "
      "%zu clients\n",
      cfg.data_dir.c_str(), cfg.sync.c_str(), run_id.c_str(), cfg.orders, cfg.products, cfg.stock,
      cfg.clients);
  if (!leftovers.empty())
    std::printf("recovery: %zu orders of earlier runs were placed and not decided: driven again\n",
                leftovers.size());

  bool ok = true;
  for (const auto& product : products)
    if (auto r = rt->execute<stock>(product,
                                    inventory::receive_stock{static_cast<std::int64_t>(cfg.stock)});
        !r) {
      ok = false;
      std::fprintf(stderr, "inventory: receive: %s\n", r.err().to_string().c_str());
    }

  // The clients: a thread each, placing its orders one after the other.
  const auto t0 = clock_type::now();
  std::atomic<std::size_t> placed = 0, refused = 0;
  std::vector<std::thread> clients;
  for (const auto& jobs : per_client)
    clients.emplace_back([&, &jobs = jobs] {
      for (const auto& [id, lines] : jobs) {
        auto r = rt->execute<order>(id, inventory::place_order{lines});
        ++(r ? placed : refused);
        if (!r) std::fprintf(stderr, "inventory: place: %s\n", r.err().to_string().c_str());
      }
    });
  for (auto& c : clients)
    c.join();
  projection_status status;
  const bool settled = settle(*rt, driver, status);
  const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  const auto first = driver.stats();
  const commit_stats stats = rt->commit_stats().value_or({});
  const auto head1 = store.read()->head();
  const auto f = fold_store(store);
  const auto v1 = check(f);
  std::size_t confirmed = 0, rejected = 0;
  for (const auto& [id, o] : f.orders) {
    if (!id.starts_with(run_id + "-")) continue;
    confirmed += o.state.current == order::status::confirmed;
    rejected += o.state.current == order::status::rejected;
  }

  std::printf("orders:   %zu placed, %zu refused; decided in %.2f s: %zu confirmed, %zu rejected\n",
              placed.load(), refused.load(), seconds, confirmed, rejected);
  std::printf(
      "saga:     %llu orders driven, %llu reservations released (compensation), %llu retries%s\n",
      static_cast<unsigned long long>(first.driven),
      static_cast<unsigned long long>(first.released),
      static_cast<unsigned long long>(first.retries), settled ? "" : ", NOT SETTLED");
  std::printf("events:   %llu appended in %llu commits, %.1f events per commit\n",
              static_cast<unsigned long long>(head1 - head0),
              static_cast<unsigned long long>(stats.commits),
              stats.commits ? static_cast<double>(stats.events) / stats.commits : 0.0);
  for (const auto& id : products) {
    const auto& p = f.products.at(id);
    std::int64_t held = 0;
    for (const auto& [order_id, qty] : p.reservations)
      held += qty;
    std::printf(
        "stock:    %-18s received %lld, reserved %lld for %zu orders, available %lld, "
        "lowest %lld\n",
        id.c_str(), static_cast<long long>(p.received), static_cast<long long>(held),
        p.reservations.size(), static_cast<long long>(p.available),
        static_cast<long long>(p.lowest));
  }

  // At-least-once, shown: every event of the run goes through the saga
  // again (its cursor back to where the run began). Nothing may change:
  // confirmed orders reserve and confirm again (no-ops), rejected ones only
  // release (nothing held): not one event appended.
  auto v2 = v1;
  bool replay_ok = true;
  if (cfg.replay) {
    replay_ok = rt->reset(saga_name, head0).ok();
    replay_ok = replay_ok && settle(*rt, driver, status);
    const auto second = driver.stats();
    const auto appended = store.read()->head() - head1;
    v2 = check(fold_store(store));
    const bool same = v2.confirmed == v1.confirmed && v2.rejected == v1.rejected;
    replay_ok = replay_ok && second.driven - first.driven >= placed && appended == 0 && same;
    std::printf(
        "replay:   saga cursor reset to %llu: %llu orders driven again, %llu events appended, "
        "decisions %s\n",
        static_cast<unsigned long long>(head0),
        static_cast<unsigned long long>(second.driven - first.driven),
        static_cast<unsigned long long>(appended), same ? "unchanged" : "CHANGED");
  }
  const auto last = driver.stats();
  std::printf("projection %s exactly_once at %llu of %llu, %s%s%s\n", status.name.c_str(),
              static_cast<unsigned long long>(status.position),
              static_cast<unsigned long long>(status.head), status.state.c_str(),
              status.error.empty() ? "" : ", error: ", status.error.c_str());

  driver.stop();
  const bool all_ok =
      ok && settled && replay_ok && v1.ok && v2.ok && placed == cfg.orders && last.anomalies == 0;
  std::printf(
      "check:    whole store (%zu orders, %zu products): lowest stock %lld; %zu orders undecided; "
      "reserved %lld units = %lld in confirmed orders, %zu reservations unmatched\n",
      f.orders.size(), f.products.size(), static_cast<long long>(std::min(v1.lowest, v2.lowest)),
      v2.undecided, static_cast<long long>(v2.reserved), static_cast<long long>(v2.confirmed_qty),
      v2.mismatches);
  if (f.unreadable > 0)
    std::printf(
        "check:    %zu events do not decode (written with another codec?): use a new "
        "--varve.data-dir\n",
        f.unreadable);
  std::printf("%s\n", all_ok ? "inventory: invariants hold: no stock below zero, every order "
                               "confirmed or rejected, confirmed quantities equal reserved ones"
                             : "inventory: CHECKS FAILED");
  std::printf(
      "look inside:\n"
      "  build/tools/varvectl --db %s read stock-%s\n"
      "  build/tools/varvectl --db %s read order-%s-0\n"
      "  build/tools/varvectl --db %s projections\n",
      cfg.data_dir.c_str(), products.front().c_str(), cfg.data_dir.c_str(), run_id.c_str(),
      cfg.data_dir.c_str());

  return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  inventory_config cfg;
  // Not the demo's store: a store of its own unless told otherwise.
  if (int code = configure(cfg, argc, argv,
                           {.data_dir = "var/inventory", .config_file = "config/varve.ini"});
      code != 0 || cfg.cli_helptext_printed)
    return code;
  std::fprintf(stderr, "%s\n", cfg.scheduler_summary().c_str());
  if (cfg.orders == 0 || cfg.clients == 0 || cfg.products == 0 || cfg.products > 8 ||
      cfg.stock == 0) {
    std::fprintf(stderr,
                 "varve_inventory: bad configuration: inventory.orders, .clients and .stock "
                 "must be above 0, inventory.products 1 to 8\n");
    return 2;
  }
  return run(cfg);
}
