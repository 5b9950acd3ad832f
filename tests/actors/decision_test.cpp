// Decision models on actors: the decider behind the storage actor, and
// varve::runtime::decide. Real stores on disk; races between decisions
// over overlapping boundaries (in one batch and across batches, in one
// process and in two), reloads after conflicts, refusals, bad input,
// encryption, a reopen, and the shutdown.
#define BOOST_TEST_MODULE decision
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <caf/scoped_actor.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <varve/runtime.hpp>
#include <vector>

#include "actor_fixture.hpp"

using namespace std::chrono_literals;
using varve::errc;
using varve::runtime;
using varve_test::actor_fixture;
using varve_test::temp_dir;

namespace booking_model {

// A room has `seats`; a guest takes a room once and at most two rooms. A
// booking is stored in the guest's stream, tagged with room and guest.
struct booked {
  static constexpr std::string_view type_name = "booked";
  std::string room;
  std::string guest;
};
VARVE_JSON(booked, room, guest)

struct book_seat {
  std::string room;
  std::string guest;
  int seats = 2;
};

/// Called in decide(), before it returns: a test's other writer.
std::function<void(const book_seat&)> before_decide;
std::atomic<int> decided_times{0};

struct booking {
  using event = booked;
  using command = book_seat;
  struct state {
    std::string room, guest;
    int taken = 0, rooms_of_guest = 0;
    bool already = false;
  };
  static varve::query boundary(const command& c) {
    return {{{{"booked"}, {"room:" + c.room}, {}}, {{"booked"}, {"guest:" + c.guest}, {}}}};
  }
  static state initial(const command& c) { return {c.room, c.guest}; }
  static void apply(state& s, const event& e) {
    if (e.room == s.room) ++s.taken;
    if (e.guest == s.guest) ++s.rooms_of_guest;
    if (e.room == s.room && e.guest == s.guest) s.already = true;
  }
  static varve::dcb_decision<event> decide(const state& s, const command& c) {
    ++decided_times;
    if (before_decide) before_decide(c);
    if (s.already) return varve::error{errc::rejected, c.guest + " has a seat already"};
    if (s.taken >= c.seats) return varve::error{errc::rejected, "room " + c.room + " is full"};
    if (s.rooms_of_guest >= 2) return varve::error{errc::rejected, c.guest + " has two rooms"};
    return std::vector<varve::tagged_event<event>>{
        {"guest-" + c.guest, booked{c.room, c.guest}, {"room:" + c.room, "guest:" + c.guest}}};
  }
};

// Decides one event with the stream and tags the command names; for bad
// input. A stream named "throw" makes decide() throw.
struct marked {
  static constexpr std::string_view type_name = "marked";
};
VARVE_JSON(marked)
struct mark {
  std::string stream;
  std::vector<std::string> tags;
  std::string boundary_tag = "mark";
};
struct marker {
  using event = marked;
  using command = mark;
  struct state {};
  static varve::query boundary(const command& c) { return varve::query::of_tags({c.boundary_tag}); }
  static void apply(state&, const event&) {}
  static varve::dcb_decision<event> decide(const state&, const command& c) {
    if (c.stream == "throw") throw std::runtime_error("the model is broken");
    return std::vector<varve::tagged_event<event>>{{c.stream, marked{}, c.tags}};
  }
};

}  // namespace booking_model

using namespace booking_model;

