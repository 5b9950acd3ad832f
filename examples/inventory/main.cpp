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
// The saga is an actor (it sends commands and waits for answers without
// blocking); an exactly-once projection feeds it. The projection keeps its
// own progress: a view "order_saga" with a row per order placed and not yet
// decided, written with its cursor in one transaction, so that orders whose
// saga was cut short (a crash) are driven again at the next start. Every
// command concerns one order and is idempotent per order, so driving an
// order twice changes nothing: the example shows it by replaying the whole
// run through the saga at the end (--inventory.replay).
//
//   varve_inventory [--inventory.orders=N] [--inventory.products=N]
//                   [--inventory.stock=N] [--inventory.clients=N]
//                   [--inventory.replay=BOOL] [--varve.data-dir=DIR] [--varve.sync=...]
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <varve/config/varve_config.hpp>
#include <varve/projections/manager.hpp>

#include "inventory.hpp"

namespace {

using namespace varve;
using inventory::line;
using inventory::order;
using inventory::stock;
using clock_type = std::chrono::steady_clock;

using drive_atom = caf::atom_constant<caf::atom("drive")>;
using saga_stats_atom = caf::atom_constant<caf::atom("sagastats")>;
constexpr drive_atom drive_atom_v{};
constexpr saga_stats_atom saga_stats_atom_v{};

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
  std::uint64_t in_flight = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, saga_stats& x) {
  return f(caf::meta::type_name("saga_stats"), x.driven, x.confirmed, x.rejected, x.released,
           x.retries, x.anomalies, x.in_flight);
}

struct saga_state {
  static inline const char* name = "inventory.saga";
  std::shared_ptr<event_store> store;
  registry_actor<order> orders;
  registry_actor<stock> stocks;
  std::set<std::string> in_flight;  // orders on their way: a second drive waits for nothing
  std::uint64_t scheduled = 0;      // drives again after an error, not yet started
  saga_stats stats;
};

using saga_actor = caf::stateful_actor<saga_state>*;

/// The order's status as the log has it (a short read in this process: it
/// does not wait for the writer).
order::status status_of(const event_store& store, const std::string& id) {
  order::state s;
  if (auto txn = store.read())
    (void)txn->scan_stream(stream_of<order>(id), 1, direction::forward, SIZE_MAX,
                           [&](const event_view& v) {
                             if (auto e = default_codec<order::event>::decode(v.type, v.payload))
                               order::apply(s, *e);
                             return true;
                           });
  return s.current;
}

void finish(saga_actor self, const std::string& id, bool confirmed) {
  self->state.in_flight.erase(id);
  ++(confirmed ? self->state.stats.confirmed : self->state.stats.rejected);
}

/// After an error that is not a domain refusal (an actor gone, a conflict
/// that outlasted the retries): the whole saga again, a little later.
void retry(saga_actor self, const std::string& id, const std::vector<line>& lines) {
  self->state.in_flight.erase(id);
  ++self->state.stats.retries;
  ++self->state.scheduled;
  self->delayed_send(self, std::chrono::milliseconds(20), drive_atom_v, id, lines, true);
}

/// Gives back whatever the order holds on each of its products, then rejects
/// it when `reason` is given.
void release_all(saga_actor self, const std::string& id, const std::vector<line>& lines,
                 std::optional<std::string> reason) {
  struct progress {
    std::size_t waiting;
    bool failed = false;
  };
  auto p = std::make_shared<progress>(progress{lines.size()});
  auto answered = [=] {
    if (--p->waiting > 0) return;
    if (p->failed) return retry(self, id, lines);
    if (!reason) return finish(self, id, false);
    self->request(self->state.orders, caf::infinite, command_atom_v, id,
                  inventory::reject_order{*reason})
        .then([=](const command_reply&) { finish(self, id, false); },
              [=](caf::error& e) {
                if (error_from(e).code() != errc::rejected) return retry(self, id, lines);
                // Confirmed, yet a line could not be reserved: cannot happen
                // while confirmed orders keep their reservations.
                ++self->state.stats.anomalies;
                self->state.in_flight.erase(id);
              });
  };
  for (const auto& l : lines)
    self->request(self->state.stocks, caf::infinite, command_atom_v, l.product,
                  inventory::release_stock{id})
        .then(
            [=](const command_reply& r) {
              self->state.stats.released += r.events;
              answered();
            },
            [=](caf::error&) {
              p->failed = true;
              answered();
            });
}

