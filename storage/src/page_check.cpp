// page_check: a structural check of the pages of data.mdb, read with pread.
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
#include "page_check.hpp"

#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

namespace varve::detail {

namespace {

// The layout of mdb.c (LMDB_0.9.24) on a 64-bit host.
static_assert(sizeof(std::size_t) == 8, "pgno_t and size_t fields are 64-bit here");
constexpr std::uint64_t header_size = 16;      // PAGEHDRSZ
constexpr std::uint64_t node_header_size = 8;  // NODESIZE
constexpr std::uint64_t table_size = 48;       // sizeof(MDB_db)
constexpr std::uint64_t meta_end = 152;        // PAGEHDRSZ + sizeof(MDB_meta)
constexpr std::uint64_t meta_magic_at = 16;
constexpr std::uint64_t meta_version_at = 20;
constexpr std::uint64_t meta_free_at = 40;
constexpr std::uint64_t meta_main_at = 88;
constexpr std::uint64_t meta_last_page_at = 136;
constexpr std::uint64_t meta_txnid_at = 144;
constexpr std::uint16_t p_branch = 0x01;
constexpr std::uint16_t p_leaf = 0x02;
constexpr std::uint16_t p_overflow = 0x04;
constexpr std::uint16_t p_meta = 0x08;
constexpr std::uint16_t p_leaf2 = 0x20;
constexpr std::uint16_t p_subp = 0x40;
constexpr std::uint16_t f_bigdata = 0x01;
constexpr std::uint16_t f_subdata = 0x02;
constexpr std::uint16_t f_dupdata = 0x04;
constexpr std::uint32_t lmdb_magic = 0xBEEFC0DE;
constexpr std::uint32_t lmdb_data_version = 1;
constexpr std::uint64_t no_page = ~std::uint64_t{0};  // P_INVALID
constexpr std::uint64_t meta_pages = 2;               // NUM_METAS
constexpr std::uint64_t max_depth = 32;               // CURSOR_STACK
constexpr std::uint64_t max_key_size = 511;           // MDB_MAXKEYSIZE
constexpr std::uint64_t min_page_size = 512;
constexpr std::uint64_t max_page_size = 0x8000;  // MAX_PAGESIZE
constexpr std::uint16_t known_table_flags =
    MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP;

constexpr std::size_t max_faults_kept = 1000;
// Pages at most this far apart are read with one pread, of at most max_read.
constexpr std::uint64_t max_gap_pages = 4;
constexpr std::uint64_t max_read = std::uint64_t{1} << 20;

template <class T>
T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string str(std::uint64_t n) {
  return std::to_string(n);
}

std::string hex(std::uint64_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), digits[n % 16]);
    n /= 16;
  } while (n != 0);
  return "0x" + out;
}

