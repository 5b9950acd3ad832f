// verify's check of the type, category and tag indexes against the log
// (private to varve::storage).
#pragma once

#include <algorithm>
#include <functional>
#include <string>
#include <unordered_set>

#include "indexes.hpp"
#include "store_impl.hpp"

namespace varve::detail {

/// Collects what the indexes must list while verify walks the log, then
/// compares the stored index with it.
class index_checker {
 public:
  using fault_fn = std::function<void(std::string)>;
  index_checker(const read_state& st, MDB_txn* txn, fault_fn fault);

  /// The indexed position could not be read: the check is skipped.
  bool usable() const { return usable_; }
  /// An event of the log (decoded, authenticated or shredded).
  void event(const event_view& e);
  /// A record that does not read (verify reports it): the index may list it.
  void unreadable(global_position position) {
    unreadable_.insert(position);
    head_ = std::max(head_, position);
  }
  /// Compares the stored index with the log; returns the entries checked.
  std::uint64_t finish();

 private:
  const read_state& st_;
  MDB_txn* txn_;
  fault_fn fault_;
  bool usable_ = true;
  global_position indexed_through_ = 0;
  global_position segmented_through_ = 0;
  global_position head_ = 0;  // the last position of the log seen
  index::key_positions expected_;
  std::unordered_set<global_position> unreadable_;
};

}  // namespace varve::detail
