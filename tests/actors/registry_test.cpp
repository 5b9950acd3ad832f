// A registry's bookkeeping (live_aggregates), without the registry actor:
// the least recently used goes first, the cap holds, a bounce is retried a
// bounded number of times, and a crash answers what was in flight.
#define BOOST_TEST_MODULE registry
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include <varve/actors/aggregate.hpp>

using varve::detail::live_aggregates;
using varve::detail::pending_command;

namespace {

/// Actors that stand in for aggregate actors; stopped at the end.
struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  std::vector<caf::actor> spawned;

  caf::actor actor() {
    // CAF 0.17 dereferences a null argument tuple when a function actor
    // takes no arguments (UBSan reports it), so this one takes its index.
    spawned.push_back(
        sys.spawn([](std::size_t) -> caf::behavior { return {[](int) {}}; }, spawned.size()));
    return spawned.back();
  }
  ~fixture() {
    for (auto& a : spawned)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
};

pending_command job(std::string id) {
  return {std::move(id), caf::make_message(1), {}, 0};
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(registry, fixture)

BOOST_AUTO_TEST_CASE(the_least_recently_used_makes_room_and_counts_as_passivated) {
  live_aggregates live(2);
  auto a = actor(), b = actor(), c = actor();
  BOOST_CHECK(live.make_room().empty());
  live.add("a", a);
  live.add("b", b);
  BOOST_CHECK(live.find("a") == a);  // now b is the least recently used
  BOOST_CHECK(!live.find("c"));
  auto victims = live.make_room();
  BOOST_REQUIRE_EQUAL(victims.size(), 1u);
  BOOST_CHECK(victims.front() == b);
  live.add("c", c);
  auto s = live.stats();
  BOOST_CHECK_EQUAL(s.alive, 2u);
  BOOST_CHECK_EQUAL(s.spawned, 3u);
  BOOST_CHECK_EQUAL(s.passivated, 1u);
  // Its down message later does not count it again.
  BOOST_CHECK(live.down(b.address(), caf::exit_reason::normal).failed.empty());
  BOOST_CHECK_EQUAL(live.stats().passivated, 1u);
}

BOOST_AUTO_TEST_CASE(a_cap_of_zero_keeps_one_alive) {
  live_aggregates live(0);
  live.add("a", actor());
  BOOST_CHECK_EQUAL(live.make_room().size(), 1u);
  live.add("b", actor());
  BOOST_CHECK_EQUAL(live.stats().alive, 1u);
}

BOOST_AUTO_TEST_CASE(retiring_an_actor_leaves_a_newer_one_of_its_id_alone) {
  live_aggregates live(10);
  auto old = actor(), fresh = actor();
  live.add("a", old);
  live.retire(old.address());
  BOOST_CHECK(!live.find("a"));
  live.add("a", fresh);
  live.retire(old.address());  // a late bounce from the old one
  BOOST_CHECK(live.find("a") == fresh);
}

BOOST_AUTO_TEST_CASE(a_job_is_taken_once) {
  live_aggregates live(10);
  auto a = actor();
  live.add("a", a);
  const auto key = live.track(a.address(), job("a"));
  auto j = live.take(a.address(), key);
  BOOST_REQUIRE(j);
  BOOST_CHECK_EQUAL(j->id, "a");
  BOOST_CHECK(!live.take(a.address(), key));
}

BOOST_AUTO_TEST_CASE(a_job_bounces_at_most_max_bounces_times) {
  live_aggregates live(10);
  auto a = actor();
  live.add("a", a);
  auto j = job("a");
  for (unsigned i = 0; i < live_aggregates::max_bounces; ++i)
    BOOST_CHECK(live.bounce(j, a.address()));
  BOOST_CHECK(!live.bounce(j, a.address()));
  BOOST_CHECK(!live.find("a"));  // the actor it bounced from is no longer live
}

BOOST_AUTO_TEST_CASE(a_crash_hands_back_its_jobs_and_a_normal_exit_keeps_them) {
  live_aggregates live(10);
  auto crashed = actor(), quit = actor();
  live.add("x", crashed);
  live.add("y", quit);
  const auto k1 = live.track(crashed.address(), job("x"));
  live.track(crashed.address(), job("x"));
  const auto k3 = live.track(quit.address(), job("y"));
  auto answered = live.down(crashed.address(), caf::exit_reason::unhandled_exception);
  BOOST_CHECK_EQUAL(answered.failed.size(), 2u);
  BOOST_CHECK(!live.take(crashed.address(), k1));  // answered already
  BOOST_CHECK(live.down(quit.address(), caf::exit_reason::normal).failed.empty());
  BOOST_CHECK(live.take(quit.address(), k3));  // it bounces and goes to a fresh actor
  auto s = live.stats();
  BOOST_CHECK_EQUAL(s.alive, 0u);
  BOOST_CHECK_EQUAL(s.crashed, 1u);
  BOOST_CHECK_EQUAL(s.passivated, 1u);
}

BOOST_AUTO_TEST_CASE(an_id_whose_actor_is_leaving_takes_no_new_actor_until_it_is_down) {
  live_aggregates live(1);
  auto a = actor();
  live.add("a", a);
  BOOST_CHECK(!live.leaving("a"));
  BOOST_REQUIRE_EQUAL(live.make_room().size(), 1u);  // "a" is told to passivate
  BOOST_CHECK(live.leaving("a"));
  auto first = job("a"), second = job("a");
  first.bounces = 1;  // tells them apart
  live.hold(std::move(first));
  live.hold(std::move(second));
  auto other = live.down(actor().address(), caf::exit_reason::normal);  // someone else's
  BOOST_CHECK(other.resume.empty());
  BOOST_CHECK(live.leaving("a"));
  auto after = live.down(a.address(), caf::exit_reason::normal);
  BOOST_CHECK(!live.leaving("a"));
  BOOST_REQUIRE_EQUAL(after.resume.size(), 2u);  // in the order they came
  BOOST_CHECK_EQUAL(after.resume[0].bounces, 1u);
  BOOST_CHECK_EQUAL(after.resume[1].bounces, 0u);
  BOOST_CHECK(after.failed.empty());
}

BOOST_AUTO_TEST_CASE(an_actor_a_job_bounced_from_is_leaving_until_it_is_down) {
  live_aggregates live(10);
  auto a = actor();
  live.add("a", a);
  auto j = job("a");
  BOOST_CHECK(live.bounce(j, a.address()));
  BOOST_CHECK(live.leaving("a"));
  live.down(a.address(), caf::exit_reason::normal);
  BOOST_CHECK(!live.leaving("a"));
}

BOOST_AUTO_TEST_SUITE_END()
