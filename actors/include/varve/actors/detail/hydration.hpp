// How an aggregate actor rebuilds its state: the latest snapshot, then the
// events after it. Part of varve/actors/aggregate.hpp.
//
// The snapshot loads in the actor's first turn. When at most
// `inline_hydration_limit` events follow it, they are applied there too. A
// longer tail is applied on a detached helper actor (a thread of its own)
// into a separate state, while the aggregate actor's requests wait in its
// work queue (work_queue.hpp), in order, and the scheduler's threads serve
// other actors. The state then moves into the actor. Either way an actor
// hydrates once; after a failure it reads on from the last event it
// applied, before each request.
#pragma once

#include <caf/event_based_actor.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "varve/actors/detail/state_codec.hpp"
#include "varve/actors/detail/work_queue.hpp"

namespace varve::detail {

/// At most this many events after the snapshot are applied in the actor's
/// own turn.
inline constexpr stream_version inline_hydration_limit = 64;

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
  work_queue work;        // requests waiting for the command or hydration in flight
};

template <aggregate A>
using aggregate_pointer =
    typename aggregate_actor<A>::template stateful_pointer<aggregate_state<A>>;

// The parts that do not depend on the aggregate type (actors/src/hydration.cpp).

/// True when `stream` has at most inline_hydration_limit events after
/// version `from`, does not exist, or cannot be looked up (the hydration
/// then reports why).
bool hydrates_inline(const event_store& store, std::string_view stream, stream_version from);

/// Corruption: the event at `v` of `stream` does not decode.
error undecodable(std::string_view stream, const event_view& v);

/// The store's error `e` for the event at `version` of `stream`, naming both.
error unreadable(std::string_view stream, stream_version version, const error& e);

/// Reports through varve::log that the snapshot of `stream` is ignored.
void ignore_snapshot(std::string_view stream, std::string_view why);

/// Reports through varve::log that `stream` cannot hydrate.
void report_unhydrated(std::string_view stream, const error& e);

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
  event_decoder<codec, typename A::event> decode;
  auto apply = [&](const event_view& v) {
    if (v.shredded) {  // the stream's data is gone: no state to rebuild
      st.shredded = true;
      st.version = v.version;
      return true;
    }
    if (!decode(v.type, v.payload, [&](auto& e) { A::apply(st.state, e); })) {
      failure = undecodable(st.stream, v);
      return false;
    }
    st.version = v.version;
    if (applied) ++*applied;
    return true;
  };
  auto n = txn->scan_stream(st.stream, st.version + 1, direction::forward, SIZE_MAX, apply);
  if (failure) return std::move(*failure);
  if (!n && n.err().code() != errc::not_found)
    return unreadable(st.stream, st.version + 1, n.err());
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
      ignore_snapshot(st.stream, "schema " + std::to_string((*snap)->schema) + ", expected " +
                                     std::to_string(A::snapshot_schema));
      return;
    }
    auto state = load_state<typename A::state>((*snap)->bytes);
    if (!state) {
      ignore_snapshot(st.stream, "it does not decode");
      return;
    }
    st.state = std::move(*state);
    st.version = (*snap)->version;
    st.snapshot_version = st.version;
    st.hydrated_from = st.version;
  }
}

/// A hydration on the helper's thread: the state it builds, what it says,
/// and what apply() or the codec threw.
template <aggregate A>
struct hydration_job {
  aggregate_state<A> st;
  result<void> outcome;
  std::exception_ptr thrown;
};

/// The helper: applies the tail of `job`'s stream when asked, answers, and
/// quits.
template <aggregate A>
caf::behavior hydration_helper(caf::event_based_actor* self,
                               std::shared_ptr<hydration_job<A>> job) {
  return {
      [self, job](read_atom) {
        try {
          job->outcome = hydrate<A>(job->st);
        } catch (...) {
          job->thrown = std::current_exception();
        }
        self->quit();
        return true;
      },
  };
}

template <aggregate A>
void arm_idle_timer(aggregate_pointer<A> self);

/// After hydrating: reports a failure (each request answers it) and starts
/// the idle timer.
template <aggregate A>
void hydrated(aggregate_pointer<A> self, const result<void>& outcome) {
  if (!outcome) report_unhydrated(self->state.stream, outcome.err());
  arm_idle_timer<A>(self);
}

/// Hydrates the actor's state, in this turn or on a helper (see above).
template <aggregate A>
void start_hydration(aggregate_pointer<A> self) {
  auto& st = self->state;
  load_snapshot<A>(st);
  if (hydrates_inline(*st.ctx.store, st.stream, st.version)) {
    hydrated<A>(self, hydrate<A>(st));
    return;
  }
  auto job = std::make_shared<hydration_job<A>>();
  job->st.stream = st.stream;
  job->st.ctx = st.ctx;
  job->st.state = std::move(st.state);
  job->st.version = st.version;
  job->st.snapshot_version = st.snapshot_version;
  job->st.hydrated_from = st.hydrated_from;
  auto helper = self->template spawn<caf::detached>(hydration_helper<A>, job);
  st.work.begin();  // requests wait in the work queue until the answer
  self->request(helper, caf::infinite, read_atom_v)
      .then(
          [self, job](bool) {
            if (job->thrown) std::rethrow_exception(job->thrown);  // as if thrown here
            auto work = std::move(self->state.work);
            self->state = std::move(job->st);
            self->state.work = std::move(work);
            self->state.work.end();
            hydrated<A>(self, job->outcome);
            self->state.work.run_waiting();
          },
          [self](caf::error& err) { self->quit(std::move(err)); });
}

}  // namespace varve::detail
