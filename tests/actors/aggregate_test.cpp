// Aggregates: optimistic versioning under races, domain rules, passivation,
// snapshots, crashes, and the registry.
#define BOOST_TEST_MODULE aggregate
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <caf/event_based_actor.hpp>

#include <stdexcept>
#include <thread>
#include <variant>
#include <varve/actors/aggregate.hpp>

#include "actor_fixture.hpp"

using namespace varve;
using varve_test::actor_fixture;

namespace bank {

struct deposited {
  static constexpr std::string_view type_name = "deposited";
  std::int64_t amount = 0;
};
struct withdrawn {
  static constexpr std::string_view type_name = "withdrawn";
  std::int64_t amount = 0;
};
VARVE_JSON(deposited, amount)
VARVE_JSON(withdrawn, amount)

// The commands have CAF inspect overloads: these tests send them as they
// are, as a process does that sends them to another one.

struct deposit {
  std::int64_t amount = 0;
};
struct withdraw {
  std::int64_t amount = 0;
};
struct explode {};  // decide() throws: a bug in user code
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, deposit& x) {
  return f(caf::meta::type_name("deposit"), x.amount);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, withdraw& x) {
  return f(caf::meta::type_name("withdraw"), x.amount);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, explode&) {
  return f(caf::meta::type_name("explode"));
}

struct account {
  static constexpr std::string_view category = "account";
  static constexpr std::uint32_t snapshot_schema = 1;
  struct state {
    std::int64_t balance = 0;
    std::uint64_t operations = 0;
  };
  using event = std::variant<deposited, withdrawn>;
  using command = std::variant<deposit, withdraw, explode>;

  static void apply(state& s, const event& e) {
    std::visit(
        [&](const auto& x) {
          if constexpr (std::is_same_v<std::decay_t<decltype(x)>, deposited>)
            s.balance += x.amount;
          else
            s.balance -= x.amount;
        },
        e);
    ++s.operations;
  }

  static decision<event> decide(const state& s, const command& c) {
    if (auto* d = std::get_if<deposit>(&c)) {
      if (d->amount <= 0) return error{errc::rejected, "a deposit must be positive"};
      return std::vector<event>{deposited{d->amount}};
    }
    if (auto* w = std::get_if<withdraw>(&c)) {
      if (w->amount > s.balance) return error{errc::rejected, "insufficient funds"};
      return std::vector<event>{withdrawn{w->amount}};
    }
    throw std::runtime_error("explode");
  }
};

VARVE_JSON(account::state, balance, operations)

}  // namespace bank

namespace {

using account = bank::account;

struct aggregate_fixture : actor_fixture {
  aggregate_context context(aggregate_options o = {}) { return {store, storage, o}; }

  /// Folds the stream as stored: the balance and the number of events.
  std::pair<std::int64_t, std::uint64_t> fold(std::string_view id) {
    account::state s;
    auto txn = read();
    auto n = txn.scan_stream(stream_of<account>(id), 1, direction::forward, SIZE_MAX,
                             [&](const event_view& v) {
                               auto e = default_codec<account::event>::decode(v.type, v.payload);
                               BOOST_REQUIRE(e);
                               account::apply(s, *e);
                               return true;
                             });
    BOOST_REQUIRE(n.ok());
    return {s.balance, s.operations};
  }

