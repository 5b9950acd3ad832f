#include "store_files.hpp"

#include "page_check.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace varve::detail {

namespace fs = std::filesystem;

namespace {

constexpr auto compaction_wait = std::chrono::seconds(10);

/// The store directories this process has claimed, by device and inode.
/// A child made by fork(2) starts with none: its parent's handles are not
/// its own (it must not use them) and it may open the stores itself.
struct claimed_directories {
  std::mutex mutex;
  pid_t owner = 0;
  std::set<std::pair<dev_t, ino_t>> open;

  std::set<std::pair<dev_t, ino_t>>& of_this_process() {
    if (owner != ::getpid()) {
      owner = ::getpid();
      open.clear();
    }
    return open;
  }
};

claimed_directories& claimed() {
  // Never destroyed: a store held in a static or global is closed after
  // function-local statics are gone, and still unregisters here.
  static auto* c = new claimed_directories;
  return *c;
}

error os_error(int code, const std::string& what) {
  return {errc::io_error, what + ": " + std::strerror(code)};
}

/// Opens the directory and registers it in this process.
result<void> register_directory(const fs::path& directory, int& fd, dev_t& dev, ino_t& ino) {
  fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return os_error(errno, "opening " + directory.string());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int code = errno;
    ::close(fd);
    return os_error(code, "reading " + directory.string());
  }
  dev = st.st_dev;
  ino = st.st_ino;
  std::lock_guard<std::mutex> lock(claimed().mutex);
  if (!claimed().of_this_process().insert({dev, ino}).second) {
    ::close(fd);
    return error{errc::busy, "the store in " + directory.string() +
                                 " is already open in this process: LMDB allows one handle per "
                                 "process; share that event_store (it is thread-safe)"};
  }
  return {};
}

void unregister(dev_t dev, ino_t ino) {
  std::lock_guard<std::mutex> lock(claimed().mutex);
  claimed().of_this_process().erase({dev, ino});
}

}  // namespace

