// Reading the type, category and tag indexes: chunks, and the candidates of
// a query merged from them in log order (see indexes.hpp).
#include "indexes.hpp"

#include "interpolation.hpp"

#include <algorithm>
#include <functional>
#include <optional>
#include <set>

#include "bytes.hpp"
#include "lmdb.hpp"
#include "utf8.hpp"

namespace varve::detail::index {

void key_text_into(char kind, std::string_view text, std::string& out) {
  out.assign(1, kind);
  if (1 + text.size() <= max_key_text) {
    out.append(text);
    return;
  }
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  static constexpr char digits[] = "0123456789abcdef";
  out.append(text.substr(0, 480));
  out.push_back('#');
  for (int shift = 60; shift >= 0; shift -= 4)
    out.push_back(digits[(h >> shift) & 0xF]);
}

span span_at(global_position segmented_through, global_position p) {
  for (std::uint8_t tier = 0; tier < tiers; ++tier) {
    const unsigned bits = tier_bits[tier];
    if (p <= (segmented_through >> bits << bits) || tier == tiers - 1)
      return span{tier, ((p - 1) >> bits << bits) + 1, global_position{1} << bits};
  }
  return {};  // not reached
}

std::string segment_key(const span& s) {
  std::string key(segment_key_size, '\0');
  key[0] = static_cast<char>(s.tier);
  bytes::put_be<std::uint64_t>(key.data() + 1, s.first);
  return key;
}

bool decode_segment_key(std::string_view key, span& s) {
  if (key.size() != segment_key_size || static_cast<std::uint8_t>(key[0]) >= tiers) return false;
  s.tier = static_cast<std::uint8_t>(key[0]);
  s.size = global_position{1} << tier_bits[s.tier];
  s.first = bytes::get_be<std::uint64_t>(key.data() + 1);
  return s.first % s.size == 1;
}

bool decode_positions(std::string_view value, global_position base, global_position limit,
                      std::vector<global_position>& out) {
  const char* in = value.data();
  const char* end = in + value.size();
  global_position p = base;
  for (bool first = true; in < end; first = false) {
    std::uint64_t delta = 0;
    in = bytes::get_varint(in, end, delta);
    if (!in || (delta == 0 && !first) || p + delta < p || p + delta > limit) return false;
    p += delta;
    out.push_back(p);
  }
  return !value.empty();
}

std::string encode_lists(global_position first, const postings& sorted) {
  // The keys and the size of their lists first: the value is then written
  // in place, in one allocation.
  std::size_t n = 0, list_bytes = 0;
  global_position prev = first;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i == 0 || sorted[i].first != sorted[i - 1].first) {
      ++n;
      prev = first;
    }
    list_bytes += bytes::varint_size(sorted[i].second - prev);
    prev = sorted[i].second;
  }
  const std::size_t ids = 4, offsets = 4 + n * 8, lists = 4 + n * 12 + 4;
  std::string out(lists + list_bytes, '\0');
  char* const base = out.data();
  char* w = base + lists;
  bytes::put_le<std::uint32_t>(base, static_cast<std::uint32_t>(n));
  prev = first;
  for (std::size_t i = 0, k = 0; i < sorted.size(); ++i) {
    if (i == 0 || sorted[i].first != sorted[i - 1].first) {
      bytes::put_le<std::uint64_t>(base + ids + k * 8, sorted[i].first);
      bytes::put_le<std::uint32_t>(base + offsets + k * 4,
                                   static_cast<std::uint32_t>(w - base - lists));
      ++k;
      prev = first;
    }
    w = bytes::put_varint(w, sorted[i].second - prev);
    prev = sorted[i].second;
  }
  bytes::put_le<std::uint32_t>(base + offsets + n * 4,
                               static_cast<std::uint32_t>(w - base - lists));
  return out;
}

