// varve::runtime: an application in one object, on a real store on disk.
// Commands in and replies out (blocking and through futures), read-your-
// writes with wait_for, JSON views, an ordered shutdown that answers what is
// in flight and never hangs, with encryption on and with a second process
// using the store.
#define BOOST_TEST_MODULE runtime
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/event_based_actor.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <variant>
#include <varve/runtime.hpp>
#include <vector>

#include "../storage/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace ledger_model {

// Events and state with a JSON form; commands without CAF inspect overloads
// (the runtime sends them as local_command).
struct credited {
  static constexpr std::string_view type_name = "credited";
  std::int64_t amount = 0;
};
VARVE_JSON(credited, amount)
struct debited {
  static constexpr std::string_view type_name = "debited";
  std::int64_t amount = 0;
};
VARVE_JSON(debited, amount)

struct credit {
  std::int64_t amount = 0;
};
struct debit {
  std::int64_t amount = 0;
};

struct ledger {
  static constexpr std::string_view category = "ledger";
  static constexpr std::uint32_t snapshot_schema = 1;
  struct state {
    std::int64_t balance = 0;
  };
  using event = std::variant<credited, debited>;
  using command = std::variant<credit, debit>;

  static void apply(state& s, const event& e) {
    if (auto* c = std::get_if<credited>(&e)) s.balance += c->amount;
    if (auto* d = std::get_if<debited>(&e)) s.balance -= d->amount;
  }
  static varve::decision<event> decide(const state& s, const command& c) {
    if (auto* cr = std::get_if<credit>(&c)) {
      if (cr->amount <= 0) return varve::error{varve::errc::rejected, "a credit must be positive"};
      return std::vector<event>{credited{cr->amount}};
    }
    const auto& d = std::get<debit>(c);
    if (d.amount > s.balance) return varve::error{varve::errc::rejected, "insufficient funds"};
    return std::vector<event>{debited{d.amount}};
  }
};
VARVE_JSON(ledger::state, balance)

/// Exactly-once: ledger stream -> balance, as JSON.
varve::projection_spec balances() {
  varve::projection_spec spec;
  spec.name = "balances";
  spec.filter.categories = {"ledger"};
  spec.handle = [](const varve::delivered_event& d,
                   varve::view_batch& view) -> varve::result<void> {
    auto e = varve::decode_event<ledger>(d.event);
    if (!e) return varve::error{varve::errc::corruption, "not a ledger event"};
    const std::int64_t delta = std::holds_alternative<credited>(*e) ? std::get<credited>(*e).amount
                                                                    : -std::get<debited>(*e).amount;
    auto balance = varve::get_json<std::int64_t>(view, d.stream);
    if (!balance) return balance.err();
    return varve::put_json(view, d.stream, balance->value_or(0) + delta);
  };
  return spec;
}

/// At-least-once: counts what it saw, in memory.
varve::projection_spec counter(std::shared_ptr<std::atomic<std::uint64_t>> seen) {
  varve::projection_spec spec;
  spec.name = "counter";
  spec.mode = varve::delivery::at_least_once;
  spec.checkpoint_every = 1000000;  // the checkpoint lags: wait_for asks the manager
  spec.checkpoint_interval = std::chrono::hours(1);
  spec.handle = [seen](const varve::delivered_event&, varve::view_batch&) -> varve::result<void> {
    ++*seen;
    return {};
  };
  return spec;
}

/// Fails on every event, and stops.
varve::projection_spec broken() {
  varve::projection_spec spec;
  spec.name = "broken";
  spec.max_retries = 0;
  spec.handle = [](const varve::delivered_event&, varve::view_batch&) -> varve::result<void> {
    return varve::error{varve::errc::io_error, "the disk of the read model is gone"};
  };
  return spec;
}

}  // namespace ledger_model

using namespace ledger_model;
using varve::errc;
using varve::runtime;

