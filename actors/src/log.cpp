#include "varve/actors/log.hpp"

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace varve {

namespace {

std::mutex sink_mutex;
std::shared_ptr<const log_sink> current_sink;  // null: stderr

void to_stderr(std::string_view component, std::string_view message) {
  std::string line = "varve: ";
  line.append(component).append(": ").append(message).append("\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace

std::string_view to_string(log_level level) noexcept {
  switch (level) {
    case log_level::info:
      return "info";
    case log_level::warning:
      return "warning";
    case log_level::error:
      return "error";
  }
  return "unknown";
}

void set_log_sink(log_sink sink) {
  auto next = sink ? std::make_shared<const log_sink>(std::move(sink)) : nullptr;
  std::lock_guard<std::mutex> lock(sink_mutex);
  current_sink = std::move(next);
}

void log(log_level level, std::string_view component, std::string_view message) noexcept {
  std::shared_ptr<const log_sink> sink;
  {
    std::lock_guard<std::mutex> lock(sink_mutex);
    sink = current_sink;
  }
  try {
    if (sink)
      (*sink)(level, component, message);
    else
      to_stderr(component, message);
  } catch (...) {
  }
}

}  // namespace varve
