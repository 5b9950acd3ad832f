// Opening a store: options, the directory, the data file's checks, the
// LMDB environment, the tables and their format version, whether the store
// is encrypted, and the handles of the view tables.
#include "varve/storage/event_store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <system_error>

#include <botan/mem_ops.h>

#include "indexes.hpp"
#include "store_impl.hpp"
#include "varve/storage/testing.hpp"

namespace varve {

namespace fs = std::filesystem;

namespace detail {

namespace {

/// Tables of the layout, besides views.
constexpr unsigned core_tables = 13;

constexpr std::uint64_t least_map_size = std::uint64_t{64} << 10;

result<void> validate(const options& o) {
  auto bad = [](std::string what) { return error{errc::invalid_argument, std::move(what)}; };
  if (o.directory.empty()) return bad("options.directory is empty");
  if (o.map_size == 0) return bad("options.map_size is 0");
  // A new store's tables take more than 32 KiB, and the creation does not
  // grow the map.
  if (o.map_size < least_map_size)
    return bad("options.map_size (" + std::to_string(o.map_size) +
               " bytes) is under 64 KiB, the least a store is created in");
  if (o.max_map_size == 0) return bad("options.max_map_size is 0");
  if (o.max_map_size < o.map_size)
    return bad("options.max_map_size (" + std::to_string(o.max_map_size) +
               ") is smaller than options.map_size (" + std::to_string(o.map_size) + ")");
  if (o.max_event_bytes == 0) return bad("options.max_event_bytes is 0");
  if (o.max_event_bytes > 0xFFFFFFFFull)
    return bad("options.max_event_bytes is over 4 GiB - 1, the largest event a record holds");
  if (o.max_readers == 0) return bad("options.max_readers is 0");
  if (o.max_views > 32000) return bad("options.max_views is over 32000");
  if (o.master_key && !o.key_file.empty())
    return bad("options.master_key and options.key_file are both given; give one");
  return {};
}

result<void> prepare_directory(const options& o) {
  const fs::path& dir = o.directory;
  std::error_code ec;
  auto st = fs::status(dir, ec);
  if (fs::exists(st)) {
    if (!fs::is_directory(st))
      return error{errc::invalid_argument, "store path " + dir.string() + " is not a directory"};
  } else {
    if (!o.create_if_missing)
      return error{errc::not_found, "store directory " + dir.string() + " does not exist"};
    fs::create_directories(dir, ec);
    if (ec)
      return error{errc::invalid_argument,
                   "cannot create store directory " + dir.string() + ": " + ec.message()};
    ::chmod(dir.c_str(), 0700);
  }
  if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0)
    return error{errc::invalid_argument,
                 "store directory " + dir.string() + " is not readable and writable"};
  return {};
}

result<MDB_dbi> open_db(MDB_txn* txn, const char* name, unsigned flags) {
  MDB_dbi dbi = 0;
  if (int rc = mdb_dbi_open(txn, name, flags, &dbi); rc != 0)
    return lmdb::to_error(rc, std::string("opening table ") + name);
  return dbi;
}

/// What open found out about the store's encryption.
struct encryption_state {
  bool encrypted = false;
  std::string key_check;  // the value in meta (empty when it has none)
};

/// Whether the store is encrypted: any of its markers (a cipher or key
/// check in meta, a data key) says so. With `key`, checks it against the
/// key check value, or, when that is missing, against the first data key.
result<encryption_state> look_at_encryption(MDB_txn* t, MDB_dbi meta,
                                            const crypto::master_key* key) {
  encryption_state out;
  auto get = [&](std::string_view name) -> result<std::optional<std::string_view>> {
    MDB_val k = lmdb::to_val(name), v{};
    const int rc = mdb_get(t, meta, &k, &v);
    if (rc == MDB_NOTFOUND) return std::optional<std::string_view>{};
    if (rc != 0) return lmdb::to_error(rc, "reading meta");
    return std::optional<std::string_view>{lmdb::to_view(v)};
  };
  auto check = get("key_check");
  if (!check) return std::move(check).err();
  auto cipher = get("cipher");
  if (!cipher) return std::move(cipher).err();
  std::optional<std::string> first_key;
  MDB_dbi keys = 0;
  if (int rc = mdb_dbi_open(t, "keys", MDB_INTEGERKEY, &keys); rc == 0) {
    MDB_cursor* c = nullptr;
    if (rc = mdb_cursor_open(t, keys, &c); rc != 0) return lmdb::to_error(rc, "reading data keys");
    MDB_val k{}, v{};
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    mdb_cursor_close(c);
    if (rc == 0)
      first_key = std::string(lmdb::to_view(v));
    else if (rc != MDB_NOTFOUND)
      return lmdb::to_error(rc, "reading data keys");
  } else if (rc != MDB_NOTFOUND) {
    return lmdb::to_error(rc, "opening table keys");
  }
  out.encrypted = *check || *cipher || first_key;
  if (*check) out.key_check = std::string(**check);
  if (!out.encrypted) {
    if (key)
      return error{errc::invalid_argument,
                   "the store is not encrypted: open it without a master key (a key given to a "
                   "plain store would protect nothing)"};
    return out;
  }
  if (!key)
    return error{errc::auth_failed,
                 "the store is encrypted: open it with its master key (key file)"};
  if (*check) {
    if (!key->check(**check)) return error{errc::auth_failed, "wrong master key"};
  } else if (first_key && !key->unwrap(*first_key)) {
    return error{errc::auth_failed, "wrong master key (it does not unwrap the store's data keys)"};
  }
  return out;
}

/// Begins a transaction at open, when this process has no other one on the
/// environment: a map that another process grew (MDB_MAP_RESIZED) is
/// adopted first.
result<lmdb::txn> begin_at_open(MDB_env* env, unsigned flags) {
  for (;;) {
    MDB_txn* t = nullptr;
    const int rc = mdb_txn_begin(env, nullptr, flags, &t);
    if (rc == 0) return lmdb::txn(t);
    if (rc != MDB_MAP_RESIZED) return lmdb::to_error(rc, "beginning a transaction");
    if (int r = mdb_env_set_mapsize(env, 0); r != 0)
      return lmdb::to_error(r, "adopting the new map size");
  }
}

/// What the look at an existing store found.
struct store_look {
  bool exists = false;          // it has a meta table
  std::uint32_t version = 0;    // its format version
  encryption_state encryption;  // valid when it exists
};

/// Looks at the store without writing anything: a newer or foreign store
/// stays untouched. With `error_if_exists`, an existing store is refused
/// before anything else is checked (its key, say).
/// Fills `out` as far as it gets: `exists` is set before any error about
/// the store found (error_if_exists, its format, its key).
result<void> look_at_store(MDB_env* env, const crypto::master_key* key, bool error_if_exists,
                           bool may_create, const std::filesystem::path& directory,
                           store_look& out) {
  out = store_look{};
  auto t = begin_at_open(env, MDB_RDONLY);
  if (!t) return std::move(t).err();
  MDB_dbi meta = 0;
  int rc = mdb_dbi_open(t->get(), "meta", 0, &meta);
  if (rc == MDB_NOTFOUND) {
    MDB_stat st{};
    MDB_dbi main = 0;
    if (mdb_dbi_open(t->get(), nullptr, 0, &main) == 0 && mdb_stat(t->get(), main, &st) == 0 &&
        st.ms_entries != 0)
      return error{errc::corruption,
                   "the directory holds an LMDB environment that is not a Varve store"};
    if (!may_create)
      return error{errc::not_found, "no Varve store in " + directory.string() +
                                        " (its creation was cut short); an open with "
                                        "options.create_if_missing creates it"};
    return {};
  }
  if (rc != 0) return lmdb::to_error(rc, "opening the meta table");
  auto v = t->get(meta, "format_version");
  if (!v) return std::move(v).err();
  if (!*v || (*v)->size() != 4)
    return error{errc::corruption, "the store's meta table has no valid format_version"};
  out.exists = true;
  if (error_if_exists)
    return error{errc::invalid_argument, "a store already exists in " + directory.string()};
  out.version = bytes::get_le<std::uint32_t>((*v)->data());
  if (out.version > format_version)
    return error{errc::format_version, "the store has format version " +
                                           std::to_string(out.version) +
                                           ", newer than this build of Varve supports (" +
                                           std::to_string(format_version) + ")"};
  auto looked = look_at_encryption(t->get(), meta, key);
  if (!looked) return std::move(looked).err();
  out.encryption = std::move(*looked);
  return {};
}

/// Writes the meta table of a new store (encrypted with `key`).
result<void> lay_out_meta(lmdb::txn& t, const tables& dbs, const crypto::master_key* key,
                          encryption_state& enc) {
  std::string version(4, '\0');
  bytes::put_le<std::uint32_t>(version.data(), format_version);
  std::string created(8, '\0');
  bytes::put_le<std::int64_t>(created.data(),
                              std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
  if (int rc = t.put(dbs.meta, "format_version", version); rc != 0)
    return lmdb::to_error(rc, "writing meta");
  if (int rc = t.put(dbs.meta, "created_at", created); rc != 0)
    return lmdb::to_error(rc, "writing meta");
  if (!key) return {};
  auto check = key->make_check();
  if (!check) return std::move(check).err();
  if (int rc = t.put(dbs.meta, "key_check", *check); rc != 0)
    return lmdb::to_error(rc, "writing meta");
  if (int rc = t.put(dbs.meta, "cipher", "AES-256/GCM"); rc != 0)
    return lmdb::to_error(rc, "writing meta");
  enc.encrypted = true;
  enc.key_check = std::move(*check);
  return {};
}

/// Checks the meta table of an existing store, or lays out a new one. With
/// `key`, a new store is created encrypted and an encrypted one is checked
/// against it; `look` tells what the store is. Two processes that create a
/// store at once agree: the one whose write transaction comes second finds
/// the store made, and looks at it again as an existing one.
result<tables> open_tables(MDB_env* env, const crypto::master_key* key, const options& opts,
                           store_look& look) {
  for (;;) {
    if (auto looked = look_at_store(env, key, opts.error_if_exists, opts.create_if_missing,
                                    opts.directory, look);
        !looked)
      return std::move(looked).err();
    auto t = begin_at_open(env, 0);
    if (!t) return std::move(t).err();
    tables dbs;
    struct {
      MDB_dbi* dbi;
      const char* name;
      unsigned flags;
    } const layout[] = {
        {&dbs.meta, "meta", 0},
        {&dbs.events, "events", MDB_INTEGERKEY},
        {&dbs.stream_names, "stream_names", 0},
        {&dbs.stream_ids, "stream_ids", MDB_INTEGERKEY},
        {&dbs.stream_heads, "stream_heads", MDB_INTEGERKEY},
        {&dbs.stream_index, "stream_index", 0},
        {&dbs.cursors, "cursors", 0},
        {&dbs.keys, "keys", MDB_INTEGERKEY},
        {&dbs.snapshots, "snapshots", MDB_INTEGERKEY},
        {&dbs.index_keys, "index_keys", 0},
        {&dbs.index_names, "index_names", MDB_INTEGERKEY},
        {&dbs.index, "index", 0},
        {&dbs.index_recent, "index_recent", MDB_INTEGERKEY},
    };
    static_assert(sizeof layout / sizeof layout[0] == core_tables,
                  "the table count sets LMDB's maxdbs: views get what is left");
    for (const auto& l : layout) {
      auto dbi = open_db(t->get(), l.name, l.flags | MDB_CREATE);
      if (!dbi) return std::move(dbi).err();
      *l.dbi = *dbi;
    }
    auto v = t->get(dbs.meta, "format_version");
    if (!v) return std::move(v).err();
    if (*v && !look.exists) continue;  // created by another process meanwhile: look again
    if (!*v) {
      look.version = format_version;
      if (auto laid = lay_out_meta(*t, dbs, key, look.encryption); !laid)
        return std::move(laid).err();
    }
    if (int rc = t->commit(); rc != 0) {
      if (rc == EIO && detail::disk_full(opts.directory))
        return error{errc::storage_full, "the disk holding " + opts.directory.string() +
                                             " is full; free space and retry"};
      return lmdb::to_error(rc, "committing the store layout");
    }
    return dbs;
  }
}

}  // namespace

namespace {

/// A read transaction at open, adopting the map size when another process
/// grew it.
result<lmdb::txn> begin_read_at_open(store_impl& s) {
  MDB_txn* raw = nullptr;
  int rc = mdb_txn_begin(s.env.get(), nullptr, MDB_RDONLY, &raw);
  while (rc == MDB_MAP_RESIZED) {  // another process grew the map
    if (auto adopted = s.adopt_map_size(); !adopted) return std::move(adopted).err();
    rc = mdb_txn_begin(s.env.get(), nullptr, MDB_RDONLY, &raw);
  }
  if (rc != 0) return lmdb::to_error(rc, "beginning a read transaction");
  return lmdb::txn(raw);
}

/// The log's last position and the index's, in a read transaction.
result<std::pair<global_position, global_position>> index_and_head(store_impl& s) {
  auto t = begin_read_at_open(s);
  if (!t) return std::move(t).err();
  auto covered = index::read_coverage(t->get(), s.dbs);
  if (!covered) return std::move(covered).err();
  auto c = lmdb::cursor::open(t->get(), s.dbs.events);
  if (!c) return std::move(c).err();
  MDB_val k{}, v{};
  auto found = c->get(k, v, MDB_LAST);
  if (!found) return std::move(found).err();
  const global_position head = *found ? bytes::get_native_u64(lmdb::to_view(k)) : 0;
  return std::pair{covered->indexed_through, head};
}

}  // namespace

namespace {

/// Whether the indexes may be of an older layout, to be dropped and built
/// again: the store is of an older format (format 3 wrote per-key chunks,
/// 16-byte keys, or per-key segments, 17-byte keys), or `index` has a key
/// of another size first or last (segments sort by tier, tier 2 last).
result<bool> index_of_an_older_layout(store_impl& s) {
  if (s.stored_format < format_version) return true;
  auto t = begin_read_at_open(s);
  if (!t) return std::move(t).err();
  auto c = lmdb::cursor::open(t->get(), s.dbs.index);
  if (!c) return std::move(c).err();
  for (MDB_cursor_op op : {MDB_FIRST, MDB_LAST}) {
    MDB_val k{}, v{};
    auto found = c->get(k, v, op);
    if (!found) return std::move(found).err();
    if (*found && k.mv_size != index::segment_key_size) return true;
  }
  return false;
}

}  // namespace

void prefault(store_impl& s) {
  auto t = begin_read_at_open(s);
  if (!t) return;
  // The finder checks where the map begins (LMDB does not say).
  const log_finder finder(t->get(), s.main_table, s.dbs.events, s.map_start);
  const char* start = s.map_start.load(std::memory_order_acquire);
  MDB_envinfo info{};
  MDB_stat st{};
  if (!start || mdb_env_info(s.env.get(), &info) != 0 || mdb_env_stat(s.env.get(), &st) != 0)
    return;
  const std::uint64_t used = (std::uint64_t{info.me_last_pgno} + 1) * st.ms_psize;
  prefault_resident(start, std::min<std::uint64_t>(used, info.me_mapsize));
}

result<void> index_up_to_date(store_impl& s, bool strict) {
  auto older = index_of_an_older_layout(s);
  if (!older) return std::move(older).err();
  if (*older) {
    if (auto dropped = s.drop_indexes(); !dropped) return dropped;
  }
  // A store of an older format, or events an older build appended: writes
  // with nothing in them catch the index up (writer.cpp), about 2^20 index
  // entries per transaction, so that memory stays bounded too.
  constexpr global_position entries_per_transaction = 1u << 20;
  for (;;) {
    auto at = index_and_head(s);
    if (!at) return std::move(at).err();
    if (at->first >= at->second) return {};
    auto done = s.write(std::span<const request_ref>{}, nullptr, entries_per_transaction);
    // A damaged record in the part not indexed yet: the store still opens
    // (reads find those events through the log; verify names the record).
    if (!done && done.err().code() == errc::corruption && !strict) return {};
    if (!done) return std::move(done).err();
  }
}

result<void> store_impl::open_new_views() const {
  std::unique_lock<std::mutex> lock(dbi_mutex);
  MDB_txn* raw = nullptr;
  int rc = mdb_txn_begin(env.get(), nullptr, MDB_RDONLY, &raw);
  while (rc == MDB_MAP_RESIZED) {  // another process grew the map
    lock.unlock();                 // (readers wait for the handle lock, never the other way)
    if (auto adopted = adopt_map_size(); !adopted) return adopted;
    lock.lock();
    rc = mdb_txn_begin(env.get(), nullptr, MDB_RDONLY, &raw);
  }
  if (rc != 0) return lmdb::to_error(rc, "beginning a read transaction");
  std::optional<lmdb::txn> t{lmdb::txn(raw)};
  if (int rc = mdb_dbi_open(t->get(), nullptr, 0, &main_table); rc != 0)
    return lmdb::to_error(rc, "opening the main table");
  MDB_stat main_stat{};
  if (int rc = mdb_stat(t->get(), main_table, &main_stat); rc != 0)
    return lmdb::to_error(rc, "reading the list of tables");
  std::vector<std::string> names;
  {
    auto c = lmdb::cursor::open(t->get(), main_table);
    if (!c) return std::move(c).err();
    const std::string prefix = view_table("");
    MDB_val k = lmdb::to_val(prefix), v{};
    auto found = c->get(k, v, MDB_SET_RANGE);
    while (found && *found && lmdb::to_view(k).starts_with(prefix)) {
      std::string name(lmdb::to_view(k).substr(prefix.size()));
      if (!views.contains(name)) names.push_back(std::move(name));
      found = c->get(k, v, MDB_NEXT);
    }
    if (!found) return std::move(found).err();
  }
  std::vector<std::pair<std::string, MDB_dbi>> opened;
  for (const std::string& name : names) {
    MDB_dbi dbi = 0;
    if (int rc = mdb_dbi_open(t->get(), view_table(name).c_str(), 0, &dbi); rc != 0)
      return lmdb::to_error(rc, "opening view " + name);
    opened.emplace_back(name, dbi);
  }
  if (int rc = t->commit(); rc != 0) return lmdb::to_error(rc, "registering views");
  for (auto& [name, dbi] : opened)
    views.emplace(std::move(name), dbi);
  tables_known.store(main_stat.ms_entries, std::memory_order_release);
  return {};
}

std::optional<MDB_dbi> store_impl::view_for_read(std::string_view name) const {
  // read() opened the handle of every table in its transaction's snapshot
  // before it began: a view without a handle does not exist there.
  std::lock_guard<std::mutex> lock(dbi_mutex);
  if (auto it = views.find(std::string(name)); it != views.end())
    return std::optional<MDB_dbi>{it->second};
  return std::optional<MDB_dbi>{};
}

}  // namespace detail

result<std::unique_ptr<event_store>> event_store::open(options opts) {
  if (auto v = detail::validate(opts); !v) return std::move(v).err();

  // The key first: a bad key file leaves nothing behind.
  std::unique_ptr<crypto::master_key> key;
  if (opts.master_key) {
    key = std::make_unique<crypto::master_key>(
        crypto::key_bytes(opts.master_key->begin(), opts.master_key->end()));
    Botan::secure_scrub_memory(opts.master_key->data(), opts.master_key->size());
    opts.master_key.reset();
  } else if (!opts.key_file.empty()) {
    auto bytes = crypto::read_key_file(opts.key_file.string());
    if (!bytes) return std::move(bytes).err();
    key = std::make_unique<crypto::master_key>(std::move(*bytes));
  }
  if (auto d = detail::prepare_directory(opts); !d) return std::move(d).err();

  auto impl = std::make_unique<detail::store_impl>();
  auto claim = detail::store_claim::shared(opts.directory);
  if (!claim) return std::move(claim).err();
  impl->claim.emplace(std::move(*claim));
  // Holding the claim, no compaction runs: a copy one left is stale.
  std::error_code ec;
  std::filesystem::remove(opts.directory / "data.mdb.compact", ec);
  if (!opts.create_if_missing && !std::filesystem::exists(opts.directory / "data.mdb", ec))
    return error{errc::not_found,
                 "no store in " + opts.directory.string() + " (options.create_if_missing is off)"};
  // Creating (or completing) the store, one process at a time.
  auto creation = detail::prepare_data_file(opts.directory);
  if (!creation) return std::move(creation).err();
  impl->opts = opts;
  MDB_env* raw = nullptr;
  if (int rc = mdb_env_create(&raw); rc != 0) return lmdb::to_error(rc, "mdb_env_create");
  impl->env = lmdb::env(raw);
  if (int rc = mdb_env_set_maxdbs(raw, detail::core_tables + opts.max_views); rc != 0)
    return lmdb::to_error(rc, "mdb_env_set_maxdbs");
  if (int rc = mdb_env_set_maxreaders(raw, opts.max_readers); rc != 0)
    return lmdb::to_error(rc, "mdb_env_set_maxreaders");
  if (int rc = mdb_env_set_mapsize(raw, opts.map_size); rc != 0)
    return lmdb::to_error(rc, "mdb_env_set_mapsize");
  if (auto slots = detail::allocate_lock_file(opts.directory, opts.max_readers); !slots)
    return std::move(slots).err();
  unsigned flags = MDB_NOTLS;
  if (opts.sync == durability::no_meta_sync) flags |= MDB_NOMETASYNC;
  if (opts.sync == durability::no_sync) flags |= MDB_NOSYNC;
  if (int rc = mdb_env_open(raw, opts.directory.c_str(), flags, 0600); rc != 0) {
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
      return error{errc::corruption,
                   opts.directory.string() + " does not hold a Varve store: " + mdb_strerror(rc)};
    return lmdb::to_error(rc, "opening " + opts.directory.string());
  }
  if (auto sized = detail::check_data_file_size(raw, opts.directory); !sized)
    return std::move(sized).err();
  detail::store_look look;
  auto dbs = detail::open_tables(raw, key.get(), opts, look);
  // Once the store's tables are committed (by this open or an earlier one)
  // an empty data.mdb is damage: the marker goes, even when this open
  // fails (a wrong key, error_if_exists).
  if (*creation && (dbs || look.exists))
    if (auto finished = (*creation)->finish(); !finished) return std::move(finished).err();
  if (!dbs) return std::move(dbs).err();
  impl->dbs = *dbs;
  impl->stored_format = look.version;
  impl->encrypted = look.encryption.encrypted;
  impl->key_check = std::move(look.encryption.key_check);
  if (impl->encrypted) impl->current_master = std::move(key);
  impl->max_key_size = static_cast<std::size_t>(mdb_env_get_maxkeysize(raw));
  if (auto v = impl->open_new_views(); !v) return std::move(v).err();
  if (auto indexed = detail::index_up_to_date(*impl); !indexed) return std::move(indexed).err();
  if (opts.prefault_map) detail::prefault(*impl);
  return std::unique_ptr<event_store>(new event_store(std::move(impl)));
}

}  // namespace varve
