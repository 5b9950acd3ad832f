// varve::event_store: an append-only event log with streams, versions and
// consumer cursors in one LMDB environment.
//
// Thread safety: an event_store may be shared by any number of threads. Writes
// (append, write, save_cursor) are serialised inside the store; reads run in
// parallel with each other and with writes, each in its own read transaction.
// Several processes may open the same directory; their appends keep one
// gapless global order (LMDB's writer lock orders them).
//
// Errors: no call throws. Every call returns a result; see error.hpp for the
// codes. A write that fails leaves the store as it was: nothing of it is
// visible, ever.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "varve/storage/error.hpp"
#include "varve/storage/event.hpp"
#include "varve/storage/options.hpp"
#include "varve/storage/query.hpp"

namespace varve {

namespace detail {
struct store_impl;
struct read_state;
}  // namespace detail

class fault_injector;

/// Read from the newest end: as `from` in a backward read, the last version or
/// position.
inline constexpr std::uint64_t from_end = ~std::uint64_t{0};

/// A consumer's checkpoint to store, as part of a write_request: the last
/// position it processed, and a small state of its own (projections keep
/// their mode, status and last error there as JSON).
struct cursor_update {
  std::string consumer{};
  global_position position = 0;
  std::string state{};
  /// When set, the request fails with wrong_expected_version unless the
  /// stored cursor is at this position (0: no cursor yet) — so two
  /// instances of one consumer cannot both move it.
  std::optional<global_position> expected{};
};

/// A stored checkpoint; `state` is a view valid for the read transaction.
struct cursor_view {
  global_position position = 0;
  std::string_view state;
};

/// A snapshot of an aggregate's state at `version` of `stream` (which must
/// exist, possibly created by the same request). `schema` is the version of
/// the encoding of `bytes`, chosen by the aggregate. Replaces any earlier one.
struct snapshot_update {
  std::string stream{};
  stream_version version = 0;
  std::uint32_t schema = 0;
  std::string bytes{};
};

/// A change to a read-model view: a named table of the store ("views/<name>"
/// in LMDB), created by its first write. `put` stores `value` under `key`,
/// `erase` removes `key` (absent keys are fine), `clear` empties the view,
/// `erase_if_equal` removes `key` only while it holds `value` (otherwise it
/// leaves it, and the request still succeeds).
///
/// An empty `view` means the view of the update before it in the same
/// request: a run of rows to one view names it once (a view name of over 15
/// bytes costs an allocation per copy). The first update of a request must
/// name its view (invalid_argument otherwise).
struct view_update {
  enum class op : std::uint8_t { put, erase, clear, erase_if_equal };
  std::string view{};
  op kind = op::put;
  std::string key{};
  std::string value{};
};

/// One unit of a batch write: appends to one or more streams (each stream at
/// most once, each with its own expectation), cursor updates, snapshots and
/// view changes, committed all together or not at all. Cursors, snapshots
/// and views are written after the appends, in the order given.
/// `condition`, when set, is checked after the streams' expectations and
/// before anything is written (see append_condition in query.hpp).
struct write_request {
  std::vector<append_request> appends{};
  std::vector<cursor_update> cursors{};
  std::vector<snapshot_update> snapshots{};
  std::vector<view_update> views{};
  std::optional<append_condition> condition{};
};

/// Where the time of one batch write went.
struct write_timing {
  std::uint64_t apply_ns = 0;   ///< checking and writing the requests in the transaction
  std::uint64_t commit_ns = 0;  ///< mdb_txn_commit: page writes and the fsync
};

/// A stored snapshot; `bytes` is a view valid for the read transaction.
struct snapshot_view {
  stream_version version = 0;
  std::uint32_t schema = 0;
  std::string_view bytes;
};

/// The outcome of one write_request: one append_result per entry of
/// `appends`, in order, or the error that rejected the whole request.
using write_outcome = result<std::vector<append_result>>;

/// A non-owning callable reference, for the visitor-style reads.
template <class Signature>
class function_ref;

template <class R, class... Args>
class function_ref<R(Args...)> {
 public:
  /// Refers to `f`, which must outlive the call it is passed to.
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, function_ref>) function_ref(F&& f)
  noexcept  // NOLINT: implicit on purpose
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

/// A consistent snapshot of the store, as of the moment it began. Views it
/// hands out (event_view, std::string_view) point into the memory map and stay
/// valid until the transaction is destroyed; copy what must outlive it.
///
/// Absence: a stream is named by the caller to read its events, so reading
/// (scan_stream, read_stream) a stream that does not exist is not_found: a
/// mistyped name must not read as an empty stream. Everything else that may
/// be absent reads as absent, without an error: stream(), cursor(),
/// snapshot() and view_get() answer std::nullopt, and scan_view() of a view
/// that no write created yet visits nothing (a view exists once written; an
/// empty view and a missing one are the same to its readers).
///
/// Encrypted stores: metadata and payload are decrypted into memory the
/// transaction owns (no zero copy). Those of events handed to a scan visitor
/// are valid only during that call of `visit`; those returned by event_at,
/// read_stream and read_log live as long as the transaction. An event whose
/// bytes or place were tampered with reads as errc::auth_failed.
/// Move-only; use from one thread at a time (it may move between threads).
/// Keep read transactions short: while one is open in this process the map
/// cannot grow, and the pages it sees cannot be reused. Destroy it before the
/// event_store it came from: it refers to the store's environment, and one
/// outliving its store (a transaction in a global, the store in a
/// function-local static destroyed first) is undefined behaviour.
class read_transaction {
 public:
  read_transaction(read_transaction&&) noexcept;
  read_transaction& operator=(read_transaction&&) noexcept;
  ~read_transaction();

