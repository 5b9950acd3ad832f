// The log sources the projection conformance suite runs against, each with
// the same operations, so that one test body checks both:
//
// - in_process: the log is the projection's own store, written through its
//   storage actor (spawn_projection);
// - remote_service: the log is a store service in ANOTHER PROCESS
//   (varve_serve on loopback), written through varve::remote's client; the
//   projection runs here with its view and cursor in a store of this process
//   (spawn_remote_projection).
//
// Both give: append (test events, or events of the test's own) / shred on the log, its head, spawn
// a projection or a manager of projections, and the projection's own store (views, cursors, control
// requests) with its storage actor.
#pragma once

#include <caf/scoped_actor.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <varve/projections/manager.hpp>
#include <varve/remote/client.hpp>
#include <varve/remote/projection_host.hpp>
#include <varve/remote/service.hpp>
#include <vector>

#include "../actors/actor_fixture.hpp"
#include "../remote/service_process.hpp"

namespace conformance {

using namespace varve;
using namespace std::chrono_literals;

struct remote_config : varve_test::actor_config {
  remote_config() { remote::configure_remote(*this); }
};

/// What both sources share: an actor system and the projection's own store
/// (view, cursor, dead letters, control requests) with its storage actor.
struct projection_home {
  varve_test::temp_dir dir;
  std::shared_ptr<event_store> own;
  remote_config cfg;
  caf::actor_system sys{cfg};
  storage_actor own_storage;
  std::vector<caf::actor> spawned;  ///< stopped at the end, should a test not have

  projection_home() {
    own = varve_test::open_store(varve_test::test_options(dir / "own"));
    own_storage = spawn_storage(sys, own);
  }
  ~projection_home() {
    for (const auto& a : spawned)
      caf::anon_send_exit(a, caf::exit_reason::kill);
    caf::anon_send_exit(own_storage, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
  }
  template <class Handle>
  Handle track(Handle h) {
    spawned.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }

  /// Waits until the storage actor of the projection's store has committed
  /// every write sent to it before now.
  void settle_writes() {
    caf::scoped_actor self{sys};
    self->request(own_storage, caf::infinite, stats_atom_v)
        .receive([](const commit_stats&) {}, [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
  }
};

/// The log is the projection's own store.
struct in_process : projection_home {
  static constexpr const char* name = "in process";

  void append(const std::string& stream, std::size_t n, const std::string& prefix = "e") {
    append_events(stream, varve_test::make_events(n, prefix));
  }
  void append_events(const std::string& stream, std::vector<new_event> events) {
    caf::scoped_actor self{sys};
    self->request(own_storage, caf::infinite, append_atom_v,
                  append_request{stream, expected_version::any(), std::move(events)})
        .receive([](const append_result&) {}, [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
  }
  void shred(const std::string& stream) {
    caf::scoped_actor self{sys};
    self->request(own_storage, caf::infinite, shred_atom_v, stream)
        .receive([](std::uint64_t) {}, [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
  }
  global_position head() {
    auto txn = own->read();
    BOOST_REQUIRE(txn.ok());
    return txn->head();
  }
  projection_actor spawn(projection_spec spec) {
    return track(spawn_projection(sys, own, own_storage, std::move(spec)));
  }
  projection_manager manage(std::vector<projection_spec> specs,
                            std::chrono::milliseconds poll = 5ms) {
    return track(spawn_projection_manager(sys, own, own_storage, std::move(specs), poll));
  }
};

/// The log is a store service in another process.
struct remote_service : projection_home {
  static constexpr const char* name = "remote service in another process";
  varve_test::child_process service;
  std::optional<remote::client> client;

  remote_service() {
    service.start(VARVE_SERVE, (dir / "service").string());
    auto c = remote::client::open(sys, "127.0.0.1", service.port);
    BOOST_REQUIRE_MESSAGE(c.ok(), "connect: " << varve_test::describe(c));
    client.emplace(std::move(c).value());
  }
  ~remote_service() { service.stop(SIGKILL); }

  remote::remote_projection_options options() const {
    remote::remote_projection_options o;
    o.port = service.port;
    o.request_timeout = 5000ms;
    o.min_backoff = 20ms;
    o.max_backoff = 200ms;
    return o;
  }
  void append(const std::string& stream, std::size_t n, const std::string& prefix = "e") {
    append_events(stream, varve_test::make_events(n, prefix));
  }
  void append_events(const std::string& stream, std::vector<new_event> events) {
    auto r = client->append(stream, expected_version::any(), std::move(events));
    BOOST_REQUIRE_MESSAGE(r.ok(), "append: " << varve_test::describe(r));
  }
  void shred(const std::string& stream) {
    auto r = client->shred(stream);
    BOOST_REQUIRE_MESSAGE(r.ok(), "shred: " << varve_test::describe(r));
  }
  global_position head() {
    auto s = client->stats();
    BOOST_REQUIRE_MESSAGE(s.ok(), "stats: " << varve_test::describe(s));
    return s->head;
  }
  projection_actor spawn(projection_spec spec) {
    return track(
        remote::spawn_remote_projection(sys, own, own_storage, std::move(spec), options()));
  }
  projection_manager manage(std::vector<projection_spec> specs,
                            std::chrono::milliseconds poll = 5ms) {
    return track(spawn_projection_manager(sys, own, own_storage, std::move(specs),
                                          remote::remote_projections(own, own_storage, options()),
                                          poll));
  }
};

using sources = std::tuple<in_process, remote_service>;

}  // namespace conformance