  std::vector<stream_version> versions(std::string_view id) {
    std::vector<stream_version> out;
    auto txn = read();
    auto n = txn.scan_stream(stream_of<account>(id), 1, direction::forward, SIZE_MAX,
                             [&](const event_view& v) {
                               out.push_back(v.version);
                               return true;
                             });
    BOOST_REQUIRE(n.ok());
    return out;
  }
};

/// Sends (command_atom, cmd) to each target at once from its own actor;
/// returns how many succeeded and the errors of the others.
template <class Handle, class... Args>
std::pair<int, std::vector<varve::error>> send_all(actor_fixture& f,
                                                   const std::vector<Handle>& targets,
                                                   Args... args) {
  caf::scoped_actor self{f.sys};
  const caf::actor collector = caf::actor_cast<caf::actor>(self);
  for (const auto& t : targets) {
    f.sys.spawn(
        [](caf::event_based_actor* a, Handle target, caf::actor collector, Args... xs) {
          a->request(target, caf::infinite, command_atom_v, xs...)
              .then([=](const command_reply&) { a->send(collector, true); },
                    [=](caf::error& e) { a->send(collector, e); });
        },
        t, collector, args...);
  }
  int ok = 0;
  std::vector<varve::error> errors;
  for (std::size_t i = 0; i < targets.size(); ++i)
    self->receive([&](bool) { ++ok; },
                  [&](const caf::error& e) { errors.push_back(error_from(e)); });
  return {ok, errors};
}

template <class Handle, class... Args>
std::optional<varve::error> ask(actor_fixture& f, const Handle& h, Args... args) {
  caf::scoped_actor self{f.sys};
  std::optional<varve::error> failure;
  self->request(h, caf::infinite, command_atom_v, args...)
      .receive([](const command_reply&) {}, [&](caf::error& e) { failure = error_from(e); });
  return failure;
}

template <class Handle>
auto report(actor_fixture& f, const Handle& h) {
  caf::scoped_actor self{f.sys};
  using reply = std::conditional_t<std::is_same_v<Handle, registry_actor<account>>, registry_stats,
                                   aggregate_info>;
  reply out;
  self->request(h, caf::infinite, stats_atom_v)
      .receive([&](const reply& r) { out = r; },
               [&](caf::error& e) { BOOST_FAIL("stats: " << f.sys.render(e)); });
  return out;
}

std::string encoded(const account::event& e) {
  std::string out;
  BOOST_REQUIRE(default_codec<account::event>::encode(e, out));
  return out;
}

template <class Handle>
void stop(actor_fixture& f, const Handle& h) {
  caf::scoped_actor self{f.sys};
  caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
  self->wait_for(h);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(aggregates, aggregate_fixture)

BOOST_AUTO_TEST_CASE(racing_actors_on_one_stream_leave_versions_without_gaps) {
  aggregate_options o;
  o.max_retries = 1000;
  std::vector<aggregate_actor<account>> racers;
  for (int i = 0; i < 100; ++i)
    racers.push_back(spawn_aggregate<account>(sys, "7", context(o)));
  auto [ok, errors] = send_all(*this, racers, bank::deposit{1});
  BOOST_CHECK_EQUAL(ok, 100);
  BOOST_CHECK(errors.empty());
  auto v = versions("7");
  BOOST_REQUIRE_EQUAL(v.size(), 100u);
  for (std::size_t i = 0; i < v.size(); ++i)
    BOOST_CHECK_EQUAL(v[i], i + 1);
  BOOST_CHECK_EQUAL(fold("7").first, 100);
  for (auto& r : racers)
    stop(*this, r);
}

BOOST_AUTO_TEST_CASE(no_overdraft_under_concurrent_withdrawals) {
  aggregate_options o;
  o.max_retries = 1000;
  auto first = spawn_aggregate<account>(sys, "1", context(o));
  BOOST_REQUIRE(!ask(*this, first, bank::deposit{100}));
  // Ten racing actors on the same stream, five withdrawals of 10 each.
  std::vector<aggregate_actor<account>> racers;
  for (int i = 0; i < 50; ++i)
    racers.push_back(i < 10 ? spawn_aggregate<account>(sys, "1", context(o)) : racers[i % 10]);
  auto [ok, errors] = send_all(*this, racers, bank::withdraw{10});
  BOOST_CHECK_EQUAL(ok, 10);
  BOOST_REQUIRE_EQUAL(errors.size(), 40u);
  for (const auto& e : errors)
    BOOST_CHECK_EQUAL(to_string(e.code()), "rejected");
  BOOST_CHECK_EQUAL(fold("1").first, 0);
  stop(*this, first);
  for (int i = 0; i < 10; ++i)
    stop(*this, racers[i]);
}

BOOST_AUTO_TEST_CASE(a_conflict_beyond_the_retries_is_answered_with_the_conflict) {
  aggregate_options o;
  o.max_retries = 0;
  auto stale = spawn_aggregate<account>(sys, "2", context(o));
  BOOST_REQUIRE_EQUAL(report(*this, stale).version, 0u);  // hydrated before the other appends
  auto other = spawn_aggregate<account>(sys, "2", context(o));
  BOOST_REQUIRE(!ask(*this, other, bank::deposit{5}));
  auto failure = ask(*this, stale, bank::deposit{5});
  BOOST_REQUIRE(failure);
  BOOST_CHECK_EQUAL(to_string(failure->code()), "wrong_expected_version");
  BOOST_CHECK_EQUAL(versions("2").size(), 1u);
  stop(*this, stale);
  stop(*this, other);
}

BOOST_AUTO_TEST_CASE(a_passivated_aggregate_rehydrates_the_same_state) {
  aggregate_options o;
  o.idle_timeout = std::chrono::milliseconds(50);
  auto registry = spawn_registry<account>(sys, context(o));
  BOOST_REQUIRE(!ask(*this, registry, std::string("9"), bank::deposit{70}));
  BOOST_REQUIRE(!ask(*this, registry, std::string("9"), bank::withdraw{20}));
  BOOST_CHECK_EQUAL(report(*this, registry).alive, 1u);
  for (int i = 0; i < 200 && report(*this, registry).alive != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto stats = report(*this, registry);
  BOOST_REQUIRE_EQUAL(stats.alive, 0u);
  BOOST_CHECK_EQUAL(stats.passivated, 1u);
  // A fresh actor knows the balance is exactly 50.
  auto too_much = ask(*this, registry, std::string("9"), bank::withdraw{51});
  BOOST_REQUIRE(too_much);
  BOOST_CHECK_EQUAL(to_string(too_much->code()), "rejected");
  BOOST_CHECK(!ask(*this, registry, std::string("9"), bank::withdraw{50}));
  BOOST_CHECK_EQUAL(report(*this, registry).spawned, 2u);
  BOOST_CHECK_EQUAL(fold("9").first, 0);
  stop(*this, registry);
}

BOOST_AUTO_TEST_CASE(commands_racing_a_passivation_are_taken_by_a_fresh_actor) {
  // An idle timeout as short as the gap between commands: commands keep
  // arriving while the actor quits, and bounce back to the registry.
  aggregate_options o;
  o.idle_timeout = std::chrono::milliseconds(1);
  auto registry = spawn_registry<account>(sys, context(o));
  constexpr int n = 300;
  for (int i = 0; i < n; ++i) {
    auto failure = ask(*this, registry, std::string("7"), bank::deposit{1});
    BOOST_REQUIRE_MESSAGE(!failure,
                          "command " << i << ": " << (failure ? failure->to_string() : ""));
    std::this_thread::sleep_for(std::chrono::microseconds(700 + 50 * (i % 12)));
  }
  BOOST_CHECK_EQUAL(fold("7").first, n);
  BOOST_CHECK_GT(report(*this, registry).spawned, 1u);
  stop(*this, registry);
}

BOOST_AUTO_TEST_CASE(the_registry_caps_live_actors_and_evicts_the_least_recently_used) {
  aggregate_options o;
  o.max_alive = 3;
  auto registry = spawn_registry<account>(sys, context(o));
  for (int i = 0; i < 10; ++i)
    BOOST_REQUIRE(!ask(*this, registry, std::to_string(i), bank::deposit{i + 1}));
  auto stats = report(*this, registry);
  BOOST_CHECK_LE(stats.alive, 3u);
  BOOST_CHECK_EQUAL(stats.spawned, 10u);
  // Evicted ones come back with their state.
  for (int i = 0; i < 10; ++i) {
    auto failure = ask(*this, registry, std::to_string(i), bank::withdraw{i + 1});
    BOOST_CHECK_MESSAGE(!failure, "account " << i << ": " << (failure ? failure->to_string() : ""));
  }
  for (int i = 0; i < 10; ++i)
    BOOST_CHECK_EQUAL(fold(std::to_string(i)).first, 0);
  stop(*this, registry);
}

BOOST_AUTO_TEST_CASE(passivation_under_bursts_never_gives_a_stream_two_actors) {
  // Evictions while each id has commands queued: with no retry after a
  // conflict, a second actor on a stream would show as wrong_expected_version.
  aggregate_options o;
  o.max_alive = 2;
  o.max_retries = 0;
  o.idle_timeout = std::chrono::milliseconds(5);
  auto registry = spawn_registry<account>(sys, context(o));
  caf::scoped_actor self{sys};
  constexpr int ids = 10, per_id = 200;
  for (int round = 0; round < per_id; ++round)
    for (int i = 0; i < ids; ++i)
      self->send(registry, command_atom_v, "burst-" + std::to_string(i), bank::deposit{1});
  int ok = 0;
  std::vector<std::string> failures;
  for (int n = 0; n < ids * per_id; ++n)
    self->receive([&](const command_reply&) { ++ok; },
                  [&](caf::error& e) { failures.push_back(error_from(e).to_string()); },
                  caf::after(std::chrono::seconds(30)) >> [&] { failures.push_back("no answer"); });
  BOOST_CHECK_EQUAL(ok, ids * per_id);
  BOOST_CHECK_MESSAGE(failures.empty(), failures.size() << " failed, the first: "
                                                        << (failures.empty() ? "" : failures[0]));
  for (int i = 0; i < ids; ++i) {
    BOOST_CHECK_EQUAL(fold("burst-" + std::to_string(i)).first, per_id);
    BOOST_CHECK_EQUAL(versions("burst-" + std::to_string(i)).size(), std::size_t{per_id});
  }
  BOOST_CHECK_GT(report(*this, registry).passivated, 0u);
  stop(*this, registry);
}

BOOST_AUTO_TEST_CASE(hydration_after_snapshots_reads_only_the_tail) {
  aggregate_options o;
  o.snapshot_every = 10;
  auto registry = spawn_registry<account>(sys, context(o));
  for (int i = 0; i < 1000; ++i)
    BOOST_REQUIRE(!ask(*this, registry, std::string("s"), bank::deposit{1}));
  stop(*this, registry);

  auto fresh = spawn_aggregate<account>(sys, "s", context(o));
  auto info = report(*this, fresh);
  BOOST_CHECK_EQUAL(info.version, 1000u);
  BOOST_CHECK_GE(info.snapshot_version, 990u);
  BOOST_CHECK_LE(info.replayed, 10u);
  BOOST_CHECK(!ask(*this, fresh, bank::withdraw{1000}));  // the whole balance is there
  stop(*this, fresh);
}

BOOST_AUTO_TEST_CASE(a_snapshot_of_an_unknown_schema_is_ignored) {
  BOOST_REQUIRE(store
                    ->append("account-u", expected_version::no_stream(),
                             std::vector<new_event>{{"deposited", encoded(bank::deposited{5})}})
                    .ok());
  write_request w;
  w.snapshots.push_back({"account-u", 1, 99, "not a state"});
  BOOST_REQUIRE(store->write({&w, 1}).ok());
  auto a = spawn_aggregate<account>(sys, "u", context());
  auto info = report(*this, a);
  BOOST_CHECK_EQUAL(info.snapshot_version, 0u);
  BOOST_CHECK_EQUAL(info.replayed, 1u);
  BOOST_CHECK(!ask(*this, a, bank::withdraw{5}));
  stop(*this, a);
}

BOOST_AUTO_TEST_CASE(an_aggregate_that_throws_is_rebuilt_and_loses_nothing) {
  auto registry = spawn_registry<account>(sys, context());
  BOOST_REQUIRE(!ask(*this, registry, std::string("x"), bank::deposit{30}));
  auto crash = ask(*this, registry, std::string("x"), bank::explode{});
  BOOST_REQUIRE(crash);
  BOOST_CHECK_EQUAL(to_string(crash->code()), "unavailable");
  // The next command goes to a fresh actor that has the whole history.
  BOOST_CHECK(!ask(*this, registry, std::string("x"), bank::withdraw{30}));
  auto stats = report(*this, registry);
  BOOST_CHECK_EQUAL(stats.crashed, 1u);
  BOOST_CHECK_EQUAL(stats.spawned, 2u);
  BOOST_CHECK_EQUAL(fold("x").first, 0);
  stop(*this, registry);
}

BOOST_AUTO_TEST_CASE(an_event_that_does_not_decode_is_answered_at_once_naming_its_place) {
  // Another stream first, so that positions and versions differ.
  BOOST_REQUIRE(store
                    ->append("account-other", expected_version::no_stream(),
                             std::vector<new_event>{{"deposited", encoded(bank::deposited{9})}})
                    .ok());
  BOOST_REQUIRE(store
                    ->append("account-bad", expected_version::no_stream(),
                             std::vector<new_event>{{"deposited", encoded(bank::deposited{5})}})
                    .ok());
  // The right type name, bytes the codec cannot read: position 3, version 2.
  BOOST_REQUIRE(store
                    ->append("account-bad", expected_version::exact(1),
                             std::vector<new_event>{{"deposited", "garbage"}})
                    .ok());
  auto registry = spawn_registry<account>(sys, context());
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto failure = ask(*this, registry, std::string("bad"), bank::deposit{1});
    BOOST_REQUIRE(failure);
    BOOST_TEST_MESSAGE("attempt " << attempt << ": " << failure->to_string());
    BOOST_CHECK_EQUAL(failure->code(), errc::corruption);
    const auto& message = failure->message();
    BOOST_CHECK_MESSAGE(message.find("'account-bad'") != std::string::npos, message);
    BOOST_CHECK_MESSAGE(message.find("position 3") != std::string::npos, message);
    BOOST_CHECK_MESSAGE(message.find("version 2") != std::string::npos, message);
    BOOST_CHECK_MESSAGE(message.find("'deposited'") != std::string::npos, message);
    // The first answer of the first actor: nothing was restarted or retried.
    auto stats = report(*this, registry);
    BOOST_CHECK_EQUAL(stats.spawned, 1u);
    BOOST_CHECK_EQUAL(stats.crashed, 0u);
  }
  // Other aggregates of the registry go on.
  BOOST_CHECK(!ask(*this, registry, std::string("other"), bank::withdraw{9}));
  BOOST_CHECK_EQUAL(fold("other").first, 0);
  BOOST_CHECK_EQUAL(versions("bad").size(), 2u);  // nothing appended to the unreadable stream
  stop(*this, registry);
}

BOOST_AUTO_TEST_CASE(a_shredded_aggregate_refuses_commands_and_loses_its_snapshot) {
  aggregate_options o;
  o.snapshot_every = 2;
  auto registry = spawn_registry<account>(sys, context(o));
  for (int i = 0; i < 3; ++i)
    BOOST_REQUIRE(!ask(*this, registry, std::string("gone"), bank::deposit{1}));
  stop(*this, registry);
  BOOST_REQUIRE(read().snapshot("account-gone").value());
  BOOST_REQUIRE(store->shred("account-gone").ok());
  BOOST_CHECK(!read().snapshot("account-gone").value());
  auto fresh = spawn_aggregate<account>(sys, "gone", context(o));
  auto refused = ask(*this, fresh, bank::deposit{1});
  BOOST_REQUIRE(refused);
  BOOST_CHECK_EQUAL(to_string(refused->code()), "shredded");
  stop(*this, fresh);
}

BOOST_AUTO_TEST_CASE(a_rejected_command_appends_nothing) {
  auto registry = spawn_registry<account>(sys, context());
  auto failure = ask(*this, registry, std::string("r"), bank::withdraw{1});
  BOOST_REQUIRE(failure);
  BOOST_CHECK_EQUAL(to_string(failure->code()), "rejected");
  BOOST_CHECK_EQUAL(failure->message(), "insufficient funds");
  BOOST_CHECK_EQUAL(read().head(), 0u);
  stop(*this, registry);
}

BOOST_AUTO_TEST_SUITE_END()
