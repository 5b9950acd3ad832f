// Hydration: a long stream hydrates beside the scheduler, so that other
// aggregates go on; commands wait for it in order; it runs once; what it
// throws or cannot read is answered as from a short stream.
//
// The actor system has one scheduler thread, as varve_config sets it: an
// aggregate that hydrated on it would hold up every other actor.
#define BOOST_TEST_MODULE hydration
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <varve/actors/aggregate.hpp>

#include "../storage/temp_dir.hpp"

using namespace varve;
using namespace std::chrono_literals;

namespace {

/// Holds apply() of the events marked `hold` until opened.
struct gate {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = true;
  bool entered = false;
  std::atomic<int> passed{0};

  void close() {
    std::lock_guard lock(mutex);
    open = false;
    entered = false;
    passed = 0;
  }
  void release() {
    std::lock_guard lock(mutex);
    open = true;
    changed.notify_all();
  }
  void pass() {
    std::unique_lock lock(mutex);
    entered = true;
    changed.notify_all();
    changed.wait_for(lock, 30s, [&] { return open; });
    ++passed;
  }
  /// True once an apply() waits at the gate (within 10 s).
  bool wait_entered() {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 10s, [&] { return entered; });
  }
};

gate the_gate;

struct ticked {
  static constexpr std::string_view type_name = "ticked";
  bool hold = false;    // apply() waits at the gate
  bool poison = false;  // apply() throws
};
VARVE_JSON(ticked, hold, poison)

/// Refused unless the gauge has seen exactly `expect` ticks.
struct tick {
  std::uint64_t expect = 0;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tick& x) {
  return f(caf::meta::type_name("tick"), x.expect);
}

struct gauge {
  static constexpr std::string_view category = "gauge";
  struct state {
    std::uint64_t ticks = 0;
  };
  using event = ticked;
  using command = tick;

  static void apply(state& s, const event& e) {
    if (e.hold) the_gate.pass();
    if (e.poison) throw std::runtime_error("poison");
    ++s.ticks;
  }
  static decision<event> decide(const state& s, const command& c) {
    if (c.expect != s.ticks) return error{errc::rejected, "at " + std::to_string(s.ticks)};
    return std::vector<event>{ticked{}};
  }
};

/// A reading; `unit` was added later, so older readings have none stored.
struct read_out {
  static constexpr std::string_view type_name = "read_out";
  std::int64_t value = 0;
  std::string unit = "kWh";
};
VARVE_JSON(read_out, value, unit)

/// Refused unless the meter has seen exactly `kwh` readings in kWh and
/// `other` in other units.
struct count_units {
  std::uint64_t kwh = 0, other = 0;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, count_units& x) {
  return f(caf::meta::type_name("count_units"), x.kwh, x.other);
}

struct meter {
  static constexpr std::string_view category = "meter";
  struct state {
    std::uint64_t kwh = 0, other = 0;
  };
  using event = read_out;
  using command = count_units;

  static void apply(state& s, const event& e) { ++(e.unit == "kWh" ? s.kwh : s.other); }
  static decision<event> decide(const state& s, const command& c) {
    if (c.kwh != s.kwh || c.other != s.other)
      return error{errc::rejected, std::to_string(s.kwh) + " kWh, " + std::to_string(s.other)};
    return std::vector<event>{read_out{}};
  }
};

struct one_thread_config : caf::actor_system_config {
  one_thread_config() {
    set("scheduler.policy", caf::atom("sharing"));
    set("scheduler.max-threads", 1);
    set("logger.console", caf::atom("none"));
    add_message_types<caf::id_block::varve>();
    varve::add_error_category(*this);
  }
};

struct fixture {
  varve_test::temp_dir dir;
  std::shared_ptr<event_store> store;
  one_thread_config cfg;
  caf::actor_system sys{cfg};
  storage_actor storage;

