// Reading the type, category and tag indexes: chunks, and the candidates of
// a query merged from them in log order (see indexes.hpp).
#include "indexes.hpp"

#include <algorithm>

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

std::string chunk_key(std::uint64_t id, global_position first) {
  std::string key(16, '\0');
  bytes::put_be<std::uint64_t>(key.data(), id);
  bytes::put_be<std::uint64_t>(key.data() + 8, first);
  return key;
}

bool decode_chunk(std::string_view key, std::string_view value, std::uint64_t& id,
                  std::vector<global_position>& out) {
  if (key.size() != 16) return false;
  id = bytes::get_be<std::uint64_t>(key.data());
  global_position p = bytes::get_be<std::uint64_t>(key.data() + 8);
  if (p == 0) return false;
  out.push_back(p);
  const char* in = value.data();
  const char* end = in + value.size();
  for (std::size_t n = 1; in < end; ++n) {
    std::uint64_t delta = 0;
    in = bytes::get_varint(in, end, delta);
    if (!in || delta == 0 || n == chunk_positions || p + delta < p) return false;
    p += delta;
    out.push_back(p);
  }
  return true;
}

std::string encode_chunk_value(const global_position* positions, std::size_t count) {
  std::string out;
  out.reserve((count - 1) * 2);
  char buf[10];
  for (std::size_t i = 1; i < count; ++i) {
    char* end = bytes::put_varint(buf, positions[i] - positions[i - 1]);
    out.append(buf, static_cast<std::size_t>(end - buf));
  }
  return out;
}

