// The projection control protocol (varve::projection_protocol, no CAF): what
// projections, their manager and varvectl read and write in the store.
#define BOOST_TEST_MODULE projection_protocol
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <random>
#include <varve/projections/protocol.hpp>

using namespace varve;

BOOST_AUTO_TEST_SUITE(projection_protocol)

BOOST_AUTO_TEST_CASE(a_checkpoint_state_reads_back_as_written) {
  for (auto s : {projection_state::catching_up, projection_state::live, projection_state::retrying,
                 projection_state::paused, projection_state::failed, projection_state::stopped}) {
    checkpoint_state in{delivery::at_least_once, s, "smtp: timeout", 1700000000000000, 0, 0, ""};
    if (s == projection_state::retrying) in.attempt = 2, in.attempts = 4;
    if (s == projection_state::live) in.source = "127.0.0.1:7410";
    auto out = parse_checkpoint_state(to_json(in));
    BOOST_REQUIRE_MESSAGE(out.ok(), to_json(in));
    BOOST_CHECK(out->mode == in.mode);
    BOOST_CHECK(out->state == in.state);
    BOOST_CHECK_EQUAL(out->error, in.error);
    BOOST_CHECK_EQUAL(out->updated_us, in.updated_us);
    BOOST_CHECK_EQUAL(out->attempt, in.attempt);
    BOOST_CHECK_EQUAL(out->attempts, in.attempts);
    BOOST_CHECK_EQUAL(out->source, in.source);
  }
}

BOOST_AUTO_TEST_CASE(a_state_written_by_hand_with_the_documented_keys_reads) {
  auto s = parse_checkpoint_state(
      R"({"mode":"exactly_once","state":"live","error":"","updated_us":5,"future":[1]})");
  BOOST_REQUIRE(s.ok());
  BOOST_CHECK(s->mode == delivery::exactly_once);
  BOOST_CHECK(s->state == projection_state::live);
  auto bare = parse_checkpoint_state(R"({"state":"paused"})");  // the other keys may be left out
  BOOST_REQUIRE(bare.ok());
  BOOST_CHECK(!bare->mode);
  BOOST_CHECK(bare->state == projection_state::paused);
}

