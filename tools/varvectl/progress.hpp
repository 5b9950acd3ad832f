// A one-line progress display on stderr, drawn only when stderr is a
// terminal (nothing at all when it is piped or redirected).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace varvectl {

class progress {
 public:
  /// `label` starts the line; `total` 0 means unknown (counts only).
  explicit progress(std::string label, std::uint64_t total = 0);
  ~progress();  ///< clears the line
  progress(const progress&) = delete;
  progress& operator=(const progress&) = delete;

  /// Redraws "label: done / total (pct%)  elapsed", at most every 100 ms
  /// unless `force`.
  void update(std::uint64_t done, bool force = false);
  void set_total(std::uint64_t total) { total_ = total; }
  /// Shows amounts as sizes ("1.5 MiB") instead of counts.
  void set_bytes(bool bytes) { bytes_ = bytes; }

  /// Clears the line (once).
  void finish();

  /// Whether anything is drawn (stderr is a terminal).
  bool active() const { return active_; }

 private:
  std::string label_;
  std::uint64_t total_;
  bool bytes_ = false;
  bool active_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
  std::chrono::steady_clock::time_point start_;
};

}  // namespace varvectl
