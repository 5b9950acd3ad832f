// varvectl's exit codes, and how a varve::error becomes one.
#pragma once

#include <string_view>

#include "varve/storage/error.hpp"

namespace varvectl {

/// The process's exit status; stable, documented in the README.
enum exit_code : int {
  exit_ok = 0,         ///< done
  exit_failure = 1,    ///< any other error (also: verify found faults)
  exit_usage = 2,      ///< bad usage or input
  exit_conflict = 3,   ///< version conflict (wrong expected version)
  exit_auth = 4,       ///< wrong key, or data that does not authenticate
  exit_not_found = 5,  ///< no such store, stream or event
};

/// wrong_expected_version → 3, auth_failed → 4, not_found → 5,
/// invalid_argument → 2, every other code → 1.
exit_code exit_code_for(varve::errc code) noexcept;

/// Writes the error to stderr ("varvectl: <code>: <message>" through
/// terminal_text, or one JSON object {"error":code,"message":...} when
/// `json`) and returns its exit code.
exit_code report(const varve::error& e, bool json);

/// An error for bad usage or input (exit 2).
varve::error usage_error(std::string_view message);

}  // namespace varvectl
