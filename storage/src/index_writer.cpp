// The write side of the type, category and tag indexes: catching up with
// events an older build wrote, writing a transaction's entries (a recent
// entry, and the segments of each span the log passed), and checking append
// conditions (see indexes.hpp).
#include <algorithm>
#include <cerrno>
#include <string>
#include <unordered_map>
#include <vector>

#include "batch.hpp"
#include "record.hpp"

namespace varve::detail {

namespace {

result<std::uint64_t> last_index_id(batch_txn& b) {
  MDB_cursor* c = nullptr;
  if (int rc = b.txn.cursor_open(b.store.dbs.index_names, c); rc != 0)
    return lmdb::to_error(rc, "opening the index names");
  MDB_val k{}, v{};
  const int rc = b.txn.cursor_get(c, k, v, MDB_LAST);
  mdb_cursor_close(c);
  if (rc == MDB_NOTFOUND) return std::uint64_t{0};
  if (rc != 0) return lmdb::to_error(rc, "reading the index names");
  if (k.mv_size != 8) return error{errc::corruption, "an index name id has a bad size"};
  return bytes::get_native_u64(lmdb::to_view(k));
}

/// The id of index key `text`, created when new; `stored` tells whether it
/// was stored before this transaction.
result<std::uint64_t> key_id(batch_txn& b, const std::string& text, bool& stored) {
  writer_cache& cache = b.store.cache;
  stored = true;
  if (auto it = cache.index_ids.find(text); it != cache.index_ids.end()) return it->second;
  stored = false;
  if (auto it = b.new_index_ids.find(text); it != b.new_index_ids.end()) return it->second;
  MDB_val v{};
  int rc = b.txn.get(b.store.dbs.index_keys, text, v);
  if (rc == 0) {
    auto id = decode_u64_le(lmdb::to_view(v), "index key id");
    if (!id) return std::move(id).err();
    cache.index_ids.emplace(text, *id);
    stored = true;
    return *id;
  }
  if (rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading the index keys");
  if (b.next_index_id == 0) {
    if (cache.next_index_id != 0) {
      b.next_index_id = cache.next_index_id;
    } else {
      auto last = last_index_id(b);
      if (!last) return std::move(last).err();
      b.next_index_id = *last + 1;
    }
  }
  const std::uint64_t id = b.next_index_id++;
  bytes::u64_key key(id);
  if (rc = b.txn.put(b.store.dbs.index_keys, text, encode_u64_le(id), MDB_NOOVERWRITE); rc != 0)
    return lmdb::to_error(rc, "creating an index key");
  if (rc = b.txn.put(b.store.dbs.index_names, key.view(), text, MDB_APPEND); rc != 0)
    return lmdb::to_error(rc, "creating an index key");
  b.new_index_ids.emplace(text, id);
  return id;
}

/// Deletes `count` entries from the one cursor `c` stands on (each delete
/// leaves the cursor on the next). Returns LMDB's code.
int delete_entries(batch_txn& b, MDB_cursor* c, std::size_t count) {
  int rc = 0;
  for (std::size_t i = 0; i < count && rc == 0; ++i) {
    rc = b.txn.cursor_del(c);
    if (rc == 0 && i + 1 < count) {
      MDB_val k{}, v{};
      rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
    }
  }
  return rc;
}

/// Adds the postings of every recent entry to `out` (each entry's sorted
/// by key id then position; `runs` gets where each entry after the first
/// begins), and sets `oldest` to the position the first of them begins at
/// (unchanged when there is none). Errors: corruption (an entry that does
/// not decode, is keyed at or before segmented_through, or lists a
/// position outside its range: up to the next entry's first, the newest
/// up to indexed_through), and LMDB's.
result<void> read_recent(batch_txn& b, index::postings& out, global_position& oldest,
                         std::vector<std::size_t>& runs) {
  MDB_cursor* c = nullptr;
  if (int rc = b.txn.cursor_open(b.store.dbs.index_recent, c); rc != 0)
    return lmdb::to_error(rc, "opening the recent index");
  std::vector<global_position> firsts;
  std::vector<std::size_t> begins;  // where each entry's postings begin in `out`
  MDB_val k{}, v{};
  int rc = b.txn.cursor_get(c, k, v, MDB_FIRST);
  for (; rc == 0; rc = b.txn.cursor_get(c, k, v, MDB_NEXT)) {
    const global_position first = k.mv_size == 8 ? bytes::get_native_u64(lmdb::to_view(k)) : 0;
    begins.push_back(out.size());
    if (first <= b.segmented_through || first > b.indexed_through) {
      mdb_cursor_close(c);
      return index::damaged("the recent index has an entry at position " + std::to_string(first) +
                            ", outside the positions it covers: after meta 'segmented_through' (" +
                            std::to_string(b.segmented_through) + ") up to 'indexed_through' (" +
                            std::to_string(b.indexed_through) + ")");
    }
    if (!index::list_postings(lmdb::to_view(v), first, out)) {
      mdb_cursor_close(c);
      return index::damaged("the recent index entry at position " + std::to_string(first) +
                            " does not decode");
    }
    firsts.push_back(first);
  }
  mdb_cursor_close(c);
  if (rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading the recent index");
  if (firsts.empty()) return {};
  oldest = firsts.front();
  runs.insert(runs.end(), begins.begin() + 1, begins.end());
  // Each entry's range ends just before the next entry's first position.
  for (std::size_t e = 0; e < firsts.size(); ++e) {
    const bool newest = e + 1 == firsts.size();
    const std::size_t end = newest ? out.size() : begins[e + 1];
    const global_position last = newest ? b.indexed_through : firsts[e + 1] - 1;
    for (std::size_t i = begins[e]; i < end; ++i)
      if (out[i].second < firsts[e] || out[i].second > last)
        return index::damaged("the recent index entry at position " + std::to_string(firsts[e]) +
                              " lists position " + std::to_string(out[i].second) +
                              ", outside its range " + std::to_string(firsts[e]) + ".." +
                              std::to_string(last));
  }
  return {};
}

/// Up to this many recent entries are merged with a pass over them per key
/// rather than through a heap (merge_lists).
constexpr std::size_t few_parts = 8;

/// Recent entries to fold: the newest `entries` of them, the oldest
/// beginning at position `from`.
struct fold {
  global_position from = 0;
  std::size_t entries = 0;
};

/// The recent entries to fold when there are max_recent_entries of them:
/// the newest ones, each older one joining while it covers no more
/// positions than those newer than it together (at least two). Entries
/// then shrink from the oldest to the newest, and a posting is rewritten a
/// few times before its span is sealed, not once every max_recent_entries
/// transactions (a log of single-event transactions rewrote every entry of
/// a span about 256 times). Errors: corruption (a key that is not a
/// position, or out of order), and LMDB's.
result<fold> entries_to_fold(batch_txn& b) {
  MDB_cursor* c = nullptr;
  if (int rc = b.txn.cursor_open(b.store.dbs.index_recent, c); rc != 0)
    return lmdb::to_error(rc, "opening the recent index");
  MDB_val k{}, v{};
  std::size_t folded = 0;
  global_position from = b.indexed_through + 1;  // where the newest entry ends, + 1
  global_position together = 0;                  // positions the folded entries cover
  int rc = b.txn.cursor_get(c, k, v, MDB_LAST);
  for (; rc == 0; rc = b.txn.cursor_get(c, k, v, MDB_PREV)) {
    if (k.mv_size != 8) {
      mdb_cursor_close(c);
      return index::damaged("the recent index has a key of " + std::to_string(k.mv_size) +
                            " bytes, not a position");
    }
    const global_position first = bytes::get_native_u64(lmdb::to_view(k));
    if (first <= b.segmented_through || first >= from) {
      mdb_cursor_close(c);
      const std::string why =
          first <= b.segmented_through
              ? "at or before meta 'segmented_through' (" + std::to_string(b.segmented_through) +
                    "), which the segments cover"
          : from == b.indexed_through + 1
              ? "past meta 'indexed_through' (" + std::to_string(b.indexed_through) + ")"
              : "at or after position " + std::to_string(from) +
                    ", where the entry after it begins";
      return index::damaged("the recent index has an entry at position " + std::to_string(first) +
                            ", " + why);
    }
    if (folded >= 2 && from - first > together) break;
    together += from - first;
    from = first;
    ++folded;
  }
  mdb_cursor_close(c);
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading the recent index");
  return fold{from, folded};
}

/// Corruption when a posting of `added` comes before `first`, the first
/// position a new recent entry covers: meta's `indexed_through` is past
/// positions the index does not list.
result<void> check_after(const batch_txn& b, const index::postings& added, global_position first) {
  if (added.empty()) return {};
  global_position lowest = added.front().second;
  for (const auto& posting : added)
    lowest = std::min(lowest, posting.second);
  if (lowest < first)
    return index::damaged("meta 'indexed_through' (" + std::to_string(b.indexed_through) +
                          ") is past position " + std::to_string(lowest) +
                          ", which the index does not list");
  return {};
}

/// Merges the recent entries of fold `f` and this transaction's postings
/// `added` (positions after indexed_through) into `out`, one entry
/// beginning at `f.from`, and deletes the folded entries. The entries are
/// merged as stored (each key's gaps copied), not decoded and encoded
/// again. Errors: corruption (an entry that does not decode, or lists a
/// position outside its range: up to the next entry's first, the newest
/// up to indexed_through), and LMDB's.
result<void> fold_recent(batch_txn& b, const fold& f, const index::postings& added,
                         std::string& out) {
  std::vector<index::list_part> parts;
  parts.reserve(f.entries + 1);
  scoped_cursor recent;
  if (int rc = b.txn.cursor_open(b.store.dbs.index_recent, recent); rc != 0)
    return lmdb::to_error(rc, "opening the recent index");
  MDB_cursor* const c = recent.get();
  global_position from = f.from;
  MDB_val k{sizeof from, &from}, v{};
  int rc = b.txn.cursor_get(c, k, v, MDB_SET_KEY);
  while (rc == 0) {
    // Keys were checked by entries_to_fold: 8 bytes, ascending, up to
    // indexed_through.
    const global_position first = bytes::get_native_u64(lmdb::to_view(k));
    if (!parts.empty()) parts.back().last = first - 1;
    parts.push_back(index::list_part{lmdb::to_view(v), first, b.indexed_through});
    if (parts.size() == f.entries) break;
    rc = b.txn.cursor_get(c, k, v, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading the recent index");
  if (parts.size() != f.entries) return index::damaged("the recent index changed while folding it");
  // The entries are read in place and merged before any is deleted: a
  // delete may reuse the pages they are on.
  std::string own;
  if (!added.empty()) {
    if (auto after = check_after(b, added, b.indexed_through + 1); !after) return after;
    own = index::encode_lists(b.indexed_through + 1, added);
    parts.push_back(index::list_part{own, b.indexed_through + 1, b.indexed_to()});
  }
  if (std::size_t bad = 0; !index::merge_lists(parts, f.from, out, parts.size() <= few_parts, &bad))
    return index::damaged("the recent index entry at position " + std::to_string(parts[bad].first) +
                          " does not fold: it does not decode, or lists a position outside " +
                          std::to_string(parts[bad].first) + ".." +
                          std::to_string(parts[bad].last));
  k = MDB_val{sizeof from, &from};
  rc = b.txn.cursor_get(c, k, v, MDB_SET_KEY);
  if (rc == 0) rc = delete_entries(b, c, f.entries);
  if (rc != 0) return lmdb::to_error(rc, "folding the recent index");
  return {};
}

/// Replaces the segments of tier `from` in `into` (a span of the tier
/// above) by one segment of `into`.
result<void> merge_segments(batch_txn& b, std::uint8_t from, const index::span& into) {
  // The segments are read in place and merged before any is deleted: a
  // delete may reuse the pages they are on.
  std::vector<index::list_part> parts;
  MDB_cursor* c = nullptr;
  if (int rc = b.txn.cursor_open(b.store.dbs.index, c); rc != 0)
    return lmdb::to_error(rc, "opening the index");
  const std::string start = index::segment_key(index::span{from, into.first, index::segment_span});
  MDB_val k = lmdb::to_val(start), v{};
  int rc = b.txn.cursor_get(c, k, v, MDB_SET_RANGE);
  for (; rc == 0; rc = b.txn.cursor_get(c, k, v, MDB_NEXT)) {
    index::span s;
    if (!index::decode_segment_key(lmdb::to_view(k), s)) {
      mdb_cursor_close(c);
      return index::damaged("an index segment has a bad key");
    }
    if (s.tier != from || s.first > into.last()) break;
    parts.push_back(index::list_part{lmdb::to_view(v), s.first, s.last()});
  }
  if (rc != 0 && rc != MDB_NOTFOUND) {
    mdb_cursor_close(c);
    return lmdb::to_error(rc, "merging the index");
  }
  // Every span below has its segment (each event has a type key): a merge
  // over a missing one would hide the hole a reader reports.
  const global_position below = global_position{1} << index::tier_bits[from];
  bool whole = parts.size() == into.size / below;
  for (std::size_t i = 0; whole && i < parts.size(); ++i)
    whole = parts[i].first == into.first + i * below;
  if (!whole) {
    mdb_cursor_close(c);
    return index::damaged("the index lacks a segment of tier " + std::to_string(from) +
                          " in positions " + std::to_string(into.first) + ".." +
                          std::to_string(into.last()));
  }
  std::string merged;
  if (!index::merge_lists(parts, into.first, merged, true)) {
    mdb_cursor_close(c);
    return index::damaged("an index segment of tier " + std::to_string(from) + " in positions " +
                          std::to_string(into.first) + ".." + std::to_string(into.last()) +
                          " does not decode");
  }
  // Delete them, from the first.
  k = lmdb::to_val(start);
  rc = b.txn.cursor_get(c, k, v, MDB_SET_RANGE);
  if (rc == 0) rc = delete_entries(b, c, parts.size());
  mdb_cursor_close(c);
  if (rc != 0) return lmdb::to_error(rc, "merging the index");
  if (int put = b.txn.put(b.store.dbs.index, index::segment_key(into), merged); put != 0)
    return lmdb::to_error(put, "writing the index");
  return {};
}

/// Writes `lists` (key lists from s.first; empty: none) as the segment of
/// span `s` of the smallest tier, then merges the smaller tiers into the
/// larger at their span ends.
result<void> seal_span(batch_txn& b, const index::span& s, std::string_view lists) {
  // Tier 2 sorts last: each new span goes at the end of the table.
  if (!lists.empty())
    if (int rc = b.txn.put(b.store.dbs.index, index::segment_key(s), lists, MDB_APPEND); rc != 0)
      return lmdb::to_error(rc, "writing the index");
  // A span end of a larger tier: its spans of the tier below become one.
  for (int tier = index::tiers - 2; tier >= 0; --tier) {
    const global_position size = global_position{1} << index::tier_bits[tier];
    if (s.last() % size != 0) break;
    const index::span into{static_cast<std::uint8_t>(tier), s.last() - size + 1, size};
    if (auto merged = merge_segments(b, static_cast<std::uint8_t>(tier + 1), into); !merged)
      return merged;
  }
  return {};
}

/// Writes the segments of every whole span in (segmented_through, through]
/// from `sorted` (sorted by key id then position), and removes what it
/// wrote from `sorted`.
result<void> write_segments(batch_txn& b, index::postings& sorted, global_position through) {
  index::postings span_postings;
  for (global_position first = b.segmented_through + 1; first + index::segment_span - 1 <= through;
       first += index::segment_span) {
    const index::span s{index::tiers - 1, first, index::segment_span};
    span_postings.clear();
    for (const auto& posting : sorted)
      if (posting.second >= s.first && posting.second <= s.last()) span_postings.push_back(posting);
    const std::string lists =
        span_postings.empty() ? std::string{} : index::encode_lists(s.first, span_postings);
    if (auto sealed = seal_span(b, s, lists); !sealed) return sealed;
  }
  std::erase_if(sorted, [&](const auto& posting) { return posting.second <= through; });
  return {};
}

/// The common seal: the log passed the end of the one span after
/// segmented_through, and every recent entry lies in it (they end at
/// indexed_through, before the span's end). The segment is the recent
/// entries merged as stored (each key's gaps copied) with this
/// transaction's postings in the span, encoded once; `added` keeps the
/// postings after the span, and the recent entries are gone. Errors:
/// corruption (an entry keyed outside its range, or that does not decode
/// or leaves its range), and LMDB's.
result<void> seal_one_span(batch_txn& b, index::postings& added) {
  const index::span s{index::tiers - 1, b.segmented_through + 1, index::segment_span};
  if (auto after = check_after(b, added, b.indexed_through + 1); !after) return after;
  index::postings in_span, later;
  for (const auto& posting : added)
    (posting.second <= s.last() ? in_span : later).push_back(posting);
  std::vector<index::list_part> parts;
  scoped_cursor recent;
  if (int rc = b.txn.cursor_open(b.store.dbs.index_recent, recent); rc != 0)
    return lmdb::to_error(rc, "opening the recent index");
  MDB_cursor* const c = recent.get();
  MDB_val k{}, v{};
  int rc = b.txn.cursor_get(c, k, v, MDB_FIRST);
  for (; rc == 0; rc = b.txn.cursor_get(c, k, v, MDB_NEXT)) {
    const global_position first = k.mv_size == 8 ? bytes::get_native_u64(lmdb::to_view(k)) : 0;
    if (first <= b.segmented_through || first > b.indexed_through ||
        (!parts.empty() && first <= parts.back().first))
      return index::damaged("the recent index has an entry at position " + std::to_string(first) +
                            ", outside the positions it covers: after meta 'segmented_through' (" +
                            std::to_string(b.segmented_through) + ") up to 'indexed_through' (" +
                            std::to_string(b.indexed_through) + "), after the entry before it");
    if (!parts.empty()) parts.back().last = first - 1;
    parts.push_back(index::list_part{lmdb::to_view(v), first, b.indexed_through});
  }
  if (rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading the recent index");
  // The entries are read in place and merged before they are dropped: the
  // drop may reuse the pages they are on.
  std::string own, lists;
  if (!in_span.empty()) {
    own = index::encode_lists(b.indexed_through + 1, in_span);
    parts.push_back(index::list_part{own, b.indexed_through + 1, s.last()});
  }
  if (std::size_t bad = 0; !parts.empty() && !index::merge_lists(parts, s.first, lists,
                                                                 parts.size() <= few_parts, &bad)) {
    // Damage: read_recent names the entry and the position it lists.
    index::postings scratch;
    global_position oldest = 0;
    std::vector<std::size_t> runs;
    if (auto read = read_recent(b, scratch, oldest, runs); !read) return read;
    return index::damaged("the recent index entry at position " + std::to_string(parts[bad].first) +
                          " does not seal: it does not decode, or lists a position outside " +
                          std::to_string(parts[bad].first) + ".." +
                          std::to_string(parts[bad].last));
  }
  if (rc = b.txn.drop(b.store.dbs.index_recent, 0); rc != 0)
    return lmdb::to_error(rc, "emptying the recent index");
  if (auto sealed = seal_span(b, s, lists); !sealed) return sealed;
  added = std::move(later);
  return {};
}

/// The name of stream `id` as this transaction sees it.
result<std::string_view> stream_name(batch_txn& b, std::uint64_t id) {
  bytes::u64_key key(id);
  MDB_val v{};
  const int rc = b.txn.get(b.store.dbs.stream_ids, key.view(), v);
  if (rc == MDB_NOTFOUND)
    return error{errc::corruption, "stream id " + std::to_string(id) + " has no name"};
  if (rc != 0) return lmdb::to_error(rc, "reading stream ids");
  return lmdb::to_view(v);
}

}  // namespace

result<void> catch_up_index(batch_txn& b) {
  writer_cache& cache = b.store.cache;
  if (!cache.indexed_through) {
    MDB_val v{};
    const int rc = b.txn.get(b.store.dbs.meta, "indexed_through", v);
    if (rc == MDB_NOTFOUND) {
      cache.indexed_through = 0;
    } else if (rc != 0) {
      return lmdb::to_error(rc, "reading the index position");
    } else {
      auto at = decode_u64_le(lmdb::to_view(v), "meta 'indexed_through'");
      if (!at) return std::move(at).err();
      cache.indexed_through = *at;
    }
  }
  b.indexed_through = *cache.indexed_through;
  if (b.indexed_through > b.next_position - 1) {
    cache.indexed_through.reset();
    return index::damaged("meta 'indexed_through' (" + std::to_string(b.indexed_through) +
                          ") is past the log's last position (" +
                          std::to_string(b.next_position - 1) + ")");
  }
  {
    MDB_val v{};
    const int rc = b.txn.get(b.store.dbs.meta, "segmented_through", v);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading the index position");
    if (rc == 0) {
      auto at = decode_u64_le(lmdb::to_view(v), "meta 'segmented_through'");
      if (!at) return std::move(at).err();
      if (*at % index::segment_span != 0 || *at > b.indexed_through)
        return index::damaged("meta 'segmented_through' (" + std::to_string(*at) +
                              ") is not a whole span at or before 'indexed_through' (" +
                              std::to_string(b.indexed_through) + ")");
      b.segmented_through = *at;
    }
  }
  const global_position last = b.next_position - 1;
  b.caught_up_to = std::max(last, b.indexed_through);
  if (b.indexed_through >= last) return {};
  // Events the index does not list yet, oldest first.
  MDB_cursor* c = nullptr;
  if (int rc = b.txn.cursor_open(b.store.dbs.events, c); rc != 0)
    return lmdb::to_error(rc, "opening the log");
  global_position from = b.indexed_through + 1;
  MDB_val k{sizeof from, &from}, v{};
  int rc = b.txn.cursor_get(c, k, v, MDB_SET_KEY);
  std::unordered_map<std::uint64_t, std::string> names;
  event_view e;
  record::body body;
  std::uint64_t entries = 0;
  for (global_position pos = from; pos <= last; ++pos) {
    if (rc != 0) {
      mdb_cursor_close(c);
      if (rc == MDB_NOTFOUND)
        return error{errc::corruption, "event " + std::to_string(pos) + " is missing"};
      return lmdb::to_error(rc, "reading the log");
    }
    const std::string_view bytes = lmdb::to_view(v);
    if (record::decode_into(pos, bytes, e, body, false)) {
      mdb_cursor_close(c);
      return record::decode_record(pos, bytes, false).err();
    }
    auto it = names.find(e.stream_id);
    if (it == names.end()) {
      auto name = stream_name(b, e.stream_id);
      if (!name) {
        mdb_cursor_close(c);
        return std::move(name).err();
      }
      it = names.emplace(e.stream_id, std::string(*name)).first;
    }
    note_event(b, pos, it->second, e.type, e.tags);
    entries += 2 + e.tags.size();
    if (b.catch_up_limit != 0 && entries >= b.catch_up_limit) {
      b.caught_up_to = pos;  // the rest in the next transaction
      break;
    }
    if (pos < last) rc = b.txn.cursor_get(c, k, v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  b.wrote = true;  // the catch-up alone is worth a commit
  return {};
}

result<void> write_index(batch_txn& b) {
  const global_position last = b.indexed_to();
  if (b.pending_touched.empty() && b.indexed_through >= last) return {};
  // This transaction's postings, sorted by key id then position (each
  // key's list is in log order already).
  std::vector<std::pair<std::uint64_t, const std::vector<global_position>*>> keys;
  keys.reserve(b.pending_touched.size());
  std::size_t count = 0;
  for (auto* key : b.pending_touched) {
    std::uint64_t id = key->second.id;
    if (key->second.generation != b.store.cache.generation) {
      bool stored = false;
      auto found = key_id(b, key->first, stored);
      if (!found) return std::move(found).err();
      id = *found;
      // Only a stored id outlives this transaction (a new one is gone if it
      // aborts).
      if (stored) {
        key->second.id = id;
        key->second.generation = b.store.cache.generation;
      }
    }
    keys.emplace_back(id, &key->second.positions);
    count += key->second.positions.size();
  }
  std::sort(keys.begin(), keys.end());
  index::postings added;
  added.reserve(count);
  for (const auto& [id, positions] : keys)
    for (global_position p : *positions)
      added.emplace_back(id, p);
  const global_position segmented = last - last % index::segment_span;
  global_position recent_first = b.indexed_through + 1;
  const bool seal = segmented > b.segmented_through;
  MDB_stat recent{};
  if (int rc = mdb_stat(b.txn.raw(), b.store.dbs.index_recent, &recent); rc != 0)
    return lmdb::to_error(rc, "reading the recent index");
  std::string entry;  // the recent entry to write, when a fold merged it already
  if (!seal && recent.ms_entries >= index::max_recent_entries) {
    // Many recent entries (small transactions): the newest become one, so
    // that readers look a key up in a few.
    auto folding = entries_to_fold(b);
    if (!folding) return std::move(folding).err();
    auto folded = fold_recent(b, *folding, added, entry);
    if (!folded) return folded;
    recent_first = folding->from;
  } else if (seal && segmented - b.segmented_through == index::segment_span &&
             b.indexed_through < segmented) {
    if (auto sealed = seal_one_span(b, added); !sealed) return sealed;
  } else if (seal) {
    // The log passed more than one span end: the recent entries and this
    // transaction's postings become segments, up to the last whole span.
    // Each recent entry, and this transaction's, is sorted: merge them.
    index::postings all;
    std::vector<std::size_t> runs;
    if (auto read = read_recent(b, all, recent_first, runs); !read) return read;
    runs.push_back(all.size());
    all.insert(all.end(), added.begin(), added.end());
    // From the newest run back, so that the oldest (an entry folded
    // before, the largest by far) is merged once, last: each merge takes
    // one run into the sorted rest.
    for (std::size_t i = runs.size(); i-- > 0;) {
      const std::size_t begin = i == 0 ? 0 : runs[i - 1];
      std::inplace_merge(all.begin() + static_cast<std::ptrdiff_t>(begin),
                         all.begin() + static_cast<std::ptrdiff_t>(runs[i]), all.end());
    }
    // Entries of consecutive ranges list each (key, position) once: one
    // listed twice (entries that overlap) would be written as a zero gap.
    if (auto twice = std::adjacent_find(all.begin(), all.end()); twice != all.end())
      return index::damaged("the recent index lists position " + std::to_string(twice->second) +
                            " twice under one key");
    added = std::move(all);
    if (int rc = b.txn.drop(b.store.dbs.index_recent, 0); rc != 0)
      return lmdb::to_error(rc, "emptying the recent index");
    if (auto written = write_segments(b, added, segmented); !written) return written;
  }
  if (seal) {
    recent_first = segmented + 1;
    if (int rc = b.txn.put(b.store.dbs.meta, "segmented_through", encode_u64_le(segmented));
        rc != 0)
      return lmdb::to_error(rc, "writing the index position");
    b.segmented_through = segmented;
  }
  if (!added.empty() || !entry.empty()) {
    // Entries go after every stored one (an entry at or past recent_first
    // means meta's positions are behind the index).
    MDB_cursor* c = nullptr;
    if (int rc = b.txn.cursor_open(b.store.dbs.index_recent, c); rc != 0)
      return lmdb::to_error(rc, "opening the recent index");
    MDB_val lk{}, lv{};
    const int rc = b.txn.cursor_get(c, lk, lv, MDB_LAST);
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::to_error(rc, "reading the recent index");
    if (rc == 0 && (lk.mv_size != 8 || bytes::get_native_u64(lmdb::to_view(lk)) >= recent_first))
      return index::damaged("the recent index has an entry at or after position " +
                            std::to_string(recent_first) + ", which meta 'indexed_through' (" +
                            std::to_string(b.indexed_through) + ") does not cover");
    if (entry.empty()) {
      if (auto after = check_after(b, added, recent_first); !after) return after;
      entry = index::encode_lists(recent_first, added);
    }
    bytes::u64_key key(recent_first);
    if (int rc = b.txn.put(b.store.dbs.index_recent, key.view(), entry, MDB_APPEND); rc != 0)
      return lmdb::to_error(rc, "writing the recent index");
  }
  if (int rc = b.txn.put(b.store.dbs.meta, "indexed_through", encode_u64_le(last)); rc != 0)
    return lmdb::to_error(rc, "writing the index position");
  return {};
}

result<void> check_condition(batch_txn& b, const append_condition& c) {
  const query& q = c.fail_if_events_match;
  const global_position head = b.next_position - 1;
  const global_position after = c.after.value_or(0);
  if (after >= head) return {};
  const log_finder lookups(b.txn.raw(), b.store.dbs.events);  // this transaction's own pages
  const index::query_source src{
      b.txn.raw(),         &b.store.dbs, head,     b.indexed_through,
      b.segmented_through, &b.pending,   &lookups, &b.store.cache.index_ids};
  std::optional<error> conflict;
  event_view e;
  record::body body;
  auto scanned = index::scan_candidates(
      src, q, after + 1, direction::forward,
      [&](global_position pos, std::string_view bytes) -> result<bool> {
        if (record::decode_into(pos, bytes, e, body))
          return record::decode_record(pos, bytes).err();
        auto name = stream_name(b, e.stream_id);
        if (!name) return std::move(name).err();
        if (!q.matches(e, *name)) return true;
        conflict = error{errc::wrong_expected_version,
                         "append condition failed: the event at position " + std::to_string(pos) +
                             " (type '" + std::string(e.type) + "', " + stream_label(*name) +
                             ") matches the query, after position " + std::to_string(after)};
        return false;
      });
  if (!scanned) return scanned;
  if (conflict) return std::move(*conflict);
  return {};
}

}  // namespace varve::detail