namespace {

varve::runtime_options options_for(const std::filesystem::path& dir) {
  varve::runtime_options o;
  o.store.directory = dir / "store";
  o.store.sync = varve::durability::no_sync;
  return o;
}

/// Resets the hooks of the booking model at the end of a test.
struct hooks_reset {
  hooks_reset() { decided_times = 0; }
  ~hooks_reset() { before_decide = nullptr; }
};

varve::result<varve::decision_reply> ask(caf::actor_system& sys,
                                         const varve::decider_actor<booking>& d, book_seat c) {
  std::optional<varve::result<varve::decision_reply>> out;
  caf::scoped_actor self{sys};
  self->request(d, 30s, varve::command_atom_v, varve::local_command<book_seat>{std::move(c)})
      .receive([&](varve::decision_reply& r) { out.emplace(r); },
               [&](caf::error& e) { out.emplace(varve::error_from(e)); });
  return std::move(*out);
}

template <class Handle>
varve::decider_stats stats_of(caf::actor_system& sys, const Handle& d) {
  varve::decider_stats out;
  caf::scoped_actor self{sys};
  self->request(d, 30s, varve::stats_atom_v)
      .receive([&](varve::decider_stats& s) { out = s; },
               [&](caf::error& e) { BOOST_FAIL("stats: " << sys.render(e)); });
  return out;
}

/// Events of the log that carry `tag`.
std::vector<varve::recorded_event> tagged(const varve::event_store& store, const std::string& tag) {
  auto r = store.read_query(varve::query::of_tags({tag}));
  BOOST_REQUIRE_MESSAGE(r, varve_test::describe(r));
  return std::move(*r);
}

/// The bookings of the log, checked against the rules: no room over
/// `seats`, no guest in a room twice or in more than two rooms. Returns
/// the number of bookings.
std::size_t check_rules(const varve::event_store& store, int seats) {
  std::map<std::string, int> rooms, guests;
  std::set<std::pair<std::string, std::string>> pairs;
  std::size_t n = 0;
  auto log = store.read_log();
  BOOST_REQUIRE_MESSAGE(log, varve_test::describe(log));
  for (const auto& e : *log) {
    if (e.type != "booked") continue;
    auto b = varve::json_codec<booked>::decode(e.type, e.payload);
    BOOST_REQUIRE(b);
    ++n;
    BOOST_TEST(++rooms[b->room] <= seats, "room " << b->room);
    BOOST_TEST(++guests[b->guest] <= 2, "guest " << b->guest);
    BOOST_TEST(pairs.emplace(b->room, b->guest).second, b->guest << " twice in " << b->room);
  }
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_decision_appends_its_events_to_their_streams_with_their_tags) {
  hooks_reset reset;
  temp_dir dir;
  auto rt = runtime::open(options_for(dir.path()));
  BOOST_REQUIRE(rt);
  auto reply = rt->decide<booking>(book_seat{"r1", "ada"});
  BOOST_REQUIRE_MESSAGE(reply, varve_test::describe(reply));
  BOOST_TEST(reply->first_position == 1u);
  BOOST_TEST(reply->position == 1u);
  BOOST_TEST(reply->events == 1u);
  BOOST_TEST(reply->read_at == 0u);
  BOOST_TEST(reply->attempts == 1u);
  auto found = tagged(*rt->store(), "room:r1");
  BOOST_REQUIRE_EQUAL(found.size(), 1u);
  BOOST_TEST(found[0].stream == "guest-ada");
  BOOST_TEST(found[0].type == "booked");
  BOOST_TEST(found[0].payload == R"({"guest":"ada","room":"r1"})");
  BOOST_TEST(found[0].tags == (std::vector<std::string>{"room:r1", "guest:ada"}),
             boost::test_tools::per_element());
  // The next decision reads it.
  auto second = rt->decide<booking>(book_seat{"r1", "bob"});
  BOOST_REQUIRE(second);
  BOOST_TEST(second->read_at == 1u);
  BOOST_TEST(second->position == 2u);
}

BOOST_AUTO_TEST_CASE(a_refusal_carries_the_models_reason_and_stores_nothing) {
  hooks_reset reset;
  temp_dir dir;
  auto rt = runtime::open(options_for(dir.path()));
  BOOST_REQUIRE(rt);
  BOOST_REQUIRE(rt->decide<booking>(book_seat{"r1", "ada"}));
  BOOST_REQUIRE(rt->decide<booking>(book_seat{"r1", "bob"}));
  auto full = rt->decide<booking>(book_seat{"r1", "cy"});
  BOOST_REQUIRE(!full);
  BOOST_TEST(full.err().code() == errc::rejected);
  BOOST_TEST(full.err().message() == "room r1 is full");
  auto twice = rt->decide<booking>(book_seat{"r1", "ada"});
  BOOST_REQUIRE(!twice);
  BOOST_TEST(twice.err().message() == "ada has a seat already");
  // The guest's limit comes from the other half of the boundary.
  BOOST_REQUIRE(rt->decide<booking>(book_seat{"r2", "ada"}));
  auto third = rt->decide<booking>(book_seat{"r3", "ada"});
  BOOST_REQUIRE(!third);
  BOOST_TEST(third.err().message() == "ada has two rooms");
  BOOST_TEST(rt->store()->read()->head() == 3u);
}

BOOST_AUTO_TEST_CASE(of_two_decisions_over_overlapping_boundaries_in_one_batch_one_commits) {
  hooks_reset reset;
  actor_fixture f;
  caf::scoped_actor self{f.sys};
  // A long read keeps the storage actor busy while both requests arrive:
  // they then wait in its mailbox together, and go into one commit.
  for (int i = 0; i < 20; ++i)
    BOOST_REQUIRE(
        f.store->append("bulk", varve::expected_version::any(), varve_test::make_events(5000)));
  int one_batch = 0;
  for (int round = 0; round < 20; ++round) {
    const std::string room = "r" + std::to_string(round);
    // Both decided on the same read: a free seat each, in overlapping
    // boundaries (the room's, and each guest's own).
    auto a = varve::prepare_decision<booking>(*f.store, book_seat{room, "ada" + room, 1});
    auto b = varve::prepare_decision<booking>(*f.store, book_seat{room, "bob" + room, 1});
    BOOST_REQUIRE(a && b);
    BOOST_REQUIRE_EQUAL(a->request.appends.size(), 1u);
    BOOST_REQUIRE(a->request.condition);
    BOOST_TEST(*a->request.condition->after == f.read().head());
    const auto commits = f.stats().commits;
    auto busy = self->request(f.storage, 30s, varve::read_atom_v, std::string("bulk"),
                              std::uint64_t{1}, false, std::uint64_t{100000});
    auto first = self->request(f.storage, 30s, varve::write_atom_v, a->request);
    auto second = self->request(f.storage, 30s, varve::write_atom_v, b->request);
    std::vector<varve::append_result> won;
    std::optional<varve::error> lost;
    busy.receive([](std::vector<varve::recorded_event>&) {},
                 [&](caf::error& e) { BOOST_FAIL("read: " << f.sys.render(e)); });
    first.receive([&](std::vector<varve::append_result>& r) { won = r; },
                  [&](caf::error& e) { BOOST_FAIL("the first failed: " << f.sys.render(e)); });
    second.receive([&](std::vector<varve::append_result>&) { BOOST_FAIL("both committed"); },
                   [&](caf::error& e) { lost = varve::error_from(e); });
    BOOST_REQUIRE_EQUAL(won.size(), 1u);
    BOOST_REQUIRE(lost);
    BOOST_TEST(lost->code() == errc::wrong_expected_version);
    BOOST_TEST(varve_test::mentions_number(lost->message(), won[0].last_position), lost->message());
    BOOST_TEST(tagged(*f.store, "room:" + room).size() == 1u);
    if (f.stats().commits == commits + 1) ++one_batch;
  }
  BOOST_TEST_MESSAGE(one_batch << " of 20 rounds had both requests in one commit");
  BOOST_TEST(one_batch > 0);
}

BOOST_AUTO_TEST_CASE(of_two_decisions_over_overlapping_boundaries_in_two_batches_one_commits) {
  hooks_reset reset;
  actor_fixture f;
  caf::scoped_actor self{f.sys};
  auto a = varve::prepare_decision<booking>(*f.store, book_seat{"r1", "ada", 1});
  auto b = varve::prepare_decision<booking>(*f.store, book_seat{"r1", "bob", 1});
  BOOST_REQUIRE(a && b);
  self->request(f.storage, 30s, varve::write_atom_v, a->request)
      .receive([](std::vector<varve::append_result>&) {},
               [&](caf::error& e) { BOOST_FAIL("the first failed: " << f.sys.render(e)); });
  std::optional<varve::error> lost;
  self->request(f.storage, 30s, varve::write_atom_v, b->request)
      .receive([](std::vector<varve::append_result>&) { BOOST_FAIL("both committed"); },
               [&](caf::error& e) { lost = varve::error_from(e); });
  BOOST_REQUIRE(lost);
  BOOST_TEST(lost->code() == errc::wrong_expected_version);
  // A decision over a boundary the first does not touch is not in conflict.
  auto c = varve::prepare_decision<booking>(*f.store, book_seat{"r2", "cy", 1});
  BOOST_REQUIRE(c);
  auto stale = c->request;
  stale.condition->after = 0;  // read before the first commit
  self->request(f.storage, 30s, varve::write_atom_v, stale)
      .receive([](std::vector<varve::append_result>&) {},
               [&](caf::error& e) { BOOST_FAIL("no conflict expected: " << f.sys.render(e)); });
  // Decided again by a decider, on fresh state: refused.
  auto d = varve::spawn_decider<booking>(f.sys, {f.store, f.storage, {}});
  auto again = ask(f.sys, d, book_seat{"r1", "bob", 1});
  BOOST_REQUIRE(!again);
  BOOST_TEST(again.err().message() == "room r1 is full");
  caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(two_deciders_racing_in_one_batch_for_the_last_seat_one_wins_one_rereads) {
  hooks_reset reset;
  actor_fixture f;
  for (int i = 0; i < 40; ++i)
    BOOST_REQUIRE(
        f.store->append("bulk", varve::expected_version::any(), varve_test::make_events(5000)));
  // Two deciders of one model (as in two processes): neither sees the
  // other's append in flight.
  auto d1 = varve::spawn_decider<booking>(f.sys, {f.store, f.storage, {}});
  auto d2 = varve::spawn_decider<booking>(f.sys, {f.store, f.storage, {}});
  const auto commits = f.stats().commits;
  caf::scoped_actor self{f.sys};
  // The storage actor reads 200k events meanwhile: both deciders read the
  // empty room, and both appends wait for it in its mailbox.
  auto busy = self->request(f.storage, 60s, varve::read_atom_v, std::string("bulk"),
                            std::uint64_t{1}, false, std::uint64_t{200000});
  auto a = self->request(d1, 60s, varve::command_atom_v,
                         varve::local_command<book_seat>{{"r1", "ada", 1}});
  auto b = self->request(d2, 60s, varve::command_atom_v,
                         varve::local_command<book_seat>{{"r1", "bob", 1}});
  busy.receive([](std::vector<varve::recorded_event>&) {},
               [&](caf::error& e) { BOOST_FAIL("read: " << f.sys.render(e)); });
  std::vector<varve::result<varve::decision_reply>> out;
  for (auto* h : {&a, &b})
    h->receive([&](varve::decision_reply& r) { out.emplace_back(r); },
               [&](caf::error& e) { out.emplace_back(varve::error_from(e)); });
  const int wins = static_cast<int>(out[0].ok()) + static_cast<int>(out[1].ok());
  BOOST_REQUIRE_EQUAL(wins, 1);
  const auto& winner = out[0] ? out[0] : out[1];
  const auto& loser = out[0] ? out[1] : out[0];
  BOOST_TEST(winner->attempts == 1u);
  BOOST_TEST(loser.err().message() == "room r1 is full");
  // The loser met the condition, read again and refused on fresh state.
  BOOST_TEST(stats_of(f.sys, d1).retries + stats_of(f.sys, d2).retries == 1u);
  BOOST_TEST(decided_times == 3);
  BOOST_TEST(f.stats().commits == commits + 1);  // both appends went into one commit
  BOOST_TEST(tagged(*f.store, "room:r1").size() == 1u);
  caf::anon_send_exit(d1, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(d2, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(after_a_conflict_the_decider_reads_again_and_decides_on_what_it_finds) {
  hooks_reset reset;
  actor_fixture f;
  // Another writer books r1 for eve between the decider's read and its
  // append, the first time only.
  before_decide = [&](const book_seat& c) {
    if (c.guest != "bob" || decided_times != 1) return;
    varve::new_event e{.type = "booked", .payload = R"({"room":"r1","guest":"eve"})"};
    e.tags = {"room:r1", "guest:eve"};
    BOOST_REQUIRE(f.store->append("guest-eve", varve::expected_version::any(), {{e}}));
  };
  auto d = varve::spawn_decider<booking>(f.sys, {f.store, f.storage, {}});
  auto r = ask(f.sys, d, book_seat{"r1", "bob", 2});
  BOOST_REQUIRE_MESSAGE(r, varve_test::describe(r));
  BOOST_TEST(r->attempts == 2u);
  BOOST_TEST(r->read_at == 1u);  // eve's booking, read on the second attempt
  BOOST_TEST(r->position == 2u);
  BOOST_TEST(decided_times == 2);
  BOOST_TEST(stats_of(f.sys, d).retries == 1u);
  // With one seat, the second attempt finds the room full.
  decided_times = 0;
  before_decide = [&](const book_seat& c) {
    if (decided_times != 1) return;
    varve::new_event e{.type = "booked", .payload = R"({"room":"r2","guest":"eve"})"};
    e.tags = {"room:r2", "guest:eve"};
    BOOST_REQUIRE(f.store->append("guest-eve", varve::expected_version::any(), {{e}}));
    (void)c;
  };
  auto refused = ask(f.sys, d, book_seat{"r2", "cy", 1});
  BOOST_REQUIRE(!refused);
  BOOST_TEST(refused.err().message() == "room r2 is full");
  BOOST_TEST(tagged(*f.store, "guest:cy").empty());
  caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(a_boundary_that_changes_at_every_attempt_fails_after_the_retries) {
  hooks_reset reset;
  actor_fixture f;
  before_decide = [&](const book_seat&) {
    varve::new_event e{.type = "booked", .payload = R"({"room":"r1","guest":"x"})"};
    e.tags = {"room:r1", "guest:x" + std::to_string(decided_times.load())};
    BOOST_REQUIRE(f.store->append("guest-x", varve::expected_version::any(), {{e}}));
  };
  auto d = varve::spawn_decider<booking>(f.sys, {f.store, f.storage, {.max_retries = 2}});
  auto r = ask(f.sys, d, book_seat{"r1", "bob", 100});
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.err().code() == errc::wrong_expected_version);
  BOOST_TEST(r.err().message().find("after 3 attempts") != std::string::npos, r.err().message());
  BOOST_TEST(decided_times == 3);
  BOOST_TEST(tagged(*f.store, "guest:bob").empty());
  auto s = stats_of(f.sys, d);
  BOOST_TEST(s.retries == 2u);
  BOOST_TEST(s.failed == 1u);
  caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(commands_of_one_decider_wait_for_overlapping_appends_and_never_conflict) {
  hooks_reset reset;
  temp_dir dir;
  auto rt = runtime::open(options_for(dir.path()));
  BOOST_REQUIRE(rt);
  constexpr int clients = 64, rounds = 40, seats = 5;
  std::atomic<int> ok{0}, refused{0}, other{0};
  const auto started = std::chrono::steady_clock::now();
  {
    std::vector<std::jthread> threads;
    for (int k = 0; k < clients; ++k)
      threads.emplace_back([&, k] {
        std::mt19937 rng(static_cast<unsigned>(k) + 1);
        for (int i = 0; i < rounds; ++i) {
          auto r = rt->decide<booking>(book_seat{"r" + std::to_string(rng() % 30),
                                                 "g" + std::to_string(rng() % 100), seats});
          if (r)
            ++ok;
          else if (r.err().code() == errc::rejected)
            ++refused;
          else
            ++other;
        }
      });
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  BOOST_TEST_MESSAGE(clients * rounds << " decisions from " << clients << " clients in " << seconds
                                      << " s: " << clients * rounds / seconds << "/s; " << ok
                                      << " booked, " << refused << " refused");
  BOOST_TEST(other == 0);
  BOOST_TEST(ok > 0);
  BOOST_TEST(check_rules(*rt->store(), seats) == static_cast<std::size_t>(ok.load()));
  auto s = stats_of(rt->system(), rt->decider<booking>());
  BOOST_TEST(s.commands == static_cast<std::uint64_t>(clients * rounds));
  BOOST_TEST(s.retries == 0u);  // it held back what its appends in flight touched
  BOOST_TEST(s.appended == static_cast<std::uint64_t>(ok.load()));
}

BOOST_AUTO_TEST_CASE(an_encrypted_store_decides_and_goes_on_after_a_reopen) {
  hooks_reset reset;
  temp_dir dir;
  auto opts = [&] {
    auto o = options_for(dir.path());
    std::array<std::uint8_t, 32> key{};
    for (std::size_t i = 0; i < key.size(); ++i)
      key[i] = static_cast<std::uint8_t>(i * 5 + 3);
    o.store.master_key = key;
    return o;
  };
  {
    auto rt = runtime::open(opts());
    BOOST_REQUIRE(rt);
    BOOST_REQUIRE(rt->store()->encrypted());
    BOOST_REQUIRE(rt->decide<booking>(book_seat{"r1", "ada"}));
    BOOST_REQUIRE(rt->decide<booking>(book_seat{"r1", "bob"}));
  }
  // The payload is sealed in the file.
  {
    std::ifstream in(dir.path() / "store" / "data.mdb", std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    BOOST_TEST(bytes.find(R"("guest":"ada")") == std::string::npos);
  }
  auto rt = runtime::open(opts());
  BOOST_REQUIRE(rt);
  auto full = rt->decide<booking>(book_seat{"r1", "cy"});
  BOOST_REQUIRE(!full);
  BOOST_TEST(full.err().message() == "room r1 is full");
  auto more = rt->decide<booking>(book_seat{"r2", "ada"});
  BOOST_REQUIRE_MESSAGE(more, varve_test::describe(more));
  BOOST_TEST(more->read_at == 2u);
  BOOST_TEST(tagged(*rt->store(), "guest:ada").size() == 2u);
}

BOOST_AUTO_TEST_CASE(two_processes_deciding_over_the_same_boundaries_break_no_rule) {
  hooks_reset reset;
  temp_dir dir;
  constexpr int seats = 3;
  auto run = [&](unsigned seed, int& answered) {
    auto o = options_for(dir.path());
    o.decisions.max_retries = 50;
    auto rt = runtime::open(o);
    if (!rt) return 10;
    std::mt19937 rng(seed);
    std::vector<std::future<varve::result<varve::decision_reply>>> replies;
    for (int i = 0; i < 300; ++i)
      replies.push_back(rt->decide_async<booking>(
          book_seat{"r" + std::to_string(rng() % 20), "g" + std::to_string(rng() % 60), seats}));
    for (auto& f : replies) {
      auto r = f.get();
      if (!r && r.err().code() != errc::rejected) return 11;
      ++answered;
    }
    return 0;
  };
  const pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    int answered = 0;
    ::_exit(run(2, answered));
  }
  int answered = 0;
  const int code = run(1, answered);
  int status = 0;
  BOOST_REQUIRE(::waitpid(child, &status, 0) == child);
  BOOST_REQUIRE(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);
  BOOST_TEST(code == 0);
  BOOST_TEST(answered == 300);
  auto rt = runtime::open(options_for(dir.path()));
  BOOST_REQUIRE(rt);
  BOOST_TEST_MESSAGE(check_rules(*rt->store(), seats) << " bookings from two processes");
  // This process goes on from both.
  auto next = rt->decide<booking>(book_seat{"r-new", "g-new"});
  BOOST_REQUIRE(next);
  BOOST_TEST(next->read_at == rt->store()->read()->head() - 1);
}

BOOST_AUTO_TEST_CASE(decided_events_with_bad_tags_or_no_stream_are_refused_and_write_nothing) {
  temp_dir dir;
  auto rt = runtime::open(options_for(dir.path()));
  BOOST_REQUIRE(rt);
  std::vector<std::string> many;
  for (int i = 0; i < 33; ++i)
    many.push_back("t" + std::to_string(i));
  const std::vector<mark> bad = {
      {"s-1", {""}},                     // an empty tag
      {"s-1", many},                     // 33 tags
      {"s-1", {std::string(256, 'x')}},  // a tag over 255 bytes
      {"s-1", {"a:1", "a:1"}},           // a tag twice
      {"", {"a:1"}},                     // no stream
      {"s-1", {"a:1"}, ""},              // an empty tag in the boundary
  };
  for (const auto& m : bad) {
    auto r = rt->decide<marker>(m);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().code() == errc::invalid_argument, r.err().to_string());
  }
  BOOST_TEST(rt->store()->read()->head() == 0u);
  auto good = rt->decide<marker>(mark{"s-1", many, "mark"});
  BOOST_REQUIRE(!good);  // 33 tags again
  many.pop_back();
  good = rt->decide<marker>(mark{"s-1", many});
  BOOST_REQUIRE_MESSAGE(good, varve_test::describe(good));
  BOOST_TEST(tagged(*rt->store(), "t31").size() == 1u);
}

BOOST_AUTO_TEST_CASE(an_exception_from_the_model_fails_its_command_and_the_decider_goes_on) {
  temp_dir dir;
  auto rt = runtime::open(options_for(dir.path()));
  BOOST_REQUIRE(rt);
  auto broken = rt->decide<marker>(mark{"throw", {}});
  BOOST_REQUIRE(!broken);
  BOOST_TEST(broken.err().code() == errc::handler_failed);
  BOOST_TEST(broken.err().message().find("the model is broken") != std::string::npos);
  BOOST_TEST(rt->decide<marker>(mark{"s-1", {"mark"}}).ok());
}

BOOST_AUTO_TEST_CASE(shutdown_answers_every_decision_waiting_or_in_flight) {
  hooks_reset reset;
  temp_dir dir;
  std::vector<std::future<varve::result<varve::decision_reply>>> replies;
  {
    auto rt = runtime::open(options_for(dir.path()));
    BOOST_REQUIRE(rt);
    // Three rooms: each waits for the one before. The answers' timeout is
    // long: shutdown, not a slow machine, is what answers the rest.
    for (int i = 0; i < 2000; ++i)
      replies.push_back(rt->decide_async<booking>(
          book_seat{"r" + std::to_string(i % 3), "g" + std::to_string(i), 100000}, 600s));
    for (std::size_t i = 0; i < 20; ++i)  // the first 20 answered, the rest not all
      BOOST_REQUIRE(replies[i].wait_for(60s) == std::future_status::ready);
    rt->shutdown();
    auto after = rt->decide<booking>(book_seat{"r1", "late"});
    BOOST_REQUIRE(!after);
    BOOST_TEST(after.err().code() == errc::unavailable);
  }
  std::set<std::string> acknowledged;
  std::size_t unavailable = 0;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    BOOST_REQUIRE(replies[i].wait_for(60s) == std::future_status::ready);
    auto r = replies[i].get();
    if (r) {
      acknowledged.insert("guest:g" + std::to_string(i));
    } else {
      BOOST_TEST(r.err().code() == errc::unavailable, r.err().to_string());
      ++unavailable;
    }
  }
  BOOST_TEST_MESSAGE(acknowledged.size() << " answered, " << unavailable << " unavailable");
  BOOST_TEST(acknowledged.size() >= 20u);
  auto again = runtime::open(options_for(dir.path()));
  BOOST_REQUIRE(again);
  for (const auto& tag : acknowledged)
    BOOST_TEST(tagged(*again->store(), tag).size() == 1u, tag);
}
