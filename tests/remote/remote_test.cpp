// varve::remote across real processes on loopback: varve_serve runs as a
// child process (posix_spawn; its port read from its stdout), the test
// process is the client and the remote projection host.
#define BOOST_TEST_MODULE remote
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/scoped_actor.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <thread>
#include <tuple>
#include <varve/remote/client.hpp>
#include <varve/remote/commands.hpp>
#include <varve/remote/projection_host.hpp>
#include <varve/remote/service.hpp>
#include <varve/storage/testing.hpp>

#include "../actors/actor_fixture.hpp"
#include "peer.hpp"
#include "service_process.hpp"

using namespace varve;
using namespace std::chrono_literals;
using varve_test::make_events;
using varve_test::temp_dir;

namespace {

using clock_type = std::chrono::steady_clock;

using varve_test::child_process;

struct remote_config : varve_test::actor_config {
  remote_config() {
    remote::configure_remote(*this);
    add_message_types<caf::id_block::varve_remote_test>();
  }
};

/// The test process: an actor system with the middleman, and a local store
/// with its storage actor for the projection hosts.
struct fixture {
  temp_dir dir;
  std::shared_ptr<event_store> local;
  remote_config cfg;
  caf::actor_system sys{cfg};
  storage_actor local_storage;
  child_process service;

