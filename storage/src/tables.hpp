// The named databases of a store and the encodings of their small values
// (private to varve::storage; the layout is documented in storage/FORMAT.md).
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bytes.hpp"
#include "varve/storage/error.hpp"
#include "varve/storage/event.hpp"
#include "varve/storage/event_store.hpp"

namespace varve::detail {

/// The store's format version, kept in `meta` under "format_version":
/// 3 since records have a header of variable-length integers and tags,
/// and the log has type, category and tag indexes; 4 since an index
/// segment holds every key of its span. A store of version 1, 2 or 3 is
/// upgraded when it opens: its indexes are (re)built by write transactions,
/// the first of which sets the version (see storage/FORMAT.md).
inline constexpr std::uint32_t format_version = 4;

/// LMDB name of the table that holds view `name`.
inline std::string view_table(std::string_view name) {
  return "views/" + std::string(name);
}

/// The stored snapshot: version:u64 schema:u32 bytes.
inline constexpr std::size_t snapshot_header_size = 12;

/// Versions per stream-index chunk.
inline constexpr std::uint64_t chunk_size = 64;

struct tables {
  MDB_dbi meta = 0;
  MDB_dbi events = 0;        // u64 position (INTEGERKEY) -> record
  MDB_dbi stream_names = 0;  // name -> u64 id (LE)
  MDB_dbi stream_ids = 0;    // u64 id (INTEGERKEY) -> name
  MDB_dbi stream_heads = 0;  // u64 id (INTEGERKEY) -> head value
  MDB_dbi stream_index = 0;  // id BE + chunk BE -> 64 x u64 LE positions
  MDB_dbi cursors = 0;       // consumer name -> u64 LE position
  MDB_dbi keys = 0;          // u64 id (INTEGERKEY) -> wrapped data key
  MDB_dbi snapshots = 0;     // u64 id (INTEGERKEY) -> snapshot
  MDB_dbi index_keys = 0;    // kind:u8 + text -> u64 LE key id
  MDB_dbi index_names = 0;   // u64 key id (INTEGERKEY) -> kind:u8 + text
  MDB_dbi index = 0;         // tier:u8 + span first BE + key id BE -> varint positions
  MDB_dbi index_recent = 0;  // u64 first position (INTEGERKEY) -> one transaction's postings
};

/// The stored head of a stream: version, last position, state (17 bytes).
inline constexpr std::size_t head_value_size = 17;

/// The stored value of head `h`, into `out`.
inline std::string_view encode_head(const stream_info& h, char (&out)[head_value_size]) {
  bytes::put_le<std::uint64_t>(out, h.version);
  bytes::put_le<std::uint64_t>(out + 8, h.last_position);
  out[16] = static_cast<char>(h.state);
  return {out, head_value_size};
}

inline result<stream_info> decode_head(std::uint64_t id, std::string_view v) {
  if (v.size() != head_value_size || static_cast<std::uint8_t>(v[16]) > 2)
    return error{errc::corruption,
                 "stream head of stream id " + std::to_string(id) + " has an invalid value"};
  stream_info h;
  h.id = id;
  h.version = bytes::get_le<std::uint64_t>(v.data());
  h.last_position = bytes::get_le<std::uint64_t>(v.data() + 8);
  h.state = static_cast<stream_state>(v[16]);
  return h;
}

inline std::string encode_u64_le(std::uint64_t v) {
  std::string out(8, '\0');
  bytes::put_le(out.data(), v);
  return out;
}

inline result<std::uint64_t> decode_u64_le(std::string_view v, std::string_view what) {
  if (v.size() != 8) return error{errc::corruption, std::string(what) + " has an invalid value"};
  return bytes::get_le<std::uint64_t>(v.data());
}

/// Key of stream-index chunk `chunk` (0-based: versions chunk*64+1 .. chunk*64+64).
inline std::string chunk_key(std::uint64_t stream_id, std::uint64_t chunk) {
  std::string out(16, '\0');
  bytes::put_be(out.data(), stream_id);
  bytes::put_be(out.data() + 8, chunk);
  return out;
}

/// A point lookup in a transaction: mdb_get, or the writer's call through
/// its fault-injection seam. Returns 0, MDB_NOTFOUND or LMDB's error code.
using lookup = function_ref<int(MDB_dbi dbi, MDB_val& key, MDB_val& value)>;

/// Appends to `out`, in ascending version order, the log positions of
/// versions [first, last] of a stream whose newest event is `head_version` at
/// `head_position`. Full chunks come from the stream index, the versions after
/// the last full chunk from walking the records' previous-position links back
/// from the head. Requires 1 <= first <= last <= head_version.
/// When `records` is given, it gets one entry per position appended to
/// `out` (same indexes): the record's bytes when the walk read them (valid
/// for the transaction), else empty.
/// Errors: corruption (a missing chunk or a broken link), io_error.
result<void> stream_positions(lookup get, const tables& t, std::uint64_t stream_id,
                              stream_version head_version, global_position head_position,
                              stream_version first, stream_version last,
                              std::vector<global_position>& out,
                              std::vector<std::string_view>* records = nullptr);

}  // namespace varve::detail
