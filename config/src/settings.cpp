#include "varve/config/settings.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <caf/actor_system_config.hpp>
#include <caf/config_option_set.hpp>
#include <caf/config_value.hpp>
#include <caf/settings.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <variant>
#include <vector>

namespace varve {

namespace {

error bad(std::string what) {
  return error{errc::invalid_argument, std::move(what)};
}

/// One option of the "varve" group: its name, its field, its help line.
struct option_row {
  const char* name;
  std::variant<std::string settings::*, std::size_t settings::*, bool settings::*> field;
  const char* help;
};

const option_row option_rows[] = {
    {"data-dir", &settings::data_dir, "directory of the store (created)"},
    {"sync", &settings::sync, "durability of commits: sync, no_meta_sync or no_sync"},
    {"key-file", &settings::key_file, "master key file; encrypts a new store (mode 0600)"},
    {"map-size-mib", &settings::map_size_mib, "initial memory map size in MiB"},
    {"max-map-size-mib", &settings::max_map_size_mib, "largest map in MiB; past it: storage_full"},
    {"max-event-bytes", &settings::max_event_bytes, "largest event (type + metadata + payload)"},
    {"skip-checksums", &settings::skip_checksums,
     "reads do not check each plain record's CRC32C (verify still does)"},
    {"skip-prefault", &settings::skip_prefault,
     "open does not map the store's pages the page cache holds"},
    {"batch-max-events", &settings::batch_max_events, "most events in one group commit"},
    {"batch-max-bytes", &settings::batch_max_bytes, "most bytes in one group commit"},
    {"batch-max-wait-us", &settings::batch_max_wait_us,
     "group commit: wait this long for the last commit's writers; 0: never"},
    {"snapshot-every", &settings::snapshot_every, "aggregate snapshot every N versions; 0: never"},
    {"aggregate-idle-timeout-ms", &settings::aggregate_idle_timeout_ms,
     "passivate an aggregate actor idle this long"},
    {"aggregate-max-alive", &settings::aggregate_max_alive, "most aggregate actors per registry"},
    {"aggregate-max-retries", &settings::aggregate_max_retries, "reloads after a version conflict"},
    {"decision-max-retries", &settings::decision_max_retries,
     "decision models: reloads after a conflicting append"},
    {"projection-batch-events", &settings::projection_batch_events,
     "events a projection reads at once"},
    {"checkpoint-every", &settings::checkpoint_every,
     "at-least-once: save the cursor every N events"},
    {"checkpoint-interval-ms", &settings::checkpoint_interval_ms,
     "at-least-once: save the cursor at least this often"},
    {"serve-host", &settings::serve_host, "address the store service listens on"},
    {"serve-port", &settings::serve_port, "port of the store service"},
};

/// What is wrong with `value` of size option `name` (a whole number from
/// 0 up, as CAF stores integers: int64), or "" when nothing is.
std::string size_problem(const std::string& name, const caf::config_value& value) {
  const auto* number = caf::get_if<caf::config_value::integer>(&value);
  if (number && *number >= 0) return {};
  return "varve." + name + " is " + caf::to_string(value) + "; a whole number from 0 to " +
         std::to_string(std::numeric_limits<std::int64_t>::max()) + " is expected";
}

/// What is wrong with `value` of switch option `name`, or "" when it is
/// true or false.
std::string switch_problem(const std::string& name, const caf::config_value& value) {
  if (caf::holds_alternative<caf::config_value::boolean>(value)) return {};
  return "varve." + name + " is " + caf::to_string(value) + "; true or false is expected";
}

/// What is wrong with the value of option `row` named `name`, or "".
std::string value_problem(const option_row& row, const std::string& name,
                          const caf::config_value& value) {
  if (std::holds_alternative<std::size_t settings::*>(row.field)) return size_problem(name, value);
  if (std::holds_alternative<bool settings::*>(row.field)) return switch_problem(name, value);
  return {};
}

const option_row* row_named(const std::string& name) {
  for (const auto& row : option_rows)
    if (name == row.name) return &row;
  return nullptr;
}

}  // namespace

result<void> settings::check() const {
  if (data_dir.empty())
    return bad(
        "varve.data-dir is not set: name the store's directory (--varve.data-dir=DIR, or "
        "data-dir in the [varve] group of the configuration file)");
  if (sync != "sync" && sync != "no_meta_sync" && sync != "no_sync")
    return bad("varve.sync is '" + sync + "'; use sync, no_meta_sync or no_sync");
  if (map_size_mib == 0) return bad("varve.map-size-mib is 0");
  if (max_map_size_mib < map_size_mib)
    return bad("varve.max-map-size-mib is smaller than varve.map-size-mib");
  if (max_event_bytes == 0 || max_event_bytes > 0xFFFFFFFFu)
    return bad("varve.max-event-bytes must be 1 to 4294967295");
  if (batch_max_events == 0) return bad("varve.batch-max-events is 0");
  if (batch_max_bytes == 0) return bad("varve.batch-max-bytes is 0");
  if (batch_max_wait_us > 10000)
    return bad("varve.batch-max-wait-us is " + std::to_string(batch_max_wait_us) +
               "; at most 10000 (10 ms: the storage actor's thread is busy while it waits)");
  if (aggregate_idle_timeout_ms == 0) return bad("varve.aggregate-idle-timeout-ms is 0");
  if (aggregate_max_alive == 0) return bad("varve.aggregate-max-alive is 0");
  if (decision_max_retries > 1000)
    return bad("varve.decision-max-retries is " + std::to_string(decision_max_retries) +
               "; at most 1000");
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

options settings::store_options() const {
  options o;
  o.directory = data_dir;
  o.sync = sync == "no_sync"        ? durability::no_sync
           : sync == "no_meta_sync" ? durability::no_meta_sync
                                    : durability::sync;
  o.key_file = key_file;
  o.map_size = std::uint64_t{map_size_mib} << 20;
  o.max_map_size = std::uint64_t{max_map_size_mib} << 20;
  o.max_event_bytes = max_event_bytes;
  o.verify_checksums = !skip_checksums;
  o.prefault_map = !skip_prefault;
  return o;
}

void declare_options(caf::config_option_set& set, settings& s) {
  for (const auto& row : option_rows)
    std::visit(
        [&](auto field) {
          // caf::string_view from pointer and size: Clang finds no conversion from a
          // plain const char*.
          set.add(s.*field, "varve", caf::string_view(row.name, std::strlen(row.name)),
                  caf::string_view(row.help, std::strlen(row.help)));
        },
        row.field);
}

result<std::string> find_config_file(int argc, const char* const* argv,
                                     std::string_view default_file) {
  std::string named;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("--config-file=")) named = std::string(arg.substr(14));
  }
  if (!named.empty()) {
    if (!std::ifstream(named)) return bad("cannot read config file " + named);
    return named;
  }
  const std::string fallback(default_file);
  if (!fallback.empty() && std::ifstream(fallback)) return fallback;
  return std::string();
}

