// The value types of the storage API: event ids, expected versions, error
// codes and results. No store needed.
#define BOOST_TEST_MODULE event
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>

#include "event_ids.hpp"
#include "temp_dir.hpp"

using namespace varve;

BOOST_AUTO_TEST_SUITE(values)

BOOST_AUTO_TEST_CASE(event_id_text_form_round_trips) {
  const auto id = event_id::generate();
  const std::string text = id.to_string();
  BOOST_TEST(text.size() == 36u);
  for (std::size_t i : {8u, 13u, 18u, 23u})
    BOOST_TEST(text[i] == '-');
  for (char c : text) {
    BOOST_TEST(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-'), text);
  }
  const auto parsed = event_id::parse(text);
  BOOST_REQUIRE(parsed.has_value());
  BOOST_TEST(*parsed == id);

  std::string hex;
  for (char c : text) {
    if (c != '-') hex.push_back(c);
  }
  const auto from_hex = event_id::parse(hex);
  BOOST_REQUIRE(from_hex.has_value());
  BOOST_TEST(*from_hex == id);

  const auto known = event_id::parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
  BOOST_REQUIRE(known.has_value());
  BOOST_TEST(known->bytes[0] == 0x01u);
  BOOST_TEST(known->bytes[15] == 0x5bu);
  BOOST_TEST(known->to_string() == "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
}

BOOST_AUTO_TEST_CASE(event_id_parse_refuses_anything_else) {
  for (const char* bad :
       {"", "0190a1b2", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5",
        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5bb", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g",
        "0190a1b2c3d4-7e5f-8a9b-0c1d2e3f4a5b-", "not an id at all"}) {
    BOOST_TEST(!event_id::parse(bad).has_value(), "parsed \"" << bad << "\"");
  }
}

BOOST_AUTO_TEST_CASE(generated_event_ids_are_distinct_and_time_ordered) {
  std::set<std::string> seen;
  std::string last;
  for (int i = 0; i < 10000; ++i) {
    const auto text = event_id::generate().to_string();
    // The first 48 bits are milliseconds: the 12 leading hex digits never go back.
    BOOST_TEST(text.substr(0, 13) >= last.substr(0, std::min<std::size_t>(13, last.size())));
    last = text;
    seen.insert(text);
  }
  BOOST_TEST(seen.size() == 10000u);
}

BOOST_AUTO_TEST_CASE(expected_version_names_itself) {
  BOOST_TEST(expected_version::any().to_string() == "any");
  BOOST_TEST(expected_version::no_stream().to_string() == "no_stream");
  BOOST_TEST(expected_version::stream_exists().to_string() == "stream_exists");
  BOOST_TEST(expected_version::exact(42).to_string() == "42");
  BOOST_TEST(expected_version::exact(0).to_string() == "0");
  BOOST_TEST((expected_version::exact(3) == expected_version::exact(3)));
  BOOST_TEST(!(expected_version::exact(3) == expected_version::exact(4)));
  BOOST_TEST(!(expected_version::any() == expected_version::no_stream()));
  BOOST_TEST((expected_version::exact(7).type() == expected_version::kind::exact));
  BOOST_TEST(expected_version::exact(7).version() == 7u);
}

BOOST_AUTO_TEST_CASE(error_codes_have_stable_names) {
  BOOST_TEST(to_string(errc::not_found) == "not_found");
  BOOST_TEST(to_string(errc::wrong_expected_version) == "wrong_expected_version");
  BOOST_TEST(to_string(errc::corruption) == "corruption");
  BOOST_TEST(to_string(errc::io_error) == "io_error");
  BOOST_TEST(to_string(errc::storage_full) == "storage_full");
  BOOST_TEST(to_string(errc::invalid_argument) == "invalid_argument");
  BOOST_TEST(to_string(errc::auth_failed) == "auth_failed");
  BOOST_TEST(to_string(errc::shredded) == "shredded");
  BOOST_TEST(to_string(errc::format_version) == "format_version");
  BOOST_TEST(to_string(errc::failed_state) == "failed_state");
  BOOST_TEST(to_string(errc::busy) == "busy");
  BOOST_TEST(to_string(errc::rejected) == "rejected");
  BOOST_TEST(to_string(errc::unavailable) == "unavailable");
  BOOST_TEST(to_string(errc::handler_failed) == "handler_failed");
  BOOST_TEST(to_string(durability::sync) == "sync");
  BOOST_TEST(to_string(durability::no_meta_sync) == "no_meta_sync");
  BOOST_TEST(to_string(durability::no_sync) == "no_sync");

  const error e(errc::corruption, "record 7 is short");
  BOOST_TEST(e.to_string() == "corruption: record 7 is short");
}

BOOST_AUTO_TEST_CASE(result_holds_a_value_or_an_error) {
  result<int> good(5);
  BOOST_TEST(good.ok());
  BOOST_TEST(*good == 5);
  result<int> bad(error(errc::not_found, "nothing"));
  BOOST_TEST(!bad.ok());
  BOOST_TEST(bad.err().code() == errc::not_found);
  result<void> done;
  BOOST_TEST(done.ok());
  result<void> failed(error(errc::busy, "readers"));
  BOOST_TEST(!failed.ok());
  BOOST_TEST(failed.err().message() == "readers");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(ids_generated_in_a_forked_child_differ_from_the_parents) {
  // A child made by fork(2) inherits its parent's generator: without a new
  // seed both would generate the same ids in the same millisecond.
  (void)varve::event_id::generate();  // seeds this thread's generator
  int pipe_fds[2];
  BOOST_REQUIRE_EQUAL(::pipe(pipe_fds), 0);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  constexpr int count = 20;
  if (pid == 0) {
    for (int i = 0; i < count; ++i) {
      const auto id = varve::event_id::generate();
      (void)!::write(pipe_fds[1], id.bytes.data(), id.bytes.size());
    }
    ::_exit(0);
  }
  std::set<std::string> mine;
  for (int i = 0; i < count; ++i)
    mine.insert(varve::event_id::generate().to_string());
  int shared = 0;
  for (int i = 0; i < count; ++i) {
    varve::event_id id;
    BOOST_REQUIRE_EQUAL(::read(pipe_fds[0], id.bytes.data(), id.bytes.size()),
                        static_cast<ssize_t>(id.bytes.size()));
    shared += static_cast<int>(mine.count(id.to_string()));
  }
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
  BOOST_CHECK_EQUAL(shared, 0);
}

BOOST_AUTO_TEST_CASE(ids_a_store_generates_in_a_child_of_a_raw_fork_differ_from_its_parents) {
  // syscall(SYS_fork) runs no pthread_atfork handler: the child holds its
  // parent's generator. The store must notice the new process itself, or
  // both draw the same random bits, and in one millisecond the same ids.
  varve_test::temp_dir dir;
  const auto o = varve_test::test_options(dir / "store");
  constexpr int count = 20;
  auto append = [&](const std::string& stream) {
    auto store = event_store::open(o);
    if (!store) return false;
    for (int i = 0; i < count; ++i)
      if (!(*store)->append(stream, expected_version::any(), varve_test::make_events(1)))
        return false;
    return true;
  };
  BOOST_REQUIRE(append("seed"));  // this thread's generator is seeded
  const pid_t pid = static_cast<pid_t>(::syscall(SYS_fork));
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(append("child") ? 0 : 1);
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
  BOOST_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  BOOST_REQUIRE(append("parent"));
  auto store = varve_test::open_store(o);
  auto child = store->read_stream("child");
  auto parent = store->read_stream("parent");
  BOOST_REQUIRE(child.ok() && parent.ok());
  BOOST_REQUIRE_EQUAL(child->size(), static_cast<std::size_t>(count));
  BOOST_CHECK_EQUAL(varve_test::shared_random_bits(*child, *parent), 0);
}