/// Every line reserved: confirm. Refused (the order was rejected meanwhile):
/// give the stock back.
void confirm(saga_actor self, const std::string& id, const std::vector<line>& lines) {
  self->request(self->state.orders, caf::infinite, command_atom_v, id, inventory::confirm_order{})
      .then([=](const command_reply&) { finish(self, id, true); },
            [=](caf::error& e) {
              if (error_from(e).code() == errc::rejected)
                release_all(self, id, lines, std::nullopt);
              else
                retry(self, id, lines);
            });
}

void drive(saga_actor self, const std::string& id, const std::vector<line>& lines) {
  auto& st = self->state;
  if (!st.in_flight.insert(id).second) return;  // already on its way
  ++st.stats.driven;
  const auto status = status_of(*st.store, id);
  if (status == order::status::rejected) return release_all(self, id, lines, std::nullopt);
  struct progress {
    std::size_t waiting;
    std::string refusal;  // the first line refused, in words
    bool failed = false;  // an error that is not a refusal
  };
  auto p = std::make_shared<progress>(progress{lines.size(), {}});
  auto answered = [=] {
    if (--p->waiting > 0) return;
    if (p->failed)
      retry(self, id, lines);
    else if (p->refusal.empty())
      confirm(self, id, lines);
    else
      release_all(self, id, lines, p->refusal);
  };
  for (const auto& l : lines)
    self->request(st.stocks, caf::infinite, command_atom_v, l.product,
                  inventory::reserve_stock{id, l.quantity})
        .then([=](const command_reply&) { answered(); },
              [=](caf::error& e) {
                auto err = error_from(e);
                if (err.code() != errc::rejected)
                  p->failed = true;
                else if (p->refusal.empty())
                  p->refusal = l.product + ": " + err.message();
                answered();
              });
}

caf::behavior saga(saga_actor self, std::shared_ptr<event_store> store,
                   registry_actor<order> orders, registry_actor<stock> stocks) {
  self->state.store = std::move(store);
  self->state.orders = std::move(orders);
  self->state.stocks = std::move(stocks);
  return {
      [self](drive_atom, const std::string& id, const std::vector<line>& lines) {
        drive(self, id, lines);
      },
      [self](drive_atom, const std::string& id, const std::vector<line>& lines, bool) {
        --self->state.scheduled;  // a retry
        drive(self, id, lines);
      },
      [self](saga_stats_atom) {
        auto out = self->state.stats;
        out.in_flight = self->state.in_flight.size() + self->state.scheduled;
        return out;
      },
  };
}

// -- The projection that feeds it -----------------------------------------------

/// Lines as a view value: "product:quantity,product:quantity".
std::string encode_lines(const std::vector<line>& lines) {
  std::string out;
  for (const auto& l : lines)
    out += (out.empty() ? "" : ",") + l.product + ":" + std::to_string(l.quantity);
  return out;
}

/// The lines of a view value; a malformed item is left out.
std::vector<line> decode_lines(std::string_view text) {
  std::vector<line> out;
  while (!text.empty()) {
    auto item = text.substr(0, text.find(','));
    text.remove_prefix(std::min(text.size(), item.size() + 1));
    const auto colon = item.rfind(':');
    if (colon == std::string_view::npos) continue;
    line l{std::string(item.substr(0, colon)), 0};
    const auto digits = item.substr(colon + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), l.quantity);
    if (ec == std::errc{} && end == digits.data() + digits.size()) out.push_back(std::move(l));
  }
  return out;
}

/// The exactly-once projection that feeds the saga: on order_placed it
/// records the order as pending and hands it to the saga; on a decision it
/// removes the row. A crash at any point leaves the row (or the cursor
/// before the event), and the order is driven again.
projection_spec saga_projection(caf::actor saga_handle) {
  projection_spec spec;
  spec.name = std::string(saga_name);
  spec.filter.categories = {std::string(order::category)};
  spec.handle = [saga_handle](const delivered_event& d, view_batch& view) -> result<void> {
    const std::string id(d.stream.substr(order::category.size() + 1));
    if (d.event.type == inventory::order_placed::type_name) {
      auto e = default_codec<order::event>::decode(d.event.type, d.event.payload);
      if (!e) return error{errc::corruption, "an order event does not decode"};
      const auto& lines = std::get<inventory::order_placed>(*e).lines;
      view.put(id, encode_lines(lines));
      caf::anon_send(saga_handle, drive_atom_v, id, lines);
    } else {  // confirmed or rejected
      view.erase(id);
    }
    return {};
  };
  return spec;
}

