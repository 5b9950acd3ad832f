#include "common/tempdir.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace varve::bench {

namespace {

/// The live temporary directories, for the signal thread.
struct registry {
  std::mutex mutex;
  std::vector<std::filesystem::path> dirs;
};

registry& live() {
  static registry* r = new registry;  // never destroyed: the signal thread may outlive main
  return *r;
}

void register_dir(const std::filesystem::path& p) {
  std::lock_guard lock(live().mutex);
  live().dirs.push_back(p);
}

void unregister_dir(const std::filesystem::path& p) noexcept {
  std::lock_guard lock(live().mutex);
  auto& dirs = live().dirs;
  dirs.erase(std::remove(dirs.begin(), dirs.end(), p), dirs.end());
}

}  // namespace

void remove_temp_dirs_on_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  // Blocked here and so in every thread started later; taken by sigwait below.
  if (int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr); rc != 0)
    throw std::system_error(rc, std::generic_category(), "pthread_sigmask");
  std::thread([set] {
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    {
      std::lock_guard lock(live().mutex);
      for (const auto& p : live().dirs) {
        std::error_code ec;
        std::filesystem::remove_all(p, ec);
      }
    }
    ::_exit(128 + sig);
  }).detach();
}

temp_dir::temp_dir(const std::filesystem::path& parent, std::string_view prefix) {
  const std::filesystem::path base =
      parent.empty() ? std::filesystem::temp_directory_path() : parent;
  std::filesystem::create_directories(base);
  std::string pattern = (base / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  path_ = pattern;
  try {
    register_dir(path_);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
    throw;
  }
}

temp_dir::~temp_dir() {
  remove();
}

temp_dir::temp_dir(temp_dir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

temp_dir& temp_dir::operator=(temp_dir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

void temp_dir::remove() noexcept {
  if (path_.empty()) return;
  unregister_dir(path_);
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) std::cerr << "warning: could not remove " << path_ << ": " << ec.message() << '\n';
  path_.clear();
}

}  // namespace varve::bench
