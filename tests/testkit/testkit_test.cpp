// Varve::testkit: given / when / then for aggregates, verdicts, and the
// temporary store. Each check is pinned both ways: it passes on what holds
// and fails, with a message that says why, on what does not.
#define BOOST_TEST_MODULE testkit
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <sstream>
#include <varve/testkit/aggregate_test.hpp>
#include <varve/testkit/temp_store.hpp>

#include "../storage/temp_dir.hpp"
#include "counter.hpp"

using namespace counter_model;
using varve::errc;
using varve::testkit::aggregate_test;
using varve::testkit::verdict;

namespace {

bool says(const verdict& v, std::string_view text) {
  return v.message().find(text) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(aggregates)

BOOST_AUTO_TEST_CASE(given_when_then_events_passes_and_the_state_folds_both) {
  aggregate_test<counter> t;
  t.given({added{5}, added{10}}).when(add{3});
  BOOST_TEST(t.then_events({added{3}}));
  BOOST_TEST(t.state().total == 18);
  BOOST_TEST(t.version() == 3u);
  BOOST_TEST(t.events().size() == 1u);
  BOOST_TEST(!t.refusal());
  BOOST_TEST(t.when(add{7}).then_events({added{3}, added{4}}));  // two events, in order
  BOOST_TEST(t.state().total == 25);
  BOOST_TEST(t.version() == 5u);
}

BOOST_AUTO_TEST_CASE(a_wrong_type_fails_naming_the_index_and_both_types) {
  aggregate_test<counter> t;
  auto v = t.given({added{5}}).when(add{3}).then_events({cleared{}});
  BOOST_TEST(!v);
  BOOST_TEST(says(v, "event 0: expected 'cleared', actual 'added'"), v.message());
  BOOST_TEST(says(v, "expected 1 event ('cleared'), actual 1 event ('added')"), v.message());
}

BOOST_AUTO_TEST_CASE(the_same_type_with_other_bytes_fails_saying_the_payloads_differ) {
  aggregate_test<counter> t;
  auto v = t.when(add{30}).then_events({added{31}});
  BOOST_TEST(!v);
  BOOST_TEST(says(v, "event 0: 'added' in both, the payloads differ at byte 1"), v.message());
  BOOST_TEST(says(v, "expected 2 bytes: 33 31; actual 2 bytes: 33 30"), v.message());
}

BOOST_AUTO_TEST_CASE(missing_and_unexpected_events_are_named) {
  aggregate_test<counter> t;
  t.when(add{3});
  auto more = t.then_events({added{3}, added{1}});
  BOOST_TEST(!more);
  BOOST_TEST(says(more, "event 1: expected 'added', missing"), more.message());
  auto fewer = t.then_events({});
  BOOST_TEST(!fewer);
  BOOST_TEST(says(fewer, "event 0: actual 'added', not expected"), fewer.message());
  BOOST_TEST(says(fewer, "expected 0 events, actual 1 event ('added')"), fewer.message());
}

BOOST_AUTO_TEST_CASE(a_refusal_passes_then_rejected_and_leaves_the_state) {
  aggregate_test<counter> t;
  t.given({added{90}}).when(add{20});
  BOOST_TEST(t.then_rejected());
  BOOST_TEST(t.then_rejected(errc::rejected));
  BOOST_TEST(t.then_rejected_with("over the limit"));
  BOOST_TEST(t.state().total == 90);
  BOOST_TEST(t.version() == 1u);
  BOOST_TEST(t.events().empty());
  BOOST_REQUIRE(t.refusal());
  BOOST_TEST(t.refusal()->message() == "over the limit");

  auto code = t.then_rejected(errc::invalid_argument);
  BOOST_TEST(!code);
  BOOST_TEST(says(code,
                  "expected a refusal with invalid_argument, but it was refused with "
                  "rejected: over the limit"),
             code.message());
  auto text = t.then_rejected_with("insufficient");
  BOOST_TEST(!text);
  BOOST_TEST(says(text, "a refusal saying 'insufficient'"), text.message());
  auto events = t.then_events({added{20}});
  BOOST_TEST(!events);
  BOOST_TEST(says(events,
                  "expected 1 event ('added'), but the command was refused: rejected: "
                  "over the limit"),
             events.message());
}

BOOST_AUTO_TEST_CASE(expecting_a_refusal_of_an_accepted_command_fails) {
  aggregate_test<counter> t;
  auto v = t.when(add{1}).then_rejected();
  BOOST_TEST(!v);
  BOOST_TEST(says(v,
                  "expected a refusal with rejected, but the command was accepted with 1 "
                  "event ('added')"),
             v.message());
  BOOST_TEST(!t.then_rejected_with("over"));
}

BOOST_AUTO_TEST_CASE(a_command_that_decides_nothing_passes_with_no_events) {
  aggregate_test<counter> t;
  BOOST_TEST(t.when(clear{}).then_events({}));
  BOOST_TEST(t.version() == 0u);
  BOOST_TEST(!t.then_events({cleared{}}));
}

BOOST_AUTO_TEST_CASE(checks_before_a_command_fail_and_given_forgets_the_outcome) {
  aggregate_test<counter> t;
  auto v = t.then_events({});
  BOOST_TEST(!v);
  BOOST_TEST(says(v, "call when() before"), v.message());
  BOOST_TEST(!t.then_rejected());
  t.when(add{1});
  BOOST_TEST(t.then_events({added{1}}));
  t.given({added{1}});
  BOOST_TEST(!t.then_events({added{1}}));
  BOOST_TEST(t.state().total == 2);
}

BOOST_AUTO_TEST_CASE(a_decided_event_that_does_not_encode_refuses_the_command) {
  aggregate_test<counter> t;
  t.when(emit_poison{});
  BOOST_TEST(t.then_rejected(errc::invalid_argument));
  BOOST_TEST(t.then_rejected_with("decided event 1 ('poison') does not serialise"));
  BOOST_TEST(t.state().total == 0);  // nothing of it applied, as no append happened
  BOOST_TEST(t.version() == 0u);
}

BOOST_AUTO_TEST_CASE(given_events_go_through_the_codec_as_hydration_reads_them) {
  aggregate_test<counter> t;
  try {
    t.given({added{2}, opaque{}, added{3}});
    BOOST_FAIL("an event the codec does not decode was applied");
  } catch (const varve::testkit::testkit_error& e) {
    BOOST_TEST(
        std::string(e.what()).find("given event 1 ('opaque') does not decode") != std::string::npos,
        e.what());
  }
  BOOST_TEST(t.state().total == 2);  // those before it stay applied
  BOOST_CHECK_THROW(t.given({poison{}}), varve::testkit::testkit_error);
  BOOST_CHECK_THROW(t.when(add{1}).then_events({poison{}}), varve::testkit::testkit_error);
}

BOOST_AUTO_TEST_CASE(given_commands_must_be_accepted) {
  aggregate_test<counter> t;
  t.given_commands({add{10}, add{7}});
  BOOST_TEST(t.state().total == 17);  // 10, then 3 + 4
  BOOST_TEST(t.version() == 3u);
  BOOST_TEST(!t.then_events({}));  // the outcome is forgotten
  try {
    t.given_commands({add{1}, add{0}});
    BOOST_FAIL("a refused given command passed");
  } catch (const varve::testkit::testkit_error& e) {
    BOOST_TEST(std::string(e.what()) ==
               "given command 1 was refused: rejected: an amount must be positive");
  }
}

BOOST_AUTO_TEST_CASE(exceptions_of_decide_pass_through) {
  aggregate_test<counter> t;
  BOOST_CHECK_THROW(t.when(explode{}), std::logic_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(verdicts)

BOOST_AUTO_TEST_CASE(a_verdict_prints_its_message_and_throws_on_request) {
  const auto passed = verdict::pass();
  const auto failed = verdict::fail("it went wrong");
  BOOST_TEST(passed.ok());
  BOOST_TEST(!failed.ok());
  BOOST_TEST(static_cast<bool>(passed));
  BOOST_TEST(passed.message().empty());
  std::ostringstream out;
  out << passed << "|" << failed;
  BOOST_TEST(out.str() == "ok|it went wrong");
  BOOST_CHECK_NO_THROW(passed.or_throw());
  try {
    failed.or_throw();
    BOOST_FAIL("or_throw did not throw");
  } catch (const varve::testkit::expectation_failed& e) {
    BOOST_TEST(std::string(e.what()) == "it went wrong");
  }
  aggregate_test<counter> t;
  BOOST_CHECK_THROW(t.when(add{1}).then_events({added{2}}).or_throw(),
                    varve::testkit::expectation_failed);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(temporary_stores)

BOOST_AUTO_TEST_CASE(a_fresh_directory_under_tmpdir_removed_at_the_end) {
  varve_test::temp_dir tmp;
  const char* old = ::getenv("TMPDIR");
  const std::string saved = old ? old : "";
  ::setenv("TMPDIR", tmp.path().c_str(), 1);
  std::filesystem::path path;
  {
    varve::testkit::temp_store ts;
    path = ts.path();
    BOOST_TEST(path.parent_path() == tmp.path());
    BOOST_TEST(std::filesystem::is_directory(path / "store"));
    BOOST_TEST(!ts.store()->encrypted());
    BOOST_TEST(ts.store()->read().value().head() == 0u);
    varve::testkit::temp_store other;
    BOOST_TEST(other.path() != path);
  }
  if (old)
    ::setenv("TMPDIR", saved.c_str(), 1);
  else
    ::unsetenv("TMPDIR");
  BOOST_TEST(!std::filesystem::exists(path));
}

BOOST_AUTO_TEST_CASE(options_encrypted_and_map_size) {
  varve::testkit::temp_store ts({.encrypted = true, .map_size = std::uint64_t{32} << 20});
  BOOST_TEST(ts.store()->encrypted());
  auto stats = ts.store()->stats();
  BOOST_REQUIRE(stats.ok());
  BOOST_TEST(stats->encrypted);
  BOOST_TEST(stats->map_size == std::uint64_t{32} << 20);
  BOOST_TEST(ts.store_options().master_key.has_value());
}

BOOST_AUTO_TEST_CASE(append_encodes_with_the_codec_and_survives_a_reopen) {
  for (bool encrypted : {false, true}) {
    varve::testkit::temp_store ts({.encrypted = encrypted});
    auto r = ts.append<counter>("counter-1", {added{5}, cleared{}});
    BOOST_TEST(r.last_version == 2u);
    ts.reopen();
    auto events = ts.store()->read_stream("counter-1");
    BOOST_REQUIRE(events.ok());
    BOOST_REQUIRE(events->size() == 2u);
    BOOST_TEST((*events)[0].type == "added");
    BOOST_TEST((*events)[0].payload == "5");
    BOOST_TEST((*events)[1].type == "cleared");
    // A wrong expectation is the store's refusal, thrown.
    BOOST_CHECK_THROW(
        ts.append<counter>("counter-1", {added{1}}, varve::expected_version::exact(1)),
        varve::testkit::testkit_error);
    BOOST_CHECK_THROW(ts.append<counter>("counter-1", {poison{}}), varve::testkit::testkit_error);
    auto held = ts.store();
    BOOST_CHECK_THROW(ts.reopen(), varve::testkit::testkit_error);  // another owner holds it
  }
}

BOOST_AUTO_TEST_SUITE_END()