  /// Position of the newest event, which is also the number of events (0: empty).
  global_position head() const;

  /// Number of streams ever created (shredded ones included).
  std::uint64_t stream_count() const;

  /// The stream's id, version, last position and state; std::nullopt when no
  /// stream has this name. Errors: corruption.
  result<std::optional<stream_info>> stream(std::string_view name) const;

  /// The name of the stream with this internal id. Errors: not_found.
  result<std::string_view> stream_name(std::uint64_t stream_id) const;

  /// The event at `position`. Errors: not_found (position 0 or past the head),
  /// corruption (the stored record does not decode).
  result<event_view> event_at(global_position position) const;

  /// Visits up to `limit` events of the stream `name` in version order,
  /// starting at version `from` (forward: from 0 or 1 = the first; backward:
  /// from_end = the last); `visit` returns false to stop early. Returns the
  /// number visited. Errors: not_found (no such stream), corruption (a
  /// record that does not decode or fails its checksum), auth_failed (a
  /// sealed record that does not authenticate, or a stream whose key does
  /// not unwrap), io_error.
  result<std::size_t> scan_stream(std::string_view name, stream_version from, direction dir,
                                  std::size_t limit,
                                  function_ref<bool(const event_view&)> visit) const;

  /// Visits up to `limit` events of the global log starting at position
  /// `from` (forward: 0 or 1 = the first; backward: from_end = the newest).
  /// Returns the number visited. Errors: corruption, auth_failed, io_error
  /// (as scan_stream).
  result<std::size_t> scan_log(global_position from, direction dir, std::size_t limit,
                               function_ref<bool(const event_view&)> visit) const;

  /// scan_stream / scan_log collected into a vector of views.
  result<std::vector<event_view>> read_stream(std::string_view name, stream_version from,
                                              direction dir, std::size_t limit) const;
  result<std::vector<event_view>> read_log(global_position from, direction dir,
                                           std::size_t limit) const;
  /// read_log into `out` (cleared first, its capacity kept), for a reader
  /// that reads batch after batch. Returns the number read.
  result<std::size_t> read_log(global_position from, direction dir, std::size_t limit,
                               std::vector<event_view>& out) const;

  /// Visits up to `limit` events that match `q` (query.hpp), in log order
  /// from position `from` (forward: 0 or 1 = the first; backward: from_end
  /// = the newest), reading only the positions the indexes list for it.
  /// Events of shredded streams are visited as envelopes with `shredded`
  /// set (their type, tags and stream stay). Returns the number visited; a
  /// count below `limit` means every match up to head() (forward) was seen.
  /// Errors: invalid_argument (a query term that is empty or over its
  /// limit), corruption (a record or index entry that does not decode),
  /// auth_failed, io_error.
  result<std::size_t> scan_query(const query& q, global_position from, direction dir,
                                 std::size_t limit,
                                 function_ref<bool(const event_view&)> visit) const;

