// The command groups. Each adds its subcommands to the application; the one
// the user chose stores what it runs in `context::run`.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

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

/// A check for --from options: refuses 0 (and negative numbers) with "<what>
/// start at 1" (CLI11 prefixes the option's name: "--from: versions start at
/// 1"; exit 2).
CLI::Validator starts_at_one(const std::string& what);

/// init, streams, stats, verify, backup, compact, shred, rotate-key (cmd_store.cpp).
void add_store_commands(CLI::App& app, context& ctx);

/// append, read, read-all, tail (cmd_events.cpp).
void add_event_commands(CLI::App& app, context& ctx);

/// export, import (cmd_transfer.cpp).
void add_transfer_commands(CLI::App& app, context& ctx);

/// projections, pause, resume, reset, rebuild (cmd_projections.cpp).
void add_projection_commands(CLI::App& app, context& ctx);

}  // namespace varvectl
