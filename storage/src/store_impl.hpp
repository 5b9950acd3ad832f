// The private state behind event_store and read_transaction.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crypto.hpp"
#include "indexes.hpp"
#include "lmdb.hpp"
#include "log_finder.hpp"
#include "record.hpp"
#include "store_files.hpp"
#include "tables.hpp"
#include "text_map.hpp"
#include "varve/storage/event_store.hpp"
#include "varve/storage/testing.hpp"
#include "write_txn.hpp"

namespace varve::detail {

/// What the single writer of this process remembers about a stream between
/// transactions. `open_chunk` holds the positions of the versions after the
/// last full stream-index chunk when `chunk_known` is set. `key` is the
/// stream's data key (encrypted stores), once the writer has unwrapped it.
struct head_state {
  stream_info info;
  std::vector<global_position> open_chunk;
  bool chunk_known = false;
  std::shared_ptr<const crypto::key_bytes> key;
};

/// "stream '<name>'", for messages.
std::string stream_label(std::string_view name);

/// The error of a handle whose master key another process rotated away.
inline error master_rotated() {
  return error{errc::auth_failed,
               "the store's master key was changed (rotate-key) by another process since this "
               "handle opened it: reopen the store with the new key"};
}

/// An append as the writer sees it: views of the caller's request, which
/// outlives the write (no copy of the events).
struct append_ref {
  std::string_view stream;
  expected_version expected;
  std::span<const new_event> events;
};

/// A write_request as the writer sees it: its appends as views, and the
/// request itself for its cursors, snapshots and views.
struct request_ref {
  std::span<const append_ref> appends;
  const write_request* rest;
};

/// The writer's caches. Valid only while no other process has committed in
/// between: `expected_txn_id` is the id the next write transaction gets when
/// this process was the last writer; any other id clears the caches. They
/// hold only what is committed: a transaction's own changes join them after
/// its commit. A transaction that appends to a stream takes the open chunk
/// of its cached head (apply(), no copy), leaving the entry's chunk unknown
/// until the commit replaces the entry; after an abort it is walked back
/// from the log again.
struct writer_cache {
  /// Heads cached beyond this many are dropped (and read again).
  static constexpr std::size_t max_streams = std::size_t{1} << 20;
  static constexpr std::size_t max_pending_keys = std::size_t{1} << 16;

  text_map<std::uint64_t> names;
  std::unordered_map<std::uint64_t, head_state> heads;
  global_position next_position = 0;  // 0 = unknown
  std::uint64_t next_stream_id = 0;   // 0 = unknown
  std::uint64_t expected_txn_id = 0;
  // The index: key ids by key text, the next id, and where it stands.
  text_map<std::uint64_t> index_ids;
  std::uint64_t next_index_id = 0;                 // 0 = unknown
  std::optional<global_position> indexed_through;  // empty = unknown
  index::pending_map pending;    // the write transactions' (batch.hpp), kept by clear()
  std::uint64_t generation = 1;  // of the ids in `pending`

  void clear() {
    names.clear();
    heads.clear();
    next_position = 0;
    next_stream_id = 0;
    index_ids.clear();
    next_index_id = 0;
    indexed_through.reset();
    // Not `pending`: a live transaction points into it. The ids it holds
    // were read under an older generation (drop_indexes in any process
    // renumbers the keys): looked up again.
    ++generation;
  }
};

/// What the work of a write transaction decided.
enum class txn_decision : std::uint8_t {
  commit,   ///< commit what it wrote
  discard,  ///< it wrote nothing: end the transaction
  rerun,    ///< abort, and run the work again in a new transaction
};

/// The work of one write transaction, for store_impl::transact.
struct txn_work {
  /// Does the work in the transaction. An error aborts it and is returned.
  function_ref<result<txn_decision>(write_txn&)> run;
  /// Called after the transaction committed.
  function_ref<void()> committed;
  /// Called after every abort, before the work runs again or an error returns.
  function_ref<void()> aborted;
};

struct store_impl {
  // First: released last, once the environment is closed.
  std::optional<store_claim> claim;
  options opts;
  lmdb::env env;
  tables dbs;
  std::size_t max_key_size = 511;

