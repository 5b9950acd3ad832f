// Stopping on SIGINT / SIGTERM: commands that follow or wait (tail, rebuild
// --wait) poll a flag instead of dying mid-write.
#pragma once

#include <chrono>

namespace varvectl {

/// Installs handlers for SIGINT and SIGTERM that set the stop flag.
void catch_stop_signals();

/// Whether SIGINT or SIGTERM arrived since catch_stop_signals().
bool stop_requested();

/// Sleeps for `d`, returning early (false) when a stop was requested.
bool sleep_unless_stopped(std::chrono::milliseconds d);

}  // namespace varvectl
