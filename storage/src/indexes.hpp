// The type, category and tag indexes of the log (private to
// varve::storage; the layout is in storage/FORMAT.md):
//
//   index_keys   kind:u8 text          -> key id u64 LE
//   index_names  key id (INTEGERKEY)   -> kind:u8 text
//   index        key id BE ‖ first BE  -> varint deltas of the chunk's other positions
//
// A chunk holds up to chunk_positions positions of one key, in log order;
// the last chunk of a key is rewritten by each transaction that adds to it,
// so a transaction touches one chunk per key it adds to, not one page per
// event. `meta` holds "indexed_through": the log is indexed up to that
// position (a store of an older format, or events written by an older
// build, are indexed by the next transaction that writes).
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tables.hpp"
#include "varve/storage/error.hpp"
#include "varve/storage/event.hpp"
#include "varve/storage/event_store.hpp"
#include "varve/storage/query.hpp"

namespace varve::detail::index {

/// Positions per chunk.
inline constexpr std::size_t chunk_positions = 64;

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

/// The key of the chunk of `id` that begins at `first`.
std::string chunk_key(std::uint64_t id, global_position first);

/// Decodes a chunk's key and value into its key id and positions (appended
/// to `out`). false when they do not decode.
bool decode_chunk(std::string_view key, std::string_view value, std::uint64_t& id,
                  std::vector<global_position>& out);

/// Encodes the positions of one chunk (sorted, 1..chunk_positions of them):
/// the key's first position and the value's deltas.
std::string encode_chunk_value(const global_position* positions, std::size_t count);

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

/// The indexed-through position in meta (0 when absent).
result<global_position> indexed_through(MDB_txn* txn, const tables& dbs);

/// A hash for maps keyed by std::string that are looked up by string_view.
struct text_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

/// Positions of each key (as key_text) added by a write transaction and not
/// written to the index yet, in log order.
using pending_map =
    std::unordered_map<std::string, std::vector<global_position>, text_hash, std::equal_to<>>;

/// Where a query's candidates come from.
struct query_source {
  MDB_txn* txn = nullptr;
  const tables* dbs = nullptr;
  /// The newest position to consider.
  global_position head = 0;
  /// Positions after this one are not in the stored index; they are read
  /// from the log (or from `pending`).
  global_position indexed_through = 0;
  /// The writer's positions not written to the index yet (keys as
  /// key_text), which cover every position after indexed_through; null for
  /// readers.
  const pending_map* pending = nullptr;
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
