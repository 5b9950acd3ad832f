// Reading a leaf page of the log in place (private to varve::storage).
//
// A log scan takes the records of each leaf page from the page itself: two
// cursor calls per page instead of one per record, and the next page's
// lines asked for while this one is read instead of one miss at a time.
// The page layout is LMDB 0.9.x's (page_format.hpp). The walk trusts nothing it reads: a page that
// is not a plain leaf, a node outside its page, a value held in overflow
// pages or a key that is not 8 bytes ends it, and the cursor reads on from
// there. What a node holds is checked by the scan like any value: its key
// is the next position of the gapless log, and its record's checksum.
#pragma once

#include <lmdb.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "page_format.hpp"
#include "varve/storage/event.hpp"

namespace varve::detail {

/// The size of the pages of `txn`'s environment when a value's page can be
/// found from the value's address and read (LMDB 0.9's layout), 0 when not. The map begins on a
/// page of the system, so LMDB's pages are aligned when they are the system's size (LMDB's
/// default); a page of that size lies wholly in the map.
inline std::size_t leaf_page_size(MDB_txn* txn) {
  if (!lmdb_pages::layout_known()) return 0;
  MDB_stat stat{};
  if (mdb_env_stat(mdb_txn_env(txn), &stat) != 0) return 0;
  const long system = ::sysconf(_SC_PAGESIZE);
  return system > 0 && stat.ms_psize == static_cast<unsigned long>(system) ? stat.ms_psize : 0;
}

/// The read-ahead of a walk over leaf pages: the page after the one the
/// walk is on, in the file, a few lines at each record (a log written in
/// order mostly lies in consecutive pages; asking for a whole page at once
/// would stall the walk until most of it came). The guess is made again
/// only while it keeps being right; a page not guessed is asked for whole
/// when the walk arrives.
class page_guess {
 public:
  /// `page_size` is leaf_page_size(txn) of the walk's transaction.
  page_guess(std::size_t page_size, bool forward)
      : size_(page_size >= lmdb_pages::min_page_size ? page_size : 0), forward_(forward) {}

  /// The walk arrives at the page that holds `value`.
  void arrive(const MDB_val& value) {
    if (size_ == 0) return;
    const char* data = static_cast<const char*>(value.mv_data);
    const char* page = data - reinterpret_cast<std::uintptr_t>(data) % size_;
    const bool guessed = page == next_;
    if (!guessed)
      for (std::size_t line = 0; line < size_; line += 64)
        __builtin_prefetch(page + line);
    next_ = forward_ ? page + size_ : page - size_;
    fetched_ = guessed || right_ ? 0 : size_;
    right_ = guessed;
  }

  /// The walk reads a record of `bytes` bytes: as many lines of the guessed
  /// page as the record takes of this one, node header included.
  void tick(std::size_t bytes) {
    for (std::size_t end = fetched_ + bytes + 64; fetched_ < end && fetched_ < size_;
         fetched_ += 64)
      __builtin_prefetch(next_ + fetched_);
  }

 private:
  std::size_t size_ = 0;
  bool forward_ = true;
  const char* next_ = nullptr;
  std::size_t fetched_ = 0;
  bool right_ = true;
};

/// The nodes of the leaf page that holds a value the cursor read. It has
/// none when the value does not lie in a plain leaf page (a value held in
/// overflow pages). Reading the page is safe whatever it holds: it is the
/// system page that holds the value.
class log_leaf {
 public:
  /// `page_size` is leaf_page_size(txn) of the value's transaction.
  log_leaf(std::size_t page_size, const MDB_val& value) {
    namespace pg = lmdb_pages;
    if (page_size < pg::min_page_size) return;
    const char* data = static_cast<const char*>(value.mv_data);
    page_ = data - reinterpret_cast<std::uintptr_t>(data) % page_size;
    size_ = page_size;
    const auto flags = pg::load<std::uint16_t>(page_ + 10);
    const auto lower = pg::load<std::uint16_t>(page_ + 12);
    upper_ = pg::load<std::uint16_t>(page_ + 14);
    if (flags != pg::p_leaf || lower < pg::header_size || lower > upper_ || upper_ > size_) return;
    count_ = (lower - pg::header_size) / 2;
    for (std::size_t i = 0; i < count_; ++i) {
      std::string_view bytes;
      global_position key = 0;
      if (node(i, key, bytes) && bytes.data() == data) {
        at_ = i;
        return;
      }
    }
    count_ = 0;
  }

  /// Moves to the next node (forward) or the previous one; false at the end
  /// of the page or at a node this walk does not read (the cursor's turn).
  bool step(bool forward, global_position& key, std::string_view& bytes) {
    if (forward ? at_ + 1 >= count_ : at_ == 0) return false;
    const std::size_t i = forward ? at_ + 1 : at_ - 1;
    if (!node(i, key, bytes)) return false;
    at_ = i;
    return true;
  }

 private:
  /// Node `i`'s key and value, when it is a node of the log as the writer
  /// writes them: an 8-byte key, the value in the page.
  bool node(std::size_t i, global_position& key, std::string_view& bytes) const {
    namespace pg = lmdb_pages;
    const std::size_t at = pg::load<std::uint16_t>(page_ + pg::header_size + 2 * i);
    if (at < upper_ || at + pg::node_header_size + sizeof key > size_) return false;
    const char* n = page_ + at;
    const auto lo = pg::load<std::uint16_t>(n);
    const auto hi = pg::load<std::uint16_t>(n + 2);
    const auto flags = pg::load<std::uint16_t>(n + 4);
    const auto key_size = pg::load<std::uint16_t>(n + 6);
    const std::size_t value_size = lo | static_cast<std::size_t>(hi) << 16;
    if (flags != 0 || key_size != sizeof key) return false;
    if (value_size > size_ - at - pg::node_header_size - sizeof key) return false;
    key = pg::load<global_position>(n + pg::node_header_size);
    bytes = {n + pg::node_header_size + sizeof key, value_size};
    return true;
  }

  const char* page_ = nullptr;
  std::size_t size_ = 0;
  std::size_t upper_ = 0;
  std::size_t count_ = 0;
  std::size_t at_ = 0;
};

}  // namespace varve::detail