namespace {

/// The parts of key lists; false when their sizes do not add up.
struct list_parts {
  std::size_t n = 0;
  const char* ids = nullptr;
  const char* offsets = nullptr;
  std::string_view lists;
  bool read(std::string_view entry) {
    if (entry.size() < 8) return false;
    n = bytes::get_le<std::uint32_t>(entry.data());
    if ((entry.size() - 8) / 12 < n) return false;
    ids = entry.data() + 4;
    offsets = ids + n * 8;
    lists = entry.substr(4 + n * 12 + 4);
    return bytes::get_le<std::uint32_t>(offsets) == 0 &&
           bytes::get_le<std::uint32_t>(offsets + n * 4) == lists.size();
  }
  std::uint64_t id(std::size_t i) const { return bytes::get_le<std::uint64_t>(ids + i * 8); }
  /// The list of key i; empty when its offsets are out of order.
  std::string_view list(std::size_t i) const {
    const std::uint32_t from = bytes::get_le<std::uint32_t>(offsets + i * 4);
    const std::uint32_t to = bytes::get_le<std::uint32_t>(offsets + (i + 1) * 4);
    if (from >= to || to > lists.size()) return {};
    return lists.substr(from, to - from);
  }
};

}  // namespace

error damaged(std::string what) {
  return error{errc::corruption, std::move(what) +
                                     "; the indexes are derived from the log: rebuild them "
                                     "(event_store::rebuild_indexes, varvectl rebuild-indexes)"};
}

bool lookup_list(std::string_view lists, global_position first, global_position limit,
                 std::uint64_t id, std::vector<global_position>& out) {
  list_parts r;
  if (!r.read(lists)) return false;
  const std::size_t lo =
      interpolated_lower_bound(0, r.n, id, [&](std::size_t i) { return r.id(i); });
  if (lo == r.n || r.id(lo) != id) return true;
  return decode_positions(r.list(lo), first, limit, out);
}

bool list_postings(std::string_view lists, global_position first, postings& out) {
  list_parts r;
  if (!r.read(lists)) return false;
  for (std::size_t i = 0; i < r.n; ++i) {
    const std::uint64_t id = r.id(i);
    if (i > 0 && id <= r.id(i - 1)) return false;
    const std::string_view list = r.list(i);
    const char* in = list.data();
    const char* end = in + list.size();
    if (in == end) return false;
    global_position p = first;
    for (bool head = true; in < end; head = false) {
      std::uint64_t delta = 0;
      in = bytes::get_varint(in, end, delta);
      if (!in || (delta == 0 && !head) || p + delta < p) return false;
      p += delta;
      out.emplace_back(id, p);
    }
  }
  return true;
}

bool each_list(std::string_view lists, global_position first, global_position limit,
               function_ref<void(std::uint64_t, const std::vector<global_position>&)> visit) {
  list_parts r;
  if (!r.read(lists)) return false;
  std::vector<global_position> positions;
  for (std::size_t i = 0; i < r.n; ++i) {
    positions.clear();
    if ((i > 0 && r.id(i) <= r.id(i - 1)) || !decode_positions(r.list(i), first, limit, positions))
      return false;
    visit(r.id(i), positions);
  }
  return true;
}

namespace {

/// Appends the list of key `k` of `r` (a part's lists, covering `part`) to
/// a merged list whose last position is `prev` (`head`: it has none yet):
/// its first position again, from `prev`, then its gaps as stored, after
/// checking them as decode_positions does. False when the list does not
/// decode, leaves the part's range, comes before `prev`, or the part's ids
/// are out of order.
bool append_list(const list_parts& r, std::size_t k, const list_part& part, bool head,
                 global_position& prev, std::string& lists) {
  if (k + 1 < r.n && r.id(k + 1) <= r.id(k)) return false;
  const std::string_view list = r.list(k);
  const char* p = list.data();
  const char* const end = p + list.size();
  std::uint64_t delta = 0;
  global_position pos = part.first;
  if (p == end || !(p = bytes::get_varint(p, end, delta)) || pos + delta < pos ||
      pos + delta > part.last)
    return false;
  pos += delta;
  if (!head && pos <= prev) return false;
  char buf[10];
  char* e = bytes::put_varint(buf, pos - prev);
  lists.append(buf, static_cast<std::size_t>(e - buf));
  const char* const gaps = p;
  while (p < end) {
    p = bytes::get_varint(p, end, delta);
    if (!p || delta == 0 || pos + delta < pos || pos + delta > part.last) return false;
    pos += delta;
  }
  lists.append(gaps, static_cast<std::size_t>(end - gaps));
  prev = pos;
  return true;
}

}  // namespace

