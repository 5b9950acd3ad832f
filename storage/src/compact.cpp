// event_store::compact: rewrites a closed store into a fresh data file and
// swaps it in place of data.mdb.
//
// LMDB copies pages on write, and a page that loses an entry keeps the old
// bytes in its unused middle: shredded payloads, deleted snapshots and
// erased view rows stay in data.mdb (in free pages, and in the slack of
// pages still in use) until LMDB happens to overwrite them. Even
// mdb_env_copy's compacting mode copies pages whole, slack included. So
// compaction copies entries, not pages: every table is rebuilt in a new
// environment with MDB_APPEND, into pages that were zeroed when LMDB made
// them. The new file replaces the old one with rename(2), after an fsync:
// until then the old file is the store, so a crash loses nothing.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "lmdb.hpp"
#include "page_check.hpp"
#include "store_files.hpp"
#include "varve/storage/event_store.hpp"

namespace varve {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t entries_per_commit = 50000;

error os_error(int code, const std::string& what) {
  return {errc::io_error, what + ": " + std::strerror(code)};
}

/// Refuses when any process holds LMDB's lock on the store, whether or not
/// it took Varve's: mdb_stat, an older build, another tool.
result<void> refuse_other_lmdb_users(const fs::path& directory) {
  auto user = detail::lmdb_user(directory);
  if (!user) return std::move(user).err();
  if (*user)
    return error{errc::busy, "process " + std::to_string(**user) + " has the store in " +
                                 directory.string() + " open: close it first"};
  return {};
}

/// An environment on a file of its own (the compacted copy).
result<lmdb::env> open_env(const fs::path& path, unsigned flags, unsigned max_tables,
                           std::uint64_t map_size) {
  MDB_env* raw = nullptr;
  if (int rc = mdb_env_create(&raw); rc != 0) return lmdb::to_error(rc, "mdb_env_create");
  lmdb::env env(raw);
  if (int rc = mdb_env_set_maxdbs(raw, max_tables); rc != 0)
    return lmdb::to_error(rc, "mdb_env_set_maxdbs");
  if (map_size != 0) {
    if (int rc = mdb_env_set_mapsize(raw, map_size); rc != 0)
      return lmdb::to_error(rc, "mdb_env_set_mapsize");
  }
  if (int rc = mdb_env_open(raw, path.c_str(), flags, 0600); rc != 0)
    return lmdb::to_error(rc, "opening " + path.string());
  return env;
}

/// Copies one table, entry by entry, in key order.
result<std::uint64_t> copy_table(MDB_txn* from, const char* name, MDB_env* to_env) {
  MDB_dbi src = 0;
  if (int rc = mdb_dbi_open(from, name, 0, &src); rc != 0)
    return lmdb::to_error(rc, std::string("opening table ") + (name ? name : "(main)"));
  unsigned flags = 0;
  if (int rc = mdb_dbi_flags(from, src, &flags); rc != 0)
    return lmdb::to_error(rc, "reading table flags");
  if (flags & MDB_DUPSORT)
    return error{errc::corruption, std::string("table ") + name +
                                       " has sorted duplicates, which a Varve store never has"};
  auto cursor = lmdb::cursor::open(from, src);
  if (!cursor) return std::move(cursor).err();
  std::uint64_t copied = 0;
  MDB_val k{}, v{};
  auto found = cursor->get(k, v, MDB_FIRST);
  for (;;) {
    auto txn = lmdb::txn::begin(to_env, 0);
    if (!txn) return std::move(txn).err();
    MDB_dbi dst = 0;
    if (int rc = mdb_dbi_open(txn->get(), name, flags | MDB_CREATE, &dst); rc != 0)
      return lmdb::to_error(rc, std::string("creating table ") + name);
    std::size_t in_txn = 0;
    while (found && *found && in_txn < entries_per_commit) {
      if (int rc = mdb_put(txn->get(), dst, &k, &v, MDB_APPEND); rc != 0) {
        if (rc == MDB_KEYEXIST)  // keys out of order: the source's tree is damaged
          return error{errc::corruption, std::string("table ") + name +
                                             " yields its keys out of order: its pages are "
                                             "damaged (run verify)"};
        return lmdb::to_error(rc, std::string("copying table ") + name);
      }
      ++in_txn;
      found = cursor->get(k, v, MDB_NEXT);
    }
    if (!found) return std::move(found).err();
    if (int rc = txn->commit(); rc != 0) return lmdb::to_error(rc, "committing the copy");
    copied += in_txn;
    if (!*found) return copied;
  }
}

/// The names of the tables in the main table of `txn`.
result<std::vector<std::string>> table_names(MDB_txn* txn) {
  MDB_dbi main = 0;
  if (int rc = mdb_dbi_open(txn, nullptr, 0, &main); rc != 0)
    return lmdb::to_error(rc, "opening the main table");
  auto cursor = lmdb::cursor::open(txn, main);
  if (!cursor) return std::move(cursor).err();
  std::vector<std::string> names;
  MDB_val k{}, v{};
  auto found = cursor->get(k, v, MDB_FIRST);
  while (found && *found) {
    names.emplace_back(lmdb::to_view(k));
    found = cursor->get(k, v, MDB_NEXT);
  }
  if (!found) return std::move(found).err();
  return names;
}

std::uint64_t size_of(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

/// Writes the compacted copy of the store in `directory` to `copy`.
result<std::uint64_t> write_copy(const fs::path& directory, const fs::path& copy) {
  std::uint64_t map_size = 0, entries = 0;
  std::vector<std::string> names;
  auto source = open_env(directory, MDB_RDONLY, 0, 0);
  if (!source) return std::move(source).err();
  if (auto sized = detail::check_data_file_size(source->get(), directory); !sized)
    return std::move(sized).err();
  {
    auto txn = lmdb::txn::begin(source->get(), MDB_RDONLY);
    if (!txn) return std::move(txn).err();
    auto listed = table_names(txn->get());
    if (!listed) return std::move(listed).err();
    names = std::move(*listed);
  }
  // Re-open with room for every table's handle.
  source = open_env(directory, MDB_RDONLY, static_cast<unsigned>(names.size()) + 1, 0);
  if (!source) return std::move(source).err();
  MDB_envinfo info{};
  mdb_env_info(source->get(), &info);
  // Room to spare: the copy commits table by table, and a small map (a
  // store that never grew) may not hold the pages those commits pass
  // through. The map is address space, not disk.
  map_size = std::max<std::uint64_t>(
      info.me_mapsize, 2 * size_of(directory / "data.mdb") + (std::uint64_t{64} << 20));
  auto target = open_env(copy, MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC,
                         static_cast<unsigned>(names.size()) + 1, map_size);
  if (!target) return std::move(target).err();
  auto txn = lmdb::txn::begin(source->get(), MDB_RDONLY);
  if (!txn) return std::move(txn).err();
  for (const std::string& name : names) {
    auto copied = copy_table(txn->get(), name.c_str(), target->get());
    if (!copied) return std::move(copied).err();
    entries += *copied;
  }
  if (int rc = mdb_env_sync(target->get(), 1); rc != 0)
    return lmdb::to_error(rc, "syncing the compacted copy");
  return entries;
}

}  // namespace

result<compact_report> event_store::compact(const fs::path& directory) {
  const fs::path data = directory / "data.mdb";
  std::error_code ec;
  if (!fs::is_regular_file(data, ec))
    return error{errc::not_found, "no store in " + directory.string()};
  auto claim = detail::store_claim::exclusive(directory);
  if (!claim) return std::move(claim).err();
  if (auto alone = refuse_other_lmdb_users(directory); !alone) return std::move(alone).err();
  if (auto whole = detail::refuse_unfinished_creation(directory); !whole)
    return std::move(whole).err();
  // A damaged store is not rewritten: the copy would carry the damage on,
  // or stop half way. Nobody writes meanwhile: the file is still.
  auto pages = detail::check_pages(data);
  if (!pages) return std::move(pages).err();
  if (pages->faults_total != 0)
    return error{errc::corruption, "data.mdb is damaged (" + std::to_string(pages->faults_total) +
                                       " faults; first: " + pages->faults.front() +
                                       "): compaction refuses it; run verify"};

  compact_report report;
  report.bytes_before = size_of(data);
  const fs::path copy = directory / "data.mdb.compact";
  fs::remove(copy, ec);  // left by a compaction that did not finish
  auto entries = write_copy(directory, copy);
  if (!entries) {
    fs::remove(copy, ec);
    return std::move(entries).err();
  }
  report.entries = *entries;
  if (auto synced = detail::sync_path(copy, O_RDONLY); !synced) {
    fs::remove(copy, ec);
    return std::move(synced).err();
  }
  if (::rename(copy.c_str(), data.c_str()) != 0) {
    const int code = errno;
    fs::remove(copy, ec);
    return os_error(code, "replacing " + data.string());
  }
  if (auto synced = detail::sync_path(directory, O_RDONLY | O_DIRECTORY); !synced)
    return synced.err();
  report.bytes_after = size_of(data);
  return report;
}

}  // namespace varve
