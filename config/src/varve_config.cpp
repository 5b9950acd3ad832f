#include "varve/config/varve_config.hpp"

#include <caf/atom.hpp>
#include <caf/config_value.hpp>
#include <caf/settings.hpp>

#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

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
  return {batch_max_events, batch_max_bytes,
          std::chrono::microseconds(static_cast<std::int64_t>(batch_max_wait_us))};
}

aggregate_options varve_config::aggregates() const {
  aggregate_options a;
  a.max_retries = static_cast<unsigned>(aggregate_max_retries);
  a.snapshot_every = snapshot_every;
  a.idle_timeout = std::chrono::milliseconds(aggregate_idle_timeout_ms);
  a.max_alive = aggregate_max_alive;
  return a;
}

decision_options varve_config::decisions() const {
  decision_options d;
  d.max_retries = static_cast<unsigned>(decision_max_retries);
  return d;
}

projection_spec& varve_config::apply(projection_spec& spec) const {
  spec.batch_events = projection_batch_events;
  spec.checkpoint_every = checkpoint_every;
  spec.checkpoint_interval = std::chrono::milliseconds(checkpoint_interval_ms);
  return spec;
}

std::string varve_config::scheduler_summary() const {
  const auto policy = caf::get_or(content, "scheduler.policy", caf::atom("stealing"));
  const auto threads = caf::get_or(content, "scheduler.max-threads", std::size_t{0});
  return "scheduler: " + caf::to_string(policy) + ", " + std::to_string(threads) +
         (threads == 1 ? " thread" : " threads") + " ([scheduler] policy, max-threads)";
}

namespace {

bool is_help(std::string_view arg) {
  return arg == "-h" || arg == "--help" || arg == "-?";
}

}  // namespace

std::optional<std::string> varve_config::normalize_arguments(std::vector<std::string>& args) {
  falsified_.clear();
  std::vector<std::string> out;
  out.reserve(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (i > 0 && is_help(arg)) {  // every group's options, Varve's too
      out.emplace_back("--long-help");
      continue;
    }
    const auto eq = arg.find('=');
    if (i == 0 || !arg.starts_with("--") || eq == std::string::npos) {
      out.push_back(std::move(arg));
      continue;
    }
    const std::string name = arg.substr(2, eq - 2), value = arg.substr(eq + 1);
    auto opt = custom_options_.cli_long_name_lookup(name);
    if (opt == nullptr || !opt->is_flag()) {
      out.push_back(std::move(arg));
      continue;
    }
    if (value == "true" || value == "1") {
      out.push_back("--" + name);
    } else if (value == "false" || value == "0") {
      falsified_.push_back(name);
    } else {
      return "option --" + name + " takes true, false, 1 or 0, not '" + value + "'";
    }
  }
  args = std::move(out);
  return std::nullopt;
}

void varve_config::apply_falsified() {
  for (const auto& name : falsified_) {
    if (auto opt = custom_options_.cli_long_name_lookup(name)) {
      opt->store(caf::config_value{false});
      const auto full = opt->full_name();
      caf::put(content, std::string(full.data(), full.size()), false);
    }
  }
}

void add_varve_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::varve>();
  cfg.add_message_types<caf::id_block::varve_projections>();
  add_error_category(cfg);
}

int configure(varve_config& cfg, int argc, char** argv, program_defaults defaults) {
  const std::string program =
      argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "varve";
  auto fail = [&](const std::string& what) {
    std::cerr << program << ": bad configuration: " << what << "\n";
    return 2;
  };
  add_varve_types(cfg);
  auto ini = find_config_file(argc, argv, defaults.config_file);
  if (!ini) return fail(ini.err().message());
  if (!ini->empty())
    if (auto ok = check_config_file(*ini); !ok) return fail(ok.err().message());
  std::vector<std::string> args(argv, argv + argc);
  if (auto problem = cfg.normalize_arguments(args)) return fail(*problem);
  std::vector<char*> pointers;
  for (auto& a : args)
    pointers.push_back(a.data());
  pointers.push_back(nullptr);
  const int count = static_cast<int>(args.size());
  if (auto err = cfg.parse(count, pointers.data(), ini->empty() ? nullptr : ini->c_str())) {
    // CAF names the argument it did not take in the error's context.
    std::string text = cfg.render(err);
    if (text.find("not_an_option") != std::string::npos) {
      for (int i = 1; i < count; ++i)
        if (text.find(args[static_cast<std::size_t>(i)]) != std::string::npos)
          return fail("unknown option " + args[static_cast<std::size_t>(i)]);
    }
    return fail(text);
  }
  if (cfg.cli_helptext_printed) return 0;
  cfg.apply_falsified();
  if (auto ok = finish_settings(cfg, cfg.content, defaults); !ok) return fail(ok.err().message());
  if (!cfg.remainder.empty()) return fail("unexpected argument '" + cfg.remainder.front() + "'");
  return 0;
}

}  // namespace varve
