// Cursors, snapshots and views: checked with the request's appends, written
// after them in the same transaction.
#include <cstring>

#include "batch.hpp"
#include "utf8.hpp"

namespace varve::detail {

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

result<void> check_view(const store_impl& s, const view_update& u, const std::string& name,
                        bool check_name) {
  if (check_name && (name.empty() || name.size() > 200 || !utf8::valid(name) ||
                     name.find('\0') != std::string::npos))
    return error{errc::invalid_argument,
                 "view name must be 1 to 200 bytes of UTF-8 without NUL: '" + name + "'"};
  switch (u.kind) {
    case view_update::op::put:
    case view_update::op::erase:
    case view_update::op::clear:
    case view_update::op::erase_if_equal:
      break;
    default:
      return error{errc::invalid_argument, "view '" + name + "': unknown kind of update " +
                                               std::to_string(static_cast<unsigned>(u.kind))};
  }
  if (u.kind != view_update::op::clear && (u.key.empty() || u.key.size() > s.max_key_size))
    return error{errc::invalid_argument, "view '" + name + "': keys must be 1 to " +
                                             std::to_string(s.max_key_size) + " bytes"};
  return {};
}

result<void> check_view_room(batch_txn& b, const std::string& name) {
  if (b.new_views.contains(name)) return {};
  b.txn.lock_views();
  if (b.store.views.contains(name)) return {};
  MDB_dbi dbi = 0;  // a view another process made: open it
  if (int rc = mdb_dbi_open(b.txn.raw(), view_table(name).c_str(), 0, &dbi); rc == 0) {
    b.new_views.emplace(name, dbi);
    return {};
  }
  if (b.store.views.size() + b.new_views.size() >= b.store.opts.max_views)
    return error{errc::invalid_argument,
                 "view '" + name + "' would be one more than the store's " +
                     std::to_string(b.store.opts.max_views) +
                     " views (options.max_views; each process that opens the store may hold that "
                     "many)"};
  return {};
}

namespace {

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

/// The view a request's updates are writing to: the table of the last
/// update's view, and a cursor on it for the puts (rows written in key
/// order land on the page the cursor is on, where LMDB looks first).
struct view_writer {
  const std::string* name = nullptr;
  MDB_dbi dbi = 0;
  MDB_cursor* cursor = nullptr;
  ~view_writer() {
    if (cursor) mdb_cursor_close(cursor);
  }
};

/// Writes `u`; an update with an empty view name is to the view of the one
/// before it (checked: the request's first update names its view).
int apply_view(batch_txn& b, const view_update& u, view_writer& w) {
  if (u.view.empty() && !w.name) return EINVAL;
  if (!w.name || (!u.view.empty() && *w.name != u.view)) {
    if (w.cursor) mdb_cursor_close(w.cursor);
    w = view_writer{};
    if (int rc = view_for_write(b, u.view, w.dbi); rc != 0) return rc;
    w.name = &u.view;
  }
  const MDB_dbi dbi = w.dbi;
  MDB_val k = lmdb::to_val(u.key), v = lmdb::to_val(u.value);
  switch (u.kind) {
    case view_update::op::put:
      if (!w.cursor)
        if (int rc = b.txn.cursor_open(dbi, w.cursor); rc != 0) return rc;
      return b.txn.cursor_put(w.cursor, k, v, 0);
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

}  // namespace

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
  view_writer w;
  for (const view_update& u : req.views) {
    if (int rc = apply_view(b, u, w); rc != 0)
      return lmdb::to_error(rc, "writing view " + (w.name ? *w.name : u.view));
    b.wrote = true;
  }
  return {};
}

}  // namespace varve::detail
