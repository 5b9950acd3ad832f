// Raw LMDB access to a closed Varve store, for tests that inspect or damage
// the stored bytes behind Varve's back (format version, corrupt records).
//
// Include after <boost/test/unit_test.hpp>.
#pragma once

#include <lmdb.h>

#include <boost/crc.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace varve_test {

/// An LMDB environment on a store directory (maxdbs 32), opened only while
/// no Varve handle has the store open.
class raw_env {
 public:
  explicit raw_env(const std::filesystem::path& dir) {
    check(mdb_env_create(&env_), "mdb_env_create");
    check(mdb_env_set_maxdbs(env_, 32), "mdb_env_set_maxdbs");
    check(mdb_env_open(env_, dir.c_str(), 0, 0600), "mdb_env_open");
  }
  ~raw_env() { mdb_env_close(env_); }
  MDB_env* get() const { return env_; }
  raw_env(const raw_env&) = delete;
  raw_env& operator=(const raw_env&) = delete;

  /// The value under `key` in the named database, or std::nullopt.
  std::optional<std::string> get(const char* db, std::string_view key) {
    return get_raw(db, key, 0);
  }
  /// The record at `position` in "events" (native-endian u64 integer key).
  std::optional<std::string> get_event(std::uint64_t position) {
    return get_raw("events", as_key(position), MDB_INTEGERKEY);
  }

  /// The recent index entry that begins at `first` ("index_recent",
  /// native-endian u64 integer key).
  std::optional<std::string> get_recent_index(std::uint64_t first) {
    return get_raw("index_recent", as_key(first), MDB_INTEGERKEY);
  }

  /// Overwrites the recent index entry that begins at `first`.
  void put_recent_index(std::uint64_t first, std::string_view value) {
    put_raw("index_recent", as_key(first), value, MDB_INTEGERKEY);
  }

  void put(const char* db, std::string_view key, std::string_view value) {
    put_raw(db, key, value, 0);
  }
  /// Overwrites the record at `position` in "events".
  void put_event(std::uint64_t position, std::string_view value) {
    put_raw("events", as_key(position), value, MDB_INTEGERKEY);
  }

  /// Number of entries in the named database.
  std::size_t entries(const char* db, unsigned flags = 0) {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
    MDB_dbi dbi = 0;
    const int rc = mdb_dbi_open(txn, db, flags, &dbi);
    if (rc != MDB_SUCCESS) mdb_txn_abort(txn);
    check(rc, std::string("mdb_dbi_open ") + db);
    MDB_stat st{};
    check(mdb_stat(txn, dbi, &st), "mdb_stat");
    mdb_txn_abort(txn);
    return st.ms_entries;
  }

  /// Empties table `db` (mdb_drop with del = 0).
  void empty(const char* db, unsigned flags = 0) {
    change(db, flags, [](MDB_txn* t, MDB_dbi d) { return mdb_drop(t, d, 0); });
  }

  /// Removes the type, category and tag indexes and their positions in
  /// meta, as a store of format 2 (or one an older build appended to) has
  /// none: its tables empty, "indexed_through" and "segmented_through" gone.
  void remove_indexes() {
    empty("index");
    empty("index_recent", MDB_INTEGERKEY);
    empty("index_keys");
    empty("index_names", MDB_INTEGERKEY);
    for (const char* key : {"indexed_through", "segmented_through"})
      if (get("meta", key)) erase("meta", key);
  }

  /// Deletes `key` from table `db`; the key must be there.
  void erase(const char* db, std::string_view key, unsigned flags = 0) {
    change(db, flags, [&](MDB_txn* t, MDB_dbi d) {
      MDB_val k{key.size(), const_cast<char*>(key.data())};
      return mdb_del(t, d, &k, nullptr);
    });
  }

  template <class F>
  void change(const char* db, unsigned flags, F&& f) {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
    MDB_dbi dbi = 0;
    int rc = mdb_dbi_open(txn, db, flags, &dbi);
    if (rc == MDB_SUCCESS) rc = f(txn, dbi);
    if (rc != MDB_SUCCESS) mdb_txn_abort(txn);
    check(rc, std::string("changing ") + db);
    check(mdb_txn_commit(txn), "mdb_txn_commit");
  }

  /// The number of the page of data.mdb that holds the value under `key`
  /// in table `db` (a value in its leaf page; the page header's first 8
  /// bytes are its number), or of the "events" record in the main table
  /// when `db` is null.
  std::uint64_t page_of(const char* db, std::string_view key, unsigned flags = 0) {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
    MDB_dbi dbi = 0;
    int rc = mdb_dbi_open(txn, db, flags, &dbi);
    if (rc == MDB_SUCCESS) {
      MDB_val k{key.size(), const_cast<char*>(key.data())}, v{};
      rc = mdb_get(txn, dbi, &k, &v);
      if (rc == MDB_SUCCESS) {
        MDB_stat st{};
        mdb_env_stat(env_, &st);
        const char* data = static_cast<const char*>(v.mv_data);
        std::uint64_t pgno = 0;
        std::memcpy(&pgno, data - reinterpret_cast<std::uintptr_t>(data) % st.ms_psize,
                    sizeof pgno);
        mdb_txn_abort(txn);
        return pgno;
      }
    }
    mdb_txn_abort(txn);
    check(rc, "page_of");
    return 0;
  }
  std::uint64_t page_of_event(std::uint64_t position) {
    return page_of("events", as_key(position), MDB_INTEGERKEY);
  }

