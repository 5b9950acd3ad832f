// The write side of the type, category and tag indexes: catching up with
// events an older build wrote, writing a transaction's entries chunk by
// chunk, and checking append conditions (see indexes.hpp).
#include <algorithm>
#include <string>

#include "batch.hpp"
#include "record.hpp"

namespace varve::detail {

namespace {

result<std::uint64_t> last_index_id(batch_txn& b) {
  MDB_cursor* c = nullptr;
  if (int rc = b.txn.cursor_open(b.store.dbs.index_names, c); rc != 0)
    return lmdb::to_error(rc, "opening the index names");
  MDB_val k{}, v{};
  const int rc = b.txn.cursor_get(c, k, v, MDB_LAST);
  mdb_cursor_close(c);
  if (rc == MDB_NOTFOUND) return std::uint64_t{0};
  if (rc != 0) return lmdb::to_error(rc, "reading the index names");
  if (k.mv_size != 8) return error{errc::corruption, "an index name id has a bad size"};
  return bytes::get_native_u64(lmdb::to_view(k));
}

/// The id of index key `text`, created when new.
result<std::uint64_t> key_id(batch_txn& b, const std::string& text, bool& created) {
  created = false;
  writer_cache& cache = b.store.cache;
  if (auto it = cache.index_ids.find(text); it != cache.index_ids.end()) return it->second;
  if (auto it = b.new_index_ids.find(text); it != b.new_index_ids.end()) return it->second;
  MDB_val v{};
  int rc = b.txn.get(b.store.dbs.index_keys, text, v);
  if (rc == 0) {
    auto id = decode_u64_le(lmdb::to_view(v), "index key id");
    if (!id) return std::move(id).err();
    cache.index_ids.emplace(text, *id);
    return *id;
  }
  if (rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading the index keys");
  if (b.next_index_id == 0) {
    if (cache.next_index_id != 0) {
      b.next_index_id = cache.next_index_id;
    } else {
      auto last = last_index_id(b);
      if (!last) return std::move(last).err();
      b.next_index_id = *last + 1;
    }
  }
  const std::uint64_t id = b.next_index_id++;
  bytes::u64_key key(id);
  if (rc = b.txn.put(b.store.dbs.index_keys, text, encode_u64_le(id), MDB_NOOVERWRITE); rc != 0)
    return lmdb::to_error(rc, "creating an index key");
  if (rc = b.txn.put(b.store.dbs.index_names, key.view(), text, MDB_APPEND); rc != 0)
    return lmdb::to_error(rc, "creating an index key");
  b.new_index_ids.emplace(text, id);
  created = true;
  return id;
}

/// Writes `positions` (ascending, after every stored one) to the chunks of
/// key `id`: first into its last chunk while it has room, then new chunks.
result<void> write_key(batch_txn& b, std::uint64_t id, bool created,
                       const std::vector<global_position>& positions) {
  std::vector<global_position> chunk;
  std::size_t next = 0;
  if (!created) {
    MDB_cursor* c = nullptr;
    if (int rc = b.txn.cursor_open(b.store.dbs.index, c); rc != 0)
      return lmdb::to_error(rc, "opening the index");
    const std::string after = index::chunk_key(id + 1, 0);
    MDB_val k = lmdb::to_val(after), v{};
    int rc = b.txn.cursor_get(c, k, v, MDB_SET_RANGE);
    rc = b.txn.cursor_get(c, k, v, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading the index");
    std::uint64_t found = 0;
    if (rc == 0 && k.mv_size == 16 &&
        bytes::get_be<std::uint64_t>(static_cast<const char*>(k.mv_data)) == id) {
      if (!index::decode_chunk(lmdb::to_view(k), lmdb::to_view(v), found, chunk))
        return error{errc::corruption,
                     "index chunk of key id " + std::to_string(id) + " does not decode"};
      if (chunk.back() >= positions.front())
        return error{errc::corruption, "the index of key id " + std::to_string(id) +
                                           " lists positions past the indexed position"};
    }
  }
  for (;;) {
    while (chunk.size() < index::chunk_positions && next < positions.size())
      chunk.push_back(positions[next++]);
    if (chunk.empty()) return {};
    const std::string key = index::chunk_key(id, chunk.front());
    const std::string value = index::encode_chunk_value(chunk.data(), chunk.size());
    if (int rc = b.txn.put(b.store.dbs.index, key, value); rc != 0)
      return lmdb::to_error(rc, "writing the index");
    chunk.clear();
    if (next == positions.size()) return {};
  }
}

/// The name of stream `id` as this transaction sees it.
result<std::string_view> stream_name(batch_txn& b, std::uint64_t id) {
  bytes::u64_key key(id);
  MDB_val v{};
  const int rc = b.txn.get(b.store.dbs.stream_ids, key.view(), v);
  if (rc == MDB_NOTFOUND)
    return error{errc::corruption, "stream id " + std::to_string(id) + " has no name"};
  if (rc != 0) return lmdb::to_error(rc, "reading stream ids");
  return lmdb::to_view(v);
}

}  // namespace

result<void> catch_up_index(batch_txn& b) {
  writer_cache& cache = b.store.cache;
  if (!cache.indexed_through) {
    MDB_val v{};
    const int rc = b.txn.get(b.store.dbs.meta, "indexed_through", v);
    if (rc == MDB_NOTFOUND) {
      cache.indexed_through = 0;
    } else if (rc != 0) {
      return lmdb::to_error(rc, "reading the index position");
    } else {
      auto at = decode_u64_le(lmdb::to_view(v), "meta 'indexed_through'");
      if (!at) return std::move(at).err();
      cache.indexed_through = *at;
    }
  }
  b.indexed_through = *cache.indexed_through;
  const global_position last = b.next_position - 1;
  b.caught_up_to = std::max(last, b.indexed_through);
  if (b.indexed_through >= last) return {};
  // Events the index does not list yet, oldest first.
  MDB_cursor* c = nullptr;
  if (int rc = b.txn.cursor_open(b.store.dbs.events, c); rc != 0)
    return lmdb::to_error(rc, "opening the log");
  global_position from = b.indexed_through + 1;
  MDB_val k{sizeof from, &from}, v{};
  int rc = b.txn.cursor_get(c, k, v, MDB_SET_KEY);
  std::unordered_map<std::uint64_t, std::string> names;
  event_view e;
  record::body body;
  std::uint64_t entries = 0;
  for (global_position pos = from; pos <= last; ++pos) {
    if (rc != 0) {
      mdb_cursor_close(c);
      if (rc == MDB_NOTFOUND)
        return error{errc::corruption, "event " + std::to_string(pos) + " is missing"};
      return lmdb::to_error(rc, "reading the log");
    }
    const std::string_view bytes = lmdb::to_view(v);
    if (record::decode_into(pos, bytes, e, body, false)) {
      mdb_cursor_close(c);
      return record::decode_record(pos, bytes, false).err();
    }
    auto it = names.find(e.stream_id);
    if (it == names.end()) {
      auto name = stream_name(b, e.stream_id);
      if (!name) {
        mdb_cursor_close(c);
        return std::move(name).err();
      }
      it = names.emplace(e.stream_id, std::string(*name)).first;
    }
    note_event(b, pos, it->second, e.type, e.tags);
    entries += 2 + e.tags.size();
    if (b.catch_up_limit != 0 && entries >= b.catch_up_limit) {
      b.caught_up_to = pos;  // the rest in the next transaction
      break;
    }
    if (pos < last) rc = b.txn.cursor_get(c, k, v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  b.wrote = true;  // the catch-up alone is worth a commit
  return {};
}

result<void> write_index(batch_txn& b) {
  const global_position last = b.indexed_to();
  if (b.pending.empty() && b.indexed_through >= last) return {};
  for (const auto& [text, positions] : b.pending) {
    bool created = false;
    auto id = key_id(b, text, created);
    if (!id) return std::move(id).err();
    if (auto written = write_key(b, *id, created, positions); !written) return written;
  }
  if (int rc = b.txn.put(b.store.dbs.meta, "indexed_through", encode_u64_le(last)); rc != 0)
    return lmdb::to_error(rc, "writing the index position");
  return {};
}

result<void> check_condition(batch_txn& b, const append_condition& c) {
  const query& q = c.fail_if_events_match;
  if (auto valid = index::validate(q); !valid) return valid;
  const global_position head = b.next_position - 1;
  const global_position after = c.after.value_or(0);
  if (after >= head) return {};
  const index::query_source src{b.txn.raw(), &b.store.dbs, head, b.indexed_through, &b.pending};
  std::optional<error> conflict;
  event_view e;
  record::body body;
  auto scanned = index::scan_candidates(
      src, q, after + 1, direction::forward,
      [&](global_position pos, std::string_view bytes) -> result<bool> {
        if (record::decode_into(pos, bytes, e, body))
          return record::decode_record(pos, bytes).err();
        auto name = stream_name(b, e.stream_id);
        if (!name) return std::move(name).err();
        if (!q.matches(e, *name)) return true;
        conflict = error{errc::wrong_expected_version,
                         "append condition failed: the event at position " + std::to_string(pos) +
                             " (type '" + std::string(e.type) + "', " + stream_label(*name) +
                             ") matches the query, after position " + std::to_string(after)};
        return false;
      });
  if (!scanned) return scanned;
  if (conflict) return std::move(*conflict);
  return {};
}

}  // namespace varve::detail
