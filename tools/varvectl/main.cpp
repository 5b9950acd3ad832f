// varvectl: the command-line tool of a Varve store. See the README's
// "varvectl" section for the commands, their output and exit codes.
#include "cli.hpp"

int main(int argc, char** argv) {
  return varvectl::run_cli(argc, argv);
}
