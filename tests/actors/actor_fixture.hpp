// Test support for the actor suites: an actor system configured as Varve
// runs it (sharing scheduler, Varve's types registered) over a real store in
// a fresh temporary directory, with its storage actor.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <memory>

#include "../storage/temp_dir.hpp"
#include "varve/actors/error.hpp"
#include "varve/actors/storage_actor.hpp"
#include "varve/projections/projection.hpp"
#include "varve/projections/type_ids.hpp"

namespace varve_test {

struct actor_config : caf::actor_system_config {
  actor_config() {
    set("scheduler.policy", caf::atom("sharing"));
    set("scheduler.max-threads", 2);
    set("logger.console", caf::atom("none"));
    add_message_types<caf::id_block::varve>();
    add_message_types<caf::id_block::varve_projections>();
    varve::add_error_category(*this);
  }
};

/// A store, an actor system and the store's storage actor; stops the actor
/// and waits for every actor at the end (a hang fails the test by timeout).
struct actor_fixture {
  temp_dir dir;
  varve::options opts;
  std::shared_ptr<varve::event_store> store;
  actor_config cfg;
  caf::actor_system sys{cfg};
  varve::storage_actor storage;

  explicit actor_fixture(varve::durability sync = varve::durability::no_sync,
                         varve::storage_config batching = {}) {
    opts = test_options(dir / "store");
    opts.sync = sync;
    store = open_store(opts);
    storage = varve::spawn_storage(sys, store, batching);
  }
  ~actor_fixture() {
    if (storage) caf::anon_send_exit(storage, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
  }

  /// Stops the storage actor and closes the store, so that the test can
  /// open it again (one handle per store per process).
  void close_store() {
    caf::scoped_actor self{sys};
    caf::anon_send_exit(storage, caf::exit_reason::user_shutdown);
    self->wait_for(storage);
    storage = nullptr;
    BOOST_REQUIRE_EQUAL(store.use_count(), 1);
    store.reset();
  }

  varve::read_transaction read() const {
    auto tx = store->read();
    BOOST_REQUIRE_MESSAGE(tx.ok(), "read: " << describe(tx));
    return std::move(tx).value();
  }

  varve::commit_stats stats() {
    caf::scoped_actor self{sys};
    varve::commit_stats out;
    self->request(storage, caf::infinite, varve::stats_atom_v)
        .receive([&](const varve::commit_stats& s) { out = s; },
                 [&](caf::error& e) { BOOST_FAIL("stats: " << sys.render(e)); });
    return out;
  }
};

/// The status of projection `p` (anything answering status_atom with a
/// projection_status); fails the test on an error.
template <class Handle>
varve::projection_status projection_status_of(caf::actor_system& sys, const Handle& p) {
  caf::scoped_actor self{sys};
  varve::projection_status out;
  self->request(p, caf::infinite, varve::status_atom_v)
      .receive([&](varve::projection_status& s) { out = std::move(s); },
               [&](caf::error& e) { BOOST_FAIL("status: " << sys.render(e)); });
  return out;
}

/// A request for one event appended to `stream` under `expected`.
inline varve::append_request one_event(std::string stream, varve::expected_version expected,
                                       std::string payload = "x") {
  return varve::append_request{std::move(stream), expected, {make_event("test-event", payload)}};
}

}  // namespace varve_test
