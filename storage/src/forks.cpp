#include "forks.hpp"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace varve::detail {

namespace {

// The process id seen last (high half) and the forks counted (low half),
// changed together: a thread that finds the new process id finds the
// fork counted too.
std::uint64_t pack(pid_t pid, std::uint32_t forks) {
  return std::uint64_t{static_cast<std::uint32_t>(pid)} << 32 | forks;
}
pid_t pid_of(std::uint64_t v) {
  return static_cast<pid_t>(v >> 32);
}

// Constant-initialized (process id 0: not seen yet), so that a store
// written to while the program's statics are set up, before this file's
// dynamic initializers ran, is counted right: an initializer must not
// reset the count afterwards.
constinit std::atomic<std::uint64_t> seen{0};

const int forks_counted = ::pthread_atfork(nullptr, nullptr, [] {
  seen.store(pack(::getpid(), static_cast<std::uint32_t>(seen.load()) + 1));
});

}  // namespace

unsigned forks_made() noexcept {
  return static_cast<std::uint32_t>(seen.load(std::memory_order_relaxed));
}

void notice_unannounced_fork() noexcept {
  const pid_t now = ::getpid();
  std::uint64_t was = seen.load();
  while (pid_of(was) != now) {
    // The first look of the process records its id; a later one that finds
    // another id is in a child that fork()'s handlers did not see.
    const std::uint32_t forks = static_cast<std::uint32_t>(was) + (pid_of(was) == 0 ? 0 : 1);
    if (seen.compare_exchange_weak(was, pack(now, forks))) return;
  }
}

}  // namespace varve::detail