  /// scan_query collected into a vector of views.
  result<std::vector<event_view>> read_query(const query& q, global_position from, direction dir,
                                             std::size_t limit) const;

  /// The stored checkpoint of a consumer; std::nullopt when it has none.
  result<std::optional<global_position>> cursor(std::string_view consumer) const;

  /// The stored checkpoint with its state; std::nullopt when there is none.
  result<std::optional<cursor_view>> cursor_state(std::string_view consumer) const;

  /// Visits every consumer's checkpoint in name order; `visit` returns false
  /// to stop. Returns the number visited. Errors: corruption (a stored
  /// cursor shorter than its position), io_error.
  result<std::size_t> scan_cursors(
      function_ref<bool(std::string_view consumer, const cursor_view&)> visit) const;

  /// Visits every stream name with its info, in name order; `visit` returns
  /// false to stop. Returns the number visited. Errors: corruption (a name
  /// without a valid id or head), io_error.
  result<std::size_t> scan_streams(
      function_ref<bool(std::string_view name, const stream_info&)> visit) const;

  /// The latest snapshot of a stream; std::nullopt when it has none (or the
  /// stream does not exist). Errors: corruption.
  result<std::optional<snapshot_view>> snapshot(std::string_view stream) const;

  /// The value under `key` in view `view`; std::nullopt when the key or the
  /// view does not exist (in this transaction's snapshot). Errors: io_error.
  result<std::optional<std::string_view>> view_get(std::string_view view,
                                                   std::string_view key) const;

  /// Visits the entries of view `view` in key order, starting at the first
  /// key >= `from_key`; `visit` returns false to stop. A view that does not
  /// exist has no entries. Returns the number visited. Errors: io_error.
  result<std::size_t> scan_view(
      std::string_view view, std::string_view from_key,
      function_ref<bool(std::string_view key, std::string_view value)> visit) const;

 private:
  friend class event_store;
  explicit read_transaction(std::unique_ptr<detail::read_state> state);
  std::unique_ptr<detail::read_state> state_;
};

/// What event_store::verify found.
struct verify_report {
  std::uint64_t events = 0;         ///< records read
  std::uint64_t streams = 0;        ///< streams checked
  std::uint64_t shredded = 0;       ///< events of shredded streams (envelopes only)
  std::uint64_t chunks = 0;         ///< stream-index chunks checked
  std::uint64_t index_entries = 0;  ///< type, category and tag index entries checked
  /// Pages of data.mdb checked before the walk (branch, leaf and overflow
  /// pages of every LMDB tree; see verify).
  std::uint64_t pages = 0;
  /// Every fault found, in words ("position 17: ..."); empty when the store
  /// is sound. At most 1000 are kept; `faults_total` counts them all.
  std::vector<std::string> faults;
  std::uint64_t faults_total = 0;
};

/// Figures about a store, read without scanning.
struct store_stats {
  global_position head = 0;  ///< = number of events
  std::uint64_t streams = 0;
  std::uint64_t map_size = 0;          ///< current size of the memory map, bytes
  std::uint64_t used_bytes = 0;        ///< pages in use × page size
  std::uint64_t commits = 0;           ///< commits that wrote, by every process, since creation
  std::uint64_t events_committed = 0;  ///< events those commits appended
  std::uint64_t events_written = 0;    ///< events appended through this handle
  bool encrypted = false;
};

/// What event_store::compact did.
struct compact_report {
  std::uint64_t bytes_before = 0;  ///< size of data.mdb before
  std::uint64_t bytes_after = 0;   ///< size of data.mdb after
  std::uint64_t entries = 0;       ///< entries copied, over every table
};

class event_store {
 public:
  /// Opens (or creates) the store in `opts.directory`. One handle per store
  /// per process: share it between threads. A child made by fork(2) opens
  /// the store itself and leaves the handles it inherited alone (LMDB's
  /// locks are its parent's). Processes that open a new store at once
  /// create it one at a time; the others open what the first made. A store
  /// of an older format, or
  /// one whose newest events an older build appended, gets its missing
  /// index entries first, about 2^20 entries per write transaction (a store with
  /// many distinct tags takes a while: 300k events with 900k distinct tags,
  /// about 9 s here).
  /// Errors: invalid_argument (a bad option, a path that is not a directory,
  /// a directory that cannot be created or written, a master key given to
  /// a plain store), auth_failed (an encrypted store without its key, or
  /// with a wrong one), format_version (the store was written by a newer
  /// Varve), corruption (not a Varve store, or damaged files: an empty or
  /// truncated data.mdb), busy (the store is already open in this process,
  /// another process is compacting it, or has been creating it for 10 s),
  /// storage_full, io_error.
  static result<std::unique_ptr<event_store>> open(options opts);