BOOST_AUTO_TEST_CASE(a_malformed_checkpoint_state_says_what_is_wrong) {
  const std::vector<std::pair<std::string, std::string>> malformed{
      {R"({"state":[]})", "'state' is an array, not a string"},
      {R"({"state":{"paused":true}})", "'state' is an object"},
      {R"({"mode":"exactly_once"})", "it has no 'state'"},
      {R"("paused")", "it is a string, not an object"},
      {"\xff not json", "it is not JSON"},
      {R"({"state":"dancing"})", "unknown state 'dancing'"},
      {R"({"state":"committing"})", "unknown state 'committing'"},  // never stored
      {R"({"state":"live","mode":"twice"})", "unknown mode 'twice'"},
      {R"({"state":"live","error":7})", "'error' is a number, not a string"},
      {R"({"state":"live","updated_us":"now"})", "'updated_us' is a string, not an integer"},
      {R"({"state":"retrying","attempt":-1})", "'attempt' is a number, not an unsigned integer"},
  };
  for (const auto& [text, problem] : malformed) {
    BOOST_TEST_CONTEXT(text) {
      auto s = parse_checkpoint_state(text);
      BOOST_REQUIRE(!s.ok());
      BOOST_CHECK(s.err().code() == errc::corruption);
      BOOST_CHECK_MESSAGE(s.err().message().find(problem) != std::string::npos, s.err().message());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_listing_reads_what_it_can_of_a_state_that_does_not_parse) {
  auto f = read_checkpoint_fields(R"({"mode":"at_least_once","state":"fa\u001biled","error":7})");
  BOOST_CHECK_EQUAL(f.mode.value_or("-"), "at_least_once");
  BOOST_CHECK_EQUAL(f.state.value_or("-"), "fa\x1biled");  // shown as it is, escaped
  BOOST_CHECK(!f.error);                                   // of the wrong type
  BOOST_CHECK_EQUAL(f.problem, "'error' is a number, not a string");
  auto none = read_checkpoint_fields("not json");
  BOOST_CHECK(!none.state && !none.mode);
  BOOST_CHECK_EQUAL(none.problem, "it is not JSON");
  BOOST_CHECK_EQUAL(read_checkpoint_fields(to_json(checkpoint_state{})).problem, "");
}

BOOST_AUTO_TEST_CASE(a_control_request_reads_back_as_written) {
  for (auto c : {control_command::pause, control_command::resume, control_command::reset,
                 control_command::rebuild}) {
    control_request in{c, c == control_command::reset ? 42u : 0u, 99};
    auto out = parse_control_request(to_json(in));
    BOOST_REQUIRE_MESSAGE(out.ok(), to_json(in));
    BOOST_CHECK(out->command == c);
    BOOST_CHECK_EQUAL(out->position, in.position);
    BOOST_CHECK_EQUAL(out->requested_us, 99);
  }
  BOOST_CHECK_EQUAL(to_json(control_request{control_command::pause, 7, 1}),
                    R"({"command":"pause","requested_us":1})");  // a position only for a reset
}

BOOST_AUTO_TEST_CASE(a_malformed_control_request_says_what_is_wrong) {
  const std::vector<std::pair<std::string, std::string>> malformed{
      {R"({"command":5})", "'command' is a number"},
      {R"({"command":"reset","position":"12"})", "'position' is a string"},
      {R"({"command":"reset","position":-3})", "'position' is a number"},
      {R"({"command":"reset"})", "the reset has no 'position'"},
      {R"({"position":4})", "the request has no 'command'"},
      {R"(["pause"])", "the request is an array"},
      {R"({"command":"explode"})", "unknown command 'explode'"},
      {"pause, please", "the request is not JSON"},
      {R"({"command":"pause","requested_us":"today"})", "'requested_us' is a string"},
  };
  for (const auto& [text, problem] : malformed) {
    BOOST_TEST_CONTEXT(text) {
      auto r = parse_control_request(text);
      BOOST_REQUIRE(!r.ok());
      BOOST_CHECK(r.err().code() == errc::invalid_argument);
      BOOST_CHECK_MESSAGE(r.err().message().find(problem) != std::string::npos, r.err().message());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_dead_letter_reads_back_and_its_key_sorts_by_position) {
  dead_letter in{"order-7", "placed", 3, "bad event", 12};
  auto out = parse_dead_letter(to_json(in));
  BOOST_REQUIRE(out.ok());
  BOOST_CHECK_EQUAL(out->stream, "order-7");
  BOOST_CHECK_EQUAL(out->version, 3u);
  BOOST_CHECK_EQUAL(out->error, "bad event");
  BOOST_CHECK(position_key(255) < position_key(256));
  BOOST_CHECK_EQUAL(position_key(1), std::string("\0\0\0\0\0\0\0\x01", 8));
  BOOST_CHECK_EQUAL(dead_letter_view("orders"), "varve.dead_letters.orders");
  BOOST_CHECK(!parse_dead_letter(R"({"stream":"s"})").ok());
}

BOOST_AUTO_TEST_CASE(an_error_that_quotes_any_bytes_is_stored_as_utf8) {
  checkpoint_state s;
  s.state = projection_state::failed;
  s.error = "bad \xff\xfe byte";
  std::string text;
  BOOST_REQUIRE_NO_THROW(text = to_json(s));
  auto back = parse_checkpoint_state(text);
  BOOST_REQUIRE(back.ok());
  BOOST_CHECK(back->error.find("\xEF\xBF\xBD") != std::string::npos);  // U+FFFD
}

BOOST_AUTO_TEST_CASE(parsing_never_throws_whatever_the_bytes) {
  std::mt19937 rng(7);
  const std::string valid = to_json(
      checkpoint_state{delivery::exactly_once, projection_state::retrying, "e", 1, 2, 3, ""});
  for (int i = 0; i < 5000; ++i) {
    std::string text = valid.substr(0, rng() % (valid.size() + 1));
    if (i % 2 && !text.empty()) text[rng() % text.size()] ^= 0x55;
    BOOST_REQUIRE_NO_THROW((void)parse_checkpoint_state(text));
    BOOST_REQUIRE_NO_THROW((void)parse_control_request(text));
    BOOST_REQUIRE_NO_THROW((void)parse_dead_letter(text));
  }
}

BOOST_AUTO_TEST_CASE(states_and_modes_have_one_name_each) {
  for (auto s : {projection_state::catching_up, projection_state::live,
                 projection_state::committing, projection_state::retrying, projection_state::paused,
                 projection_state::failed, projection_state::stopped})
    BOOST_CHECK(parse_projection_state(to_string(s)) == s);
  for (auto m : {delivery::exactly_once, delivery::at_least_once})
    BOOST_CHECK(parse_delivery(to_string(m)) == m);
  BOOST_CHECK(!parse_projection_state("connecting"));
  BOOST_CHECK_EQUAL(describe(projection_state::retrying, 2, 4), "retrying (attempt 2 of 4)");
  BOOST_CHECK_EQUAL(describe(projection_state::live, 2, 4), "live");
}

BOOST_AUTO_TEST_SUITE_END()