namespace {

using varve_test::temp_dir;

varve::runtime_options options_for(const fs::path& dir,
                                   std::vector<varve::projection_spec> projections = {}) {
  varve::runtime_options o;
  o.store.directory = dir / "store";
  o.store.sync = varve::durability::no_sync;
  o.projections = std::move(projections);
  o.poll_interval = 20ms;
  return o;
}

/// The balance of `stream` folded from the log.
std::int64_t fold(const varve::event_store& store, const std::string& stream) {
  std::int64_t balance = 0;
  auto txn = store.read();
  BOOST_REQUIRE(txn);
  auto n = txn->scan_stream(stream, 1, varve::direction::forward, SIZE_MAX,
                            [&](const varve::event_view& v) {
                              auto e = varve::decode_event<ledger>(v);
                              BOOST_REQUIRE(e);
                              if (auto* c = std::get_if<credited>(&*e)) balance += c->amount;
                              if (auto* d = std::get_if<debited>(&*e)) balance -= d->amount;
                              return true;
                            });
  BOOST_REQUIRE(n);
  return balance;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_command_is_answered_with_its_reply_and_its_event_is_stored_as_json) {
  temp_dir dir;
  auto rt = runtime::open(options_for(dir.path()));
  BOOST_REQUIRE_MESSAGE(rt, (rt ? "" : rt.err().to_string()));
  auto reply = rt->execute<ledger>("l1", credit{25});
  BOOST_REQUIRE_MESSAGE(reply, (reply ? "" : reply.err().to_string()));
  BOOST_TEST(reply->version == 1u);
  BOOST_TEST(reply->position == 1u);
  BOOST_TEST(reply->events == 1u);
  auto txn = rt->store()->read();
  BOOST_REQUIRE(txn);
  std::string type, payload;
  auto n = txn->scan_stream("ledger-l1", 1, varve::direction::forward, 10,
                            [&](const varve::event_view& v) {
                              type = v.type;
                              payload = v.payload;
                              return true;
                            });
  BOOST_REQUIRE(n);
  BOOST_TEST(type == "credited");
  BOOST_TEST(payload == R"({"amount":25})");
}

BOOST_AUTO_TEST_CASE(a_refused_command_is_answered_with_the_aggregates_reason_and_stores_nothing) {
  temp_dir dir;
  auto rt = runtime::open(options_for(dir.path()));
  BOOST_REQUIRE(rt);
  BOOST_REQUIRE(rt->execute<ledger>("l1", credit{10}));
  auto refused = rt->execute<ledger>("l1", debit{11});
  BOOST_REQUIRE(!refused);
  BOOST_TEST(refused.err().code() == errc::rejected);
  BOOST_TEST(refused.err().message() == "insufficient funds");
  BOOST_TEST(rt->store()->read()->head() == 1u);
  // The command variant works as well as one alternative.
  BOOST_TEST(rt->execute<ledger>("l1", ledger::command{debit{10}}).ok());
}

BOOST_AUTO_TEST_CASE(commands_sent_through_futures_from_many_threads_all_land_once) {
  temp_dir dir;
  auto rt = runtime::open(options_for(dir.path()));
  BOOST_REQUIRE(rt);
  constexpr int threads = 8, per_thread = 250, ledgers = 5;
  std::vector<std::thread> senders;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t)
    senders.emplace_back([&, t] {
      std::vector<std::future<varve::result<varve::command_reply>>> replies;
      for (int i = 0; i < per_thread; ++i)
        replies.push_back(
            rt->execute_async<ledger>("l" + std::to_string((t + i) % ledgers), credit{1}));
      for (auto& r : replies)
        if (!r.get()) ++failures;
    });
  for (auto& s : senders)
    s.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(rt->store()->read()->head() == std::uint64_t{threads * per_thread});
  std::int64_t total = 0;
  for (int l = 0; l < ledgers; ++l)
    total += fold(*rt->store(), "ledger-l" + std::to_string(l));
  BOOST_TEST(total == threads * per_thread);
}