  /// Rewrites the closed store in `directory` into a fresh data file and
  /// swaps it in place of data.mdb. The new file holds the store's entries
  /// and nothing else: the bytes LMDB leaves behind in free pages and in the
  /// unused part of pages (the data of shredded streams in a plain store,
  /// old wrapped keys, deleted snapshots, erased view rows) are not carried
  /// over, and the file shrinks to what is in use. No key is needed.
  /// A crash during compaction leaves the old file as the store (the new
  /// one replaces it with an atomic rename). Needs room for a second copy.
  /// The old file's blocks go back to the filesystem, which may keep their
  /// bytes on the device until it reuses them.
  /// Errors: busy (a handle of this or any other process has the store
  /// open; then nothing is changed), not_found (no store there),
  /// corruption, storage_full, io_error.
  static result<compact_report> compact(const std::filesystem::path& directory);

  ~event_store();
  event_store(const event_store&) = delete;
  event_store& operator=(const event_store&) = delete;

  /// Appends `events` to `stream` if `expected` holds, in one transaction.
  /// Errors: wrong_expected_version (the message names expected and actual),
  /// invalid_argument (empty or over-long stream name, name not UTF-8, no
  /// events, empty type, event over max_event_bytes, a bad tag: empty, over
  /// max_tag_bytes, not UTF-8, twice on one event, or over max_tags of them),
  /// shredded, storage_full, io_error, failed_state.
  result<append_result> append(std::string_view stream, expected_version expected,
                               std::span<const new_event> events);

  /// Appends to several streams atomically: every expectation holds and all
  /// events are written, or nothing is. One append_result per request, in
  /// order. A stream may appear only once. Errors: as for append.
  result<std::vector<append_result>> append(std::span<const append_request> requests);

  /// Appends to several streams atomically under a DCB condition: as the
  /// form above, and the request fails with wrong_expected_version when an
  /// event matching the condition's query is in the log after its position.
  result<std::vector<append_result>> append(std::span<const append_request> requests,
                                            const append_condition& condition);

  /// Group commit: applies many independent requests in ONE write
  /// transaction and one sync. Each request is checked completely before it
  /// writes, so a request that fails (a version conflict, bad input) fails
  /// alone and leaves no trace; the others commit. The outer result fails
  /// only when the transaction itself cannot commit (storage_full, io_error,
  /// failed_state); then nothing of the batch was written.
  /// `timing`, when given, receives where the time went.
  result<std::vector<write_outcome>> write(std::span<const write_request> batch,
                                           write_timing* timing = nullptr);

  /// Forgets a stream's data for good, in one transaction. In an encrypted
  /// store its data key is overwritten and deleted (crypto-shredding); in a
  /// plain store its events' metadata and payloads are erased; its snapshot
  /// is deleted in both. LMDB copies pages on write: the old bytes stay in
  /// free pages of the file until they are reused (see the README). Afterwards
  /// reads return each event's envelope with `shredded` set, whole-log reads
  /// go past them, appends to the stream fail with errc::shredded; counts and
  /// positions do not change. Shredding a shredded stream does nothing.
  /// Errors: not_found (no such stream), io_error, failed_state.
  result<void> shred(std::string_view stream);

