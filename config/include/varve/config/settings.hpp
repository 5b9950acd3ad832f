// Varve's settings: the options of the "varve" group of a program's
// configuration, as a plain struct, read from a configuration file (CAF
// 0.17's INI format: --config-file=PATH, else the program's default file)
// and the command line (--varve.<name>=<value>, which wins), and checked.
// Nothing is read from the working directory unless the program names it.
// config/varve.ini documents each option.
//
// This library knows no actors: programs without an actor system read their
// settings with read_settings(); varve_config (varve/config/varve_config.hpp)
// is the same settings inside CAF's actor_system_config. Nothing here is
// thread-safe; nothing keeps a reference to its arguments unless it says so.
#pragma once

#include <caf/fwd.hpp>

#include <cstddef>
#include <string>
#include <string_view>

#include <varve/storage/error.hpp>
#include <varve/storage/options.hpp>

namespace varve {

struct settings {
  // Store.
  std::string data_dir;  ///< directory of the store (created); no default
  //                             (a program's default: program_defaults)
  std::string sync = "sync";  ///< sync | no_meta_sync | no_sync
  std::string key_file;       ///< master key file; empty: a plain store
  std::size_t map_size_mib = 64;
  std::size_t max_map_size_mib = 256 * 1024;
  std::size_t max_event_bytes = 16 << 20;
  // Switches: false unless set (CAF's command line sets a flag, never clears one).
  bool skip_checksums = false;  ///< not options::verify_checksums
  bool skip_prefault = false;   ///< not options::prefault_map
  // Storage actor.
  std::size_t batch_max_events = 8192;
  std::size_t batch_max_bytes = 64 << 20;
  std::size_t batch_max_wait_us = 200;  ///< as storage_config's max_wait; 0: never wait
  // Aggregates.
  std::size_t snapshot_every = 100;  ///< as aggregate_options' default; 0: never
  std::size_t aggregate_idle_timeout_ms = 60000;
  std::size_t aggregate_max_alive = 10000;
  std::size_t aggregate_max_retries = 3;
  // Decision models.
  std::size_t decision_max_retries = 5;  ///< as decision_options' default
  // Projections.
  std::size_t projection_batch_events = 1000;
  std::size_t checkpoint_every = 1000;
  std::size_t checkpoint_interval_ms = 1000;
  // Serving the store to other processes.
  std::string serve_host = "127.0.0.1";
  std::size_t serve_port = 7410;

  /// Checks every value. Success: all hold. Failure: errc::invalid_argument
  /// with the first problem, in one line naming the option (a bad value, a
  /// key file that cannot be read or that group or others may read).
  result<void> check() const;

  /// The store's options from these settings. Never fails; call check()
  /// first: values it refuses pass on as they are (a `sync` that is none
  /// of the three means sync).
  options store_options() const;

  friend bool operator==(const settings&, const settings&) = default;
};

/// What a program falls back on when its user names nothing.
struct program_defaults {
  /// The store's directory when neither the file nor the command line
  /// names one; empty: the user must (check() refuses an empty data_dir).
  std::string_view data_dir{};
  /// The configuration file read when --config-file is not given and this
  /// file exists (a relative path is taken from the working directory);
  /// empty: none.
  std::string_view config_file{};
};

/// Declares every option of the "varve" group in `set`, each bound to its
/// field of `s`: CAF's parser writes the values there, so `s` must outlive
/// every parse with `set`.
void declare_options(caf::config_option_set& set, settings& s);

/// The configuration file of a program: the PATH of --config-file=PATH in
/// argv[1..argc), else `default_file` when it is not empty and exists, else
/// "" (none). Failure: errc::invalid_argument "cannot read config file
/// PATH" when the file named on the command line cannot be opened.
result<std::string> find_config_file(int argc, const char* const* argv,
                                     std::string_view default_file = {});

/// Checks the "varve" group of configuration file `file` as written, before
/// CAF's parser (which drops a value it cannot convert to its option's
/// type): every key names an option, and every size option holds a whole
/// number from 0 up (not -1, 2.5 or "300"). Failure:
/// errc::invalid_argument, one line naming the file and the option, or the
/// line of a syntax error and its text.
result<void> check_config_file(const std::string& file);

/// check_config_file on the text of a configuration file, named `file` in
/// the messages.
result<void> check_config_text(std::string_view text, const std::string& file);

/// Finishes settings that a parser filled in from `parsed` (the parser's
/// settings, all groups): refuses a key of the "varve" group that names no
/// option ("unknown option varve.<key>") and a size option that is not a
/// whole number from 0 up; gives an unnamed data directory
/// the program's default (`defaults.data_dir`); then checks every value
/// (see settings::check). Failure: errc::invalid_argument, one line; `s`
/// may be changed then.
result<void> finish_settings(settings& s, const caf::settings& parsed,
                             program_defaults defaults = {});

/// Reads the settings alone, without an actor system: the configuration
/// file (see find_config_file, with `defaults.config_file`), then the
/// --varve.* arguments of argv (the others are left to the program), then
/// finish_settings. Failure: errc::invalid_argument, one line: a file that
/// cannot be read or parsed, an unknown option, a value of the wrong type,
/// or what check() refuses (e.g. no data directory and no default).
result<settings> read_settings(int argc, const char* const* argv, program_defaults defaults = {});

}  // namespace varve
