#include "signals.hpp"

#include <unistd.h>

#include <csignal>
#include <string>
#include <thread>

#include "event_json.hpp"

namespace varvectl {

namespace {

volatile std::sig_atomic_t stop_flag = 0;

extern "C" void on_stop_signal(int) {
  stop_flag = 1;
}

/// The line a fault handler writes, per signal; set before the handlers.
struct fault_line {
  int signal;
  std::string text;
};
fault_line fault_lines[3];

/// The alternate stack the fault handlers run on.
alignas(16) char fault_stack[64 * 1024];

extern "C" void on_fault_signal(int sig) {
  for (const fault_line& f : fault_lines) {
    if (f.signal != sig) continue;
    const char* p = f.text.data();
    std::size_t left = f.text.size();
    while (left > 0) {
      const ssize_t n = ::write(STDERR_FILENO, p, left);
      if (n <= 0) break;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  ::_exit(1);
}

std::string fault_text(const char* signal_name, const char* what, const char* verdict,
                       bool as_json) {
  const std::string message = std::string(what) + " (" + signal_name + "); " + verdict +
                              ": run 'varvectl verify', restore from a backup";
  if (!as_json) return "varvectl: corruption: " + message + "\n";
  json j;
  j["error"] = "corruption";
  j["message"] = message;
  return json_text(j) + "\n";
}

}  // namespace

void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking call returns early
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void catch_fault_signals(bool as_json) {
  static constexpr const char* outside = "reading the store touched memory outside data.mdb";
  static constexpr const char* damaged = "the file is damaged or truncated";
  fault_lines[0] = {SIGBUS, fault_text("SIGBUS", outside, damaged, as_json)};
  fault_lines[1] = {SIGSEGV, fault_text("SIGSEGV", outside, damaged, as_json)};
  fault_lines[2] = {SIGABRT, fault_text("SIGABRT",
                                        "aborted, most likely by an LMDB assertion on an "
                                        "inconsistent page of data.mdb",
                                        "the file is probably damaged", as_json)};
  stack_t alt{};
  alt.ss_sp = fault_stack;
  alt.ss_size = sizeof fault_stack;
  alt.ss_flags = 0;
  ::sigaltstack(&alt, nullptr);
  struct sigaction sa {};
  sa.sa_handler = on_fault_signal;
  sigfillset(&sa.sa_mask);  // nothing else runs while the line is written
  sa.sa_flags = SA_ONSTACK;
  for (const fault_line& f : fault_lines)
    sigaction(f.signal, &sa, nullptr);
}

bool stop_requested() {
  return stop_flag != 0;
}

bool sleep_unless_stopped(std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stop_requested()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(10)));
  }
  return false;
}

}  // namespace varvectl
