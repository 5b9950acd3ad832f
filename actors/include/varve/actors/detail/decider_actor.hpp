// The decider actor: runs the commands of one decision model, holding back
// those whose boundary an append in flight touches. Part of
// varve/actors/decider.hpp.
//
//   command ──► waiting ──(its boundary matches no event in flight)──► decide:
//                  ▲        read + fold + decide in this turn, then either
//                  │          answered at once (refused, nothing to append, bad input)
//                  │          or in flight: (write_atom, request) to the storage actor
//                  │                        │
//                  └── conflict, retries left ◄┘ answered: reply, or the error
//
// Every answer lets the waiting commands go, in arrival order, each once
// nothing in flight touches its boundary.
#pragma once

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "varve/actors/detail/in_flight.hpp"
#include "varve/actors/error.hpp"

namespace varve::detail {

template <decision_model D>
struct decider_state {
  static inline const char* name = "varve.decider";

  struct job {
    typename D::command cmd;
    query boundary;
    caf::typed_response_promise<decision_reply> promise;
    std::uint32_t attempt = 1;
  };
  using job_ptr = std::shared_ptr<job>;

  decision_context ctx;
  std::deque<job_ptr> waiting;                        // arrival order (retries first)
  std::unordered_map<std::uint64_t, job_ptr> flying;  // appends in flight, by key
  in_flight_events in_flight;
  std::uint64_t next_key = 0;
  decider_stats stats;

  decider_state() = default;
  decider_state(const decider_state&) = delete;
  decider_state& operator=(const decider_state&) = delete;
  /// When the actor stops, whatever it has not answered is answered.
  ~decider_state() {
    for (auto& [key, j] : flying)
      j->promise.deliver(make_error(errc::unavailable,
                                    "the decider stopped with the decision's append in flight: "
                                    "it may or may not have been applied"));
    for (auto& j : waiting)
      j->promise.deliver(make_error(errc::unavailable,
                                    "the decider stopped before deciding: nothing was applied"));
  }
};

template <decision_model D>
using decider_pointer = typename decider_actor<D>::template stateful_pointer<decider_state<D>>;

/// An exception from the model's code, as an error.
inline error model_threw(std::exception_ptr thrown) {
  try {
    std::rethrow_exception(std::move(thrown));
  } catch (const std::exception& e) {
    return error{errc::handler_failed, std::string("the decision model threw: ") + e.what()};
  } catch (...) {
    return error{errc::handler_failed, "the decision model threw"};
  }
}

template <decision_model D>
void let_waiting_go(decider_pointer<D> self);

/// Answers `j` with `e` and counts it.
template <decision_model D>
void fail(decider_pointer<D> self, const typename decider_state<D>::job_ptr& j, const error& e) {
  auto& st = self->state;
  ++(e.code() == errc::rejected ? st.stats.refused : st.stats.failed);
  j->promise.deliver(to_caf(e));
}

/// The storage actor answered the append of `key`.
template <decision_model D>
void appended(decider_pointer<D> self, std::uint64_t key, std::uint32_t events,
              global_position read_at, result<std::vector<append_result>> outcome) {
  auto& st = self->state;
  auto found = st.flying.find(key);
  if (found == st.flying.end()) return;
  auto j = std::move(found->second);
  st.flying.erase(found);
  st.in_flight.remove(key);
  if (outcome) {
    ++st.stats.appended;
    j->promise.deliver(reply_of(*outcome, events, read_at, j->attempt));
  } else if (outcome.err().code() == errc::wrong_expected_version &&
             j->attempt <= st.ctx.options.max_retries) {
    ++st.stats.retries;  // reload and decide again, before the others
    ++j->attempt;
    st.waiting.push_front(std::move(j));
  } else if (outcome.err().code() == errc::wrong_expected_version) {
    fail<D>(self, j, gave_up(outcome.err(), j->attempt));
  } else {
    fail<D>(self, j, outcome.err());
  }
  let_waiting_go<D>(self);
}

/// Reads, folds and decides `j` in this turn; answers it, or sends its
/// append to the storage actor.
template <decision_model D>
void start(decider_pointer<D> self, typename decider_state<D>::job_ptr j) {
  auto& st = self->state;
  std::optional<result<prepared_decision>> prepared;
  try {
    prepared.emplace(prepare_decision<D>(*st.ctx.store, j->cmd));
  } catch (...) {
    prepared.emplace(model_threw(std::current_exception()));
  }
  if (!*prepared) {
    fail<D>(self, j, prepared->err());
    return;
  }
  auto& p = **prepared;
  if (p.request.appends.empty()) {
    j->promise.deliver(decision_reply{0, 0, 0, p.read_at, j->attempt});
    return;
  }
  const auto key = ++st.next_key;
  st.in_flight.add(key, p.request);
  st.flying.emplace(key, std::move(j));
  self->request(st.ctx.storage, caf::infinite, write_atom_v, std::move(p.request))
      .then(
          [self, key, events = p.events, read_at = p.read_at](std::vector<append_result>& r) {
            appended<D>(self, key, events, read_at, std::move(r));
          },
          [self, key, events = p.events, read_at = p.read_at](caf::error& e) {
            appended<D>(self, key, events, read_at, error_from(e));
          });
}

/// Starts the waiting commands, in order, whose boundary matches no event
/// in flight.
template <decision_model D>
void let_waiting_go(decider_pointer<D> self) {
  auto& st = self->state;
  for (auto it = st.waiting.begin(); it != st.waiting.end();) {
    if (st.in_flight.touches((*it)->boundary)) {
      ++it;
      continue;
    }
    auto j = std::move(*it);
    it = st.waiting.erase(it);
    start<D>(self, std::move(j));  // leaves `waiting` as it is
  }
}

template <decision_model D>
typename decider_actor<D>::behavior_type decider_behavior(decider_pointer<D> self,
                                                          decision_context ctx) {
  self->state.ctx = std::move(ctx);
  return {
      [self](command_atom, local_command<typename D::command>& c) -> caf::result<decision_reply> {
        auto& st = self->state;
        ++st.stats.commands;
        auto j = std::make_shared<typename decider_state<D>::job>();
        j->cmd = std::move(c.value);
        j->promise = self->template make_response_promise<decision_reply>();
        auto promise = j->promise;
        try {
          j->boundary = D::boundary(j->cmd);
        } catch (...) {
          fail<D>(self, j, model_threw(std::current_exception()));
          return promise;
        }
        st.waiting.push_back(std::move(j));
        let_waiting_go<D>(self);
        return promise;
      },
      [self](stats_atom) {
        auto out = self->state.stats;
        out.waiting = self->state.waiting.size();
        out.in_flight = self->state.flying.size();
        return out;
      },
  };
}

}  // namespace varve::detail
