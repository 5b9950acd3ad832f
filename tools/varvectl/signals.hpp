// Signals. Stopping on SIGINT / SIGTERM: commands that follow or wait (tail,
// rebuild --wait) poll a flag instead of dying mid-write. Faults: a damaged
// or truncated data.mdb can make LMDB touch memory outside the file (SIGBUS,
// SIGSEGV) or stop on an inconsistent page (SIGABRT from its assertions);
// varvectl then says so and exits 1 instead of dying from the signal.
#pragma once

#include <chrono>

namespace varvectl {

/// Installs handlers for SIGINT and SIGTERM that set the stop flag.
void catch_stop_signals();

/// Whether SIGINT or SIGTERM arrived since catch_stop_signals().
bool stop_requested();

/// Sleeps for `d`, returning early (false) when a stop was requested.
bool sleep_unless_stopped(std::chrono::milliseconds d);

/// Installs handlers for SIGBUS, SIGSEGV and SIGABRT, run on an alternate
/// signal stack (a stack overflow is a SIGSEGV too), that write one line to
/// stderr with write(2) and _exit(1):
///   varvectl: corruption: reading the store touched memory outside data.mdb
///   (SIGBUS); the file is damaged or truncated: run 'varvectl verify',
///   restore from a backup
/// (SIGABRT: "aborted, most likely by an LMDB assertion on an inconsistent
/// page of data.mdb (SIGABRT); the file is probably damaged: ..."), or, with
/// `json`, {"error":"corruption","message":"..."}. The lines are composed
/// here, before the handlers are installed (nothing is formatted in them).
/// A fault from anything else (a bug) gets the same line: the store is the
/// one input varvectl maps into memory. Call once, from the main thread,
/// before the store is opened.
void catch_fault_signals(bool json);

}  // namespace varvectl
