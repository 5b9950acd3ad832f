// A child process of the remote tests: varve_serve, or varve_test_peer
// serving or hosting (posix_spawn; its port read from its stdout).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../child_process.hpp"

namespace varve_test {

struct child_process {
  pid_t pid = 0;
  std::uint16_t port = 0;

  /// Starts varve_serve (the program `serve`) on `dir`; port 0: any free port.
  void start(const std::string& serve, const std::string& dir, std::uint16_t want_port = 0) {
    std::vector<std::string> args{serve, "--varve.data-dir=" + dir, "--varve.sync=no_sync",
                                  "--varve.map-size-mib=256", "--logger.console=none"};
    if (want_port == 0)
      args.push_back("--any-port");
    else
      args.push_back("--varve.serve-port=" + std::to_string(want_port));
    launch(std::move(args));
  }

  /// Starts the program args[0] and waits for the first line it prints,
  /// which must start with `ready`; "listening on HOST:PORT" sets `port`.
  void launch(std::vector<std::string> args, std::string_view ready = "listening on ") {
    const std::string program = args[0];
    int fd = -1;
    std::tie(pid, fd) = spawn_with_stdout_pipe(std::move(args));
    const std::string out = read_line(fd);
    ::close(fd);
    BOOST_REQUIRE_MESSAGE(out.starts_with(ready), program << " said: '" << out << "'");
    if (out.starts_with("listening on ")) {
      const auto colon = out.rfind(':');
      BOOST_REQUIRE(colon != std::string::npos);
      port = static_cast<std::uint16_t>(std::stoi(out.substr(colon + 1)));
    }
    BOOST_TEST_MESSAGE(program << " " << pid << " " << out.substr(0, out.size() - 1));
  }

  /// Sends `sig` and waits for the exit; the exit status.
  int stop(int sig = SIGTERM) {
    if (pid == 0) return 0;
    ::kill(pid, sig);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = 0;
    return status;
  }
  ~child_process() { stop(SIGKILL); }
};

}  // namespace varve_test
