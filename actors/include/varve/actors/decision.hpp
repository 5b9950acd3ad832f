// Decision models: consistency boundaries drawn by a query instead of a
// stream (dynamic consistency boundaries, the DCB model of dcb.events).
//
// An aggregate guards one stream. Some rules span what no single stream
// holds: "a course takes at most `capacity` students, and a student takes
// at most 3 courses" touches the course and the student at once. A
// decision model names, for each command, the query whose events the
// decision depends on (its boundary), folds those events into a state,
// decides, and appends under the condition "no event matching the query
// was appended after the position I read". If one was, it reads again and
// decides again.
//
//   struct subscription {                       // a decision model
//     using event = std::variant<course_defined, student_subscribed>;
//     using command = subscribe;
//     struct state { ... };
//     static varve::query boundary(const command&);          // what it reads
//     static void apply(state&, const event&);               // the fold
//     static varve::dcb_decision<event> decide(const state&, const command&);
//     // optional: static state initial(const command&);     (default: state{})
//     // optional: using codec = my_codec;   (default: json_codec<event>, codec.hpp)
//   };
//
// decide() runs without I/O and returns the events to append, each with
// its stream and tags (tagged_event), or an error: errc::rejected for a
// broken domain rule. Every event the boundary's query matches must decode
// with the model's codec (name in the query the types the model reads);
// one that does not fails the command with errc::corruption, one of a
// shredded stream with errc::shredded, naming its position.
//
// The events decided by one command are appended atomically: one
// append_request per stream (in the order streams first appear, under
// expected_version::any(): the condition is the check), all in one
// write_request whose condition is {boundary, position read}. Their tags
// are what later boundaries find them by: tag every event with what it is
// about ("course:c1", "student:s7").
//
// This header has no CAF. It holds the model's vocabulary and the
// embedded path, run_decision() over an event_store. The actor that runs
// decisions behind the storage actor (group commit) is in
// varve/actors/decider.hpp; varve::runtime::decide<D> sends to it.
//
// Threads. boundary(), initial(), apply(), decide() and the codec may be
// called from any thread, and for different commands concurrently: they
// must not share mutable data. An exception from them propagates out of
// the functions below (the decider turns it into errc::handler_failed).
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <varve/storage/event_store.hpp>

#include "varve/actors/codec.hpp"