/// The pending rows: orders placed and not yet decided.
std::map<std::string, std::string> pending_orders(const event_store& store) {
  std::map<std::string, std::string> out;
  auto txn = store.read();
  if (!txn) return out;
  (void)txn->scan_view(saga_name, "", [&](std::string_view key, std::string_view value) {
    out.emplace(key, value);
    return true;
  });
  return out;
}

// -- Clients --------------------------------------------------------------------

using job = std::pair<std::string, std::vector<line>>;

struct client_progress {
  std::size_t next = 0, placed = 0, refused = 0;
};

/// Places the client's next order, and the one after it when answered; at
/// the end reports (placed, refused) to `collector` and quits.
void place_next(caf::event_based_actor* self, registry_actor<order> orders,
                std::shared_ptr<const std::vector<job>> jobs, std::shared_ptr<client_progress> p,
                caf::actor collector) {
  if (p->next == jobs->size()) {
    self->send(collector, p->placed, p->refused);
    self->quit();
    return;
  }
  const job& j = (*jobs)[p->next++];
  self->request(orders, caf::infinite, command_atom_v, j.first, inventory::place_order{j.second})
      .then(
          [=](const command_reply&) {
            ++p->placed;
            place_next(self, orders, jobs, p, collector);
          },
          [=](caf::error& e) {
            std::fprintf(stderr, "inventory: place: %s\n", error_from(e).to_string().c_str());
            ++p->refused;
            place_next(self, orders, jobs, p, collector);
          });
}

/// A client: places its orders one after the other.
void client(caf::event_based_actor* self, registry_actor<order> orders,
            std::shared_ptr<const std::vector<job>> jobs, caf::actor collector) {
  place_next(self, std::move(orders), std::move(jobs), std::make_shared<client_progress>(),
             std::move(collector));
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
};

void fold_stock(product_fold& p, const event_view& v) {
  auto e = default_codec<stock::event>::decode(v.type, v.payload);
  if (!e) return;
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
}

void fold_order(order_fold& o, const event_view& v) {
  auto e = default_codec<order::event>::decode(v.type, v.payload);
  if (!e) return;
  if (auto* placed = std::get_if<inventory::order_placed>(&*e)) o.lines = placed->lines;
  order::apply(o.state, *e);
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
      fold_stock(out.products[stream.substr(6)], v);
    else if (stream.starts_with("order-"))
      fold_order(out.orders[stream.substr(6)], v);
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
  v.ok = v.lowest >= 0 && v.undecided == 0 && v.mismatches == 0 && v.reserved == v.confirmed_qty;
  return v;
}

// -- The run ----------------------------------------------------------------------

saga_stats ask_saga(caf::scoped_actor& self, const caf::actor& saga_handle) {
  saga_stats out;
  self->request(saga_handle, caf::infinite, saga_stats_atom_v)
      .receive([&](const saga_stats& s) { out = s; }, [](caf::error&) {});
  return out;
}

