// libFuzzer target: a configuration file in CAF's INI format must be parsed
// or refused with an error, and Varve's checks must accept or refuse what it
// holds, never crash or hang.
//
// It drives CAF's parser without its typed option table (parse_config), and
// takes the values into a varve_config as configure() would: the option
// table's checks live in CAF's gcc-built library, which clang's fuzzer build
// cannot call into safely.
#include <caf/config_value.hpp>
#include <caf/settings.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <varve/config/varve_config.hpp>

namespace {

void take(const caf::settings& group, const char* key, std::string& field) {
  if (auto v = caf::get_if<std::string>(&group, caf::string_view{key, std::strlen(key)}))
    field = *v;
}

void take(const caf::settings& group, const char* key, std::size_t& field) {
  if (auto v =
          caf::get_if<caf::config_value::integer>(&group, caf::string_view{key, std::strlen(key)}))
    field = static_cast<std::size_t>(*v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The check of the file as written: refused or accepted, one line.
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto checked = varve::check_config_text(text, "fuzz.ini"); !checked)
    if (checked.err().message().find('\n') != std::string::npos) __builtin_trap();
  std::istringstream ini{std::string(text)};
  auto parsed = caf::actor_system_config::parse_config(ini);
  if (!parsed) return 0;
  auto group = caf::get_if<caf::settings>(&*parsed, "varve");
  if (!group) return 0;
  varve::varve_config cfg;
  take(*group, "data-dir", cfg.data_dir);
  take(*group, "sync", cfg.sync);
  take(*group, "key-file", cfg.key_file);
  take(*group, "map-size-mib", cfg.map_size_mib);
  take(*group, "max-map-size-mib", cfg.max_map_size_mib);
  take(*group, "max-event-bytes", cfg.max_event_bytes);
  take(*group, "batch-max-events", cfg.batch_max_events);
  take(*group, "batch-max-bytes", cfg.batch_max_bytes);
  take(*group, "batch-max-wait-us", cfg.batch_max_wait_us);
  take(*group, "serve-host", cfg.serve_host);
  take(*group, "serve-port", cfg.serve_port);
  take(*group, "checkpoint-every", cfg.checkpoint_every);
  if (cfg.check()) (void)cfg.store_options();
  return 0;
}