 private:
  static std::string as_key(std::uint64_t position) {
    return std::string(reinterpret_cast<const char*>(&position), sizeof position);
  }

  static void check(int rc, const std::string& what) {
    BOOST_REQUIRE_MESSAGE(rc == MDB_SUCCESS, what << ": " << mdb_strerror(rc));
  }

  std::optional<std::string> get_raw(const char* db, std::string_view key, unsigned flags) {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
    MDB_dbi dbi = 0;
    int rc = mdb_dbi_open(txn, db, flags, &dbi);
    if (rc != MDB_SUCCESS) mdb_txn_abort(txn);
    check(rc, std::string("mdb_dbi_open ") + db);
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v{};
    rc = mdb_get(txn, dbi, &k, &v);
    std::optional<std::string> out;
    if (rc == MDB_SUCCESS) out.emplace(static_cast<const char*>(v.mv_data), v.mv_size);
    mdb_txn_abort(txn);
    if (rc != MDB_NOTFOUND) check(rc, "mdb_get");
    return out;
  }

  void put_raw(const char* db, std::string_view key, std::string_view value, unsigned flags) {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
    MDB_dbi dbi = 0;
    int rc = mdb_dbi_open(txn, db, flags, &dbi);
    if (rc != MDB_SUCCESS) mdb_txn_abort(txn);
    check(rc, std::string("mdb_dbi_open ") + db);
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v{value.size(), const_cast<char*>(value.data())};
    rc = mdb_put(txn, dbi, &k, &v, 0);
    if (rc != MDB_SUCCESS) mdb_txn_abort(txn);
    check(rc, "mdb_put");
    check(mdb_txn_commit(txn), "mdb_txn_commit");
  }

  MDB_env* env_ = nullptr;
};

/// The checksum of a record stored at `position` over its bytes `covered`
/// (all but the last 4), as storage/FORMAT.md defines it: CRC32C of
/// `covered`, XOR the low 32 bits of the position. Computed with Boost.CRC,
/// an implementation independent of the store's.
inline std::uint32_t record_checksum(std::uint64_t position, std::string_view covered) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(covered.data(), covered.size());
  return crc.checksum() ^ static_cast<std::uint32_t>(position);
}

/// Where the fields of a format 3 record are (storage/FORMAT.md), read
/// with a parser of its own.
struct record_layout {
  std::size_t metadata_len_at = 0, payload_len_at = 0;  // their varints
  std::size_t id_at = 0, time_at = 0;                   // the id, the time varint
  std::size_t head = 0;                                 // bytes before the type
  std::uint64_t type = 0, metadata = 0, payload = 0, tags = 0;
  std::size_t body() const { return head + type + tags; }  // where metadata (or the nonce) starts
};

inline record_layout layout_of(std::string_view r) {
  BOOST_REQUIRE_MESSAGE(!r.empty() && r[0] == 3, "a format 3 record");
  std::size_t at = 3;
  auto varint = [&] {
    std::uint64_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
      BOOST_REQUIRE(at < r.size());
      const auto b = static_cast<unsigned char>(r[at++]);
      v |= std::uint64_t{b & 0x7Fu} << shift;
      if (b < 0x80) return v;
    }
  };
  record_layout l;
  l.type = varint();
  l.metadata_len_at = at;
  l.metadata = varint();
  l.payload_len_at = at;
  l.payload = varint();
  l.tags = varint();
  varint();  // stream id
  varint();  // version
  varint();  // back
  l.id_at = at;
  at += 16;
  l.time_at = at;
  varint();
  l.head = at;
  return l;
}

/// A u32 as 4 little-endian bytes.
inline std::string le32(std::uint32_t v) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i)
    out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

/// A u64 as 8 little-endian bytes.
inline std::string le64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

/// Overwrites `bytes` at `offset` of page `pgno` of `dir`/data.mdb (4 KiB
/// pages), with no LMDB handle open on it.
inline void patch_page(const std::filesystem::path& dir, std::uint64_t pgno, std::size_t offset,
                       std::string_view bytes) {
  std::fstream f(dir / "data.mdb", std::ios::in | std::ios::out | std::ios::binary);
  BOOST_REQUIRE(f);
  f.seekp(static_cast<std::streamoff>(pgno * 4096 + offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  BOOST_REQUIRE(f);
}

/// The offsets of the nodes of a leaf page's bytes (its pointer array:
/// (lower - 16) / 2 u16 entries after the 16-byte header), in key order;
/// none when the page is not a leaf (an overflow page).
inline std::vector<std::uint16_t> node_offsets(const std::string& page) {
  std::uint16_t flags = 0, lower = 0;
  std::memcpy(&flags, page.data() + 10, 2);
  std::memcpy(&lower, page.data() + 12, 2);
  if (flags != 2 || lower < 16 || lower > page.size()) return {};
  std::vector<std::uint16_t> out((lower - 16u) / 2);
  std::memcpy(out.data(), page.data() + 16, out.size() * 2);
  return out;
}

/// The bytes of page `pgno` of `dir`/data.mdb.
inline std::string read_page(const std::filesystem::path& dir, std::uint64_t pgno) {
  std::ifstream f(dir / "data.mdb", std::ios::binary);
  std::string page(4096, '\0');
  f.seekg(static_cast<std::streamoff>(pgno * 4096));
  f.read(page.data(), static_cast<std::streamsize>(page.size()));
  BOOST_REQUIRE(f);
  return page;
}

}  // namespace varve_test
