// The write path: one write transaction per batch, every request checked
// completely before it writes anything, one commit for the lot.
#include <sys/statvfs.h>

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

/// Heads cached by the writer beyond this many are dropped (and re-read).
constexpr std::size_t max_cached_streams = std::size_t{1} << 20;

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

/// The state of one write transaction.
struct batch_txn {
  batch_txn(store_impl& s, MDB_txn* t, std::unique_lock<std::mutex>& views_lock)
      : store(s), txn(t), dbi_lock(views_lock) {}
  store_impl& store;
  MDB_txn* txn;
  global_position next_position = 0;
  std::uint64_t next_stream_id = 0;
  std::unordered_map<std::uint64_t, head_state> touched;
  name_map<std::uint64_t> created;
  timestamp_us now = now_us();
  std::uint64_t events = 0;
  bool wrote = false;
  int fatal_rc = 0;            // set when an LMDB write failed: the transaction must abort
  std::optional<error> fatal;  // set when sealing failed: the transaction must abort
  // Data keys of streams created by this transaction.
  std::unordered_map<std::uint64_t, std::shared_ptr<const crypto::key_bytes>> new_keys;
  // View tables created by this transaction; dbi_lock is held from the
  // first creation until the transaction ends.
  std::unordered_map<std::string, MDB_dbi> new_views;
  std::unique_lock<std::mutex>& dbi_lock;
  // The cursor of the appends to `events`; LMDB closes it with the
  // transaction (a write transaction's cursors end with it).
  MDB_cursor* log_cursor = nullptr;
};

/// One stream of a request, after its checks.
struct plan {
  const append_ref* request;
  std::optional<head_state> head;  // empty: the stream does not exist yet
  std::optional<append_result> idempotent;
  std::shared_ptr<const crypto::key_bytes> key;  // encrypted stores
};

result<std::shared_ptr<const crypto::key_bytes>> key_for(batch_txn& b, std::uint64_t id,
                                                         std::string_view stream) {
  if (auto it = b.new_keys.find(id); it != b.new_keys.end()) return it->second;
  auto key = b.store.data_key(b.txn, id);
  if (!key) return std::move(key).err();
  if (!*key) return error{errc::corruption, stream_label(stream) + " has no data key"};
  return key;
}

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
    MDB_val k = lmdb::to_val(name), v{};
    int rc = mdb_get(b.txn, b.store.dbs.stream_names, &k, &v);
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
  bytes::u64_key key(id);
  MDB_val k = lmdb::to_val(key.view()), v{};
  int rc = mdb_get(b.txn, b.store.dbs.stream_heads, &k, &v);
  if (rc == MDB_NOTFOUND) return error{errc::corruption, stream_label(name) + " has no head"};
  if (rc != 0) return lmdb::to_error(rc, "reading stream heads");
  auto info = decode_head(id, lmdb::to_view(v));
  if (!info) return std::move(info).err();
  head_state h{*info, {}, false};
  cache.heads.emplace(id, h);
  return std::optional<head_state>{std::move(h)};
}

