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
result<std::optional<pid_t>> lmdb_user(const std::filesystem::path& directory);

/// Whether the filesystem of `directory` has (almost) no space left: under
/// 1 MiB free. LMDB reports a write cut short by a full disk as EIO; with
/// this, such a failure is storage_full, not an I/O fault.
bool disk_full(const std::filesystem::path& directory);

/// Maps into this process's page tables the pages of `bytes` from `map`
/// (a file's shared map) that are already in the page cache: mincore(2)
/// finds them, madvise(MADV_POPULATE_READ) maps each run of them in one
/// call. The first read of such a page then takes no page fault (a fault
/// costs 1 to 10 us on a virtual machine; populating, about 0.05 us a
/// page). Reads nothing from disk, and does nothing where the kernel
/// (before Linux 5.14) lacks MADV_POPULATE_READ. Best effort: no errors.
void prefault_resident(const void* map, std::uint64_t bytes);

/// Allocates the disk blocks of LMDB's lock file in `directory` for
/// `max_readers` reader slots, creating the file when absent (as LMDB
/// would, mode 0600), without changing its size: LMDB sizes it with
/// ftruncate and writes a reader's slot through a shared map, so on a full
/// disk the first process to take a slot in a hole would die of SIGBUS.
/// A file system that cannot preallocate is left to LMDB. Errors:
/// storage_full (the disk cannot hold the slots), io_error.
result<void> allocate_lock_file(const std::filesystem::path& directory, std::uint32_t max_readers);

/// fsync(2)s the file or directory at `path`, opened with `flags`
/// (O_RDONLY, or O_RDONLY | O_DIRECTORY). Errors: io_error.
result<void> sync_path(const std::filesystem::path& path, int flags);

/// The right to create the store in a directory, held by one process at a
/// time: an exclusive flock(2) on the creation marker, data.mdb.creating.
/// A child forked while a guard is held closes its copy of the marker's
/// descriptor at once (a pthread_atfork handler), so the lock stays its
/// parent's alone.
/// The marker is made, and the directory synced, before LMDB makes
/// data.mdb, and removed (finish()) only once the store's tables are
/// committed. So:
///   - an empty data.mdb beside the marker, or one shorter than LMDB's two
///     meta pages (the first write cut short by a full disk), is a creation
///     cut short (nothing in it was ever acknowledged), or one under way,
///     which the lock waits for;
///   - an empty data.mdb without the marker is damage: LMDB would silently
///     make it a new, empty store, and the store's data would be gone from
///     view;
///   - only one process at a time runs mdb_env_open on a data file that
///     is absent or empty: LMDB writes the first pages of any process that
///     finds the file empty, and two doing so (two waiters released by a
///     creator killed in mdb_env_open) overwrite each other's commits.
/// Destroying a guard that did not finish releases the lock and leaves the
/// marker: the next open takes the creation as cut short.
class creation_guard {
 public:
  creation_guard(creation_guard&& other) noexcept;
  creation_guard& operator=(creation_guard&&) = delete;
  ~creation_guard();

  /// Removes the marker and syncs the directory; the lock goes with the
  /// guard. Call it once the store's tables are committed. Errors: io_error
  /// (the marker stays, and only excuses an empty data file: remove it by
  /// hand).
  result<void> finish();

 private:
  friend result<std::optional<creation_guard>> prepare_data_file(
      const std::filesystem::path& directory);
  creation_guard(int fd, std::filesystem::path directory);
  int fd_ = -1;
  std::filesystem::path directory_;
};

/// Looks at data.mdb in `directory` before LMDB maps it, holding the
/// store's claim. A data file that holds data, with no marker, needs
/// nothing: returns no guard. Otherwise (no data file, an empty one, or the
/// marker left by a creation) takes the creation lock, waiting up to 10 s
/// for a process creating the store, looks again, and returns the guard
/// under which the caller opens (and so creates, or completes) the store.
/// Errors: corruption (an empty data.mdb with no creation marker), busy
/// (another process kept the lock 10 s), io_error (the marker cannot be
/// made, locked or read: it is a directory, a symbolic link, ...). The
/// store's data is untouched on every error.
result<std::optional<creation_guard>> prepare_data_file(const std::filesystem::path& directory);

/// Refuses a store whose creation never finished, for operations that need
/// a whole store and must not create one (compaction), holding the store's
/// claim exclusively. Errors: not_found (no data.mdb, or the creation
/// marker is there), corruption (an empty data.mdb with no marker),
/// io_error.
result<void> refuse_unfinished_creation(const std::filesystem::path& directory);

/// Checks, right after mdb_env_open, that data.mdb holds every page in use:
/// pages past the end of a truncated file would be mapped, and the first
/// read of one would kill the process (SIGBUS). Costs one fstat when the
/// file holds every page its meta page counts, and a walk of the pages
/// (page_check.hpp) when it is shorter, which LMDB also leaves when its last
/// pages were freed unwritten. Errors: corruption, busy, io_error.
result<void> check_data_file_size(MDB_env* env, const std::filesystem::path& directory);

}  // namespace varve::detail
