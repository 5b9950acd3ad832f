// Administration writes: shredding a stream and rotating the master key,
// each one write transaction through store_impl::transact.
#include <mutex>
#include <optional>
#include <vector>

#include "record.hpp"
#include "store_impl.hpp"

namespace varve::detail {

namespace {

/// Erases the data of every event of a plain stream: each record keeps its
/// header and type, flagged shredded.
result<void> erase_stream_data(write_txn& t, const tables& dbs, const stream_info& head) {
  auto lookup = [&](MDB_dbi dbi, MDB_val& k, MDB_val& v) { return t.get(dbi, k, v); };
  std::vector<global_position> positions;
  auto found = stream_positions(lookup, dbs, head.id, head.version, head.last_position, 1,
                                head.version, positions);
  if (!found) return std::move(found).err();
  std::string rewritten;
  for (global_position pos : positions) {
    bytes::u64_key key(pos);
    MDB_val v{};
    if (int rc = t.get(dbs.events, key.view(), v); rc != 0)
      return lmdb::to_error(rc, "reading event " + std::to_string(pos));
    auto d = record::decode_record(pos, lmdb::to_view(v));
    if (!d) return std::move(d).err();
    const event_view& e = d->view;
    // The record keeps its envelope, type and tags (the indexes list it).
    const record::header h{e.stream_id, e.version,        e.previous_position, e.id,
                           e.time,      e.tags.encoded(), e.tags.size()};
    rewritten.assign(record::encoded_size(pos, h, e.type.size(), 0, 0), '\0');
    record::encode_shredded(rewritten.data(), pos, h, e.type);
    if (int rc = t.put(dbs.events, key.view(), rewritten); rc != 0)
      return lmdb::to_error(rc, "erasing event " + std::to_string(pos));
  }
  return {};
}

}  // namespace

result<void> store_impl::shred(std::string_view stream) {
  std::lock_guard<std::mutex> lock(write_mutex);
  std::uint64_t id = 0;
  auto run = [&](write_txn& t) -> result<txn_decision> {
    MDB_val v{};
    int rc = t.get(dbs.stream_names, stream, v);
    if (rc == MDB_NOTFOUND) return error{errc::not_found, stream_label(stream) + " does not exist"};
    if (rc != 0) return lmdb::to_error(rc, "reading stream names");
    auto decoded = decode_u64_le(lmdb::to_view(v), "stream id");
    if (!decoded) return std::move(decoded).err();
    id = *decoded;
    bytes::u64_key key(id);
    rc = t.get(dbs.stream_heads, key.view(), v);
    if (rc == MDB_NOTFOUND) return error{errc::corruption, stream_label(stream) + " has no head"};
    if (rc != 0) return lmdb::to_error(rc, "reading stream heads");
    auto head = decode_head(id, lmdb::to_view(v));
    if (!head) return std::move(head).err();
    if (head->state == stream_state::shredded) return txn_decision::discard;

    if (encrypted) {  // crypto-shredding: overwrite the wrapped key, then delete it
      rc = t.get(dbs.keys, key.view(), v);
      if (rc == 0) {
        const std::string zeros(v.mv_size, '\0');
        if (rc = t.put(dbs.keys, key.view(), zeros); rc != 0)
          return lmdb::to_error(rc, "overwriting the data key");
        MDB_val k = lmdb::to_val(key.view());
        rc = t.del(dbs.keys, k);
      }
      if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::to_error(rc, "deleting the data key");
    } else if (auto erased = erase_stream_data(t, dbs, *head); !erased) {
      return std::move(erased).err();
    }
    // A snapshot holds the stream's data in clear: it goes too.
    MDB_val k = lmdb::to_val(key.view());
    rc = t.del(dbs.snapshots, k);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::to_error(rc, "deleting the snapshot");
    head->state = stream_state::shredded;
    char value[head_value_size];
    if (rc = t.put(dbs.stream_heads, key.view(), encode_head(*head, value)); rc != 0)
      return lmdb::to_error(rc, "marking the stream shredded");
    return txn_decision::commit;
  };
  auto committed = [&] {
    if (auto c = cache.heads.find(id); c != cache.heads.end()) {
      c->second.info.state = stream_state::shredded;
      c->second.key.reset();
    }
    data_keys.erase(id);
    writer_sealer.forget(id);
  };
  auto aborted = [] {};
  return transact(txn_work{run, committed, aborted});
}

result<void> store_impl::drop_indexes() {
  std::lock_guard<std::mutex> lock(write_mutex);
  auto run = [&](write_txn& t) -> result<txn_decision> {
    for (MDB_dbi dbi : {dbs.index, dbs.index_recent, dbs.index_keys, dbs.index_names})
      if (int rc = t.drop(dbi, 0); rc != 0) return lmdb::to_error(rc, "emptying the indexes");
    for (const char* name : {"indexed_through", "segmented_through"}) {
      MDB_val k = lmdb::to_val(name);
      if (int rc = t.del(dbs.meta, k); rc != 0 && rc != MDB_NOTFOUND)
        return lmdb::to_error(rc, "removing the index position");
    }
    return txn_decision::commit;
  };
  auto committed = [&] { cache.clear(); };  // key ids and positions are gone
  auto aborted = [] {};
  return transact(txn_work{run, committed, aborted});
}

result<void> store_impl::rotate(crypto::key_bytes new_key) {
  if (!encrypted) return error{errc::invalid_argument, "the store is not encrypted"};
  std::lock_guard<std::mutex> lock(write_mutex);
  auto next = std::make_shared<const crypto::master_key>(std::move(new_key));
  std::string check;
  auto run = [&](write_txn& t) -> result<txn_decision> {
    // The key in meta must still be the one this handle holds: another
    // process may have rotated it meanwhile.
    MDB_val v{};
    int rc = t.get(dbs.meta, "key_check", v);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading the key check");
    if ((rc == 0 ? lmdb::to_view(v) : std::string_view{}) != key_check)
      return error{errc::auth_failed,
                   "the store's master key was changed by another process since this handle "
                   "opened it: reopen the store with its current key to rotate it"};
    const auto current = master();
    MDB_cursor* c = nullptr;
    if (rc = t.cursor_open(dbs.keys, c); rc != 0) return lmdb::to_error(rc, "reading data keys");
    std::unique_ptr<MDB_cursor, void (*)(MDB_cursor*)> closer(c, mdb_cursor_close);
    MDB_val k{};
    for (rc = t.cursor_get(c, k, v, MDB_FIRST); rc == 0; rc = t.cursor_get(c, k, v, MDB_NEXT)) {
      auto key = current->unwrap(lmdb::to_view(v));
      if (!key) return std::move(key).err();
      auto wrapped = next->wrap(*key);
      if (!wrapped) return std::move(wrapped).err();
      MDB_val nv = lmdb::to_val(*wrapped);
      if (int put = t.cursor_put(c, k, nv, MDB_CURRENT); put != 0)
        return lmdb::to_error(put, "re-wrapping a data key");
    }
    if (rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading data keys");
    auto made = next->make_check();
    if (!made) return std::move(made).err();
    check = std::move(*made);
    if (rc = t.put(dbs.meta, "key_check", check); rc != 0)
      return lmdb::to_error(rc, "writing the key check");
    return txn_decision::commit;
  };
  auto committed = [&] {
    {
      std::lock_guard<std::mutex> guard(master_mutex);
      current_master = next;
    }
    key_check = check;
    data_keys.clear();  // every wrapped key changed
  };
  auto aborted = [] {};
  return transact(txn_work{run, committed, aborted});
}

}  // namespace varve::detail