bool merge_lists(const std::vector<list_part>& parts, global_position first, std::string& out,
                 bool shared_keys, std::size_t* failed) {
  auto refuse = [&](std::size_t part) {
    if (failed) *failed = part;
    return false;
  };
  std::vector<list_parts> in(parts.size());
  std::vector<std::size_t> at(parts.size(), 0);  // each part's next key
  std::size_t keys = 0, bytes_in = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (!in[i].read(parts[i].lists) || parts[i].first < first ||
        (i > 0 && parts[i].first <= parts[i - 1].last))
      return refuse(i);
    keys += in[i].n;
    bytes_in += in[i].lists.size();
  }
  // The ids and offsets are written once the number of distinct keys is
  // known: gather them apart, then assemble.
  std::vector<std::uint64_t> ids;
  std::vector<std::uint32_t> offsets;
  ids.reserve(keys);
  offsets.reserve(keys + 1);
  std::string lists;
  lists.reserve(bytes_in + bytes_in / 8);
  global_position prev = first;  // the last position written for the current key
  auto begin_key = [&](std::uint64_t id) {
    ids.push_back(id);
    offsets.push_back(static_cast<std::uint32_t>(lists.size()));
    prev = first;
  };
  if (shared_keys) {
    // Parts that share most keys (the segments of a span): each merged key
    // takes a pass over the parts to find the smallest next id, and one to
    // take its list from each part that has it, in log order.
    for (;;) {
      std::uint64_t id = 0;
      bool any = false;
      for (std::size_t i = 0; i < parts.size(); ++i)
        if (at[i] < in[i].n && (!any || in[i].id(at[i]) < id)) {
          id = in[i].id(at[i]);
          any = true;
        }
      if (!any) break;
      begin_key(id);
      bool head = true;
      for (std::size_t i = 0; i < parts.size(); ++i) {
        if (at[i] >= in[i].n || in[i].id(at[i]) != id) continue;
        if (!append_list(in[i], at[i]++, parts[i], head, prev, lists)) return refuse(i);
        head = false;
      }
    }
  } else {
    // Parts with few keys in common (recent entries, each a transaction's
    // keys): the parts' next keys in a heap, smallest id first and, for one
    // id, the parts in log order. A key costs log(parts), not parts.
    using next_key = std::pair<std::uint64_t, std::size_t>;  // (id, part)
    std::vector<next_key> heap;
    heap.reserve(parts.size());
    for (std::size_t i = 0; i < parts.size(); ++i)
      if (in[i].n > 0) heap.emplace_back(in[i].id(0), i);
    const std::greater<next_key> later;
    std::make_heap(heap.begin(), heap.end(), later);
    while (!heap.empty()) {
      const std::uint64_t id = heap.front().first;
      begin_key(id);
      bool head = true;
      while (!heap.empty() && heap.front().first == id) {
        std::pop_heap(heap.begin(), heap.end(), later);
        const std::size_t i = heap.back().second;
        if (!append_list(in[i], at[i]++, parts[i], head, prev, lists)) return refuse(i);
        head = false;
        if (at[i] < in[i].n) {
          heap.back().first = in[i].id(at[i]);
          std::push_heap(heap.begin(), heap.end(), later);
        } else {
          heap.pop_back();
        }
      }
    }
  }
  offsets.push_back(static_cast<std::uint32_t>(lists.size()));
  const std::size_t n = ids.size();
  out.assign(4 + n * 12 + 4, '\0');
  bytes::put_le<std::uint32_t>(out.data(), static_cast<std::uint32_t>(n));
  for (std::size_t k = 0; k < n; ++k)
    bytes::put_le<std::uint64_t>(out.data() + 4 + k * 8, ids[k]);
  for (std::size_t k = 0; k <= n; ++k)
    bytes::put_le<std::uint32_t>(out.data() + 4 + n * 8 + k * 4, offsets[k]);
  out.append(lists);
  return true;
}

