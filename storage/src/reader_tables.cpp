// The read path, side tables: the list of streams, consumer cursors,
// snapshots and views, read in a read_transaction's snapshot. Events are
// read in reader.cpp.
#include <cerrno>
#include <memory>

#include "store_impl.hpp"

namespace varve {

namespace {

result<cursor_view> decode_cursor(std::string_view consumer, std::string_view value) {
  if (value.size() < 8)
    return error{errc::corruption, "cursor of '" + std::string(consumer) + "' is truncated"};
  return cursor_view{bytes::get_le<std::uint64_t>(value.data()), value.substr(8)};
}

}  // namespace

result<std::optional<cursor_view>> read_transaction::cursor_state(std::string_view consumer) const {
  auto value = state_->txn.get(state_->store->dbs.cursors, consumer);
  if (!value) return std::move(value).err();
  if (!*value) return std::optional<cursor_view>{};
  auto c = decode_cursor(consumer, **value);
  if (!c) return std::move(c).err();
  return std::optional<cursor_view>{*c};
}

result<std::optional<global_position>> read_transaction::cursor(std::string_view consumer) const {
  auto c = cursor_state(consumer);
  if (!c) return std::move(c).err();
  if (!*c) return std::optional<global_position>{};
  return std::optional<global_position>{(*c)->position};
}

result<std::size_t> read_transaction::scan_cursors(
    function_ref<bool(std::string_view consumer, const cursor_view&)> visit) const {
  auto c = lmdb::cursor::open(state_->txn.get(), state_->store->dbs.cursors);
  if (!c) return std::move(c).err();
  MDB_val k{}, v{};
  std::size_t visited = 0;
  auto found = c->get(k, v, MDB_FIRST);
  while (found && *found) {
    auto cur = decode_cursor(lmdb::to_view(k), lmdb::to_view(v));
    if (!cur) return std::move(cur).err();
    ++visited;
    if (!visit(lmdb::to_view(k), *cur)) return visited;
    found = c->get(k, v, MDB_NEXT);
  }
  if (!found) return std::move(found).err();
  return visited;
}

result<std::size_t> read_transaction::scan_streams(
    function_ref<bool(std::string_view name, const stream_info&)> visit) const {
  auto c = lmdb::cursor::open(state_->txn.get(), state_->store->dbs.stream_names);
  if (!c) return std::move(c).err();
  MDB_val k{}, v{};
  std::size_t visited = 0;
  auto found = c->get(k, v, MDB_FIRST);
  while (found && *found) {
    const std::string_view name = lmdb::to_view(k);
    auto info = state_->head_of(name, lmdb::to_view(v));
    if (!info) return std::move(info).err();
    ++visited;
    if (!visit(name, *info)) return visited;
    found = c->get(k, v, MDB_NEXT);
  }
  if (!found) return std::move(found).err();
  return visited;
}

result<std::optional<snapshot_view>> read_transaction::snapshot(
    std::string_view stream_name) const {
  auto info = stream(stream_name);
  if (!info) return std::move(info).err();
  if (!*info) return std::optional<snapshot_view>{};
  bytes::u64_key key((*info)->id);
  auto value = state_->txn.get(state_->store->dbs.snapshots, key.view());
  if (!value) return std::move(value).err();
  if (!*value) return std::optional<snapshot_view>{};
  std::string_view v = **value;
  if (v.size() < detail::snapshot_header_size)
    return error{errc::corruption,
                 "snapshot of stream '" + std::string(stream_name) + "' is truncated"};
  return std::optional<snapshot_view>{snapshot_view{bytes::get_le<std::uint64_t>(v.data()),
                                                    bytes::get_le<std::uint32_t>(v.data() + 8),
                                                    v.substr(detail::snapshot_header_size)}};
}

namespace {

/// LMDB's answers for a table this transaction cannot see: the view did not
/// exist when the transaction began.
bool view_not_visible(int rc) {
  return rc == EINVAL || rc == MDB_BAD_DBI || rc == MDB_NOTFOUND;
}

}  // namespace

result<std::optional<std::string_view>> read_transaction::view_get(std::string_view view,
                                                                   std::string_view key) const {
  auto dbi = state_->store->view_for_read(view);
  if (!dbi) return std::optional<std::string_view>{};
  MDB_val k = lmdb::to_val(key), v{};
  int rc = mdb_get(state_->txn.get(), *dbi, &k, &v);
  if (rc == 0) return std::optional<std::string_view>{lmdb::to_view(v)};
  if (view_not_visible(rc)) return std::optional<std::string_view>{};
  return lmdb::to_error(rc, "reading view " + std::string(view));
}

result<std::size_t> read_transaction::scan_view(
    std::string_view view, std::string_view from_key,
    function_ref<bool(std::string_view key, std::string_view value)> visit) const {
  auto dbi = state_->store->view_for_read(view);
  if (!dbi) return std::size_t{0};
  MDB_cursor* raw = nullptr;
  int rc = mdb_cursor_open(state_->txn.get(), *dbi, &raw);
  if (rc != 0) {
    if (view_not_visible(rc)) return std::size_t{0};
    return lmdb::to_error(rc, "reading view " + std::string(view));
  }
  std::unique_ptr<MDB_cursor, void (*)(MDB_cursor*)> cur(raw, mdb_cursor_close);
  MDB_val k = lmdb::to_val(from_key), v{};
  rc = from_key.empty() ? mdb_cursor_get(raw, &k, &v, MDB_FIRST)
                        : mdb_cursor_get(raw, &k, &v, MDB_SET_RANGE);
  std::size_t visited = 0;
  while (rc == 0) {
    ++visited;
    if (!visit(lmdb::to_view(k), lmdb::to_view(v))) return visited;
    rc = mdb_cursor_get(raw, &k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND && !view_not_visible(rc))
    return lmdb::to_error(rc, "reading view " + std::string(view));
  return visited;
}

}  // namespace varve