result<event_id> stored_id(batch_txn& b, global_position pos) {
  bytes::u64_key key(pos);
  MDB_val k = lmdb::to_val(key.view()), v{};
  int rc = mdb_get(b.txn, b.store.dbs.events, &k, &v);
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
  auto found = stream_positions(b.txn, b.store.dbs, h.info.id, h.info.version, h.info.last_position,
                                after + 1, after + k, positions);
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
  auto found = stream_positions(b.txn, b.store.dbs, h.info.id, cur, h.info.last_position, lo, cur,
                                positions);
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

/// Checks one stream of a request: state, expectation, idempotency.
result<plan> check(batch_txn& b, const append_ref& r) {
  auto valid = validate(b.store, r);
  if (!valid) return std::move(valid).err();
  auto head = find_head(b, r.stream);
  if (!head) return std::move(head).err();
  plan p{&r, std::move(*head), std::nullopt, nullptr};
  if (p.head && p.head->info.state != stream_state::live)
    return error{errc::shredded, stream_label(r.stream) + " was shredded and takes no more events"};
  if (p.head && b.store.master) {
    auto key = key_for(b, p.head->info.id, r.stream);
    if (!key) return std::move(key).err();
    p.key = std::move(*key);
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

int put_chunk(batch_txn& b, const head_state& h) {
  std::string value(chunk_size * 8, '\0');
  for (std::size_t i = 0; i < chunk_size; ++i)
    bytes::put_le<std::uint64_t>(value.data() + i * 8, h.open_chunk[i]);
  const std::string key = chunk_key(h.info.id, h.info.version / chunk_size - 1);
  MDB_val k = lmdb::to_val(key), v = lmdb::to_val(value);
  return mdb_put(b.txn, b.store.dbs.stream_index, &k, &v, 0);
}

/// Writes one checked stream append. On an LMDB failure it sets b.fatal_rc:
/// the transaction must then be aborted.
result<append_result> apply(batch_txn& b, plan& p) {
  auto fail = [&](int rc, std::string_view what) -> error {
    b.fatal_rc = rc;
    return lmdb::to_error(rc, what);
  };
  const append_ref& r = *p.request;
  head_state* h = nullptr;
  if (!p.head) {
    const std::uint64_t id = b.next_stream_id++;
    bytes::u64_key key(id);
    const std::string id_value = encode_u64_le(id);
    MDB_val name = lmdb::to_val(r.stream), id_val = lmdb::to_val(id_value);
    if (int rc = mdb_put(b.txn, b.store.dbs.stream_names, &name, &id_val, MDB_NOOVERWRITE); rc != 0)
      return fail(rc, "creating the stream name");
    MDB_val id_key = lmdb::to_val(key.view()), name_val = lmdb::to_val(r.stream);
    if (int rc = mdb_put(b.txn, b.store.dbs.stream_ids, &id_key, &name_val, MDB_APPEND); rc != 0)
      return fail(rc, "creating the stream id");
    b.created.emplace(std::string(r.stream), id);
    if (b.store.master) {
      auto data_key = crypto::new_data_key();
      auto wrapped =
          data_key ? b.store.master->wrap(*data_key) : result<std::string>(data_key.err());
      if (!wrapped) {
        b.fatal = wrapped.err();
        return std::move(wrapped).err();
      }
      MDB_val k = lmdb::to_val(key.view()), v = lmdb::to_val(*wrapped);
      if (int rc = mdb_put(b.txn, b.store.dbs.keys, &k, &v, 0); rc != 0)
        return fail(rc, "storing the stream's data key");
      p.key = std::make_shared<const crypto::key_bytes>(std::move(*data_key));
      b.new_keys.emplace(id, p.key);
    }
    h = &b.touched
             .insert_or_assign(id, head_state{stream_info{id, 0, 0, stream_state::live}, {}, true})
             .first->second;
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
    MDB_val v{record::encoded_size(e.type.size(), e.metadata.size(), e.payload.size()) +
                  (p.key ? record::crypto_overhead : 0),
              nullptr};
    // One cursor for the transaction's appends: positioned at the end of the
    // log, it spares MDB_APPEND the descent from the root a fresh one makes.
    if (!b.log_cursor) {
      if (int rc = mdb_cursor_open(b.txn, b.store.dbs.events, &b.log_cursor); rc != 0)
        return fail(rc, "opening the log");
    }
    if (int rc = mdb_cursor_put(b.log_cursor, &k, &v, MDB_APPEND | MDB_RESERVE); rc != 0)
      return fail(rc, "appending to the log");
    if (p.key) {
      char* body = record::encode_head(static_cast<char*>(v.mv_data), hdr, record::flag_sealed,
                                       e.type, e.metadata.size(), e.payload.size());
      auto sealed = b.store.writer_sealer.seal(
          crypto::event_place{hdr.stream_id, hdr.version, pos, hdr.id, e.type}, *p.key, e.metadata,
          e.payload, body);
      if (!sealed) {
        b.fatal = sealed.err();
        return std::move(sealed).err();
      }
    } else {
      record::encode(static_cast<char*>(v.mv_data), hdr, e.type, e.metadata, e.payload);
    }
    ++b.next_position;
    ++b.events;
    h->info.version = hdr.version;
    h->info.last_position = pos;
    if (h->chunk_known) h->open_chunk.push_back(pos);
    if (h->info.version % chunk_size == 0) {
      if (!h->chunk_known) {
        h->open_chunk.clear();
        auto walked =
            stream_positions(b.txn, b.store.dbs, h->info.id, hdr.version - 1, hdr.previous_position,
                             hdr.version - chunk_size + 1, hdr.version - 1, h->open_chunk);
        if (!walked) return std::move(walked).err();
        h->open_chunk.push_back(pos);
      }
      if (int rc = put_chunk(b, *h); rc != 0) return fail(rc, "writing the stream index");
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
  if (!b.dbi_lock.owns_lock()) b.dbi_lock.lock();
  if (auto it = b.store.views.find(name); it != b.store.views.end()) {
    dbi = it->second;
    return 0;
  }
  if (int rc = mdb_dbi_open(b.txn, view_table(name).c_str(), MDB_CREATE, &dbi); rc != 0) return rc;
  b.new_views.emplace(name, dbi);
  return 0;
}

int apply_view(batch_txn& b, const view_update& u) {
  MDB_dbi dbi = 0;
  if (int rc = view_for_write(b, u.view, dbi); rc != 0) return rc;
  MDB_val k = lmdb::to_val(u.key), v = lmdb::to_val(u.value);
  switch (u.kind) {
    case view_update::op::put:
      return mdb_put(b.txn, dbi, &k, &v, 0);
    case view_update::op::erase: {
      int rc = mdb_del(b.txn, dbi, &k, nullptr);
      return rc == MDB_NOTFOUND ? 0 : rc;
    }
    case view_update::op::clear:
      return mdb_drop(b.txn, dbi, 0);
    case view_update::op::erase_if_equal: {
      MDB_val current{};
      int rc = mdb_get(b.txn, dbi, &k, &current);
      if (rc == MDB_NOTFOUND) return 0;
      if (rc != 0) return rc;
      if (lmdb::to_view(current) != u.value) return 0;
      return mdb_del(b.txn, dbi, &k, nullptr);
    }
  }
  return EINVAL;
}

/// Applies one request: checks all of its streams, then writes them.
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
    if (c.consumer.empty() || c.consumer.size() > b.store.max_key_size)
      return error{errc::invalid_argument,
                   "consumer name must be 1 to " + std::to_string(b.store.max_key_size) + " bytes"};
    if (c.expected) {
      MDB_val k = lmdb::to_val(c.consumer), v{};
      int rc = mdb_get(b.txn, b.store.dbs.cursors, &k, &v);
      if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading a cursor");
      const global_position at =
          rc == 0 && v.mv_size >= 8
              ? bytes::get_le<std::uint64_t>(static_cast<const char*>(v.mv_data))
              : 0;
      if (at != *c.expected)
        return error{errc::wrong_expected_version,
                     "cursor of '" + c.consumer + "': expected position " +
                         std::to_string(*c.expected) + ", but it is at " + std::to_string(at)};
    }
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
  std::vector<append_result> results;
  results.reserve(plans.size());
  for (plan& p : plans) {
    if (p.idempotent) {
      results.push_back(*p.idempotent);
      continue;
    }
    auto r = apply(b, p);
    if (!r) return std::move(r).err();
    results.push_back(*r);
  }
  for (const cursor_update& c : req.cursors) {
    const std::string value = encode_u64_le(c.position) + c.state;
    MDB_val k = lmdb::to_val(c.consumer), v = lmdb::to_val(value);
    if (int rc = mdb_put(b.txn, b.store.dbs.cursors, &k, &v, 0); rc != 0) {
      b.fatal_rc = rc;
      return lmdb::to_error(rc, "writing a cursor");
    }
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
    MDB_val k = lmdb::to_val(key.view()), v = lmdb::to_val(value);
    if (int rc = mdb_put(b.txn, b.store.dbs.snapshots, &k, &v, 0); rc != 0) {
      b.fatal_rc = rc;
      return lmdb::to_error(rc, "writing a snapshot");
    }
    b.wrote = true;
  }
  for (const view_update& u : req.views) {
    if (int rc = apply_view(b, u); rc != 0) {
      b.fatal_rc = rc;
      return lmdb::to_error(rc, "writing view " + u.view);
    }
    b.wrote = true;
  }
  return results;
}

/// Adds this transaction to the counts kept in meta under "counts":
/// commits:u64 events:u64 (little-endian).
int count_commit(batch_txn& b) {
  MDB_val k = lmdb::to_val("counts"), v{};
  std::uint64_t commits = 0, events = 0;
  int rc = mdb_get(b.txn, b.store.dbs.meta, &k, &v);
  if (rc == 0 && v.mv_size == 16) {
    commits = bytes::get_le<std::uint64_t>(static_cast<const char*>(v.mv_data));
    events = bytes::get_le<std::uint64_t>(static_cast<const char*>(v.mv_data) + 8);
  } else if (rc != 0 && rc != MDB_NOTFOUND) {
    return rc;
  }
  char value[16];
  bytes::put_le<std::uint64_t>(value, commits + 1);
  bytes::put_le<std::uint64_t>(value + 8, events + b.events);
  MDB_val nv{sizeof value, value};
  return mdb_put(b.txn, b.store.dbs.meta, &k, &nv, 0);
}

result<std::uint64_t> last_key(MDB_txn* txn, MDB_dbi dbi) {
  auto c = lmdb::cursor::open(txn, dbi);
  if (!c) return std::move(c).err();
  MDB_val k{}, v{};
  auto found = c->get(k, v, MDB_LAST);
  if (!found) return std::move(found).err();
  if (!*found) return std::uint64_t{0};
  if (k.mv_size != 8) return error{errc::corruption, "integer key of the wrong size"};
  return bytes::get_native_u64(lmdb::to_view(k));
}

}  // namespace

namespace {

/// Whether the filesystem of `dir` has (almost) no space left.
bool disk_full(const std::filesystem::path& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return false;
  return std::uint64_t{st.f_bavail} * st.f_frsize < (std::uint64_t{1} << 20);
}

}  // namespace

result<std::optional<lmdb::txn>> store_impl::begin_write() {
  if (failed)
    return error{errc::failed_state, "the store stopped taking writes after an I/O failure (" +
                                         failure + "); reopen it to recover what was committed"};
  MDB_txn* raw = nullptr;
  if (int rc = mdb_txn_begin(env.get(), nullptr, 0, &raw); rc != 0) {
    if (rc != MDB_MAP_RESIZED) return lmdb::to_error(rc, "beginning a write transaction");
    auto adopted = adopt_map_size();  // another process grew the map
    if (!adopted) return std::move(adopted).err();
    return std::optional<lmdb::txn>{};
  }
  lmdb::txn t(raw);
  const std::uint64_t txn_id = mdb_txn_id(t.get());
  if (txn_id != cache.expected_txn_id || cache.heads.size() > max_cached_streams) cache.clear();
  return std::optional<lmdb::txn>{std::move(t)};
}

result<bool> store_impl::commit_write(lmdb::txn& t) {
  const std::uint64_t txn_id = mdb_txn_id(t.get());
  int rc = 0;
  if (injected_commit_failure != 0) {
    rc = std::exchange(injected_commit_failure, 0);
    t.abort();
  } else {
    rc = t.commit();
  }
  if (rc == 0) {
    cache.expected_txn_id = txn_id + 1;
    return true;
  }
  cache.clear();
  cache.expected_txn_id = 0;
  if (rc == MDB_MAP_FULL) {
    auto grown = grow_map();
    if (!grown) return std::move(grown).err();
    return false;
  }
  error err = lmdb::to_error(rc, "committing");
  // LMDB reports a write cut short by a full disk as EIO: a commit that
  // failed while the filesystem has no room left is storage_full, and the
  // store stays usable (nothing of the transaction became visible).
  if (rc == EIO && disk_full(opts.directory))
    err = error{errc::storage_full,
                "the disk holding " + opts.directory.string() + " is full; free space and retry"};
  if (err.code() != errc::storage_full) {
    failed = true;
    failure = err.message();
  }
  return err;
}

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
  auto elapsed_ns = [](steady::time_point since) {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - since).count());
  };
  std::lock_guard<std::mutex> lock(write_mutex);
  for (;;) {
    const auto started = steady::now();
    // Declared before the transaction so that it is released after it ends.
    std::unique_lock<std::mutex> dbi_lock(dbi_mutex, std::defer_lock);
    auto begun = begin_write();
    if (!begun) return std::move(begun).err();
    if (!*begun) continue;
    lmdb::txn& t = **begun;
    const std::uint64_t txn_id = mdb_txn_id(t.get());

    batch_txn b{*this, t.get(), dbi_lock};
    if (cache.next_position == 0) {
      auto last = last_key(b.txn, dbs.events);
      if (!last) return std::move(last).err();
      cache.next_position = *last + 1;
    }
    if (cache.next_stream_id == 0) {
      auto last = last_key(b.txn, dbs.stream_ids);
      if (!last) return std::move(last).err();
      cache.next_stream_id = *last + 1;
    }
    b.next_position = cache.next_position;
    b.next_stream_id = cache.next_stream_id;

    std::vector<write_outcome> outcomes;
    outcomes.reserve(batch.size());
    for (const request_ref& req : batch) {
      outcomes.push_back(apply_request(b, req));
      if (b.fatal_rc != 0 || b.fatal) break;
    }
    for (const auto& [id, h] : b.touched) {
      if (b.fatal_rc != 0) break;
      const std::string value = encode_head(h.info);
      bytes::u64_key key(id);
      MDB_val k = lmdb::to_val(key.view()), v = lmdb::to_val(value);
      b.fatal_rc = mdb_put(b.txn, dbs.stream_heads, &k, &v, 0);
    }
    if (b.fatal_rc == MDB_MAP_FULL) {
      t.abort();
      auto grown = grow_map();
      if (!grown) return std::move(grown).err();
      continue;
    }
    if (b.fatal_rc != 0) return lmdb::to_error(b.fatal_rc, "writing a batch");
    if (b.fatal) return std::move(*b.fatal);

    if (!b.wrote) {  // nothing to commit: the next transaction keeps this id
      t.abort();
      cache.expected_txn_id = txn_id;
      return outcomes;
    }
    // The store's own count of commits and events, for every process.
    if (int rc = count_commit(b); rc != 0) {
      if (rc == MDB_MAP_FULL) {
        t.abort();
        auto grown = grow_map();
        if (!grown) return std::move(grown).err();
        continue;
      }
      return lmdb::to_error(rc, "counting the commit");
    }
    if (timing) timing->apply_ns = elapsed_ns(started);
    const auto committing = steady::now();
    auto committed = commit_write(t);
    if (timing) timing->commit_ns = elapsed_ns(committing);
    if (!committed) return std::move(committed).err();
    if (!*committed) continue;  // the map grew: run the batch again
    cache.next_position = b.next_position;
    cache.next_stream_id = b.next_stream_id;
    for (auto& [name, id] : b.created)
      cache.names.emplace(name, id);
    for (auto& [id, h] : b.touched)
      cache.heads.insert_or_assign(id, std::move(h));
    for (auto& [name, dbi] : b.new_views)
      views.emplace(name, dbi);
    for (auto& [id, k] : b.new_keys)
      data_keys.put(id, std::move(k));
    events_written.fetch_add(b.events, std::memory_order_relaxed);
    return outcomes;
  }
}

