// Where Varve's libraries report what they cannot return to a caller: a
// snapshot that was ignored, a projection that stopped, a control request
// that failed. The application chooses where such reports go; by default
// each is one line on stderr ("varve: <component>: <message>").
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace varve {

enum class log_level : std::uint8_t { info, warning, error };

/// "info", "warning" or "error".
std::string_view to_string(log_level level) noexcept;

/// Receives one report: its level, the component that made it ("aggregate",
/// "projection", "projection manager", "remote projection") and the message
/// (one line, without a newline). Called from actor threads: it must be
/// thread-safe and should not block.
using log_sink =
    std::function<void(log_level level, std::string_view component, std::string_view message)>;

/// Sends every later report of this process to `sink`; an empty sink
/// restores the default (stderr). Thread-safe.
void set_log_sink(log_sink sink);

/// Reports through the current sink. Thread-safe; never throws (a sink
/// that throws loses that report).
void log(log_level level, std::string_view component, std::string_view message) noexcept;

}  // namespace varve