result<store_claim> store_claim::take(const fs::path& directory, bool exclusive) {
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
  if (auto registered = register_directory(directory, fd, dev, ino); !registered)
    return std::move(registered).err();
  store_claim claim(fd, dev, ino);
  // A handle waits for a compaction to end; a compaction does not wait.
  const auto deadline = std::chrono::steady_clock::now() + compaction_wait;
  while (::flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return os_error(errno, "locking " + directory.string());
    if (exclusive)
      return error{errc::busy, "the store in " + directory.string() +
                                   " is open in another process: close it everywhere first"};
    if (std::chrono::steady_clock::now() >= deadline)
      return error{errc::busy, "the store in " + directory.string() +
                                   " is being compacted by another process; try again"};
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return claim;
}

store_claim::store_claim(store_claim&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), dev_(other.dev_), ino_(other.ino_) {}

store_claim::~store_claim() {
  if (fd_ < 0) return;
  ::close(fd_);  // releases the flock
  unregister(dev_, ino_);
}

result<std::optional<pid_t>> lmdb_user(const fs::path& directory) {
  const fs::path lock_file = directory / "lock.mdb";
  const int fd = ::open(lock_file.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::optional<pid_t>{};  // no lock file: nobody has the environment open
  struct flock query {};
  query.l_type = F_WRLCK;
  query.l_whence = SEEK_SET;
  query.l_start = 0;
  query.l_len = 1;  // the byte every LMDB environment holds, shared or (opening) exclusive
  const int rc = ::fcntl(fd, F_GETLK, &query);
  const int code = errno;
  ::close(fd);
  if (rc != 0) return os_error(code, "reading the locks of " + lock_file.string());
  if (query.l_type == F_UNLCK) return std::optional<pid_t>{};
  return std::optional<pid_t>{query.l_pid};
}

bool disk_full(const fs::path& directory) {
  struct statvfs st {};
  if (::statvfs(directory.c_str(), &st) != 0) return false;
  return std::uint64_t{st.f_bavail} * st.f_frsize < (std::uint64_t{1} << 20);
}

void prefault_resident(const void* map, std::uint64_t bytes) {
#ifndef MADV_POPULATE_READ
  constexpr int populate_read = 22;  // Linux 5.14; older headers lack the name
#else
  constexpr int populate_read = MADV_POPULATE_READ;
#endif
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  auto* base = static_cast<char*>(const_cast<void*>(map));
  if (base == nullptr || page == 0 || reinterpret_cast<std::uintptr_t>(base) % page != 0) return;
  // A window at a time: the residency vector stays small for any map.
  constexpr std::uint64_t window_pages = 1u << 16;
  std::vector<unsigned char> resident;
  const std::uint64_t pages = bytes / page;
  for (std::uint64_t first = 0; first < pages; first += window_pages) {
    const std::uint64_t n = std::min(window_pages, pages - first);
    resident.assign(n, 0);
    char* at = base + first * page;
    if (::mincore(at, n * page, resident.data()) != 0) return;
    for (std::uint64_t i = 0; i < n;) {
      if (!(resident[i] & 1)) {
        ++i;
        continue;
      }
      std::uint64_t end = i + 1;
      while (end < n && (resident[end] & 1))
        ++end;
      if (::madvise(at + i * page, (end - i) * page, populate_read) != 0 && errno == EINVAL)
        return;  // a kernel without it
      i = end;
    }
  }
}

result<void> allocate_lock_file(const fs::path& directory, std::uint32_t max_readers) {
  const fs::path lock_file = directory / "lock.mdb";
  const int fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return {};  // LMDB opens it itself, and says why it cannot
  struct stat st {};
  const off_t size = ::fstat(fd, &st) == 0 ? st.st_size : 0;
  auto allocate = [fd](off_t bytes) {
    int rc = 0;
    do {
      rc = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, bytes);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : errno;
  };
  // A slot is a 64-byte cache line, after a header of a few lines.
  int code = allocate(std::max<off_t>((static_cast<off_t>(max_readers) + 64) * 64, size));
  if ((code == ENOSPC || code == EDQUOT) && size > 0) {
    // A process that has the store open sized the file: LMDB takes its
    // slots as they are, however many this open asked for.
    auto user = lmdb_user(directory);
    if (user && *user) code = allocate(size);
  }
  ::close(fd);
  if (code == 0 || code == EOPNOTSUPP || code == ENOSYS) return {};
  if (code == ENOSPC || code == EDQUOT)
    return error{errc::storage_full, "the disk holding " + directory.string() +
                                         " has no room for the reader slots of " +
                                         lock_file.string() + "; free space and retry"};
  return os_error(code, "allocating " + lock_file.string());
}

result<void> sync_path(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return os_error(errno, "opening " + path.string());
  const int rc = ::fsync(fd);
  const int code = errno;
  ::close(fd);
  if (rc != 0) return os_error(code, "syncing " + path.string());
  return {};
}

namespace {

constexpr auto creation_wait = std::chrono::seconds(10);

fs::path creation_marker(const fs::path& directory) {
  return directory / "data.mdb.creating";
}

enum class data_size { absent, empty, holds_data };

result<data_size> size_of_data_file(const fs::path& directory) {
  const fs::path data = directory / "data.mdb";
  struct stat st {};
  if (::stat(data.c_str(), &st) != 0) {
    if (errno == ENOENT) return data_size::absent;
    return os_error(errno, "reading " + data.string());
  }
  // Not a file: LMDB says what it is.
  if (!S_ISREG(st.st_mode) || st.st_size != 0) return data_size::holds_data;
  return data_size::empty;
}

result<bool> marker_exists(const fs::path& directory) {
  struct stat st {};
  if (::lstat(creation_marker(directory).c_str(), &st) == 0) {
    if (S_ISREG(st.st_mode)) return true;
    return error{errc::io_error, "the creation marker " + creation_marker(directory).string() +
                                     " is not a regular file; the store's data is untouched. "
                                     "Remove it (a creation makes it anew)"};
  }
  if (errno == ENOENT) return false;
  return os_error(errno, "reading the creation marker " + creation_marker(directory).string());
}

error empty_data_file(const fs::path& directory) {
  return error{errc::corruption,
               (directory / "data.mdb").string() +
                   " is empty: the store's data is missing. It is not turned into a new "
                   "store; restore it from a backup, or remove the directory to start anew"};
}

error marker_error(int code, const fs::path& directory, const std::string& doing) {
  return os_error(code, doing + " the creation marker " + creation_marker(directory).string() +
                            " (the store's data is untouched)");
}

/// Opens the marker, making it when it is not there; `made` says which.
/// Returns -1 (errno ENOENT) when it vanished between the two tries.
int open_marker(const fs::path& directory, bool& made) {
  const fs::path marker = creation_marker(directory);
  made = true;
  int fd = ::open(marker.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd >= 0 || errno != EEXIST) return fd;
  made = false;
  return ::open(marker.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
}

/// Whether `fd` is still the file at the marker's path: a process that
/// finished a creation removed the file whose lock this one waited for.
result<bool> still_the_marker(int fd, const fs::path& directory) {
  struct stat held {};
  struct stat named {};
  if (::fstat(fd, &held) != 0) return marker_error(errno, directory, "reading");
  if (::lstat(creation_marker(directory).c_str(), &named) != 0) {
    if (errno == ENOENT) return false;
    return marker_error(errno, directory, "reading");
  }
  return held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

/// Under the creation lock, beside a marker a creation left: a data file
/// shorter than LMDB's two meta pages is a creation whose first write was
/// cut short (the disk filled, the power went): LMDB refuses such a file
/// (MDB_INVALID), and nothing in it was ever acknowledged. It is emptied,
/// for LMDB to write the meta pages again. A file that holds both is
/// left as it is: LMDB opens it, and the open makes the tables it lacks.
result<void> drop_unfinished_meta_pages(const fs::path& directory) {
  const fs::path data = directory / "data.mdb";
  const int fd = ::open(data.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ELOOP) return {};  // none, or LMDB says what it is
    return os_error(errno, "opening " + data.string());
  }
  struct stat st {};
  int rc = ::fstat(fd, &st);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (rc == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size < 2 * page) {
    rc = ::ftruncate(fd, 0);
    if (rc == 0) rc = ::fsync(fd);
  }
  const int code = errno;
  ::close(fd);
  if (rc != 0)
    return os_error(code, "emptying " + data.string() + ", whose creation was cut short");
  return {};
}

/// Takes the creation lock on the open marker `fd` without waiting: false
/// (with errno) when another process holds it. An flock, not a POSIX
/// record lock: a record lock is dropped when the process closes any
/// descriptor of the file (a thread of the program reading the marker
/// would let a second creator in), an flock only with the last descriptor
/// of this open. A forked child shares that open: guard_descriptors closes
/// its copy.
bool lock_marker(int fd) {
  return ::flock(fd, LOCK_EX | LOCK_NB) == 0;
}

/// The marker descriptors of the creation guards alive in this process.
/// A child made by fork(2) closes its copies as it starts, so that it does
/// not keep its parent's creation lock until it exits (every other opener
/// of the new store would wait 10 s, then get busy). A guard beyond the
/// slots, or a fork made between a marker's open and its guard, still
/// passes the lock on; so does a fork that runs no pthread_atfork handler.
class guard_descriptors {
 public:
  static void add(int fd) noexcept {
    for (auto& slot : slots_) {
      int free = 0;
      if (slot.compare_exchange_strong(free, fd + 1)) return;
    }
  }
  static void remove(int fd) noexcept {
    for (auto& slot : slots_) {
      int held = fd + 1;
      if (slot.compare_exchange_strong(held, 0)) return;
    }
  }

 private:
  static void close_in_child() noexcept {
    for (auto& slot : slots_) {
      const int held = slot.exchange(0);
      if (held > 0) ::close(held - 1);
    }
  }
  // A descriptor plus one; 0 is a free slot (zero-initialized, so usable
  // by a store opened while the program's statics are set up).
  static inline std::atomic<int> slots_[64] = {};
  friend struct guard_descriptors_in_children;
};

// A namespace-scope object: always initialized (a static data member that
// nothing uses need not be).
struct guard_descriptors_in_children {
  guard_descriptors_in_children() {
    ::pthread_atfork(nullptr, nullptr, &guard_descriptors::close_in_child);
  }
} const closed_in_children;

}  // namespace

creation_guard::creation_guard(int fd, fs::path directory)
    : fd_(fd), directory_(std::move(directory)) {
  guard_descriptors::add(fd_);
}

creation_guard::creation_guard(creation_guard&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), directory_(std::move(other.directory_)) {}

creation_guard::~creation_guard() {
  if (fd_ < 0) return;
  guard_descriptors::remove(fd_);  // before the number can be reused
  ::close(fd_);                    // releases the lock; the marker stays
}

result<void> creation_guard::finish() {
  // The data file first: a store opened without fsync would otherwise be
  // able to lose its first pages in a power cut after the marker went, and
  // be refused as damaged from then on.
  std::error_code ec;
  if (fs::exists(directory_ / "data.mdb", ec))
    if (auto synced = sync_path(directory_ / "data.mdb", O_RDONLY); !synced) return synced;
  // Removed while locked: a process waiting for the lock finds, once it has
  // it, that its file is no longer the marker, and looks again.
  if (::unlink(creation_marker(directory_).c_str()) != 0 && errno != ENOENT)
    return os_error(errno, "removing the creation marker " + creation_marker(directory_).string() +
                               " (the store's data is untouched; remove it by hand)");
  auto synced = sync_path(directory_, O_RDONLY | O_DIRECTORY);
  guard_descriptors::remove(fd_);
  ::close(std::exchange(fd_, -1));
  return synced;
}

result<std::optional<creation_guard>> prepare_data_file(const fs::path& directory) {
  const auto deadline = std::chrono::steady_clock::now() + creation_wait;
  for (;;) {
    auto size = size_of_data_file(directory);
    if (!size) return std::move(size).err();
    auto marked = marker_exists(directory);
    if (!marked) return std::move(marked).err();
    if (*size == data_size::holds_data && !*marked) return std::optional<creation_guard>{};

    bool made = false;
    const int fd = open_marker(directory, made);
    if (fd < 0) {
      if (errno == ENOENT) continue;  // removed by a creator that finished: look again
      if (errno == ELOOP) return marker_error(errno, directory, "refusing to follow");
      return marker_error(errno, directory, made ? "making" : "opening");
    }
    creation_guard guard(fd, directory);
    while (!lock_marker(fd)) {
      if (errno == EINTR) continue;
      if (errno != EWOULDBLOCK) return marker_error(errno, directory, "locking");
      if (std::chrono::steady_clock::now() >= deadline)
        return error{errc::busy, "another process has been creating the store in " +
                                     directory.string() + " for 10 s; try again"};
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    auto current = still_the_marker(fd, directory);
    if (!current) return std::move(current).err();
    if (!*current) continue;  // the creation it waited for finished: look again
    if (made)
      if (auto synced = sync_path(directory, O_RDONLY | O_DIRECTORY); !synced)
        return std::move(synced).err();
    // Looked at again under the lock: no process creates the store now.
    size = size_of_data_file(directory);
    if (!size) return std::move(size).err();
    if (made && *size == data_size::holds_data) {
      // Created by another process since the first look: this marker must
      // not stay beside it, even if this open fails later.
      if (auto finished = guard.finish(); !finished) return std::move(finished).err();
      return std::optional<creation_guard>{};
    }
    if (*size == data_size::absent) {
      // No process creates the store now; one that has LMDB's lock has the
      // environment open on a data file removed from under it. A new one
      // would share its lock file and be overwritten by it.
      auto user = lmdb_user(directory);
      if (!user) return std::move(user).err();
      if (*user) {
        if (made)
          if (auto finished = guard.finish(); !finished) return std::move(finished).err();
        return error{errc::corruption,
                     (directory / "data.mdb").string() + " is missing while process " +
                         std::to_string(**user) +
                         " has the store open: its data file was removed. It is not made a "
                         "new store; stop that process and restore data.mdb from a backup"};
      }
    }
    if (!made)
      if (auto reset = drop_unfinished_meta_pages(directory); !reset) return std::move(reset).err();
    if (*size == data_size::empty && made) {
      // No creation was under way or cut short: the data file was emptied.
      // The marker this process made goes, so as not to excuse it later.
      if (auto finished = guard.finish(); !finished) return std::move(finished).err();
      return empty_data_file(directory);
    }
    // No data file (a new store), an empty one a creation left, or one
    // whose creator was killed before it removed the marker (its tables
    // may not be there yet): the caller opens it under the lock.
    return std::optional<creation_guard>{std::move(guard)};
  }
}

result<void> refuse_unfinished_creation(const fs::path& directory) {
  auto size = size_of_data_file(directory);
  if (!size) return std::move(size).err();
  auto marked = marker_exists(directory);
  if (!marked) return std::move(marked).err();
  if (*size == data_size::absent || *marked)
    return error{errc::not_found, "the store in " + directory.string() +
                                      " was never completely created (its creation was cut "
                                      "short): open it once to create it"};
  if (*size == data_size::empty) return empty_data_file(directory);
  return {};
}

result<void> check_data_file_size(MDB_env* env, const fs::path& directory) {
  MDB_envinfo info{};
  MDB_stat st{};
  if (int rc = mdb_env_info(env, &info); rc != 0)
    return error{errc::io_error, std::string("mdb_env_info: ") + mdb_strerror(rc)};
  if (int rc = mdb_env_stat(env, &st); rc != 0)
    return error{errc::io_error, std::string("mdb_env_stat: ") + mdb_strerror(rc)};
  int fd = -1;
  if (int rc = mdb_env_get_fd(env, &fd); rc != 0)
    return error{errc::io_error, std::string("mdb_env_get_fd: ") + mdb_strerror(rc)};
  struct stat file {};
  if (::fstat(fd, &file) != 0) return os_error(errno, "reading the size of data.mdb");
  const std::uint64_t needed = (std::uint64_t{info.me_last_pgno} + 1) * st.ms_psize;
  if (static_cast<std::uint64_t>(file.st_size) >= needed) return {};
  // Shorter than counted. LMDB leaves that legitimately when the last pages
  // it allocated were freed in the same transaction (it never writes them),
  // so the file is truncated only when a page in use lies past its end:
  // walk the pages of the snapshot a read transaction holds (with pread:
  // nothing past the end is touched through the map).
  const fs::path data = directory / "data.mdb";
  for (int attempt = 0; attempt < 100; ++attempt) {
    MDB_txn* txn = nullptr;
    if (int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn); rc != 0)
      return error{errc::io_error, std::string("mdb_txn_begin: ") + mdb_strerror(rc)};
    auto pages = check_pages(data, mdb_txn_id(txn));
    mdb_txn_abort(txn);
    if (!pages && pages.err().code() == errc::busy) continue;  // a writer moved on: again
    if (!pages) return std::move(pages).err();
    if (pages->faults_total == 0) return {};
    return error{errc::corruption,
                 data.string() + " is " + std::to_string(file.st_size) +
                     " bytes, shorter than the " + std::to_string(info.me_last_pgno + 1) +
                     " pages of " + std::to_string(st.ms_psize) +
                     " bytes its meta page counts, and pages in use "
                     "are missing (" +
                     pages->faults.front() + "): the file was truncated; restore it from a backup"};
  }
  return error{errc::busy,
               "data.mdb is shorter than its meta page counts, and writers kept "
               "moving on while it was checked; open it again"};
}

}  // namespace varve::detail
