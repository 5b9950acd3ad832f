#include "varve/config/varve_config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <caf/atom.hpp>
#include <caf/config_value.hpp>
#include <caf/settings.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <varve/projections/type_ids.hpp>

#include "varve/actors/error.hpp"

namespace varve {

namespace {

/// Every option of the "varve" group, for spotting unknown ones.
const std::set<std::string>& known_options() {
  static const std::set<std::string> names{"data-dir",
                                           "sync",
                                           "key-file",
                                           "map-size-mib",
                                           "max-map-size-mib",
                                           "max-event-bytes",
                                           "batch-max-events",
                                           "batch-max-bytes",
                                           "snapshot-every",
                                           "aggregate-idle-timeout-ms",
                                           "aggregate-max-alive",
                                           "aggregate-max-retries",
                                           "projection-batch-events",
                                           "checkpoint-every",
                                           "checkpoint-interval-ms",
                                           "serve-host",
                                           "serve-port"};
  return names;
}

}  // namespace

varve_config::varve_config() {
  opt_group{custom_options_, "varve"}
      .add(data_dir, "data-dir", "directory of the store (created)")
      .add(sync, "sync", "durability of commits: sync, no_meta_sync or no_sync")
      .add(key_file, "key-file", "master key file; encrypts a new store (mode 0600)")
      .add(map_size_mib, "map-size-mib", "initial memory map size in MiB")
      .add(max_map_size_mib, "max-map-size-mib", "largest map in MiB; past it: storage_full")
      .add(max_event_bytes, "max-event-bytes", "largest event (type + metadata + payload)")
      .add(batch_max_events, "batch-max-events", "most events in one group commit")
      .add(batch_max_bytes, "batch-max-bytes", "most bytes in one group commit")
      .add(snapshot_every, "snapshot-every", "aggregate snapshot every N versions; 0: never")
      .add(aggregate_idle_timeout_ms, "aggregate-idle-timeout-ms",
           "passivate an aggregate actor idle this long")
      .add(aggregate_max_alive, "aggregate-max-alive", "most aggregate actors per registry")
      .add(aggregate_max_retries, "aggregate-max-retries", "reloads after a version conflict")
      .add(projection_batch_events, "projection-batch-events", "events a projection reads at once")
      .add(checkpoint_every, "checkpoint-every", "at-least-once: save the cursor every N events")
      .add(checkpoint_interval_ms, "checkpoint-interval-ms",
           "at-least-once: save the cursor at least this often")
      .add(serve_host, "serve-host", "address the store service listens on")
      .add(serve_port, "serve-port", "port of the store service");
  caf::put(content, "scheduler.policy", caf::atom("sharing"));
  caf::put(content, "scheduler.max-threads", std::size_t{1});
  caf::put(content, "logger.console", caf::atom("none"));
}

result<void> varve_config::check() const {
  auto bad = [](std::string what) { return error{errc::invalid_argument, std::move(what)}; };
  if (data_dir.empty()) return bad("varve.data-dir is empty");
  if (sync != "sync" && sync != "no_meta_sync" && sync != "no_sync")
    return bad("varve.sync is '" + sync + "'; use sync, no_meta_sync or no_sync");
  if (map_size_mib == 0) return bad("varve.map-size-mib is 0");
  if (max_map_size_mib < map_size_mib)
    return bad("varve.max-map-size-mib is smaller than varve.map-size-mib");
  if (max_event_bytes == 0 || max_event_bytes > 0xFFFFFFFFu)
    return bad("varve.max-event-bytes must be 1 to 4294967295");
  if (batch_max_events == 0) return bad("varve.batch-max-events is 0");
  if (batch_max_bytes == 0) return bad("varve.batch-max-bytes is 0");
  if (aggregate_idle_timeout_ms == 0) return bad("varve.aggregate-idle-timeout-ms is 0");
  if (aggregate_max_alive == 0) return bad("varve.aggregate-max-alive is 0");
  if (projection_batch_events == 0) return bad("varve.projection-batch-events is 0");
  if (checkpoint_every == 0) return bad("varve.checkpoint-every is 0");
  if (checkpoint_interval_ms == 0) return bad("varve.checkpoint-interval-ms is 0");
  if (serve_port == 0 || serve_port > 65535) return bad("varve.serve-port must be 1 to 65535");
  if (!key_file.empty()) {
    if (::access(key_file.c_str(), R_OK) != 0)
      return bad("varve.key-file " + key_file + " cannot be read");
    struct stat st {};
    if (::stat(key_file.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
      return bad("varve.key-file " + key_file + " may be read by group or others; chmod 600 it");
  }
  return {};
}

options varve_config::store_options() const {
  options o;
  o.directory = data_dir;
  o.sync = sync == "no_sync"        ? durability::no_sync
           : sync == "no_meta_sync" ? durability::no_meta_sync
                                    : durability::sync;
  o.key_file = key_file;
  o.map_size = std::uint64_t{map_size_mib} << 20;
  o.max_map_size = std::uint64_t{max_map_size_mib} << 20;
  o.max_event_bytes = max_event_bytes;
  return o;
}

storage_config varve_config::storage() const {
  return {batch_max_events, batch_max_bytes};
}

aggregate_options varve_config::aggregates() const {
  aggregate_options a;
  a.max_retries = static_cast<unsigned>(aggregate_max_retries);
  a.snapshot_every = snapshot_every;
  a.idle_timeout = std::chrono::milliseconds(aggregate_idle_timeout_ms);
  a.max_alive = aggregate_max_alive;
  return a;
}

projection_spec& varve_config::apply(projection_spec& spec) const {
  spec.batch_events = projection_batch_events;
  spec.checkpoint_every = checkpoint_every;
  spec.checkpoint_interval = std::chrono::milliseconds(checkpoint_interval_ms);
  return spec;
}

int configure(varve_config& cfg, int argc, char** argv, std::string_view own_data_dir) {
  const std::string program =
      argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "varve";
  auto fail = [&](const std::string& what) {
    std::cerr << program << ": bad configuration: " << what << "\n";
    return 2;
  };
  cfg.add_message_types<caf::id_block::varve>();
  cfg.add_message_types<caf::id_block::varve_projections>();
  add_error_category(cfg);
  // The INI file: --config-file=PATH, else config/varve.ini when it exists.
  std::string ini;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("--config-file=")) ini = std::string(arg.substr(14));
  }
  if (!ini.empty() && !std::ifstream(ini)) return fail("cannot read config file " + ini);
  if (ini.empty() && std::ifstream("config/varve.ini")) ini = "config/varve.ini";
  if (auto err = cfg.parse(argc, argv, ini.empty() ? nullptr : ini.c_str())) {
    // CAF names the argument it did not take in the error's context.
    std::string text = cfg.render(err);
    if (text.find("not_an_option") != std::string::npos) {
      for (int i = 1; i < argc; ++i)
        if (text.find(argv[i]) != std::string::npos)
          return fail(std::string("unknown option ") + argv[i]);
    }
    return fail(text);
  }
  if (cfg.cli_helptext_printed) return 0;
  if (!own_data_dir.empty() && cfg.data_dir == "var/demo") {
    bool given = false;
    for (int i = 1; i < argc; ++i)
      given = given || std::string_view(argv[i]).starts_with("--varve.data-dir");
    if (!given) cfg.data_dir = own_data_dir;
  }
  // CAF keeps unknown keys of a known group; Varve refuses them.
  if (auto group = caf::get_if<caf::settings>(&cfg.content, "varve")) {
    for (const auto& [key, value] : *group)
      if (!known_options().count(key)) return fail("unknown option varve." + key);
  }
  if (!cfg.remainder.empty()) return fail("unexpected argument '" + cfg.remainder.front() + "'");
  if (auto ok = cfg.check(); !ok) return fail(ok.err().message());
  return 0;
}

}  // namespace varve
