// The type, category and tag indexes of the log (private to
// varve::storage; the layout is in storage/FORMAT.md):
//
//   index_keys    kind:u8 text                 -> key id u64 LE
//   index_names   key id (INTEGERKEY)          -> kind:u8 text
//   index_recent  first position (INTEGERKEY)  -> one transaction's key lists
//   index         tier:u8 ‖ span first BE      -> the span's key lists
//
// Written like a log, not like a tree of keys: a transaction appends one
// `index_recent` entry (a page or two, however many keys its events have).
// When the indexed log passes a multiple of 4096 positions, the recent
// entries up to it become one segment of that 4096-position span (tier 2),
// appended at the end of `index`; 16 such spans become one span of 65536
// (tier 1), and 16 of those one span of 2^20 (tier 0). A recent entry and a
// segment hold the same thing, every key's positions in a range, in the
// same encoding (key lists, below). Small transactions would leave many
// recent entries: at max_recent_entries the newest are folded into one. Which
// spans exist follows from meta
// "segmented_through" alone (span_at). meta "indexed_through": the log is
// indexed up to that position (a store of an older format, or events an
// older build wrote, are indexed by the next transaction that writes).
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "log_finder.hpp"
#include "tables.hpp"
#include "text_map.hpp"
#include "varve/storage/error.hpp"
#include "varve/storage/event.hpp"
#include "varve/storage/event_store.hpp"
#include "varve/storage/query.hpp"

