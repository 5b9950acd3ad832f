// The bank account aggregate: open, deposit, withdraw (no overdraft), close.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <varve/actors/aggregate.hpp>

namespace bank {

// Events, stored as JSON (the type names are what the log shows).
struct opened {
  static constexpr std::string_view type_name = "account_opened";
  std::string owner;
};
VARVE_JSON(opened, owner)
struct deposited {
  static constexpr std::string_view type_name = "deposited";
  std::int64_t amount = 0;
};
VARVE_JSON(deposited, amount)
struct withdrawn {
  static constexpr std::string_view type_name = "withdrawn";
  std::int64_t amount = 0;
};
VARVE_JSON(withdrawn, amount)
struct closed {
  static constexpr std::string_view type_name = "account_closed";
};
VARVE_JSON(closed)

// Commands: plain structs (examples/remote_projection adds what sending
// them to another process takes).
struct open {
  std::string owner;
};
struct deposit {
  std::int64_t amount = 0;
};
struct withdraw {
  std::int64_t amount = 0;
};
struct close {};

struct account {
  static constexpr std::string_view category = "account";
  static constexpr std::uint32_t snapshot_schema = 2;  // 2: JSON

  struct state {
    bool open = false;
    bool closed = false;
    std::int64_t balance = 0;
  };
  using event = std::variant<opened, deposited, withdrawn, closed>;
  using command = std::variant<open, deposit, withdraw, close>;

  static void apply(state& s, const event& e) {
    if (std::holds_alternative<opened>(e)) s.open = true;
    if (auto* d = std::get_if<deposited>(&e)) s.balance += d->amount;
    if (auto* w = std::get_if<withdrawn>(&e)) s.balance -= w->amount;
    if (std::holds_alternative<closed>(e)) s.closed = true;
  }

  static varve::decision<event> decide(const state& s, const command& c) {
    using varve::errc;
    using varve::error;
    if (auto* o = std::get_if<open>(&c)) {
      if (s.open) return error{errc::rejected, "the account is already open"};
      return std::vector<event>{opened{o->owner}};
    }
    if (!s.open || s.closed) return error{errc::rejected, "the account is not open"};
    if (auto* d = std::get_if<deposit>(&c)) {
      if (d->amount <= 0) return error{errc::rejected, "a deposit must be positive"};
      return std::vector<event>{deposited{d->amount}};
    }
    if (auto* w = std::get_if<withdraw>(&c)) {
      if (w->amount <= 0) return error{errc::rejected, "a withdrawal must be positive"};
      if (w->amount > s.balance) return error{errc::rejected, "insufficient funds"};
      return std::vector<event>{withdrawn{w->amount}};
    }
    if (s.balance != 0) return error{errc::rejected, "only an empty account can be closed"};
    return std::vector<event>{closed{}};
  }
};

VARVE_JSON(account::state, open, closed, balance)

}  // namespace bank
