// The files of a store as the operating system sees them (private to
// varve::storage): who may open the store, and whether its data file is
// whole before LMDB maps it.
//
// A store directory is claimed by every handle that opens it:
//   - in this process, by the directory's device and inode: LMDB allows one
//     environment per file per process (a second one would release the
//     first one's locks when it closes), so a second open is refused;
//   - across processes, by a shared flock(2) on the directory, held as long
//     as the handle lives. compact() takes it exclusively: it never runs
//     while a handle is open, and no handle opens while it runs.
#pragma once

#include <lmdb.h>
#include <sys/types.h>

#include <filesystem>
#include <optional>

#include "varve/storage/error.hpp"

namespace varve::detail {

class store_claim {
 public:
  /// Claims `directory` for a handle: shared across processes, exclusive
  /// in this process. Waits up to 10 s while a compaction holds the store.
  /// Errors: busy (already open in this process, or being compacted),
  /// io_error.
  static result<store_claim> shared(const std::filesystem::path& directory) {
    return take(directory, false);
  }
  /// Claims `directory` for compaction: no handle may hold it, in any
  /// process. Errors: busy, io_error.
  static result<store_claim> exclusive(const std::filesystem::path& directory) {
    return take(directory, true);
  }

  store_claim(store_claim&& other) noexcept;
  store_claim& operator=(store_claim&&) = delete;
  ~store_claim();

 private:
  static result<store_claim> take(const std::filesystem::path& directory, bool exclusive);
  store_claim(int fd, dev_t dev, ino_t ino) : fd_(fd), dev_(dev), ino_(ino) {}
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

/// The process holding LMDB's lock on the store in `directory` (it has the
/// environment open, or is opening it), if any: asked with fcntl(F_GETLK),
/// which takes nothing. Call it only while this process has no environment
/// on the store (closing the descriptor it uses drops this process's locks
/// on lock.mdb). Errors: io_error.
/// With `exclusive_only`, only a process holding that byte exclusively
/// counts: LMDB holds it so while it opens, and so while it creates the
/// store (a process that has the store open holds it shared).
result<std::optional<pid_t>> lmdb_user(const std::filesystem::path& directory,
                                       bool exclusive_only = false);

/// fsync(2)s the file or directory at `path`, opened with `flags`
/// (O_RDONLY, or O_RDONLY | O_DIRECTORY). Errors: io_error.
result<void> sync_path(const std::filesystem::path& path, int flags);

/// What the store's data file is before LMDB maps it.
enum class data_file_state {
  absent,       ///< no data.mdb: opening creates the store
  interrupted,  ///< empty, with the creation marker: a creation was cut short
  present,      ///< holds data, or another process is creating it right now
};

/// Looks at data.mdb in `directory`. An empty data file is refused unless
/// the creation marker (data.mdb.creating, which mark_creation() makes
/// before LMDB makes data.mdb) says a creation was cut short before it
/// wrote anything, or another process holds LMDB's lock (it is creating the
/// store right now; mdb_env_open waits for it): otherwise LMDB would
/// silently make it a new, empty store, and everything the store held would
/// be gone from view. Errors: corruption, io_error.
result<data_file_state> look_at_data_file(const std::filesystem::path& directory);

/// Makes the creation marker in `directory` and syncs the directory, before
/// LMDB creates data.mdb: a process killed between LMDB making the file and
/// writing its first pages leaves an empty data.mdb that the next open
/// recognises as a creation cut short (nothing in it was ever acknowledged).
/// Errors: io_error.
result<void> mark_creation(const std::filesystem::path& directory);

/// Removes the creation marker, if any, once the store's tables are
/// committed: from then on an empty data.mdb is damage again. Errors:
/// io_error.
result<void> end_creation(const std::filesystem::path& directory);

/// Checks, right after mdb_env_open, that data.mdb holds every page in use:
/// pages past the end of a truncated file would be mapped, and the first
/// read of one would kill the process (SIGBUS). Costs one fstat when the
/// file holds every page its meta page counts, and a walk of the pages
/// (page_check.hpp) when it is shorter, which LMDB also leaves when its last
/// pages were freed unwritten. Errors: corruption, busy, io_error.
result<void> check_data_file_size(MDB_env* env, const std::filesystem::path& directory);

}  // namespace varve::detail
