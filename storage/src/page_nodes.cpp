// Nodes, overflow runs and free lists of the page walk (page_walker.hpp).
#include "page_walker.hpp"

namespace varve::detail::lmdb_pages {

bool page_walker::in_order(const tree& t, const pending_page& p, const node_ref& n, bool at_leaves,
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

std::string page_walker::flags_fault(std::uint16_t flags, bool at_leaves, std::uint64_t depth,
                                     std::uint64_t tree_depth) {
  if (flags & (p_leaf2 | p_subp))
    return "flags " + hex(flags) + ": an unexpected sorted-duplicates page";
  const std::string at = "at depth " + str(depth) + " of " + str(tree_depth);
  if (flags == p_leaf) return "a leaf page " + at + ", where branch pages are";
  if (flags == p_branch) return "a branch page " + at + ", where leaf pages are";
  return "flags " + hex(flags) + " are not those of a " + (at_leaves ? "leaf" : "branch") + " page";
}

bool page_walker::check_branch_node(
    const node_ref& n, const char* node,
    std::vector<std::pair<std::uint64_t, std::string_view>>& children, std::string_view key) {
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

bool page_walker::check_leaf_node(const tree& t, const pending_page& p, const node_ref& n,
                                  const char* node, std::uint64_t key_end, std::string_view key,
                                  tree_counts& seen, std::vector<pending_run>& runs) {
  ++seen.entries;
  const std::uint64_t size =
      std::uint64_t{load<std::uint16_t>(node)} | std::uint64_t{load<std::uint16_t>(node + 2)} << 16;
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

bool page_walker::named_table(const tree& t, const node_ref& n, std::string_view key,
                              const char* data, std::uint64_t size) {
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

void page_walker::take_free_list(std::uint64_t txn_id, std::uint64_t listed_on,
                                 std::string_view value, const std::string& where) {
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

void page_walker::check_runs(const tree& t, std::vector<pending_run>& runs, tree_counts& seen) {
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
      return fault(where + ": counts " + str(pages) + " pages; its value of " + str(r.value_size) +
                   " bytes needs " + str(needed) + ", and the run must end by page " +
                   str(meta_.last_page));
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

void page_walker::read_free_list(const pending_run& r, const std::string& where) {
  std::string value(r.value_size, '\0');
  const std::int64_t got =
      file_.read(value.data(), value.size(), r.pgno * page_size_ + header_size);
  if (got < 0 || static_cast<std::uint64_t>(got) != value.size())
    return fault(where + ": cannot be read whole");
  take_free_list(*r.free_list_of, r.pgno, value, where);
}

void page_walker::account_free_pages() {
  for (const free_entry& e : free_) {
    auto where = [&] {
      return "page " + str(e.pgno) + ": listed free by transaction " + str(e.txn_id) + " on page " +
             str(e.listed_on) + " (free-page table)";
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

void page_walker::check_accounting() {
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

}  // namespace varve::detail::lmdb_pages
