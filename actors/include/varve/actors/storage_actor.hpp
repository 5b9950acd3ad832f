// The storage actor: the one writer of a store in this process.
//
// It owns the store's write path. Requests that wait in its mailbox are
// gathered into one write transaction and one sync (group commit, no timer):
// the first request of a batch sends the actor a flush message, which runs
// after every request already queued. Each requester gets its own answer
// after the commit; a request that fails (a version conflict, bad input)
// fails alone. After each commit that wrote events, every subscriber gets
// (committed_atom, head) in commit order.
//
// It runs detached (fsync blocks its thread). Reads through it copy; readers
// in this process may instead open their own read transactions on the
// event_store (zero copy), which never wait for the writer.
//
// Errors arrive as caf::error of category "varve" (see error.hpp):
// wrong_expected_version, invalid_argument, shredded, storage_full,
// io_error, failed_state (after an I/O failure every later write is refused;
// reads go on).
#pragma once

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "varve/actors/inspect.hpp"
#include "varve/actors/type_ids.hpp"

namespace varve {

/// What the storage actor has committed since it started: commits, events,
/// batch sizes and commit latencies (store_stats, in storage, describes the
/// store itself).
struct commit_stats {
  std::uint64_t commits = 0;
  std::uint64_t events = 0;    ///< events written
  std::uint64_t requests = 0;  ///< requests answered (succeeded or failed)
  std::uint64_t head = 0;      ///< newest global position
  /// Requests per commit: bucket i counts commits of [2^i, 2^(i+1)) requests.
  std::vector<std::uint64_t> batch_histogram;
  std::uint64_t commit_p50_us = 0;  ///< whole batch: apply + commit, recent commits
  std::uint64_t commit_p99_us = 0;
  std::uint64_t fsync_p50_us = 0;  ///< mdb_txn_commit (page writes + fsync)
  std::uint64_t fsync_p99_us = 0;
  bool failed = false;  ///< the store refuses writes after an I/O failure
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, commit_stats& x) {
  return f(caf::meta::type_name("varve::commit_stats"), x.commits, x.events, x.requests, x.head,
           x.batch_histogram, x.commit_p50_us, x.commit_p99_us, x.fsync_p50_us, x.fsync_p99_us,
           x.failed);
}

/// Who follows the commits of a storage actor: it gets (committed_atom,
/// head) after each commit that wrote events. (Registered with the
/// projections' type ids, varve/projections/type_ids.hpp.)
using head_subscriber = caf::typed_actor<caf::reacts_to<committed_atom, std::uint64_t>>;

/// The typed interface of the storage actor.
///
/// - (append_atom, append_request) -> append_result: one stream.
/// - (append_atom, vector<append_request>) -> vector<append_result>: several
///   streams atomically.
/// - (write_atom, write_request) -> vector<append_result>: appends, cursors,
///   snapshots and view changes in one transaction (projections, snapshots).
/// - (read_atom, stream, from, backward, limit) -> vector<recorded_event>.
/// - (read_log_atom, from, backward, limit) -> vector<recorded_event>.
/// - (subscribe_atom, head_subscriber) -> head: the subscriber then gets
///   (committed_atom, head) after every commit that wrote events;
///   unsubscribe_atom stops it (so does the subscriber's exit).
/// - (shred_atom, stream) -> the stream's version: shreds it (see
///   event_store::shred), after committing the requests gathered before it.
/// - (stats_atom) -> commit_stats, after committing the requests that came
///   before it.
/// - (flush_atom): internal, the group-commit trigger.
using storage_actor = caf::typed_actor<
    caf::replies_to<append_atom, append_request>::with<append_result>,
    caf::replies_to<append_atom, std::vector<append_request>>::with<std::vector<append_result>>,
    caf::replies_to<write_atom, write_request>::with<std::vector<append_result>>,
    caf::replies_to<read_atom, std::string, std::uint64_t, bool,
                    std::uint64_t>::with<std::vector<recorded_event>>,
    caf::replies_to<read_log_atom, std::uint64_t, bool,
                    std::uint64_t>::with<std::vector<recorded_event>>,
    caf::replies_to<subscribe_atom, head_subscriber>::with<std::uint64_t>,
    caf::reacts_to<unsubscribe_atom, head_subscriber>,
    caf::replies_to<shred_atom, std::string>::with<std::uint64_t>,
    caf::replies_to<stats_atom>::with<commit_stats>, caf::reacts_to<flush_atom>>;

/// How the storage actor batches. A commit takes every request waiting in
/// the mailbox, up to the bounds below (a single request larger than a
/// bound is committed alone), after waiting for more as `max_wait` says.
struct storage_config {
  std::size_t max_batch_events = 8192;      ///< events per commit
  std::size_t max_batch_bytes = 64u << 20;  ///< type + payload + metadata bytes per commit
  /// Group commit: when fewer requests have come than the last commit
  /// answered, the commit waits up to this long for the others (writers that
  /// append again as soon as they are answered), so that they share one
  /// commit instead of splitting into two; it stops waiting as soon as as
  /// many have come, or a bound above is reached. A single writer never
  /// waits (its last commit answered one request).
  ///
  /// A batch that holds a request with an append condition never waits: a
  /// decision read what was committed, and while its append waits another
  /// decision over the same boundary can commit first. Appends with
  /// `expected_version::exact` do wait; in one process an aggregate actor
  /// is its stream's only writer, but writers in other processes (or
  /// remote clients) on the same streams meet more conflicts the longer a
  /// batch waits.
  ///
  /// The wait keeps the actor's thread busy (it re-queues its flush behind
  /// the requests that come meanwhile, yielding the thread each time). Set
  /// 0 to commit what has come at once: for clients that pause between
  /// requests and care more for each answer's latency than for commits per
  /// second, on hosts without a core to spare, and in tests that count
  /// commits. The configuration option `batch-max-wait-us` allows at most
  /// 10 ms.
  std::chrono::microseconds max_wait{200};
};

/// Spawns the storage actor of `store`, detached: the one writer of the
/// store in this process. The actor shares ownership of the store, which
/// stays open at least until the actor has quit. Stop it with
/// caf::anon_send_exit(actor, caf::exit_reason::user_shutdown); it commits
/// what it has gathered before it quits.
storage_actor spawn_storage(caf::actor_system& sys, std::shared_ptr<event_store> store,
                            storage_config cfg = {});

}  // namespace varve
