// A store written to while the program's statics are set up (a global
// that appends in its constructor, before Varve's own initializers ran),
// then fork(2): each child must generate ids of its own.
#define BOOST_TEST_MODULE static_init_fork
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "event_ids.hpp"
#include "temp_dir.hpp"

using namespace varve;

namespace {

bool append(event_store& store, const std::string& stream, int n) {
  for (int i = 0; i < n; ++i)
    if (!store.append(stream, expected_version::any(), varve_test::make_events(1))) return false;
  return true;
}

/// Opened, and written to once, during static initialization.
struct early_store {
  varve_test::temp_dir dir;
  options opts = varve_test::test_options(dir / "store");
  bool appended = false;
  early_store() {
    opts.sync = durability::no_sync;
    auto store = event_store::open(opts);
    appended = store && append(**store, "early", 1);
  }
} early;

}  // namespace

BOOST_AUTO_TEST_CASE(
    children_forked_after_a_store_was_written_at_static_init_draw_ids_of_their_own) {
  BOOST_REQUIRE(early.appended);
  constexpr int count = 20;
  for (const char* stream : {"child-a", "child-b"}) {
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      auto store = event_store::open(early.opts);
      ::_exit(store && append(**store, stream, count) ? 0 : 1);
    }
    int status = 0;
    BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
    BOOST_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto store = varve_test::open_store(early.opts);
  auto a = store->read_stream("child-a");
  auto b = store->read_stream("child-b");
  BOOST_REQUIRE(a.ok() && b.ok());
  BOOST_REQUIRE_EQUAL(a->size(), static_cast<std::size_t>(count));
  BOOST_CHECK_EQUAL(varve_test::shared_random_bits(*a, *b), 0);
}
