#include "cli.hpp"

#include <charconv>
#include <cstdint>
#include <exception>
#include <iostream>
#include <limits>
#include <string>
#include <string_view>

#include "commands.hpp"
#include "encoding.hpp"
#include "exit_code.hpp"
#include "signals.hpp"

namespace varvectl {

std::optional<std::uint64_t> parse_whole_number(std::string_view text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  std::uint64_t n = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, n);  // decimal; out of range: an error
  if (ec != std::errc() || p != end) return std::nullopt;
  return n;
}

CLI::Validator whole_number(std::uint64_t min, const std::string& below_min) {
  const std::string range = "expected a whole number from " + std::to_string(min) + " to " +
                            std::to_string(std::numeric_limits<std::uint64_t>::max());
  return CLI::Validator(
      [min, below_min, range](std::string& text) -> std::string {
        auto n = parse_whole_number(text);
        if (!n) {
          const bool negative = text.size() > 1 && text[0] == '-' &&
                                parse_whole_number(std::string_view(text).substr(1));
          if (negative && !below_min.empty()) return below_min;
          return range + ", not '" + text + "'";
        }
        if (*n < min) return below_min.empty() ? range : below_min;
        // CLI11 then reads the text with strtoull in base 0 ("010" is 8 to
        // it): hand it the plain decimal form.
        text = std::to_string(*n);
        return {};
      },
      "", "whole number");
}

namespace {

/// Whether --json is on the command line (before a "--" that ends the
/// options), for errors found while parsing it: by then the flag may not be
/// set yet.
bool json_requested(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == "--json") return true;
  }
  return false;
}

}  // namespace

int run_cli(int argc, char** argv) {
  context ctx;
  CLI::App app{
      "varvectl: inspect and administer a Varve event store.\n"
      "Exit codes: 0 done, 1 other error, 2 bad usage or input, 3 version conflict,\n"
      "4 wrong key or authentication failure, 5 not found (no store, stream or file).",
      "varvectl"};
  app.fallthrough();  // global options may also follow the command
  app.require_subcommand(1);
  app.add_option("--db", ctx.global.db, "store directory")
      ->envname("VARVE_DB")
      ->capture_default_str()
      ->type_name("DIR");
  app.add_option("--key-file", ctx.global.key_file,
                 "master key file (32 bytes or 64 hex digits, mode 0600)")
      ->envname("VARVE_KEY_FILE")
      ->type_name("FILE");
  app.add_flag("--json", ctx.global.json, "print JSON (JSON lines for listings)");

  add_store_commands(app, ctx);
  add_event_commands(app, ctx);
  add_transfer_commands(app, ctx);
  add_projection_commands(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help
  } catch (const CLI::ParseError& e) {
    std::string message = e.what();
    // No command chosen: CLI11 says "A subcommand is required" even when
    // one was given but is unknown; name it.
    if (app.get_subcommands().empty() && !app.remaining().empty() &&
        !app.remaining().front().starts_with('-'))
      message = "unknown command '" + app.remaining().front() + "'";
    if (ctx.global.json || json_requested(argc, argv)) return report(usage_error(message), true);
    std::cerr << terminal_text("varvectl: " + message) << "\nRun 'varvectl --help' for usage.\n";
    return exit_usage;
  }
  if (!ctx.run) return exit_usage;
  catch_fault_signals(ctx.global.json);  // before any command opens the store
  try {
    return ctx.run();
  } catch (const std::exception& e) {  // bad_alloc, a library's surprise: never a crash
    return report(varve::error{varve::errc::io_error, std::string("unexpected: ") + e.what()},
                  ctx.global.json);
  }
}

}  // namespace varvectl
