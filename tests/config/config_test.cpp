// varve_config: defaults, command-line overrides, the INI file, booleans,
// --help, and bad configuration refused with one line and exit code 2.
#define BOOST_TEST_MODULE config
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <varve/config/varve_config.hpp>

#include "../storage/temp_dir.hpp"

namespace {

/// Runs configure() on these arguments; the exit code and what it printed.
std::pair<int, std::string> configure_with(std::vector<std::string> args, varve::varve_config& cfg,
                                           varve::program_defaults defaults = {}) {
  args.insert(args.begin(), "varve_test");
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  std::stringstream err;
  auto* old = std::cerr.rdbuf(err.rdbuf());
  const int code = varve::configure(cfg, static_cast<int>(argv.size()), argv.data(), defaults);
  std::cerr.rdbuf(old);
  return {code, err.str()};
}

}  // namespace

BOOST_AUTO_TEST_CASE(defaults_are_valid_and_map_to_store_options) {
  varve::varve_config cfg;
  auto [code, out] = configure_with({}, cfg, {.data_dir = "var/app"});
  BOOST_CHECK_EQUAL(code, 0);
  BOOST_CHECK(out.empty());
  auto o = cfg.store_options();
  BOOST_CHECK_EQUAL(o.directory, "var/app");
  BOOST_CHECK(o.sync == varve::durability::sync);
  BOOST_CHECK_EQUAL(cfg.storage().max_batch_events, 8192u);
  BOOST_CHECK_EQUAL(cfg.storage().max_wait.count(), 200);
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

BOOST_AUTO_TEST_CASE(decision_retries_come_from_the_configuration_and_are_bounded) {
  varve::varve_config cfg;
  BOOST_CHECK_EQUAL(cfg.decisions().max_retries, varve::decision_options{}.max_retries);
  auto [code, out] = configure_with({"--varve.decision-max-retries=9"}, cfg, {.data_dir = "d"});
  BOOST_REQUIRE_EQUAL(code, 0);
  BOOST_CHECK_EQUAL(cfg.decisions().max_retries, 9u);
  varve::varve_config too_many;
  auto [bad_code, bad_out] =
      configure_with({"--varve.decision-max-retries=5000"}, too_many, {.data_dir = "d"});
  BOOST_CHECK_NE(bad_code, 0);
  BOOST_CHECK(bad_out.find("decision-max-retries") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_group_commit_wait_comes_from_the_configuration_and_is_bounded) {
  varve::varve_config cfg;
  BOOST_CHECK_EQUAL(cfg.storage().max_wait.count(), varve::storage_config{}.max_wait.count());
  auto [code, out] = configure_with({"--varve.batch-max-wait-us=0"}, cfg, {.data_dir = "d"});
  BOOST_REQUIRE_EQUAL(code, 0);
  BOOST_CHECK_EQUAL(cfg.storage().max_wait.count(), 0);
  varve::varve_config too_long;
  auto [bad_code, bad_out] =
      configure_with({"--varve.batch-max-wait-us=10001"}, too_long, {.data_dir = "d"});
  BOOST_CHECK_NE(bad_code, 0);
  BOOST_CHECK(bad_out.find("batch-max-wait-us") != std::string::npos);
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

BOOST_AUTO_TEST_CASE(a_program_default_data_dir_gives_way_to_the_file_and_the_command_line) {
  {  // the shipped INI file names none: the program's default holds
    varve::varve_config cfg;
    auto [code, out] = configure_with({"--config-file=" VARVE_SOURCE_DIR "/config/varve.ini"}, cfg,
                                      {.data_dir = "var/own"});
    BOOST_REQUIRE_MESSAGE(code == 0, out);
    BOOST_CHECK_EQUAL(cfg.data_dir, "var/own");
  }
  {  // the command line wins
    varve::varve_config cfg;
    auto [code, out] = configure_with({"--varve.data-dir=var/demo"}, cfg, {.data_dir = "var/own"});
    BOOST_REQUIRE_MESSAGE(code == 0, out);
    BOOST_CHECK_EQUAL(cfg.data_dir, "var/demo");
  }
}

BOOST_AUTO_TEST_CASE(without_a_data_dir_from_anyone_the_program_stops_naming_the_option) {
  varve::varve_config cfg;
  auto [code, out] = configure_with({}, cfg);
  BOOST_CHECK_EQUAL(code, 2);
  BOOST_CHECK_MESSAGE(out.find("varve.data-dir is not set") != std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(no_config_file_is_read_from_the_working_directory_unless_named) {
  varve_test::temp_dir dir;
  std::filesystem::create_directories(dir / "config");
  std::ofstream(dir / "config" / "varve.ini") << "[varve]\ndata-dir=\"from-cwd\"\n";
  const auto before = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  varve::varve_config plain, named;
  auto a = configure_with({}, plain, {.data_dir = "var/own"});
  auto b = configure_with({}, named, {.data_dir = "var/own", .config_file = "config/varve.ini"});
  std::filesystem::current_path(before);
  BOOST_REQUIRE_MESSAGE(a.first == 0, a.second);
  BOOST_CHECK_EQUAL(plain.data_dir, "var/own");
  BOOST_REQUIRE_MESSAGE(b.first == 0, b.second);
  BOOST_CHECK_EQUAL(named.data_dir, "from-cwd");
}

/// A program's own boolean option, as the examples declare them.
struct flag_config : varve::varve_config {
  bool replay = true;
  flag_config() { opt_group{custom_options_, "app"}.add(replay, "replay", "replay at start"); }
};

BOOST_AUTO_TEST_CASE(booleans_take_true_false_1_and_0) {
  const std::vector<std::pair<std::string, bool>> cases{
      {"--app.replay", true},        {"--app.replay=true", true}, {"--app.replay=1", true},
      {"--app.replay=false", false}, {"--app.replay=0", false},
  };
  for (const auto& [arg, expected] : cases) {
    BOOST_TEST_CONTEXT(arg) {
      flag_config cfg;
      cfg.replay = !expected;
      auto [code, out] = configure_with({arg}, cfg, {.data_dir = "var/own"});
      BOOST_REQUIRE_MESSAGE(code == 0, out);
      BOOST_CHECK_EQUAL(cfg.replay, expected);
      BOOST_CHECK_EQUAL(caf::get_or(cfg, "app.replay", !expected), expected);
    }
  }
  flag_config cfg;
  auto [code, out] = configure_with({"--app.replay=maybe"}, cfg, {.data_dir = "var/own"});
  BOOST_CHECK_EQUAL(code, 2);
  BOOST_CHECK_MESSAGE(
      out.find("--app.replay takes true, false, 1 or 0, not 'maybe'") != std::string::npos, out);
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
    auto [code, out] = configure_with(args, cfg, {.data_dir = "var/own"});
    BOOST_TEST_CONTEXT(args.front()) {
      BOOST_CHECK_EQUAL(code, 2);
      BOOST_CHECK(out.find("bad configuration") != std::string::npos);
      BOOST_CHECK(out.find(expected) != std::string::npos);
      BOOST_CHECK_EQUAL(std::count(out.begin(), out.end(), '\n'), 1);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_size_option_that_is_not_a_whole_number_is_refused_naming_it) {
  // CAF's parser drops a file's value it cannot convert (the default stayed
  // silently) and wraps a command-line number past int64 to -1 (it became 0).
  varve_test::temp_dir dir;
  std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--varve.batch-max-wait-us=18446744073709551615"}, "varve.batch-max-wait-us is -1"},
      {{"--varve.snapshot-every=-1"}, "--varve.snapshot-every=-1"},
  };
  int n = 0;
  for (const auto& [value, expected] :
       std::vector<std::pair<std::string, std::string>>{{"-1", "varve.snapshot-every is -1"},
                                                        {"2.5", "varve.snapshot-every is 2.5"},
                                                        {"\"300\"", "varve.snapshot-every is"},
                                                        {"abc", "line 2 (snapshot-every=abc)"}}) {
    const auto ini = (dir / ("bad" + std::to_string(n++) + ".ini")).string();
    std::ofstream(ini) << "[varve]\nsnapshot-every=" << value << "\n";
    cases.push_back({{"--config-file=" + ini}, expected});
  }
  for (const auto& [args, expected] : cases) {
    varve::varve_config cfg;
    auto [code, out] = configure_with(args, cfg, {.data_dir = "d"});
    BOOST_TEST_CONTEXT(args.front()) {
      BOOST_CHECK_EQUAL(code, 2);
      BOOST_CHECK_MESSAGE(out.find(expected) != std::string::npos, out);
      BOOST_CHECK_EQUAL(std::count(out.begin(), out.end(), '\n'), 1);
    }
    // The programs that read the settings without an actor system.
    std::vector<std::string> argv{"varve_test"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<const char*> pointers;
    for (const auto& a : argv)
      pointers.push_back(a.c_str());
    auto read =
        varve::read_settings(static_cast<int>(pointers.size()), pointers.data(), {.data_dir = "d"});
    BOOST_TEST_CONTEXT("read_settings " << args.front()) {
      BOOST_REQUIRE(!read.ok());
      BOOST_CHECK_MESSAGE(read.err().message().find(expected.substr(0, 20)) != std::string::npos ||
                              read.err().message().find("snapshot-every") != std::string::npos,
                          read.err().message());
    }
  }
  // A whole number in range still reads.
  const auto good = (dir / "good.ini").string();
  std::ofstream(good) << "[varve]\nsnapshot-every=0\nbatch-max-wait-us=10000\n";
  varve::varve_config cfg;
  auto [code, out] = configure_with({"--config-file=" + good}, cfg, {.data_dir = "d"});
  BOOST_REQUIRE_MESSAGE(code == 0, out);
  BOOST_CHECK_EQUAL(cfg.snapshot_every, 0u);
  BOOST_CHECK_EQUAL(cfg.batch_max_wait_us, 10000u);
}

BOOST_AUTO_TEST_CASE(the_shipped_ini_file_is_valid) {
  varve::varve_config cfg;
  auto [code, out] = configure_with({"--config-file=" VARVE_SOURCE_DIR "/config/varve.ini"}, cfg,
                                    {.data_dir = "var/own"});
  BOOST_CHECK_MESSAGE(code == 0, out);
}

BOOST_AUTO_TEST_CASE(snapshots_have_one_default) {
  varve::varve_config cfg;
  BOOST_CHECK_EQUAL(cfg.aggregates().snapshot_every, varve::aggregate_options{}.snapshot_every);
  BOOST_CHECK_EQUAL(varve::aggregate_options{}.snapshot_every, 100u);
}

BOOST_AUTO_TEST_CASE(help_lists_the_varve_options) {
  for (const char* flag : {"--help", "-h", "--long-help"}) {
    BOOST_TEST_CONTEXT(flag) {
      varve::varve_config cfg;
      std::stringstream out;
      auto* old = std::cout.rdbuf(out.rdbuf());
      auto [code, err] = configure_with({flag}, cfg);
      std::cout.rdbuf(old);
      BOOST_CHECK_EQUAL(code, 0);
      BOOST_CHECK(cfg.cli_helptext_printed);
      for (const char* option : {"data-dir", "snapshot-every", "serve-port"})
        BOOST_CHECK_MESSAGE(out.str().find(option) != std::string::npos, out.str());
    }
  }
}

BOOST_AUTO_TEST_CASE(the_scheduler_in_force_is_named) {
  varve::varve_config cfg;
  auto [code, out] = configure_with({"--scheduler.max-threads=3"}, cfg, {.data_dir = "var/own"});
  BOOST_REQUIRE_MESSAGE(code == 0, out);
  BOOST_CHECK_MESSAGE(cfg.scheduler_summary().starts_with("scheduler: sharing, 3 threads"),
                      cfg.scheduler_summary());
}