  // Encryption. `encrypted` is fixed at open. The master key may be replaced
  // by rotate() while readers use it: take it with master().
  bool encrypted = false;
  // The format version in meta; the first write transaction of a store of
  // an older version sets it to this build's (writers write format 2
  // records, which older builds do not read). Guarded by write_mutex.
  std::uint32_t stored_format = 0;
  mutable std::mutex master_mutex;
  std::shared_ptr<const crypto::master_key> current_master;  // null for a plain store
  std::shared_ptr<const crypto::master_key> master() const {
    std::lock_guard<std::mutex> lock(master_mutex);
    return current_master;
  }
  // The key check value in meta this handle opened (or rotated) with: a
  // transaction that creates a data key first checks that meta still holds
  // it, so a key is never wrapped under a master key another process retired.
  std::string key_check;  // guarded by write_mutex
  // Unwrapped data keys for readers, and the writer's sealer.
  mutable crypto::key_cache data_keys{4096};
  crypto::sealer writer_sealer;

  /// The data key of a stream, unwrapped from `wrapped` (read from `keys`
  /// in the caller's transaction) or found in the cache under the same
  /// wrapped bytes. Errors: auth_failed (it does not unwrap), corruption.
  result<std::shared_ptr<const crypto::key_bytes>> data_key(std::uint64_t stream_id,
                                                            std::string_view wrapped) const;

  // Open read transactions hold this shared; growing the map (which remaps
  // it) takes it exclusively.
  mutable std::shared_timed_mutex map_lock;
  // Where the map begins, as a log_finder checked it (nullptr: not yet, or
  // the map was remapped since; reset under map_lock held exclusively).
  mutable std::atomic<const char*> map_start{nullptr};

  // The write path.
  mutable std::mutex write_mutex;
  writer_cache cache;
  bool failed = false;
  std::string failure;
  std::atomic<std::uint64_t> events_written{0};
  // The fault-injection seam at the LMDB boundary (testing.hpp); null in
  // production. Guarded by write_mutex.
  std::shared_ptr<fault_injector> faults;

  // Handles of the view tables ("views/<name>") known to this process.
  // mdb_dbi_open must not run in two transactions at once: whoever opens a
  // table holds dbi_mutex until its transaction ends.
  mutable std::mutex dbi_mutex;
  mutable std::unordered_map<std::string, MDB_dbi> views;
  // Entries of LMDB's main table (one per table) when `views` was last
  // brought up to date: a read transaction that sees more opens the new
  // tables' handles first, since a handle opened after a transaction began
  // is not usable in it (tables created by other processes, too).
  mutable std::atomic<std::uint64_t> tables_known{0};
  mutable MDB_dbi main_table = 0;  // LMDB's main table, set by open_new_views at open

  /// Opens the handles of every view table not known yet (dbi_mutex held
  /// inside), and records how many tables the store had.
  result<void> open_new_views() const;

  /// The handle of a view table for a read transaction that read() began;
  /// std::nullopt when the view does not exist in its snapshot.
  std::optional<MDB_dbi> view_for_read(std::string_view name) const;

  result<std::vector<write_outcome>> write(std::span<const write_request> batch,
                                           write_timing* timing);
  /// The same, for requests given as views (event_store::append).
  /// `catch_up_limit`, for an empty batch: add about this many entries to
  /// the index, of the events it does not list yet (0: all of them).
  result<std::vector<write_outcome>> write(std::span<const request_ref> batch, write_timing* timing,
                                           global_position catch_up_limit = 0);
  result<void> shred(std::string_view stream);
  /// Empties the index tables and their positions in meta, in one
  /// transaction (index_up_to_date builds them again).
  result<void> drop_indexes();
  result<void> rotate(crypto::key_bytes new_key);

  /// The transaction lifecycle of every write (write_mutex held): begins a
  /// write transaction, runs the work, commits; when an LMDB call failed with
  /// MDB_MAP_FULL (in the work or at commit) it aborts, grows the map and
  /// runs the work again, and it begins again after another process grew
  /// the map. Any other failed LMDB call aborts and returns its error. A
  /// failed commit puts the store in its failed state (storage_full does
  /// not). `commit_ns`, when given, receives the time of the last commit.
  /// Errors: failed_state, storage_full, io_error, busy, and the work's own.
  result<void> transact(const txn_work& work, std::uint64_t* commit_ns = nullptr);

