#include "lmdb.hpp"

#include <cerrno>
#include <string>

namespace varve::lmdb {

error to_error(int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_MAP_FULL:
    case ENOSPC:
    case EDQUOT:
      return {errc::storage_full, std::move(msg)};
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_BAD_DBI:
    case MDB_INCOMPATIBLE:
      return {errc::corruption, std::move(msg)};
    case MDB_READERS_FULL:
    case MDB_MAP_RESIZED:
    case EAGAIN:
    case EBUSY:
      return {errc::busy, std::move(msg)};
    case EACCES:
    case EROFS:
    case ENOENT:
    case ENOTDIR:
    case EISDIR:
      return {errc::invalid_argument, std::move(msg)};
    default:
      return {errc::io_error, std::move(msg)};
  }
}

result<txn> txn::begin(MDB_env* e, unsigned flags) {
  MDB_txn* t = nullptr;
  int rc = mdb_txn_begin(e, nullptr, flags, &t);
  if (rc != 0) return to_error(rc, "mdb_txn_begin");
  return txn(t);
}

result<std::optional<std::string_view>> txn::get(MDB_dbi dbi, std::string_view key) const {
  MDB_val k = to_val(key), v{};
  int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>{};
  if (rc != 0) return to_error(rc, "mdb_get");
  return std::optional<std::string_view>{to_view(v)};
}

result<cursor> cursor::open(MDB_txn* t, MDB_dbi dbi) {
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(t, dbi, &c);
  if (rc != 0) return to_error(rc, "mdb_cursor_open");
  return cursor(c);
}

}  // namespace varve::lmdb
