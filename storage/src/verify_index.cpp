#include "verify_index.hpp"

#include "bytes.hpp"
#include "lmdb.hpp"

namespace varve::detail {

index_checker::index_checker(const read_state& st, MDB_txn* txn, fault_fn fault)
    : st_(st), txn_(txn), fault_(std::move(fault)) {
  auto at = index::indexed_through(txn, st.store->dbs);
  if (!at) {
    fault_("the index position in meta does not read: " + at.err().to_string());
    usable_ = false;
    return;
  }
  indexed_through_ = *at;
}

void index_checker::event(const event_view& e) {
  if (!usable_ || e.position > indexed_through_) return;
  auto name = st_.name_of(e.stream_id);
  if (!name) return;  // the stream check reports it
  index::keys_of(e.type, *name, e.tags, [&](char kind, std::string_view text) {
    expected_[index::key_text(kind, text)].push_back(e.position);
  });
}

std::uint64_t index_checker::finish() {
  if (!usable_) return 0;
  const tables& dbs = st_.store->dbs;
  std::uint64_t entries = 0;
  auto c = lmdb::cursor::open(txn_, dbs.index);
  if (!c) {
    fault_("the index does not read: " + c.err().to_string());
    return 0;
  }
  // The positions of each key, as stored, must be what the log says.
  std::unordered_map<std::uint64_t, std::string> names;
  index::pending_map seen;
  MDB_val k{}, v{};
  auto found = c->get(k, v, MDB_FIRST);
  std::vector<global_position> chunk;
  while (found && *found) {
    std::uint64_t id = 0;
    chunk.clear();
    if (!index::decode_chunk(lmdb::to_view(k), lmdb::to_view(v), id, chunk)) {
      fault_("an index chunk does not decode");
    } else {
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
      list.insert(list.end(), chunk.begin(), chunk.end());
      entries += chunk.size();
    }
    found = c->get(k, v, MDB_NEXT);
  }
  if (!found) fault_("the index does not read: " + found.err().to_string());
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
      fault_("the index of " + label(text) + " lists " + std::to_string(positions.size()) +
             " events, the log has " + std::to_string(it->second.size()) +
             " (or at other positions)");
    }
  }
  for (const auto& [text, positions] : expected_)
    if (!seen.contains(text))
      fault_("the index lacks " + label(text) + " (" + std::to_string(positions.size()) +
             " events in the log)");
  return entries;
}

}  // namespace varve::detail
