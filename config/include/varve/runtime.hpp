// varve::runtime: a Varve application in one object. It opens the store,
// spawns the storage actor, the projection manager with its projections,
// a registry per aggregate type and a decider per decision model (on first
// use), and on destruction stops them in order: registries and deciders,
// projections (their last checkpoints are committed), the storage actor,
// then the actor system.
//
//   #include <varve/runtime.hpp>
//
//   int main() {
//     auto rt = varve::runtime::open({.store = {.directory = "var/app"},
//                                     .projections = {balances()}});
//     if (!rt) return std::puts(rt.err().to_string().c_str()), 1;
//     auto reply = rt->execute<account>("alice", deposit{10});   // blocks
//     if (!reply) std::puts(reply.err().to_string().c_str());
//     rt->wait_for("balances", reply->position);                 // read your writes
//     auto balance = rt->view<std::int64_t>("balances", "account-alice");
//   }  // ~runtime: an ordered shutdown
//
// Commands are sent as local_command (varve/actors/aggregate.hpp): in one
// process they need no CAF inspect overload and no type id. Sending them to
// another process takes both (varve/remote/commands.hpp).
//
// Threads. Every member function may be called from any thread, at once,
// except open, shutdown, the move operations and the destructor. The
// blocking calls (execute, decide, wait_for, status, projections, commit_stats,
// append, shred and the projection controls) made from inside one of the
// runtime's actors (a projection's handler, an aggregate's decide) would
// wait for the thread they hold: they fail at once with invalid_argument.
// Do not wait on an execute_async or decide_async future there either (the
// wait would hold a scheduler thread, and nothing refuses it); send to
// registry<A>() or decider<D>() from your own actors instead.
//
// A moved-from runtime answers unavailable; store() is then null, and
// system() throws std::logic_error.
//
// Shutdown never hangs: the runtime stops what it spawned, answers what is
// in flight (errc::unavailable), and does not wait for actors that others
// spawned on system() (they are abandoned). A command in flight at shutdown
// may or may not have been applied.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <typeindex>
#include <vector>

#include <varve/actors/aggregate.hpp>
#include <varve/actors/decider.hpp>
#include <varve/actors/storage_actor.hpp>
#include <varve/projections/json_view.hpp>
#include <varve/projections/manager.hpp>

namespace varve {

struct varve_config;

/// Everything a runtime is made of. Only the store's directory has no
/// default.
struct runtime_options {
  /// The store (its directory must be set; created when missing).
  options store{};
  storage_config storage{};
  aggregate_options aggregates{};
  /// Retries of decision models (decide<D>) after a conflict.
  decision_options decisions{};
  /// The projections to run, started by open() (their names must differ).
  std::vector<projection_spec> projections{};
  /// Threads of the actor system's scheduler (policy "sharing"): 1 is what
  /// measured best for the storage actor on two cores.
  std::size_t threads = 1;
  /// How often the projection manager looks for control requests and for
  /// appends by other processes.
  std::chrono::milliseconds poll_interval{500};
};

class runtime {
 public:
  /// Opens the store of `options` and starts the actors. Errors: the
  /// store's (invalid_argument for a missing directory or bad options,
  /// io_error, format_version, auth_failed, ...), and invalid_argument for
  /// two projections with one name. Nothing is left running on failure.
  static result<runtime> open(runtime_options options);

  /// The same from a program's configuration (varve/config/varve_config.hpp,
  /// after varve::configure): its store, storage, aggregate and projection
  /// options (applied to each of `projections`) and its scheduler. `cfg`
  /// must outlive the runtime.
  static result<runtime> open(varve_config& cfg, std::vector<projection_spec> projections = {});

  runtime(runtime&&) noexcept;
  runtime& operator=(runtime&&) noexcept;
  ~runtime();

  /// Stops everything, in order (see the top of this file). Idempotent;
  /// after it, every call fails with errc::unavailable.
  void shutdown();

  /// Sends `cmd` (the command variant, or one alternative) to aggregate
  /// `id` of type A and waits for the answer: the command_reply, or the
  /// error (errc::rejected with the aggregate's reason, wrong_expected_version
  /// after the retries, shredded, unavailable when the runtime stops first,
  /// timeout after `timeout`, in which case it may still be applied).
  template <aggregate A>
  result<command_reply> execute(std::string_view id, typename A::command cmd,
                                std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    if (auto ok = can_block(); !ok) return std::move(ok).err();
    return execute_async<A>(id, std::move(cmd), timeout).get();
  }

  /// The same without waiting: the answer comes through the future, which
  /// is always set (at the latest after `timeout`, or at shutdown).
  template <aggregate A>
  std::future<result<command_reply>> execute_async(
      std::string_view id, typename A::command cmd,
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    return ask<command_reply>(registry_handle(typeid(A), spawn_registry_of<A>),
                              caf::make_message(command_atom_v, std::string(id),
                                                local_command<typename A::command>{std::move(cmd)}),
                              timeout);
  }

  /// Runs a decision of decision model D (varve/actors/decision.hpp) on its
  /// decider (varve/actors/decider.hpp, spawned on first use) and waits for
  /// the answer: the decision_reply (where the events landed; position 0
  /// when decide() appended nothing), or the error (errc::rejected with the
  /// model's reason, invalid_argument for decided events the store refuses,
  /// wrong_expected_version after the retries, corruption or shredded for a
  /// boundary it cannot read, unavailable when the runtime stops first,
  /// timeout after `timeout`, in which case it may still be applied).
  template <decision_model D>
  result<decision_reply> decide(typename D::command cmd,
                                std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    if (auto ok = can_block(); !ok) return std::move(ok).err();
    return decide_async<D>(std::move(cmd), timeout).get();
  }

