#include "baselines/lmdb_layout.hpp"

#include <cstring>

namespace varve::bench::lmdb {

namespace {

constexpr std::size_t max_name = 400;  // keeps index keys under LMDB's 511 bytes

void put_be64(char* out, std::uint64_t v) noexcept {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

void put_le16(char* out, std::uint16_t v) noexcept {
  out[0] = static_cast<char>(v & 0xff);
  out[1] = static_cast<char>(v >> 8);
}

std::uint64_t load_u64(const void* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

MDB_val val_of(std::string_view s) noexcept {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

/// index key prefix + big-endian version, built in `key`.
void index_key(std::string& key, std::string_view stream, std::uint64_t version) {
  key.assign(stream);
  key.resize(stream.size() + 8);
  put_be64(key.data() + stream.size(), version);
}

void check_name(std::string_view stream) {
  if (stream.empty() || stream.size() > max_name)
    throw std::invalid_argument("stream name must have 1.." + std::to_string(max_name) + " bytes");
}

}  // namespace

error::error(int rc, const std::string& what)
    : std::runtime_error(what + ": " + mdb_strerror(rc)), rc_(rc) {}

store::store(const std::filesystem::path& dir, const store_config& config) {
  check(mdb_env_create(&env_), "mdb_env_create");
  try {
    check(mdb_env_set_mapsize(env_, config.map_size), "mdb_env_set_mapsize");
    check(mdb_env_set_maxdbs(env_, 4), "mdb_env_set_maxdbs");
    check(mdb_env_set_maxreaders(env_, config.max_readers), "mdb_env_set_maxreaders");
    unsigned flags = MDB_NOTLS;
    if (!config.sync) flags |= MDB_NOSYNC;
    check(mdb_env_open(env_, dir.c_str(), flags, 0600), "mdb_env_open");
    txn t(env_, 0);
    check(mdb_dbi_open(t.get(), "events", MDB_CREATE | MDB_INTEGERKEY, &events_),
          "mdb_dbi_open events");
    check(mdb_dbi_open(t.get(), "streams", MDB_CREATE, &streams_), "mdb_dbi_open streams");
    check(mdb_dbi_open(t.get(), "index", MDB_CREATE, &index_), "mdb_dbi_open index");
    if (config.type_index) {
      check(mdb_dbi_open(t.get(), "types", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP,
                         &types_),
            "mdb_dbi_open types");
      has_types_ = true;
    }
    t.commit();
  } catch (...) {
    mdb_env_close(env_);
    throw;
  }
}

store::~store() {
  mdb_env_close(env_);
}

void store::set_sync(bool on) {
  check(mdb_env_set_flags(env_, MDB_NOSYNC, on ? 0 : 1), "mdb_env_set_flags");
}

void store::flush() {
  check(mdb_env_sync(env_, 1), "mdb_env_sync");
}

txn::txn(MDB_env* env, unsigned flags) {
  check(mdb_txn_begin(env, nullptr, flags, &txn_), "mdb_txn_begin");
}

txn::~txn() {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
}

void txn::commit() {
  MDB_txn* t = txn_;
  txn_ = nullptr;  // mdb_txn_commit frees the transaction even when it fails
  check(mdb_txn_commit(t), "mdb_txn_commit");
}

void txn::reset_renew() {
  mdb_txn_reset(txn_);
  check(mdb_txn_renew(txn_), "mdb_txn_renew");
}

cursor::cursor(MDB_txn* t, MDB_dbi dbi) {
  check(mdb_cursor_open(t, dbi, &cursor_), "mdb_cursor_open");
}

cursor::~cursor() {
  mdb_cursor_close(cursor_);
}

std::uint64_t current_version(MDB_txn* t, const store& s, std::string_view stream) {
  MDB_val k = val_of(stream), v{};
  const int rc = mdb_get(t, s.streams(), &k, &v);
  if (rc == MDB_NOTFOUND) return 0;
  check(rc, "mdb_get streams");
  if (v.mv_size != 8) throw std::runtime_error("corrupt stream version");
  return load_u64(v.mv_data);
}

appender::appender(const store& s, MDB_txn* t) : store_(s), txn_(t), events_(t, s.events()) {
  MDB_val k{}, v{};
  const int rc = mdb_cursor_get(events_.get(), &k, &v, MDB_LAST);
  if (rc == MDB_SUCCESS) {
    next_ = load_u64(k.mv_data) + 1;
  } else if (rc != MDB_NOTFOUND) {
    check(rc, "mdb_cursor_get last event");
  }
  key_.reserve(64);
}

bool appender::append(std::string_view stream, std::uint64_t expected, std::uint64_t count,
                      const payloads& pl, std::uint64_t first_payload, std::string_view type) {
  check_name(stream);
  if (type.empty() || type.size() > max_name) throw std::invalid_argument("bad event type");
  if (current_version(txn_, store_, stream) != expected) return false;

  const std::size_t head = 8 + 2 + stream.size() + 2 + type.size();
  for (std::uint64_t k = 0; k < count; ++k) {
    const std::uint64_t version = expected + 1 + k;
    std::uint64_t position = next_;
    const std::string_view payload = pl[first_payload + k];

    // The event, written in place in its page (MDB_RESERVE).
    MDB_val key{sizeof position, &position}, val{head + payload.size(), nullptr};
    check(mdb_cursor_put(events_.get(), &key, &val, MDB_APPEND | MDB_RESERVE), "put event");
    char* out = static_cast<char*>(val.mv_data);
    std::memcpy(out, &version, 8);
    put_le16(out + 8, static_cast<std::uint16_t>(stream.size()));
    std::memcpy(out + 10, stream.data(), stream.size());
    put_le16(out + 10 + stream.size(), static_cast<std::uint16_t>(type.size()));
    std::memcpy(out + 12 + stream.size(), type.data(), type.size());
    std::memcpy(out + head, payload.data(), payload.size());

    // The stream-index entry.
    index_key(key_, stream, version);
    MDB_val ik = val_of(key_), iv{sizeof position, &position};
    check(mdb_put(txn_, store_.index(), &ik, &iv, 0), "put index entry");
    if (store_.has_type_index()) {
      // Positions only grow: each is the type's last duplicate.
      MDB_val tk = val_of(type), tv{sizeof position, &position};
      check(mdb_put(txn_, store_.types(), &tk, &tv, MDB_APPENDDUP), "put type index entry");
    }
    ++next_;
  }

  std::uint64_t now = expected + count;
  MDB_val sk = val_of(stream), sv{sizeof now, &now};
  check(mdb_put(txn_, store_.streams(), &sk, &sv, 0), "put stream version");
  return true;
}

std::uint64_t scan_log(MDB_txn* t, const store& s, std::uint64_t& sink) {
  cursor c(t, s.events());
  MDB_val k{}, v{};
  std::uint64_t n = 0;
  int rc = mdb_cursor_get(c.get(), &k, &v, MDB_FIRST);
  while (rc == MDB_SUCCESS) {
    sink += load_u64(v.mv_data) + v.mv_size;  // the event's version and size
    ++n;
    rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) check(rc, "mdb_cursor_get scan");
  return n;
}

std::uint64_t read_stream(MDB_txn* t, const store& s, std::string_view stream,
                          std::uint64_t& sink) {
  check_name(stream);
  cursor c(t, s.index());
  std::string first;
  index_key(first, stream, 1);
  MDB_val k = val_of(first), v{};
  std::uint64_t n = 0;
  int rc = mdb_cursor_get(c.get(), &k, &v, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    if (k.mv_size != stream.size() + 8 || std::memcmp(k.mv_data, stream.data(), stream.size()) != 0)
      break;  // past the stream's prefix
    MDB_val ek{sizeof(std::uint64_t), v.mv_data}, ev{};
    check(mdb_get(t, s.events(), &ek, &ev), "get indexed event");
    sink += load_u64(ev.mv_data) + ev.mv_size;
    ++n;
    rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT);
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) check(rc, "mdb_cursor_get index");
  return n;
}

std::uint64_t read_type(MDB_txn* t, const store& s, std::string_view type, std::uint64_t& sink) {
  if (!s.has_type_index()) throw std::logic_error("read_type: the store has no type index");
  cursor c(t, s.types());
  MDB_val k = val_of(type), v{};
  int rc = mdb_cursor_get(c.get(), &k, &v, MDB_SET);
  if (rc == MDB_NOTFOUND) return 0;
  check(rc, "mdb_cursor_get type");
  std::uint64_t n = 0;
  rc = mdb_cursor_get(c.get(), &k, &v, MDB_GET_MULTIPLE);
  while (rc == MDB_SUCCESS) {
    // A page of positions, packed.
    const char* at = static_cast<const char*>(v.mv_data);
    for (std::size_t i = 0; i < v.mv_size / 8; ++i) {
      std::uint64_t position = load_u64(at + 8 * i);
      MDB_val ek{sizeof position, &position}, ev{};
      check(mdb_get(t, s.events(), &ek, &ev), "get indexed event");
      const char* rec = static_cast<const char*>(ev.mv_data);
      // version | u16 stream length | stream | u16 type length | type | payload
      const std::size_t stream_len = static_cast<unsigned char>(rec[8]) |
                                     static_cast<std::size_t>(static_cast<unsigned char>(rec[9]))
                                         << 8;
      const char* tl = rec + 10 + stream_len;
      const std::size_t type_len = static_cast<unsigned char>(tl[0]) |
                                   static_cast<std::size_t>(static_cast<unsigned char>(tl[1])) << 8;
      const std::size_t payload_at = 12 + stream_len + type_len;
      const std::size_t payload_len = ev.mv_size - payload_at;
      sink += load_u64(rec) + payload_len +
              (payload_len ? static_cast<unsigned char>(rec[payload_at]) : 0);
      ++n;
    }
    rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT_MULTIPLE);
  }
  if (rc != MDB_NOTFOUND) check(rc, "mdb_cursor_get type positions");
  return n;
}

std::uint64_t verify(const store& s) {
  txn t(s.env(), MDB_RDONLY);
  MDB_stat events{}, index{};
  check(mdb_stat(t.get(), s.events(), &events), "mdb_stat events");
  check(mdb_stat(t.get(), s.index(), &index), "mdb_stat index");
  if (events.ms_entries != index.ms_entries)
    throw std::runtime_error("verify: " + std::to_string(events.ms_entries) + " events but " +
                             std::to_string(index.ms_entries) + " index entries");

  std::uint64_t versions = 0;
  {
    cursor c(t.get(), s.streams());
    MDB_val k{}, v{};
    int rc = mdb_cursor_get(c.get(), &k, &v, MDB_FIRST);
    while (rc == MDB_SUCCESS) {
      versions += load_u64(v.mv_data);
      rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT);
    }
    if (rc != MDB_NOTFOUND) check(rc, "mdb_cursor_get streams");
  }
  if (versions != events.ms_entries)
    throw std::runtime_error("verify: stream versions add up to " + std::to_string(versions) +
                             ", not " + std::to_string(events.ms_entries));

  if (s.has_type_index()) {
    MDB_stat types{};
    check(mdb_stat(t.get(), s.types(), &types), "mdb_stat types");
    if (types.ms_entries != events.ms_entries)
      throw std::runtime_error("verify: " + std::to_string(events.ms_entries) + " events but " +
                               std::to_string(types.ms_entries) + " type index entries");
  }

  if (events.ms_entries > 0) {
    cursor c(t.get(), s.events());
    MDB_val k{}, v{};
    check(mdb_cursor_get(c.get(), &k, &v, MDB_LAST), "mdb_cursor_get last");
    if (load_u64(k.mv_data) != events.ms_entries)
      throw std::runtime_error("verify: positions are not 1.." + std::to_string(events.ms_entries));
  }
  return events.ms_entries;
}

}  // namespace varve::bench::lmdb
