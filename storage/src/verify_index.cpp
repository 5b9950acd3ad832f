#include "verify_index.hpp"

#include <algorithm>

#include "bytes.hpp"
#include "lmdb.hpp"

namespace varve::detail {

index_checker::index_checker(const read_state& st, MDB_txn* txn, fault_fn fault)
    : st_(st), txn_(txn), fault_(std::move(fault)) {
  auto at = index::read_coverage(txn, st.store->dbs);
  if (!at) {
    fault_("the index position in meta does not read: " + at.err().to_string());
    usable_ = false;
    return;
  }
  indexed_through_ = at->indexed_through;
  segmented_through_ = at->segmented_through;
}

void index_checker::event(const event_view& e) {
  head_ = std::max(head_, e.position);
  if (!usable_ || e.position > indexed_through_) return;
  auto name = st_.name_of(e.stream_id);
  if (!name) return;  // the stream check reports it
  index::keys_of(e.type, *name, e.tags, [&](char kind, std::string_view text) {
    expected_[index::key_text(kind, text)].push_back(e.position);
  });
}

std::uint64_t index_checker::finish() {
  if (!usable_) return 0;
  if (indexed_through_ > head_)
    fault_("meta 'indexed_through' (" + std::to_string(indexed_through_) +
           ") is past the log's last position (" + std::to_string(head_) +
           "): the next append would be indexed wrong; rebuild the indexes");
  const tables& dbs = st_.store->dbs;
  std::uint64_t entries = 0;
  // The positions of each key, as stored, must be what the log says: the
  // segments (each in the span span_at names for it), then the recent
  // entries, both in log order.
  std::unordered_map<std::uint64_t, std::string> names;
  index::key_positions seen;
  auto add = [&](std::uint64_t id, const std::vector<global_position>& positions) {
    auto it = names.find(id);
    if (it == names.end()) {
      bytes::u64_key key(id);
      MDB_val nk = lmdb::to_val(key.view()), nv{};
      std::string text;
      if (mdb_get(txn_, dbs.index_names, &nk, &nv) == 0) {
        text = std::string(lmdb::to_view(nv));
        MDB_val kk = lmdb::to_val(text), kv{};
        if (mdb_get(txn_, dbs.index_keys, &kk, &kv) != 0 || kv.mv_size != 8 ||
            bytes::get_le<std::uint64_t>(static_cast<const char*>(kv.mv_data)) != id)
          fault_("index key id " + std::to_string(id) + " and its name disagree");
      } else {
        fault_("index key id " + std::to_string(id) + " has no name");
      }
      it = names.emplace(id, std::move(text)).first;
    }
    auto& list = seen[it->second];
    list.insert(list.end(), positions.begin(), positions.end());
    entries += positions.size();
  };
  {
    auto c = lmdb::cursor::open(txn_, dbs.index);
    if (!c) {
      fault_("the index does not read: " + c.err().to_string());
      return 0;
    }
    MDB_val k{}, v{};
    auto found = c->get(k, v, MDB_FIRST);
    for (; found && *found; found = c->get(k, v, MDB_NEXT)) {
      index::span s;
      if (!index::decode_segment_key(lmdb::to_view(k), s)) {
        fault_("an index segment has a bad key");
        continue;
      }
      const index::span live = index::span_at(segmented_through_, s.first);
      if (s.last() > segmented_through_ || live.tier != s.tier || live.first != s.first) {
        fault_("the index has a segment for positions " + std::to_string(s.first) + ".." +
               std::to_string(s.last()) + ", which are not a span of its tier (segmented through " +
               std::to_string(segmented_through_) + ")");
        continue;
      }
      if (!index::each_list(lmdb::to_view(v), s.first, s.last(), add))
        fault_("the index segment at position " + std::to_string(s.first) + " does not decode");
    }
    if (!found) fault_("the index does not read: " + found.err().to_string());
  }
  {
    auto c = lmdb::cursor::open(txn_, dbs.index_recent);
    if (!c) {
      fault_("the recent index does not read: " + c.err().to_string());
      return 0;
    }
    // Each entry covers the positions up to the next one's first (the last
    // one up to indexed_through), as readers and folds check: the entries
    // are read first, then each is checked against its range.
    std::vector<std::pair<global_position, std::string_view>> recent;
    MDB_val k{}, v{};
    auto found = c->get(k, v, MDB_FIRST);
    for (; found && *found; found = c->get(k, v, MDB_NEXT))
      recent.emplace_back(k.mv_size == 8 ? bytes::get_native_u64(lmdb::to_view(k)) : 0,
                          lmdb::to_view(v));
    if (!found) fault_("the recent index does not read: " + found.err().to_string());
    for (std::size_t i = 0; i < recent.size(); ++i) {
      const auto [first, value] = recent[i];
      if (first <= segmented_through_ || first > indexed_through_) {
        fault_("the recent index has an entry at position " + std::to_string(first) + ", outside " +
               std::to_string(segmented_through_ + 1) + ".." + std::to_string(indexed_through_));
        continue;
      }
      const global_position last = i + 1 < recent.size() && recent[i + 1].first > first
                                       ? recent[i + 1].first - 1
                                       : indexed_through_;
      bool beyond = false;
      if (!index::each_list(value, first, ~global_position{0},
                            [&](std::uint64_t id, const std::vector<global_position>& p) {
                              beyond = beyond || p.back() > last;
                              add(id, p);
                            }))
        fault_("the recent index entry at position " + std::to_string(first) + " does not decode");
      else if (beyond)
        fault_("the recent index entry at position " + std::to_string(first) +
               " lists positions after " + std::to_string(last) +
               (last == indexed_through_ ? ", the indexed position" : ", the end of its range"));
    }
  }
  auto label = [](std::string_view text) {
    const char* kind = text[0] == index::kind_type       ? "type"
                       : text[0] == index::kind_category ? "category"
                                                         : "tag";
    return std::string(kind) + " '" + std::string(text.substr(1)) + "'";
  };
  for (auto& [text, positions] : seen) {
    if (text.empty()) continue;
    if (!unreadable_.empty())
      std::erase_if(positions, [&](global_position p) { return unreadable_.contains(p); });
    if (positions.empty() && !expected_.contains(text)) continue;
    auto it = expected_.find(text);
    if (it == expected_.end()) {
      fault_("the index lists " + std::to_string(positions.size()) + " events of " + label(text) +
             ", which the log does not have");
    } else if (it->second != positions) {
      const auto [listed, logged] =
          std::mismatch(positions.begin(), positions.end(), it->second.begin(), it->second.end());
      std::string where;
      if (listed != positions.end() && (logged == it->second.end() || *listed < *logged))
        where = "it lists position " + std::to_string(*listed) + ", which is not one of them";
      else
        where = "it lacks position " + std::to_string(*logged);
      fault_("the index of " + label(text) + " lists " + std::to_string(positions.size()) +
             " events, the log has " + std::to_string(it->second.size()) + ": first, " + where);
    }
  }
  for (const auto& [text, positions] : expected_)
    if (!seen.contains(text))
      fault_("the index lacks " + label(text) + " (" + std::to_string(positions.size()) +
             " events in the log)");
  return entries;
}

}  // namespace varve::detail
