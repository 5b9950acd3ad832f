// The on-disk format of LMDB 0.9.x as Varve reads it itself (private to
// varve::storage): its constants, records and helpers. page_check.cpp picks
// the meta page, page_walker.{hpp,cpp} and page_nodes.cpp walk the trees
// (verify); the read path's log_leaf.hpp walks the log's leaf pages and
// log_finder.cpp descends its tree (only with an LMDB of this layout:
// layout_known()).
//
// The format is LMDB 0.9.x's (libraries/liblmdb/mdb.c at tag LMDB_0.9.24, the
// version Debian 12 ships), on a 64-bit host, integers in native byte order:
//
//   data.mdb     := page{0 .. last_page}                page n at n × page_size
//   header       := pgno:u64 pad:u16 flags:u16 (lower:u16 upper:u16 | pages:u32)
//                                                       16 bytes (PAGEHDRSZ)
//   meta page    := header(flags ∋ P_META 0x08) meta    pages 0 and 1
//   meta         := magic:u32 = 0xBEEFC0DE  version:u32 = 1  address:u64  map_size:u64
//                   free:table  main:table  last_page:u64  txnid:u64
//                   (page_size = free.pad; LMDB opens the valid meta page with
//                   the larger txnid; meta page 1 starts at meta page 0's page size)
//   table        := pad:u32 flags:u16 depth:u16 branch_pages:u64 leaf_pages:u64
//                   overflow_pages:u64 entries:u64 root:u64          48 bytes (MDB_db)
//                   root = ~0: an empty tree
//   branch page  := header(flags = P_BRANCH 0x01) ptr[n]:u16 ... nodes
//   leaf page    := header(flags = P_LEAF 0x02) ptr[n]:u16 ... nodes
//                   n = (lower - 16) / 2; ptr[i] = offset of node i in the page;
//                   nodes lie in [upper, page_size)
//   branch node  := lo:u16 hi:u16 top:u16 key_size:u16 key
//                   child page = lo | hi << 16 | top << 32; key 0 is unused
//   leaf node    := lo:u16 hi:u16 flags:u16 key_size:u16 key data
//                   size = lo | hi << 16
//   data         := value[size]                       flags = 0
//                 | first_page:u64                     flags = F_BIGDATA 0x01
//                 | table                              flags = F_SUBDATA 0x02 (the main
//                                                      table's record of a named table)
//                   (F_DUPDATA 0x04, sorted duplicates, is not used by Varve)
//   overflow run := header(flags = P_OVERFLOW 0x04, pages = count) value ...
//                   count ≥ (16 - 1 + size) / page_size + 1
//   free table   := txnid:u64 → count:u64 pgno[count]:u64 (unused room)
//
// Checked, from the meta page of the snapshot (valid, and read twice alike
// when a transaction id is given) through the free table, the main table and
// every named table:
//   - tables: depth ≤ 32 (LMDB's cursor stack); an empty tree counts nothing;
//     a walked tree has the branch, leaf and overflow pages and the entries
//     its record counts;
//   - pages: each reached once (no cycle, no page shared between nodes, trees
//     or free lists); page number field = position; flags P_BRANCH above the
//     tree's depth and P_LEAF at it; 16 ≤ lower ≤ upper ≤ page_size, lower
//     even; at least one node (two in a branch page outside the free table);
//   - nodes: offset even, in [upper, page_size - 8]; header, key and data
//     inside the page; key ≤ 511 bytes; node flags known; leaf keys ascending
//     and inside the range the parent gives them, branch keys ascending
//     (integer tables compare keys as native u64, others bytewise);
//   - child pages and overflow runs inside pages 2 .. last_page; an overflow
//     run's first page has its number, P_OVERFLOW and enough pages;
//   - free lists: whole u64s, count within their room, pages in 2 ..
//     last_page and in no tree; pages in use + free + 2 = last_page + 1 (a
//     leak makes LMDB's compacting copy, i.e. backup, refuse the store);
//   - the file: every page in use lies inside it. A file shorter than
//     last_page + 1 pages whose missing pages are all free is sound: LMDB
//     never writes a page freed by the transaction that allocated it.
#pragma once

#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "page_check.hpp"

