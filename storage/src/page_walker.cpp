#include "page_walker.hpp"

namespace varve::detail::lmdb_pages {

void page_walker::run() {
  walk(tree{"free-page table", meta_.free, key_order::integer, true, false});
  if (walkable(meta_.main, "main table"))
    walk(tree{"main table", meta_.main, order_of(meta_.main.flags), false, true});
  for (std::size_t i = 0; i < named_.size(); ++i)
    walk(named_[i]);
  account_free_pages();
  if (used_past_end_) {
    ++report_.faults_total;
    report_.faults.insert(report_.faults.begin(),
                          "data.mdb is " + str(report_.file_size) + " bytes, shorter than the " +
                              str(meta_.last_page + 1) + " pages its meta page counts: truncated");
    if (report_.faults.size() > max_faults_kept) report_.faults.pop_back();
  }
  if (report_.faults_total == 0) check_accounting();
}

void page_walker::missing(const std::string& where, std::uint64_t pgno) {
  if (pgno < file_pages_ && read_errno_ != 0) {
    fault(where + ": cannot be read: " + std::generic_category().message(read_errno_));
    return;
  }
  used_past_end_ = true;
  fault(where + ": lies past the end of data.mdb (" + str(report_.file_size) +
        " bytes): truncated");
}

bool page_walker::walkable(const table_record& t, const std::string& name) {
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

void page_walker::walk(const tree& t) {
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

void page_walker::check_page(const tree& t, const pending_page& p, std::uint64_t depth,
                             const char* page, tree_counts& seen, std::vector<pending_page>& next,
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
  if (lower < header_size || lower > upper || upper > page_size_ || (lower - header_size) % 2 != 0)
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
        return fault(n.name() + ": a key of " + str(key.size()) + " bytes in an integer-key table");
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

}  // namespace varve::detail::lmdb_pages
