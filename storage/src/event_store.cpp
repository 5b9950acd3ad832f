// The event_store entry points: writes go to the writer (writer.cpp,
// admin.cpp), reads to a read transaction (reader.cpp); open.cpp opens.
#include "varve/storage/event_store.hpp"

#include <mutex>

#include "store_impl.hpp"

namespace varve {

event_store::event_store(std::unique_ptr<detail::store_impl> impl) : impl_(std::move(impl)) {}
event_store::~event_store() = default;

const options& event_store::opts() const noexcept {
  return impl_->opts;
}

result<append_result> event_store::append(std::string_view stream, expected_version expected,
                                          std::span<const new_event> events) {
  // The events are passed on as views: the writer copies each one straight
  // into its record.
  static const write_request nothing_else;
  const detail::append_ref one_append{stream, expected, events};
  const detail::request_ref req{{&one_append, 1}, &nothing_else};
  auto out = impl_->write(std::span<const detail::request_ref>(&req, 1), nullptr);
  if (!out) return std::move(out).err();
  write_outcome& one = out->front();
  if (!one) return std::move(one).err();
  return one->front();
}

result<std::vector<append_result>> event_store::append(std::span<const append_request> requests) {
  static const write_request nothing_else;
  std::vector<detail::append_ref> appends;
  appends.reserve(requests.size());
  for (const append_request& a : requests)
    appends.push_back(detail::append_ref{a.stream, a.expected, a.events});
  const detail::request_ref req{appends, &nothing_else};
  auto out = impl_->write(std::span<const detail::request_ref>(&req, 1), nullptr);
  if (!out) return std::move(out).err();
  return std::move(out->front());
}

result<std::vector<write_outcome>> event_store::write(std::span<const write_request> batch,
                                                      write_timing* timing) {
  return impl_->write(batch, timing);
}

result<void> event_store::rebuild_indexes() {
  if (auto dropped = impl_->drop_indexes(); !dropped) return dropped;
  return detail::index_up_to_date(*impl_, true);
}

result<void> event_store::shred(std::string_view stream) {
  return impl_->shred(stream);
}

result<void> event_store::rotate_master_key(const std::array<std::uint8_t, 32>& new_key) {
  return impl_->rotate(crypto::key_bytes(new_key.begin(), new_key.end()));
}

result<void> event_store::rotate_master_key(const std::filesystem::path& new_key_file) {
  auto key = crypto::read_key_file(new_key_file.string());
  if (!key) return std::move(key).err();
  return impl_->rotate(std::move(*key));
}

bool event_store::encrypted() const noexcept {
  return impl_->encrypted;
}

bool event_store::failed() const {
  std::lock_guard<std::mutex> lock(impl_->write_mutex);
  return impl_->failed;
}

result<void> event_store::save_cursor(std::string_view consumer, global_position position) {
  write_request req;
  req.cursors.push_back(cursor_update{std::string(consumer), position});
  auto out = impl_->write({&req, 1}, nullptr);
  if (!out) return std::move(out).err();
  if (!out->front()) return std::move(out->front()).err();
  return {};
}

result<read_transaction> event_store::read() const {
  auto state = std::make_unique<detail::read_state>();
  state->store = impl_.get();
  state->check_sums = impl_->opts.verify_checksums;
  for (;;) {
    state->map_guard = std::shared_lock<std::shared_timed_mutex>(impl_->map_lock);
    MDB_txn* t = nullptr;
    int rc = mdb_txn_begin(impl_->env.get(), nullptr, MDB_RDONLY, &t);
    if (rc == MDB_MAP_RESIZED) {
      state->map_guard.unlock();
      if (auto a = impl_->adopt_map_size(); !a) return std::move(a).err();
      continue;
    }
    if (rc != 0) return lmdb::to_error(rc, "beginning a read transaction");
    state->txn = lmdb::txn(t);
    // Tables created since the handles were opened (here or in another
    // process): open their handles, then begin again so that they are
    // usable in the transaction.
    MDB_stat main_stat{};
    if (rc = mdb_stat(t, impl_->main_table, &main_stat); rc != 0)
      return lmdb::to_error(rc, "reading the list of tables");
    if (main_stat.ms_entries > impl_->tables_known.load(std::memory_order_acquire)) {
      state->txn = lmdb::txn();
      state->map_guard.unlock();
      if (auto v = impl_->open_new_views(); !v) return std::move(v).err();
      continue;
    }
    return read_transaction(std::move(state));
  }
}

result<std::vector<recorded_event>> event_store::read_stream(std::string_view name,
                                                             stream_version from, direction dir,
                                                             std::size_t limit) const {
  auto txn = read();
  if (!txn) return std::move(txn).err();
  std::vector<recorded_event> out;
  auto copy = [&](const event_view& v) {
    out.push_back(recorded_event::from(v, name));
    return true;
  };
  auto n = txn->scan_stream(name, from, dir, limit, copy);
  if (!n) return std::move(n).err();
  return out;
}

namespace {

/// Owned copies, with their stream names, of what `scan(txn, visit)`
/// visits in one read transaction.
template <class Scan>
result<std::vector<recorded_event>> owned_copies(const event_store& store, Scan&& scan) {
  auto txn = store.read();
  if (!txn) return std::move(txn).err();
  std::vector<recorded_event> out;
  std::optional<error> failure;
  auto copy = [&](const event_view& v) {
    auto name = txn->stream_name(v.stream_id);
    if (!name) {
      failure = std::move(name).err();
      return false;
    }
    out.push_back(recorded_event::from(v, *name));
    return true;
  };
  auto n = scan(*txn, copy);
  if (!n) return std::move(n).err();
  if (failure) return std::move(*failure);
  return out;
}

}  // namespace

result<std::vector<recorded_event>> event_store::read_log(global_position from, direction dir,
                                                          std::size_t limit) const {
  return owned_copies(*this, [&](const read_transaction& txn, auto& copy) {
    return txn.scan_log(from, dir, limit, copy);
  });
}

result<std::vector<recorded_event>> event_store::read_query(const query& q, global_position from,
                                                            direction dir,
                                                            std::size_t limit) const {
  return owned_copies(*this, [&](const read_transaction& txn, auto& copy) {
    return txn.scan_query(q, from, dir, limit, copy);
  });
}

result<store_stats> event_store::stats() const {
  auto txn = read();
  if (!txn) return std::move(txn).err();
  store_stats s;
  s.head = txn->head();
  s.streams = txn->stream_count();
  s.map_size = impl_->map_size();
  MDB_envinfo info{};
  MDB_stat st{};
  mdb_env_info(impl_->env.get(), &info);
  mdb_env_stat(impl_->env.get(), &st);
  s.used_bytes = (info.me_last_pgno + 1) * std::uint64_t{st.ms_psize};
  {
    MDB_txn* raw = txn->state_->txn.get();
    MDB_val k = lmdb::to_val("counts"), v{};
    if (mdb_get(raw, impl_->dbs.meta, &k, &v) == 0 && v.mv_size == 16) {
      s.commits = bytes::get_le<std::uint64_t>(static_cast<const char*>(v.mv_data));
      s.events_committed = bytes::get_le<std::uint64_t>(static_cast<const char*>(v.mv_data) + 8);
    }
  }
  s.events_written = impl_->events_written.load(std::memory_order_relaxed);
  s.encrypted = encrypted();
  return s;
}

}  // namespace varve