namespace varve::detail::lmdb_pages {

// The layout of mdb.c (LMDB_0.9.24) on a 64-bit host.
static_assert(sizeof(std::size_t) == 8, "pgno_t and size_t fields are 64-bit here");
inline constexpr std::uint64_t header_size = 16;      // PAGEHDRSZ
inline constexpr std::uint64_t node_header_size = 8;  // NODESIZE
inline constexpr std::uint64_t table_size = 48;       // sizeof(MDB_db)
inline constexpr std::uint64_t meta_end = 152;        // PAGEHDRSZ + sizeof(MDB_meta)
inline constexpr std::uint64_t meta_magic_at = 16;
inline constexpr std::uint64_t meta_version_at = 20;
inline constexpr std::uint64_t meta_free_at = 40;
inline constexpr std::uint64_t meta_main_at = 88;
inline constexpr std::uint64_t meta_last_page_at = 136;
inline constexpr std::uint64_t meta_txnid_at = 144;
inline constexpr std::uint16_t p_branch = 0x01;
inline constexpr std::uint16_t p_leaf = 0x02;
inline constexpr std::uint16_t p_overflow = 0x04;
inline constexpr std::uint16_t p_meta = 0x08;
inline constexpr std::uint16_t p_leaf2 = 0x20;
inline constexpr std::uint16_t p_subp = 0x40;
inline constexpr std::uint16_t f_bigdata = 0x01;
inline constexpr std::uint16_t f_subdata = 0x02;
inline constexpr std::uint16_t f_dupdata = 0x04;
inline constexpr std::uint32_t lmdb_magic = 0xBEEFC0DE;
inline constexpr std::uint32_t lmdb_data_version = 1;
inline constexpr std::uint64_t no_page = ~std::uint64_t{0};  // P_INVALID
inline constexpr std::uint64_t meta_pages = 2;               // NUM_METAS
inline constexpr std::uint64_t max_depth = 32;               // CURSOR_STACK
inline constexpr std::uint64_t max_key_size = 511;           // MDB_MAXKEYSIZE
inline constexpr std::uint64_t min_page_size = 512;
inline constexpr std::uint64_t max_page_size = 0x8000;  // MAX_PAGESIZE
inline constexpr std::uint16_t known_table_flags =
    MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP;

inline constexpr std::size_t max_faults_kept = 1000;
// Pages at most this far apart are read with one pread, of at most max_read.
inline constexpr std::uint64_t max_gap_pages = 4;
inline constexpr std::uint64_t max_read = std::uint64_t{1} << 20;

/// Whether the LMDB this process runs has the layout below (0.9.x).
inline bool layout_known() {
  int major = 0, minor = 0, patch = 0;
  mdb_version(&major, &minor, &patch);
  return major == 0 && minor == 9;
}

template <class T>
inline T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline std::string str(std::uint64_t n) {
  return std::to_string(n);
}

inline std::string hex(std::uint64_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), digits[n % 16]);
    n /= 16;
  } while (n != 0);
  return "0x" + out;
}

/// A table name as it can be printed: at most 64 bytes, \xNN for the rest.
inline std::string printable(std::string_view name) {
  std::string out;
  for (char c : name.substr(0, 64)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\'' && c != '\\') {
      out += c;
    } else {
      out += "\\x";
      out += hex(u).substr(2);
    }
  }
  if (name.size() > 64) out += "...";
  return out;
}

/// The number of pages of an overflow run holding a value of `size` bytes
/// (OVPAGES).
inline std::uint64_t overflow_run_pages(std::uint64_t size, std::uint64_t page_size) {
  return (header_size - 1 + size) / page_size + 1;
}

/// A table record (MDB_db).
struct table_record {
  std::uint32_t pad = 0;
  std::uint16_t flags = 0;
  tree_counts counts{};
  std::uint64_t root = no_page;
};

inline table_record decode_table(const char* p) {
  table_record t;
  t.pad = load<std::uint32_t>(p);
  t.flags = load<std::uint16_t>(p + 4);
  t.counts.depth = load<std::uint16_t>(p + 6);
  t.counts.branch_pages = load<std::uint64_t>(p + 8);
  t.counts.leaf_pages = load<std::uint64_t>(p + 16);
  t.counts.overflow_pages = load<std::uint64_t>(p + 24);
  t.counts.entries = load<std::uint64_t>(p + 32);
  t.root = load<std::uint64_t>(p + 40);
  return t;
}

/// A meta page: its page header and MDB_meta, and the bytes they came from.
struct meta_page {
  std::array<char, meta_end> bytes{};
  std::uint64_t pgno = 0;
  std::uint16_t flags = 0;
  std::uint32_t magic = 0;
  std::uint32_t version = 0;
  table_record free{};
  table_record main{};
  std::uint64_t last_page = 0;
  std::uint64_t txn_id = 0;

  std::uint64_t page_size() const { return free.pad; }
};

