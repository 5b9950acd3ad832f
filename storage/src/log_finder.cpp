// log_finder: lookups of log positions by descending LMDB's pages, a group
// at a time (see log_finder.hpp; the layout is in page_format.hpp).
#include "log_finder.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <limits>

#include "interpolation.hpp"
#include "page_format.hpp"

namespace varve::detail {

namespace pg = lmdb_pages;

namespace {

inline constexpr global_position no_key = std::numeric_limits<global_position>::max();

std::size_t count_of(const char* page) {
  return (pg::load<std::uint16_t>(page + 12) - pg::header_size) / 2;
}

}  // namespace

namespace {

/// The first page of the map, as the page that holds `value` (a value LMDB
/// read from the map) places it by its page number; nullptr when that
/// number is past `last`.
const char* map_start(const MDB_val& value, std::size_t page_size, std::uint64_t last) {
  const char* data = static_cast<const char*>(value.mv_data);
  const char* home = data - reinterpret_cast<std::uintptr_t>(data) % page_size;
  const auto pgno = pg::load<std::uint64_t>(home);
  if (pgno > last || reinterpret_cast<std::uintptr_t>(home) < pgno * page_size) return nullptr;
  return home - pgno * page_size;
}

}  // namespace

log_finder::log_finder(MDB_txn* txn, MDB_dbi main, MDB_dbi events,
                       std::atomic<const char*>& checked_start)
    : txn_(txn), events_(events) {
  MDB_env* env = mdb_txn_env(txn);
  MDB_stat stat{};
  MDB_envinfo info{};
  const long system = ::sysconf(_SC_PAGESIZE);
  if (!pg::layout_known() || mdb_env_stat(env, &stat) != 0 || mdb_env_info(env, &info) != 0 ||
      system <= 0 || stat.ms_psize != static_cast<unsigned long>(system))
    return;
  const std::size_t size = stat.ms_psize;
  const std::uint64_t mapped = info.me_mapsize / size;  // pages this process maps
  if (mapped <= pg::meta_pages) return;
  // The log table's record (MDB_db) in the main table: its root.
  static constexpr std::string_view name = "events";
  MDB_val k{name.size(), const_cast<char*>(name.data())}, record{};
  if (mdb_get(txn, main, &k, &record) != 0 || record.mv_size != pg::table_size) return;
  const pg::table_record table = pg::decode_table(static_cast<const char*>(record.mv_data));
  // Where the map begins, from the page numbers of two pages LMDB read (the
  // record's and the log's first record's): they must agree, the first two
  // pages there must be mapped (msync checks the range) and be meta pages.
  // A start checked so for an earlier transaction of this map
  // (`checked_start`) needs only the record's page to agree with it.
  const char* base = map_start(record, size, mapped - 1);
  if (!base) return;
  if (base != checked_start.load(std::memory_order_acquire)) {
    MDB_cursor* c = nullptr;
    if (mdb_cursor_open(txn, events, &c) != 0) return;
    MDB_val first_key{}, first{};
    const int rc = mdb_cursor_get(c, &first_key, &first, MDB_FIRST);
    mdb_cursor_close(c);
    if (rc != 0 || base != map_start(first, size, mapped - 1) ||
        ::msync(const_cast<char*>(base), pg::meta_pages * size, MS_ASYNC) != 0)
      return;
    for (std::uint64_t m = 0; m < pg::meta_pages; ++m) {
      const char* meta = base + m * size;
      if ((pg::load<std::uint16_t>(meta + 10) & pg::p_meta) == 0 ||
          pg::load<std::uint32_t>(meta + pg::meta_magic_at) != pg::lmdb_magic)
        return;
    }
    checked_start.store(base, std::memory_order_release);
  }
  // The snapshot's last page, from its meta page (or, when a later commit
  // wrote over it, the smaller of the two: pages past it go to mdb_get).
  std::uint64_t last = mapped - 1, smallest = last;
  bool found = false;
  for (std::uint64_t m = 0; m < pg::meta_pages; ++m) {
    const char* meta = base + m * size;
    const auto meta_last = pg::load<std::uint64_t>(meta + pg::meta_last_page_at);
    smallest = std::min(smallest, meta_last);
    if (pg::load<std::uint64_t>(meta + pg::meta_txnid_at) == mdb_txn_id(txn)) {
      last = std::min(last, meta_last);
      found = true;
    }
  }
  if (!found) last = smallest;
  if (table.root == pg::no_page || table.root < pg::meta_pages || table.root > last ||
      table.counts.depth == 0 || table.counts.depth > pg::max_depth)
    return;
  depth_ = table.counts.depth;
  page_size_ = size;
  last_page_ = last;
  root_ = table.root;
  base_ = base;
}

const char* log_finder::page(std::uint64_t pgno) const {
  if (pgno < pg::meta_pages || pgno > last_page_) return nullptr;
  return base_ + pgno * page_size_;
}

log_finder::leaf log_finder::descend(global_position p) const {
  leaf out{page(root_), 0, no_key};
  for (std::uint64_t level = 0; out.page && level < depth_; ++level) {
    // The tree's last level is its leaves: the leaf is returned unread
    // (node_in_leaf checks it), so that the lookups of a group wait for
    // their leaves together, not one after the other.
    if (level + 1 == depth_) return out;
    const char* at = out.page;
    const auto flags = pg::load<std::uint16_t>(at + 10);
    const auto lower = pg::load<std::uint16_t>(at + 12);
    const auto upper = pg::load<std::uint16_t>(at + 14);
    if (flags != pg::p_branch || lower < pg::header_size + 2 || lower > upper || upper > page_size_)
      return {};
    const std::size_t n = count_of(at);
    // The key of node i (i >= 1), or no_key when it cannot be read.
    auto key = [&](std::size_t i) {
      const std::size_t o = pg::load<std::uint16_t>(at + pg::header_size + 2 * i);
      if (o < upper || o + pg::node_header_size + 8 > page_size_ ||
          pg::load<std::uint16_t>(at + o + 6) != 8)
        return no_key;
      return pg::load<global_position>(at + o + pg::node_header_size);
    };
    // The last node whose key is at most p (node 0 has no key; an
    // unreadable key reads as no_key, past every position). Keys out of
    // order (a damaged page) only lead to a wrong page, which node_in_leaf
    // refuses.
    const std::size_t chosen = interpolated_lower_bound(1, n, p + 1, key) - 1;
    if (chosen != 0) out.lo = key(chosen);
    if (chosen + 1 < n) out.hi = std::min(out.hi, key(chosen + 1));
    if (out.lo == no_key) return {};
    const std::size_t o = pg::load<std::uint16_t>(at + pg::header_size + 2 * chosen);
    if (o < upper || o + pg::node_header_size > page_size_) return {};
    const char* node = at + o;
    const std::uint64_t child = pg::load<std::uint16_t>(node) |
                                std::uint64_t{pg::load<std::uint16_t>(node + 2)} << 16 |
                                std::uint64_t{pg::load<std::uint16_t>(node + 4)} << 32;
    out.page = page(child);
    if (out.page) {
      __builtin_prefetch(out.page);
      __builtin_prefetch(out.page + page_size_ - 64);
    }
  }
  return {};
}

const char* log_finder::node_in_leaf(const char* at, global_position p) const {
  const auto lower = pg::load<std::uint16_t>(at + 12);
  const auto upper = pg::load<std::uint16_t>(at + 14);
  if (pg::load<std::uint16_t>(at + 10) != pg::p_leaf || lower <= pg::header_size || lower > upper ||
      upper > page_size_)
    return nullptr;
  const std::size_t n = count_of(at);
  auto node = [&](std::size_t i) -> const char* {
    const std::size_t o = pg::load<std::uint16_t>(at + pg::header_size + 2 * i);
    if (o < upper || o + pg::node_header_size + 8 > page_size_ ||
        pg::load<std::uint16_t>(at + o + 6) != 8)
      return nullptr;
    return at + o;
  };
  auto key = [](const char* nd) { return pg::load<global_position>(nd + pg::node_header_size); };
  const char* first = node(0);
  if (!first) return nullptr;
  // The log is gapless: position p is node p - (first key), when the page
  // holds it.
  const global_position k0 = key(first);
  if (p < k0 || p - k0 >= n) return nullptr;
  const char* nd = node(p - k0);
  return nd && key(nd) == p ? nd : nullptr;
}

bool log_finder::value_of(const char* node, std::string_view& out) const {
  const std::size_t size =
      pg::load<std::uint16_t>(node) | std::size_t{pg::load<std::uint16_t>(node + 2)} << 16;
  const auto flags = pg::load<std::uint16_t>(node + 4);
  const char* at = node + pg::node_header_size + 8;
  if (flags == 0) {
    const char* page_end = node - reinterpret_cast<std::uintptr_t>(node) % page_size_ + page_size_;
    if (size > static_cast<std::size_t>(page_end - at)) return false;
    out = {at, size};
    return true;
  }
  if (flags != pg::f_bigdata) return false;
  // A value in an overflow run: the run's first page number in the node.
  const auto first = pg::load<std::uint64_t>(at);
  const char* run = page(first);
  if (!run || pg::load<std::uint16_t>(run + 10) != pg::p_overflow) return false;
  const std::uint64_t pages = pg::load<std::uint32_t>(run + 12);
  if (pages < pg::overflow_run_pages(size, page_size_) || first + pages - 1 > last_page_)
    return false;
  out = {run + pg::header_size, size};
  return true;
}

int log_finder::find(std::span<const global_position> positions, std::span<std::string_view> out,
                     std::size_t& failed) const {
  // Positions the finder does not resolve: mdb_get.
  auto get = [&](std::size_t i) {
    global_position p = positions[i];
    ++asked_lmdb_;
    MDB_val k{sizeof p, &p}, v{};
    const int rc = mdb_get(txn_, events_, &k, &v);
    if (rc == 0)
      out[i] = {static_cast<const char*>(v.mv_data), v.mv_size};
    else
      failed = i;
    return rc;
  };
  if (!base_) {
    for (std::size_t i = 0; i < positions.size(); ++i)
      if (int rc = get(i); rc != 0) return rc;
    return 0;
  }
  // A group at a time: every leaf (the pages above it are shared), then
  // every node, then every value, each step's lines asked for before the
  // next step reads them.
  constexpr std::size_t group = 16;
  const char* pages[group];
  const char* nodes[group];
  leaf last;
  for (std::size_t start = 0; start < positions.size(); start += group) {
    const std::size_t n = std::min(group, positions.size() - start);
    for (std::size_t j = 0; j < n; ++j) {
      const global_position p = positions[start + j];
      if (!last.page || p < last.lo || p >= last.hi) last = descend(p);
      pages[j] = last.page;
    }
    for (std::size_t j = 0; j < n; ++j) {
      nodes[j] = pages[j] ? node_in_leaf(pages[j], positions[start + j]) : nullptr;
      if (nodes[j]) {
        __builtin_prefetch(nodes[j]);
        __builtin_prefetch(nodes[j] + 64);
        __builtin_prefetch(nodes[j] + 128);
      }
    }
    for (std::size_t j = 0; j < n; ++j) {
      if (nodes[j] && value_of(nodes[j], out[start + j])) continue;
      if (int rc = get(start + j); rc != 0) return rc;
    }
  }
  return 0;
}

}  // namespace varve::detail
