#include "forks.hpp"

#include <pthread.h>

#include <atomic>

namespace varve::detail {

namespace {

std::atomic<unsigned> forks{0};
const int forks_counted = ::pthread_atfork(nullptr, nullptr, [] { forks.fetch_add(1); });

}  // namespace

unsigned forks_made() noexcept {
  return forks.load(std::memory_order_relaxed);
}

}  // namespace varve::detail
