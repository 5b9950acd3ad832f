// The bank's read model: the exactly-once balances projection.
#pragma once

#include <string>
#include <varve/actors/codec.hpp>
#include <varve/projections/projection.hpp>

#include "account.hpp"

namespace bank {

/// The exactly-once balances projection: view "balances", account stream ->
/// balance.
inline varve::projection_spec balances_projection() {
  varve::projection_spec spec;
  spec.name = "balances";
  spec.filter.categories = {"account"};
  spec.handle = [](const varve::delivered_event& d,
                   varve::view_batch& view) -> varve::result<void> {
    auto e = varve::default_codec<account::event>::decode(d.event.type, d.event.payload);
    if (!e) return varve::error{varve::errc::corruption, "an account event does not decode"};
    std::int64_t delta = 0;
    if (auto* x = std::get_if<deposited>(&*e)) delta = x->amount;
    if (auto* x = std::get_if<withdrawn>(&*e)) delta = -x->amount;
    auto current = view.get(d.stream);
    if (!current) return current.err();
    const std::int64_t balance = (*current ? std::stoll(**current) : 0) + delta;
    view.put(d.stream, std::to_string(balance));
    return {};
  };
  return spec;
}

}  // namespace bank