inline meta_page decode_meta(const std::array<char, meta_end>& bytes) {
  meta_page m;
  m.bytes = bytes;
  const char* p = bytes.data();
  m.pgno = load<std::uint64_t>(p);
  m.flags = load<std::uint16_t>(p + 10);
  m.magic = load<std::uint32_t>(p + meta_magic_at);
  m.version = load<std::uint32_t>(p + meta_version_at);
  m.free = decode_table(p + meta_free_at);
  m.main = decode_table(p + meta_main_at);
  m.last_page = load<std::uint64_t>(p + meta_last_page_at);
  m.txn_id = load<std::uint64_t>(p + meta_txnid_at);
  return m;
}

inline bool valid_page_size(std::uint64_t size) {
  return std::has_single_bit(size) && size >= min_page_size && size <= max_page_size;
}

/// Why LMDB would refuse meta page `slot`, or cannot work with it; empty
/// when it is sound.
inline std::string meta_fault(const meta_page& m, std::uint64_t slot) {
  if ((m.flags & p_meta) == 0) return "flags " + hex(m.flags) + " are not a meta page's";
  if (m.magic != lmdb_magic) return "magic " + hex(m.magic) + " is not LMDB's";
  if (m.version != lmdb_data_version)
    return "data format version " + str(m.version) + ", LMDB 0.9 reads 1";
  if (m.pgno != slot) return "its page number field says " + str(m.pgno);
  if (!valid_page_size(m.page_size()))
    return "page size " + str(m.page_size()) + " is not a power of two from 512 to 32768";
  if (m.last_page < meta_pages - 1) return "last page " + str(m.last_page);
  return {};
}

/// How a table orders its keys.
enum class key_order : std::uint8_t { bytes, integer, unchecked };

inline key_order order_of(std::uint16_t table_flags) {
  if (table_flags & MDB_REVERSEKEY) return key_order::unchecked;
  if (table_flags & MDB_INTEGERKEY) return key_order::integer;
  return key_order::bytes;
}

/// LMDB's order: native unsigned integers of one size for integer tables
/// (mdb_cmp_int/mdb_cmp_long), else bytewise with the shorter first on a
/// common prefix (mdb_cmp_memn).
inline int compare_keys(key_order order, std::string_view a, std::string_view b) {
  if (order == key_order::integer && a.size() == b.size()) {
    if (a.size() == 8) {
      const auto x = load<std::uint64_t>(a.data()), y = load<std::uint64_t>(b.data());
      return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.size() == 4) {
      const auto x = load<std::uint32_t>(a.data()), y = load<std::uint32_t>(b.data());
      return x < y ? -1 : x > y ? 1 : 0;
    }
  }
  const int c = std::memcmp(a.data(), b.data(), std::min(a.size(), b.size()));
  if (c != 0) return c;
  return a.size() < b.size() ? -1 : a.size() > b.size() ? 1 : 0;
}

/// data.mdb, open for reading; closed with the object.
class data_file {
 public:
  data_file(data_file&& o) noexcept : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)) {}
  data_file& operator=(data_file&&) = delete;
  ~data_file() {
    if (fd_ >= 0) ::close(fd_);
  }

  static result<data_file> open(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return failure(errno, "cannot open " + path.string());
    return data_file(fd, path);
  }

  result<std::uint64_t> size() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return failure(errno, "cannot stat " + path_.string());
    return static_cast<std::uint64_t>(st.st_size);
  }

  /// Reads up to `n` bytes at `offset` into `out`: the number read (fewer at
  /// the end of the file), or -1 with errno set when nothing could be read.
  std::int64_t read(char* out, std::uint64_t n, std::uint64_t offset) const {
    std::uint64_t done = 0;
    while (done < n) {
      const ssize_t got = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return done > 0 ? static_cast<std::int64_t>(done) : -1;
      if (got == 0) break;
      done += static_cast<std::uint64_t>(got);
    }
    return static_cast<std::int64_t>(done);
  }

  static error failure(int code, const std::string& what) {
    return error{errc::io_error, what + ": " + std::generic_category().message(code)};
  }

 private:
  data_file(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::filesystem::path path_;
};

/// Reads the meta page found at `offset`; std::nullopt when the file ends
/// before it does.
inline result<std::optional<meta_page>> read_meta(const data_file& file, std::uint64_t offset) {
  std::array<char, meta_end> bytes{};
  const std::int64_t got = file.read(bytes.data(), meta_end, offset);
  if (got < 0) return data_file::failure(errno, "cannot read a meta page of data.mdb");
  if (static_cast<std::uint64_t>(got) < meta_end) return std::optional<meta_page>{};
  return std::optional<meta_page>{decode_meta(bytes)};
}

inline void add_fault(page_report& report, std::string what) {
  ++report.faults_total;
  if (report.faults.size() < max_faults_kept) report.faults.push_back(std::move(what));
}

}  // namespace varve::detail::lmdb_pages
