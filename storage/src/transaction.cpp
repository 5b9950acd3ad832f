// The lifecycle of a write transaction: begin (adopting a map another
// process grew), run the work, commit; on MDB_MAP_FULL abort, grow the map
// and run the work again; after a failed commit, stop taking writes.
#include <algorithm>
#include <chrono>
#include <filesystem>

#include "forks.hpp"
#include "store_files.hpp"
#include "store_impl.hpp"

namespace varve::detail {

namespace {

constexpr auto map_lock_wait = std::chrono::seconds(10);

}  // namespace

std::uint64_t store_impl::map_size() const {
  MDB_envinfo info{};
  mdb_env_info(env.get(), &info);
  return info.me_mapsize;
}

result<void> store_impl::adopt_map_size(bool writer) const {
  std::unique_lock<std::shared_timed_mutex> lock(map_lock, std::defer_lock);
  if (!lock.try_lock_for(map_lock_wait))
    return error{errc::busy,
                 "another process grew the map; adopting it waits for this "
                 "process's open read transactions, which stayed open"};
  int rc = writer ? injected(faults.get(), lmdb_call::set_mapsize, where::current()) : 0;
  if (rc == 0) rc = mdb_env_set_mapsize(env.get(), 0);
  map_start.store(nullptr, std::memory_order_release);  // the map may have moved
  if (rc != 0) return lmdb::to_error(rc, "adopting the new map size");
  return {};
}

result<void> store_impl::grow_map() {
  const std::uint64_t current = map_size();
  if (current >= opts.max_map_size)
    return error{errc::storage_full, "the store is full: the map reached max_map_size (" +
                                         std::to_string(opts.max_map_size) + " bytes)"};
  const std::uint64_t next = std::min(opts.max_map_size, current * 2);
  std::unique_lock<std::shared_timed_mutex> lock(map_lock, std::defer_lock);
  if (!lock.try_lock_for(map_lock_wait))
    return error{errc::busy,
                 "the map must grow, which waits for this process's open read "
                 "transactions to end, and they stayed open"};
  int rc = injected(faults.get(), lmdb_call::set_mapsize, where::current());
  if (rc == 0) rc = mdb_env_set_mapsize(env.get(), next);
  map_start.store(nullptr, std::memory_order_release);  // the map may have moved
  if (rc != 0) return lmdb::to_error(rc, "growing the map");
  return {};
}

result<std::optional<write_txn>> store_impl::begin_write() {
  if (failed)
    return error{errc::failed_state, "the store stopped taking writes after an I/O failure (" +
                                         failure + "); reopen it to recover what was committed"};
  // The ids and nonces this transaction draws must not repeat a parent's.
  detail::notice_unannounced_fork();
  std::optional<write_txn> t;
  if (int rc = write_txn::begin(env.get(), faults.get(), dbi_mutex, t); rc != 0) {
    if (rc != MDB_MAP_RESIZED) return lmdb::to_error(rc, "beginning a write transaction");
    auto adopted = adopt_map_size(true);  // another process grew the map
    if (!adopted) return std::move(adopted).err();
    return std::optional<write_txn>{};
  }
  // Another process committed since this one's last transaction: what the
  // caches hold may be stale. From here on they hold what this transaction
  // reads of the committed state, which an abort does not change (an
  // aborted transaction leaves the next one the same id).
  if (t->id() != cache.expected_txn_id || cache.heads.size() > writer_cache::max_streams)
    cache.clear();
  cache.expected_txn_id = t->id();
  return t;
}

result<bool> store_impl::commit_write(write_txn& t) {
  const std::uint64_t txn_id = t.id();
  const int rc = t.commit();
  if (rc == 0) {
    cache.expected_txn_id = txn_id + 1;
    return true;
  }
  cache.clear();
  cache.expected_txn_id = 0;
  if (rc == MDB_MAP_FULL) {
    auto grown = grow_map();
    if (!grown) return std::move(grown).err();
    return false;
  }
  error err = lmdb::to_error(rc, "committing");
  // LMDB reports a write cut short by a full disk as EIO: a commit that
  // failed while the filesystem has no room left is storage_full, and the
  // store stays usable (nothing of the transaction became visible).
  if (rc == EIO && disk_full(opts.directory))
    err = error{errc::storage_full,
                "the disk holding " + opts.directory.string() + " is full; free space and retry"};
  if (err.code() != errc::storage_full) {
    failed = true;
    failure = err.message();
  }
  return err;
}

result<void> store_impl::transact(const txn_work& work, std::uint64_t* commit_ns) {
  using steady = std::chrono::steady_clock;
  for (;;) {
    auto begun = begin_write();
    if (!begun) return std::move(begun).err();
    if (!*begun) continue;
    write_txn& t = **begun;
    auto decided = work.run(t);
    if (decided && *decided == txn_decision::commit && stored_format < format_version) {
      // This build's records go to an older store: older builds must refuse
      // it from now on (format_version), rather than misread it.
      std::string version(4, '\0');
      bytes::put_le<std::uint32_t>(version.data(), format_version);
      (void)t.put(dbs.meta, "format_version", version);  // a failure breaks the transaction
    }
    if (t.broken() != 0) {  // an LMDB call failed: LMDB will not commit this transaction
      const int rc = t.broken();
      error err = t.failure();
      t.abort();
      work.aborted();
      if (rc != MDB_MAP_FULL) return err;
      auto grown = grow_map();
      if (!grown) return std::move(grown).err();
      continue;
    }
    if (!decided) {
      t.abort();
      work.aborted();
      return std::move(decided).err();
    }
    if (*decided != txn_decision::commit) {
      t.abort();
      work.aborted();
      if (*decided == txn_decision::discard) return {};
      continue;
    }
    const auto committing = steady::now();
    auto committed = commit_write(t);
    if (commit_ns)
      *commit_ns = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - committing).count());
    if (!committed || !*committed) work.aborted();
    if (!committed) return std::move(committed).err();
    if (!*committed) continue;  // the map grew: run the work again
    stored_format = format_version;
    work.committed();
    return {};
  }
}

}  // namespace varve::detail