/// A table name as it can be printed: at most 64 bytes, \xNN for the rest.
std::string printable(std::string_view name) {
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
std::uint64_t overflow_run_pages(std::uint64_t size, std::uint64_t page_size) {
  return (header_size - 1 + size) / page_size + 1;
}

/// A table record (MDB_db).
struct table_record {
  std::uint32_t pad = 0;
  std::uint16_t flags = 0;
  tree_counts counts{};
  std::uint64_t root = no_page;
};

table_record decode_table(const char* p) {
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

meta_page decode_meta(const std::array<char, meta_end>& bytes) {
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

bool valid_page_size(std::uint64_t size) {
  return std::has_single_bit(size) && size >= min_page_size && size <= max_page_size;
}

/// Why LMDB would refuse meta page `slot`, or cannot work with it; empty
/// when it is sound.
std::string meta_fault(const meta_page& m, std::uint64_t slot) {
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

key_order order_of(std::uint16_t table_flags) {
  if (table_flags & MDB_REVERSEKEY) return key_order::unchecked;
  if (table_flags & MDB_INTEGERKEY) return key_order::integer;
  return key_order::bytes;
}

/// LMDB's order: native unsigned integers of one size for integer tables
/// (mdb_cmp_int/mdb_cmp_long), else bytewise with the shorter first on a
/// common prefix (mdb_cmp_memn).
int compare_keys(key_order order, std::string_view a, std::string_view b) {
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
result<std::optional<meta_page>> read_meta(const data_file& file, std::uint64_t offset) {
  std::array<char, meta_end> bytes{};
  const std::int64_t got = file.read(bytes.data(), meta_end, offset);
  if (got < 0) return data_file::failure(errno, "cannot read a meta page of data.mdb");
  if (static_cast<std::uint64_t>(got) < meta_end) return std::optional<meta_page>{};
  return std::optional<meta_page>{decode_meta(bytes)};
}

void add_fault(page_report& report, std::string what) {
  ++report.faults_total;
  if (report.faults.size() < max_faults_kept) report.faults.push_back(std::move(what));
}

/// One B-tree: its name for messages, its record, and how it is read.
struct tree {
  std::string name;
  table_record record;
  key_order order = key_order::bytes;
  bool is_free = false;  // the free table: values are free lists
  bool is_main = false;  // the main table: F_SUBDATA values are named tables
};

constexpr std::uint32_t no_bound = ~std::uint32_t{0};

/// A branch or leaf page to visit, with the range its parent gives its keys:
/// lower ≤ key < upper, indexes of the walk's bounds (no_bound: unbounded).
struct pending_page {
  std::uint64_t pgno = 0;
  std::uint64_t parent = 0;  // 0: the table's record
  std::uint32_t lower = no_bound;
  std::uint32_t upper = no_bound;
};

/// A node of a page, named in a fault.
struct node_ref {
  const tree& t;
  std::uint64_t pgno;
  std::uint64_t index;

  std::string name() const { return "page " + str(pgno) + " (" + t.name + "): node " + str(index); }
};

/// An overflow run to visit: the value of a leaf node.
struct pending_run {
  std::uint64_t pgno = 0;
  std::uint64_t value_size = 0;
  std::uint64_t leaf = 0;
  std::optional<std::uint64_t> free_list_of;  // the free table: the key (a txnid)
};

/// A page listed free, and where.
struct free_entry {
  std::uint64_t pgno = 0;
  std::uint64_t txn_id = 0;
  std::uint64_t listed_on = 0;  // the page holding the list
};

/// The walk over the trees of one snapshot.
class page_walker {
 public:
  page_walker(const data_file& file, const meta_page& meta, page_report& report)
      : file_(file), meta_(meta), report_(report) {
    page_size_ = meta.page_size();
    file_pages_ = report.file_size / page_size_;
    reached_.assign(std::min(meta.last_page + 1, file_pages_), false);
    for (std::uint64_t p = 0; p < meta_pages && p < reached_.size(); ++p)
      reached_[p] = true;
  }

  void run() {
    walk(tree{"free-page table", meta_.free, key_order::integer, true, false});
    if (walkable(meta_.main, "main table"))
      walk(tree{"main table", meta_.main, order_of(meta_.main.flags), false, true});
    for (std::size_t i = 0; i < named_.size(); ++i)
      walk(named_[i]);
    account_free_pages();
    if (used_past_end_) {
      ++report_.faults_total;
      report_.faults.insert(report_.faults.begin(), "data.mdb is " + str(report_.file_size) +
                                                        " bytes, shorter than the " +
                                                        str(meta_.last_page + 1) +
                                                        " pages its meta page counts: truncated");
      if (report_.faults.size() > max_faults_kept) report_.faults.pop_back();
    }
    if (report_.faults_total == 0) check_accounting();
  }

 private:
  void fault(std::string what) { add_fault(report_, std::move(what)); }

  static std::string page_name(const tree& t, std::uint64_t pgno) {
    return "page " + str(pgno) + " (" + t.name + ")";
  }

  bool in_range(std::uint64_t pgno) const { return pgno >= meta_pages && pgno <= meta_.last_page; }

  /// Marks `pgno` reached; false when it was already. Pages past the end of
  /// the file are not tracked (they are never read).
  bool reach(std::uint64_t pgno) {
    if (pgno >= reached_.size()) return true;
    if (reached_[pgno]) return false;
    reached_[pgno] = true;
    return true;
  }

  /// A page that could not be read: past the end of the file, or an I/O error.
  void missing(const std::string& where, std::uint64_t pgno) {
    if (pgno < file_pages_ && read_errno_ != 0) {
      fault(where + ": cannot be read: " + std::generic_category().message(read_errno_));
      return;
    }
    used_past_end_ = true;
    fault(where + ": lies past the end of data.mdb (" + str(report_.file_size) +
          " bytes): truncated");
  }

  /// False, with a fault, for a table Varve cannot have written.
  bool walkable(const table_record& t, const std::string& name) {
    if (t.flags & ~known_table_flags) {
      fault(name + ": unknown table flags " + hex(t.flags));
      return false;
    }
    if (t.flags & MDB_DUPSORT) {
      fault(name + ": unexpected sorted duplicates (MDB_DUPSORT), which Varve does not use");
      return false;
    }
    return true;
  }

  /// Reads the pages of `items` (sorted by pgno), pages close together with
  /// one pread, and hands each to `visit` (nullptr: it could not be read).
  template <class Item, class Visit>
  void read_pages(const std::vector<Item>& items, Visit&& visit) {
    std::size_t i = 0;
    while (i < items.size()) {
      const std::uint64_t first = items[i].pgno;
      if (first >= file_pages_) {
        visit(items[i], nullptr);
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j + 1 < items.size() && items[j + 1].pgno < file_pages_ &&
             items[j + 1].pgno - items[j].pgno <= max_gap_pages &&
             (items[j + 1].pgno - first + 1) * page_size_ <= max_read)
        ++j;
      const std::uint64_t bytes = (items[j].pgno - first + 1) * page_size_;
      buffer_.resize(bytes);
      const std::int64_t got = file_.read(buffer_.data(), bytes, first * page_size_);
      read_errno_ = got < 0 ? errno : 0;
      for (std::size_t k = i; k <= j; ++k) {
        const std::uint64_t at = (items[k].pgno - first) * page_size_;
        const bool whole = got >= 0 && at + page_size_ <= static_cast<std::uint64_t>(got);
        visit(items[k], whole ? buffer_.data() + at : nullptr);
      }
      i = j + 1;
    }
  }

  /// Walks one tree level by level, reading each level in page order.
  void walk(const tree& t) {
    const table_record& rec = t.record;
    const std::uint64_t faults_before = report_.faults_total;
    if (rec.root == no_page) {
      if (rec.counts != tree_counts{})
        fault(t.name + ": an empty tree whose record counts pages or entries");
      return;
    }
    if (rec.counts.depth == 0 || rec.counts.depth > max_depth)
      return fault(t.name + ": depth " + str(rec.counts.depth) + " (LMDB walks 1 to 32 levels)");
    if (!in_range(rec.root))
      return fault(t.name + ": root page " + str(rec.root) + " lies outside pages 2.." +
                   str(meta_.last_page));
    if (!reach(rec.root))
      return fault(page_name(t, rec.root) + ": the table's root is reached twice");
    tree_counts seen{};
    bounds_.clear();
    std::vector<pending_page> level{pending_page{rec.root, 0, no_bound, no_bound}};
    std::vector<pending_run> runs;
    for (std::uint64_t depth = 1; !level.empty(); ++depth) {
      std::sort(level.begin(), level.end(),
                [](const pending_page& a, const pending_page& b) { return a.pgno < b.pgno; });
      std::vector<pending_page> next;
      read_pages(level, [&](const pending_page& p, const char* page) {
        check_page(t, p, depth, page, seen, next, runs);
      });
      level = std::move(next);
    }
    check_runs(t, runs, seen);
    seen.depth = rec.counts.depth;  // checked level by level
    if (report_.faults_total != faults_before || seen == rec.counts) return;
    fault(t.name + ": its record counts " + str(rec.counts.branch_pages) + " branch, " +
          str(rec.counts.leaf_pages) + " leaf, " + str(rec.counts.overflow_pages) +
          " overflow pages and " + str(rec.counts.entries) + " entries; the tree has " +
          str(seen.branch_pages) + ", " + str(seen.leaf_pages) + ", " + str(seen.overflow_pages) +
          " and " + str(seen.entries));
  }

  /// Checks a branch or leaf page at `depth` (the root is 1) and queues what
  /// it points at.
  void check_page(const tree& t, const pending_page& p, std::uint64_t depth, const char* page,
                  tree_counts& seen, std::vector<pending_page>& next,
                  std::vector<pending_run>& runs) {
    if (page == nullptr) return missing(page_name(t, p.pgno), p.pgno);
    ++report_.pages_checked;
    auto where = [&] { return page_name(t, p.pgno); };
    const auto pgno = load<std::uint64_t>(page);
    if (pgno != p.pgno) return fault(where() + ": its page number field says " + str(pgno));
    const bool at_leaves = depth == t.record.counts.depth;
    const auto flags = load<std::uint16_t>(page + 10);
    if (flags != (at_leaves ? p_leaf : p_branch))
      return fault(where() + ": " + flags_fault(flags, at_leaves, depth, t.record.counts.depth));
    ++(at_leaves ? seen.leaf_pages : seen.branch_pages);
    const auto lower = load<std::uint16_t>(page + 12);
    const auto upper = load<std::uint16_t>(page + 14);
    if (lower < header_size || lower > upper || upper > page_size_ ||
        (lower - header_size) % 2 != 0)
      return fault(where() + ": free-space bounds lower " + str(lower) + ", upper " + str(upper) +
                   " do not fit a page of " + str(page_size_) + " bytes");
    const std::uint64_t nodes = (lower - header_size) / 2;
    const std::uint64_t fewest = at_leaves || t.is_free ? 1 : 2;
    if (nodes < fewest)
      return fault(where() + ": holds " + str(nodes) + " nodes, fewer than " + str(fewest));
    std::vector<std::pair<std::uint64_t, std::string_view>> children;
    std::string_view previous;
    bool ordered = true;
    for (std::uint64_t i = 0; i < nodes; ++i) {
      const auto at = load<std::uint16_t>(page + header_size + 2 * i);
      const node_ref n{t, p.pgno, i};
      if (at < upper || at % 2 != 0 || at + node_header_size > page_size_)
        return fault(n.name() + " at offset " + str(at) + " lies outside the node area " +
                     str(upper) + ".." + str(page_size_));
      const char* node = page + at;
      const auto key_size = load<std::uint16_t>(node + 6);
      const std::uint64_t key_end = at + node_header_size + key_size;
      if (key_size > max_key_size || key_end > page_size_)
        return fault(n.name() + ": a key of " + str(key_size) + " bytes at offset " + str(at) +
                     " does not fit");
      const std::string_view key(node + node_header_size, key_size);
      if (at_leaves ? !check_leaf_node(t, p, n, node, key_end, key, seen, runs)
                    : !check_branch_node(n, node, children, key))
        return;
      if (at_leaves || i > 0) {
        if (t.order == key_order::integer && key.size() != 8 && key.size() != 4)
          return fault(n.name() + ": a key of " + str(key.size()) +
                       " bytes in an integer-key table");
        if (ordered && t.order != key_order::unchecked)
          ordered = in_order(t, p, n, at_leaves, i, previous, key);
        previous = key;
      }
    }
    for (std::size_t i = 0; i < children.size(); ++i) {
      pending_page child{children[i].first, p.pgno, p.lower, p.upper};
      if (i > 0) child.lower = add_bound(children[i].second);
      if (i + 1 < children.size()) child.upper = add_bound(children[i + 1].second);
      next.push_back(child);
    }
  }

  /// Whether `key`, of node `i`, comes after the key before it and, on a
  /// leaf page, inside the range the parent gives the page; a fault if not.
  bool in_order(const tree& t, const pending_page& p, const node_ref& n, bool at_leaves,
                std::uint64_t i, std::string_view previous, std::string_view key) {
    const bool has_previous = at_leaves ? i > 0 : i > 1;
    if (has_previous && compare_keys(t.order, previous, key) >= 0) {
      fault(n.name() + ": its key is not above the one before it");
      return false;
    }
    if (at_leaves && ((p.lower != no_bound && compare_keys(t.order, key, bounds_[p.lower]) < 0) ||
                      (p.upper != no_bound && compare_keys(t.order, key, bounds_[p.upper]) >= 0))) {
      fault(n.name() + ": its key lies outside the range that parent page " + str(p.parent) +
            " gives this page");
      return false;
    }
    return true;
  }

  static std::string flags_fault(std::uint16_t flags, bool at_leaves, std::uint64_t depth,
                                 std::uint64_t tree_depth) {
    if (flags & (p_leaf2 | p_subp))
      return "flags " + hex(flags) + ": an unexpected sorted-duplicates page";
    const std::string at = "at depth " + str(depth) + " of " + str(tree_depth);
    if (flags == p_leaf) return "a leaf page " + at + ", where branch pages are";
    if (flags == p_branch) return "a branch page " + at + ", where leaf pages are";
    return "flags " + hex(flags) + " are not those of a " + (at_leaves ? "leaf" : "branch") +
           " page";
  }

  bool check_branch_node(const node_ref& n, const char* node,
                         std::vector<std::pair<std::uint64_t, std::string_view>>& children,
                         std::string_view key) {
    const std::uint64_t child = std::uint64_t{load<std::uint16_t>(node)} |
                                std::uint64_t{load<std::uint16_t>(node + 2)} << 16 |
                                std::uint64_t{load<std::uint16_t>(node + 4)} << 32;
    if (!in_range(child)) {
      fault(n.name() + " points at page " + str(child) + ", outside pages 2.." +
            str(meta_.last_page));
      return false;
    }
    if (!reach(child)) {
      fault(n.name() + " points at page " + str(child) +
            ", which is reached twice (a cycle, or a page shared with another node)");
      return false;
    }
    children.emplace_back(child, key);
    return true;
  }

  bool check_leaf_node(const tree& t, const pending_page& p, const node_ref& n, const char* node,
                       std::uint64_t key_end, std::string_view key, tree_counts& seen,
                       std::vector<pending_run>& runs) {
    ++seen.entries;
    const std::uint64_t size = std::uint64_t{load<std::uint16_t>(node)} |
                               std::uint64_t{load<std::uint16_t>(node + 2)} << 16;
    const auto flags = load<std::uint16_t>(node + 4);
    if (flags & ~(f_bigdata | f_subdata | f_dupdata)) {
      fault(n.name() + ": unknown node flags " + hex(flags));
      return false;
    }
    if (flags & f_dupdata) {
      fault(n.name() + ": unexpected sorted duplicates (F_DUPDATA), which Varve does not use");
      return false;
    }
    if ((flags & f_bigdata) && (flags & f_subdata)) {
      fault(n.name() + ": both an overflow value and a table record");
      return false;
    }
    const std::uint64_t on_page = flags & f_bigdata ? 8 : size;
    if (key_end + on_page > page_size_) {
      fault(n.name() + ": its value of " + str(on_page) + " bytes runs past the end of the page");
      return false;
    }
    const char* data = node + node_header_size + key.size();
    std::optional<std::uint64_t> txn_id;
    if (t.is_free) {
      if (key.size() != 8) {
        fault(n.name() + ": a free list keyed by " + str(key.size()) + " bytes, not a txnid");
        return false;
      }
      txn_id = load<std::uint64_t>(key.data());
    }
    if (flags & f_subdata) return named_table(t, n, key, data, size);
    if (flags & f_bigdata) {
      const auto first = load<std::uint64_t>(data);
      const std::uint64_t pages = overflow_run_pages(size, page_size_);
      if (!in_range(first) || pages > meta_.last_page + 1 - first) {
        fault(n.name() + ": its value of " + str(size) + " bytes would lie in pages " + str(first) +
              ".." + str(first + pages - 1) + ", outside pages 2.." + str(meta_.last_page));
        return false;
      }
      if (!reach(first)) {
        fault(n.name() + ": its overflow page " + str(first) + " is reached twice");
        return false;
      }
      runs.push_back(pending_run{first, size, p.pgno, txn_id});
      return true;
    }
    if (txn_id) take_free_list(*txn_id, p.pgno, std::string_view(data, size), n.name());
    return true;
  }

  /// A named table's record (F_SUBDATA) in the main table: walked after it.
  bool named_table(const tree& t, const node_ref& n, std::string_view key, const char* data,
                   std::uint64_t size) {
    if (!t.is_main) {
      fault(n.name() + ": a table record (F_SUBDATA) outside the main table");
      return false;
    }
    if (size != table_size) {
      fault(n.name() + ": a table record of " + str(size) + " bytes, not 48");
      return false;
    }
    const table_record rec = decode_table(data);
    const std::string name = "table '" + printable(key) + "'";
    if (walkable(rec, name)) named_.push_back(tree{name, rec, order_of(rec.flags)});
    return true;
  }

  /// A free list: count:u64 pgno[count]:u64, then unused room.
  void take_free_list(std::uint64_t txn_id, std::uint64_t listed_on, std::string_view value,
                      const std::string& where) {
    const std::string what = where + ": the free list of transaction " + str(txn_id);
    if (value.size() < 8 || value.size() % 8 != 0)
      return fault(what + " is " + str(value.size()) + " bytes, not a count and page numbers");
    const auto count = load<std::uint64_t>(value.data());
    if (count > value.size() / 8 - 1)
      return fault(what + " counts " + str(count) + " pages in room for " +
                   str(value.size() / 8 - 1));
    for (std::uint64_t i = 1; i <= count; ++i)
      free_.push_back(free_entry{load<std::uint64_t>(value.data() + 8 * i), txn_id, listed_on});
  }

  /// Checks the first page of every overflow run of a tree, and reads the
  /// free lists that live in overflow runs.
  void check_runs(const tree& t, std::vector<pending_run>& runs, tree_counts& seen) {
    std::sort(runs.begin(), runs.end(),
              [](const pending_run& a, const pending_run& b) { return a.pgno < b.pgno; });
    read_pages(runs, [&](const pending_run& r, const char* page) {
      const std::string where =
          page_name(t, r.pgno) + ", the overflow run of leaf page " + str(r.leaf);
      if (page == nullptr) return missing(where, r.pgno);
      const auto pgno = load<std::uint64_t>(page);
      if (pgno != r.pgno) return fault(where + ": its page number field says " + str(pgno));
      const auto flags = load<std::uint16_t>(page + 10);
      if (flags != p_overflow)
        return fault(where + ": flags " + hex(flags) + " are not an overflow page's");
      const std::uint64_t pages = load<std::uint32_t>(page + 12);
      const std::uint64_t needed = overflow_run_pages(r.value_size, page_size_);
      if (pages < needed || pages > meta_.last_page + 1 - r.pgno)
        return fault(where + ": counts " + str(pages) + " pages; its value of " +
                     str(r.value_size) + " bytes needs " + str(needed) +
                     ", and the run must end by page " + str(meta_.last_page));
      report_.pages_checked += pages;
      seen.overflow_pages += pages;
      for (std::uint64_t q = r.pgno + 1; q < r.pgno + pages; ++q) {
        if (!reach(q)) return fault(where + ": its page " + str(q) + " is reached twice");
      }
      if (r.pgno + pages > file_pages_) {
        used_past_end_ = true;
        return fault(where + ": its " + str(pages) + " pages run past the end of data.mdb (" +
                     str(report_.file_size) + " bytes): truncated");
      }
      if (r.free_list_of) read_free_list(r, where);
    });
  }

  void read_free_list(const pending_run& r, const std::string& where) {
    std::string value(r.value_size, '\0');
    const std::int64_t got =
        file_.read(value.data(), value.size(), r.pgno * page_size_ + header_size);
    if (got < 0 || static_cast<std::uint64_t>(got) != value.size())
      return fault(where + ": cannot be read whole");
    take_free_list(*r.free_list_of, r.pgno, value, where);
  }

  /// Every free page: inside the file's pages, and in no tree.
  void account_free_pages() {
    for (const free_entry& e : free_) {
      auto where = [&] {
        return "page " + str(e.pgno) + ": listed free by transaction " + str(e.txn_id) +
               " on page " + str(e.listed_on) + " (free-page table)";
      };
      if (!in_range(e.pgno)) {
        fault(where() + ", outside pages 2.." + str(meta_.last_page));
        continue;
      }
      ++report_.free_pages;
      if (e.pgno >= reached_.size()) {
        ++free_past_end_;
      } else if (!reach(e.pgno)) {
        fault(where() + ", and also in use or listed twice");
      }
    }
  }

  /// Pages in use + free pages + the meta pages = last_page + 1.
  void check_accounting() {
    std::uint64_t accounted = free_past_end_;
    std::optional<std::uint64_t> first_lost;
    for (std::uint64_t p = 0; p < reached_.size(); ++p) {
      if (reached_[p]) {
        ++accounted;
      } else if (!first_lost) {
        first_lost = p;
      }
    }
    const std::uint64_t pages = meta_.last_page + 1;
    if (accounted >= pages) return;
    if (!first_lost) first_lost = reached_.size();
    fault("page " + str(*first_lost) + ": neither in use nor free; " + str(pages - accounted) +
          " of the " + str(pages) +
          " pages are lost (leaked), and LMDB's compacting copy refuses such a store");
  }

  /// Keeps a separator key as a bound of the pages below it.
  std::uint32_t add_bound(std::string_view key) {
    bounds_.emplace_back(key);
    return static_cast<std::uint32_t>(bounds_.size() - 1);
  }

  const data_file& file_;
  const meta_page& meta_;
  page_report& report_;
  std::uint64_t page_size_ = 0;
  std::uint64_t file_pages_ = 0;
  std::vector<bool> reached_;
  std::vector<char> buffer_;
  int read_errno_ = 0;
  bool used_past_end_ = false;
  std::uint64_t free_past_end_ = 0;
  std::vector<tree> named_;
  std::vector<std::string> bounds_;  // the walked tree's separator keys
  std::vector<free_entry> free_;
};

/// Reads the two meta pages and picks the one to walk: the snapshot of
/// `txn_id` when given (read twice alike), else the one LMDB would open.
/// std::nullopt, with faults in `report`, when there is none to walk.
result<std::optional<meta_page>> pick_meta(const data_file& file, page_report& report,
                                           std::optional<std::uint64_t> txn_id) {
  auto first = read_meta(file, 0);
  if (!first) return std::move(first).err();
  if (!*first) {
    add_fault(report, "data.mdb is " + str(report.file_size) +
                          " bytes, too short to hold a meta page: truncated");
    return std::optional<meta_page>{};
  }
  std::array<std::optional<meta_page>, 2> metas{std::move(*first), std::nullopt};
  std::array<std::string, 2> faults{meta_fault(*metas[0], 0), {}};
  const std::uint64_t second_at = metas[0]->page_size();
  if (valid_page_size(second_at)) {
    auto second = read_meta(file, second_at);
    if (!second) return std::move(second).err();
    if (*second) {
      metas[1] = std::move(*second);
      faults[1] = meta_fault(*metas[1], 1);
    } else {
      faults[1] =
          "data.mdb is " + str(report.file_size) + " bytes, too short to hold it: truncated";
    }
  } else {
    faults[1] = "not found: meta page 0 gives no valid page size to find it";
  }
  for (std::uint64_t slot = 0; slot < 2; ++slot)
    if (!faults[slot].empty()) add_fault(report, "meta page " + str(slot) + ": " + faults[slot]);
  const bool sound[2] = {faults[0].empty(), faults[1].empty()};
  if (sound[0] && sound[1] && metas[0]->page_size() != metas[1]->page_size())
    add_fault(report, "meta page 1: page size " + str(metas[1]->page_size()) +
                          ", meta page 0 says " + str(metas[0]->page_size()));
  std::optional<std::uint64_t> chosen;
  if (txn_id) {
    for (std::uint64_t slot = 0; slot < 2; ++slot)
      if (sound[slot] && metas[slot]->txn_id == *txn_id) chosen = slot;
    if (!chosen) return error{errc::busy, "no meta page holds transaction " + str(*txn_id)};
    auto again = read_meta(file, *chosen == 0 ? 0 : second_at);
    if (!again) return std::move(again).err();
    if (!*again || (*again)->bytes != metas[*chosen]->bytes)
      return error{errc::busy, "the meta page of transaction " + str(*txn_id) + " changed"};
  } else if (sound[0] || sound[1]) {
    // mdb_env_pick_meta: the larger txnid, meta page 0 on a tie.
    chosen = !sound[1] || (sound[0] && metas[0]->txn_id >= metas[1]->txn_id) ? 0 : 1;
  }
  if (!chosen) return std::optional<meta_page>{};
  return std::move(metas[*chosen]);
}

result<page_report> check(const std::filesystem::path& path, std::optional<std::uint64_t> txn_id) {
  auto file = data_file::open(path);
  if (!file) return std::move(file).err();
  auto size = file->size();
  if (!size) return std::move(size).err();
  page_report report;
  report.file_size = *size;
  auto meta = pick_meta(*file, report, txn_id);
  if (!meta) return std::move(meta).err();
  if (!*meta) return report;
  const meta_page& m = **meta;
  report.txn_id = m.txn_id;
  report.page_size = m.page_size();
  report.last_page = m.last_page;
  report.main_table = m.main.counts;
  page_walker(*file, m, report).run();
  return report;
}

}  // namespace

result<page_report> check_pages(const std::filesystem::path& data_file) {
  return check(data_file, std::nullopt);
}

result<page_report> check_pages(const std::filesystem::path& data_file, std::uint64_t txn_id) {
  return check(data_file, txn_id);
}

}  // namespace varve::detail
