// The command groups. Each adds its subcommands to the application; the one
// the user chose stores what it runs in `context::run`.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "store_access.hpp"

namespace varvectl {

/// What parsing fills in: the global options, and the chosen command.
struct context {
  global_options global;
  std::function<int()> run;
};

/// Makes `sub`, when chosen, run `fn` (after every option is parsed).
inline void when_chosen(CLI::App* sub, context& ctx, std::function<int()> fn) {
  sub->callback([&ctx, fn = std::move(fn)] { ctx.run = fn; });
}

/// The number a numeric option's text is: decimal digits only (no sign,
/// space, base prefix or exponent), within u64; std::nullopt otherwise.
std::optional<std::uint64_t> parse_whole_number(std::string_view text);

/// The check of every numeric option (use with Option::transform, before
/// any other check): parse_whole_number's form, at least `min`. Refuses
/// anything else with "expected a whole number from MIN to
/// 18446744073709551615" (CLI11 prefixes the option's name; exit 2), or
/// with `below_min` for numbers below `min` and negative ones when given
/// ("--from: versions start at 1"). Hands CLI11 the plain decimal form (it
/// reads "010" as octal).
CLI::Validator whole_number(std::uint64_t min, const std::string& below_min = {});

/// init, streams, stats, verify, backup, compact, rebuild-indexes, shred, rotate-key
/// (cmd_store.cpp).
void add_store_commands(CLI::App& app, context& ctx);

/// append, read, read-all, read-query, tail (cmd_events.cpp).
void add_event_commands(CLI::App& app, context& ctx);

/// export, import (cmd_transfer.cpp).
void add_transfer_commands(CLI::App& app, context& ctx);

/// projections, pause, resume, reset, rebuild (cmd_projections.cpp).
void add_projection_commands(CLI::App& app, context& ctx);

}  // namespace varvectl
