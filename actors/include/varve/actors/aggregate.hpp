// Aggregates: one actor per stream, behind a registry per aggregate type.
//
// An aggregate type is a plain struct of static functions, a pure fold:
//
//   struct account {
//     static constexpr std::string_view category = "account";   // streams "account-<id>"
//     struct state { ... };
//     using command = std::variant<open, deposit, withdraw>;
//     using event = std::variant<opened, deposited, withdrawn>;
//     static void apply(state&, const event&);
//     static varve::decision<event> decide(const state&, const command&);
//     // optional: snapshots of `state` (needs an inspect overload for it)
//     static constexpr std::uint32_t snapshot_schema = 1;
//     // optional: using codec = my_codec;   (default: default_codec<event>)
//   };
//
// decide() runs without I/O and returns the events to append, or an error
// (use errc::rejected for a broken domain rule). The aggregate actor of a
// stream hydrates from the latest snapshot plus the events after it, handles
// one command at a time (later commands wait in its mailbox), appends with
// exact(version), and on a version conflict reloads the new events and
// decides again, up to `max_retries` times, before answering with the
// conflict.
//
// An event it cannot read stops the hydration there: one the codec does not
// decode (errc::corruption), or one the store refuses (the store's error,
// e.g. errc::corruption or errc::auth_failed). The actor stays up and
// answers each command (and stats request) with that error, which names the
// stream, the event's version and position (and its type when the record
// itself reads), after trying again to read on from the last event it
// applied; it decides nothing meanwhile.
//
// The registry routes (command_atom, id, command) to the stream's actor,
// spawning it on demand; an actor idle for `idle_timeout` passivates (quits),
// at most `max_alive` live at once (the least recently used goes first), and
// one that crashed is rebuilt from the log on the next command. A command
// in flight in an actor that crashes is answered with errc::unavailable: it
// may or may not have been appended.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>

#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "varve/actors/codec.hpp"
#include "varve/actors/error.hpp"
#include "varve/actors/log.hpp"
#include "varve/actors/storage_actor.hpp"