result<void> validate(const query& q) {
  auto bad = [](std::string what) { return error{errc::invalid_argument, "query: " + what}; };
  if (q.items.size() > max_query_items)
    return bad("has " + std::to_string(q.items.size()) + " items (at most " +
               std::to_string(max_query_items) + ")");
  std::size_t terms = 0;
  for (const query_item& item : q.items)
    terms += item.types.size() + item.tags.size() + item.categories.size();
  if (terms > max_query_terms)
    return bad("has " + std::to_string(terms) + " types, tags and categories (at most " +
               std::to_string(max_query_terms) + ")");
  for (std::size_t i = 0; i < q.items.size(); ++i) {
    const query_item& item = q.items[i];
    const std::string at = "item " + std::to_string(i) + " ";
    for (const std::string& t : item.types)
      if (t.empty() || t.size() > max_type_bytes) return bad(at + "has an empty or over-long type");
    for (const std::string& t : item.tags) {
      if (t.empty() || t.size() > max_tag_bytes)
        return bad(at + "has a tag of " + std::to_string(t.size()) + " bytes (1.." +
                   std::to_string(max_tag_bytes) + ")");
      if (!utf8::valid(t)) return bad(at + "has a tag that is not UTF-8");
    }
    for (const std::string& c : item.categories)
      if (c.empty() || c.size() > 511 || c.find('-') != std::string::npos)
        return bad(at + "has a category that is empty, over 511 bytes, or contains '-'");
  }
  return {};
}

namespace {

result<global_position> meta_position(MDB_txn* txn, const tables& dbs, const char* name) {
  MDB_val k = lmdb::to_val(name), v{};
  const int rc = mdb_get(txn, dbs.meta, &k, &v);
  if (rc == MDB_NOTFOUND) return global_position{0};
  if (rc != 0) return lmdb::to_error(rc, std::string("reading meta '") + name + "'");
  if (v.mv_size != 8)
    return error{errc::corruption, std::string("meta '") + name + "' has a bad size"};
  return bytes::get_le<std::uint64_t>(static_cast<const char*>(v.mv_data));
}

}  // namespace

result<coverage> read_coverage(MDB_txn* txn, const tables& dbs) {
  auto indexed = meta_position(txn, dbs, "indexed_through");
  if (!indexed) return std::move(indexed).err();
  auto segmented = meta_position(txn, dbs, "segmented_through");
  if (!segmented) return std::move(segmented).err();
  if (*segmented % segment_span != 0 || *segmented > *indexed)
    return error{errc::corruption, "meta 'segmented_through' (" + std::to_string(*segmented) +
                                       ") is not a whole span at or before 'indexed_through' (" +
                                       std::to_string(*indexed) + ")"};
  return coverage{*indexed, *segmented};
}

namespace {

/// Positions in log order (forward: ascending from `from`; backward:
/// descending from `from`).
class position_stream {
 public:
  virtual ~position_stream() = default;
  /// The next position, 0 at the end.
  virtual result<global_position> next() = 0;
};

/// Every position in [lo, hi].
class range_stream final : public position_stream {
 public:
  range_stream(global_position lo, global_position hi, global_position from, direction dir)
      : lo_(lo), hi_(hi), dir_(dir) {
    at_ = dir == direction::forward ? std::max(lo, from) : std::min(hi, from);
  }
  result<global_position> next() override {
    if (lo_ > hi_ || at_ < lo_ || at_ > hi_) return global_position{0};
    const global_position p = at_;
    if (dir_ == direction::forward)
      ++at_;
    else
      --at_;
    return p;
  }

