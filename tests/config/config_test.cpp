// varve_config: defaults, command-line overrides, the INI file, and bad
// configuration refused with one line and exit code 2.
#define BOOST_TEST_MODULE config
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <fstream>
#include <varve/config/varve_config.hpp>

#include "../storage/temp_dir.hpp"

namespace {

/// Runs configure() on these arguments; the exit code and what it printed.
std::pair<int, std::string> configure_with(std::vector<std::string> args, varve::varve_config& cfg,
                                           std::string_view own_data_dir = {}) {
  args.insert(args.begin(), "varve_test");
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  std::stringstream err;
  auto* old = std::cerr.rdbuf(err.rdbuf());
  const int code = varve::configure(cfg, static_cast<int>(argv.size()), argv.data(), own_data_dir);
  std::cerr.rdbuf(old);
  return {code, err.str()};
}

}  // namespace

BOOST_AUTO_TEST_CASE(defaults_are_valid_and_map_to_store_options) {
  varve::varve_config cfg;
  auto [code, out] = configure_with({}, cfg);
  BOOST_CHECK_EQUAL(code, 0);
  BOOST_CHECK(out.empty());
  auto o = cfg.store_options();
  BOOST_CHECK_EQUAL(o.directory, "var/demo");
  BOOST_CHECK(o.sync == varve::durability::sync);
  BOOST_CHECK_EQUAL(cfg.storage().max_batch_events, 8192u);
}

BOOST_AUTO_TEST_CASE(the_command_line_overrides_options) {
  varve::varve_config cfg;
  auto [code, out] = configure_with(
      {"--varve.sync=no_sync", "--varve.data-dir=/tmp/x", "--varve.snapshot-every=7"}, cfg);
  BOOST_REQUIRE_EQUAL(code, 0);
  BOOST_CHECK(cfg.store_options().sync == varve::durability::no_sync);
  BOOST_CHECK_EQUAL(cfg.data_dir, "/tmp/x");
  BOOST_CHECK_EQUAL(cfg.aggregates().snapshot_every, 7u);
}

BOOST_AUTO_TEST_CASE(an_ini_file_sets_options_and_the_command_line_wins) {
  varve_test::temp_dir dir;
  const auto ini = (dir / "varve.ini").string();
  std::ofstream(ini) << "[varve]\ndata-dir=\"from-ini\"\ncheckpoint-every=42\n";
  varve::varve_config cfg;
  auto [code, out] = configure_with({"--config-file=" + ini, "--varve.data-dir=from-cli"}, cfg);
  BOOST_REQUIRE_MESSAGE(code == 0, out);
  BOOST_CHECK_EQUAL(cfg.checkpoint_every, 42u);
  BOOST_CHECK_EQUAL(cfg.data_dir, "from-cli");
}

BOOST_AUTO_TEST_CASE(a_program_with_a_store_of_its_own_uses_it_unless_told_otherwise) {
  {  // the default, and the shipped INI file's var/demo, give way to it
    varve::varve_config cfg;
    auto [code, out] =
        configure_with({"--config-file=" VARVE_SOURCE_DIR "/config/varve.ini"}, cfg, "var/own");
    BOOST_REQUIRE_MESSAGE(code == 0, out);
    BOOST_CHECK_EQUAL(cfg.data_dir, "var/own");
  }
  {  // the command line wins, also when it names var/demo
    varve::varve_config cfg;
    auto [code, out] = configure_with({"--varve.data-dir=var/demo"}, cfg, "var/own");
    BOOST_REQUIRE_MESSAGE(code == 0, out);
    BOOST_CHECK_EQUAL(cfg.data_dir, "var/demo");
  }
}

BOOST_AUTO_TEST_CASE(bad_configuration_stops_with_one_line_and_exit_code_2) {
  varve_test::temp_dir dir;
  const auto loose = (dir / "loose.key").string();
  std::ofstream(loose) << std::string(64, 'a');
  ::chmod(loose.c_str(), 0644);
  const auto unknown_ini = (dir / "unknown.ini").string();
  std::ofstream(unknown_ini) << "[varve]\nno-such-option=1\n";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--varve.sync=sometimes"}, "varve.sync"},
      {{"--varve.no-such-option=1"}, "unknown option"},
      {{"--config-file=" + unknown_ini}, "unknown option varve.no-such-option"},
      {{"--varve.batch-max-events=0"}, "varve.batch-max-events"},
      {{"--varve.serve-port=70000"}, "varve.serve-port"},
      {{"--varve.map-size-mib=abc"}, ""},
      {{"--varve.key-file=" + (dir / "missing.key").string()}, "cannot be read"},
      {{"--varve.key-file=" + loose}, "group or others"},
      {{"--config-file=" + (dir / "absent.ini").string()}, "cannot read config file"},
  };
  for (const auto& [args, expected] : cases) {
    varve::varve_config cfg;
    auto [code, out] = configure_with(args, cfg);
    BOOST_TEST_CONTEXT(args.front()) {
      BOOST_CHECK_EQUAL(code, 2);
      BOOST_CHECK(out.find("bad configuration") != std::string::npos);
      BOOST_CHECK(out.find(expected) != std::string::npos);
      BOOST_CHECK_EQUAL(std::count(out.begin(), out.end(), '\n'), 1);
    }
  }
}

BOOST_AUTO_TEST_CASE(the_shipped_ini_file_is_valid) {
  varve::varve_config cfg;
  auto [code, out] = configure_with({"--config-file=" VARVE_SOURCE_DIR "/config/varve.ini"}, cfg);
  BOOST_CHECK_MESSAGE(code == 0, out);
}

BOOST_AUTO_TEST_CASE(snapshots_have_one_default) {
  varve::varve_config cfg;
  BOOST_CHECK_EQUAL(cfg.aggregates().snapshot_every, varve::aggregate_options{}.snapshot_every);
  BOOST_CHECK_EQUAL(varve::aggregate_options{}.snapshot_every, 100u);
}

BOOST_AUTO_TEST_CASE(long_help_lists_the_varve_options) {
  varve::varve_config cfg;
  std::stringstream out;
  auto* old = std::cout.rdbuf(out.rdbuf());
  auto [code, err] = configure_with({"--long-help"}, cfg);
  std::cout.rdbuf(old);
  BOOST_CHECK_EQUAL(code, 0);
  BOOST_CHECK(cfg.cli_helptext_printed);
  for (const char* option : {"data-dir", "snapshot-every", "serve-port"})
    BOOST_CHECK_MESSAGE(out.str().find(option) != std::string::npos, out.str());
}
