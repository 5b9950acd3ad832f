// Checking one stream append before anything is written: the input, the
// stream's head, its state and data key, the expected version, and
// idempotency (EventStoreDB's rule; see event_store.hpp).
#include <algorithm>
#include <string>

#include "batch.hpp"
#include "record.hpp"
#include "utf8.hpp"

namespace varve::detail {

namespace {

/// How many recent events of a stream an `any` append with caller-given ids
/// looks back through for a duplicate.
constexpr stream_version idempotency_window = 64;

result<void> validate_tags(std::string_view stream, std::size_t i, const new_event& e) {
  auto bad = [&](std::string what) {
    return error{errc::invalid_argument,
                 stream_label(stream) + ": event " + std::to_string(i) + " " + what};
  };
  if (e.tags.size() > max_tags)
    return bad("has " + std::to_string(e.tags.size()) + " tags, over the limit of " +
               std::to_string(max_tags));
  for (std::size_t t = 0; t < e.tags.size(); ++t) {
    const std::string& tag = e.tags[t];
    if (tag.empty() || tag.size() > max_tag_bytes)
      return bad("has a tag of " + std::to_string(tag.size()) + " bytes (tags are 1.." +
                 std::to_string(max_tag_bytes) + " bytes)");
    if (!utf8::valid(tag)) return bad("has a tag that is not valid UTF-8");
    for (std::size_t u = 0; u < t; ++u)
      if (e.tags[u] == tag) return bad("has the tag '" + tag + "' twice");
  }
  return {};
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
    if (auto tags = validate_tags(r.stream, i, e); !tags) return tags;
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

}  // namespace

result<std::optional<head_state>> find_head(batch_txn& b, std::string_view name) {
  writer_cache& cache = b.store.cache;
  std::uint64_t id = 0;
  // Most transactions create no stream: the name is hashed once, for the
  // writer cache.
  if (auto it = b.created.empty() ? b.created.end() : b.created.find(name); it != b.created.end()) {
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
  // A copy without the open chunk, which apply() takes over from where the
  // head is kept (no copy of up to chunk_size positions per request).
  auto checked = [](const head_state& h) {
    return std::optional<head_state>{head_state{h.info, {}, false, h.key}};
  };
  if (auto t = b.touched.find(id); t != b.touched.end()) return checked(t->second);
  if (auto c = cache.heads.find(id); c != cache.heads.end()) return checked(c->second);
  auto h = read_head(b, id, name);
  if (!h) return std::move(h).err();
  cache.heads.emplace(id, *h);
  return std::optional<head_state>{std::move(*h)};
}

namespace {

/// Whether the store's master key is still the one this handle holds:
/// another process may have rotated it since this handle opened the store,
/// and a data key wrapped under the retired key would never unwrap again.
result<void> master_is_current(batch_txn& b) {
  if (b.master_checked) return {};
  MDB_val v{};
  const int rc = b.txn.get(b.store.dbs.meta, "key_check", v);
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading the key check");
  const std::string_view stored = rc == 0 ? lmdb::to_view(v) : std::string_view{};
  if (stored != b.store.key_check) return master_rotated();
  b.master_checked = true;
  return {};
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
  if (!unwrapped && unwrapped.err().code() == errc::auth_failed && !master_is_current(b))
    return master_rotated();
  if (!unwrapped) return std::move(unwrapped).err();
  h.key = *unwrapped;
  return h.key;
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
    // An event without an id is new: it matches nothing stored.
    if (!r.events[i].id) return std::optional<append_result>{};
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

}  // namespace

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

}  // namespace varve::detail
