// What crosses the wire between a Varve store service (varve_serve) and its
// clients and remote projection hosts in other processes: CAF's own network
// layer (the middleman) carries typed messages; nothing home-made.
//
// The service actor (service_actor) is a thin typed actor in front of the
// store's storage actor:
//
// - (hello_atom, client_protocol) -> service_protocol: the handshake. The
//   service refuses a client of another protocol version with
//   errc::invalid_argument naming both versions; clients send it before
//   anything else (see client.hpp). A service whose interface differs
//   altogether fails remote_actor with unexpected_actor_messaging_interface,
//   which the client also reports as a protocol mismatch (invalid_argument).
// - (append_atom, append_request) -> append_result,
//   (append_atom, vector<append_request>) -> vector<append_result>:
//   forwarded to the storage actor (same results, same errors as in process).
// - (read_atom, stream, from, backward, limit) -> event_batch,
//   (read_log_atom, from, backward, limit) -> event_batch: read by the
//   service in its own read transaction, at most max_batch_events events and
//   about max_batch_bytes bytes per answer (ask again from the next one).
// - (read_query_atom, filter_terms, from, limit) -> event_batch: the events
//   from `from` on that a projection's filter passes, read through the
//   service store's indexes (projection_filter::index_query), forward, with
//   the same bounds; `covered` says how far the answer covers the log (0:
//   the filter's terms are not for the indexes, and the events are the log
//   itself from `from`, as read_log_atom gives).
// - (read_query_atom, query, from, backward, limit) -> event_batch: the
//   events that match a query (query.hpp: types, tags, categories), read by
//   the service through its indexes, in either direction, with the same
//   bounds; forward, `covered` is the position through which every match is
//   in this answer or an earlier one (the `after` of an append condition
//   that decides on them); backward, 0.
// - (write_atom, write_request) -> vector<append_result>: forwarded to the
//   storage actor as it is; with a condition (append_condition), a DCB
//   conditional append, checked in the storage actor's transaction as in
//   process (a conflict is errc::wrong_expected_version naming the first
//   matching position).
// - (subscribe_atom, head_subscriber) -> head, (unsubscribe_atom,
//   head_subscriber): the storage actor sends the subscriber (committed_atom,
//   head) after every commit that wrote events, over the network; a
//   subscriber whose node goes away is dropped.
// - (shred_atom, stream) -> version, (stats_atom) -> commit_stats.
// - (command_atom, aggregate type) -> actor: the registry of that aggregate
//   type registered with the service (spawn_service); clients send it
//   (command_atom, id, command) directly (commands.hpp), so command types
//   must be registered on both sides. Unknown type: errc::not_found.
//
// Errors travel as caf::error of category "varve" (varve/actors/error.hpp).
#pragma once

#include <caf/actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include <varve/actors/storage_actor.hpp>

#include "varve/remote/type_ids.hpp"

namespace varve::remote {

/// The version of this protocol; bump it when any message above changes.
/// 3: the handshake has its own atom, subscribers are typed handles
/// (head_subscriber), event_batch carries the head's time and no separate
/// shredded flags. 4: read_query_atom; event_batch carries `covered`, and
/// its events their tags. 5: queries (read_query_atom with a query) and
/// write_atom (conditional appends).
inline constexpr std::uint32_t protocol_version = 5;

/// Upper bounds of one read answer.
inline constexpr std::uint64_t max_batch_events = 10000;
inline constexpr std::size_t max_batch_bytes = 8u << 20;

/// Events read by the service (an event of a shredded stream keeps its
/// envelope and `shredded`), and the log's head when they were read.
struct event_batch {
  std::vector<recorded_event> events;
  global_position head = 0;
  timestamp_us head_time = 0;  ///< the head event's time (0: an empty log)
  /// read_query_atom, forward: every event up to here that the filter or
  /// query matches is in `events` or in an answer before (see
  /// log_batch::covered); 0 for the other reads.
  global_position covered = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_batch& x) {
  return f(caf::meta::type_name("varve::remote::event_batch"), x.events, x.head, x.head_time,
           x.covered);
}

/// The terms of a projection's filter that the service's indexes may
/// answer (projection_filter: event types, tags, and categories when the
/// filter has no stream prefixes and no category has a '-').
struct filter_terms {
  std::vector<std::string> types;
  std::vector<std::string> tags;
  std::vector<std::string> categories;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, filter_terms& x) {
  return f(caf::meta::type_name("varve::remote::filter_terms"), x.types, x.tags, x.categories);
}

using service_actor = caf::typed_actor<
    caf::replies_to<hello_atom, std::uint32_t>::with<std::uint32_t>,
    caf::replies_to<append_atom, append_request>::with<append_result>,
    caf::replies_to<append_atom, std::vector<append_request>>::with<std::vector<append_result>>,
    caf::replies_to<read_atom, std::string, std::uint64_t, bool, std::uint64_t>::with<event_batch>,
    caf::replies_to<read_log_atom, std::uint64_t, bool, std::uint64_t>::with<event_batch>,
    caf::replies_to<read_query_atom, filter_terms, std::uint64_t, std::uint64_t>::with<event_batch>,
    caf::replies_to<read_query_atom, query, std::uint64_t, bool, std::uint64_t>::with<event_batch>,
    caf::replies_to<write_atom, write_request>::with<std::vector<append_result>>,
    caf::replies_to<subscribe_atom, head_subscriber>::with<std::uint64_t>,
    caf::reacts_to<unsubscribe_atom, head_subscriber>,
    caf::replies_to<shred_atom, std::string>::with<std::uint64_t>,
    caf::replies_to<stats_atom>::with<commit_stats>,
    caf::replies_to<command_atom, std::string>::with<caf::actor>>;

}  // namespace varve::remote
