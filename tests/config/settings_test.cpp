// varve::settings on its own (linked without actors or projections): the
// INI file and the --varve.* arguments read into the plain struct, other
// arguments left alone, bad configuration refused in one line, and the
// shipped INI file naming the defaults.
#define BOOST_TEST_MODULE settings
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <fstream>
#include <string>
#include <varve/config/settings.hpp>
#include <vector>

#include "../storage/temp_dir.hpp"

namespace {

const std::string shipped_ini = VARVE_SOURCE_DIR "/config/varve.ini";

/// read_settings on these arguments (after a program name).
varve::result<varve::settings> read(std::vector<std::string> args,
                                    varve::program_defaults defaults = {.data_dir = "var/own"}) {
  args.insert(args.begin(), "varve_test");
  std::vector<const char*> argv;
  for (const auto& a : args)
    argv.push_back(a.c_str());
  return varve::read_settings(static_cast<int>(argv.size()), argv.data(), defaults);
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_shipped_ini_file_names_the_defaults) {
  auto s = read({"--config-file=" + shipped_ini});
  BOOST_REQUIRE_MESSAGE(s.ok(), (s ? "" : s.err().message()));
  varve::settings defaults;
  defaults.data_dir = "var/own";  // the file names none: the program's
  BOOST_CHECK(*s == defaults);
  BOOST_CHECK_EQUAL(s->snapshot_every, 100u);
}

BOOST_AUTO_TEST_CASE(the_file_and_then_the_command_line_set_options_and_others_are_left_alone) {
  varve_test::temp_dir dir;
  const auto ini = (dir / "varve.ini").string();
  std::ofstream(ini) << "[varve]\ndata-dir=\"from-ini\"\ncheckpoint-every=42\nsync=\"no_sync\"\n"
                        "skip-checksums=true\n"
                        "[bank]\naccounts=7\n";
  auto s = read({"--config-file=" + ini, "--varve.data-dir=from-cli", "--bank.commands=9",
                 "--scheduler.max-threads=2", "--varve.snapshot-every=0", "--varve.skip-prefault"});
  BOOST_REQUIRE_MESSAGE(s.ok(), (s ? "" : s.err().message()));
  BOOST_CHECK_EQUAL(s->data_dir, "from-cli");
  BOOST_CHECK_EQUAL(s->checkpoint_every, 42u);
  BOOST_CHECK_EQUAL(s->snapshot_every, 0u);
  BOOST_CHECK(s->store_options().sync == varve::durability::no_sync);
  BOOST_CHECK(!s->store_options().verify_checksums);  // the file's
  BOOST_CHECK(!s->store_options().prefault_map);      // the command line's
  auto plain = read({"--config-file=" + shipped_ini});
  BOOST_REQUIRE(plain.ok());
  BOOST_CHECK(plain->store_options().verify_checksums);
  BOOST_CHECK(plain->store_options().prefault_map);
}

BOOST_AUTO_TEST_CASE(a_program_default_data_dir_gives_way_to_the_command_line) {
  BOOST_CHECK_EQUAL(read({"--config-file=" + shipped_ini})->data_dir, "var/own");
  BOOST_CHECK_EQUAL(read({"--varve.data-dir=var/demo"})->data_dir, "var/demo");
}

BOOST_AUTO_TEST_CASE(a_library_user_must_name_the_data_dir) {
  auto s = read({}, {});
  BOOST_REQUIRE(!s.ok());
  BOOST_CHECK_MESSAGE(s.err().message().find("varve.data-dir is not set") != std::string::npos,
                      s.err().message());
  BOOST_CHECK(varve::settings{}.data_dir.empty());
}

BOOST_AUTO_TEST_CASE(bad_configuration_is_refused_in_one_line_naming_it) {
  varve_test::temp_dir dir;
  const auto unknown_ini = (dir / "unknown.ini").string();
  std::ofstream(unknown_ini) << "[varve]\nno-such-option=1\n";
  const auto not_a_switch_ini = (dir / "not_a_switch.ini").string();
  std::ofstream(not_a_switch_ini) << "[varve]\nskip-prefault=\"sometimes\"\n";
  const auto loose = (dir / "loose.key").string();
  std::ofstream(loose) << std::string(64, 'a');
  ::chmod(loose.c_str(), 0644);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--varve.sync=sometimes"}, "varve.sync"},
      {{"--varve.no-such-option=1"}, "unknown option --varve.no-such-option=1"},
      {{"--config-file=" + unknown_ini}, "unknown option varve.no-such-option"},
      {{"--varve.batch-max-events=0"}, "varve.batch-max-events"},
      {{"--varve.serve-port=70000"}, "varve.serve-port"},
      {{"--varve.map-size-mib=abc"}, "--varve.map-size-mib=abc"},
      {{"--varve.skip-checksums=sometimes"}, "--varve.skip-checksums=sometimes"},
      {{"--config-file=" + not_a_switch_ini},
       "varve.skip-prefault is \"sometimes\"; true or false"},
      {{"--varve.key-file=" + (dir / "missing.key").string()}, "cannot be read"},
      {{"--varve.key-file=" + loose}, "group or others"},
      {{"--config-file=" + (dir / "absent.ini").string()}, "cannot read config file"},
  };
  for (const auto& [args, expected] : cases) {
    auto s = read(args);
    BOOST_TEST_CONTEXT(args.front()) {
      BOOST_REQUIRE(!s.ok());
      BOOST_CHECK_EQUAL(s.err().code(), varve::errc::invalid_argument);
      BOOST_CHECK_MESSAGE(s.err().message().find(expected) != std::string::npos, s.err().message());
      BOOST_CHECK_EQUAL(s.err().message().find('\n'), std::string::npos);
    }
  }
}
