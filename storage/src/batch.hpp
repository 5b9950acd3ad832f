// The state of one batch write transaction, and the steps the writer
// takes for each request (private to varve::storage):
//
//   writer.cpp         the batch: its transaction, its requests in order,
//                      the heads and counts it writes, what it caches after
//                      the commit
//   append_checks.cpp  checking one stream append: input, head,
//                      expectation, idempotency, data key
//   append.cpp         writing it: stream creation, the log, the index chunk
//   side_tables.cpp    checking and writing cursors, snapshots and views
//
// Checks write nothing; a step that fails after the request's checks
// poisons the transaction (the batch runs again without the request).
#pragma once

#include <memory>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "indexes.hpp"
#include "store_impl.hpp"

namespace varve::detail {

/// A data key this transaction created: it joins the readers' cache after
/// the commit, and the writer's sealer forgets it after an abort.
struct created_key {
  std::uint64_t stream_id;
  std::string wrapped;
  std::shared_ptr<const crypto::key_bytes> key;
};

/// One stream of a request, after its checks.
struct plan {
  const append_ref* request;
  std::optional<head_state> head;  // empty: the stream does not exist yet
  std::optional<append_result> idempotent;
  std::shared_ptr<const crypto::key_bytes> key;  // encrypted stores
};

/// The state of one write transaction of a batch.
struct batch_txn {
  batch_txn(store_impl& s, write_txn& t);
  ~batch_txn();
  batch_txn(const batch_txn&) = delete;
  batch_txn& operator=(const batch_txn&) = delete;
  store_impl& store;
  write_txn& txn;
  global_position next_position = 0;
  std::uint64_t next_stream_id = 0;
  // The transaction's own allocations (the nodes of `touched`) come from
  // this arena and go with it: none per stream touched reaches malloc.
  std::pmr::monotonic_buffer_resource arena;
  std::pmr::unordered_map<std::uint64_t, head_state> touched{&arena};
  text_map<std::uint64_t> created;
  std::vector<plan> plans;  // the request being applied (kept: no allocation per request)
  timestamp_us now = 0;     // the clock when the transaction began: the time of its events
  std::uint64_t events = 0;
  bool wrote = false;
  /// Set when the request being applied failed after it began writing: this
  /// transaction must not commit.
  bool poisoned = false;
  /// Whether meta still holds this handle's key check (encrypted stores;
  /// looked up once, when the transaction first creates a data key).
  bool master_checked = false;
  std::vector<created_key> new_keys;
  // View tables created by this transaction (the handle lock is held from
  // the first creation until the transaction ends).
  std::unordered_map<std::string, MDB_dbi> new_views;
  // The cursor of the appends to `events`; LMDB closes it with the
  // transaction (a write transaction's cursors end with it).
  MDB_cursor* log_cursor = nullptr;
  // The index: the position it is stored through (meta "indexed_through"),
  // the positions of each key added since (events older builds wrote, then
  // this transaction's), written before the commit (write_index), and the
  // index keys this transaction created.
  global_position indexed_through = 0;
  global_position segmented_through = 0;  // meta "segmented_through"
  // (the writer cache's map; `pending_touched` lists the keys this
  // transaction added to, emptied when it ends)
  index::pending_map& pending;
  std::vector<index::pending_map::value_type*> pending_touched;
  std::string pending_key;                              // scratch for note_event
  index::pending_map::value_type* last_type = nullptr;  // note_event's last keys
  index::pending_map::value_type* last_category = nullptr;
  text_map<std::uint64_t> new_index_ids;
  std::uint64_t next_index_id = 0;
  // A batch with no requests may index part of what the index lacks: about
  // this many index entries (0: all), through `caught_up_to`.
  global_position catch_up_limit = 0;
  global_position caught_up_to = 0;
  /// The position the index covers once this transaction commits.
  global_position indexed_to() const {
    return catch_up_limit != 0 ? caught_up_to : next_position - 1;
  }

  /// Lookups of the stream index walk, through the transaction's seam.
  struct txn_lookup {
    write_txn* t;
    int operator()(MDB_dbi dbi, MDB_val& k, MDB_val& v) const { return t->get(dbi, k, v); }
  } lookup_in;
};

/// Checks one stream of a request: input, state, key, expectation,
/// idempotency. Writes nothing. Errors: invalid_argument,
/// wrong_expected_version, shredded, corruption, auth_failed, and LMDB's.
result<plan> check(batch_txn& b, const append_ref& r);

/// The stream's head as this transaction sees it; std::nullopt when the
/// stream does not exist.
result<std::optional<head_state>> find_head(batch_txn& b, std::string_view name);

/// Writes one checked stream append. Errors: LMDB's, a failed seal, a
/// damaged stream found while indexing it.
result<append_result> apply(batch_txn& b, plan& p);

/// Adds an event at `position` of `stream` to the pending index entries.
template <class Tags>
void note_event(batch_txn& b, global_position position, std::string_view stream,
                std::string_view type, const Tags& tags) {
  index::keys_of(type, stream, tags, [&](char kind, std::string_view text) {
    // The events of a batch mostly share their type and category: the last
    // key of each kind is looked up without hashing.
    index::pending_map::value_type** last = kind == index::kind_type       ? &b.last_type
                                            : kind == index::kind_category ? &b.last_category
                                                                           : nullptr;
    index::pending_map::value_type* key = nullptr;
    if (last && *last && std::string_view((*last)->first).substr(1) == text) {
      key = *last;
    } else {
      index::key_text_into(kind, text, b.pending_key);
      auto it = b.pending.find(b.pending_key);
      if (it == b.pending.end()) it = b.pending.emplace(b.pending_key, index::pending_key{}).first;
      key = &*it;
      if (last && key->first.size() == 1 + text.size()) *last = key;  // not a cut long text
    }
    if (key->second.positions.empty()) b.pending_touched.push_back(key);
    key->second.positions.push_back(position);
  });
}

/// At the start of a transaction: reads where the index stands and adds the
/// events after it (written by an older build, or before the store had
/// indexes) to the pending entries. Errors: corruption, and LMDB's.
result<void> catch_up_index(batch_txn& b);

/// Before the commit: writes the pending entries to the index and the
/// indexed position to meta. Errors: corruption, and LMDB's.
result<void> write_index(batch_txn& b);

/// Checks a request's append condition, whose query the caller validated
/// (index::validate), against the log as this transaction sees it
/// (earlier requests of the batch included). Errors:
/// wrong_expected_version (a matching event; the message names it),
/// corruption, io_error.
result<void> check_condition(batch_txn& b, const append_condition& c);

/// Checks a request's cursor update, snapshot or view change; writes nothing.
result<void> check_cursor(batch_txn& b, const cursor_update& c);
result<std::uint64_t> check_snapshot(batch_txn& b, const std::vector<plan>& plans,
                                     const snapshot_update& u);
/// check_view: the update `u` to view `name` (u.view, or the view of the
/// update before it when u.view is empty); `check_name` false skips the
/// name's checks (it passed them in an earlier update of the request).
result<void> check_view(const store_impl& s, const view_update& u, const std::string& name,
                        bool check_name = true);

/// Checks that view `name` exists or one more fits (options.max_views).
/// Errors: invalid_argument.
result<void> check_view_room(batch_txn& b, const std::string& name);

/// Writes a request's cursors, snapshots and views (after its appends).
result<void> write_side_tables(batch_txn& b, const write_request& req,
                               const std::vector<std::uint64_t>& snapshot_ids);

}  // namespace varve::detail
