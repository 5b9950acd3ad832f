// Temporary directories that remove themselves.
#pragma once

#include <filesystem>
#include <string_view>

namespace varve::bench {

/// Creates a fresh directory `<parent>/<prefix>-XXXXXX` (mode 0700; parent
/// defaults to the system temporary directory and is created if missing) and
/// removes it, with everything in it, when destroyed, or when the process is
/// interrupted (see remove_temp_dirs_on_signals()).
class temp_dir {
 public:
  explicit temp_dir(const std::filesystem::path& parent = {},
                    std::string_view prefix = "varve-bench");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  temp_dir(temp_dir&& other) noexcept;
  temp_dir& operator=(temp_dir&& other) noexcept;

  const std::filesystem::path& path() const noexcept { return path_; }
  /// path() / name
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

  /// Removes the directory now (idempotent). Errors are reported on stderr,
  /// not thrown.
  void remove() noexcept;

 private:
  std::filesystem::path path_;
};

/// Makes SIGINT, SIGTERM and SIGHUP remove every live temp_dir before the
/// process exits (status 128 + signal). Call once at the start of main, before
/// any other thread exists: the signals are then taken by a thread of their own.
void remove_temp_dirs_on_signals();

}  // namespace varve::bench
