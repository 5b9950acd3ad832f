// A client of a store service in another process: append and read with the
// same results (append_result, recorded_event) and errors (errc) as in
// process. Blocking calls, for the edges of an application (tools, tests,
// command handlers on their own threads); actors can talk to handle()
// directly with request(...).then(...).
//
// - A service of another protocol version: connect fails with
//   errc::invalid_argument naming both versions.
// - A service that is not there, or does not answer within the timeout:
//   errc::unavailable (never a hang).
#pragma once

#include <caf/fwd.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <varve/storage/error.hpp>

#include "varve/remote/protocol.hpp"
#include "varve/remote/type_ids.hpp"

namespace varve::remote {

struct client_options {
  std::chrono::milliseconds timeout{10000};   ///< per request, and for the handshake
  std::uint32_t protocol = protocol_version;  ///< what this client speaks (tests change it)
};

/// Connects to the service on host:port and shakes hands.
result<service_actor> connect(caf::actor_system& sys, const std::string& host, std::uint16_t port,
                              client_options opts = {});

/// A caf::error from a request to the service as a varve::error: Varve's
/// own errors as they are; a timeout or a vanished service as
/// errc::unavailable.
error error_from_remote(const caf::error& e);

class client {
 public:
  /// Connects (see connect above).
  static result<client> open(caf::actor_system& sys, const std::string& host, std::uint16_t port,
                             client_options opts = {});

  result<append_result> append(append_request request);
  result<append_result> append(std::string stream, expected_version expected,
                               std::vector<new_event> events);
  /// Several streams, atomically.
  result<std::vector<append_result>> append(std::vector<append_request> requests);
  /// Several streams, atomically, under a DCB condition (query.hpp): fails
  /// with errc::wrong_expected_version, naming the first matching position
  /// and writing nothing, when an event matching `condition`'s query is in
  /// the service's log after its position (see event_store::append).
  result<std::vector<append_result>> append(std::vector<append_request> requests,
                                            append_condition condition);
  /// Appends, cursors, snapshots and view changes in one transaction of the
  /// service's store, with an optional condition: as the storage actor's
  /// write_atom.
  result<std::vector<append_result>> write(write_request request);

  /// Up to `limit` events of `stream` from version `from` (at most
  /// max_batch_events per call).
  result<std::vector<recorded_event>> read_stream(const std::string& stream,
                                                  stream_version from = 1,
                                                  direction dir = direction::forward,
                                                  std::uint64_t limit = max_batch_events);
  /// Up to `limit` events of the log from position `from`.
  result<std::vector<recorded_event>> read_log(global_position from = 1,
                                               direction dir = direction::forward,
                                               std::uint64_t limit = max_batch_events);
  /// The raw batch (with the head when it was read).
  result<event_batch> read_log_batch(global_position from, std::uint64_t limit);

  /// Up to `limit` events that match `q` (at most max_batch_events per
  /// call), from position `from` (forward: 0 or 1 = the first; backward:
  /// from_end = the newest), read through the service's indexes, as
  /// read_transaction::read_query. Errors: invalid_argument (a query term
  /// that is empty or over its limit), and the service's read errors.
  result<std::vector<recorded_event>> read_query(const query& q, global_position from = 1,
                                                 direction dir = direction::forward,
                                                 std::uint64_t limit = max_batch_events);
  /// The forward batch, with `covered`: every event matching `q` up to that
  /// position is in this batch or was before `from`; never past `head`. A
  /// decision reads from position 1 (and on from covered + 1 while covered <
  /// head: a batch may be cut by max_batch_bytes with fewer than `limit`
  /// events) and appends under append_condition{q, covered}.
  result<event_batch> read_query_batch(const query& q, global_position from = 1,
                                       std::uint64_t limit = max_batch_events);

  result<stream_version> shred(const std::string& stream);
  result<commit_stats> stats();

  /// The registry of the aggregate type `type` (its category, e.g.
  /// "account") that the service dispatches commands to: a handle to send
  /// (command_atom, id, command) to, typed with commands.hpp. errc::not_found
  /// (naming the types it has) when the service has no such registry.
  result<caf::actor> aggregate(const std::string& type);

  const service_actor& handle() const { return service_; }
  caf::actor_system& system() const { return *sys_; }
  std::chrono::milliseconds timeout() const { return opts_.timeout; }

 private:
  client(caf::actor_system& sys, service_actor service, client_options opts)
      : sys_(&sys), service_(std::move(service)), opts_(opts) {}

  caf::actor_system* sys_;
  service_actor service_;
  client_options opts_;
};

}  // namespace varve::remote
