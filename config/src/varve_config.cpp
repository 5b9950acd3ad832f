#include "varve/config/varve_config.hpp"

#include <caf/atom.hpp>
#include <caf/config_value.hpp>
#include <caf/settings.hpp>

#include <filesystem>
#include <iostream>
#include <string>

#include <varve/projections/type_ids.hpp>

#include "varve/actors/error.hpp"

namespace varve {

varve_config::varve_config() {
  declare_options(custom_options_, *this);
  caf::put(content, "scheduler.policy", caf::atom("sharing"));
  caf::put(content, "scheduler.max-threads", std::size_t{1});
  caf::put(content, "logger.console", caf::atom("none"));
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
  auto ini = find_config_file(argc, argv);
  if (!ini) return fail(ini.err().message());
  if (auto err = cfg.parse(argc, argv, ini->empty() ? nullptr : ini->c_str())) {
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
  if (auto ok = finish_settings(cfg, cfg.content, argc, argv, own_data_dir); !ok)
    return fail(ok.err().message());
  if (!cfg.remainder.empty()) return fail("unexpected argument '" + cfg.remainder.front() + "'");
  return 0;
}

}  // namespace varve