namespace {

/// Erases the data of every event of a plain stream: each record keeps its
/// header and type, flagged shredded.
int erase_stream_data(MDB_txn* txn, const tables& dbs, const stream_info& head,
                      std::optional<error>& failure) {
  std::vector<global_position> positions;
  auto found = stream_positions(txn, dbs, head.id, head.version, head.last_position, 1,
                                head.version, positions);
  if (!found) {
    failure = found.err();
    return EINVAL;
  }
  std::string rewritten;
  for (global_position pos : positions) {
    bytes::u64_key key(pos);
    MDB_val k = lmdb::to_val(key.view()), v{};
    if (int rc = mdb_get(txn, dbs.events, &k, &v); rc != 0) return rc;
    auto d = record::decode_record(pos, lmdb::to_view(v));
    if (!d) {
      failure = d.err();
      return EINVAL;
    }
    const event_view& e = d->view;
    rewritten.assign(record::encoded_size(e.type.size(), 0, 0), '\0');
    record::encode_head(rewritten.data(),
                        record::header{e.stream_id, e.version, e.previous_position, e.id, e.time},
                        record::flag_shredded, e.type, 0, 0);
    MDB_val nv = lmdb::to_val(rewritten);
    if (int rc = mdb_put(txn, dbs.events, &k, &nv, 0); rc != 0) return rc;
  }
  return 0;
}

}  // namespace

