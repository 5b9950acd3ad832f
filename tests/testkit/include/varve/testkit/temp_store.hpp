// A real event store in a fresh temporary directory, for one test.
//
//   varve::testkit::temp_store ts;                       // plain, no fsync
//   varve::testkit::temp_store sealed({.encrypted = true});
//   ts.append<bank::account>("account-1", {bank::opened{"ada"}});
//   auto txn = ts.store()->read();
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include <varve/storage/event_store.hpp>

#include "varve/testkit/events.hpp"

namespace varve::testkit {

struct temp_store_options {
  /// Create the store encrypted, under a random master key kept in memory.
  bool encrypted = false;
  /// The store's initial map size (options::map_size, the same default; it
  /// grows by itself).
  std::uint64_t map_size = std::uint64_t{64} << 20;
  /// no_sync by default: a test does not need its commits on the disk.
  durability sync = durability::no_sync;
};

/// Owns a directory made under the system's temporary directory ($TMPDIR,
/// else /tmp; mkdtemp, mode 0700) and a store opened in its subdirectory
/// "store". The destructor closes its handle of the store and removes the
/// directory with everything in it. Not copyable or movable; one thread at
/// a time (the store itself may be shared between threads as usual).
class temp_store {
 public:
  /// Makes the directory and opens the store. Throws testkit_error when the
  /// directory cannot be made or the store does not open (with its error).
  explicit temp_store(temp_store_options opts = {});
  /// Closes this handle and removes the directory. Release every copy of
  /// store() first: a store still open elsewhere keeps working on files
  /// that are gone, and the next temp_store is another directory anyway.
  ~temp_store();
  temp_store(const temp_store&) = delete;
  temp_store& operator=(const temp_store&) = delete;

  /// The store; shared, so that actors and projection engines may hold it.
  const std::shared_ptr<event_store>& store() const noexcept { return store_; }
  /// The temporary directory (the store lives in path() / "store"); other
  /// files of the test may go here and are removed with it.
  const std::filesystem::path& path() const noexcept { return path_; }
  /// The options the store was opened with (its master key included).
  const options& store_options() const noexcept { return options_; }

  /// Closes the store and opens it again with the same options, as a
  /// process restart would. Throws testkit_error when another owner still
  /// holds store() (the store would not close) or it does not open again.
  void reopen();

  /// Appends `events` to `stream`, encoded with A's codec (append_events in
  /// events.hpp: the same encoding, expectations and errors).
  template <aggregate A>
  append_result append(std::string_view stream, const std::vector<typename A::event>& events,
                       expected_version expected = expected_version::any()) {
    return append_events<A>(*store_, stream, events, expected);
  }

 private:
  std::filesystem::path path_;
  options options_;
  std::shared_ptr<event_store> store_;
};

}  // namespace varve::testkit