  fixture() {
    auto o = varve_test::test_options(dir / "store");
    o.sync = durability::no_sync;
    store = varve_test::open_store(o);
    storage = spawn_storage(sys, store);
  }
  ~fixture() {
    the_gate.release();
    caf::anon_send_exit(storage, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
  }

  aggregate_context context() { return {store, storage, {}}; }

  /// Appends `n` events to gauge `id`; the `poison_at`th (1-based) throws.
  void seed(std::string_view id, std::uint64_t n, bool hold, std::uint64_t poison_at = 0) {
    std::vector<new_event> events;
    for (std::uint64_t i = 1; i <= n; ++i) {
      std::string bytes;
      BOOST_REQUIRE(default_codec<ticked>::encode(ticked{hold, i == poison_at}, bytes));
      events.push_back(new_event{"ticked", bytes, {}, {}, {}});
    }
    BOOST_REQUIRE(store->append(stream_of<gauge>(id), expected_version::no_stream(), events).ok());
  }

  /// Sends (command_atom, id, tick{expect}) and waits at most `within`.
  result<command_reply> ask(const registry_actor<gauge>& r, std::string id, std::uint64_t expect,
                            caf::duration within = caf::infinite) {
    caf::scoped_actor self{sys};
    result<command_reply> out = error{errc::unavailable, "no answer"};
    self->request(r, within, command_atom_v, std::move(id), tick{expect})
        .receive([&](const command_reply& reply) { out = reply; },
                 [&](caf::error& e) { out = error_from(e); });
    return out;
  }
};

/// The next answer in `self`'s mailbox: a reply, or the error.
result<command_reply> next_answer(caf::scoped_actor& self) {
  result<command_reply> out = error{errc::unavailable, "no answer"};
  self->receive([&](const command_reply& reply) { out = reply; },
                [&](caf::error& e) { out = error_from(e); }, caf::after(10s) >> [] {});
  return out;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(hydration, fixture)

BOOST_AUTO_TEST_CASE(a_long_hydration_leaves_the_scheduler_to_other_aggregates) {
  seed("slow", 100, true);
  the_gate.close();
  auto registry = spawn_registry<gauge>(sys, context());
  caf::scoped_actor self{sys};
  self->send(registry, command_atom_v, std::string("slow"), tick{100});
  BOOST_REQUIRE(the_gate.wait_entered());  // the slow one is hydrating, held
  // Another aggregate of the same registry answers meanwhile.
  auto hot = ask(registry, "hot", 0, caf::duration{5s});
  BOOST_CHECK_MESSAGE(hot.ok(), "hot: " << (hot ? "" : hot.err().to_string()));
  the_gate.release();
  auto slow = next_answer(self);
  BOOST_REQUIRE_MESSAGE(slow.ok(), "slow: " << (slow ? "" : slow.err().to_string()));
  BOOST_CHECK_EQUAL(slow->version, 101u);
  caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(commands_wait_for_the_hydration_in_order_and_it_runs_once) {
  seed("slow", 100, true);
  the_gate.close();
  auto slow = spawn_aggregate<gauge>(sys, "slow", context());
  BOOST_REQUIRE(the_gate.wait_entered());
  caf::scoped_actor self{sys};
  for (std::uint64_t i = 0; i < 5; ++i)
    self->send(slow, command_atom_v, tick{100 + i});  // each needs the one before
  the_gate.release();
  for (std::uint64_t i = 0; i < 5; ++i) {
    auto r = next_answer(self);
    BOOST_REQUIRE_MESSAGE(r.ok(), "command " << i << ": " << (r ? "" : r.err().to_string()));
    BOOST_CHECK_EQUAL(r->version, 101 + i);
  }
  BOOST_CHECK_EQUAL(the_gate.passed.load(), 100);  // each stored event applied once
  aggregate_info info;
  self->request(slow, caf::infinite, stats_atom_v)
      .receive([&](const aggregate_info& i) { info = i; },
               [&](caf::error& e) { BOOST_FAIL("stats: " << sys.render(e)); });
  BOOST_CHECK_EQUAL(info.replayed, 100u);
  BOOST_CHECK_EQUAL(info.version, 105u);
  caf::anon_send_exit(slow, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(an_apply_that_throws_while_hydrating_crashes_the_actor_short_or_long) {
  seed("short", 10, false, 5);
  seed("long", 100, false, 50);
  auto registry = spawn_registry<gauge>(sys, context());
  caf::scoped_actor self{sys};
  auto crashes = [&] {
    std::uint64_t out = 0;
    self->request(registry, caf::infinite, stats_atom_v)
        .receive([&](const registry_stats& s) { out = s.crashed; },
                 [&](caf::error& e) { BOOST_FAIL("stats: " << sys.render(e)); });
    return out;
  };
  for (const char* id : {"short", "long"}) {
    BOOST_TEST_CONTEXT(id) {
      const auto before = crashes();
      auto r = ask(registry, id, 0);
      BOOST_REQUIRE(!r.ok());
      BOOST_CHECK_EQUAL(r.err().code(), errc::unavailable);
      // The command reached no actor that hydrated: each one it went to crashed.
      BOOST_CHECK_GE(crashes(), before + 1);
    }
  }
  caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(a_long_stream_that_does_not_read_answers_each_command_with_why) {
  seed("bad", 100, false);
  BOOST_REQUIRE(store
                    ->append(stream_of<gauge>("bad"), expected_version::exact(100),
                             std::vector<new_event>{{"ticked", "garbage", {}, {}, {}}})
                    .ok());
  auto registry = spawn_registry<gauge>(sys, context());
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto r = ask(registry, "bad", 100);
    BOOST_REQUIRE(!r.ok());
    BOOST_CHECK_EQUAL(r.err().code(), errc::corruption);
    BOOST_CHECK_MESSAGE(r.err().message().find("version 101") != std::string::npos,
                        r.err().message());
  }
  caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(requests_waiting_when_the_actor_stops_are_answered_not_lost) {
  seed("slow", 100, true);
  the_gate.close();
  auto slow = spawn_aggregate<gauge>(sys, "slow", context());
  BOOST_REQUIRE(the_gate.wait_entered());
  caf::scoped_actor self{sys};
  for (std::uint64_t i = 0; i < 3; ++i)
    self->send(slow, command_atom_v, tick{100 + i});
  self->send(slow, stats_atom_v);
  caf::anon_send_exit(slow, caf::exit_reason::user_shutdown);
  the_gate.release();
  for (int i = 0; i < 4; ++i) {
    bool errored = false;
    self->receive([&](const command_reply&) {}, [&](const aggregate_info&) {},
                  [&](caf::error& e) { errored = e == caf::sec::request_receiver_down; },
                  caf::after(10s) >> [] {});
    BOOST_CHECK_MESSAGE(errored, "request " << i << " was not answered request_receiver_down");
  }
  auto txn = store->read();
  BOOST_REQUIRE(txn.ok());
  auto info = txn->stream(stream_of<gauge>("slow"));
  BOOST_REQUIRE(info.ok() && info->has_value());
  BOOST_CHECK_EQUAL((*info)->version, 100u);  // none of them was applied
}

BOOST_AUTO_TEST_CASE(a_passivation_waits_for_the_requests_before_it) {
  seed("slow", 100, true);
  the_gate.close();
  auto slow = spawn_aggregate<gauge>(sys, "slow", context());
  BOOST_REQUIRE(the_gate.wait_entered());
  caf::scoped_actor self{sys};
  self->monitor(slow);
  self->send(slow, command_atom_v, tick{100});
  self->send(slow, passivate_atom_v);
  the_gate.release();
  auto r = next_answer(self);
  BOOST_REQUIRE_MESSAGE(r.ok(),
                        "the command before the passivation: " << (r ? "" : r.err().to_string()));
  BOOST_CHECK_EQUAL(r->version, 101u);
  bool down = false;
  self->receive([&](const caf::down_msg&) { down = true; }, caf::after(10s) >> [] {});
  BOOST_CHECK_MESSAGE(down, "the actor did not passivate once idle");
}

BOOST_AUTO_TEST_CASE(every_caller_is_answered_when_a_busy_aggregate_stops) {
  // Many commands, then an exit: one of them has its append in flight when
  // the actor stops. Each caller hears back (a reply, request_receiver_down,
  // or unavailable for the one in flight); none is left waiting.
  auto busy = spawn_aggregate<gauge>(sys, "busy", context());
  caf::scoped_actor self{sys};
  constexpr std::uint64_t n = 5000;
  for (std::uint64_t i = 0; i < n; ++i)
    self->send(busy, command_atom_v, tick{i});
  std::this_thread::sleep_for(20ms);
  caf::anon_send_exit(busy, caf::exit_reason::user_shutdown);
  std::uint64_t replies = 0, down = 0, unavailable = 0, other = 0;
  for (std::uint64_t i = 0; i < n; ++i)
    self->receive([&](const command_reply&) { ++replies; },
                  [&](caf::error& e) {
                    if (e == caf::sec::request_receiver_down)
                      ++down;
                    else if (error_from(e).code() == errc::unavailable)
                      ++unavailable;
                    else
                      ++other;
                  },
                  caf::after(30s) >> [&] { ++other; });  // an answer that never came
  BOOST_CHECK_EQUAL(replies + down + unavailable + other, n);
  BOOST_CHECK_EQUAL(other, 0u);
  BOOST_CHECK_LE(unavailable, 1u);
  auto txn = store->read();
  BOOST_REQUIRE(txn.ok());
  auto info = txn->stream(stream_of<gauge>("busy"));
  BOOST_REQUIRE(info.ok());
  const std::uint64_t stored = *info ? (*info)->version : 0;
  BOOST_CHECK_GE(stored, replies);  // the one in flight may have landed
  BOOST_CHECK_LE(stored, replies + unavailable);
}

BOOST_AUTO_TEST_CASE(readings_without_a_field_added_later_hydrate_with_its_default) {
  // Older readings (no "unit" stored) after newer ones, in a stream short
  // enough to hydrate in the actor's turn and in one long enough for the
  // helper: each older one reads as kWh, whatever the reading before it.
  for (std::uint64_t n : {10u, 200u}) {
    BOOST_TEST_CONTEXT(n << " readings") {
      const std::string id = "m" + std::to_string(n);
      std::vector<new_event> events;
      std::uint64_t other = 0;
      for (std::uint64_t i = 0; i < n; ++i) {
        const bool older = i % 3 == 2;
        other += older ? 0 : 1;
        events.push_back(new_event{
            "read_out",
            older ? R"({"value":)" + std::to_string(i) + "}" : R"({"value":1,"unit":"MWh"})",
            {},
            {},
            {}});
      }
      BOOST_REQUIRE(
          store->append(stream_of<meter>(id), expected_version::no_stream(), events).ok());
      auto registry = spawn_registry<meter>(sys, aggregate_context{store, storage, {}});
      caf::scoped_actor self{sys};
      result<command_reply> out = error{errc::unavailable, "no answer"};
      self->request(registry, caf::infinite, command_atom_v, id, count_units{n - other, other})
          .receive([&](const command_reply& reply) { out = reply; },
                   [&](caf::error& e) { out = error_from(e); });
      BOOST_CHECK_MESSAGE(out.ok(), (out ? "" : out.err().to_string()));
      caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