result<void> validate(const query& q) {
  auto bad = [](std::string what) { return error{errc::invalid_argument, "query: " + what}; };
  for (std::size_t i = 0; i < q.items.size(); ++i) {
    const query_item& item = q.items[i];
    const std::string at = "item " + std::to_string(i) + " ";
    for (const std::string& t : item.types)
      if (t.empty() || t.size() > 0xFFFF) return bad(at + "has an empty or over-long type");
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

result<global_position> indexed_through(MDB_txn* txn, const tables& dbs) {
  MDB_val k = lmdb::to_val("indexed_through"), v{};
  const int rc = mdb_get(txn, dbs.meta, &k, &v);
  if (rc == MDB_NOTFOUND) return global_position{0};
  if (rc != 0) return lmdb::to_error(rc, "reading the index position");
  if (v.mv_size != 8) return error{errc::corruption, "meta 'indexed_through' has a bad size"};
  return bytes::get_le<std::uint64_t>(static_cast<const char*>(v.mv_data));
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

/// The stored chunks of one key, up to `last`.
class chunk_stream final : public position_stream {
 public:
  chunk_stream(MDB_txn* txn, MDB_dbi dbi, std::uint64_t id, global_position from,
               global_position last, direction dir)
      : txn_(txn), dbi_(dbi), id_(id), from_(from), last_(last), dir_(dir) {}
  ~chunk_stream() override {
    if (cursor_) mdb_cursor_close(cursor_);
  }

  result<global_position> next() override {
    for (;;) {
      if (at_ < chunk_.size()) {
        const global_position p =
            dir_ == direction::forward ? chunk_[at_] : chunk_[chunk_.size() - 1 - at_];
        ++at_;
        if (dir_ == direction::forward ? p < from_ : p > from_) continue;
        if (p > last_) {
          if (dir_ == direction::forward) return global_position{0};
          continue;
        }
        return p;
      }
      auto more = load();
      if (!more) return std::move(more).err();
      if (!*more) return global_position{0};
    }
  }

 private:
  /// Loads the next chunk; false at the end of the key's chunks.
  result<bool> load() {
    MDB_val k{}, v{};
    int rc = 0;
    if (!cursor_) {
      if (int o = mdb_cursor_open(txn_, dbi_, &cursor_); o != 0)
        return lmdb::to_error(o, "opening the index");
      const std::string seek = chunk_key(id_, from_);
      k = lmdb::to_val(seek);
      rc = mdb_cursor_get(cursor_, &k, &v, MDB_SET_RANGE);
      const bool exact = rc == 0 && lmdb::to_view(k) == seek;
      if (dir_ == direction::backward ? !exact : true) {
        // The chunk before the seek point may hold `from` (or positions
        // after it): start there when it belongs to this key.
        MDB_val pk{}, pv{};
        const int prc = mdb_cursor_get(cursor_, &pk, &pv, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
        if (prc == 0 && mine(pk)) {
          k = pk;
          v = pv;
          rc = 0;
        } else if (prc != 0 && prc != MDB_NOTFOUND) {
          return lmdb::to_error(prc, "reading the index");
        } else if (dir_ == direction::backward) {
          return false;
        } else if (rc == 0) {
          // Back to the entry SET_RANGE found.
          k = lmdb::to_val(seek);
          rc = mdb_cursor_get(cursor_, &k, &v, MDB_SET_RANGE);
        }
      }
    } else {
      rc = mdb_cursor_get(cursor_, &k, &v, dir_ == direction::forward ? MDB_NEXT : MDB_PREV);
    }
    if (rc == MDB_NOTFOUND) return false;
    if (rc != 0) return lmdb::to_error(rc, "reading the index");
    if (!mine(k)) return false;
    chunk_.clear();
    at_ = 0;
    std::uint64_t id = 0;
    if (!decode_chunk(lmdb::to_view(k), lmdb::to_view(v), id, chunk_))
      return error{errc::corruption,
                   "index chunk of key id " + std::to_string(id_) + " does not decode"};
    return true;
  }

  bool mine(const MDB_val& k) const {
    return k.mv_size == 16 &&
           bytes::get_be<std::uint64_t>(static_cast<const char*>(k.mv_data)) == id_;
  }

  MDB_txn* txn_;
  MDB_dbi dbi_;
  std::uint64_t id_;
  global_position from_, last_;
  direction dir_;
  MDB_cursor* cursor_ = nullptr;
  std::vector<global_position> chunk_;
  std::size_t at_ = 0;
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
  auto id = key_id(src.txn, *src.dbs, k);
  if (!id) return std::move(id).err();
  if (*id)
    out.push_back(std::make_unique<chunk_stream>(src.txn, src.dbs->index, **id, from,
                                                 src.indexed_through, dir));
  if (src.pending) {
    if (auto it = src.pending->find(std::string_view(k)); it != src.pending->end())
      out.push_back(std::make_unique<vector_stream>(it->second, from, dir));
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
  for (const query_item& item : q.items) {
    if (!item.tags.empty()) {
      // Every tag must be there: one tag's list is a superset of the matches.
      if (auto added = add_key(src, kind_tag, item.tags.front(), from, dir, streams); !added)
        return added;
    } else if (!item.types.empty()) {
      for (const std::string& t : item.types)
        if (auto added = add_key(src, kind_type, t, from, dir, streams); !added) return added;
    } else if (!item.categories.empty()) {
      for (const std::string& c : item.categories)
        if (auto added = add_key(src, kind_category, c, from, dir, streams); !added) return added;
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
  for (;;) {
    global_position best = 0;
    for (global_position h : heads)
      if (h != 0 && (best == 0 || (forward ? h < best : h > best))) best = h;
    if (best == 0) return {};
    for (std::size_t i = 0; i < streams.size(); ++i)
      if (heads[i] == best)
        if (auto a = advance(i); !a) return a;
    bytes::u64_key key(best);
    MDB_val k = lmdb::to_val(key.view()), v{};
    const int rc = mdb_get(src.txn, src.dbs->events, &k, &v);
    if (rc == MDB_NOTFOUND)
      return error{errc::corruption, "the index lists position " + std::to_string(best) +
                                         ", which is not in the log"};
    if (rc != 0) return lmdb::to_error(rc, "reading the log");
    auto go_on = visit(best, lmdb::to_view(v));
    if (!go_on) return std::move(go_on).err();
    if (!*go_on) return {};
  }
}

}  // namespace varve::detail::index
