// The event-store layout on plain LMDB that lmdb-raw and lmdb-group share: the
// least work that keeps an event store's invariants (BENCHMARKS.md).
//
//   events   u64 global position (MDB_INTEGERKEY, appended with MDB_APPEND)
//            -> record: u64 version | u16 stream length | stream | u16 type length
//               | type | payload            (integers little-endian)
//   streams  stream name -> u64 current version (absent: 0, no events yet)
//   index    stream name + big-endian u64 version -> u64 position
//   types    (only with store_config::type_index, W9b) event type -> u64
//            positions, a dense per-type index: MDB_DUPSORT | MDB_DUPFIXED |
//            MDB_INTEGERDUP, so a type's positions lie packed in its
//            duplicate pages, in position order, read a page at a time
//            (MDB_GET_MULTIPLE)
//
// Positions start at 1; a stream's first event has version 1. An append with
// expected version v succeeds only when the stream's current version is v.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/payload.hpp"

namespace varve::bench::lmdb {

/// An LMDB call failed.
class error : public std::runtime_error {
 public:
  error(int rc, const std::string& what);
  int code() const noexcept { return rc_; }

 private:
  int rc_;
};

/// Throws `error` unless rc == MDB_SUCCESS.
inline void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) throw error(rc, what);
}

struct store_config {
  bool sync = true;                                 ///< fsync at every commit
  std::uint64_t map_size = std::uint64_t{8} << 30;  ///< 8 GiB
  unsigned max_readers = 1100;
  bool type_index = false;  ///< also keep the `types` index (W9b)
};

/// An environment with the three databases, opened with MDB_NOTLS.
class store {
 public:
  store(const std::filesystem::path& dir, const store_config& config);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  MDB_env* env() const noexcept { return env_; }
  MDB_dbi events() const noexcept { return events_; }
  MDB_dbi streams() const noexcept { return streams_; }
  MDB_dbi index() const noexcept { return index_; }
  /// The per-type index; only with store_config::type_index.
  MDB_dbi types() const noexcept { return types_; }
  bool has_type_index() const noexcept { return has_types_; }

  /// Turns fsync at commit on or off (e.g. off for a read workload's set-up).
  void set_sync(bool on);
  /// Flushes everything to disk now.
  void flush();

 private:
  MDB_env* env_ = nullptr;
  MDB_dbi events_ = 0, streams_ = 0, index_ = 0, types_ = 0;
  bool has_types_ = false;
};

/// A transaction that aborts unless committed.
class txn {
 public:
  txn(MDB_env* env, unsigned flags);
  ~txn();
  txn(const txn&) = delete;
  txn& operator=(const txn&) = delete;
  MDB_txn* get() const noexcept { return txn_; }
  void commit();
  /// Read-only transactions: release the snapshot and take a new one.
  void reset_renew();

 private:
  MDB_txn* txn_ = nullptr;
};

/// A cursor, closed on destruction.
class cursor {
 public:
  cursor(MDB_txn* t, MDB_dbi dbi);
  ~cursor();
  cursor(const cursor&) = delete;
  cursor& operator=(const cursor&) = delete;
  MDB_cursor* get() const noexcept { return cursor_; }

 private:
  MDB_cursor* cursor_ = nullptr;
};

/// Appends events inside one write transaction.
class appender {
 public:
  /// Finds the next global position (one cursor step to the last event).
  appender(const store& s, MDB_txn* t);

  /// If `stream`'s current version is `expected`, appends `count` events to it
  /// (versions expected+1 .. expected+count, payloads pl[first_payload + k],
  /// all of type `type`) and returns true; otherwise writes nothing and
  /// returns false. With a type index, each event's position is added to it.
  bool append(std::string_view stream, std::uint64_t expected, std::uint64_t count,
              const payloads& pl, std::uint64_t first_payload, std::string_view type = event_type);

  std::uint64_t next_position() const noexcept { return next_; }

 private:
  const store& store_;
  MDB_txn* txn_;
  cursor events_;
  std::uint64_t next_ = 1;
  std::string key_;
};

/// A stream's current version in `t` (0 when it has no events).
std::uint64_t current_version(MDB_txn* t, const store& s, std::string_view stream);

/// Reads every event of the log in position order, touching each value;
/// returns the number of events. `sink` accumulates what was read.
std::uint64_t scan_log(MDB_txn* t, const store& s, std::uint64_t& sink);

/// Reads every event of `stream` in version order through the stream index
/// (a cursor range over the stream's index prefix and a get per event),
/// touching each value; returns the number of events.
std::uint64_t read_stream(MDB_txn* t, const store& s, std::string_view stream, std::uint64_t& sink);

/// Reads every event of type `type` in position order through the type
/// index (its positions a page at a time, then a get per event), touching
/// each event's version, size and first payload byte; returns the number
/// of events. Needs store_config::type_index.
std::uint64_t read_type(MDB_txn* t, const store& s, std::string_view type, std::uint64_t& sink);

/// Checks the store's invariants: as many index entries as events, the
/// stream versions adding up to the number of events, positions 1..N, and
/// with a type index as many positions in it as events.
/// Throws std::runtime_error naming the broken one; returns the event count.
std::uint64_t verify(const store& s);

}  // namespace varve::bench::lmdb