 private:
  global_position lo_, hi_, at_;
  direction dir_;
};

/// The positions of a sorted vector.
class vector_stream final : public position_stream {
 public:
  vector_stream(const std::vector<global_position>& v, global_position from, direction dir)
      : v_(v), dir_(dir) {
    if (dir == direction::forward)
      at_ = static_cast<std::size_t>(std::lower_bound(v.begin(), v.end(), from) - v.begin());
    else
      at_ = static_cast<std::size_t>(std::upper_bound(v.begin(), v.end(), from) - v.begin());
  }
  result<global_position> next() override {
    if (dir_ == direction::forward) return at_ < v_.size() ? v_[at_++] : global_position{0};
    return at_ > 0 ? v_[--at_] : global_position{0};
  }

 private:
  const std::vector<global_position>& v_;
  std::size_t at_;
  direction dir_;
};

/// Positions of one key read a batch at a time (a segment, a recent
/// entry), handed out in log order from `from` and up to `last`.
class batched_stream : public position_stream {
 public:
  batched_stream(global_position from, global_position last, direction dir)
      : from_(from), last_(last), dir_(dir) {}

  result<global_position> next() final {
    const bool forward = dir_ == direction::forward;
    for (;;) {
      while (at_ < batch_.size()) {
        const global_position p = forward ? batch_[at_] : batch_[batch_.size() - 1 - at_];
        ++at_;
        if (forward ? p < from_ : p > from_) continue;
        if (p > last_) {
          if (forward) return global_position{0};
          continue;
        }
        return p;
      }
      batch_.clear();
      at_ = 0;
      auto more = load(batch_);
      if (!more) return std::move(more).err();
      if (!*more) return global_position{0};
    }
  }

 protected:
  /// Appends the next batch (ascending) to `out`; false at the end.
  virtual result<bool> load(std::vector<global_position>& out) = 0;

  global_position from_, last_;
  direction dir_;

 private:
  std::vector<global_position> batch_;
  std::size_t at_ = 0;
};

/// The segments of one key: one lookup per span, from the span that holds
/// `from` in log order.
class segment_stream final : public batched_stream {
 public:
  segment_stream(MDB_txn* txn, MDB_dbi dbi, std::uint64_t id, global_position segmented_through,
                 global_position from, global_position last, direction dir)
      : batched_stream(from, last, dir),
        txn_(txn),
        dbi_(dbi),
        id_(id),
        through_(segmented_through) {
    const global_position p =
        dir == direction::forward ? std::max<global_position>(from, 1) : std::min(from, through_);
    if (p >= 1 && p <= through_) {
      span_ = span_at(through_, p);
      more_ = true;
    }
  }

 private:
  result<bool> load(std::vector<global_position>& out) override {
    while (more_) {
      const span s = span_;
      if (dir_ == direction::forward) {
        more_ = s.last() < through_;
        if (more_) span_ = span_at(through_, s.last() + 1);
      } else {
        more_ = s.first > 1;
        if (more_) span_ = span_at(through_, s.first - 1);
      }
      const std::string key = segment_key(s);
      MDB_val k = lmdb::to_val(key), v{};
      const int rc = mdb_get(txn_, dbi_, &k, &v);
      // Every sealed span has a segment (each event has a type key): one
      // missing is damage, or a build of another layout sealing it.
      if (rc == MDB_NOTFOUND)
        return damaged("the index has no segment for positions " + std::to_string(s.first) +
                       " to " + std::to_string(s.last()));
      if (rc != 0) return lmdb::to_error(rc, "reading the index");
      if (!lookup_list(lmdb::to_view(v), s.first, s.last(), id_, out))
        return damaged("the index segment at position " + std::to_string(s.first) +
                       " does not decode");
      if (!out.empty()) return true;  // else the key has nothing in this span
    }
    return false;
  }

  MDB_txn* txn_;
  MDB_dbi dbi_;
  std::uint64_t id_;
  global_position through_;
  span span_;
  bool more_ = false;
};

/// The recent entries (after the segments) of one key, from the entry that
/// holds `from` in log order.
class recent_stream final : public batched_stream {
 public:
  recent_stream(MDB_txn* txn, MDB_dbi dbi, std::uint64_t id, global_position from,
                global_position last, direction dir)
      : batched_stream(from, last, dir), txn_(txn), dbi_(dbi), id_(id) {}
  ~recent_stream() override {
    if (cursor_) mdb_cursor_close(cursor_);
  }

