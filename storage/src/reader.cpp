// The read path: read_transaction over one LMDB read-only transaction;
// events of the log and of streams (side tables: reader_tables.cpp).
#include <algorithm>
#include <memory>
#include <optional>

#include "log_leaf.hpp"
#include "record.hpp"
#include "store_impl.hpp"

namespace varve {

namespace {

result<std::uint64_t> last_integer_key(MDB_txn* txn, MDB_dbi dbi) {
  auto c = lmdb::cursor::open(txn, dbi);
  if (!c) return std::move(c).err();
  MDB_val k{}, v{};
  auto found = c->get(k, v, MDB_LAST);
  if (!found) return std::move(found).err();
  if (!*found) return std::uint64_t{0};
  return bytes::get_native_u64(lmdb::to_view(k));
}

}  // namespace

namespace detail {

result<std::shared_ptr<const crypto::key_bytes>> store_impl::data_key(
    std::uint64_t stream_id, std::string_view wrapped) const {
  if (auto k = data_keys.find(stream_id, wrapped)) return k;
  auto key = master();
  if (!key) return error{errc::auth_failed, "the store was opened without its master key"};
  auto unwrapped = key->unwrap(wrapped);
  if (!unwrapped)
    return error{unwrapped.err().code(), "the data key of stream id " + std::to_string(stream_id) +
                                             ": " + unwrapped.err().message()};
  auto shared = std::make_shared<const crypto::key_bytes>(std::move(*unwrapped));
  data_keys.put(stream_id, wrapped, shared);
  return shared;
}

namespace {

/// The data key of a stream as of the transaction's snapshot; nullptr when
/// the stream was shredded. Errors: corruption (a live stream without a
/// key), auth_failed.
result<std::shared_ptr<const crypto::key_bytes>> key_in_snapshot(const read_state& st,
                                                                 std::uint64_t stream_id,
                                                                 global_position position) {
  bytes::u64_key id(stream_id);
  auto wrapped = st.txn.get(st.store->dbs.keys, id.view());
  if (!wrapped) return std::move(wrapped).err();
  if (*wrapped) {
    auto key = st.store->data_key(stream_id, **wrapped);
    if (!key && key.err().code() == errc::auth_failed) {
      auto check = st.txn.get(st.store->dbs.meta, "key_check");
      if (check && *check && **check != st.store->key_check) return detail::master_rotated();
    }
    return key;
  }
  // No key: shredded, or damaged.
  auto head = st.txn.get(st.store->dbs.stream_heads, id.view());
  if (!head) return std::move(head).err();
  auto info = *head ? decode_head(stream_id, **head) : result<stream_info>(stream_info{});
  if (!info || info->state != stream_state::shredded)
    return error{errc::corruption,
                 "event at position " + std::to_string(position) + ": its stream has no data key"};
  return std::shared_ptr<const crypto::key_bytes>{};
}

}  // namespace

result<std::string_view> read_state::name_of(std::uint64_t stream_id) const {
  if (auto it = names.find(stream_id); it != names.end()) return it->second;
  bytes::u64_key key(stream_id);
  auto name = txn.get(store->dbs.stream_ids, key.view());
  if (!name) return std::move(name).err();
  if (!*name) return error{errc::not_found, "no stream has id " + std::to_string(stream_id)};
  names.emplace(stream_id, **name);
  return **name;
}

result<stream_info> read_state::head_of(std::string_view name, std::string_view id_bytes) const {
  auto id = decode_u64_le(id_bytes, "id of stream '" + std::string(name) + "'");
  if (!id) return std::move(id).err();
  bytes::u64_key key(*id);
  auto head = txn.get(store->dbs.stream_heads, key.view());
  if (!head) return std::move(head).err();
  if (!*head) return error{errc::corruption, "stream '" + std::string(name) + "' has no head"};
  return decode_head(*id, **head);
}

result<event_view> read_state::event(global_position position, std::string_view bytes,
                                     bool keep) const {
  event_view v;
  if (auto failed = event_into(position, bytes, keep, v)) return std::move(*failed);
  return v;
}

std::optional<error> read_state::event_into(global_position position, std::string_view bytes,
                                            bool keep, event_view& out) const {
  record::body b;
  if (record::decode_into(position, bytes, out, b, check_sums)) [[unlikely]]
    return record::decode_record(position, bytes, check_sums).err();
  if (!b.is_sealed && !store->encrypted) [[likely]]
    return std::nullopt;
  if (auto opened = open_sealed(position, out, b, keep); !opened) return std::move(opened).err();
  return std::nullopt;
}

result<void> read_state::open_sealed(global_position position, event_view& v, const record::body& d,
                                     bool keep) const {
  if (!d.is_sealed) {
    // Every record of an encrypted store is sealed: one that is not was
    // written or changed by someone without the key.
    return error{errc::auth_failed, "event at position " + std::to_string(position) +
                                        " is not sealed, in an encrypted store: it does "
                                        "not authenticate"};
  }
  if (!store->encrypted)
    return error{errc::auth_failed, "event at position " + std::to_string(position) +
                                        " is encrypted and the store was opened without a key"};
  // The key as of this transaction's snapshot: a stream shredded (or a key
  // re-wrapped) by another process is seen by every transaction begun after.
  auto it = keys.find(v.stream_id);
  if (it == keys.end()) {
    auto key = key_in_snapshot(*this, v.stream_id, position);
    if (!key) return std::move(key).err();
    it = keys.emplace(v.stream_id, std::move(*key)).first;
  }
  if (!it->second) {
    v.shredded = true;
    return {};
  }
  if (!opener) opener = std::make_unique<crypto::sealer>();
  // Format 2 binds the stream's name too: an event served under another
  // name (the name and id tables swapped) does not authenticate.
  std::string_view name;
  if (d.format != record::format_v1) {
    auto found = name_of(v.stream_id);
    if (!found) return std::move(found).err();
    name = *found;
  }
  crypto::key_bytes& plain = keep ? kept.emplace_back() : scratch;
  // Format 3's head covers its type and tags; format 2's is the 60-byte
  // header, followed by the type.
  const crypto::event_place place{v.stream_id,
                                  v.version,
                                  position,
                                  v.id,
                                  d.format == record::format_v3 ? std::string_view{} : v.type,
                                  d.format == record::format_v1 ? std::string_view{} : d.head,
                                  name};
  auto opened = opener->open(place, *it->second, d.sealed, plain);
  if (!opened)
    return error{opened.err().code(),
                 "event at position " + std::to_string(position) + " " + opened.err().message()};
  const char* body = reinterpret_cast<const char*>(plain.data());
  v.metadata = {body, d.metadata_size};
  v.payload = {body + d.metadata_size, plain.size() - d.metadata_size};
  return {};
}

}  // namespace detail

read_transaction::read_transaction(std::unique_ptr<detail::read_state> state)
    : state_(std::move(state)) {}
read_transaction::read_transaction(read_transaction&&) noexcept = default;
read_transaction& read_transaction::operator=(read_transaction&&) noexcept = default;
read_transaction::~read_transaction() {
  if (state_) state_->txn.abort();  // before the map guard is released
}

global_position read_transaction::head() const {
  auto last = last_integer_key(state_->txn.get(), state_->store->dbs.events);
  return last ? *last : 0;
}

std::uint64_t read_transaction::stream_count() const {
  auto last = last_integer_key(state_->txn.get(), state_->store->dbs.stream_ids);
  return last ? *last : 0;
}

result<std::optional<stream_info>> read_transaction::stream(std::string_view name) const {
  const auto& dbs = state_->store->dbs;
  auto id_value = state_->txn.get(dbs.stream_names, name);
  if (!id_value) return std::move(id_value).err();
  if (!*id_value) return std::optional<stream_info>{};
  auto info = state_->head_of(name, **id_value);
  if (!info) return std::move(info).err();
  return std::optional<stream_info>{*info};
}

result<std::string_view> read_transaction::stream_name(std::uint64_t stream_id) const {
  return state_->name_of(stream_id);
}

namespace {

result<event_view> event_at(const detail::read_state& st, global_position position, bool keep) {
  bytes::u64_key key(position);
  auto value = st.txn.get(st.store->dbs.events, key.view());
  if (!value) return std::move(value).err();
  if (!*value) return error{errc::not_found, "no event at position " + std::to_string(position)};
  return st.event(position, **value, keep);
}

}  // namespace

result<event_view> read_transaction::event_at(global_position position) const {
  return varve::event_at(*state_, position, true);
}

result<std::size_t> read_transaction::scan_stream(
    std::string_view name, stream_version from, direction dir, std::size_t limit,
    function_ref<bool(const event_view&)> visit) const {
  auto info = stream(name);
  if (!info) return std::move(info).err();
  if (!*info) return error{errc::not_found, "stream '" + std::string(name) + "' does not exist"};
  const stream_info& head = **info;
  if (head.version == 0 || limit == 0) return std::size_t{0};

  const bool forward = dir == direction::forward;
  stream_version first, last;  // the versions to visit, first <= last
  if (forward) {
    first = std::max<stream_version>(from, 1);
    if (first > head.version) return std::size_t{0};
    last = head.version - first + 1 <= limit ? head.version : first + limit - 1;
  } else {
    last = std::min(from, head.version);
    if (last == 0) return std::size_t{0};
    first = last <= limit ? 1 : last - limit + 1;
  }

  std::size_t visited = 0;
  MDB_txn* raw = state_->txn.get();
  auto lookup = [raw](MDB_dbi dbi, MDB_val& k, MDB_val& v) { return mdb_get(raw, dbi, &k, &v); };
  std::vector<global_position> positions;
  positions.reserve(detail::chunk_size);
  // The records read while walking back from the head (versions after the
  // last full chunk), decoded from there rather than looked up again.
  std::vector<std::string_view> walked;
  // The chunk's records not read on the walk back from the head, found
  // together (log_finder.hpp).
  std::vector<global_position> wanted;
  std::vector<std::string_view> found_records;
  std::vector<std::size_t> wanted_at;
  // One stream-index chunk (or the tail after the last full one) at a time.
  stream_version lo =
      forward ? first : std::max(first, (last - 1) / detail::chunk_size * detail::chunk_size + 1);
  stream_version hi = forward
                          ? std::min(last, (first - 1) / detail::chunk_size * detail::chunk_size +
                                               detail::chunk_size)
                          : last;
  for (;;) {
    positions.clear();
    walked.clear();
    auto found = detail::stream_positions(lookup, state_->store->dbs, head.id, head.version,
                                          head.last_position, lo, hi, positions, &walked);
    if (!found) return std::move(found).err();
    // Look the chunk's records up first, then decode them: the lookups
    // misses overlap instead of waiting for memory one event at a time.
    wanted.clear();
    wanted_at.clear();
    for (std::size_t at = 0; at < positions.size(); ++at) {
      if (!walked[at].empty()) continue;
      wanted.push_back(positions[at]);
      wanted_at.push_back(at);
    }
    found_records.resize(wanted.size());
    std::size_t failed = 0;
    if (int rc = state_->finder().find(wanted, found_records, failed); rc != 0) {
      if (rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading the log");
      return error{errc::corruption, "stream '" + std::string(name) +
                                         "' points at a missing event " +
                                         std::to_string(wanted[failed])};
    }
    for (std::size_t i = 0; i < wanted.size(); ++i)
      walked[wanted_at[i]] = found_records[i];
    event_view ev;
    for (std::size_t i = 0; i < positions.size(); ++i) {
      const std::size_t at = forward ? i : positions.size() - 1 - i;
      if (auto failed = state_->event_into(positions[at], walked[at], state_->keep_bodies, ev))
          [[unlikely]]
        return std::move(*failed);
      if (ev.stream_id != head.id || ev.version != lo + at)
        return error{errc::corruption, "stream '" + std::string(name) + "' index points at " +
                                           "the wrong event " + std::to_string(positions[at])};
      ++visited;
      if (!visit(ev)) return visited;
    }
    if (forward) {
      if (hi == last) break;
      lo = hi + 1;
      hi = std::min(last, hi + detail::chunk_size);
    } else {
      if (lo == first) break;
      hi = lo - 1;
      lo = hi >= first + detail::chunk_size ? hi - detail::chunk_size + 1 : first;
    }
  }
  return visited;
}

result<std::size_t> read_transaction::scan_log(global_position from, direction dir,
                                               std::size_t limit,
                                               function_ref<bool(const event_view&)> visit) const {
  if (limit == 0) return std::size_t{0};
  auto c = lmdb::cursor::open(state_->txn.get(), state_->store->dbs.events);
  if (!c) return std::move(c).err();
  const bool forward = dir == direction::forward;
  global_position start = forward ? std::max<global_position>(from, 1) : from;
  MDB_val k{sizeof start, &start}, v{};
  result<bool> found = false;
  if (!forward && from == from_end) {
    found = c->get(k, v, MDB_LAST);
  } else {
    found = c->get(k, v, MDB_SET_RANGE);
    if (!forward) {
      if (found && !*found)
        found = c->get(k, v, MDB_LAST);
      else if (found && bytes::get_native_u64(lmdb::to_view(k)) > start)
        found = c->get(k, v, MDB_PREV);
    }
  }
  if (!found) return std::move(found).err();
  if (!*found) return std::size_t{0};
  // The walk: the cursor reads the first record of each leaf page and the
  // page itself the others (log_leaf.hpp), while the next page is read
  // ahead; one decode, one visit per event, nothing built on the way but on
  // failure.
  std::size_t visited = 0;
  const MDB_cursor_op step = forward ? MDB_NEXT : MDB_PREV;
  const bool keep = state_->keep_bodies;
  MDB_cursor* cursor = c->get();
  const std::size_t page_size = detail::leaf_page_size(state_->txn.get());
  detail::page_guess guess(page_size, forward);
  guess.arrive(v);
  global_position expected = bytes::get_native_u64(lmdb::to_view(k));
  event_view ev;
  std::optional<error> failed;
  // Visits the event at `position`; false when the scan ends (an error in
  // `failed`, or the visitor or the limit).
  auto one = [&](global_position position, std::string_view record) {
    // The log is gapless: a walk that skips or repeats a position went
    // through a damaged tree (LMDB does not check its own pages).
    if (position != expected) [[unlikely]] {
      failed = error{errc::corruption, "the log goes from position " +
                                           std::to_string(forward ? expected - 1 : expected + 1) +
                                           " to " + std::to_string(position) +
                                           ": its pages are damaged (run verify)"};
      return false;
    }
    guess.tick(record.size());
    if ((failed = state_->event_into(position, record, keep, ev))) [[unlikely]]
      return false;
    ++visited;
    if (!visit(ev) || visited == limit) return false;
    expected = forward ? position + 1 : position - 1;
    return true;
  };
  for (;;) {
    const global_position position = bytes::get_native_u64(lmdb::to_view(k));
    if (!one(position, lmdb::to_view(v))) break;
    // The rest of the page, then the cursor again from the last record the
    // page gave (found on the cursor's page without a descent), one step on.
    detail::log_leaf leaf(page_size, v);
    global_position at = position;
    bool going = true;
    for (std::string_view next; going && leaf.step(forward, at, next);)
      going = one(at, next);
    if (!going) break;
    if (at != position) {
      k = MDB_val{sizeof at, &at};
      if (int rc = mdb_cursor_get(cursor, &k, &v, MDB_SET); rc != 0)
        return error{errc::corruption, "the log's page holding position " + std::to_string(at) +
                                           " does not read back (" + mdb_strerror(rc) +
                                           "): its pages are damaged (run verify)"};
    }
    if (int rc = mdb_cursor_get(cursor, &k, &v, step); rc != 0) {
      if (rc == MDB_NOTFOUND) break;
      return lmdb::to_error(rc, "mdb_cursor_get");
    }
    guess.arrive(v);
  }
  if (failed) return std::move(*failed);
  return visited;
}

result<std::vector<event_view>> read_transaction::read_stream(std::string_view name,
                                                              stream_version from, direction dir,
                                                              std::size_t limit) const {
  std::vector<event_view> out;
  auto collect = [&](const event_view& v) {
    out.push_back(v);
    return true;
  };
  detail::keeping_bodies keep(*state_);
  auto n = scan_stream(name, from, dir, limit, collect);
  if (!n) return std::move(n).err();
  return out;
}

result<std::vector<event_view>> read_transaction::read_log(global_position from, direction dir,
                                                           std::size_t limit) const {
  std::vector<event_view> out;
  auto n = read_log(from, dir, limit, out);
  if (!n) return std::move(n).err();
  return out;
}

result<std::size_t> read_transaction::read_log(global_position from, direction dir,
                                               std::size_t limit,
                                               std::vector<event_view>& out) const {
  out.clear();
  auto collect = [&](const event_view& v) {
    out.push_back(v);
    return true;
  };
  detail::keeping_bodies keep(*state_);
  return scan_log(from, dir, limit, collect);
}

}  // namespace varve
