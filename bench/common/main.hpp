// What every benchmark program's main() needs.
#pragma once

#include <functional>

namespace varve::bench {

/// Runs `body` and returns its exit code; an exception escaping it is printed
/// to stderr and gives exit code 1. SIGINT, SIGTERM and SIGHUP remove the
/// temporary directories before the process exits.
int guarded_main(const std::function<int()>& body) noexcept;

/// Raises the soft limit of open files to the hard limit (1024 writers with a
/// connection each need more than the usual 1024 descriptors).
void raise_fd_limit() noexcept;

}  // namespace varve::bench
