#include "common/main.hpp"

#include <sys/resource.h>

#include <exception>
#include <iostream>

#include "common/tempdir.hpp"

namespace varve::bench {

int guarded_main(const std::function<int()>& body) noexcept {
  try {
    remove_temp_dirs_on_signals();
    return body();
  } catch (const std::exception& e) {
    try {
      std::cerr << "error: " << e.what() << '\n';
    } catch (...) {
    }
  } catch (...) {
    try {
      std::cerr << "error: unknown exception\n";
    } catch (...) {
    }
  }
  return 1;
}

void raise_fd_limit() noexcept {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace varve::bench
