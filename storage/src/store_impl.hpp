// The private state behind event_store and read_transaction.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crypto.hpp"
#include "lmdb.hpp"
#include "tables.hpp"
#include "varve/storage/event_store.hpp"

namespace varve::detail {

/// What the single writer of this process remembers about a stream between
/// transactions. `open_chunk` holds the positions of the versions after the
/// last full stream-index chunk when `chunk_known` is set.
struct head_state {
  stream_info info;
  std::vector<global_position> open_chunk;
  bool chunk_known = false;
};

/// A hash for maps keyed by std::string that are looked up by string_view.
struct name_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
template <class V>
using name_map = std::unordered_map<std::string, V, name_hash, std::equal_to<>>;

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
/// this process was the last writer; any other id clears the caches.
struct writer_cache {
  name_map<std::uint64_t> names;
  std::unordered_map<std::uint64_t, head_state> heads;
  global_position next_position = 0;  // 0 = unknown
  std::uint64_t next_stream_id = 0;   // 0 = unknown
  std::uint64_t expected_txn_id = 0;

  void clear() {
    names.clear();
    heads.clear();
    next_position = 0;
    next_stream_id = 0;
  }
};

struct store_impl {
  options opts;
  lmdb::env env;
  tables dbs;
  std::size_t max_key_size = 511;

  // Encryption: the master key (null for a plain store), the unwrapped data
  // keys shared by writer and readers, and the writer's sealer.
  std::unique_ptr<crypto::master_key> master;
  mutable crypto::key_cache data_keys{4096};
  crypto::sealer writer_sealer;

  /// The data key of a stream, from the cache or unwrapped from `keys` in
  /// `txn`; nullptr when the stream has none (it was shredded).
  /// Errors: auth_failed (it does not unwrap), corruption.
  result<std::shared_ptr<const crypto::key_bytes>> data_key(MDB_txn* txn,
                                                            std::uint64_t stream_id) const;

  // Open read transactions hold this shared; growing the map (which remaps
  // it) takes it exclusively.
  mutable std::shared_timed_mutex map_lock;

  // The write path.
  mutable std::mutex write_mutex;
  writer_cache cache;
  bool failed = false;
  std::string failure;
  std::atomic<std::uint64_t> events_written{0};
  int injected_commit_failure = 0;  // testing_fail_next_commit

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

  /// The handle of a view table for reading; std::nullopt when it does not
  /// exist. Registers tables created since the store was opened.
  result<std::optional<MDB_dbi>> view_for_read(std::string_view name) const;

  result<std::vector<write_outcome>> write(std::span<const write_request> batch,
                                           write_timing* timing);
  /// The same, for requests given as views (event_store::append).
  result<std::vector<write_outcome>> write(std::span<const request_ref> batch,
                                           write_timing* timing);
  result<void> shred(std::string_view stream);
  result<void> rotate(crypto::key_bytes new_key);

  /// Begins a write transaction (write_mutex held); drops the caches when
  /// another process wrote since this one's last commit. An empty optional
  /// means "begin again" (the map was resized by another process).
  /// Errors: failed_state, io_error.
  result<std::optional<lmdb::txn>> begin_write();
  /// Commits. true: committed; false: the map was full and has grown, run the
  /// transaction again. Errors: storage_full (the store stays usable), any
  /// other failure puts the store in its failed state.
  result<bool> commit_write(lmdb::txn& t);

  /// Adopts a map size changed by another process (after MDB_MAP_RESIZED).
  result<void> adopt_map_size() const;
  /// Doubles the map, up to opts.max_map_size. Errors: storage_full at the
  /// maximum, busy when read transactions stay open.
  result<void> grow_map();
  std::uint64_t map_size() const;
};

struct read_state {
  const store_impl* store = nullptr;
  std::shared_lock<std::shared_timed_mutex> map_guard;
  lmdb::txn txn;
  mutable std::unordered_map<std::uint64_t, std::string_view> names;

  // Encrypted stores: keys by stream (nullptr: shredded), the opener, and the
  // decrypted bodies (kept for the transaction, or scratch for one visit).
  mutable std::unordered_map<std::uint64_t, std::shared_ptr<const crypto::key_bytes>> keys;
  mutable std::unique_ptr<crypto::sealer> opener;
  mutable std::deque<crypto::key_bytes> kept;
  mutable crypto::key_bytes scratch;
  mutable bool keep_bodies = false;  // while read_stream / read_log collect views

  /// Decodes the record at `position`, opening it when sealed; the opened
  /// body lives with the transaction when `keep`, else until the next call.
  result<event_view> event(global_position position, std::string_view bytes, bool keep) const;
};

/// Keeps opened bodies for the transaction while it lives (vector reads).
struct keeping_bodies {
  explicit keeping_bodies(const read_state& s) : state(s) { state.keep_bodies = true; }
  ~keeping_bodies() { state.keep_bodies = false; }
  const read_state& state;
};

}  // namespace varve::detail
