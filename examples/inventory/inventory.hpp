// The aggregates of the inventory example: orders (place, confirm, reject)
// and the stock of one product (receive, reserve, release; never below
// zero). Reserve, release, confirm and reject carry or concern one order and
// are idempotent per order, so a process manager may send them again.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <varve/actors/aggregate.hpp>
#include <vector>

namespace inventory {

/// One line of an order: a product and how many.
struct line {
  std::string product;
  std::int64_t quantity = 0;
};
VARVE_JSON(line, product, quantity)

// Events are stored as JSON; commands are plain structs (they stay in the
// process).

// Order events and commands.
struct order_placed {
  static constexpr std::string_view type_name = "order_placed";
  std::vector<line> lines;
};
VARVE_JSON(order_placed, lines)
struct order_confirmed {
  static constexpr std::string_view type_name = "order_confirmed";
};
VARVE_JSON(order_confirmed)
struct order_rejected {
  static constexpr std::string_view type_name = "order_rejected";
  std::string reason;
};
VARVE_JSON(order_rejected, reason)
struct place_order {
  std::vector<line> lines;
};
struct confirm_order {};
struct reject_order {
  std::string reason;
};

// Stock events and commands.
struct stock_received {
  static constexpr std::string_view type_name = "stock_received";
  std::int64_t quantity = 0;
};
VARVE_JSON(stock_received, quantity)
struct stock_reserved {
  static constexpr std::string_view type_name = "stock_reserved";
  std::string order;
  std::int64_t quantity = 0;
};
VARVE_JSON(stock_reserved, order, quantity)
struct stock_released {
  static constexpr std::string_view type_name = "stock_released";
  std::string order;
  std::int64_t quantity = 0;
};
VARVE_JSON(stock_released, order, quantity)
struct receive_stock {
  std::int64_t quantity = 0;
};
struct reserve_stock {
  std::string order;
  std::int64_t quantity = 0;
};
struct release_stock {
  std::string order;
};

struct order {
  static constexpr std::string_view category = "order";

  enum class status : std::uint8_t { none, placed, confirmed, rejected };
  struct state {
    status current = status::none;
  };
  using event = std::variant<order_placed, order_confirmed, order_rejected>;
  using command = std::variant<place_order, confirm_order, reject_order>;

  static void apply(state& s, const event& e) {
    if (std::holds_alternative<order_placed>(e)) s.current = status::placed;
    if (std::holds_alternative<order_confirmed>(e)) s.current = status::confirmed;
    if (std::holds_alternative<order_rejected>(e)) s.current = status::rejected;
  }

  static varve::decision<event> decide(const state& s, const command& c) {
    using varve::errc;
    using varve::error;
    if (auto* p = std::get_if<place_order>(&c)) {
      if (s.current != status::none) return error{errc::rejected, "the order was already placed"};
      if (p->lines.empty()) return error{errc::rejected, "an order needs at least one line"};
      for (std::size_t i = 0; i < p->lines.size(); ++i) {
        if (p->lines[i].quantity <= 0) return error{errc::rejected, "quantities must be positive"};
        for (std::size_t j = 0; j < i; ++j)
          if (p->lines[j].product == p->lines[i].product)
            return error{errc::rejected, "one line per product"};
      }
      return std::vector<event>{order_placed{p->lines}};
    }
    if (s.current == status::none) return error{errc::rejected, "no such order"};
    if (std::holds_alternative<confirm_order>(c)) {
      if (s.current == status::confirmed) return std::vector<event>{};  // again: nothing to do
      if (s.current == status::rejected) return error{errc::rejected, "the order was rejected"};
      return std::vector<event>{order_confirmed{}};
    }
    if (s.current == status::rejected) return std::vector<event>{};
    if (s.current == status::confirmed) return error{errc::rejected, "the order was confirmed"};
    return std::vector<event>{order_rejected{std::get<reject_order>(c).reason}};
  }
};

struct stock {
  static constexpr std::string_view category = "stock";
  static constexpr std::uint32_t snapshot_schema = 2;  // 2: JSON

  struct state {
    std::int64_t available = 0;
    std::map<std::string, std::int64_t> reservations;  ///< order -> quantity
  };
  using event = std::variant<stock_received, stock_reserved, stock_released>;
  using command = std::variant<receive_stock, reserve_stock, release_stock>;

  static void apply(state& s, const event& e) {
    if (auto* r = std::get_if<stock_received>(&e)) s.available += r->quantity;
    if (auto* r = std::get_if<stock_reserved>(&e)) {
      s.available -= r->quantity;
      s.reservations[r->order] = r->quantity;
    }
    if (auto* r = std::get_if<stock_released>(&e)) {
      s.available += r->quantity;
      s.reservations.erase(r->order);
    }
  }

  static varve::decision<event> decide(const state& s, const command& c) {
    using varve::errc;
    using varve::error;
    if (auto* r = std::get_if<receive_stock>(&c)) {
      if (r->quantity <= 0) return error{errc::rejected, "a delivery must be positive"};
      return std::vector<event>{stock_received{r->quantity}};
    }
    if (auto* r = std::get_if<reserve_stock>(&c)) {
      if (s.reservations.count(r->order)) return std::vector<event>{};  // already reserved
      if (r->quantity <= 0) return error{errc::rejected, "a reservation must be positive"};
      if (r->quantity > s.available)
        return error{errc::rejected, "insufficient stock: " + std::to_string(s.available) +
                                         " available, " + std::to_string(r->quantity) + " asked"};
      return std::vector<event>{stock_reserved{r->order, r->quantity}};
    }
    const auto& order = std::get<release_stock>(c).order;
    auto it = s.reservations.find(order);
    if (it == s.reservations.end()) return std::vector<event>{};  // nothing held: nothing to do
    return std::vector<event>{stock_released{order, it->second}};
  }
};

VARVE_JSON(stock::state, available, reservations)

}  // namespace inventory
