// The configuration of a Varve application: CAF's actor_system_config with
// every Varve option in the "varve" group, read from config/varve.ini (CAF
// 0.17's INI format; --config-file=PATH for another file) and overridable on
// the command line (--varve.sync=no_sync). config/varve.ini documents each.
//
// Typical main:
//
//   int main(int argc, char** argv) {
//     varve::varve_config cfg;
//     if (int code = varve::configure(cfg, argc, argv)) return code;  // 2 on bad config
//     caf::actor_system sys{cfg};
//     ...
//   }
#pragma once

#include <caf/actor_system_config.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include <varve/actors/aggregate.hpp>
#include <varve/actors/storage_actor.hpp>
#include <varve/projections/projection.hpp>
#include <varve/storage/options.hpp>

namespace varve {

struct varve_config : caf::actor_system_config {
  // Store.
  std::string data_dir = "var/demo";
  std::string sync = "sync";  ///< sync | no_meta_sync | no_sync
  std::string key_file;
  std::size_t map_size_mib = 64;
  std::size_t max_map_size_mib = 256 * 1024;
  std::size_t max_event_bytes = 16 << 20;
  // Storage actor.
  std::size_t batch_max_events = 8192;
  std::size_t batch_max_bytes = 64 << 20;
  // Aggregates.
  std::size_t snapshot_every = 100;
  std::size_t aggregate_idle_timeout_ms = 60000;
  std::size_t aggregate_max_alive = 10000;
  std::size_t aggregate_max_retries = 3;
  // Projections.
  std::size_t projection_batch_events = 1000;
  std::size_t checkpoint_every = 1000;
  std::size_t checkpoint_interval_ms = 1000;
  // Serving the store to other processes.
  std::string serve_host = "127.0.0.1";
  std::size_t serve_port = 7410;

  /// Declares the options and sets the scheduler that measured best for the
  /// storage actor on small machines (sharing, one thread); [scheduler] in
  /// the INI file or --scheduler.* override it.
  varve_config();

  /// Checks every value; the first problem, in one line, naming the option.
  result<void> check() const;

  options store_options() const;
  storage_config storage() const;
  aggregate_options aggregates() const;
  /// Applies the projection options to a spec (batch and checkpoint policy).
  projection_spec& apply(projection_spec& spec) const;
};

/// Parses the command line and the INI file (default config/varve.ini when
/// it exists) into `cfg`, registers Varve's message types and error
/// category, and checks the result. Returns 0 when the program may go on;
/// otherwise prints one line ("<program>: bad configuration: ...") to
/// stderr and returns 2 (or 0 after --help, having printed it: then
/// cfg.cli_helptext_printed is set).
///
/// `own_data_dir`: for programs with a store of their own (the examples
/// other than the bank): it replaces the shared default data directory
/// ("var/demo", also what config/varve.ini names) unless the command line
/// gives --varve.data-dir.
int configure(varve_config& cfg, int argc, char** argv, std::string_view own_data_dir = {});

}  // namespace varve