  /// Begins a write transaction; drops the caches when another process
  /// wrote since this one's last commit. An empty optional means "begin
  /// again" (the map was resized by another process).
  /// Errors: failed_state, io_error.
  result<std::optional<write_txn>> begin_write();
  /// Commits. true: committed; false: the map was full and has grown, run the
  /// transaction again. Errors: storage_full (the store stays usable), any
  /// other failure puts the store in its failed state.
  result<bool> commit_write(write_txn& t);

  /// Adopts a map size changed by another process (after MDB_MAP_RESIZED);
  /// through the fault seam when `writer`.
  result<void> adopt_map_size(bool writer = false) const;
  /// Doubles the map, up to opts.max_map_size. Errors: storage_full at the
  /// maximum, busy when read transactions stay open.
  result<void> grow_map();
  std::uint64_t map_size() const;
};

/// At open (and after drop_indexes): brings the indexes up to the log when
/// they are behind (a store
/// of an older format, or events an older build appended), in one write
/// transaction. Errors: as store_impl::write.
/// `strict`: a damaged record stops it with corruption (at open the store
/// still opens: readers find those events through the log).
result<void> index_up_to_date(store_impl& s, bool strict = false);

/// At open, with options.prefault_map: maps the store's pages that are in
/// the page cache into this process (prefault_resident), up to the last
/// page in use. Best effort: does nothing when the map's start cannot be
/// checked.
void prefault(store_impl& s);

struct read_state {
  const store_impl* store = nullptr;
  std::shared_lock<std::shared_timed_mutex> map_guard;
  lmdb::txn txn;
  mutable std::unordered_map<std::uint64_t, std::string_view> names;
  // Whether records' checksums are checked (options.verify_checksums;
  // verify() always checks).
  mutable bool check_sums = true;

  // Encrypted stores: keys by stream (nullptr: shredded), the opener, and the
  // decrypted bodies (kept for the transaction, or scratch for one visit).
  mutable std::unordered_map<std::uint64_t, std::shared_ptr<const crypto::key_bytes>> keys;
  mutable std::unique_ptr<crypto::sealer> opener;
  mutable std::deque<crypto::key_bytes> kept;
  mutable crypto::key_bytes scratch;
  mutable bool keep_bodies = false;  // while read_stream / read_log collect views
  mutable std::optional<log_finder> finder_;

  /// Finds records of the log by position, many at a time (made on first use).
  const log_finder& finder() const {
    if (!finder_)
      finder_.emplace(txn.get(), store->main_table, store->dbs.events, store->map_start);
    return *finder_;
  }

  /// The name of stream `stream_id` in this snapshot (cached). Errors:
  /// not_found.
  result<std::string_view> name_of(std::uint64_t stream_id) const;

  /// The head of stream `name`, whose entry in stream_names holds
  /// `id_bytes`. Errors: corruption (a bad id, no head), io_error.
  result<stream_info> head_of(std::string_view name, std::string_view id_bytes) const;

  /// Decodes the record at `position`, opening it when sealed; the opened
  /// body lives with the transaction when `keep`, else until the next call.
  result<event_view> event(global_position position, std::string_view bytes, bool keep) const;
  /// The same into `out`, for the read loops: std::nullopt on success, and
  /// the error (built only then) on failure.
  std::optional<error> event_into(global_position position, std::string_view bytes, bool keep,
                                  event_view& out) const;
  /// The event of a decoded record of an encrypted store (or an unsealed
  /// record there, which does not authenticate).
  result<void> open_sealed(global_position position, event_view& v, const record::body& d,
                           bool keep) const;
};

/// Keeps opened bodies for the transaction while it lives (vector reads).
struct keeping_bodies {
  explicit keeping_bodies(const read_state& s) : state(s) { state.keep_bodies = true; }
  ~keeping_bodies() { state.keep_bodies = false; }
  const read_state& state;
};

}  // namespace varve::detail