result<void> check_config_text(std::string_view text, const std::string& file) {
  // Parsed without the options, the values keep the types they were written
  // with; parsed with them, CAF drops a value it cannot convert.
  std::istringstream in{std::string(text)};
  auto raw = caf::actor_system_config::parse_config(in);
  if (!raw) {
    // CAF names the line; the line names the option.
    std::string where = caf::to_string(raw.error());
    static constexpr std::string_view line_is = "\"line\" = ";
    if (const auto at = where.find(line_is); at != std::string::npos) {
      const long line = std::strtol(where.c_str() + at + line_is.size(), nullptr, 10);
      std::istringstream lines{std::string(text)};
      std::string content;
      for (long i = 0; i < line && std::getline(lines, content); ++i) {
      }
      if (line > 0) where = "line " + std::to_string(line) + " (" + content + "): " + where;
    }
    return bad("config file " + file + ": " + where);
  }
  if (auto group = caf::get_if<caf::settings>(&*raw, "varve")) {
    for (const auto& [key, value] : *group) {
      const option_row* row = row_named(key);
      if (!row) return bad("config file " + file + ": unknown option varve." + key);
      if (auto problem = value_problem(*row, key, value); !problem.empty())
        return bad("config file " + file + ": " + problem);
    }
  }
  return {};
}

result<void> check_config_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) return bad("cannot read config file " + file);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  return check_config_text(text, file);
}

result<void> finish_settings(settings& s, const caf::settings& parsed, program_defaults defaults) {
  // CAF keeps unknown keys of a known group; Varve refuses them. A number
  // past the largest int64 on the command line reaches here negative.
  if (auto group = caf::get_if<caf::settings>(&parsed, "varve")) {
    for (const auto& [key, value] : *group) {
      const option_row* row = row_named(key);
      if (!row) return bad("unknown option varve." + key);
      if (auto problem = value_problem(*row, key, value); !problem.empty()) return bad(problem);
    }
  }
  if (s.data_dir.empty()) s.data_dir = std::string(defaults.data_dir);
  return s.check();
}

result<settings> read_settings(int argc, const char* const* argv, program_defaults defaults) {
  auto file = find_config_file(argc, argv, defaults.config_file);
  if (!file) return std::move(file).err();
  settings s;
  caf::config_option_set set;
  declare_options(set, s);
  caf::settings parsed;
  if (!file->empty()) {
    if (auto ok = check_config_file(*file); !ok) return ok.err();
    std::ifstream in(*file);
    if (auto err = caf::actor_system_config::parse_config(in, set, parsed))
      return bad("config file " + *file + ": " + caf::to_string(err));
  }
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]).starts_with("--varve.")) args.emplace_back(argv[i]);
  auto [code, at] = set.parse(parsed, args);
  if (code != caf::pec::success) {
    const std::string arg = at == args.end() ? "the command line" : *at;
    if (code == caf::pec::not_an_option) return bad("unknown option " + arg);
    return bad("bad value in " + arg + " (" + caf::to_string(code) + ")");
  }
  if (auto r = finish_settings(s, parsed, defaults); !r) return r.err();
  return s;
}

}  // namespace varve
