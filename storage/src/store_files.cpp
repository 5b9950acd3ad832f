#include "store_files.hpp"

#include "page_check.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

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

result<std::optional<pid_t>> lmdb_user(const fs::path& directory, bool exclusive_only) {
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
  if (query.l_type == F_UNLCK || (exclusive_only && query.l_type != F_WRLCK))
    return std::optional<pid_t>{};
  return std::optional<pid_t>{query.l_pid};
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

fs::path creation_marker(const fs::path& directory) {
  return directory / "data.mdb.creating";
}

}  // namespace

result<data_file_state> look_at_data_file(const fs::path& directory) {
  struct stat st {};
  const fs::path data = directory / "data.mdb";
  if (::stat(data.c_str(), &st) != 0) {
    if (errno == ENOENT) return data_file_state::absent;
    return os_error(errno, "reading " + data.string());
  }
  if (!S_ISREG(st.st_mode) || st.st_size != 0) return data_file_state::present;
  // Empty while another process holds LMDB's lock exclusively: it is
  // creating the store right now (LMDB makes the file, then writes its
  // first pages while it holds the lock so); mdb_env_open waits for it. A
  // process that merely has the store open holds it shared: an empty file
  // under it is damage.
  auto user = lmdb_user(directory, true);
  if (!user) return std::move(user).err();
  if (*user) return data_file_state::present;
  struct stat marker {};
  if (::stat(creation_marker(directory).c_str(), &marker) == 0) return data_file_state::interrupted;
  if (errno != ENOENT) return os_error(errno, "reading " + creation_marker(directory).string());
  return error{errc::corruption,
               data.string() +
                   " is empty: the store's data is missing. It is not turned into a new "
                   "store; restore it from a backup, or remove the directory to start anew"};
}

result<void> mark_creation(const fs::path& directory) {
  const fs::path marker = creation_marker(directory);
  const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return os_error(errno, "creating the creation marker " + marker.string() +
                               " (the store's data is untouched)");
  ::close(fd);
  if (auto synced = sync_path(directory, O_RDONLY | O_DIRECTORY); !synced) return synced;
  // Another process may have created the store since this one looked: the
  // marker must not stand beside a store that holds data (it would excuse
  // that data file emptied later).
  struct stat st {};
  if (::stat((directory / "data.mdb").c_str(), &st) == 0 && st.st_size != 0)
    return end_creation(directory);
  return {};
}

result<void> end_creation(const fs::path& directory) {
  const fs::path marker = creation_marker(directory);
  if (::unlink(marker.c_str()) != 0) {
    if (errno == ENOENT) return {};
    return os_error(errno, "removing the creation marker " + marker.string() +
                               " (the store's data is untouched; remove it by hand)");
  }
  return sync_path(directory, O_RDONLY | O_DIRECTORY);
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