namespace varve {

/// What decide() returns: the new events, or why the command is refused.
template <class Event>
using decision = result<std::vector<Event>>;

/// The answer to a command that succeeded.
struct command_reply {
  stream_version version = 0;    ///< the stream's version after the command
  global_position position = 0;  ///< position of the last event appended (0: none)
  std::uint32_t events = 0;      ///< how many events the command appended
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, command_reply& x) {
  return f(caf::meta::type_name("varve::command_reply"), x.version, x.position, x.events);
}

/// Counters of a registry.
struct registry_stats {
  std::uint64_t alive = 0;
  std::uint64_t spawned = 0;
  std::uint64_t passivated = 0;
  std::uint64_t crashed = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, registry_stats& x) {
  return f(caf::meta::type_name("varve::registry_stats"), x.alive, x.spawned, x.passivated,
           x.crashed);
}

/// What an aggregate actor reports about itself.
struct aggregate_info {
  std::string stream;
  stream_version version = 0;
  stream_version snapshot_version = 0;  ///< version of the snapshot it hydrated from (0: none)
  std::uint64_t replayed = 0;           ///< events applied while hydrating, after the snapshot
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, aggregate_info& x) {
  return f(caf::meta::type_name("varve::aggregate_info"), x.stream, x.version, x.snapshot_version,
           x.replayed);
}

template <class A>
concept aggregate = requires(typename A::state& s, const typename A::state& cs,
                             const typename A::event& e, const typename A::command& c) {
  { A::category } -> std::convertible_to<std::string_view>;
  A::apply(s, e);
  { A::decide(cs, c) } -> std::same_as<decision<typename A::event>>;
};

struct aggregate_options {
  unsigned max_retries = 3;                       ///< reloads after a conflict before giving up
  std::uint64_t snapshot_every = 0;               ///< snapshot every N versions; 0: never
  std::chrono::milliseconds idle_timeout{60000};  ///< passivate after this long without commands
  std::size_t max_alive = 10000;                  ///< most aggregate actors alive per registry
};

/// What aggregate actors need: the store (for zero-copy reads in this
/// process) and its storage actor (for writes).
struct aggregate_context {
  std::shared_ptr<const event_store> store;  ///< read-only: writes go through `storage`
  storage_actor storage;
  aggregate_options options;
};

namespace detail {

/// The command types of an aggregate: the alternatives of a std::variant,
/// or the one type.
template <class T>
struct alternatives {
  using type = caf::detail::type_list<T>;
};
template <class... Ts>
struct alternatives<std::variant<Ts...>> {
  using type = caf::detail::type_list<Ts...>;
};

template <class List>
struct aggregate_interface;
template <class... Cs>
struct aggregate_interface<caf::detail::type_list<Cs...>> {
  using type =
      caf::typed_actor<typename caf::replies_to<command_atom, Cs>::template with<command_reply>...,
                       caf::replies_to<stats_atom>::with<aggregate_info>,
                       caf::reacts_to<passivate_atom>,
                       caf::reacts_to<passivate_atom, std::uint64_t>>;
};

template <class List>
struct registry_interface;
template <class... Cs>
struct registry_interface<caf::detail::type_list<Cs...>> {
  using type = caf::typed_actor<
      typename caf::replies_to<command_atom, std::string, Cs>::template with<command_reply>...,
      caf::replies_to<stats_atom>::with<registry_stats>>;
};

template <class A>
using commands_of = typename alternatives<typename A::command>::type;

}  // namespace detail

/// One stream's aggregate actor. It takes (command_atom, C) for each command
/// type C of the aggregate (each alternative of A::command), answers
/// stats_atom with its aggregate_info, and passivates on passivate_atom
/// (after the commands before it; with a tick: the internal idle check).
/// Command types travel in messages: each needs an inspect overload.
template <class A>
using aggregate_actor = typename detail::aggregate_interface<detail::commands_of<A>>::type;

/// The registry of an aggregate type: (command_atom, id, C) for each command
/// type C, and stats_atom.
template <class A>
using registry_actor = typename detail::registry_interface<detail::commands_of<A>>::type;

/// The stream of aggregate `id`: "<category>-<id>".
template <aggregate A>
std::string stream_of(std::string_view id) {
  std::string out(A::category);
  out += '-';
  out += id;
  return out;
}

namespace detail {

template <class A>
struct codec_of {
  using type = default_codec<typename A::event>;
};
template <class A>
requires requires {
  typename A::codec;
}
struct codec_of<A> {
  using type = typename A::codec;
};

template <class A>
constexpr bool has_snapshots = requires {
  A::snapshot_schema;
};

template <aggregate A>
struct aggregate_state {
  static inline const char* name = "varve.aggregate";
  std::string stream;
  aggregate_context ctx;
  typename A::state state{};
  stream_version version = 0;
  stream_version snapshot_version = 0;  // of the newest snapshot written or loaded
  stream_version hydrated_from = 0;     // version of the snapshot loaded at start
  std::uint64_t replayed = 0;           // events applied while hydrating
  std::chrono::steady_clock::time_point last_active;
  std::uint64_t idle_tick = 0;
  bool idle_timer = false;
  bool shredded = false;  // the stream was shredded: every command is refused
  bool hydrated = false;  // applied every event of the stream it has read
};

template <aggregate A>
using aggregate_pointer =
    typename aggregate_actor<A>::template stateful_pointer<aggregate_state<A>>;

/// Applies the stream's events after `st.version`; on failure the state
/// stays at the last event applied. Errors name the stream and the version
/// of the event that cannot be read: corruption when the codec does not
/// decode it (with its position and type), or the store's own error for its
/// record (whose message names the position), e.g. corruption, auth_failed.
template <aggregate A>
result<void> catch_up(aggregate_state<A>& st, std::uint64_t* applied = nullptr) {
  using codec = typename codec_of<A>::type;
  auto txn = st.ctx.store->read();
  if (!txn) return std::move(txn).err();
  std::optional<error> failure;
  auto apply = [&](const event_view& v) {
    if (v.shredded) {  // the stream's data is gone: no state to rebuild
      st.shredded = true;
      st.version = v.version;
      return true;
    }
    auto e = codec::decode(v.type, v.payload);
    if (!e) {
      failure = error{errc::corruption, "stream '" + st.stream + "' version " +
                                            std::to_string(v.version) + " (position " +
                                            std::to_string(v.position) + "): the event of type '" +
                                            std::string(v.type) + "' does not decode"};
      return false;
    }
    A::apply(st.state, *e);
    st.version = v.version;
    if (applied) ++*applied;
    return true;
  };
  auto n = txn->scan_stream(st.stream, st.version + 1, direction::forward, SIZE_MAX, apply);
  if (failure) return std::move(*failure);
  if (!n && n.err().code() != errc::not_found)
    return error{n.err().code(), "stream '" + st.stream + "' version " +
                                     std::to_string(st.version + 1) + ": " + n.err().message()};
  return {};
}

/// Reads on from the last event applied, unless every event read so far
/// was applied; called at start and before each request, so that an
/// aggregate whose stream it cannot read answers each request with why.
template <aggregate A>
result<void> hydrate(aggregate_state<A>& st) {
  if (st.hydrated) return {};
  auto r = catch_up<A>(st, &st.replayed);
  st.hydrated = r.ok();
  return r;
}

/// Loads the latest snapshot, when the aggregate keeps them and it decodes.
template <aggregate A>
void load_snapshot(aggregate_state<A>& st) {
  if constexpr (has_snapshots<A>) {
    auto txn = st.ctx.store->read();
    if (!txn) return;
    auto snap = txn->snapshot(st.stream);
    if (!snap || !*snap) return;
    if ((*snap)->schema != A::snapshot_schema) {
      log(log_level::warning, "aggregate",
          "ignoring the snapshot of '" + st.stream + "': schema " +
              std::to_string((*snap)->schema) + ", expected " + std::to_string(A::snapshot_schema));
      return;
    }
    auto state = load<typename A::state>((*snap)->bytes);
    if (!state) {
      log(log_level::warning, "aggregate",
          "ignoring the snapshot of '" + st.stream + "': it does not decode");
      return;
    }
    st.state = std::move(*state);
    st.version = (*snap)->version;
    st.snapshot_version = st.version;
    st.hydrated_from = st.version;
  }
}

template <aggregate A>
void maybe_snapshot(aggregate_pointer<A> self) {
  if constexpr (has_snapshots<A>) {
    auto& st = self->state;
    const auto every = st.ctx.options.snapshot_every;
    if (every == 0 || st.version / every == st.snapshot_version / every) return;
    snapshot_update u{st.stream, st.version, A::snapshot_schema, {}};
    if (!save(st.state, u.bytes)) return;
    st.snapshot_version = st.version;
    write_request w;
    w.snapshots.push_back(std::move(u));
    self->request(st.ctx.storage, caf::infinite, write_atom_v, std::move(w))
        .then([](const std::vector<append_result>&) {},
              [stream = st.stream](caf::error& e) {
                log(log_level::warning, "aggregate",
                    "snapshot of '" + stream + "' not written: " + error_from(e).to_string());
              });
  } else {
    (void)self;
  }
}

template <aggregate A>
void arm_idle_timer(aggregate_pointer<A> self) {
  auto& st = self->state;
  st.last_active = std::chrono::steady_clock::now();
  if (st.idle_timer) return;
  st.idle_timer = true;
  self->delayed_send(self, st.ctx.options.idle_timeout, passivate_atom_v, ++st.idle_tick);
}

/// Decides on `cmd` against the current state and appends the outcome;
/// reloads and decides again after a conflict.
template <aggregate A>
void handle_command(aggregate_pointer<A> self, typename A::command cmd,
                    caf::typed_response_promise<command_reply> promise, unsigned attempt) {
  using codec = typename codec_of<A>::type;
  auto& st = self->state;
  if (auto r = hydrate<A>(st); !r) {
    promise.deliver(to_caf(r.err()));
    return;
  }
  if (st.shredded) {
    promise.deliver(make_error(errc::shredded,
                               "stream '" + st.stream + "' was shredded and takes no more events"));
    return;
  }
  auto events = A::decide(st.state, cmd);
  if (!events) {
    promise.deliver(to_caf(events.err()));
    return;
  }
  if (events->empty()) {
    promise.deliver(command_reply{st.version, 0, 0});
    return;
  }
  append_request req{st.stream, expected_version::exact(st.version), {}};
  req.events.reserve(events->size());
  for (const auto& e : *events) {
    new_event ne{codec::type_of(e), {}, {}, {}, {}};
    if (!codec::encode(e, ne.payload)) {
      promise.deliver(
          make_error(errc::invalid_argument, "an event of '" + st.stream + "' does not serialise"));
      return;
    }
    req.events.push_back(std::move(ne));
  }
  // await: later commands stay in the mailbox until this one is answered.
  self->request(st.ctx.storage, caf::infinite, append_atom_v, std::move(req))
      .await(
          [self, events = std::move(*events), promise](const append_result& r) mutable {
            auto& st = self->state;
            for (const auto& e : events)
              A::apply(st.state, e);
            st.version = r.last_version;
            maybe_snapshot<A>(self);
            promise.deliver(command_reply{r.last_version, r.last_position,
                                          static_cast<std::uint32_t>(events.size())});
          },
          [self, cmd = std::move(cmd), promise, attempt](caf::error& err) mutable {
            auto& st = self->state;
            if (error_from(err).code() == errc::wrong_expected_version &&
                attempt < st.ctx.options.max_retries) {
              if (auto r = catch_up<A>(st); !r) {
                st.hydrated = false;  // the next request reads on from here
                promise.deliver(to_caf(r.err()));
                return;
              }
              handle_command<A>(self, std::move(cmd), promise, attempt + 1);
              return;
            }
            promise.deliver(err);
          });
}

template <aggregate A, class... Cs>
typename aggregate_actor<A>::behavior_type aggregate_handlers(aggregate_pointer<A> self,
                                                              caf::detail::type_list<Cs...>);

template <aggregate A>
typename aggregate_actor<A>::behavior_type aggregate_behavior(aggregate_pointer<A> self,
                                                              std::string stream,
                                                              aggregate_context ctx) {
  auto& st = self->state;
  st.stream = std::move(stream);
  st.ctx = std::move(ctx);
  load_snapshot<A>(st);
  if (auto r = hydrate<A>(st); !r)  // each request will answer why
    log(log_level::error, "aggregate",
        "'" + st.stream + "' cannot hydrate: " + r.err().to_string());
  arm_idle_timer<A>(self);
  return aggregate_handlers<A>(self, commands_of<A>{});
}

template <aggregate A, class... Cs>
typename aggregate_actor<A>::behavior_type aggregate_handlers(aggregate_pointer<A> self,
                                                              caf::detail::type_list<Cs...>) {
  return {
      [self](command_atom, Cs& cmd) -> caf::result<command_reply> {
        auto promise = self->template make_response_promise<command_reply>();
        self->state.last_active = std::chrono::steady_clock::now();
        handle_command<A>(self, typename A::command{std::move(cmd)}, promise, 0);
        return promise;
      }...,
      [self](stats_atom) -> caf::result<aggregate_info> {
        auto& st = self->state;
        if (auto r = hydrate<A>(st); !r) return to_caf(r.err());
        return aggregate_info{st.stream, st.version, st.hydrated_from, st.replayed};
      },
      [self](passivate_atom) { self->quit(); },
      [self](passivate_atom, std::uint64_t tick) {
        auto& st = self->state;
        if (tick != st.idle_tick) return;
        st.idle_timer = false;
        const auto idle = std::chrono::steady_clock::now() - st.last_active;
        if (idle >= st.ctx.options.idle_timeout) {
          self->quit();
          return;
        }
        st.idle_timer = true;
        self->delayed_send(self, st.ctx.options.idle_timeout - idle, passivate_atom_v,
                           ++st.idle_tick);
      },
  };
}

template <aggregate A>
struct registry_state {
  static inline const char* name = "varve.registry";

