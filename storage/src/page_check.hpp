// A structural check of the pages of a store's data.mdb (private to
// varve::storage).
//
// LMDB trusts its pages: a branch or leaf page whose header or node offsets
// were damaged, or a file cut short, makes a walk through the memory map read
// outside the map, and the process dies with SIGSEGV or SIGBUS. check_pages
// reads the file with pread, never through a map, and walks every B-tree of
// one snapshot (the free-page table, the main table and every named table
// whose record sits in it), checking each page before it follows anything the
// page says. What it checks, and the on-disk grammar of LMDB 0.9.x it checks
// against, is written at the top of page_check.cpp.
//
// Thread safety: check_pages holds no state; call it from any thread. On a
// store that writers change meanwhile, check the snapshot of a read
// transaction held open during the check (the txn_id overload): LMDB does not
// reuse the pages of a live snapshot, so that snapshot's pages stay as they
// were while it is open.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "varve/storage/error.hpp"

namespace varve::detail {

/// The counts of one B-tree, as LMDB keeps them in its table record.
struct tree_counts {
  std::uint64_t depth = 0;
  std::uint64_t branch_pages = 0;
  std::uint64_t leaf_pages = 0;
  std::uint64_t overflow_pages = 0;
  std::uint64_t entries = 0;

  bool operator==(const tree_counts&) const = default;
};

/// What check_pages found.
struct page_report {
  std::uint64_t txn_id = 0;         ///< transaction that committed the meta page walked
  std::uint64_t page_size = 0;      ///< from the meta page
  std::uint64_t last_page = 0;      ///< the meta page's last page number
  std::uint64_t file_size = 0;      ///< of data.mdb, bytes
  std::uint64_t pages_checked = 0;  ///< pages of the trees: branch, leaf and overflow
  std::uint64_t free_pages = 0;     ///< pages the free-page table lists
  tree_counts main_table{};         ///< the main table's record in the meta page walked
  /// Every fault, in words, naming the page ("page 17 (table 'events'): ...");
  /// empty when the pages are sound. At most 1000 are kept; `faults_total`
  /// counts them all.
  std::vector<std::string> faults;
  std::uint64_t faults_total = 0;
};

/// Checks the snapshot LMDB would open: of the two meta pages, the valid one
/// with the larger transaction id. Damage is reported in the report's faults.
/// Errors: io_error only when the file cannot be opened or read at all.
result<page_report> check_pages(const std::filesystem::path& data_file);

/// Checks the snapshot committed by transaction `txn_id`: the one a read
/// transaction with that id (mdb_txn_id) sees, which the caller holds open
/// during the check. The meta page is read twice and must read alike.
/// Errors: busy when no meta page holds `txn_id` (writers have committed
/// twice since it began: begin a newer read transaction and call again);
/// io_error as above.
result<page_report> check_pages(const std::filesystem::path& data_file, std::uint64_t txn_id);

}  // namespace varve::detail