result<void> store_impl::shred(std::string_view stream) {
  std::lock_guard<std::mutex> lock(write_mutex);
  for (;;) {
    auto begun = begin_write();
    if (!begun) return std::move(begun).err();
    if (!*begun) continue;
    lmdb::txn& t = **begun;
    auto id_value = t.get(dbs.stream_names, stream);
    if (!id_value) return std::move(id_value).err();
    if (!*id_value)
      return error{errc::not_found, "stream '" + std::string(stream) + "' does not exist"};
    auto id = decode_u64_le(**id_value, "stream id");
    if (!id) return std::move(id).err();
    bytes::u64_key key(*id);
    auto head_value = t.get(dbs.stream_heads, key.view());
    if (!head_value) return std::move(head_value).err();
    if (!*head_value)
      return error{errc::corruption, "stream '" + std::string(stream) + "' has no head"};
    auto head = decode_head(*id, **head_value);
    if (!head) return std::move(head).err();
    if (head->state == stream_state::shredded) return {};

    int rc = 0;
    std::optional<error> failure;
    if (master) {  // crypto-shredding: overwrite the wrapped key, then delete it
      auto wrapped = t.get(dbs.keys, key.view());
      if (!wrapped) return std::move(wrapped).err();
      if (*wrapped) {
        const std::string zeros((*wrapped)->size(), '\0');
        rc = t.put(dbs.keys, key.view(), zeros);
        if (rc == 0) {
          MDB_val k = lmdb::to_val(key.view());
          rc = mdb_del(t.get(), dbs.keys, &k, nullptr);
        }
      }
    } else {
      rc = erase_stream_data(t.get(), dbs, *head, failure);
    }
    if (failure) return std::move(*failure);
    if (rc == 0) {  // a snapshot holds the stream's data in clear: it goes too
      MDB_val k = lmdb::to_val(key.view());
      rc = mdb_del(t.get(), dbs.snapshots, &k, nullptr);
      if (rc == MDB_NOTFOUND) rc = 0;
    }
    if (rc == 0) {
      head->state = stream_state::shredded;
      rc = t.put(dbs.stream_heads, key.view(), encode_head(*head));
    }
    if (rc == MDB_MAP_FULL) {
      t.abort();
      auto grown = grow_map();
      if (!grown) return std::move(grown).err();
      continue;
    }
    if (rc != 0) return lmdb::to_error(rc, "shredding stream '" + std::string(stream) + "'");
    auto committed = commit_write(t);
    if (!committed) return std::move(committed).err();
    if (!*committed) continue;
    if (auto c = cache.heads.find(*id); c != cache.heads.end())
      c->second.info.state = stream_state::shredded;
    data_keys.erase(*id);
    writer_sealer.forget(*id);
    return {};
  }
}

