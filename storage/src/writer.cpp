// The write path of batches: one write transaction per batch, every request
// checked completely before it writes anything, one commit for the lot.
//
// A request that fails its checks fails alone and the others go on in the
// same transaction. A request that fails after it began writing (a damaged
// stream found while indexing it, a seal that failed) poisons the
// transaction: it is aborted, and the batch runs again without that request.
// A failed LMDB call breaks the transaction (write_txn): the whole batch
// fails with it, or runs again after the map grew.
#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <unordered_set>

#include "batch.hpp"

namespace varve::detail {

namespace {

timestamp_us now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string stream_label(std::string_view name) {
  return "stream '" + std::string(name) + "'";
}

batch_txn::batch_txn(store_impl& s, write_txn& t)
    : store(s), txn(t), now(now_us()), pending(s.cache.pending), lookup_in{&t} {
  // Keys seen before are kept (their nodes and ids), up to a bound.
  if (pending.size() > writer_cache::max_pending_keys) pending.clear();
}

batch_txn::~batch_txn() {
  for (auto* key : pending_touched)
    key->second.positions.clear();
}

namespace {

/// Applies one request: checks all of it, then writes it. An error after
/// the checks poisons the transaction (b.poisoned).
write_outcome apply_request(batch_txn& b, const request_ref& ref) {
  const write_request& req = *ref.rest;
  std::vector<plan>& plans = b.plans;
  plans.clear();
  // A stream named twice is refused when it comes up, after the checks of
  // the appends before it. Most requests name one stream or a few: those
  // are compared pairwise, without allocating.
  std::unordered_set<std::string_view> seen;
  const bool many = ref.appends.size() > 8;
  for (auto r = ref.appends.begin(); r != ref.appends.end(); ++r) {
    const bool twice = many ? !seen.insert(r->stream).second
                            : std::any_of(ref.appends.begin(), r, [&](const append_ref& o) {
                                return o.stream == r->stream;
                              });
    if (twice)
      return error{errc::invalid_argument,
                   stream_label(r->stream) + " appears twice in one request"};
    auto p = check(b, *r);
    if (!p) return std::move(p).err();
    plans.push_back(std::move(*p));
  }
  for (const cursor_update& c : req.cursors) {
    if (auto ok = check_cursor(b, c); !ok) return std::move(ok).err();
  }
  std::vector<std::uint64_t> snapshot_ids;
  for (const snapshot_update& u : req.snapshots) {
    auto id = check_snapshot(b, plans, u);
    if (!id) return std::move(id).err();
    snapshot_ids.push_back(*id);
  }
  // A projection's batch writes many rows to one view: its name is checked
  // once per run of updates to it, and given once (an empty name is the
  // name of the update before).
  const std::string* checked_view = nullptr;
  for (const view_update& u : req.views) {
    if (u.view.empty() && !checked_view)
      return error{errc::invalid_argument,
                   "a view update names no view, and no update before it in the request does"};
    const std::string& name = u.view.empty() ? *checked_view : u.view;
    const bool same_view = checked_view && *checked_view == name;
    auto valid = check_view(b.store, u, name, !same_view);
    if (!valid) return std::move(valid).err();
    if (same_view) continue;
    if (auto room = check_view_room(b, name); !room) return std::move(room).err();
    checked_view = &name;
  }
  // A retried request whose events are all in place already is answered
  // with their places, whatever its condition says now (a condition that is
  // not a valid query is refused either way).
  if (req.condition)
    if (auto valid = index::validate(req.condition->fail_if_events_match); !valid)
      return std::move(valid).err();
  const bool all_in_place =
      !plans.empty() && std::all_of(plans.begin(), plans.end(),
                                    [](const plan& p) { return p.idempotent.has_value(); });
  if (req.condition && !all_in_place) {
    if (auto holds = check_condition(b, *req.condition); !holds) return std::move(holds).err();
  }

  // Checked: from here on, a failure leaves writes of this request behind.
  auto poison = [&](error e) -> write_outcome {
    b.poisoned = true;
    return e;
  };
  std::vector<append_result> results;
  results.reserve(plans.size());
  for (plan& p : plans) {
    if (p.idempotent) {
      results.push_back(*p.idempotent);
      continue;
    }
    auto r = apply(b, p);
    if (!r) return poison(std::move(r).err());
    results.push_back(*r);
  }
  if (auto sides = write_side_tables(b, req, snapshot_ids); !sides)
    return poison(std::move(sides).err());
  return results;
}

/// Writes the heads of the streams the transaction appended to, in id
/// order through one cursor. A head whose stream comes next in the table
/// (streams appended to together were mostly created together) is
/// replaced where the cursor stands, without a search; any other is put
/// by key, and LMDB looks for it in the page the cursor is on first. False
/// when a call failed (the transaction is broken).
bool write_heads(batch_txn& b) {
  std::vector<const std::pair<const std::uint64_t, head_state>*> heads;
  heads.reserve(b.touched.size());
  for (const auto& entry : b.touched)
    heads.push_back(&entry);
  std::sort(heads.begin(), heads.end(), [](auto* x, auto* y) { return x->first < y->first; });
  MDB_cursor* c = nullptr;
  if (b.txn.cursor_open(b.store.dbs.stream_heads, c) != 0) return false;
  bool ok = true, positioned = false;
  char value[head_value_size];
  for (const auto* entry : heads) {
    std::uint64_t id = entry->first;
    MDB_val k{sizeof id, &id}, v = lmdb::to_val(encode_head(entry->second.info, value));
    bool here = false;
    if (positioned) {
      MDB_val nk{}, nv{};
      const int rc = b.txn.cursor_get(c, nk, nv, MDB_NEXT);
      if (rc != 0 && rc != MDB_NOTFOUND) {
        ok = false;
        break;
      }
      here = rc == 0 && nk.mv_size == sizeof id && bytes::get_native_u64(lmdb::to_view(nk)) == id &&
             nv.mv_size == sizeof value;
    }
    if (b.txn.cursor_put(c, k, v, here ? MDB_CURRENT : 0) != 0) {
      ok = false;
      break;
    }
    positioned = true;
  }
  mdb_cursor_close(c);
  return ok;
}

/// Adds this transaction to the counts kept in meta under "counts":
/// commits:u64 events:u64 (little-endian).
result<void> count_commit(batch_txn& b) {
  std::uint64_t commits = 0, events = 0;
  MDB_val v{};
  int rc = b.txn.get(b.store.dbs.meta, "counts", v);
  if (rc == 0 && v.mv_size == 16) {
    commits = bytes::get_le<std::uint64_t>(static_cast<const char*>(v.mv_data));
    events = bytes::get_le<std::uint64_t>(static_cast<const char*>(v.mv_data) + 8);
  } else if (rc != 0 && rc != MDB_NOTFOUND) {
    return lmdb::to_error(rc, "reading the counts");
  }
  char value[16];
  bytes::put_le<std::uint64_t>(value, commits + 1);
  bytes::put_le<std::uint64_t>(value + 8, events + b.events);
  if (rc = b.txn.put(b.store.dbs.meta, "counts", std::string_view(value, sizeof value)); rc != 0)
    return lmdb::to_error(rc, "counting the commit");
  return {};
}

result<std::uint64_t> last_key(write_txn& t, MDB_dbi dbi) {
  MDB_cursor* c = nullptr;
  if (int rc = t.cursor_open(dbi, c); rc != 0) return lmdb::to_error(rc, "mdb_cursor_open");
  MDB_val k{}, v{};
  const int rc = t.cursor_get(c, k, v, MDB_LAST);
  mdb_cursor_close(c);
  if (rc == MDB_NOTFOUND) return std::uint64_t{0};
  if (rc != 0) return lmdb::to_error(rc, "mdb_cursor_get");
  if (k.mv_size != 8) return error{errc::corruption, "integer key of the wrong size"};
  return bytes::get_native_u64(lmdb::to_view(k));
}

}  // namespace

result<std::vector<write_outcome>> store_impl::write(std::span<const write_request> batch,
                                                     write_timing* timing) {
  std::size_t appends = 0;
  for (const write_request& req : batch)
    appends += req.appends.size();
  std::vector<append_ref> views;
  views.reserve(appends);
  std::vector<request_ref> refs;
  refs.reserve(batch.size());
  for (const write_request& req : batch) {
    const std::size_t first = views.size();
    for (const append_request& a : req.appends)
      views.push_back(append_ref{a.stream, a.expected, a.events});
    refs.push_back(
        request_ref{std::span<const append_ref>(views.data() + first, req.appends.size()), &req});
  }
  return write(std::span<const request_ref>(refs), timing);
}

result<std::vector<write_outcome>> store_impl::write(std::span<const request_ref> batch,
                                                     write_timing* timing,
                                                     global_position catch_up_limit) {
  using steady = std::chrono::steady_clock;
  std::lock_guard<std::mutex> lock(write_mutex);
  std::size_t appends = 0;
  for (const request_ref& r : batch)
    appends += r.appends.size();
  // Requests that failed after they began writing, with their errors: the
  // batch runs again without them.
  std::vector<std::optional<error>> dropped(batch.size());
  std::vector<write_outcome> outcomes;
  std::optional<batch_txn> b;

  auto run = [&](write_txn& t) -> result<txn_decision> {
    const auto started = steady::now();
    b.emplace(*this, t);
    b->touched.reserve(appends);  // no rehash while the batch touches its streams
    if (cache.next_position == 0) {
      auto last = last_key(t, dbs.events);
      if (!last) return std::move(last).err();
      cache.next_position = *last + 1;
    }
    if (cache.next_stream_id == 0) {
      auto last = last_key(t, dbs.stream_ids);
      if (!last) return std::move(last).err();
      cache.next_stream_id = *last + 1;
    }
    b->next_position = cache.next_position;
    b->next_stream_id = cache.next_stream_id;
    if (batch.empty()) b->catch_up_limit = catch_up_limit;
    if (auto caught_up = catch_up_index(*b); !caught_up) {
      if (t.broken()) return txn_decision::rerun;
      return std::move(caught_up).err();
    }
    outcomes.clear();
    outcomes.reserve(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (dropped[i]) {
        outcomes.push_back(*dropped[i]);
        continue;
      }
      write_outcome out = apply_request(*b, batch[i]);
      if (t.broken()) return txn_decision::rerun;  // transact aborts and says why
      if (b->poisoned) {
        dropped[i] = out.err();
        return txn_decision::rerun;
      }
      outcomes.push_back(std::move(out));
    }
    if (auto indexed = write_index(*b); !indexed) {
      if (t.broken()) return txn_decision::rerun;
      return std::move(indexed).err();
    }
    if (!write_heads(*b)) return txn_decision::rerun;
    if (!b->wrote) return txn_decision::discard;
    // The store's own count of commits and events, for every process.
    if (auto counted = count_commit(*b); !counted) return std::move(counted).err();
    if (timing)
      timing->apply_ns = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - started).count());
    return txn_decision::commit;
  };
  auto committed = [&] {
    cache.next_position = b->next_position;
    cache.next_stream_id = b->next_stream_id;
    for (auto& [name, id] : b->created)
      cache.names.emplace(name, id);
    for (auto& [id, h] : b->touched)
      cache.heads.insert_or_assign(id, std::move(h));
    for (auto& [name, dbi] : b->new_views)
      views.emplace(name, dbi);
    for (created_key& k : b->new_keys)
      data_keys.put(k.stream_id, k.wrapped, std::move(k.key));
    cache.indexed_through = b->indexed_to();
    for (auto& [text, id] : b->new_index_ids)
      cache.index_ids.emplace(text, id);
    if (b->next_index_id != 0) cache.next_index_id = b->next_index_id;
    if (cache.index_ids.size() > writer_cache::max_streams) cache.index_ids.clear();
    events_written.fetch_add(b->events, std::memory_order_relaxed);
  };
  auto aborted = [&] {
    if (!b) return;
    // Keys made by a transaction that did not commit are gone for good.
    for (const created_key& k : b->new_keys)
      writer_sealer.forget(k.stream_id);
  };
  auto done = transact(txn_work{run, committed, aborted}, timing ? &timing->commit_ns : nullptr);
  if (!done) return std::move(done).err();
  return outcomes;
}

}  // namespace varve::detail
