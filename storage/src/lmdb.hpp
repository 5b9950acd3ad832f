// Thin RAII handles over LMDB's C API (private to varve::storage).
//
// Move-only; a transaction aborts in its destructor unless committed; "not
// found" is a normal answer (std::optional), every other return code becomes
// a varve::error naming the call that failed.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "varve/storage/error.hpp"

namespace varve::lmdb {

/// Maps an LMDB or errno code to Varve's vocabulary; `what` names the call.
error to_error(int rc, std::string_view what);

inline MDB_val to_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view to_view(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

class env {
 public:
  env() = default;
  explicit env(MDB_env* e) : env_(e) {}
  env(env&& o) noexcept : env_(std::exchange(o.env_, nullptr)) {}
  env& operator=(env&& o) noexcept {
    std::swap(env_, o.env_);
    return *this;
  }
  ~env() {
    if (env_) mdb_env_close(env_);
  }
  MDB_env* get() const { return env_; }

 private:
  MDB_env* env_ = nullptr;
};

class txn {
 public:
  txn() = default;
  explicit txn(MDB_txn* t) : txn_(t) {}
  txn(txn&& o) noexcept : txn_(std::exchange(o.txn_, nullptr)) {}
  txn& operator=(txn&& o) noexcept {
    std::swap(txn_, o.txn_);
    return *this;
  }
  ~txn() { abort(); }

  /// Begins a transaction; `flags` is 0 or MDB_RDONLY.
  static result<txn> begin(MDB_env* e, unsigned flags);

  MDB_txn* get() const { return txn_; }
  explicit operator bool() const { return txn_ != nullptr; }

  void abort() {
    if (txn_) mdb_txn_abort(std::exchange(txn_, nullptr));
  }
  /// Commits; the handle is released whatever the outcome.
  int commit() { return mdb_txn_commit(std::exchange(txn_, nullptr)); }

  /// Value under `key`, a view into the map valid for this transaction.
  /// std::nullopt when absent; an error for anything but MDB_NOTFOUND.
  result<std::optional<std::string_view>> get(MDB_dbi dbi, std::string_view key) const;

  int put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0) {
    MDB_val k = to_val(key), v = to_val(value);
    return mdb_put(txn_, dbi, &k, &v, flags);
  }

 private:
  MDB_txn* txn_ = nullptr;
};

class cursor {
 public:
  cursor() = default;
  cursor(cursor&& o) noexcept : cur_(std::exchange(o.cur_, nullptr)) {}
  cursor& operator=(cursor&& o) noexcept {
    std::swap(cur_, o.cur_);
    return *this;
  }
  ~cursor() {
    if (cur_) mdb_cursor_close(cur_);
  }

  static result<cursor> open(MDB_txn* t, MDB_dbi dbi);

  /// Positions the cursor; true and the entry when there is one, false at
  /// the end (MDB_NOTFOUND), an error otherwise.
  result<bool> get(MDB_val& key, MDB_val& value, MDB_cursor_op op) {
    int rc = mdb_cursor_get(cur_, &key, &value, op);
    if (rc == 0) return true;
    if (rc == MDB_NOTFOUND) return false;
    return to_error(rc, "mdb_cursor_get");
  }

  MDB_cursor* get() const { return cur_; }

 private:
  explicit cursor(MDB_cursor* c) : cur_(c) {}
  MDB_cursor* cur_ = nullptr;
};

}  // namespace varve::lmdb