/// Waits until the saga is idle, its projection at the head and no order
/// pending; false after a minute.
bool settle(caf::scoped_actor& self, const projection_manager& manager,
            const caf::actor& saga_handle, const event_store& store, projection_status& status) {
  for (int i = 0; i < 6000; ++i) {
    const auto head = store.read()->head();
    self->request(manager, caf::infinite, status_atom_v, std::string(saga_name))
        .receive([&](const projection_status& s) { status = s; }, [](caf::error&) {});
    if (status.state == "failed") return false;
    if (status.position >= head && ask_saga(self, saga_handle).in_flight == 0 &&
        pending_orders(store).empty() && store.read()->head() == head)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

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

int run(inventory_config& cfg) {
  auto opened = event_store::open(cfg.store_options());
  if (!opened) {
    std::fprintf(stderr, "inventory: %s\n", opened.err().to_string().c_str());
    return 1;
  }
  std::shared_ptr<event_store> store = std::move(*opened);
  // Each run has products and orders of its own: "stock-r<head>-widget",
  // "order-r<head>-<n>".
  const std::uint64_t head0 = store->read()->head();
  const std::string run_id = "r" + std::to_string(head0);
  static constexpr std::array<const char*, 8> names{"widget", "gadget",  "sprocket", "gizmo",
                                                    "flange", "bracket", "valve",    "spring"};
  std::vector<std::string> products;
  for (std::size_t i = 0; i < cfg.products; ++i)
    products.push_back(run_id + "-" + names[i]);
  const auto per_client = make_jobs(cfg, run_id, products);

  caf::actor_system sys{cfg};
  auto storage = spawn_storage(sys, store, cfg.storage());
  auto orders = spawn_registry<order>(sys, {store, storage, cfg.aggregates()});
  auto stocks = spawn_registry<stock>(sys, {store, storage, cfg.aggregates()});
  auto saga_handle = caf::actor_cast<caf::actor>(sys.spawn(saga, store, orders, stocks));
  // Orders of an earlier run that were placed and not decided (a crash):
  // the saga takes them up again before anything new.
  const auto leftovers = pending_orders(*store);
  for (const auto& [id, lines] : leftovers)
    caf::anon_send(saga_handle, drive_atom_v, id, decode_lines(lines));
  std::vector<projection_spec> specs{saga_projection(saga_handle)};
  cfg.apply(specs.front());
  auto manager = spawn_projection_manager(sys, store, storage, std::move(specs));
  caf::scoped_actor self{sys};

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
    self->request(stocks, caf::infinite, command_atom_v, product,
                  inventory::receive_stock{static_cast<std::int64_t>(cfg.stock)})
        .receive([](const command_reply&) {},
                 [&](caf::error& e) {
                   ok = false;
                   std::fprintf(stderr, "inventory: receive: %s\n",
                                error_from(e).to_string().c_str());
                 });

  const auto t0 = clock_type::now();
  for (const auto& jobs : per_client)
    sys.spawn(client, orders, std::make_shared<const std::vector<job>>(jobs),
              caf::actor_cast<caf::actor>(self));
  std::size_t placed = 0, refused = 0;
  for (std::size_t i = 0; i < per_client.size(); ++i)
    self->receive([&](std::size_t p, std::size_t r) {
      placed += p;
      refused += r;
    });
  projection_status status;
  const bool settled = settle(self, manager, saga_handle, *store, status);
  const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  const auto first = ask_saga(self, saga_handle);
  commit_stats stats;
  self->request(storage, caf::infinite, stats_atom_v)
      .receive([&](const commit_stats& s) { stats = s; }, [](caf::error&) {});
  const auto head1 = store->read()->head();
  const auto f = fold_store(*store);
  const auto v1 = check(f);
  std::size_t confirmed = 0, rejected = 0;
  for (const auto& [id, o] : f.orders) {
    if (!id.starts_with(run_id + "-")) continue;
    confirmed += o.state.current == order::status::confirmed;
    rejected += o.state.current == order::status::rejected;
  }

  std::printf("orders:   %zu placed, %zu refused; decided in %.2f s: %zu confirmed, %zu rejected\n",
              placed, refused, seconds, confirmed, rejected);
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
    self->request(manager, caf::infinite, reset_atom_v, std::string(saga_name), head0)
        .receive([](const projection_status&) {}, [&](caf::error&) { replay_ok = false; });
    replay_ok = replay_ok && settle(self, manager, saga_handle, *store, status);
    const auto second = ask_saga(self, saga_handle);
    const auto appended = store->read()->head() - head1;
    v2 = check(fold_store(*store));
    const bool same = v2.confirmed == v1.confirmed && v2.rejected == v1.rejected;
    replay_ok = replay_ok && second.driven - first.driven >= placed && appended == 0 && same;
    std::printf(
        "replay:   saga cursor reset to %llu: %llu orders driven again, %llu events appended, "
        "decisions %s\n",
        static_cast<unsigned long long>(head0),
        static_cast<unsigned long long>(second.driven - first.driven),
        static_cast<unsigned long long>(appended), same ? "unchanged" : "CHANGED");
  }
  const auto last = ask_saga(self, saga_handle);
  std::printf("projection %s exactly_once at %llu of %llu, %s%s%s\n", status.name.c_str(),
              static_cast<unsigned long long>(status.position),
              static_cast<unsigned long long>(status.head), status.state.c_str(),
              status.error.empty() ? "" : ", error: ", status.error.c_str());

  const bool all_ok =
      ok && settled && replay_ok && v1.ok && v2.ok && placed == cfg.orders && last.anomalies == 0;
  std::printf(
      "check:    whole store (%zu orders, %zu products): lowest stock %lld; %zu orders undecided; "
      "reserved %lld units = %lld in confirmed orders, %zu reservations unmatched\n",
      f.orders.size(), f.products.size(), static_cast<long long>(std::min(v1.lowest, v2.lowest)),
      v2.undecided, static_cast<long long>(v2.reserved), static_cast<long long>(v2.confirmed_qty),
      v2.mismatches);
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

  caf::anon_send_exit(manager, caf::exit_reason::user_shutdown);
  self->wait_for(manager);
  caf::anon_send_exit(saga_handle, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(orders, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(stocks, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(storage, caf::exit_reason::user_shutdown);
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