  struct entry {
    aggregate_actor<A> actor;
    typename std::list<std::string>::iterator lru;
  };
  struct in_flight {
    std::string id;
    typename A::command command;
    caf::typed_response_promise<command_reply> promise;
    unsigned retried;  // bounces from actors that had quit
  };

  aggregate_context ctx;
  std::unordered_map<std::string, entry> alive;
  std::list<std::string> lru;  // most recently used first
  std::map<caf::actor_addr, std::string> ids;
  std::map<caf::actor_addr, std::map<std::uint64_t, in_flight>> pending;
  std::uint64_t next_request = 0;
  registry_stats stats;
};

template <aggregate A>
using registry_pointer = typename registry_actor<A>::template stateful_pointer<registry_state<A>>;

template <aggregate A>
aggregate_actor<A> actor_for(registry_pointer<A> self, const std::string& id) {
  auto& st = self->state;
  if (auto it = st.alive.find(id); it != st.alive.end()) {
    st.lru.splice(st.lru.begin(), st.lru, it->second.lru);
    return it->second.actor;
  }
  while (st.alive.size() >= st.ctx.options.max_alive && !st.lru.empty()) {
    auto victim = st.alive.find(st.lru.back());
    self->send(victim->second.actor, passivate_atom_v);
    st.ids.erase(victim->second.actor.address());
    st.lru.pop_back();
    st.alive.erase(victim);
    ++st.stats.passivated;
  }
  auto child = self->spawn(aggregate_behavior<A>, stream_of<A>(id), st.ctx);
  self->monitor(child);
  st.lru.push_front(id);
  st.alive.emplace(id, typename registry_state<A>::entry{child, st.lru.begin()});
  st.ids.emplace(child.address(), id);
  ++st.stats.spawned;
  return child;
}

/// The command as a std::variant, also when the aggregate has one command type.
template <aggregate A>
auto as_variant(const typename A::command& c) {
  if constexpr (is_variant<typename A::command>::value)
    return c;
  else
    return std::variant<typename A::command>{c};
}

template <aggregate A, class Command, class Take>
void send_command(registry_pointer<A> self, const aggregate_actor<A>& child, Command& cmd,
                  Take take);

/// Takes the aggregate actor at `addr` (gone) out of the live set, so that
/// its id gets a fresh actor; its entry in `ids` stays until its down
/// message.
template <aggregate A>
void retire(registry_pointer<A> self, const caf::actor_addr& addr) {
  auto& st = self->state;
  auto it = st.ids.find(addr);
  if (it == st.ids.end()) return;
  if (auto a = st.alive.find(it->second);
      a != st.alive.end() && a->second.actor.address() == addr) {
    st.lru.erase(a->second.lru);
    st.alive.erase(a);
  }
}

template <aggregate A>
void dispatch(registry_pointer<A> self, typename registry_state<A>::in_flight job) {
  auto& st = self->state;
  auto child = actor_for<A>(self, job.id);
  const auto addr = child.address();
  const auto key = st.next_request++;
  auto cmd = as_variant<A>(job.command);
  st.pending[addr].emplace(key, std::move(job));
  auto take = [self, addr, key]() -> std::optional<typename registry_state<A>::in_flight> {
    auto& pending = self->state.pending;
    auto p = pending.find(addr);
    if (p == pending.end()) return std::nullopt;
    auto j = p->second.find(key);
    if (j == p->second.end()) return std::nullopt;  // answered when the actor crashed
    auto out = std::move(j->second);
    p->second.erase(j);
    if (p->second.empty()) pending.erase(p);
    return out;
  };
  std::visit([&](auto& c) { send_command<A>(self, child, c, take); }, cmd);
}

template <aggregate A, class Command, class Take>
void send_command(registry_pointer<A> self, const aggregate_actor<A>& child, Command& cmd,
                  Take take) {
  self->request(child, caf::infinite, command_atom_v, std::move(cmd))
      .then(
          [take](const command_reply& reply) mutable {
            if (auto j = take()) j->promise.deliver(reply);
          },
          [self, take, addr = child.address()](caf::error& err) mutable {
            auto j = take();
            if (!j) return;
            // The actor had quit (passivated) before it took the command:
            // nothing was applied, so a fresh actor can take it. The bounce
            // may come before the actor's down message: forget it now, so
            // that the retry does not go to it again.
            if (err == caf::sec::request_receiver_down && j->retried < 3) {
              ++j->retried;
              retire<A>(self, addr);
              dispatch<A>(self, std::move(*j));
              return;
            }
            j->promise.deliver(err);
          });
}

template <aggregate A, class... Cs>
typename registry_actor<A>::behavior_type registry_handlers(registry_pointer<A> self,
                                                            caf::detail::type_list<Cs...>);

template <aggregate A>
typename registry_actor<A>::behavior_type registry_behavior(registry_pointer<A> self,
                                                            aggregate_context ctx) {
  self->state.ctx = std::move(ctx);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    retire<A>(self, msg.source);
    if (st.ids.erase(msg.source) > 0 && msg.reason == caf::exit_reason::normal)
      ++st.stats.passivated;
    if (msg.reason == caf::exit_reason::normal) return;  // queued commands bounce and retry
    ++st.stats.crashed;
    auto p = st.pending.find(msg.source);
    if (p == st.pending.end()) return;
    for (auto& [key, job] : p->second)
      job.promise.deliver(
          make_error(errc::unavailable, "the aggregate actor of '" + stream_of<A>(job.id) +
                                            "' stopped (" + caf::to_string(msg.reason) +
                                            "); the command may or may not have been applied"));
    st.pending.erase(p);
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    for (auto& [id, e] : self->state.alive)
      self->send_exit(e.actor, msg.reason);
    self->quit(msg.reason);
  });
  return registry_handlers<A>(self, commands_of<A>{});
}