 private:
  result<bool> load(std::vector<global_position>& out) override {
    if (dir_ == direction::backward) return load_backward(out);
    for (;;) {
      // The entry to read: the one looked ahead at, or the next one from
      // the cursor.
      global_position first = 0;
      std::string_view value;
      if (ahead_) {
        first = ahead_->first;
        value = ahead_->second;
        ahead_.reset();
      } else {
        if (ended_) return false;
        MDB_val k{}, v{};
        const int rc = step(k, v);
        if (rc == MDB_NOTFOUND) return false;
        if (rc != 0) return lmdb::to_error(rc, "reading the recent index");
        if (k.mv_size != 8) return damaged("a recent index entry has a bad key");
        first = bytes::get_native_u64(lmdb::to_view(k));
        value = lmdb::to_view(v);
      }
      // The entries cover consecutive ranges, each up to the next one's
      // first position, the newest up to the indexed position: an entry
      // that lists a position outside its range would hand a reader an
      // event twice, or out of log order. The next entry is read before
      // this one's positions are handed out, so that each entry is bounded
      // by its own range whatever order its reader visits in.
      global_position limit = last_;
      MDB_val k{}, v{};
      const int rc = mdb_cursor_get(cursor_, &k, &v, MDB_NEXT);
      if (rc == MDB_NOTFOUND) {
        ended_ = true;
      } else if (rc != 0) {
        return lmdb::to_error(rc, "reading the recent index");
      } else {
        if (k.mv_size != 8) return damaged("a recent index entry has a bad key");
        const global_position next = bytes::get_native_u64(lmdb::to_view(k));
        if (next <= first)
          return damaged("the recent index entry at position " + std::to_string(next) +
                         " follows the one at " + std::to_string(first));
        ahead_.emplace(next, lmdb::to_view(v));
        limit = next - 1;
      }
      if (auto listed = list_in_range(value, first, limit, out); !listed)
        return std::move(listed).err();
      if (!out.empty()) return true;
    }
  }

  /// Backward: every entry from the one that holds `from_` back to the
  /// oldest, in one batch. An older entry that lists a position of a newer
  /// one's range is found before any position is handed out (a newer
  /// entry's positions handed out first would skip the one the older entry
  /// holds); the recent entries are at most 16 or so, and a key's positions
  /// in them cover less than a span and a transaction.
  result<bool> load_backward(std::vector<global_position>& out) {
    if (ended_) return false;
    ended_ = true;
    std::vector<std::size_t> begins;  // where each entry's positions begin, newest first
    global_position limit = last_;
    for (;;) {
      MDB_val k{}, v{};
      const int rc = step(k, v);
      if (rc == MDB_NOTFOUND) break;
      if (rc != 0) return lmdb::to_error(rc, "reading the recent index");
      if (k.mv_size != 8) return damaged("a recent index entry has a bad key");
      const global_position first = bytes::get_native_u64(lmdb::to_view(k));
      if (first == 0 || first > limit)
        return damaged("the recent index entry at position " + std::to_string(first) +
                       " begins past position " + std::to_string(limit) +
                       ", where the entry after it ends");
      begins.push_back(out.size());
      if (auto listed = list_in_range(lmdb::to_view(v), first, limit, out); !listed)
        return std::move(listed).err();
      limit = first - 1;
    }
    // Each entry's positions are ascending; the entries were read newest
    // first: reverse the order of the entries, not of their positions.
    std::vector<global_position> ascending;
    ascending.reserve(out.size());
    for (std::size_t e = begins.size(); e-- > 0;) {
      const std::size_t end = e + 1 < begins.size() ? begins[e + 1] : out.size();
      ascending.insert(ascending.end(), out.begin() + static_cast<std::ptrdiff_t>(begins[e]),
                       out.begin() + static_cast<std::ptrdiff_t>(end));
    }
    out = std::move(ascending);
    return !out.empty();
  }

