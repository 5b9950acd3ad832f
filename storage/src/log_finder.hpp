// Finding records of the log by position, many at a time (private to
// varve::storage).
//
// A stream read or a query looks up positions scattered over the log: with
// mdb_get, each lookup descends the tree alone, and its misses (the leaf's
// header, the nodes its binary search probes, the record) come one after
// the other. log_finder descends the tree itself, in the read transaction's
// snapshot, for a group of positions at once: the branch pages (shared by
// the group, mostly cached) first, then every leaf's lines asked for
// together, then every record's. The log is gapless, so a leaf whose first
// key is k holds position p at node p - k: no binary search in the leaf.
//
// The page layout is LMDB 0.9.x's (page_format.hpp); with another LMDB, or
// pages not of the system's size, every lookup goes to mdb_get. Where the
// map begins comes from the page numbers of two pages LMDB itself read,
// which must agree and place two meta pages at the map's start; pages are
// bounded by the snapshot's last page (its meta page's) and the map. A page
// out of those bounds or of the wrong kind, a node outside its page, a key
// that is not 8 bytes or not the position sought sends that position to
// mdb_get: LMDB's answer, as the reads had before. Only for read-only
// transactions: a write transaction's own pages are not in the map.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "varve/storage/event.hpp"

namespace varve::detail {

class log_finder {
 public:
  /// A finder over the log table `events` of the read-only `txn`, whose
  /// main table is `main`. When the snapshot cannot be read this way (pages
  /// not of the system's size, a record of the table it cannot decode),
  /// every position goes to mdb_get. `checked_start` is where a finder of
  /// this environment found the map to begin, after checking it (nullptr:
  /// none yet): read, and set when it was not; whoever remaps the map
  /// resets it (under the store's map lock).
  log_finder(MDB_txn* txn, MDB_dbi main, MDB_dbi events, std::atomic<const char*>& checked_start);

  /// A finder whose lookups all go to mdb_get: for write transactions.
  log_finder(MDB_txn* txn, MDB_dbi events) : txn_(txn), events_(events) {}

  /// The records at `positions` (any order) into `out`, which has as many
  /// elements; views into the map, valid for the transaction. Returns 0, or
  /// LMDB's error for positions[failed] (MDB_NOTFOUND: not in the log;
  /// MDB_PAGE_NOTFOUND, MDB_CORRUPTED: a damaged tree), with out[0, failed)
  /// found: what a lookup one position at a time would have given before
  /// failing. After an error other than MDB_NOTFOUND, LMDB refuses the
  /// transaction's further reads.
  int find(std::span<const global_position> positions, std::span<std::string_view> out,
           std::size_t& failed) const;

  /// Whether lookups descend the tree here (false: all go to mdb_get).
  bool descends() const { return base_ != nullptr; }

  /// How many positions went to mdb_get so far (a page the finder did not
  /// read as it expected, or a position not in the log).
  std::size_t asked_lmdb() const { return asked_lmdb_; }

 private:
  /// A leaf page (not read yet: only prefetched) and the keys its parents
  /// give it: lo <= key < hi.
  struct leaf {
    const char* page = nullptr;
    global_position lo = 0, hi = 0;
  };

  const char* page(std::uint64_t pgno) const;
  leaf descend(global_position p) const;
  const char* node_in_leaf(const char* page, global_position p) const;
  bool value_of(const char* node, std::string_view& out) const;

  MDB_txn* txn_ = nullptr;
  MDB_dbi events_ = 0;
  const char* base_ = nullptr;  // page 0 in the map
  std::size_t page_size_ = 0;
  std::uint64_t last_page_ = 0;
  std::uint64_t root_ = 0;
  std::uint64_t depth_ = 0;  // of the log's tree; its last level holds the leaves
  mutable std::size_t asked_lmdb_ = 0;
};

}  // namespace varve::detail
