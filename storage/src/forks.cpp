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

std::atomic<std::uint64_t> seen{pack(::getpid(), 0)};

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
  while (pid_of(was) != now &&
         !seen.compare_exchange_weak(was, pack(now, static_cast<std::uint32_t>(was) + 1))) {
  }
}

}  // namespace varve::detail
