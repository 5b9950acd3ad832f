// The bank's read model: the exactly-once balances projection.
#pragma once

#include <string>
#include <varve/actors/aggregate.hpp>
#include <varve/projections/json_view.hpp>
#include <varve/projections/spec.hpp>

#include "account.hpp"

namespace bank {

/// The exactly-once balances projection: view "balances", account stream ->
/// balance (a JSON number).
inline varve::projection_spec balances_projection() {
  varve::projection_spec spec;
  spec.name = "balances";
  spec.filter.categories = {"account"};
  spec.handle = [](const varve::delivered_event& d,
                   varve::view_batch& view) -> varve::result<void> {
    auto e = varve::decode_event<account>(d.event);
    if (!e) return varve::error{varve::errc::corruption, "an account event does not decode"};
    std::int64_t delta = 0;
    if (auto* x = std::get_if<deposited>(&*e)) delta = x->amount;
    if (auto* x = std::get_if<withdrawn>(&*e)) delta = -x->amount;
    auto balance = varve::get_json<std::int64_t>(view, d.stream);
    if (!balance) return balance.err();
    return varve::put_json(view, d.stream, balance->value_or(0) + delta);
  };
  return spec;
}

}  // namespace bank
