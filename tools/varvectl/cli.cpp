#include "cli.hpp"

#include <cstdint>
#include <exception>
#include <iostream>
#include <string>

#include "commands.hpp"
#include "encoding.hpp"
#include "exit_code.hpp"
#include "signals.hpp"

namespace varvectl {

CLI::Validator starts_at_one(const std::string& what) {
  return CLI::Validator(
      [what](const std::string& text) -> std::string {
        std::uint64_t n = 0;  // read as the option will be: "00", "+0", "0x0" are 0 too
        if ((CLI::detail::lexical_cast(text, n) && n == 0) || text.starts_with('-'))
          return what + " start at 1";
        return {};
      },
      "", "starts at 1");
}

int run_cli(int argc, char** argv) {
  context ctx;
  CLI::App app{
      "varvectl: inspect and administer a Varve event store.\n"
      "Exit codes: 0 done, 1 other error, 2 bad usage or input, 3 version conflict,\n"
      "4 wrong key or authentication failure, 5 not found.",
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
    std::cerr << terminal_text(std::string("varvectl: ") + e.what())
              << "\nRun 'varvectl --help' for usage.\n";
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