  /// The same without waiting: the answer comes through the future, which
  /// is always set (at the latest after `timeout`, or at shutdown). Do not
  /// wait on it from a thread of the runtime (a projection handler, an
  /// actor): unlike decide(), nothing refuses that wait.
  template <decision_model D>
  std::future<result<decision_reply>> decide_async(
      typename D::command cmd, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    return ask<decision_reply>(
        decider_handle(typeid(D), spawn_decider_of<D>),
        caf::make_message(command_atom_v, local_command<typename D::command>{std::move(cmd)}),
        timeout);
  }

  /// The decider of decision model D (spawned on first use), for actors
  /// that send commands themselves; invalid after shutdown.
  template <decision_model D>
  decider_actor<D> decider() {
    return caf::actor_cast<decider_actor<D>>(decider_handle(typeid(D), spawn_decider_of<D>));
  }

  /// The registry of aggregate type A (spawned on first use), for actors
  /// that send commands themselves; invalid after shutdown.
  template <aggregate A>
  registry_actor<A> registry() {
    return caf::actor_cast<registry_actor<A>>(registry_handle(typeid(A), spawn_registry_of<A>));
  }

  /// Waits until projection `name` has handled every event up to
  /// `position` (a command_reply's position): for an exactly-once
  /// projection its view then shows them; an at-least-once one has handled
  /// them. Returns at once for position 0. Errors: not_found (no such
  /// projection), unavailable (it failed or stopped; the message says why),
  /// timeout.
  result<void> wait_for(std::string_view name, global_position position,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));

  /// The status of projection `name` (not_found when there is none), or of
  /// every projection in the order given to open().
  result<projection_status> status(std::string_view name);
  result<std::vector<projection_status>> projections();

  /// The storage actor's counters (commits, events, commit latencies).
  /// Errors: unavailable after shutdown.
  result<varve::commit_stats> commit_stats();

  /// Appends events to a stream directly, through the storage actor (in
  /// its next group commit), not through an aggregate: e.g. requests or
  /// integration events. The answer and errors are the store's append
  /// (wrong_expected_version, invalid_argument, shredded, ...); unavailable
  /// after shutdown.
  result<append_result> append(append_request request);

  /// Crypto-shreds `stream` through the storage actor: its data key is
  /// destroyed, its events read back as envelopes marked shredded, and it
  /// takes no more events. Returns its version. Errors: not_found,
  /// invalid_argument (a plain store), the store's; unavailable after
  /// shutdown. An aggregate of the stream refuses commands from then on.
  result<stream_version> shred(std::string_view stream);

  /// Controls projection `name` as `varvectl projections` does: pause
  /// (kept across a restart), resume, rebuild (view cleared, from the
  /// start), reset (the cursor to `position`, the view kept). The status
  /// after it, or not_found; unavailable after shutdown.
  result<projection_status> pause(std::string_view name);
  result<projection_status> resume(std::string_view name);
  result<projection_status> rebuild(std::string_view name);
  result<projection_status> reset(std::string_view name, global_position position);

  /// The JSON value under `key` in `view` (as put_json wrote it),
  /// committed; std::nullopt when the key is absent. Errors: corruption
  /// when the value is not a T in JSON, and the store's read errors.
  template <class T>
  result<std::optional<T>> view(std::string_view view, std::string_view key) const {
    if (!store()) return error{errc::unavailable, "the runtime was moved from"};
    auto txn = store()->read();
    if (!txn) return std::move(txn).err();
    return read_json<T>(*txn, view, key);
  }

  /// The store, for reads (zero-copy, in read transactions). Writes go
  /// through storage(). Shared: it stays open while a copy lives.
  const std::shared_ptr<const event_store>& store() const;
  /// The actor system, e.g. to spawn actors of the application's own; the
  /// runtime does not wait for them at shutdown.
  caf::actor_system& system();
  storage_actor storage() const;
  projection_manager manager() const;

 private:
  struct impl;
  using registry_spawner = caf::actor (*)(caf::actor_system&, const aggregate_context&);
  using decider_spawner = caf::actor (*)(caf::actor_system&, const decision_context&);

  explicit runtime(std::unique_ptr<impl> p);
  /// Open, not shut down.
  bool running() const;
  /// Whether a blocking call may wait here: unavailable after shutdown,
  /// invalid_argument on one of the runtime's own threads.
  result<void> can_block() const;

  template <aggregate A>
  static caf::actor spawn_registry_of(caf::actor_system& sys, const aggregate_context& ctx) {
    return caf::actor_cast<caf::actor>(spawn_registry<A>(sys, ctx));
  }
  template <decision_model D>
  static caf::actor spawn_decider_of(caf::actor_system& sys, const decision_context& ctx) {
    return caf::actor_cast<caf::actor>(spawn_decider<D>(sys, ctx));
  }
  /// The registry for the aggregate type `type`, spawned with `spawn` the
  /// first time; an invalid handle after shutdown.
  caf::actor registry_handle(std::type_index type, registry_spawner spawn);
  /// The decider of the decision model `type`, likewise.
  caf::actor decider_handle(std::type_index type, decider_spawner spawn);
  /// Sends `request` to `to` from a short-lived actor and sets the future
  /// with the answer (a Reply: command_reply or decision_reply), or
  /// unavailable when `to` is down (or invalid), or timeout.
  template <class Reply>
  std::future<result<Reply>> ask(caf::actor to, caf::message request,
                                 std::chrono::milliseconds timeout);

  std::unique_ptr<impl> impl_;
};

}  // namespace varve