  fixture() {
    local = varve_test::open_store(varve_test::test_options(dir / "local"));
    local_storage = spawn_storage(sys, local);
  }
  ~fixture() {
    service.stop(SIGKILL);
    caf::anon_send_exit(local_storage, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
  }

  std::string service_dir() const { return (dir / "service").string(); }

  remote::client client(remote::client_options o = {}) {
    auto c = remote::client::open(sys, "127.0.0.1", service.port, o);
    BOOST_REQUIRE_MESSAGE(c.ok(), "connect: " << varve_test::describe(c));
    return std::move(c).value();
  }

  template <class Handle>
  projection_status status(const Handle& h) {
    return varve_test::projection_status_of(sys, h);
  }

  /// Waits until the host has handled the log up to `head`.
  template <class Handle>
  projection_status wait_for(const Handle& h, global_position head,
                             std::chrono::seconds limit = 120s,
                             std::chrono::microseconds poll = 1000us) {
    const auto deadline = clock_type::now() + limit;
    for (;;) {
      auto s = status(h);
      BOOST_REQUIRE_MESSAGE(s.state != "failed", "host failed: " << s.error);
      if (s.position >= head) return s;
      BOOST_REQUIRE_MESSAGE((clock_type::now() < deadline), "host at " << s.position << " of "
                                                                       << head << " (" << s.state
                                                                       << ", " << s.error << ")");
      std::this_thread::sleep_for(poll);
    }
  }

  void stop(const projection_actor& h) {
    caf::scoped_actor self{sys};
    self->monitor(h);
    caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    self->receive([](const caf::down_msg&) {});
  }
};

std::map<std::string, std::string> view_of(event_store& store, const std::string& view) {
  std::map<std::string, std::string> out;
  auto txn = store.read();
  BOOST_REQUIRE(txn.ok());
  auto n = txn->scan_view(view, "", [&](std::string_view k, std::string_view v) {
    out.emplace(std::string(k), std::string(v));
    return true;
  });
  BOOST_REQUIRE(n.ok());
  return out;
}

/// Appends `total` events over the client, `per` per request, in `streams` streams.
void fill(remote::client& c, std::size_t total, std::size_t per, int streams,
          const std::string& prefix = "order") {
  for (std::size_t done = 0, i = 0; done < total; done += per, ++i) {
    auto r = c.append(prefix + "-" + std::to_string(i % streams), expected_version::any(),
                      make_events(std::min(per, total - done), "p" + std::to_string(i)));
    BOOST_REQUIRE_MESSAGE(r.ok(), "append: " << varve_test::describe(r));
  }
}

remote::remote_projection_options host_options(std::uint16_t port) {
  remote::remote_projection_options o;
  o.port = port;
  o.request_timeout = 5000ms;
  o.min_backoff = 20ms;
  o.max_backoff = 500ms;
  return o;
}

std::uint64_t percentile(std::vector<std::uint64_t> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

/// One event of `type` carrying `tags`.
new_event tagged(std::string type, std::vector<std::string> tags, std::string payload = "x") {
  new_event e;
  e.type = std::move(type);
  e.payload = std::move(payload);
  e.tags = std::move(tags);
  return e;
}

std::vector<global_position> positions_of(const std::vector<recorded_event>& events) {
  std::vector<global_position> out;
  for (const auto& e : events)
    out.push_back(e.position);
  return out;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(remote_suite, fixture)

BOOST_AUTO_TEST_CASE(append_and_read_across_processes) {
  service.start(VARVE_SERVE, service_dir());
  auto c = client();
  auto r = c.append("order-1", expected_version::no_stream(), make_events(3, "a"));
  BOOST_REQUIRE_MESSAGE(r.ok(), varve_test::describe(r));
  BOOST_TEST(r->first_version == 1u);
  BOOST_TEST(r->last_version == 3u);
  BOOST_TEST(r->last_position == 3u);
  auto r2 = c.append("order-2", expected_version::any(), make_events(2, "b"));
  BOOST_REQUIRE(r2.ok());
  BOOST_TEST(r2->first_position == 4u);

  auto events = c.read_stream("order-1");
  BOOST_REQUIRE_MESSAGE(events.ok(), varve_test::describe(events));
  BOOST_REQUIRE_EQUAL(events->size(), 3u);
  BOOST_TEST((*events)[2].payload == "a-2");
  BOOST_TEST((*events)[2].stream == "order-1");
  BOOST_TEST((*events)[2].version == 3u);

  auto log = c.read_log(4);
  BOOST_REQUIRE(log.ok());
  BOOST_REQUIRE_EQUAL(log->size(), 2u);
  BOOST_TEST((*log)[0].stream == "order-2");
  BOOST_TEST((*log)[1].payload == "b-1");

  auto back = c.read_log(from_end, direction::backward, 1);
  BOOST_REQUIRE(back.ok());
  BOOST_REQUIRE_EQUAL(back->size(), 1u);
  BOOST_TEST(back->front().position == 5u);

  auto stats = c.stats();
  BOOST_REQUIRE(stats.ok());
  BOOST_TEST(stats->head == 5u);

  // A stream that does not exist: the same answer as in process.
  auto none = c.read_stream("order-404");
  if (none.ok())
    BOOST_TEST(none->empty());
  else
    BOOST_TEST(none.err().code() == errc::not_found);
}

BOOST_AUTO_TEST_CASE(errors_as_in_process) {
  service.start(VARVE_SERVE, service_dir());
  auto c = client({2000ms});  // a short timeout: the dead-service check below
  BOOST_REQUIRE(c.append("acct-1", expected_version::no_stream(), make_events(2)).ok());

  auto conflict = c.append("acct-1", expected_version::exact(1), make_events(1));
  BOOST_REQUIRE(!conflict.ok());
  BOOST_TEST(conflict.err().code() == errc::wrong_expected_version);

  auto bad = c.append("", expected_version::any(), make_events(1));
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.err().code() == errc::invalid_argument);

  auto shredded = c.shred("acct-1");
  BOOST_REQUIRE_MESSAGE(shredded.ok(), varve_test::describe(shredded));
  auto late = c.append("acct-1", expected_version::any(), make_events(1));
  BOOST_REQUIRE(!late.ok());
  BOOST_TEST(late.err().code() == errc::shredded);
  // Shredded events keep their envelope, flagged, over the wire too.
  auto log = c.read_log(1);
  BOOST_REQUIRE(log.ok());
  BOOST_REQUIRE_EQUAL(log->size(), 2u);
  BOOST_TEST(log->front().shredded);
  BOOST_TEST(log->front().payload.empty());

  // A client of another protocol version is refused, naming both versions.
  remote::client_options other;
  other.protocol = remote::protocol_version + 41;
  auto mismatch = remote::client::open(sys, "127.0.0.1", service.port, other);
  BOOST_REQUIRE(!mismatch.ok());
  BOOST_TEST(mismatch.err().code() == errc::invalid_argument);
  const auto text = mismatch.err().message();
  BOOST_TEST_MESSAGE("mismatch: " << text);
  BOOST_TEST(text.find(std::to_string(other.protocol)) != std::string::npos);
  BOOST_TEST(text.find(std::to_string(remote::protocol_version)) != std::string::npos);

  // A dead service: errc::unavailable, quickly, never a hang.
  const auto port = service.port;
  service.stop(SIGKILL);
  const auto t0 = clock_type::now();
  auto dead = c.append("acct-2", expected_version::any(), make_events(1));
  BOOST_REQUIRE(!dead.ok());
  BOOST_TEST(dead.err().code() == errc::unavailable);
  auto refused = remote::client::open(sys, "127.0.0.1", port, {2000ms});
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.err().code() == errc::unavailable);
  BOOST_TEST((clock_type::now() - t0 < 6s));
}

BOOST_AUTO_TEST_CASE(projection_catches_up_on_100k_and_follows_live) {
  service.start(VARVE_SERVE, service_dir());
  auto c = client();
  constexpr std::size_t total = 100000;
  fill(c, total, 1000, 50);

  const auto t0 = clock_type::now();
  auto host = remote::spawn_remote_projection(sys, local, local_storage, tally::counting("orders"),
                                              host_options(service.port));
  auto s = wait_for(host, total);
  const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  BOOST_TEST_MESSAGE("remote catch-up: " << total << " events in " << secs << " s = "
                                         << static_cast<long>(total / secs) << " events/s");
  BOOST_TEST(s.handled == total);

  // Live: each append shows in the local view.
  std::vector<std::uint64_t> latencies;
  for (int i = 0; i < 300; ++i) {
    const auto start = clock_type::now();
    auto r = c.append("live-" + std::to_string(i % 7), expected_version::any(), make_events(1));
    BOOST_REQUIRE(r.ok());
    wait_for(host, r->last_position, 30s, 50us);
    latencies.push_back(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - start).count()));
  }
  BOOST_TEST_MESSAGE("remote live latency (append -> local view): p50 "
                     << percentile(latencies, 0.5) << " us, p99 " << percentile(latencies, 0.99)
                     << " us");
  s = status(host);
  BOOST_TEST(s.state == "live");
  BOOST_TEST(s.handled == total + 300);
  auto view = view_of(*local, "orders");
  BOOST_TEST(view.size() == total + 300 + 50 + 7);  // one row per event, one count per stream
  BOOST_TEST(view["count/live-0"] == "43");
  stop(host);

