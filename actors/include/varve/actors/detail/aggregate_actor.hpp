// The aggregate actor: one stream's state, its commands one at a time,
// snapshots and the idle timer. Part of varve/actors/aggregate.hpp.
//
//   spawn ──► hydrating ──► ready ◄──────────────┐
//             (snapshot +    │ command: decide,   │ append answered
//              tail; see     │ append ────────────┘ (conflict: reload, decide again)
//              hydration.hpp)│ idle_timeout without commands, or passivate_atom
//                            ▼
//                          quit
//
// One request at a time: while a hydration or an append is in flight, the
// requests that arrive wait in the state's work_queue (work_queue.hpp), in
// arrival order. Those still waiting when the actor quits are answered
// request_receiver_down (nothing of them was applied).
#pragma once

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "varve/actors/detail/hydration.hpp"
#include "varve/actors/detail/work_queue.hpp"
#include "varve/actors/log.hpp"

namespace varve::detail {

/// Writes a snapshot when the version crossed a multiple of snapshot_every
/// (the aggregate declares snapshot_schema). The write goes through the
/// storage actor; a failure is reported through varve::log and changes
/// nothing else (the next multiple tries again).
template <aggregate A>
void maybe_snapshot(aggregate_pointer<A> self) {
  if constexpr (has_snapshots<A>) {
    auto& st = self->state;
    const auto every = st.ctx.options.snapshot_every;
    if (every == 0 || st.version / every == st.snapshot_version / every) return;
    snapshot_update u{st.stream, st.version, A::snapshot_schema, {}};
    if (!save_state(st.state, u.bytes)) return;
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
      promise.deliver(make_error(errc::invalid_argument,
                                 "the aggregate's codec cannot encode the '" + ne.type +
                                     "' event decided for '" + st.stream +
                                     "' (with JSON: a string that is not UTF-8); nothing stored"));
      return;
    }
    req.events.push_back(std::move(ne));
  }
  // Later requests wait in the work queue until this one is answered; if
  // the actor stops first, its requester learns that it may have landed.
  st.work.begin([promise, stream = st.stream]() mutable {
    promise.deliver(make_error(errc::unavailable,
                               "the actor of '" + stream +
                                   "' stopped with the command's append in flight: it may or "
                                   "may not have been applied"));
  });
  self->request(st.ctx.storage, caf::infinite, append_atom_v, std::move(req))
      .then(
          [self, events = std::move(*events), promise](const append_result& r) mutable {
            auto& now = self->state;
            for (const auto& e : events)
              A::apply(now.state, e);
            now.version = r.last_version;
            maybe_snapshot<A>(self);
            now.work.end();
            promise.deliver(command_reply{r.last_version, r.last_position,
                                          static_cast<std::uint32_t>(events.size())});
            now.work.run_waiting();
          },
          [self, cmd = std::move(cmd), promise, attempt](caf::error& err) mutable {
            auto& now = self->state;
            if (error_from(err).code() == errc::wrong_expected_version &&
                attempt < now.ctx.options.max_retries) {
              auto r = catch_up<A>(now);
              now.work.end();
              if (!r) {
                now.hydrated = false;  // the next request reads on from here
                promise.deliver(to_caf(r.err()));
              } else {
                handle_command<A>(self, std::move(cmd), promise, attempt + 1);
              }
            } else {
              now.work.end();
              promise.deliver(err);
            }
            now.work.run_waiting();  // unless the retry's append is in flight
          });
}

/// Carries out `run` now, or after the request in flight (see work_queue);
/// if the actor quits first, `promise` is answered request_receiver_down.
template <aggregate A, class Promise>
void when_idle(aggregate_pointer<A> self, Promise promise, std::function<void()> run) {
  self->state.work.submit({std::move(run), [promise]() mutable {
                             promise.deliver(caf::make_error(caf::sec::request_receiver_down));
                           }});
}

/// Passivates now when nothing is in flight or waiting, else once the
/// requests that came before it are done.
template <aggregate A>
void passivate_when_idle(aggregate_pointer<A> self) {
  auto& work = self->state.work;
  if (!work.busy() && work.empty()) {
    self->quit();
    return;
  }
  work.defer({[self] { passivate_when_idle<A>(self); }, {}});
}

/// Takes a command: handled when the requests before it are done.
template <aggregate A>
caf::typed_response_promise<command_reply> accept_command(aggregate_pointer<A> self,
                                                          typename A::command cmd) {
  auto promise = self->template make_response_promise<command_reply>();
  self->state.last_active = std::chrono::steady_clock::now();
  auto c = std::make_shared<typename A::command>(std::move(cmd));
  when_idle<A>(self, promise,
               [self, c, promise] { handle_command<A>(self, std::move(*c), promise, 0); });
  return promise;
}

template <aggregate A, class... Cs>
typename aggregate_actor<A>::behavior_type aggregate_handlers(aggregate_pointer<A> self,
                                                              caf::detail::type_list<Cs...>) {
  return {
      [self](command_atom, Cs& cmd) -> caf::result<command_reply> {
        return accept_command<A>(self, typename A::command{std::move(cmd)});
      }...,
      [self](command_atom, local_command<typename A::command>& cmd) -> caf::result<command_reply> {
        return accept_command<A>(self, std::move(cmd.value));
      },
      [self](stats_atom) -> caf::result<aggregate_info> {
        auto promise = self->template make_response_promise<aggregate_info>();
        when_idle<A>(self, promise, [self, promise]() mutable {
          auto& st = self->state;
          if (auto r = hydrate<A>(st); !r) {
            promise.deliver(to_caf(r.err()));
            return;
          }
          promise.deliver(aggregate_info{st.stream, st.version, st.hydrated_from, st.replayed});
        });
        return promise;
      },
      [self](passivate_atom) { passivate_when_idle<A>(self); },
      [self](passivate_atom, std::uint64_t tick) {
        auto& st = self->state;
        if (tick != st.idle_tick) return;
        st.idle_timer = false;
        // A request in flight or waiting counts as activity.
        if (st.work.busy() || !st.work.empty()) st.last_active = std::chrono::steady_clock::now();
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

/// The aggregate actor of `stream`.
template <aggregate A>
typename aggregate_actor<A>::behavior_type aggregate_behavior(aggregate_pointer<A> self,
                                                              std::string stream,
                                                              aggregate_context ctx) {
  self->state.stream = std::move(stream);
  self->state.ctx = std::move(ctx);
  start_hydration<A>(self);
  return aggregate_handlers<A>(self, commands_of<A>{});
}

}  // namespace varve::detail
