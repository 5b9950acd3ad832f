// event_store::verify: the whole-store consistency check (the oracle of the
// reliability tests and `varvectl verify`), and event_store::backup.
//
// verify first checks the pages of data.mdb with pread (page_check.hpp): LMDB
// trusts its pages, and a damaged one makes a walk through the map fault.
// Only a store whose pages are sound is then walked through LMDB.
#include <fcntl.h>
#include <unistd.h>

#include <optional>
#include <system_error>
#include <unordered_map>

#include "page_check.hpp"
#include "record.hpp"
#include "store_impl.hpp"
#include "verify_index.hpp"

namespace varve {

namespace {

constexpr std::size_t max_faults_kept = 1000;

// A data.mdb shorter than this may lack part of its meta pages (2 pages of at
// most 32 KiB), which LMDB reads through its map to begin any transaction.
constexpr std::uint64_t meta_pages_at_most = 2 * 32768;

// Tries to find the meta page of a read transaction's snapshot before
// checking the newest one instead (a writer in another process commits twice
// between the read transaction's start and the read of its meta page only
// very rarely; a damaged meta page never matches).
constexpr int snapshot_attempts = 100;

void add_faults(verify_report& report, const detail::page_report& pages) {
  report.pages = pages.pages_checked;
  report.faults_total += pages.faults_total;
  for (const std::string& f : pages.faults)
    if (report.faults.size() < max_faults_kept) report.faults.push_back(f);
}

void add_fault(verify_report& report, std::string what) {
  ++report.faults_total;
  if (report.faults.size() < max_faults_kept) report.faults.push_back(std::move(what));
}

/// Whether LMDB's record of the main table in `txn` is the one the page
/// check read from the meta page (a torn read of a meta page being
/// rewritten would differ).
bool same_main_table(MDB_txn* txn, MDB_dbi main, const detail::tree_counts& read) {
  MDB_stat st{};
  if (mdb_stat(txn, main, &st) != 0) return false;
  return detail::tree_counts{st.ms_depth, st.ms_branch_pages, st.ms_leaf_pages,
                             st.ms_overflow_pages, st.ms_entries} == read;
}

/// A file descriptor, closed with the object.
class file_handle {
 public:
  explicit file_handle(int fd) : fd_(fd) {}
  file_handle(const file_handle&) = delete;
  file_handle& operator=(const file_handle&) = delete;
  ~file_handle() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  /// Closes now; the error of close(2), or 0.
  int close() {
    if (::close(std::exchange(fd_, -1)) != 0) return errno;
    return 0;
  }

 private:
  int fd_;
};

error io_failure(int code, const std::string& what) {
  return error{errc::io_error, what + ": " + std::generic_category().message(code)};
}

/// Writes a compacted copy of the store into the new file `file`, mode 0600
/// whatever the umask (the copy holds the store's data; mdb_env_copy2 would
/// create it 0644), and syncs it. Errors: io_error (an existing file is left
/// alone; a file this call created is removed).
result<void> copy_store(MDB_env* env, const std::filesystem::path& file) {
  file_handle fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) return io_failure(errno, "cannot create " + file.string());
  auto written = [&]() -> result<void> {
    if (int rc = mdb_env_copyfd2(env, fd.get(), MDB_CP_COMPACT); rc != 0)
      return lmdb::to_error(rc, "copying the store to " + file.string());
    if (::fsync(fd.get()) != 0) return io_failure(errno, "cannot sync " + file.string());
    if (int rc = fd.close(); rc != 0) return io_failure(rc, "cannot close " + file.string());
    return {};
  }();
  if (!written) {
    std::error_code ec;
    std::filesystem::remove(file, ec);
  }
  return written;
}

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
      if (store_.encrypted && info.state == stream_state::live) {
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
  verify_report report;
  const std::filesystem::path data_file = impl_->opts.directory / "data.mdb";
  // A file cut inside its meta pages would fault as the read transaction
  // begins: check a file that small before.
  std::error_code ec;
  const std::uint64_t file_size = std::filesystem::file_size(data_file, ec);
  if (ec) return io_failure(ec.value(), "cannot read the size of " + data_file.string());
  if (file_size < meta_pages_at_most) {
    auto pages = detail::check_pages(data_file);
    if (!pages) return std::move(pages).err();
    add_faults(report, *pages);
    if (report.faults_total != 0) return report;
  }
  // The pages of the snapshot the walk reads, read while its read
  // transaction is open (LMDB reuses no page of a live snapshot).
  std::optional<read_transaction> txn;
  for (int attempt = 1; !txn; ++attempt) {
    auto t = read();
    if (!t) return std::move(t).err();
    MDB_txn* raw = t->state_->txn.get();
    const std::uint64_t id = mdb_txn_id(raw);
    const bool last = attempt == snapshot_attempts;
    auto pages = last ? detail::check_pages(data_file) : detail::check_pages(data_file, id);
    if (!pages && pages.err().code() == errc::busy) continue;
    if (!pages) return std::move(pages).err();
    if (!last && !same_main_table(raw, impl_->main_table, pages->main_table)) continue;
    add_faults(report, *pages);
    if (last)
      add_fault(report, "no meta page of data.mdb holds the snapshot of transaction " +
                            std::to_string(id) + ", which LMDB reads");
    if (report.faults_total != 0) return report;
    txn.emplace(std::move(*t));
  }
  const detail::read_state& st = *txn->state_;
  st.check_sums = true;  // whatever options.verify_checksums says for reads
  MDB_txn* raw = st.txn.get();
  checker check(*impl_, *txn, raw, report);
  detail::index_checker indexes(st, raw, [&](std::string what) { check.fault(std::move(what)); });
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
      indexes.unreadable(pos);
      if (auto links = record::decode_links(pos, lmdb::to_view(v))) {
        event_view stub;
        stub.stream_id = links->stream_id;
        stub.version = links->version;
        stub.previous_position = links->previous_position;
        check.event(expected, pos, stub);
      }
    } else {
      check.event(expected, pos, *e);
      indexes.event(*e);
    }
    expected = pos + 1;
    ++report.events;
    if (progress && report.events % 65536 == 0) progress(report.events, head);
    found = c->get(k, v, MDB_NEXT);
  }
  if (!found) return std::move(found).err();
  check.streams();
  report.index_entries = indexes.finish();
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
    if (ec)
      return error{errc::invalid_argument,
                   "cannot make " + destination.string() + " private: " + ec.message()};
  }
  if (auto copied = copy_store(impl_->env.get(), destination / "data.mdb"); !copied) return copied;
  file_handle dir(::open(destination.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) return io_failure(errno, "cannot open " + destination.string());
  if (::fsync(dir.get()) != 0) return io_failure(errno, "cannot sync " + destination.string());
  return {};
}

}  // namespace varve