  // The same projection and load in process, for comparison (printed only).
  std::shared_ptr<event_store> store =
      varve_test::open_store(varve_test::test_options(dir / "in-process"));
  for (std::size_t done = 0, i = 0; done < total; done += 1000, ++i)
    BOOST_REQUIRE(store
                      ->append("order-" + std::to_string(i % 50), expected_version::any(),
                               make_events(1000, "p" + std::to_string(i)))
                      .ok());
  auto storage = spawn_storage(sys, store);
  const auto t1 = clock_type::now();
  auto p = spawn_projection(sys, store, storage, tally::counting("orders"));
  wait_for(p, total);
  const double local_secs = std::chrono::duration<double>(clock_type::now() - t1).count();
  std::vector<std::uint64_t> local_latencies;
  caf::scoped_actor self{sys};
  for (int i = 0; i < 300; ++i) {
    const auto start = clock_type::now();
    global_position at = 0;
    self->request(storage, caf::infinite, append_atom_v,
                  append_request{"live-" + std::to_string(i % 7), expected_version::any(),
                                 make_events(1)})
        .receive([&](const append_result& r) { at = r.last_position; },
                 [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
    wait_for(p, at, 30s, 50us);
    local_latencies.push_back(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - start).count()));
  }
  BOOST_TEST_MESSAGE("in-process catch-up: " << static_cast<long>(total / local_secs)
                                             << " events/s; live p50 "
                                             << percentile(local_latencies, 0.5) << " us, p99 "
                                             << percentile(local_latencies, 0.99) << " us");
  caf::anon_send_exit(p, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(storage, caf::exit_reason::user_shutdown);
  self->wait_for(p, storage);
}

BOOST_AUTO_TEST_CASE(service_killed_mid_stream_and_restarted) {
  service.start(VARVE_SERVE, service_dir());
  const auto port = service.port;
  {
    auto c = client();
    fill(c, 20000, 500, 20);
  }
  auto host = remote::spawn_remote_projection(sys, local, local_storage, tally::counting("orders"),
                                              host_options(port));
  // A writer in this process appends while the service dies and comes back.
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> acked{0}, failed{0};
  std::thread writer([&] {
    std::optional<remote::client> c;
    int i = 0;
    while (!done) {
      if (!c) {
        auto o = remote::client::open(sys, "127.0.0.1", port, {1000ms});
        if (!o) {
          std::this_thread::sleep_for(20ms);
          continue;
        }
        c.emplace(std::move(o).value());
      }
      auto r = c->append("live-" + std::to_string(i++ % 5), expected_version::any(),
                         make_events(10, "w"));
      if (r)
        ++acked;
      else {
        ++failed;
        c.reset();
      }
    }
  });
  // Kill the service while the host is still catching up.
  std::this_thread::sleep_for(300ms);
  const auto before = status(host);
  BOOST_TEST_MESSAGE("kill at host position " << before.position);
  BOOST_TEST(service.stop(SIGKILL) != 0);
  std::this_thread::sleep_for(500ms);
  const auto away = status(host);  // reading waits for the service; the status says why
  BOOST_TEST(away.state == "catching_up");
  BOOST_TEST(away.error.find(std::to_string(port)) != std::string::npos, away.error);
  service.start(VARVE_SERVE, service_dir(), port);
  std::this_thread::sleep_for(1000ms);
  done = true;
  writer.join();
  BOOST_TEST_MESSAGE("writer: " << acked << " appends acknowledged, " << failed << " failed");
  BOOST_TEST(acked > 0u);

  auto c = client();
  auto head = c.stats();
  BOOST_REQUIRE(head.ok());
  auto s = wait_for(host, head->head);
  BOOST_TEST(s.position == head->head);
  stop(host);
  service.stop(SIGTERM);

  // An in-process rebuild over the service's store gives the same view.
  auto remote_view = view_of(*local, "orders");
  {
    auto store = std::shared_ptr<event_store>(
        varve_test::open_store(varve_test::test_options(service_dir())));
    auto storage = spawn_storage(sys, store);
    auto p = spawn_projection(sys, store, storage, tally::counting("rebuild"));
    caf::scoped_actor self{sys};
    for (;;) {
      projection_status st;
      self->request(p, caf::infinite, status_atom_v)
          .receive([&](projection_status& x) { st = x; },
                   [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
      if (st.position >= head->head) break;
      std::this_thread::sleep_for(5ms);
    }
    caf::anon_send_exit(p, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(storage, caf::exit_reason::user_shutdown);
    self->wait_for(p, storage);
    auto rebuilt = view_of(*store, "rebuild");
    BOOST_TEST(rebuilt.size() == remote_view.size());
    BOOST_TEST((rebuilt == remote_view));
  }
  BOOST_TEST(remote_view.size() == head->head + 25);
}

// A port where the kernel completes TCP connections (the backlog) and no
// one ever speaks: the middleman's connect there never finishes.
struct silent_port {
  int fd = -1;
  std::uint16_t port = 0;
  silent_port() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    BOOST_REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    BOOST_REQUIRE(::listen(fd, 64) == 0);
    socklen_t n = sizeof a;
    BOOST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) == 0);
    port = ntohs(a.sin_port);
  }
  ~silent_port() { ::close(fd); }
};

BOOST_AUTO_TEST_CASE(
    a_host_whose_service_never_answers_says_it_is_still_trying_and_stops_when_told) {
  silent_port silent;
  auto o = host_options(silent.port);
  o.request_timeout = 100ms;
  auto host =
      remote::spawn_remote_projection(sys, local, local_storage, tally::counting("orders"), o);
  // The host answers while it connects, and its status says why it waits.
  caf::scoped_actor self{sys};
  projection_status s;
  for (int i = 0; i < 200 && s.error.empty(); ++i) {
    bool answered = false;
    self->request(host, caf::duration{10s}, status_atom_v)
        .receive(
            [&](projection_status& x) {
              s = std::move(x);
              answered = true;
            },
            [&](caf::error& e) { BOOST_TEST_MESSAGE("status: " << sys.render(e)); });
    BOOST_REQUIRE_MESSAGE(answered, "the host does not answer while it connects");
    if (s.error.empty()) std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST(s.error.find(std::to_string(silent.port)) != std::string::npos, s.error);
  BOOST_TEST(s.error.find("still trying") != std::string::npos, s.error);
  BOOST_TEST(s.position == 0u);
  stop(host);
}

BOOST_AUTO_TEST_CASE(host_restart_resumes_from_checkpoint) {
  service.start(VARVE_SERVE, service_dir());
  auto c = client();
  fill(c, 5000, 500, 5);
  auto host = remote::spawn_remote_projection(sys, local, local_storage, tally::counting("orders"),
                                              host_options(service.port));
  BOOST_TEST(wait_for(host, 5000).handled == 5000u);
  stop(host);
  {
    caf::scoped_actor self{sys};  // the local storage actor committed what it had
    self->request(local_storage, caf::infinite, stats_atom_v)
        .receive([](const commit_stats&) {}, [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
    auto txn = local->read();
    BOOST_REQUIRE(txn.ok());
    auto cur = txn->cursor_state("orders");
    BOOST_REQUIRE(cur.ok() && cur->has_value());
    BOOST_TEST((*cur)->position == 5000u);
    BOOST_TEST((*cur)->state.find(R"("state":"stopped")") != std::string_view::npos,
               "stored state: " << (*cur)->state);
  }
  fill(c, 3000, 500, 5, "more");
  host = remote::spawn_remote_projection(sys, local, local_storage, tally::counting("orders"),
                                         host_options(service.port));
  auto s = wait_for(host, 8000);
  BOOST_TEST(s.handled == 3000u);  // only the new events
  stop(host);
  auto view = view_of(*local, "orders");
  BOOST_TEST(view.size() == 8000u + 5 + 5);
  BOOST_TEST(view["count/order-0"] == "1000");
  BOOST_TEST(view["count/more-0"] == "1000");
}

BOOST_AUTO_TEST_CASE(a_host_killed_with_sigkill_resumes_from_its_checkpoint) {
  service.start(VARVE_SERVE, service_dir());
  auto c = client();
  constexpr std::size_t first = 50000, more = 5000;
  fill(c, first, 100, 10);
  const auto host_dir = (dir / "host").string();
  child_process host;
  host.launch({VARVE_TEST_PEER, "host", host_dir, std::to_string(service.port), "orders"},
              "hosting");
  // The host's store, read from here while the host process writes it.
  std::shared_ptr<event_store> store = varve_test::open_store(varve_test::test_options(host_dir));
  auto checkpoint = [&] {
    auto txn = store->read();
    BOOST_REQUIRE(txn.ok());
    auto cur = txn->cursor("orders");
    BOOST_REQUIRE(cur.ok());
    return cur->value_or(0);
  };
  // Kill it with SIGKILL in the middle of its catch-up.
  for (int i = 0; i < 100000 && checkpoint() < first / 5; ++i)
    std::this_thread::sleep_for(200us);
  host.stop(SIGKILL);
  const auto killed_at = checkpoint();
  BOOST_TEST_MESSAGE("host killed at checkpoint " << killed_at << " of " << first);
  BOOST_TEST(killed_at >= first / 5);
  BOOST_TEST(killed_at < first);

  // Appends go on while it is dead; a new host process resumes.
  fill(c, more, 100, 5, "more");
  host.launch({VARVE_TEST_PEER, "host", host_dir, std::to_string(service.port), "orders"},
              "hosting");
  const auto deadline = clock_type::now() + 60s;
  while (checkpoint() < first + more && clock_type::now() < deadline)
    std::this_thread::sleep_for(1ms);
  BOOST_REQUIRE_EQUAL(checkpoint(), first + more);
  host.stop(SIGTERM);

  // Every event once: one row per position, and counts with no repeat.
  auto view = view_of(*store, "orders");
  BOOST_TEST(view.size() == first + more + 10 + 5);
  BOOST_TEST(view["count/order-0"] == "5000");
  BOOST_TEST(view["count/order-9"] == "5000");
  BOOST_TEST(view["count/more-0"] == "1000");
  BOOST_TEST(view["count/more-4"] == "1000");
}

BOOST_AUTO_TEST_CASE(commands_reach_a_served_aggregate_and_answer_as_in_process) {
  service.launch({VARVE_TEST_PEER, "serve", service_dir()});
  auto c = client({2000ms});  // a short timeout: the dead-service check below
  auto counters = remote::registry<tally::counter>(c, "counter");
  BOOST_REQUIRE_MESSAGE(counters.ok(), varve_test::describe(counters));

  auto first = remote::send_command(c, *counters, "a", tally::add{5});
  BOOST_REQUIRE_MESSAGE(first.ok(), varve_test::describe(first));
  BOOST_TEST(first->version == 1u);
  BOOST_TEST(first->events == 1u);
  auto second = remote::send_command(c, *counters, "a", tally::add{7});
  BOOST_REQUIRE(second.ok());
  BOOST_TEST(second->version == 2u);
  BOOST_TEST(second->position == 2u);
  auto events = c.read_stream("counter-a");
  BOOST_REQUIRE(events.ok());
  BOOST_REQUIRE_EQUAL(events->size(), 2u);
  BOOST_TEST((*events)[1].type == "added");

  // The same refusal in process: code and message.
  auto local_counters = spawn_registry<tally::counter>(sys, {local, local_storage, {}});
  std::optional<error> in_process;
  {
    caf::scoped_actor self{sys};
    self->request(local_counters, caf::infinite, command_atom_v, std::string("a"), tally::add{-1})
        .receive([](const command_reply&) {}, [&](caf::error& e) { in_process = error_from(e); });
  }
  caf::anon_send_exit(local_counters, caf::exit_reason::user_shutdown);
  BOOST_REQUIRE(in_process);
  auto refused = remote::send_command(c, *counters, "a", tally::add{-1});
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.err().code() == errc::rejected);
  BOOST_TEST(refused.err().code() == in_process->code());
  BOOST_TEST(refused.err().message() == in_process->message());

  // A forgotten stream refuses commands, over the wire too.
  BOOST_REQUIRE(c.shred("counter-a").ok());
  auto late = remote::send_command(c, *counters, "a", tally::add{1});
  BOOST_REQUIRE(!late.ok());
  BOOST_TEST(late.err().code() == errc::shredded);

  // An aggregate type the service does not serve: not_found, naming what it has.
  auto none = remote::registry<tally::counter>(c, "ledger");
  BOOST_REQUIRE(!none.ok());
  BOOST_TEST(none.err().code() == errc::not_found);
  BOOST_TEST(none.err().message().find("ledger") != std::string::npos);
  BOOST_TEST(none.err().message().find("counter") != std::string::npos);

  // The service dies: the command fails with unavailable, not a hang.
  service.stop(SIGKILL);
  auto gone = remote::send_command(c, *counters, "b", tally::add{1});
  BOOST_REQUIRE(!gone.ok());
  BOOST_TEST(gone.err().code() == errc::unavailable);
}

BOOST_AUTO_TEST_CASE(a_failed_store_gives_the_same_errors_as_in_process) {
  // In process: the fault, then a later write.
  BOOST_REQUIRE(local->append("s", expected_version::any(), make_events(1)).ok());
  testing_fail_next_commit(*local, EIO);
  std::vector<error> in_process;
  {
    caf::scoped_actor self{sys};
    for (int i = 0; i < 2; ++i)
      self->request(local_storage, caf::infinite, append_atom_v,
                    append_request{"s", expected_version::any(), make_events(1)})
          .receive([](const append_result&) {},
                   [&](caf::error& e) { in_process.push_back(error_from(e)); });
  }
  BOOST_REQUIRE_EQUAL(in_process.size(), 2u);
  BOOST_TEST(in_process[1].code() == errc::failed_state);

  // Across processes: a service whose store fails at its next commit.
  service.launch({VARVE_TEST_PEER, "serve", service_dir(), "--fail-next-commit"});
  auto c = client();
  auto fault = c.append("s", expected_version::any(), make_events(1));
  auto later = c.append("s", expected_version::any(), make_events(1));
  BOOST_REQUIRE(!fault.ok());
  BOOST_REQUIRE(!later.ok());
  BOOST_TEST(fault.err().code() == in_process[0].code());
  BOOST_TEST(later.err().code() == in_process[1].code());
  BOOST_TEST_MESSAGE("remote: " << fault.err().to_string() << " / " << later.err().to_string());
  // Commands meet the same failed store.
  auto counters = remote::registry<tally::counter>(c, "counter");
  BOOST_REQUIRE(counters.ok());
  auto cmd = remote::send_command(c, *counters, "x", tally::add{1});
  BOOST_REQUIRE(!cmd.ok());
  BOOST_TEST(cmd.err().code() == errc::failed_state);
  // Reads go on; stats say the store failed.
  BOOST_TEST(c.read_log(1).ok());
  auto stats = c.stats();
  BOOST_REQUIRE(stats.ok());
  BOOST_TEST(stats->failed);
}

BOOST_AUTO_TEST_CASE(queries_and_conditional_appends_across_processes_answer_as_in_process) {
  service.start(VARVE_SERVE, service_dir());
  auto c = client();
  // Courses and subscriptions, with tags; and untagged noise between them.
  for (int i = 0; i < 60; ++i) {
    const std::string course = "course:c" + std::to_string(i % 3);
    const std::string student = "student:s" + std::to_string(i % 7);
    std::vector<new_event> evs{tagged("subscribed", {course, student}),
                               tagged("noted", {}, "noise")};
    BOOST_REQUIRE(
        c.append("subscription-" + std::to_string(i), expected_version::no_stream(), std::move(evs))
            .ok());
  }
  query q;
  q.items.push_back(query_item{{"subscribed"}, {"course:c1"}, {}});
  q.items.push_back(query_item{{}, {"student:s3"}, {}});

  // The same answer as a reader of the service's store in this process.
  auto local_reader = varve_test::open_store(varve_test::test_options(service_dir()));
  auto expected = local_reader->read_query(q, 1, direction::forward, SIZE_MAX);
  BOOST_REQUIRE(expected.ok());
  BOOST_REQUIRE(!expected->empty());
  auto remote = c.read_query(q);
  BOOST_REQUIRE_MESSAGE(remote.ok(), varve_test::describe(remote));
  BOOST_TEST(positions_of(*remote) == positions_of(*expected), boost::test_tools::per_element());
  BOOST_TEST(remote->front().tags == expected->front().tags, boost::test_tools::per_element());
  BOOST_TEST(remote->front().stream == expected->front().stream);
  auto newest = c.read_query(q, from_end, direction::backward, 2);
  BOOST_REQUIRE(newest.ok());
  BOOST_REQUIRE_EQUAL(newest->size(), 2u);
  BOOST_TEST(newest->front().position == expected->back().position);
  auto page = c.read_query(q, (*expected)[2].position, direction::forward, 3);
  BOOST_REQUIRE(page.ok());
  BOOST_REQUIRE_EQUAL(page->size(), 3u);
  BOOST_TEST(page->front().position == (*expected)[2].position);

  // A read from past the head covers nothing past the head: positions that
  // do not exist yet were not seen.
  auto beyond = c.read_query_batch(q, 100000, 5);
  BOOST_REQUIRE(beyond.ok());
  BOOST_TEST(beyond->events.empty());
  BOOST_TEST(beyond->covered <= beyond->head);

  // A decision: read its boundary, append under it.
  auto seen = c.read_query_batch(q);
  BOOST_REQUIRE(seen.ok());
  BOOST_TEST(seen->covered == seen->head);
  BOOST_TEST(seen->events.size() == expected->size());
  auto won = c.append({append_request{"subscription-x",
                                      expected_version::no_stream(),
                                      {tagged("subscribed", {"course:c1", "student:s9"})}}},
                      append_condition{q, seen->covered});
  BOOST_REQUIRE_MESSAGE(won.ok(), varve_test::describe(won));
  const global_position winner = won->front().first_position;
  // The same decision again, on what it read before: the event just written
  // matches, so it fails, names it, and writes nothing.
  auto lost = c.append({append_request{"subscription-y",
                                       expected_version::no_stream(),
                                       {tagged("subscribed", {"course:c1", "student:s8"})}}},
                       append_condition{q, seen->covered});
  BOOST_REQUIRE(!lost.ok());
  BOOST_TEST(lost.err().code() == errc::wrong_expected_version);
  BOOST_TEST_MESSAGE("conflict: " << lost.err().message());
  BOOST_TEST(lost.err().message().find(std::to_string(winner)) != std::string::npos);
  auto stats = c.stats();
  BOOST_REQUIRE(stats.ok());
  BOOST_TEST(stats->head == winner);
  // An event that does not match the query does not stand in the way.
  query other;
  other.items.push_back(query_item{{"subscribed"}, {"course:c2"}, {}});
  auto free = c.append({append_request{"subscription-z",
                                       expected_version::no_stream(),
                                       {tagged("subscribed", {"course:c2", "student:s8"})}}},
                       append_condition{other, winner});
  BOOST_REQUIRE_MESSAGE(free.ok(), varve_test::describe(free));

  // A query term over its limit, or empty: invalid_argument, as in process.
  query bad;
  bad.items.push_back(query_item{{}, {""}, {}});
  auto refused = c.read_query(bad);
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.err().code() == errc::invalid_argument);
  auto refused_append =
      c.append({append_request{"subscription-w", expected_version::any(), make_events(1)}},
               append_condition{bad, {}});
  BOOST_REQUIRE(!refused_append.ok());
  BOOST_TEST(refused_append.err().code() == errc::invalid_argument);
  auto after = c.stats();
  BOOST_REQUIRE(after.ok());
  BOOST_TEST(after->head == free->front().last_position);
}

BOOST_AUTO_TEST_CASE(remote_decisions_racing_for_one_user_name_let_exactly_one_win) {
  service.start(VARVE_SERVE, service_dir());
  constexpr int clients = 8, names = 25;
  std::vector<remote::client> cs;
  for (int i = 0; i < clients; ++i)
    cs.push_back(client());
  for (int n = 0; n < names; ++n) {
    const std::string name = "name:user" + std::to_string(n);
    query q;
    q.items.push_back(query_item{{"name-claimed"}, {name}, {}});
    // Each client reads the boundary, waits until all have read, then
    // claims the name under "nothing matching after what I read".
    std::atomic<int> read{0};
    std::vector<std::optional<error>> outcome(clients);
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i)
      threads.emplace_back([&, i] {
        auto seen = cs[i].read_query_batch(q);
        ++read;
        while (read < clients)
          std::this_thread::yield();
        if (!seen.ok()) {
          outcome[i] = seen.err();
          return;
        }
        if (!seen->events.empty()) {
          outcome[i] = error{errc::invalid_argument, "the name was taken before any claim"};
          return;
        }
        auto r =
            cs[i].append({append_request{"account-" + std::to_string(n) + "-" + std::to_string(i),
                                         expected_version::no_stream(),
                                         {tagged("name-claimed", {name})}}},
                         append_condition{q, seen->covered});
        if (!r.ok()) outcome[i] = r.err();
      });
    for (auto& t : threads)
      t.join();
    int winners = 0;
    for (const auto& o : outcome) {
      if (!o) {
        ++winners;
        continue;
      }
      BOOST_TEST(o->code() == errc::wrong_expected_version, o->to_string());
    }
    BOOST_TEST(winners == 1, "name " << n << ": " << winners << " winners");
    auto claims = cs[0].read_query(q);
    BOOST_REQUIRE(claims.ok());
    BOOST_TEST(claims->size() == 1u, "name " << n);
  }
}

BOOST_AUTO_TEST_SUITE_END()
