// The walk over the B-trees of one snapshot of data.mdb (private to
// varve::storage): page_walker.cpp walks trees and pages, page_nodes.cpp
// checks nodes, overflow runs and free lists. The format: page_format.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "page_format.hpp"

namespace varve::detail::lmdb_pages {

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

  void run();

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
  void missing(const std::string& where, std::uint64_t pgno);

  /// False, with a fault, for a table Varve cannot have written.
  bool walkable(const table_record& t, const std::string& name);

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
  void walk(const tree& t);

  /// Checks a branch or leaf page at `depth` (the root is 1) and queues what
  /// it points at.
  void check_page(const tree& t, const pending_page& p, std::uint64_t depth, const char* page,
                  tree_counts& seen, std::vector<pending_page>& next,
                  std::vector<pending_run>& runs);

  /// Whether `key`, of node `i`, comes after the key before it and, on a
  /// leaf page, inside the range the parent gives the page; a fault if not.
  bool in_order(const tree& t, const pending_page& p, const node_ref& n, bool at_leaves,
                std::uint64_t i, std::string_view previous, std::string_view key);

  static std::string flags_fault(std::uint16_t flags, bool at_leaves, std::uint64_t depth,
                                 std::uint64_t tree_depth);

  bool check_branch_node(const node_ref& n, const char* node,
                         std::vector<std::pair<std::uint64_t, std::string_view>>& children,
                         std::string_view key);

  bool check_leaf_node(const tree& t, const pending_page& p, const node_ref& n, const char* node,
                       std::uint64_t key_end, std::string_view key, tree_counts& seen,
                       std::vector<pending_run>& runs);

  /// A named table's record (F_SUBDATA) in the main table: walked after it.
  bool named_table(const tree& t, const node_ref& n, std::string_view key, const char* data,
                   std::uint64_t size);

  /// A free list: count:u64 pgno[count]:u64, then unused room.
  void take_free_list(std::uint64_t txn_id, std::uint64_t listed_on, std::string_view value,
                      const std::string& where);

  /// Checks the first page of every overflow run of a tree, and reads the
  /// free lists that live in overflow runs.
  void check_runs(const tree& t, std::vector<pending_run>& runs, tree_counts& seen);

  void read_free_list(const pending_run& r, const std::string& where);

  /// Every free page: inside the file's pages, and in no tree.
  void account_free_pages();

  /// Pages in use + free pages + the meta pages = last_page + 1.
  void check_accounting();

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

}  // namespace varve::detail::lmdb_pages