BOOST_AUTO_TEST_CASE(wait_for_makes_the_view_show_the_command_just_answered) {
  temp_dir dir;
  auto seen = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto rt = runtime::open(options_for(dir.path(), {balances(), counter(seen)}));
  BOOST_REQUIRE(rt);
  for (int i = 1; i <= 50; ++i) {
    auto reply = rt->execute<ledger>("l" + std::to_string(i % 3), credit{i});
    BOOST_REQUIRE(reply);
    // Read your writes, every time: exactly-once through the committed
    // cursor, at-least-once through what the manager reports.
    BOOST_REQUIRE(rt->wait_for("balances", reply->position));
    auto balance = rt->view<std::int64_t>("balances", "ledger-l" + std::to_string(i % 3));
    BOOST_REQUIRE(balance);
    BOOST_REQUIRE(*balance);
    BOOST_TEST(**balance == fold(*rt->store(), "ledger-l" + std::to_string(i % 3)));
    BOOST_REQUIRE(rt->wait_for("counter", reply->position));
    BOOST_TEST(seen->load() >= static_cast<std::uint64_t>(i));
  }
  auto status = rt->status("balances");
  BOOST_REQUIRE(status);
  BOOST_TEST(status->position == 50u);
  BOOST_TEST(rt->projections()->size() == 2u);
}

