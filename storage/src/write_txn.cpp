#include "write_txn.hpp"

#include <optional>

namespace varve {

std::string_view to_string(lmdb_call call) noexcept {
  switch (call) {
    case lmdb_call::txn_begin:
      return "txn_begin";
    case lmdb_call::txn_commit:
      return "txn_commit";
    case lmdb_call::get:
      return "get";
    case lmdb_call::put:
      return "put";
    case lmdb_call::del:
      return "del";
    case lmdb_call::drop:
      return "drop";
    case lmdb_call::cursor_open:
      return "cursor_open";
    case lmdb_call::cursor_get:
      return "cursor_get";
    case lmdb_call::cursor_put:
      return "cursor_put";
    case lmdb_call::dbi_open:
      return "dbi_open";
    case lmdb_call::set_mapsize:
      return "set_mapsize";
  }
  return "unknown";
}

namespace detail {

int write_txn::begin(MDB_env* env, fault_injector* faults, std::mutex& views_mutex,
                     std::optional<write_txn>& out, const where& at) {
  if (int rc = injected(faults, lmdb_call::txn_begin, at); rc != 0) return rc;
  MDB_txn* raw = nullptr;
  if (int rc = mdb_txn_begin(env, nullptr, 0, &raw); rc != 0) return rc;
  out.emplace(write_txn(lmdb::txn(raw), faults, views_mutex));
  return 0;
}

write_txn::write_txn(lmdb::txn t, fault_injector* faults, std::mutex& views_mutex)
    : views_lock_(views_mutex, std::defer_lock),
      txn_(std::move(t)),
      faults_(faults),
      id_(mdb_txn_id(txn_.get())) {}

int write_txn::note(int rc, lmdb_call call) {
  if (rc != 0 && broken_ == 0) {
    broken_ = rc;
    broken_call_ = call;
  }
  return rc;
}

error write_txn::failure() const {
  return lmdb::to_error(broken_, "mdb_" + std::string(to_string(broken_call_)));
}

int write_txn::get(MDB_dbi dbi, MDB_val& key, MDB_val& value, const where& at) {
  int rc = injected(faults_, lmdb_call::get, at);
  if (rc == 0) rc = mdb_get(txn_.get(), dbi, &key, &value);
  return rc == MDB_NOTFOUND ? rc : note(rc, lmdb_call::get);
}

int write_txn::put(MDB_dbi dbi, MDB_val& key, MDB_val& value, unsigned flags, const where& at) {
  int rc = injected(faults_, lmdb_call::put, at);
  if (rc == 0) rc = mdb_put(txn_.get(), dbi, &key, &value, flags);
  return note(rc, lmdb_call::put);
}

int write_txn::del(MDB_dbi dbi, MDB_val& key, const where& at) {
  int rc = injected(faults_, lmdb_call::del, at);
  if (rc == 0) rc = mdb_del(txn_.get(), dbi, &key, nullptr);
  return rc == MDB_NOTFOUND ? rc : note(rc, lmdb_call::del);
}

int write_txn::drop(MDB_dbi dbi, int del, const where& at) {
  int rc = injected(faults_, lmdb_call::drop, at);
  if (rc == 0) rc = mdb_drop(txn_.get(), dbi, del);
  return note(rc, lmdb_call::drop);
}

int write_txn::dbi_open(const char* name, unsigned flags, MDB_dbi& dbi, const where& at) {
  int rc = injected(faults_, lmdb_call::dbi_open, at);
  if (rc == 0) rc = mdb_dbi_open(txn_.get(), name, flags, &dbi);
  return note(rc, lmdb_call::dbi_open);
}

int write_txn::cursor_open(MDB_dbi dbi, MDB_cursor*& cursor, const where& at) {
  int rc = injected(faults_, lmdb_call::cursor_open, at);
  if (rc == 0) rc = mdb_cursor_open(txn_.get(), dbi, &cursor);
  return note(rc, lmdb_call::cursor_open);
}

int write_txn::cursor_get(MDB_cursor* cursor, MDB_val& key, MDB_val& value, MDB_cursor_op op,
                          const where& at) {
  int rc = injected(faults_, lmdb_call::cursor_get, at);
  if (rc == 0) rc = mdb_cursor_get(cursor, &key, &value, op);
  return rc == MDB_NOTFOUND ? rc : note(rc, lmdb_call::cursor_get);
}

int write_txn::cursor_put(MDB_cursor* cursor, MDB_val& key, MDB_val& value, unsigned flags,
                          const where& at) {
  int rc = injected(faults_, lmdb_call::cursor_put, at);
  if (rc == 0) rc = mdb_cursor_put(cursor, &key, &value, flags);
  return note(rc, lmdb_call::cursor_put);
}

int write_txn::cursor_del(MDB_cursor* cursor, const where& at) {
  int rc = injected(faults_, lmdb_call::del, at);
  if (rc == 0) rc = mdb_cursor_del(cursor, 0);
  return note(rc, lmdb_call::del);
}

int write_txn::commit(const where& at) {
  if (int rc = injected(faults_, lmdb_call::txn_commit, at); rc != 0) {
    txn_.abort();  // a failed commit: nothing of the transaction reaches the disk
    return rc;
  }
  return txn_.commit();
}

}  // namespace detail
}  // namespace varve
