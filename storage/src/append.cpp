// Writing one checked stream append: creating the stream (name, id, data
// key), its records at the end of the log (sealed in encrypted stores), and
// its stream-index chunk when one fills.
#include <cstring>

#include "batch.hpp"
#include "ids.hpp"
#include "record.hpp"

namespace varve::detail {

namespace {

/// Writes the stream-index chunk that the head's last event filled.
result<void> put_chunk(batch_txn& b, const head_state& h) {
  std::string value(chunk_size * 8, '\0');
  for (std::size_t i = 0; i < chunk_size; ++i)
    bytes::put_le<std::uint64_t>(value.data() + i * 8, h.open_chunk[i]);
  const std::string key = chunk_key(h.info.id, h.info.version / chunk_size - 1);
  if (int rc = b.txn.put(b.store.dbs.stream_index, key, value); rc != 0)
    return lmdb::to_error(rc, "writing the stream index");
  return {};
}

/// Creates the stream of `p` (name, id, data key) and returns its head.
result<head_state*> create_stream(batch_txn& b, plan& p) {
  const append_ref& r = *p.request;
  const std::uint64_t id = b.next_stream_id++;
  bytes::u64_key key(id);
  if (int rc = b.txn.put(b.store.dbs.stream_names, r.stream, encode_u64_le(id), MDB_NOOVERWRITE);
      rc != 0)
    return lmdb::to_error(rc, "creating the stream name");
  if (int rc = b.txn.put(b.store.dbs.stream_ids, key.view(), r.stream, MDB_APPEND); rc != 0)
    return lmdb::to_error(rc, "creating the stream id");
  b.created.emplace(std::string(r.stream), id);
  if (b.store.encrypted) {
    auto data_key = crypto::new_data_key();
    if (!data_key) return std::move(data_key).err();
    auto wrapped = b.store.master()->wrap(*data_key);
    if (!wrapped) return std::move(wrapped).err();
    if (int rc = b.txn.put(b.store.dbs.keys, key.view(), *wrapped); rc != 0)
      return lmdb::to_error(rc, "storing the stream's data key");
    p.key = std::make_shared<const crypto::key_bytes>(std::move(*data_key));
    b.new_keys.push_back(created_key{id, std::move(*wrapped), p.key});
  }
  head_state fresh{stream_info{id, 0, 0, stream_state::live}, {}, true, p.key};
  return &b.touched.insert_or_assign(id, std::move(fresh)).first->second;
}

}  // namespace

result<append_result> apply(batch_txn& b, plan& p) {
  const append_ref& r = *p.request;
  head_state* h = nullptr;
  if (!p.head) {
    auto created = create_stream(b, p);
    if (!created) return std::move(created).err();
    h = *created;
  } else {
    const std::uint64_t id = p.head->info.id;
    auto t = b.touched.find(id);
    if (t == b.touched.end()) {
      head_state fresh = std::move(*p.head);  // checked: its info and key, no open chunk
      // The open chunk moves over from the writer cache rather than being
      // copied: the cache holds what is committed, and this stream's entry
      // is replaced when the transaction commits; should it abort, the
      // entry is left with its chunk unknown (read again from the log).
      writer_cache& cache = b.store.cache;
      if (auto c = cache.heads.find(id); c != cache.heads.end() && c->second.chunk_known &&
                                         c->second.info.version == fresh.info.version) {
        fresh.open_chunk = std::move(c->second.open_chunk);
        fresh.chunk_known = true;
        c->second.open_chunk.clear();
        c->second.chunk_known = false;
      }
      t = b.touched.emplace(id, std::move(fresh)).first;
    }
    h = &t->second;
  }

  append_result out;
  out.first_version = h->info.version + 1;
  out.first_position = b.next_position;
  std::string tags;
  for (const new_event& e : r.events) {
    const global_position pos = b.next_position;
    record::encode_tags(e.tags, tags);
    record::header hdr{h->info.id,
                       h->info.version + 1,
                       h->info.last_position,
                       e.id ? *e.id : generate_event_id(b.now),
                       e.time ? *e.time : b.now,
                       tags,
                       e.tags.size()};
    MDB_val k{sizeof pos, const_cast<global_position*>(&pos)};
    MDB_val v{
        p.key ? record::sealed_size(pos, hdr, e.type.size(), e.metadata.size(), e.payload.size())
              : record::encoded_size(pos, hdr, e.type.size(), e.metadata.size(), e.payload.size()),
        nullptr};
    // One cursor for the transaction's appends: positioned at the end of the
    // log, it spares MDB_APPEND the descent from the root a fresh one makes.
    if (!b.log_cursor) {
      if (int rc = b.txn.cursor_open(b.store.dbs.events, b.log_cursor); rc != 0)
        return lmdb::to_error(rc, "opening the log");
    }
    if (int rc = b.txn.cursor_put(b.log_cursor, k, v, MDB_APPEND | MDB_RESERVE); rc != 0)
      return lmdb::to_error(rc, "appending to the log");
    char* out_bytes = static_cast<char*>(v.mv_data);
    if (p.key) {
      char* body = record::encode_head(out_bytes, pos, hdr, record::flag_sealed, e.type,
                                       e.metadata.size(), e.payload.size());
      // Format 3 binds head, type and tags as one run of bytes.
      const crypto::event_place place{
          hdr.stream_id,
          hdr.version,
          pos,
          hdr.id,
          {},
          std::string_view(out_bytes, static_cast<std::size_t>(body - out_bytes)),
          r.stream};
      auto sealed = b.store.writer_sealer.seal(place, *p.key, e.metadata, e.payload, body);
      if (!sealed) return std::move(sealed).err();
    } else {
      record::encode(out_bytes, pos, hdr, e.type, e.metadata, e.payload);
    }
    note_event(b, pos, r.stream, e.type, e.tags);
    ++b.next_position;
    ++b.events;
    h->info.version = hdr.version;
    h->info.last_position = pos;
    if (h->chunk_known) h->open_chunk.push_back(pos);
    if (h->info.version % chunk_size == 0) {
      if (!h->chunk_known) {
        h->open_chunk.clear();
        auto walked = stream_positions(b.lookup_in, b.store.dbs, h->info.id, hdr.version - 1,
                                       hdr.previous_position, hdr.version - chunk_size + 1,
                                       hdr.version - 1, h->open_chunk);
        if (!walked) return std::move(walked).err();
        h->open_chunk.push_back(pos);
      }
      auto put = put_chunk(b, *h);
      if (!put) return std::move(put).err();
      h->open_chunk.clear();
      h->chunk_known = true;
    }
  }
  out.last_version = h->info.version;
  out.last_position = b.next_position - 1;
  b.wrote = true;
  return out;
}

}  // namespace varve::detail