BOOST_AUTO_TEST_CASE(wait_for_names_what_cannot_be_waited_for) {
  temp_dir dir;
  auto rt = runtime::open(options_for(dir.path(), {balances(), broken()}));
  BOOST_REQUIRE(rt);
  auto reply = rt->execute<ledger>("l1", credit{5});
  BOOST_REQUIRE(reply);
  auto unknown = rt->wait_for("no-such-projection", reply->position);
  BOOST_REQUIRE(!unknown);
  BOOST_TEST(unknown.err().code() == errc::not_found);
  // A projection that failed will not get there: said at once, with why.
  auto failed = rt->wait_for("broken", reply->position, 60s);
  BOOST_REQUIRE(!failed);
  BOOST_TEST(failed.err().code() == errc::unavailable);
  BOOST_TEST_MESSAGE(failed.err().to_string());
  BOOST_TEST(failed.err().message().find("the disk of the read model is gone") !=
             std::string::npos);
  // A position that no event has yet: a timeout that names where it is.
  auto later = rt->wait_for("balances", reply->position + 1, 50ms);
  BOOST_REQUIRE(!later);
  BOOST_TEST(later.err().code() == errc::timeout);
  BOOST_TEST(later.err().message().find("at position 1, not 2") != std::string::npos);
  BOOST_TEST(rt->wait_for("balances", 0).ok());                    // nothing to wait for
  auto bad_view = rt->view<std::string>("balances", "ledger-l1");  // a number, not a string
  BOOST_REQUIRE(!bad_view);
  BOOST_TEST(bad_view.err().code() == errc::corruption);
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused_and_leave_nothing_running) {
  temp_dir dir;
  varve::runtime_options none;
  auto no_dir = runtime::open(none);
  BOOST_REQUIRE(!no_dir);
  BOOST_TEST(no_dir.err().code() == errc::invalid_argument);
  auto twice = runtime::open(options_for(dir.path(), {balances(), balances()}));
  BOOST_REQUIRE(!twice);
  BOOST_TEST(twice.err().code() == errc::invalid_argument);
  BOOST_TEST(twice.err().message().find("'balances'") != std::string::npos);
  BOOST_TEST(!fs::exists(dir.path() / "store"));  // refused before the store was made
  // A plain store opened with a key: the store's own error.
  BOOST_REQUIRE(runtime::open(options_for(dir.path())));
  auto keyed = options_for(dir.path());
  keyed.store.master_key = std::array<std::uint8_t, 32>{1};
  auto refused = runtime::open(keyed);
  BOOST_REQUIRE(!refused);
  BOOST_TEST(refused.err().code() == errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(shutdown_answers_every_command_in_flight_and_loses_no_acknowledged_one) {
  temp_dir dir;
  std::vector<std::future<varve::result<varve::command_reply>>> replies;
  {
    auto rt = runtime::open(options_for(dir.path(), {balances()}));
    BOOST_REQUIRE(rt);
    for (int i = 0; i < 3000; ++i)
      replies.push_back(rt->execute_async<ledger>("l" + std::to_string(i % 40), credit{1}));
    // The first 1000 answered, the rest in flight or queued when it stops.
    for (std::size_t i = 0; i < 1000; ++i)
      BOOST_REQUIRE(replies[i].wait_for(60s) == std::future_status::ready);
    rt->shutdown();
    auto after = rt->execute<ledger>("l1", credit{1});
    BOOST_REQUIRE(!after);
    BOOST_TEST(after.err().code() == errc::unavailable);
    BOOST_TEST(rt->wait_for("balances", 1).err().code() == errc::unavailable);
  }
  std::map<std::string, std::uint64_t> acknowledged;  // stream -> highest version answered
  std::size_t ok = 0, unavailable = 0;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    BOOST_REQUIRE(replies[i].wait_for(60s) == std::future_status::ready);
    auto r = replies[i].get();
    if (r) {
      ++ok;
      auto& v = acknowledged["ledger-l" + std::to_string(i % 40)];
      v = std::max<std::uint64_t>(v, r->version);
    } else {
      BOOST_TEST(r.err().code() == errc::unavailable, r.err().to_string());
      ++unavailable;
    }
  }
  BOOST_TEST_MESSAGE(ok << " answered, " << unavailable << " unavailable at shutdown");
  BOOST_TEST(ok >= 1000u);
  // Reopened: every acknowledged command is there.
  auto again = runtime::open(options_for(dir.path()));
  BOOST_REQUIRE(again);
  auto txn = again->store()->read();
  for (const auto& [stream, version] : acknowledged) {
    auto info = txn->stream(stream);
    BOOST_REQUIRE(info);
    BOOST_REQUIRE(*info);
    BOOST_TEST((*info)->version >= version, stream);
  }
}

BOOST_AUTO_TEST_CASE(an_application_actor_that_never_stops_does_not_hang_the_shutdown) {
  temp_dir dir;
  auto done = std::async(std::launch::async, [&] {
    auto rt = runtime::open(options_for(dir.path(), {balances()}));
    BOOST_REQUIRE(rt);
    // An actor that re-arms a timer to itself and never quits: the actor
    // system alone would wait for it forever.
    // (An argument: CAF 0.17 spawns a function without arguments through a
    // null shared_ptr<std::tuple<>>, which UBSan reports.)
    rt->system().spawn(
        [](caf::event_based_actor* self, int first) -> caf::behavior {
          self->delayed_send(self, 10ms, first);
          return {[self](int x) { self->delayed_send(self, 10ms, x + 1); }};
        },
        1);
    BOOST_REQUIRE(rt->execute<ledger>("l1", credit{1}));
  });  // ~runtime
  BOOST_REQUIRE(done.wait_for(120s) == std::future_status::ready);
  done.get();
}

BOOST_AUTO_TEST_CASE(an_encrypted_store_round_trips_commands_views_and_a_restart) {
  temp_dir dir;
  auto opts = [&] {
    auto o = options_for(dir.path(), {balances()});
    std::array<std::uint8_t, 32> key{};
    for (std::size_t i = 0; i < key.size(); ++i)
      key[i] = static_cast<std::uint8_t>(i * 7 + 1);
    o.store.master_key = key;
    o.store.map_size = 1u << 20;  // small: the map grows while commands land
    o.aggregates.snapshot_every = 10;
    return o;
  };
  {
    auto rt = runtime::open(opts());
    BOOST_REQUIRE(rt);
    BOOST_TEST(rt->store()->encrypted());
    varve::global_position last = 0;
    for (int i = 0; i < 400; ++i) {
      auto r = rt->execute<ledger>("l" + std::to_string(i % 4), credit{2});
      BOOST_REQUIRE(r);
      last = r->position;
    }
    BOOST_REQUIRE(rt->wait_for("balances", last));
  }
  auto rt = runtime::open(opts());
  BOOST_REQUIRE(rt);
  // Hydrated from a JSON snapshot plus the tail: the rule still holds.
  auto refused = rt->execute<ledger>("l0", debit{201});
  BOOST_REQUIRE(!refused);
  BOOST_TEST(refused.err().code() == errc::rejected);
  BOOST_TEST(rt->execute<ledger>("l0", debit{200}).ok());
  auto txn = rt->store()->read();
  auto snap = txn->snapshot("ledger-l0");
  BOOST_REQUIRE(snap);
  BOOST_REQUIRE(*snap);
  BOOST_TEST((*snap)->bytes.find("\"balance\"") != std::string::npos);
  auto balance = rt->view<std::int64_t>("balances", "ledger-l1");
  BOOST_REQUIRE(balance);
  BOOST_TEST(balance->value_or(0) == 200);
  // Shredded through the runtime: the aggregate refuses from then on.
  auto shredded = rt->shred("ledger-l2");
  BOOST_REQUIRE_MESSAGE(shredded, (shredded ? "" : shredded.err().to_string()));
  BOOST_TEST(*shredded == 100u);
  auto after = rt->execute<ledger>("l2", credit{1});
  BOOST_REQUIRE(!after);
  BOOST_TEST(after.err().code() == errc::shredded);
}

BOOST_AUTO_TEST_CASE(projections_pause_resume_reset_and_rebuild_through_the_runtime) {
  temp_dir dir;
  auto rt = runtime::open(options_for(dir.path(), {balances()}));
  BOOST_REQUIRE(rt);
  auto first = rt->execute<ledger>("l1", credit{5});
  BOOST_REQUIRE(first);
  BOOST_REQUIRE(rt->wait_for("balances", first->position));
  auto paused = rt->pause("balances");
  BOOST_REQUIRE(paused);
  BOOST_TEST(paused->state == "paused");
  auto second = rt->execute<ledger>("l1", credit{5});
  BOOST_REQUIRE(second);
  // Paused: the view stays where it was.
  BOOST_TEST(rt->wait_for("balances", second->position, 200ms).err().code() == errc::timeout);
  BOOST_TEST(rt->view<std::int64_t>("balances", "ledger-l1")->value_or(0) == 5);
  BOOST_REQUIRE(rt->resume("balances"));
  BOOST_REQUIRE(rt->wait_for("balances", second->position));
  BOOST_TEST(rt->view<std::int64_t>("balances", "ledger-l1")->value_or(0) == 10);
  // An event appended directly, not through an aggregate, is in the log
  // and the projection sees it like any other.
  varve::append_request direct{"ledger-l1", varve::expected_version::exact(2), {}};
  direct.events.push_back({.type = "credited", .payload = R"({"amount":1})"});
  auto appended = rt->append(direct);
  BOOST_REQUIRE_MESSAGE(appended, (appended ? "" : appended.err().to_string()));
  BOOST_TEST(appended->last_version == 3u);
  BOOST_TEST(rt->append(direct).err().code() == errc::wrong_expected_version);
  BOOST_REQUIRE(rt->wait_for("balances", appended->last_position));
  BOOST_TEST(rt->view<std::int64_t>("balances", "ledger-l1")->value_or(0) == 11);
  // Rebuilt from the start: the same view.
  BOOST_REQUIRE(rt->rebuild("balances"));
  BOOST_REQUIRE(rt->wait_for("balances", appended->last_position));
  BOOST_TEST(rt->view<std::int64_t>("balances", "ledger-l1")->value_or(0) == 11);
  BOOST_TEST(rt->reset("no-such", 0).err().code() == errc::not_found);
}

BOOST_AUTO_TEST_CASE(a_second_process_using_the_store_continues_the_same_aggregates) {
  temp_dir dir;
  // Another process, first: its runtime appends and stops.
  const pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    int code = 0;
    {
      auto rt = runtime::open(options_for(dir.path(), {balances()}));
      if (!rt) ::_exit(10);
      for (int i = 0; i < 100; ++i)
        if (!rt->execute<ledger>("shared", credit{1})) code = 11;
    }
    ::_exit(code);
  }
  int status = 0;
  BOOST_REQUIRE(::waitpid(child, &status, 0) == child);
  BOOST_REQUIRE(WIFEXITED(status));
  BOOST_REQUIRE(WEXITSTATUS(status) == 0);
  // This process: versions go on from the other's, and the projection
  // sees both.
  auto rt = runtime::open(options_for(dir.path(), {balances()}));
  BOOST_REQUIRE(rt);
  auto reply = rt->execute<ledger>("shared", debit{100});
  BOOST_REQUIRE_MESSAGE(reply, (reply ? "" : reply.err().to_string()));
  BOOST_TEST(reply->version == 101u);
  BOOST_REQUIRE(rt->wait_for("balances", reply->position));
  auto balance = rt->view<std::int64_t>("balances", "ledger-shared");
  BOOST_REQUIRE(balance);
  BOOST_TEST(balance->value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(a_blocking_call_from_inside_a_projection_handler_fails_at_once) {
  temp_dir dir;
  auto rt_ptr = std::make_shared<runtime*>(nullptr);
  auto seen = std::make_shared<std::vector<varve::errc>>();
  varve::projection_spec spec{.name = "reacting"};
  spec.handle = [rt_ptr, seen](const varve::delivered_event&,
                               varve::view_batch&) -> varve::result<void> {
    // Waiting here for a command would wait for this very thread.
    auto r = (*rt_ptr)->execute<ledger>("from-handler", credit{1}, 5s);
    seen->push_back(r ? errc::not_found : r.err().code());
    auto s = (*rt_ptr)->status("reacting");
    seen->push_back(s ? errc::not_found : s.err().code());
    return {};
  };
  auto rt = runtime::open(options_for(dir.path(), {spec}));
  BOOST_REQUIRE(rt);
  *rt_ptr = &*rt;
  auto reply = rt->execute<ledger>("l1", credit{1});
  BOOST_REQUIRE(reply);
  BOOST_REQUIRE(rt->wait_for("reacting", reply->position, 60s));
  BOOST_REQUIRE(seen->size() == 2u);
  BOOST_TEST((*seen)[0] == errc::invalid_argument);
  BOOST_TEST((*seen)[1] == errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(a_moved_from_runtime_answers_unavailable) {
  temp_dir dir;
  auto rt = runtime::open(options_for(dir.path()));
  BOOST_REQUIRE(rt);
  runtime moved = std::move(*rt);
  BOOST_TEST(moved.execute<ledger>("l1", credit{1}).ok());
  BOOST_TEST(rt->execute<ledger>("l1", credit{1}).err().code() == errc::unavailable);
  BOOST_TEST(rt->view<std::int64_t>("balances", "x").err().code() == errc::unavailable);
  BOOST_TEST(rt->status("balances").err().code() == errc::unavailable);
  BOOST_TEST(!rt->store());
  BOOST_CHECK_THROW(rt->system(), std::logic_error);
}

namespace ledger_model {

/// The ledger's next version: its state counts operations too, and the
/// snapshot schema was not bumped (an easy mistake).
struct counting_ledger {
  static constexpr std::string_view category = "ledger";
  static constexpr std::uint32_t snapshot_schema = 1;
  struct state {
    std::int64_t balance = 0;
    std::uint64_t operations = 0;
  };
  using event = ledger::event;
  using command = std::variant<credit, debit>;
  static void apply(state& s, const event& e) {
    ledger::state inner{s.balance};
    ledger::apply(inner, e);
    s.balance = inner.balance;
    ++s.operations;
  }
  static varve::decision<event> decide(const state& s, const command& c) {
    if (std::holds_alternative<debit>(c) && s.operations < 4)
      return varve::error{varve::errc::rejected, "at " + std::to_string(s.operations)};
    return ledger::decide(ledger::state{s.balance}, c);
  }
};
VARVE_JSON(counting_ledger::state, balance, operations)

}  // namespace ledger_model

BOOST_AUTO_TEST_CASE(a_snapshot_without_a_field_the_state_has_now_is_replayed_not_defaulted) {
  temp_dir dir;
  auto opts = [&] {
    auto o = options_for(dir.path());
    o.aggregates.snapshot_every = 2;
    return o;
  };
  {
    auto rt = runtime::open(opts());
    BOOST_REQUIRE(rt);
    for (int i = 0; i < 4; ++i)
      BOOST_REQUIRE(rt->execute<ledger>("l1", credit{10}));
    // The snapshot is written after the reply, in a group commit of its own.
    std::string bytes;
    for (int i = 0; i < 1000 && bytes.empty(); ++i) {
      auto txn = rt->store()->read();
      auto snap = txn->snapshot("ledger-l1");
      BOOST_REQUIRE(snap);
      if (*snap && (*snap)->version == 4)
        bytes = std::string((*snap)->bytes);
      else
        std::this_thread::sleep_for(10ms);
    }
    BOOST_TEST(bytes == R"({"balance":40})");
  }
  auto rt = runtime::open(opts());
  BOOST_REQUIRE(rt);
  // From the snapshot, operations would read 0 and the debit be refused.
  auto debit_now = rt->execute<counting_ledger>("l1", debit{5});
  BOOST_REQUIRE_MESSAGE(debit_now, (debit_now ? "" : debit_now.err().to_string()));
  BOOST_TEST(debit_now->version == 5u);
}
