// The write path of batches: one write transaction per batch, every request
// checked completely before it writes anything, one commit for the lot.
//
// A request that fails its checks fails alone and the others go on in the
// same transaction. A request that fails after it began writing (a damaged
// stream found while indexing it, a seal that failed) poisons the
// transaction: it is aborted, and the batch runs again without that request.
// A failed LMDB call breaks the transaction (write_txn): the whole batch
// fails with it, or runs again after the map grew.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <unordered_set>

#include "ids.hpp"
#include "record.hpp"
#include "store_impl.hpp"
#include "utf8.hpp"

namespace varve::detail {

namespace {

/// How many recent events of a stream an `any` append with caller-given ids
/// looks back through for a duplicate.
constexpr stream_version idempotency_window = 64;

timestamp_us now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string stream_label(std::string_view name) {
  return "stream '" + std::string(name) + "'";
}

/// A data key this transaction created: it joins the readers' cache after
/// the commit, and the writer's sealer forgets it after an abort.
struct created_key {
  std::uint64_t stream_id;
  std::string wrapped;
  std::shared_ptr<const crypto::key_bytes> key;
};

/// The state of one write transaction of a batch.
struct batch_txn {
  batch_txn(store_impl& s, write_txn& t) : store(s), txn(t), lookup_in{&t} {}
  store_impl& store;
  write_txn& txn;
  global_position next_position = 0;
  std::uint64_t next_stream_id = 0;
  std::unordered_map<std::uint64_t, head_state> touched;
  name_map<std::uint64_t> created;
  timestamp_us now = now_us();
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

