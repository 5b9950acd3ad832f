// Child processes for the tests that run real programs (crash test, remote
// tests): started with posix_spawn, their standard output on a pipe.
#pragma once

#include <spawn.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <string>
#include <utility>
#include <vector>

extern char** environ;

namespace varve_test {

/// Starts the program args[0] with `args` as its argv and its standard
/// output on a pipe. Returns its pid and the read end of the pipe (the
/// caller closes it); fails the test when it cannot start.
inline std::pair<pid_t, int> spawn_with_stdout_pipe(std::vector<std::string> args) {
  int fds[2];
  BOOST_REQUIRE(::pipe(fds) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  BOOST_REQUIRE_MESSAGE(rc == 0, "posix_spawn " << args[0] << ": " << rc);
  return {pid, fds[0]};
}

/// Reads `fd` up to and including the first newline, or to its end.
inline std::string read_line(int fd) {
  std::string out;
  char c;
  while (out.find('\n') == std::string::npos && ::read(fd, &c, 1) == 1)
    out += c;
  return out;
}

}  // namespace varve_test