  /// Drops the type, category and tag indexes and builds them again from
  /// the log (derived data: for an index that verify() reports damaged).
  /// Readers and other processes see either the old indexes or none (their
  /// queries then read the log) until the rebuild commits, about 2^20 index
  /// entries per transaction. Errors: corruption (a record of the log that
  /// does not decode: the indexes stop before it, verify() names it),
  /// storage_full, io_error, failed_state.
  result<void> rebuild_indexes();

  /// Re-wraps every data key under `new_key` in one transaction; afterwards
  /// only the new key opens the store. Errors: invalid_argument (the store
  /// is not encrypted, or a bad key file), io_error, failed_state.
  result<void> rotate_master_key(const std::array<std::uint8_t, 32>& new_key);
  result<void> rotate_master_key(const std::filesystem::path& new_key_file);

  /// Walks the whole store in one read transaction and checks it. First the
  /// pages of data.mdb, read from the file (never through LMDB's map): every
  /// B-tree of the snapshot is well formed, its pages lie inside the file,
  /// and none is reached twice; damage there is reported as faults that name
  /// the page ("page 17 (table 'events'): ..."), and then the store is not
  /// walked further, since LMDB would fault on such pages. Then the log:
  /// positions gapless from 1, every record decodes (and authenticates,
  /// encrypted), each stream's versions run 1..n with correct links, heads,
  /// names and ids agree with the log, every stream-index chunk points at
  /// the right events, and the type, category and tag indexes list exactly
  /// the events of the log that have that type, category or tag (rebuilt
  /// from the log in memory: about 8 bytes per index entry). Faults are reported, not returned as
  /// errors; the result fails only when the store cannot be read at all. `progress`, when given, is
  /// called now and then with (events checked, head).
  result<verify_report> verify(
      std::function<void(std::uint64_t done, std::uint64_t total)> progress = {}) const;

  /// Writes a consistent, compacted copy of the store into `destination`
  /// (created mode 0700 when absent; must be empty), while writers go on.
  /// The copy's data.mdb is created mode 0600 whatever the umask, and synced
  /// with its directory before the call returns. The copy opens with the
  /// same key. Errors: invalid_argument (destination not empty, or cannot be
  /// created), io_error (then no data.mdb of this call is left behind).
  result<void> backup(const std::filesystem::path& destination) const;

  /// Whether the store encrypts what it keeps.
  bool encrypted() const noexcept;

  /// Stores a consumer's checkpoint (position only, no state) in its own
  /// transaction. Errors: invalid_argument (an empty consumer name, or one
  /// over 511 bytes), storage_full, io_error, failed_state.
  result<void> save_cursor(std::string_view consumer, global_position position);

  /// Begins a read transaction (see read_transaction for its rules).
  /// Errors: busy (too many readers), io_error.
  result<read_transaction> read() const;

  /// Whether an earlier I/O failure stopped writes (see failed_state).
  bool failed() const;

  /// Owned-copy conveniences, each in its own read transaction. Errors: as
  /// read() and as read_transaction's scan_stream / scan_log.
  result<std::vector<recorded_event>> read_stream(std::string_view name, stream_version from = 1,
                                                  direction dir = direction::forward,
                                                  std::size_t limit = SIZE_MAX) const;
  result<std::vector<recorded_event>> read_log(global_position from = 1,
                                               direction dir = direction::forward,
                                               std::size_t limit = SIZE_MAX) const;
  /// Owned copies of read_transaction::scan_query, with their stream names
  /// and tags.
  result<std::vector<recorded_event>> read_query(const query& q, global_position from = 1,
                                                 direction dir = direction::forward,
                                                 std::size_t limit = SIZE_MAX) const;

  /// Figures about the store, in one read transaction (no scan).
  /// Errors: busy (too many readers), io_error.
  result<store_stats> stats() const;

  const options& opts() const noexcept;

 private:
  explicit event_store(std::unique_ptr<detail::store_impl> impl);
  friend void testing_inject_faults(event_store&, std::shared_ptr<fault_injector>);
  std::unique_ptr<detail::store_impl> impl_;
};

}  // namespace varve
