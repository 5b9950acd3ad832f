// varvectl's command line: the global options, the command groups, parse
// errors (exit 2) and running the chosen command.
#pragma once

namespace varvectl {

/// Parses `argv`, runs the command and returns the process's exit code.
int run_cli(int argc, char** argv);

}  // namespace varvectl