namespace varve::detail::index {

/// The tiers of segments, largest spans first: span sizes 2^20, 2^16, 2^12.
inline constexpr int tiers = 3;
inline constexpr unsigned tier_bits[tiers] = {20, 16, 12};
/// Segments cover the log in whole spans of the smallest tier.
inline constexpr global_position segment_span = global_position{1} << tier_bits[tiers - 1];

/// When a transaction finds this many recent entries, it folds the newest of
/// them and its own positions into one (a reader looks a key up in each
/// entry; index_writer.cpp says which it folds).
inline constexpr std::size_t max_recent_entries = 16;

/// A span of positions [first, first + size - 1] of one tier.
struct span {
  std::uint8_t tier = 0;
  global_position first = 0;
  global_position size = 0;
  global_position last() const { return first + size - 1; }
};

/// The span of the stored segments that holds position p, for
/// 1 <= p <= segmented_through (a multiple of segment_span): tier 0 up to the
/// last multiple of 2^20, tier 1 up to the last multiple of 2^16, tier 2
/// after that.
span span_at(global_position segmented_through, global_position p);

/// The key of span `s`'s segment (9 bytes: tier, first position BE).
std::string segment_key(const span& s);

/// The size of a segment key; `index` entries of other sizes are of an
/// older layout.
inline constexpr std::size_t segment_key_size = 9;

/// Splits a segment key; false when it is not one.
bool decode_segment_key(std::string_view key, span& s);

/// Appends the positions of one key's list (varints: the first as its
/// distance from `base`, then the gaps) to `out`; false when it is empty,
/// does not decode or leaves [base, limit].
bool decode_positions(std::string_view value, global_position base, global_position limit,
                      std::vector<global_position>& out);

/// Index entries as (key id, position) pairs.
using postings = std::vector<std::pair<std::uint64_t, global_position>>;

/// Key lists (a recent entry, a segment) from postings sorted by key id
/// then position, every position >= `first`: u32 LE count n of keys, their
/// n u64 LE ids, n+1 u32 LE offsets into the lists, then each key's
/// positions (see decode_positions, from `first`).
std::string encode_lists(global_position first, const postings& sorted);

/// The positions of key `id` in key lists that begin at `first`, appended
/// to `out` (binary search on the ids; nothing when the key is not there).
/// false when the lists do not decode or leave [first, limit].
bool lookup_list(std::string_view lists, global_position first, global_position limit,
                 std::uint64_t id, std::vector<global_position>& out);

/// Calls visit(id, positions) for each key of key lists that begin at
/// `first`, in id order; false when they do not decode or leave
/// [first, limit].
bool each_list(std::string_view lists, global_position first, global_position limit,
               function_ref<void(std::uint64_t, const std::vector<global_position>&)> visit);

/// Appends each (key id, position) of key lists that begin at `first` to
/// `out`; false when they do not decode.
bool list_postings(std::string_view lists, global_position first, postings& out);

/// Key lists of consecutive ranges, in log order: each part's lists and the
/// position they begin at.
struct list_part {
  std::string_view lists;
  global_position first = 0;
  global_position last = 0;
};

/// Merges the key lists of `parts` (ranges in ascending order, within
/// [first, last]) into one, beginning at `first`, into `out`: each key's
/// positions from every part, in log order. false when a part does not
/// decode or leaves its range. `shared_keys`: the merge passes over the
/// parts once per key, the cheaper way when the parts have most keys in
/// common (the segments of a span) or are few (up to 8 recent entries: W9a's
/// seal 4,688 -> 4,563 instructions an event); else it keeps their next keys
/// in a heap.
/// On false, `*failed` (when given) is the index of the part at fault.
bool merge_lists(const std::vector<list_part>& parts, global_position first, std::string& out,
                 bool shared_keys, std::size_t* failed = nullptr);

/// A damaged index, as errc::corruption: `what`, then how to repair it (the
/// indexes are derived from the log: rebuild them).
error damaged(std::string what);

/// The kinds of keys: the first byte of a key's text.
inline constexpr char kind_type = 't';
inline constexpr char kind_category = 'c';
inline constexpr char kind_tag = 'g';

/// Index key texts longer than this (types may be up to 65535 bytes, LMDB
/// keys at most 511) are cut, with a hash of the whole text after the cut.
inline constexpr std::size_t max_key_text = 511;

/// "<kind><text>" into `out`; a text too long for an LMDB key becomes
/// "<kind><its first 480 bytes>#<FNV-1a 64 of all of it, 16 hex digits>".
/// Two long texts may then share a key: the index lists both, and readers
/// check every event they read against the query anyway.
void key_text_into(char kind, std::string_view text, std::string& out);

inline std::string key_text(char kind, std::string_view text) {
  std::string out;
  key_text_into(kind, text, out);
  return out;
}

/// Calls add(kind, text) for each index key of an event.
template <class Tags, class Add>
void keys_of(std::string_view type, std::string_view stream, const Tags& tags, Add&& add) {
  add(kind_type, type);
  if (std::string_view c = category_of(stream); !c.empty()) add(kind_category, c);
  for (std::string_view t : tags)
    add(kind_tag, t);
}

/// Checks a query's terms. Errors: invalid_argument.
result<void> validate(const query& q);

/// How far the index reaches: meta "indexed_through" and
/// "segmented_through" (0 when absent). Errors: corruption (a bad value, or
/// segments past the indexed position), and LMDB's.
struct coverage {
  global_position indexed_through = 0;
  global_position segmented_through = 0;
};
result<coverage> read_coverage(MDB_txn* txn, const tables& dbs);

/// Positions by key text (key_text).
using key_positions = text_map<std::vector<global_position>>;

/// A key's positions added by a write transaction and not written to the
/// index yet (in log order), and its id once a transaction found it stored.
struct pending_key {
  std::vector<global_position> positions;
  std::uint64_t id = 0;          // valid when `generation` is the writer cache's
  std::uint64_t generation = 0;  // 0: look it up
};

/// The writer's pending keys by key text. It outlives its transactions, so
/// that keys seen before cost no allocation and no id lookup; a transaction
/// empties the lists it filled when it ends.
using pending_map = text_map<pending_key>;

/// Where a query's candidates come from.
struct query_source {
  MDB_txn* txn = nullptr;
  const tables* dbs = nullptr;
  /// The newest position to consider.
  global_position head = 0;
  /// Positions after this one are not in the stored index; they are read
  /// from the log (or from `pending`).
  global_position indexed_through = 0;
  /// Positions up to this one are in segments, the rest in recent entries.
  global_position segmented_through = 0;
  /// The writer's positions not written to the index yet (keys as
  /// key_text), which cover every position after indexed_through; null for
  /// readers.
  const pending_map* pending = nullptr;
  /// Finds the candidates' records (not null): a group at a time in read
  /// transactions, through mdb_get in write transactions.
  const log_finder* finder = nullptr;
  /// Ids of stored keys by key text, looked up before the index_keys table:
  /// the writer's cache (write transactions); null for readers.
  const text_map<std::uint64_t>* known_ids = nullptr;
};

/// Visits, in log order from `from` in `dir`, every position that may match
/// `q` (a superset of the matches; the caller checks each event), with its
/// record's bytes. `visit` returns true to go on, false to stop.
/// Errors: corruption (an index entry that does not decode, a listed
/// position missing from the log), io_error.
result<void> scan_candidates(const query_source& src, const query& q, global_position from,
                             direction dir,
                             function_ref<result<bool>(global_position, std::string_view)> visit);

}  // namespace varve::detail::index