template <aggregate A, class... Cs>
typename registry_actor<A>::behavior_type registry_handlers(registry_pointer<A> self,
                                                            caf::detail::type_list<Cs...>) {
  return {
      [self](command_atom, std::string& id, Cs& cmd) -> caf::result<command_reply> {
        auto promise = self->template make_response_promise<command_reply>();
        dispatch<A>(self, typename registry_state<A>::in_flight{
                              std::move(id), typename A::command{std::move(cmd)}, promise, 0});
        return promise;
      }...,
      [self](stats_atom) -> registry_stats {
        auto out = self->state.stats;
        out.alive = self->state.alive.size();
        return out;
      },
  };
}

}  // namespace detail

/// Spawns a lone aggregate actor for aggregate `id`, outside any registry
/// (registries keep one per stream; lone actors may race on one stream, and
/// optimistic versioning keeps them consistent).
template <aggregate A>
aggregate_actor<A> spawn_aggregate(caf::actor_system& sys, std::string_view id,
                                   aggregate_context ctx) {
  return sys.spawn(detail::aggregate_behavior<A>, stream_of<A>(id), std::move(ctx));
}

/// Spawns the registry of aggregate type A. Stop it with
/// caf::anon_send_exit(registry, caf::exit_reason::user_shutdown); it stops
/// its aggregate actors.
template <aggregate A>
registry_actor<A> spawn_registry(caf::actor_system& sys, aggregate_context ctx) {
  return sys.spawn(detail::registry_behavior<A>, std::move(ctx));
}

}  // namespace varve
