// event_store::verify: the whole-store consistency check (the oracle of the
// reliability tests and `varvectl verify`), and event_store::backup.
#include <unistd.h>

#include <unordered_map>

#include "record.hpp"
#include "store_impl.hpp"

namespace varve {

namespace {

constexpr std::size_t max_faults_kept = 1000;

/// What the walk over the log has seen of one stream.
struct stream_seen {
  stream_version version = 0;
  global_position last_position = 0;
  std::vector<global_position> chunk;  // positions since the last full chunk
};

class checker {
 public:
  checker(const detail::store_impl& store, const read_transaction& txn, MDB_txn* raw,
          verify_report& report)
      : store_(store), txn_(txn), raw_(raw), report_(report) {}

  void fault(std::string what) {
    ++report_.faults_total;
    if (report_.faults.size() < max_faults_kept) report_.faults.push_back(std::move(what));
  }

  /// One record of the log, in position order.
  void event(global_position expected, global_position pos, const event_view& e) {
    if (pos != expected) {
      fault("positions jump from " + std::to_string(expected - 1) + " to " + std::to_string(pos));
    }
    stream_seen& s = seen_[e.stream_id];
    if (e.version != s.version + 1)
      fault("position " + std::to_string(pos) + ": stream id " + std::to_string(e.stream_id) +
            " has version " + std::to_string(e.version) + " after " + std::to_string(s.version));
    if (e.previous_position != s.last_position)
      fault("position " + std::to_string(pos) + ": links to " +
            std::to_string(e.previous_position) + ", the stream's previous event is at " +
            std::to_string(s.last_position));
    s.version = e.version;
    s.last_position = pos;
    s.chunk.push_back(pos);
    if (e.version % detail::chunk_size == 0) {
      check_chunk(e.stream_id, e.version / detail::chunk_size - 1, s.chunk);
      s.chunk.clear();
    }
    if (e.shredded) ++report_.shredded;
  }

  void check_chunk(std::uint64_t stream_id, std::uint64_t chunk,
                   const std::vector<global_position>& positions) {
    ++report_.chunks;
    const std::string key = detail::chunk_key(stream_id, chunk);
    auto value = txn_get(store_.dbs.stream_index, key);
    const std::string where =
        "stream id " + std::to_string(stream_id) + " index chunk " + std::to_string(chunk);
    if (!value) return fault(where + " is missing");
    if (value->size() != detail::chunk_size * 8) return fault(where + " has a bad size");
    for (std::size_t i = 0; i < positions.size(); ++i) {
      const auto stored = bytes::get_le<std::uint64_t>(value->data() + i * 8);
      if (stored != positions[i])
        return fault(where + " points at " + std::to_string(stored) + " for version " +
                     std::to_string(chunk * detail::chunk_size + i + 1) + ", which is at " +
                     std::to_string(positions[i]));
    }
  }

  /// Heads, names and ids against what the log showed.
  void streams() {
    auto visit = [&](std::string_view name, const stream_info& info) {
      ++report_.streams;
      const std::string label = "stream '" + std::string(name) + "'";
      auto it = seen_.find(info.id);
      const stream_version version = it == seen_.end() ? 0 : it->second.version;
      const global_position last = it == seen_.end() ? 0 : it->second.last_position;
      if (info.version != version)
        fault(label + ": head says version " + std::to_string(info.version) + ", the log holds " +
              std::to_string(version));
      if (info.last_position != last)
        fault(label + ": head says last position " + std::to_string(info.last_position) +
              ", the log says " + std::to_string(last));
      auto back = txn_.stream_name(info.id);
      if (!back || *back != name)
        fault(label + ": its id " + std::to_string(info.id) + " does not name it back");
      if (store_.master && info.state == stream_state::live) {
        bytes::u64_key key(info.id);
        if (!txn_get(store_.dbs.keys, key.view())) fault(label + ": no data key");
      }
      if (it != seen_.end()) seen_.erase(it);
      return true;
    };
    auto n = txn_.scan_streams(visit);
    if (!n) fault("the stream table does not read: " + n.err().to_string());
    for (const auto& [id, s] : seen_)
      fault("stream id " + std::to_string(id) + " has " + std::to_string(s.version) +
            " events in the log but no name");
  }

 private:
  std::optional<std::string_view> txn_get(MDB_dbi dbi, std::string_view key) {
    MDB_val k = lmdb::to_val(key), v{};
    if (mdb_get(raw_, dbi, &k, &v) != 0) return std::nullopt;
    return lmdb::to_view(v);
  }

  const detail::store_impl& store_;
  const read_transaction& txn_;
  MDB_txn* raw_;
  verify_report& report_;
  std::unordered_map<std::uint64_t, stream_seen> seen_;
};

}  // namespace

result<verify_report> event_store::verify(
    std::function<void(std::uint64_t done, std::uint64_t total)> progress) const {
  auto txn = read();
  if (!txn) return std::move(txn).err();
  const detail::read_state& st = *txn->state_;
  MDB_txn* raw = st.txn.get();
  verify_report report;
  checker check(*impl_, *txn, raw, report);
  const global_position head = txn->head();
  global_position expected = 1;
  // Walk the log record by record: a record that does not decode or
  // authenticate is a fault, and the walk goes on past it.
  auto c = lmdb::cursor::open(raw, impl_->dbs.events);
  if (!c) return std::move(c).err();
  MDB_val k{}, v{};
  auto found = c->get(k, v, MDB_FIRST);
  while (found && *found) {
    const global_position pos = bytes::get_native_u64(lmdb::to_view(k));
    auto e = st.event(pos, lmdb::to_view(v), false);
    if (!e) {
      check.fault("position " + std::to_string(pos) + ": " + e.err().to_string());
      if (auto links = record::decode_links(pos, lmdb::to_view(v))) {
        event_view stub;
        stub.stream_id = links->stream_id;
        stub.version = links->version;
        stub.previous_position = links->previous_position;
        check.event(expected, pos, stub);
      }
    } else {
      check.event(expected, pos, *e);
    }
    expected = pos + 1;
    ++report.events;
    if (progress && report.events % 65536 == 0) progress(report.events, head);
    found = c->get(k, v, MDB_NEXT);
  }
  if (!found) return std::move(found).err();
  check.streams();
  if (progress) progress(report.events, head);
  return report;
}

result<void> event_store::backup(const std::filesystem::path& destination) const {
  std::error_code ec;
  if (std::filesystem::exists(destination, ec)) {
    if (!std::filesystem::is_directory(destination, ec) ||
        !std::filesystem::is_empty(destination, ec))
      return error{errc::invalid_argument,
                   "backup destination " + destination.string() + " is not an empty directory"};
  } else {
    std::filesystem::create_directories(destination, ec);
    if (ec)
      return error{errc::invalid_argument,
                   "cannot create " + destination.string() + ": " + ec.message()};
    std::filesystem::permissions(destination, std::filesystem::perms::owner_all, ec);
  }
  if (int rc = mdb_env_copy2(impl_->env.get(), destination.c_str(), MDB_CP_COMPACT); rc != 0)
    return lmdb::to_error(rc, "copying the store to " + destination.string());
  return {};
}

}  // namespace varve