result<void> store_impl::rotate(crypto::key_bytes new_key) {
  if (!master) return error{errc::invalid_argument, "the store is not encrypted"};
  std::lock_guard<std::mutex> lock(write_mutex);
  auto next = std::make_unique<crypto::master_key>(std::move(new_key));
  for (;;) {
    auto begun = begin_write();
    if (!begun) return std::move(begun).err();
    if (!*begun) continue;
    lmdb::txn& t = **begun;
    int rc = 0;
    {
      auto c = lmdb::cursor::open(t.get(), dbs.keys);
      if (!c) return std::move(c).err();
      MDB_val k{}, v{};
      auto found = c->get(k, v, MDB_FIRST);
      while (found && *found) {
        auto key = master->unwrap(lmdb::to_view(v));
        if (!key) return std::move(key).err();
        auto wrapped = next->wrap(*key);
        if (!wrapped) return std::move(wrapped).err();
        MDB_val nv = lmdb::to_val(*wrapped);
        if ((rc = mdb_cursor_put(c->get(), &k, &nv, MDB_CURRENT)) != 0) break;
        found = c->get(k, v, MDB_NEXT);
      }
      if (!found) return std::move(found).err();
    }
    if (rc == 0) {
      auto check = next->make_check();
      if (!check) return std::move(check).err();
      rc = t.put(dbs.meta, "key_check", *check);
    }
    if (rc == MDB_MAP_FULL) {
      t.abort();
      auto grown = grow_map();
      if (!grown) return std::move(grown).err();
      continue;
    }
    if (rc != 0) return lmdb::to_error(rc, "re-wrapping data keys");
    auto committed = commit_write(t);
    if (!committed) return std::move(committed).err();
    if (!*committed) continue;
    master = std::move(next);
    return {};
  }
}

}  // namespace varve::detail
