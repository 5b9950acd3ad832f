// A write transaction as the writer holds it (private to varve::storage).
//
// Every LMDB call of the write path goes through write_txn (or, outside a
// transaction, through call_lmdb), which first asks the store's
// fault_injector (varve/storage/testing.hpp) whether the call fails. The
// first call that fails with anything but "not found" marks the transaction
// broken: LMDB will not commit it, so the writer aborts it (and grows the
// map first when the failure was MDB_MAP_FULL). One error channel: a
// broken transaction's failure is `failure()`.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "lmdb.hpp"
#include "varve/storage/error.hpp"
#include "varve/storage/testing.hpp"

namespace varve::detail {

/// Where a call is made: as a default argument, where::current() names the
/// caller's line (std::source_location, which Clang 14 lacks, works so).
struct where {
  const char* file;
  unsigned line;
  static constexpr where current(const char* file = __builtin_FILE(),
                                 unsigned line = __builtin_LINE()) noexcept {
    return where{file, line};
  }
};

/// The code an injected fault gives for `call` made at `at`, or 0 when the
/// call may run.
inline int injected(fault_injector* faults, lmdb_call call, const where& at) {
  if (!faults) return 0;
  return faults->before(call, lmdb_call_site{at.file, at.line});
}

/// A cursor of a write transaction (write_txn::cursor_open), closed when
/// it goes out of scope; the transaction must outlive it.
class scoped_cursor {
 public:
  scoped_cursor() = default;
  scoped_cursor(const scoped_cursor&) = delete;
  scoped_cursor& operator=(const scoped_cursor&) = delete;
  ~scoped_cursor() {
    if (cursor_) mdb_cursor_close(cursor_);
  }
  MDB_cursor* get() const { return cursor_; }

 private:
  friend class write_txn;
  MDB_cursor* cursor_ = nullptr;
};

class write_txn {
 public:
  /// Begins a write transaction on `env`. Returns 0, or the code of the
  /// failure (MDB_MAP_RESIZED: another process grew the map).
  static int begin(MDB_env* env, fault_injector* faults, std::mutex& views_mutex,
                   std::optional<write_txn>& out, const where& at = where::current());

  write_txn(write_txn&&) noexcept = default;
  write_txn& operator=(write_txn&&) = delete;
  ~write_txn() = default;  // aborts unless committed

  MDB_txn* raw() const { return txn_.get(); }
  std::uint64_t id() const { return id_; }

  /// 0 with the value (valid for the transaction), MDB_NOTFOUND, or the code
  /// of a failure, which breaks the transaction. The same for the others.
  int get(MDB_dbi dbi, MDB_val& key, MDB_val& value, const where& at = where::current());
  int put(MDB_dbi dbi, MDB_val& key, MDB_val& value, unsigned flags,
          const where& at = where::current());
  /// MDB_NOTFOUND (nothing to delete) does not break the transaction.
  int del(MDB_dbi dbi, MDB_val& key, const where& at = where::current());
  int drop(MDB_dbi dbi, int del, const where& at = where::current());
  int dbi_open(const char* name, unsigned flags, MDB_dbi& dbi, const where& at = where::current());
  int cursor_open(MDB_dbi dbi, MDB_cursor*& cursor, const where& at = where::current());
  /// cursor_open into `cursor` (which holds none yet), closed with it.
  int cursor_open(MDB_dbi dbi, scoped_cursor& cursor, const where& at = where::current()) {
    return cursor_open(dbi, cursor.cursor_, at);
  }
  /// MDB_NOTFOUND (no such entry, or the end) does not break the transaction.
  int cursor_get(MDB_cursor* cursor, MDB_val& key, MDB_val& value, MDB_cursor_op op,
                 const where& at = where::current());
  int cursor_put(MDB_cursor* cursor, MDB_val& key, MDB_val& value, unsigned flags,
                 const where& at = where::current());
  /// mdb_cursor_del (a fault at lmdb_call::del).
  int cursor_del(MDB_cursor* cursor, const where& at = where::current());

  /// Convenience forms over string_view keys and values.
  int get(MDB_dbi dbi, std::string_view key, MDB_val& value, const where& at = where::current()) {
    MDB_val k = lmdb::to_val(key);
    return get(dbi, k, value, at);
  }
  int put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0,
          const where& at = where::current()) {
    MDB_val k = lmdb::to_val(key), v = lmdb::to_val(value);
    return put(dbi, k, v, flags, at);
  }

  /// Holds the lock on the store's table handles until the transaction
  /// ends: mdb_dbi_open must not run in two transactions at once.
  void lock_views() {
    if (!views_lock_.owns_lock()) views_lock_.lock();
  }

  /// The code of the first failed call (0: none); then the transaction
  /// must be aborted.
  int broken() const { return broken_; }
  /// That failure, naming the call.
  error failure() const;

  /// Commits (through the seam); the transaction ends whatever the outcome.
  int commit(const where& at = where::current());
  void abort() { txn_.abort(); }

 private:
  write_txn(lmdb::txn t, fault_injector* faults, std::mutex& views_mutex);
  int note(int rc, lmdb_call call);

  std::unique_lock<std::mutex> views_lock_;  // first: released after the transaction ends
  lmdb::txn txn_;
  fault_injector* faults_;
  std::uint64_t id_ = 0;
  int broken_ = 0;
  lmdb_call broken_call_ = lmdb_call::get;
};

}  // namespace varve::detail
