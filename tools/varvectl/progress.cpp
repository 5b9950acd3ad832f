#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

#include "encoding.hpp"
#include "output.hpp"

namespace varvectl {

progress::progress(std::string label, std::uint64_t total)
    : label_(terminal_text(label)),
      total_(total),
      active_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

progress::~progress() {
  finish();
}

void progress::update(std::uint64_t done, bool force) {
  if (!active_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && drawn_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  drawn_ = true;
  const double secs = std::chrono::duration<double>(now - start_).count();
  auto amount = [&](std::uint64_t n) { return bytes_ ? human_size(n) : std::to_string(n); };
  std::string line = label_ + ": " + amount(done);
  if (total_ > 0) {
    line += " / " + amount(total_);
    char pct[16];
    std::snprintf(pct, sizeof pct, " (%.0f%%)",
                  100.0 * static_cast<double>(done) / static_cast<double>(total_));
    line += pct;
  }
  char elapsed[32];
  std::snprintf(elapsed, sizeof elapsed, "  %.1fs", secs);
  line += elapsed;
  std::fprintf(stderr, "\r%s\033[K", line.c_str());
  std::fflush(stderr);
}

void progress::finish() {
  if (!active_ || !drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace varvectl