  /// Lookups of the stream index walk, through the transaction's seam.
  struct txn_lookup {
    write_txn* t;
    int operator()(MDB_dbi dbi, MDB_val& k, MDB_val& v) const { return t->get(dbi, k, v); }
  } lookup_in;
};

/// One stream of a request, after its checks.
struct plan {
  const append_ref* request;
  std::optional<head_state> head;  // empty: the stream does not exist yet
  std::optional<append_result> idempotent;
  std::shared_ptr<const crypto::key_bytes> key;  // encrypted stores
};

result<void> validate(const store_impl& s, const append_ref& r) {
  if (r.stream.empty()) return error{errc::invalid_argument, "stream name is empty"};
  if (r.stream.size() > s.max_key_size)
    return error{errc::invalid_argument, "stream name is " + std::to_string(r.stream.size()) +
                                             " bytes, longer than the limit of " +
                                             std::to_string(s.max_key_size)};
  if (!utf8::valid(r.stream))
    return error{errc::invalid_argument, "stream name is not valid UTF-8"};
  if (r.events.empty())
    return error{errc::invalid_argument, stream_label(r.stream) + ": no events"};
  for (std::size_t i = 0; i < r.events.size(); ++i) {
    const new_event& e = r.events[i];
    if (e.type.empty())
      return error{errc::invalid_argument,
                   stream_label(r.stream) + ": event " + std::to_string(i) + " has an empty type"};
    if (e.type.size() > record::max_type_size)
      return error{errc::invalid_argument, stream_label(r.stream) + ": event " + std::to_string(i) +
                                               " has a type over " +
                                               std::to_string(record::max_type_size) + " bytes"};
    const std::uint64_t size = e.type.size() + e.metadata.size() + e.payload.size();
    if (size > s.opts.max_event_bytes)
      return error{errc::invalid_argument, stream_label(r.stream) + ": event " + std::to_string(i) +
                                               " is " + std::to_string(size) +
                                               " bytes, over max_event_bytes (" +
                                               std::to_string(s.opts.max_event_bytes) + ")"};
  }
  return {};
}

/// The committed head of stream `id`, read from the store. In a plain store
/// it also checks that the stream has no data key: an unsealed record is
/// never written to a stream that has one.
result<head_state> read_head(batch_txn& b, std::uint64_t id, std::string_view name) {
  bytes::u64_key key(id);
  MDB_val v{};
  int rc = b.txn.get(b.store.dbs.stream_heads, key.view(), v);
  if (rc == MDB_NOTFOUND) return error{errc::corruption, stream_label(name) + " has no head"};
  if (rc != 0) return lmdb::to_error(rc, "reading stream heads");
  auto info = decode_head(id, lmdb::to_view(v));
  if (!info) return std::move(info).err();
  if (!b.store.encrypted) {
    MDB_val wrapped{};
    rc = b.txn.get(b.store.dbs.keys, key.view(), wrapped);
    if (rc == 0)
      return error{errc::corruption, stream_label(name) +
                                         " has a data key, but the store was opened as a plain "
                                         "store: its events are sealed and need the master key"};
    if (rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading data keys");
  }
  return head_state{*info, {}, false, nullptr};
}

/// The stream's head as this transaction sees it; std::nullopt when the
/// stream does not exist.
result<std::optional<head_state>> find_head(batch_txn& b, std::string_view name) {
  writer_cache& cache = b.store.cache;
  std::uint64_t id = 0;
  if (auto it = b.created.find(name); it != b.created.end()) {
    id = it->second;
  } else if (auto c = cache.names.find(name); c != cache.names.end()) {
    id = c->second;
  } else {
    MDB_val v{};
    int rc = b.txn.get(b.store.dbs.stream_names, name, v);
    if (rc == MDB_NOTFOUND) return std::optional<head_state>{};
    if (rc != 0) return lmdb::to_error(rc, "reading stream names");
    auto decoded = decode_u64_le(lmdb::to_view(v), stream_label(name) + " id");
    if (!decoded) return std::move(decoded).err();
    id = *decoded;
    cache.names.emplace(std::string(name), id);
  }
  if (auto t = b.touched.find(id); t != b.touched.end())
    return std::optional<head_state>{t->second};
  if (auto c = cache.heads.find(id); c != cache.heads.end())
    return std::optional<head_state>{c->second};
  auto h = read_head(b, id, name);
  if (!h) return std::move(h).err();
  cache.heads.emplace(id, *h);
  return std::optional<head_state>{std::move(*h)};
}

/// The data key of an existing stream (encrypted stores), kept in its head
/// once unwrapped. Errors: corruption (no key), auth_failed.
result<std::shared_ptr<const crypto::key_bytes>> stream_key(batch_txn& b, head_state& h,
                                                            std::string_view name) {
  if (h.key) return h.key;
  bytes::u64_key key(h.info.id);
  MDB_val v{};
  int rc = b.txn.get(b.store.dbs.keys, key.view(), v);
  if (rc == MDB_NOTFOUND) return error{errc::corruption, stream_label(name) + " has no data key"};
  if (rc != 0) return lmdb::to_error(rc, "reading data keys");
  auto unwrapped = b.store.data_key(h.info.id, lmdb::to_view(v));
  if (!unwrapped) return std::move(unwrapped).err();
  h.key = *unwrapped;
  return h.key;
}

/// Whether the store's master key is still the one this handle holds:
/// another process may have rotated it since this handle opened the store,
/// and a data key wrapped under the retired key would never unwrap again.
result<void> master_is_current(batch_txn& b) {
  if (b.master_checked) return {};
  MDB_val v{};
  const int rc = b.txn.get(b.store.dbs.meta, "key_check", v);
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading the key check");
  const std::string_view stored = rc == 0 ? lmdb::to_view(v) : std::string_view{};
  if (stored != b.store.key_check)
    return error{errc::auth_failed,
                 "the store's master key was changed (rotate-key) by another process since "
                 "this handle opened it: new streams need the new key; reopen the store with it"};
  b.master_checked = true;
  return {};
}

result<event_id> stored_id(batch_txn& b, global_position pos) {
  bytes::u64_key key(pos);
  MDB_val v{};
  int rc = b.txn.get(b.store.dbs.events, key.view(), v);
  if (rc != 0) return lmdb::to_error(rc, "reading event " + std::to_string(pos));
  // The id is in the record's clear header: sealed records need no key.
  auto d = record::decode_record(pos, lmdb::to_view(v));
  if (!d) return std::move(d).err();
  return d->view.id;
}

/// Whether `r.events` (all with ids) already sit at versions from+1... of the
/// stream; their places if so.
result<std::optional<append_result>> already_appended(batch_txn& b, const head_state& h,
                                                      const append_ref& r, stream_version after) {
  const stream_version k = r.events.size();
  if (after + k > h.info.version) return std::optional<append_result>{};
  std::vector<global_position> positions;
  auto found = stream_positions(b.lookup_in, b.store.dbs, h.info.id, h.info.version,
                                h.info.last_position, after + 1, after + k, positions);
  if (!found) return std::move(found).err();
  for (std::size_t i = 0; i < k; ++i) {
    auto id = stored_id(b, positions[i]);
    if (!id) return std::move(id).err();
    if (*id != *r.events[i].id) return std::optional<append_result>{};
  }
  return std::optional<append_result>{
      append_result{after + 1, after + k, positions.front(), positions.back(), true}};
}

/// For `any` / `stream_exists` appends with caller-given ids: looks for the
/// first event among the stream's recent events.
result<std::optional<append_result>> recently_appended(batch_txn& b, const head_state& h,
                                                       const append_ref& r) {
  const stream_version cur = h.info.version;
  const stream_version lo = cur > idempotency_window ? cur - idempotency_window + 1 : 1;
  std::vector<global_position> positions;
  auto found = stream_positions(b.lookup_in, b.store.dbs, h.info.id, cur, h.info.last_position, lo,
                                cur, positions);
  if (!found) return std::move(found).err();
  for (std::size_t i = 0; i < positions.size(); ++i) {
    auto id = stored_id(b, positions[i]);
    if (!id) return std::move(id).err();
    if (*id != *r.events.front().id) continue;
    auto same = already_appended(b, h, r, lo + i - 1);
    if (!same) return std::move(same).err();
    if (*same) return same;
    return error{errc::invalid_argument,
                 stream_label(r.stream) + ": event " + r.events.front().id->to_string() +
                     " was appended before, but not together with the same events"};
  }
  return std::optional<append_result>{};
}

bool all_ids_given(const append_ref& r) {
  return std::all_of(r.events.begin(), r.events.end(), [](const new_event& e) { return e.id; });
}

std::string describe(stream_version v) {
  return v == 0 ? "the stream does not exist" : "the stream is at version " + std::to_string(v);
}

/// Checks one stream of a request: state, key, expectation, idempotency.
result<plan> check(batch_txn& b, const append_ref& r) {
  auto valid = validate(b.store, r);
  if (!valid) return std::move(valid).err();
  auto head = find_head(b, r.stream);
  if (!head) return std::move(head).err();
  plan p{&r, std::move(*head), std::nullopt, nullptr};
  if (p.head && p.head->info.state != stream_state::live)
    return error{errc::shredded, stream_label(r.stream) + " was shredded and takes no more events"};
  if (b.store.encrypted) {
    if (p.head) {
      auto key = stream_key(b, *p.head, r.stream);
      if (!key) return std::move(key).err();
      p.key = std::move(*key);
    } else if (auto current = master_is_current(b); !current) {
      return std::move(current).err();
    }
  }
  const stream_version cur = p.head ? p.head->info.version : 0;
  const expected_version& e = r.expected;
  bool holds = false;
  switch (e.type()) {
    case expected_version::kind::any:
      holds = true;
      break;
    case expected_version::kind::no_stream:
      holds = cur == 0;
      break;
    case expected_version::kind::stream_exists:
      holds = cur > 0;
      break;
    case expected_version::kind::exact:
      holds = cur == e.version();
      break;
  }
  const bool ids = all_ids_given(r);
  if (!holds) {
    const bool positional =
        e.type() == expected_version::kind::exact || e.type() == expected_version::kind::no_stream;
    if (positional && ids && p.head) {
      auto same = already_appended(b, *p.head, r, e.version());
      if (!same) return std::move(same).err();
      if (*same) {
        p.idempotent = *same;
        return p;
      }
    }
    return error{errc::wrong_expected_version, stream_label(r.stream) + ": expected version " +
                                                   e.to_string() + ", but " + describe(cur)};
  }
  const bool windowed =
      e.type() == expected_version::kind::any || e.type() == expected_version::kind::stream_exists;
  if (windowed && p.head && r.events.front().id) {
    auto same = recently_appended(b, *p.head, r);
    if (!same) return std::move(same).err();
    p.idempotent = *same;
  }
  return p;
}

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

/// Writes one checked stream append.
result<append_result> apply(batch_txn& b, plan& p) {
  const append_ref& r = *p.request;
  head_state* h = nullptr;
  if (!p.head) {
    auto created = create_stream(b, p);
    if (!created) return std::move(created).err();
    h = *created;
  } else {
    h = &b.touched.insert_or_assign(p.head->info.id, std::move(*p.head)).first->second;
  }

  append_result out;
  out.first_version = h->info.version + 1;
  out.first_position = b.next_position;
  for (const new_event& e : r.events) {
    const global_position pos = b.next_position;
    record::header hdr{h->info.id, h->info.version + 1, h->info.last_position,
                       e.id ? *e.id : generate_event_id(b.now), e.time ? *e.time : b.now};
    MDB_val k{sizeof pos, const_cast<global_position*>(&pos)};
    MDB_val v{p.key ? record::sealed_size(e.type.size(), e.metadata.size(), e.payload.size())
                    : record::encoded_size(e.type.size(), e.metadata.size(), e.payload.size()),
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
      char* body = record::encode_head(out_bytes, hdr, record::flag_sealed, e.type,
                                       e.metadata.size(), e.payload.size());
      const crypto::event_place place{
          hdr.stream_id, hdr.version, pos,
          hdr.id,        e.type,      std::string_view(out_bytes, record::header_size)};
      auto sealed = b.store.writer_sealer.seal(place, *p.key, e.metadata, e.payload, body);
      if (!sealed) return std::move(sealed).err();
    } else {
      record::encode(out_bytes, pos, hdr, e.type, e.metadata, e.payload);
    }
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

/// The id of the stream a snapshot is for, checking that the stream will be
/// at least at the snapshot's version once the request's appends are done.
result<std::uint64_t> check_snapshot(batch_txn& b, const std::vector<plan>& plans,
                                     const snapshot_update& u) {
  for (const plan& p : plans) {
    if (p.request->stream != u.stream) continue;
    if (!p.head)
      return error{errc::invalid_argument,
                   stream_label(u.stream) + ": a snapshot cannot go with the stream's creation"};
    const stream_version after =
        p.idempotent ? p.head->info.version : p.head->info.version + p.request->events.size();
    if (u.version == 0 || u.version > after)
      return error{errc::invalid_argument, stream_label(u.stream) + ": snapshot version " +
                                               std::to_string(u.version) + " is not in the stream"};
    return p.head->info.id;
  }
  auto head = find_head(b, u.stream);
  if (!head) return std::move(head).err();
  if (!*head)
    return error{errc::invalid_argument,
                 stream_label(u.stream) + ": a snapshot of a stream that does not exist"};
  if ((*head)->info.state != stream_state::live)
    return error{errc::shredded, stream_label(u.stream) + " was shredded: it takes no snapshot"};
  if (u.version == 0 || u.version > (*head)->info.version)
    return error{errc::invalid_argument, stream_label(u.stream) + ": snapshot version " +
                                             std::to_string(u.version) + " is not in the stream"};
  return (*head)->info.id;
}

result<void> check_view(const store_impl& s, const view_update& u) {
  if (u.view.empty() || u.view.size() > 200 || !utf8::valid(u.view) ||
      u.view.find('\0') != std::string::npos)
    return error{errc::invalid_argument,
                 "view name must be 1 to 200 bytes of UTF-8 without NUL: '" + u.view + "'"};
  if (u.kind != view_update::op::clear && (u.key.empty() || u.key.size() > s.max_key_size))
    return error{errc::invalid_argument, "view '" + u.view + "': keys must be 1 to " +
                                             std::to_string(s.max_key_size) + " bytes"};
  return {};
}

/// The handle of a view table in this write transaction, created if missing.
int view_for_write(batch_txn& b, const std::string& name, MDB_dbi& dbi) {
  if (auto it = b.new_views.find(name); it != b.new_views.end()) {
    dbi = it->second;
    return 0;
  }
  b.txn.lock_views();
  if (auto it = b.store.views.find(name); it != b.store.views.end()) {
    dbi = it->second;
    return 0;
  }
  if (int rc = b.txn.dbi_open(view_table(name).c_str(), MDB_CREATE, dbi); rc != 0) return rc;
  b.new_views.emplace(name, dbi);
  return 0;
}

int apply_view(batch_txn& b, const view_update& u) {
  MDB_dbi dbi = 0;
  if (int rc = view_for_write(b, u.view, dbi); rc != 0) return rc;
  MDB_val k = lmdb::to_val(u.key), v = lmdb::to_val(u.value);
  switch (u.kind) {
    case view_update::op::put:
      return b.txn.put(dbi, k, v, 0);
    case view_update::op::erase: {
      int rc = b.txn.del(dbi, k);
      return rc == MDB_NOTFOUND ? 0 : rc;
    }
    case view_update::op::clear:
      return b.txn.drop(dbi, 0);
    case view_update::op::erase_if_equal: {
      MDB_val current{};
      int rc = b.txn.get(dbi, k, current);
      if (rc == MDB_NOTFOUND) return 0;
      if (rc != 0) return rc;
      if (lmdb::to_view(current) != u.value) return 0;
      rc = b.txn.del(dbi, k);
      return rc == MDB_NOTFOUND ? 0 : rc;
    }
  }
  return EINVAL;
}

/// Checks a request's cursor updates (names, expected positions).
result<void> check_cursor(batch_txn& b, const cursor_update& c) {
  if (c.consumer.empty() || c.consumer.size() > b.store.max_key_size)
    return error{errc::invalid_argument,
                 "consumer name must be 1 to " + std::to_string(b.store.max_key_size) + " bytes"};
  if (!c.expected) return {};
  MDB_val v{};
  int rc = b.txn.get(b.store.dbs.cursors, c.consumer, v);
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading a cursor");
  const global_position at = rc == 0 && v.mv_size >= 8
                                 ? bytes::get_le<std::uint64_t>(static_cast<const char*>(v.mv_data))
                                 : 0;
  if (at != *c.expected)
    return error{errc::wrong_expected_version,
                 "cursor of '" + c.consumer + "': expected position " +
                     std::to_string(*c.expected) + ", but it is at " + std::to_string(at)};
  return {};
}

/// Writes a request's cursors, snapshots and views (after its appends).
result<void> write_side_tables(batch_txn& b, const write_request& req,
                               const std::vector<std::uint64_t>& snapshot_ids) {
  for (const cursor_update& c : req.cursors) {
    if (int rc = b.txn.put(b.store.dbs.cursors, c.consumer, encode_u64_le(c.position) + c.state);
        rc != 0)
      return lmdb::to_error(rc, "writing a cursor");
    b.wrote = true;
  }
  for (std::size_t i = 0; i < req.snapshots.size(); ++i) {
    const snapshot_update& u = req.snapshots[i];
    std::string value(snapshot_header_size + u.bytes.size(), '\0');
    bytes::put_le<std::uint64_t>(value.data(), u.version);
    bytes::put_le<std::uint32_t>(value.data() + 8, u.schema);
    if (!u.bytes.empty())
      std::memcpy(value.data() + snapshot_header_size, u.bytes.data(), u.bytes.size());
    bytes::u64_key key(snapshot_ids[i]);
    if (int rc = b.txn.put(b.store.dbs.snapshots, key.view(), value); rc != 0)
      return lmdb::to_error(rc, "writing a snapshot");
    b.wrote = true;
  }
  for (const view_update& u : req.views) {
    if (int rc = apply_view(b, u); rc != 0) return lmdb::to_error(rc, "writing view " + u.view);
    b.wrote = true;
  }
  return {};
}

/// Applies one request: checks all of it, then writes it. An error after
/// the checks poisons the transaction (b.poisoned).
write_outcome apply_request(batch_txn& b, const request_ref& ref) {
  const write_request& req = *ref.rest;
  std::vector<plan> plans;
  plans.reserve(ref.appends.size());
  std::unordered_set<std::string_view> seen;
  for (const append_ref& r : ref.appends) {
    if (!seen.insert(r.stream).second)
      return error{errc::invalid_argument,
                   stream_label(r.stream) + " appears twice in one request"};
    auto p = check(b, r);
    if (!p) return std::move(p).err();
    plans.push_back(std::move(*p));
  }
  for (const cursor_update& c : req.cursors) {
    if (auto ok = check_cursor(b, c); !ok) return std::move(ok).err();
  }
  std::vector<std::uint64_t> snapshot_ids;
  for (const snapshot_update& u : req.snapshots) {
    auto id = check_snapshot(b, plans, u);
    if (!id) return std::move(id).err();
    snapshot_ids.push_back(*id);
  }
  for (const view_update& u : req.views) {
    auto valid = check_view(b.store, u);
    if (!valid) return std::move(valid).err();
  }

  // Checked: from here on, a failure leaves writes of this request behind.
  auto poison = [&](error e) -> write_outcome {
    b.poisoned = true;
    return e;
  };
  std::vector<append_result> results;
  results.reserve(plans.size());
  for (plan& p : plans) {
    if (p.idempotent) {
      results.push_back(*p.idempotent);
      continue;
    }
    auto r = apply(b, p);
    if (!r) return poison(std::move(r).err());
    results.push_back(*r);
  }
  if (auto sides = write_side_tables(b, req, snapshot_ids); !sides)
    return poison(std::move(sides).err());
  return results;
}

/// Adds this transaction to the counts kept in meta under "counts":
/// commits:u64 events:u64 (little-endian).
result<void> count_commit(batch_txn& b) {
  std::uint64_t commits = 0, events = 0;
  MDB_val v{};
  int rc = b.txn.get(b.store.dbs.meta, "counts", v);
  if (rc == 0 && v.mv_size == 16) {
    commits = bytes::get_le<std::uint64_t>(static_cast<const char*>(v.mv_data));
    events = bytes::get_le<std::uint64_t>(static_cast<const char*>(v.mv_data) + 8);
  } else if (rc != 0 && rc != MDB_NOTFOUND) {
    return lmdb::to_error(rc, "reading the counts");
  }
  char value[16];
  bytes::put_le<std::uint64_t>(value, commits + 1);
  bytes::put_le<std::uint64_t>(value + 8, events + b.events);
  if (rc = b.txn.put(b.store.dbs.meta, "counts", std::string_view(value, sizeof value)); rc != 0)
    return lmdb::to_error(rc, "counting the commit");
  return {};
}

result<std::uint64_t> last_key(write_txn& t, MDB_dbi dbi) {
  MDB_cursor* c = nullptr;
  if (int rc = t.cursor_open(dbi, c); rc != 0) return lmdb::to_error(rc, "mdb_cursor_open");
  MDB_val k{}, v{};
  const int rc = t.cursor_get(c, k, v, MDB_LAST);
  mdb_cursor_close(c);
  if (rc == MDB_NOTFOUND) return std::uint64_t{0};
  if (rc != 0) return lmdb::to_error(rc, "mdb_cursor_get");
  if (k.mv_size != 8) return error{errc::corruption, "integer key of the wrong size"};
  return bytes::get_native_u64(lmdb::to_view(k));
}

}  // namespace

result<std::vector<write_outcome>> store_impl::write(std::span<const write_request> batch,
                                                     write_timing* timing) {
  std::size_t appends = 0;
  for (const write_request& req : batch)
    appends += req.appends.size();
  std::vector<append_ref> views;
  views.reserve(appends);
  std::vector<request_ref> refs;
  refs.reserve(batch.size());
  for (const write_request& req : batch) {
    const std::size_t first = views.size();
    for (const append_request& a : req.appends)
      views.push_back(append_ref{a.stream, a.expected, a.events});
    refs.push_back(
        request_ref{std::span<const append_ref>(views.data() + first, req.appends.size()), &req});
  }
  return write(std::span<const request_ref>(refs), timing);
}

result<std::vector<write_outcome>> store_impl::write(std::span<const request_ref> batch,
                                                     write_timing* timing) {
  using steady = std::chrono::steady_clock;
  std::lock_guard<std::mutex> lock(write_mutex);
  // Requests that failed after they began writing, with their errors: the
  // batch runs again without them.
  std::vector<std::optional<error>> dropped(batch.size());
  std::vector<write_outcome> outcomes;
  std::optional<batch_txn> b;

  auto run = [&](write_txn& t) -> result<txn_decision> {
    const auto started = steady::now();
    b.emplace(*this, t);
    if (cache.next_position == 0) {
      auto last = last_key(t, dbs.events);
      if (!last) return std::move(last).err();
      cache.next_position = *last + 1;
    }
    if (cache.next_stream_id == 0) {
      auto last = last_key(t, dbs.stream_ids);
      if (!last) return std::move(last).err();
      cache.next_stream_id = *last + 1;
    }
    b->next_position = cache.next_position;
    b->next_stream_id = cache.next_stream_id;
    outcomes.clear();
    outcomes.reserve(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (dropped[i]) {
        outcomes.push_back(*dropped[i]);
        continue;
      }
      write_outcome out = apply_request(*b, batch[i]);
      if (t.broken()) return txn_decision::rerun;  // transact aborts and says why
      if (b->poisoned) {
        dropped[i] = out.err();
        return txn_decision::rerun;
      }
      outcomes.push_back(std::move(out));
    }
    for (const auto& [id, h] : b->touched) {
      bytes::u64_key key(id);
      if (t.put(dbs.stream_heads, key.view(), encode_head(h.info)) != 0) return txn_decision::rerun;
    }
    if (!b->wrote) return txn_decision::discard;
    // The store's own count of commits and events, for every process.
    if (auto counted = count_commit(*b); !counted) return std::move(counted).err();
    if (timing)
      timing->apply_ns = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - started).count());
    return txn_decision::commit;
  };
  auto committed = [&] {
    cache.next_position = b->next_position;
    cache.next_stream_id = b->next_stream_id;
    for (auto& [name, id] : b->created)
      cache.names.emplace(name, id);
    for (auto& [id, h] : b->touched)
      cache.heads.insert_or_assign(id, std::move(h));
    for (auto& [name, dbi] : b->new_views)
      views.emplace(name, dbi);
    for (created_key& k : b->new_keys)
      data_keys.put(k.stream_id, k.wrapped, std::move(k.key));
    events_written.fetch_add(b->events, std::memory_order_relaxed);
  };
  auto aborted = [&] {
    if (!b) return;
    // Keys made by a transaction that did not commit are gone for good.
    for (const created_key& k : b->new_keys)
      writer_sealer.forget(k.stream_id);
  };
  auto done = transact(txn_work{run, committed, aborted}, timing ? &timing->commit_ns : nullptr);
  if (!done) return std::move(done).err();
  return outcomes;
}

}  // namespace varve::detail
