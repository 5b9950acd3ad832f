// The configuration of a Varve application: CAF's actor_system_config with
// Varve's settings (varve/config/settings.hpp: every option of the "varve"
// group, read from config/varve.ini or --config-file=PATH and overridable on
// the command line, e.g. --varve.sync=no_sync; config/varve.ini documents
// each), Varve's message types and error category, and the scheduler that
// measured best for the storage actor on small machines (sharing, one
// thread; [scheduler] in the file or --scheduler.* change it, and
// scheduler_summary() says what is in force).
//
// Typical main:
//
//   int main(int argc, char** argv) {
//     varve::varve_config cfg;
//     if (int code = varve::configure(cfg, argc, argv, {.data_dir = "var/app"}))
//       return code;  // 2 on bad config
//     if (cfg.cli_helptext_printed) return 0;
//     caf::actor_system sys{cfg};
//     ...
//   }
//
// A varve_config binds its options to its own fields: do not move it (a
// moved-to one would parse into the old object's fields); copies are not
// allowed (CAF's actor_system_config has none).
#pragma once

#include <caf/actor_system_config.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <varve/actors/aggregate.hpp>
#include <varve/actors/decision.hpp>
#include <varve/actors/storage_actor.hpp>
#include <varve/config/settings.hpp>
#include <varve/projections/projection.hpp>

namespace varve {

struct varve_config : caf::actor_system_config, settings {
  /// Declares Varve's options (bound to the settings fields) and sets the
  /// scheduler (policy sharing, one thread) and a silent console logger;
  /// [scheduler] in the INI file or --scheduler.* override them.
  varve_config();

  /// The storage actor's batching. Never fails.
  storage_config storage() const;
  /// The aggregates' options. Never fails.
  aggregate_options aggregates() const;
  /// The decision models' options (decide<D>). Never fails.
  decision_options decisions() const;
  /// Applies the projection options to a spec (batch and checkpoint
  /// policy) and returns it. Never fails.
  projection_spec& apply(projection_spec& spec) const;
  /// One line naming the scheduler policy and thread count in force (after
  /// configure), for a program to print at start.
  std::string scheduler_summary() const;

 private:
  friend int configure(varve_config& cfg, int argc, char** argv, program_defaults defaults);
  /// Rewrites -h/--help/-? as CAF's --long-help (every group's options),
  /// and boolean options given a value: =true or =1 as the flag, =false or
  /// =0 kept for apply_falsified(). Returns the problem with a boolean
  /// option given another value, else nothing.
  std::optional<std::string> normalize_arguments(std::vector<std::string>& args);
  /// Sets the booleans given =false or =0 (after CAF's parse).
  void apply_falsified();

  std::vector<std::string> falsified_;
};

/// Registers Varve's message types (those of varve::actors and
/// varve::projections) and error category with `cfg`. Never fails; calling
/// it again changes nothing. configure() and varve::runtime call it.
void add_varve_types(caf::actor_system_config& cfg);

/// Registers Varve's message types (those of varve::actors and
/// varve::projections) and error category with `cfg`, parses the command
/// line and the configuration file (--config-file=PATH, else
/// `defaults.config_file` when it exists; see find_config_file) into it,
/// and finishes the settings (unknown options, the data directory's
/// default `defaults.data_dir`, checks: see finish_settings). Boolean
/// options take --name, --name=true|false|1|0. --help (-h, -?) lists every
/// option, Varve's included.
///
/// Returns 0 when the program may go on, also after --help, having printed
/// it (then cfg.cli_helptext_printed is set: the program should stop).
/// Otherwise prints one line ("<program>: bad configuration: ...") to
/// stderr and returns 2: an unreadable configuration file, an unknown
/// option, a value of the wrong type or one that check() refuses (such as
/// no data directory at all), an unexpected argument.
int configure(varve_config& cfg, int argc, char** argv, program_defaults defaults = {});

}  // namespace varve