namespace varve {

/// An event decided by a decision model: the event, the stream it is
/// appended to, and its tags (at most max_tags, each 1..max_tag_bytes
/// bytes, no tag twice).
template <class Event>
struct tagged_event {
  std::string stream;
  Event event;
  std::vector<std::string> tags{};
};

/// What a decision model's decide() returns: the events to append (none:
/// nothing to do, which succeeds), or why the command is refused.
template <class Event>
using dcb_decision = result<std::vector<tagged_event<Event>>>;

template <class D>
concept decision_model = requires(typename D::state& s, const typename D::state& cs,
                                  const typename D::event& e, const typename D::command& c) {
  { D::boundary(c) } -> std::convertible_to<query>;
  D::apply(s, e);
  { D::decide(cs, c) } -> std::same_as<dcb_decision<typename D::event>>;
};

/// The answer to a decision that succeeded.
struct decision_reply {
  global_position first_position = 0;  ///< of the first event appended (0: none)
  global_position position = 0;        ///< of the last event appended (0: none)
  std::uint32_t events = 0;            ///< how many events it appended
  global_position read_at = 0;         ///< the head of the log it decided on
  std::uint32_t attempts = 0;          ///< 1, plus one per reload after a conflict
};

/// How decisions retry.
struct decision_options {
  /// Reloads after a conflict (an event of the boundary appended after the
  /// read) before the command fails with wrong_expected_version.
  unsigned max_retries = 5;
};

/// A boundary read and folded: the model's state over every event its
/// query matches up to `read_at`.
template <class D>
struct boundary_state {
  typename D::state state{};
  query boundary{};
  global_position read_at = 0;  ///< head() of the read transaction
  std::uint64_t events = 0;     ///< events applied
};

/// A decision made and not yet appended: `request` holds the appends and
/// the condition {boundary, read_at}; no appends when decide() returned no
/// events.
struct prepared_decision {
  write_request request;
  std::uint32_t events = 0;
  global_position read_at = 0;
};

namespace detail {

// The parts that do not depend on the model (actors/src/decision.cpp).

/// Corruption naming the event at `v` that the model's codec does not
/// decode, or shredded when its stream was shredded.
error unreadable_in_boundary(const event_view& v);

/// The store's error from reading the boundary `q`, naming it.
error boundary_read_failed(const query& q, const error& e);

/// One decided event, encoded: its stream and the event to append.
struct encoded_event {
  std::string stream;
  new_event event;
};

/// The write_request of a decision: one append per stream, in the order
/// streams first appear, under any(); the condition {q, read_at}.
/// invalid_argument when an event has no stream, a tag that is empty,
/// longer than max_tag_bytes or given twice, or more than max_tags tags.
result<write_request> build_request(std::vector<encoded_event> events, query q,
                                    global_position read_at);

/// invalid_argument: the codec cannot encode an event of type `type`.
error unencodable(const std::string& type, const std::string& stream);

/// The reply for the appends of a decision.
decision_reply reply_of(const std::vector<append_result>& appended, std::uint32_t events,
                        global_position read_at, std::uint32_t attempts);

/// The error after the last retry: `conflict` (wrong_expected_version),
/// saying how many attempts were made.
error gave_up(const error& conflict, std::uint32_t attempts);

template <class D>
typename D::state initial_state(const typename D::command& c) {
  if constexpr (requires { D::initial(c); })
    return D::initial(c);
  else
    return typename D::state{};
}

}  // namespace detail

/// Reads the events of `cmd`'s boundary in one read transaction of
/// `store`, in log order, and folds them into the model's state. Errors:
/// invalid_argument (a query term the store refuses), corruption (an
/// event that does not decode), shredded (an event of a shredded stream),
/// and the store's read errors (auth_failed, io_error, busy).
template <decision_model D>
result<boundary_state<D>> fold_boundary(const event_store& store, const typename D::command& cmd) {
  using codec = typename detail::codec_of<D>::type;
  boundary_state<D> out;
  out.boundary = D::boundary(cmd);
  out.state = detail::initial_state<D>(cmd);
  auto txn = store.read();
  if (!txn) return std::move(txn).err();
  out.read_at = txn->head();
  std::optional<error> failure;
  detail::event_decoder<codec, typename D::event> decode;
  auto n = txn->scan_query(out.boundary, 1, direction::forward, SIZE_MAX, [&](const event_view& v) {
    if (v.shredded || !decode(v.type, v.payload, [&](auto& e) { D::apply(out.state, e); })) {
      failure = detail::unreadable_in_boundary(v);
      return false;
    }
    ++out.events;
    return true;
  });
  if (failure) return std::move(*failure);
  if (!n) return detail::boundary_read_failed(out.boundary, n.err());
  return out;
}

/// Folds the boundary of `cmd` (fold_boundary) and decides: the
/// write_request to send (to the storage actor, or event_store::write),
/// or decide()'s refusal, or invalid_argument for decided events the
/// store would refuse (no stream, bad tags) or the codec cannot encode.
template <decision_model D>
result<prepared_decision> prepare_decision(const event_store& store,
                                           const typename D::command& cmd) {
  using codec = typename detail::codec_of<D>::type;
  auto folded = fold_boundary<D>(store, cmd);
  if (!folded) return std::move(folded).err();
  auto decided = D::decide(folded->state, cmd);
  if (!decided) return std::move(decided).err();
  std::vector<detail::encoded_event> encoded;
  encoded.reserve(decided->size());
  for (auto& d : *decided) {
    new_event e;
    e.type = codec::type_of(d.event);
    if (!codec::encode(d.event, e.payload)) return detail::unencodable(e.type, d.stream);
    e.tags = std::move(d.tags);
    encoded.push_back({std::move(d.stream), std::move(e)});
  }
  const auto events = static_cast<std::uint32_t>(encoded.size());
  auto request =
      detail::build_request(std::move(encoded), std::move(folded->boundary), folded->read_at);
  if (!request) return std::move(request).err();
  return prepared_decision{std::move(*request), events, folded->read_at};
}

/// Runs a decision on `store` without actors (the embedded path): folds,
/// decides, appends under the condition in a transaction of its own, and
/// on a conflict folds and decides again, up to `options.max_retries`
/// times. Returns where the events landed (position 0 and no events when
/// decide() returned none). Errors: decide()'s (errc::rejected, ...);
/// wrong_expected_version when every attempt met a conflict (the message
/// names the position of the conflicting event and the attempts); those of
/// fold_boundary and prepare_decision; the store's append errors
/// (invalid_argument, shredded, storage_full, io_error, failed_state).
/// Nothing is written on failure. Thread-safe as the store is; in a
/// process that runs a storage actor, prefer varve::runtime::decide (one
/// group commit for all).
template <decision_model D>
result<decision_reply> run_decision(event_store& store, const typename D::command& cmd,
                                    decision_options options = {}) {
  for (std::uint32_t attempt = 1;; ++attempt) {
    auto prepared = prepare_decision<D>(store, cmd);
    if (!prepared) return std::move(prepared).err();
    if (prepared->request.appends.empty())
      return decision_reply{0, 0, 0, prepared->read_at, attempt};
    auto outcome = store.write(std::span<const write_request>(&prepared->request, 1));
    if (!outcome) return std::move(outcome).err();
    auto& appended = outcome->front();
    if (appended) return detail::reply_of(*appended, prepared->events, prepared->read_at, attempt);
    if (appended.err().code() != errc::wrong_expected_version) return std::move(appended).err();
    if (attempt > options.max_retries) return detail::gave_up(appended.err(), attempt);
  }
}

}  // namespace varve
