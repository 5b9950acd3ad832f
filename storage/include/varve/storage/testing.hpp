// Fault injection for tests of Varve's failure handling. Not for production.
//
// Every LMDB call of a store's write path (beginning, committing, reading
// and writing inside a write transaction, opening tables, resizing the map)
// passes through one seam, in the spirit of LevelDB's fault-injecting Env: a
// test installs a fault_injector and decides, call by call, which one fails
// and with what code. A failed call is not made; Varve sees the code as if
// LMDB had returned it.
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string_view>

#include "varve/storage/event_store.hpp"

namespace varve {

/// The kinds of LMDB call on the write path.
enum class lmdb_call : std::uint8_t {
  txn_begin,    ///< mdb_txn_begin of a write transaction
  txn_commit,   ///< mdb_txn_commit (a failed commit aborts: nothing reaches the disk)
  get,          ///< mdb_get
  put,          ///< mdb_put
  del,          ///< mdb_del
  drop,         ///< mdb_drop
  cursor_open,  ///< mdb_cursor_open
  cursor_get,   ///< mdb_cursor_get
  cursor_put,   ///< mdb_cursor_put
  dbi_open,     ///< mdb_dbi_open
  set_mapsize,  ///< mdb_env_set_mapsize (growing the map, or adopting another process's size)
};

/// "txn_begin", "put", ...
std::string_view to_string(lmdb_call call) noexcept;

/// LMDB's "map full" code (MDB_MAP_FULL), for faults that make the writer
/// grow the map.
inline constexpr int lmdb_map_full = -30792;

/// Where in Varve's sources a call of the write path is made.
struct lmdb_call_site {
  std::string_view file;
  std::uint32_t line = 0;
};

/// Decides, before each LMDB call of a store's write path, whether it fails.
/// Called with the store's write lock held, from the writing thread.
class fault_injector {
 public:
  virtual ~fault_injector() = default;
  /// 0 to let the call run; otherwise the code it fails with instead: an
  /// errno value (EIO, ENOSPC, ...) or lmdb_map_full.
  virtual int before(lmdb_call call) = 0;
  /// The same, told where the call is made (the seam calls this one; by
  /// default it ignores the site).
  virtual int before(lmdb_call call, const lmdb_call_site& site) {
    (void)site;
    return before(call);
  }
};

/// Installs `faults` on the write path of `store`; nullptr removes it. Call
/// it while no write runs on the store.
void testing_inject_faults(event_store& store, std::shared_ptr<fault_injector> faults);

/// Makes the next commit of `store` fail as if its pages or its fsync had
/// failed with the operating-system error `os_error` (the transaction is
/// aborted, nothing of it reaches the disk). An I/O error puts the store in
/// its failed state; ENOSPC reports storage_full and leaves it usable.
/// (A fault_injector that fails the next txn_commit once.)
void testing_fail_next_commit(event_store& store, int os_error = EIO);

}  // namespace varve