  /// The key's positions in the entry `value` that begins at `first`, all
  /// at most `limit`, appended to `out`; corruption otherwise.
  result<void> list_in_range(std::string_view value, global_position first, global_position limit,
                             std::vector<global_position>& out) const {
    if (!lookup_list(value, first, limit, id_, out))
      return damaged("the recent index entry at position " + std::to_string(first) +
                     " does not decode, or lists a position outside its range " +
                     std::to_string(first) + ".." + std::to_string(limit));
    return {};
  }

  /// Moves the cursor to the next entry in the read's direction: at first,
  /// the entry that holds `from_`. Returns LMDB's code.
  int step(MDB_val& k, MDB_val& v) {
    if (cursor_)
      return mdb_cursor_get(cursor_, &k, &v, dir_ == direction::forward ? MDB_NEXT : MDB_PREV);
    if (int o = mdb_cursor_open(txn_, dbi_, &cursor_); o != 0) return o;
    // The entry that holds `from` is the last one that begins at or before
    // it (the first one, going forward, when none does).
    global_position seek = std::max<global_position>(from_, 1);
    k = MDB_val{sizeof seek, &seek};
    int rc = mdb_cursor_get(cursor_, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && bytes::get_native_u64(lmdb::to_view(k)) == seek) return 0;
    if (rc != 0 && rc != MDB_NOTFOUND) return rc;
    const int prc = mdb_cursor_get(cursor_, &k, &v, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
    if (prc != MDB_NOTFOUND) return prc;
    if (dir_ == direction::backward) return MDB_NOTFOUND;
    k = MDB_val{sizeof seek, &seek};
    return mdb_cursor_get(cursor_, &k, &v, MDB_SET_RANGE);
  }

  MDB_txn* txn_;
  MDB_dbi dbi_;
  std::uint64_t id_;
  MDB_cursor* cursor_ = nullptr;
  /// Forward: the entry after the one read last (its first position and
  /// value, a view valid for the transaction), read ahead. `ended_`: no
  /// entry is left to read (forward, none after the one ahead; backward,
  /// all were read in one batch).
  std::optional<std::pair<global_position, std::string_view>> ahead_;
  bool ended_ = false;
};

result<std::optional<std::uint64_t>> key_id(MDB_txn* txn, const tables& dbs,
                                            std::string_view text) {
  MDB_val k = lmdb::to_val(text), v{};
  const int rc = mdb_get(txn, dbs.index_keys, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::uint64_t>{};
  if (rc != 0) return lmdb::to_error(rc, "reading the index keys");
  if (v.mv_size != 8) return error{errc::corruption, "an index key id has a bad size"};
  return std::optional<std::uint64_t>{
      bytes::get_le<std::uint64_t>(static_cast<const char*>(v.mv_data))};
}

/// The streams of one index key: its stored chunks and the writer's pending
/// positions.
result<void> add_key(const query_source& src, char kind, std::string_view text,
                     global_position from, direction dir,
                     std::vector<std::unique_ptr<position_stream>>& out) {
  const std::string k = key_text(kind, text);
  std::optional<std::uint64_t> id;
  if (src.known_ids)
    if (auto known = src.known_ids->find(k); known != src.known_ids->end()) id = known->second;
  if (!id) {
    auto stored = key_id(src.txn, *src.dbs, k);
    if (!stored) return std::move(stored).err();
    id = *stored;
  }
  if (id) {
    if (src.segmented_through > 0)
      out.push_back(std::make_unique<segment_stream>(
          src.txn, src.dbs->index, *id, src.segmented_through, from, src.segmented_through, dir));
    if (src.indexed_through > src.segmented_through)
      out.push_back(std::make_unique<recent_stream>(src.txn, src.dbs->index_recent, *id, from,
                                                    src.indexed_through, dir));
  }
  if (src.pending) {
    if (auto it = src.pending->find(std::string_view(k)); it != src.pending->end())
      out.push_back(std::make_unique<vector_stream>(it->second.positions, from, dir));
  }
  return {};
}

}  // namespace

result<void> scan_candidates(const query_source& src, const query& q, global_position from,
                             direction dir,
                             function_ref<result<bool>(global_position, std::string_view)> visit) {
  if (q.items.empty() || src.head == 0) return {};
  std::vector<std::unique_ptr<position_stream>> streams;
  bool everything = false;
  // One stream per distinct key: items that share a key (a query of many
  // items naming one tag) would otherwise each merge the same list again.
  std::set<std::pair<char, std::string_view>> keys;
  auto add = [&](char kind, std::string_view text) -> result<void> {
    if (!keys.emplace(kind, text).second) return {};
    return add_key(src, kind, text, from, dir, streams);
  };
  for (const query_item& item : q.items) {
    if (!item.tags.empty()) {
      // Every tag must be there: one tag's list is a superset of the matches.
      if (auto added = add(kind_tag, item.tags.front()); !added) return added;
    } else if (!item.types.empty()) {
      for (const std::string& t : item.types)
        if (auto added = add(kind_type, t); !added) return added;
    } else if (!item.categories.empty()) {
      for (const std::string& c : item.categories)
        if (auto added = add(kind_category, c); !added) return added;
    } else {
      everything = true;
    }
  }
  if (everything) {
    streams.clear();
    streams.push_back(std::make_unique<range_stream>(1, src.head, from, dir));
  } else if (!src.pending && src.indexed_through < src.head) {
    // Events an older build wrote after the indexed position: from the log.
    streams.push_back(std::make_unique<range_stream>(src.indexed_through + 1, src.head, from, dir));
  }
  // Merge in log order without duplicates; positions past the head are not
  // visited (forward they end a stream, backward they are skipped).
  const bool forward = dir == direction::forward;
  std::vector<global_position> heads(streams.size());
  auto advance = [&](std::size_t i) -> result<void> {
    do {
      auto p = streams[i]->next();
      if (!p) return std::move(p).err();
      heads[i] = *p;
      if (forward && heads[i] > src.head) heads[i] = 0;
    } while (heads[i] > src.head);
    return {};
  };
  for (std::size_t i = 0; i < streams.size(); ++i)
    if (auto a = advance(i); !a) return a;
  // The candidates' records are looked up a group at a time (4, 8, then up
  // to 32: a query with a small limit reads few more than it visits), and
  // visited in order. The visitor sees what a lookup one candidate at a
  // time would have shown it before an error: the candidates before a
  // failed lookup, before a failed read of the index.
  std::vector<global_position> group;
  std::vector<std::string_view> records;
  std::size_t group_size = src.finder->descends() ? 4 : 1;
  auto visit_group = [&]() -> result<bool> {
    records.resize(group.size());
    std::size_t failed = 0;
    const int rc = src.finder->find(group, records, failed);
    if (rc == 0) failed = group.size();
    for (std::size_t i = 0; i < failed; ++i) {
      auto go_on = visit(group[i], records[i]);
      if (!go_on || !*go_on) return go_on;
    }
    if (rc == MDB_NOTFOUND)
      return error{errc::corruption, "the index lists position " + std::to_string(group[failed]) +
                                         ", which is not in the log"};
    if (rc != 0) return lmdb::to_error(rc, "reading the log");
    group.clear();
    group_size = std::min<std::size_t>(group_size * 2, 32);
    return true;
  };
  for (;;) {
    global_position best = 0;
    for (global_position h : heads)
      if (h != 0 && (best == 0 || (forward ? h < best : h > best))) best = h;
    result<void> advanced;
    if (best != 0) {
      for (std::size_t i = 0; i < streams.size() && advanced; ++i)
        if (heads[i] == best) advanced = advance(i);
      if (advanced) {
        group.push_back(best);
        if (group.size() < group_size) continue;
      }
    }
    if (!group.empty()) {
      auto go_on = visit_group();
      if (!go_on) return std::move(go_on).err();
      if (!*go_on) return {};
    }
    if (!advanced) return advanced;
    if (best == 0) return {};
  }
}

}  // namespace varve::detail::index
