// What the Varve benchmark programs share: opening a store with the run's
// options, writing the W1 batches through the storage API, checking a store,
// and the actor system configuration of the actor path.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <varve/storage/event_store.hpp>

#include "common/clock.hpp"
#include "common/options.hpp"
#include "common/payload.hpp"

namespace varve::bench::vv {

inline constexpr const char* system_name = "varve";

/// The value of `r`, or an exception naming `what` and the error.
template <class T>
T must(result<T> r, std::string_view what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.err().to_string());
  return std::move(r).value();
}

inline void must(result<void> r, std::string_view what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.err().to_string());
}

/// Options of the Varve programs beyond the shared ones.
struct store_settings {
  double map_gib = 8;           ///< initial LMDB map, as the lmdb baselines use
  bool skip_checksums = false;  ///< reads do not check records' CRC32C
};

inline void add_store_options(CLI::App& app, store_settings& s) {
  app.add_option("--map-size-gib", s.map_gib, "Initial LMDB map size (it grows by itself)")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1024.0));
  app.add_flag("--skip-checksums", s.skip_checksums,
               "Reads do not check records' checksums (options.verify_checksums = false)");
}

/// The master key of encrypted runs (W7): any fixed 256-bit key.
inline std::array<std::uint8_t, 32> bench_key() {
  std::array<std::uint8_t, 32> k{};
  for (std::size_t i = 0; i < k.size(); ++i)
    k[i] = static_cast<std::uint8_t>(0xa5 ^ (i * 37));
  return k;
}

/// Options for a store in `dir`: fsync at every commit when `sync`, encrypted
/// when `encrypted`.
inline varve::options store_options(const std::filesystem::path& dir, const store_settings& s,
                                    bool sync, bool encrypted = false) {
  varve::options o;
  o.directory = dir;
  o.sync = sync ? durability::sync : durability::no_sync;
  o.map_size = static_cast<std::uint64_t>(s.map_gib * 1024 * 1024 * 1024);
  o.max_map_size = std::max(o.max_map_size, o.map_size);
  o.verify_checksums = !s.skip_checksums;
  if (encrypted) o.master_key = bench_key();
  return o;
}

inline std::shared_ptr<event_store> open_store(varve::options o) {
  return std::shared_ptr<event_store>(must(event_store::open(std::move(o)), "opening the store"));
}

/// Writes the files of a store directory to disk (fsync each), so that
/// set-up writes made without fsync (or a copied store) do not leave dirty
/// pages behind for the measurement's first sync or for background writeback.
/// Safe while the store is open. As lmdb-raw's set-up ends with mdb_env_sync.
/// With `evict`, also drops the files' pages from the page cache, so that a
/// copied store starts as a store written earlier would after a restart:
/// a copy leaves its whole file cached in large folios, and rewriting one
/// 4 KiB page of such a folio writes the whole folio back (W8 measured
/// 683 MB written per 1M events on a fresh copy, 502 MB with the copy
/// evicted, 475 MB on an empty store).
inline void sync_files(const std::filesystem::path& dir, bool evict = false) {
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (!f.is_regular_file()) continue;
    const int fd = ::open(f.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + f.path().string() + " to sync it");
    int rc = ::fsync(fd);
    if (rc == 0 && evict) rc = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    if (rc != 0) throw std::runtime_error("fsync of " + f.path().string() + " failed");
  }
}

struct batch_result {
  std::uint64_t commits = 0;
  double seconds = 0;
};

/// The W1 writes through the storage API: `events` events in transactions of
/// `batch`, to one stream with event_store::append (a batch of `batch` events
/// under exact(version)), or round-robin over `streams` streams with
/// event_store::write (`batch` single-event requests, each under exact(version)).
/// Event i gets payload i + `payload_offset` and, with `tags` (W9a), the
/// two tags tags->course(i) and tags->student(i). Events are built in place
/// in reused vectors, inside the timed loop (the API takes owned strings).
inline batch_result write_batches(event_store& s, const payloads& pl, std::uint64_t events,
                                  std::uint32_t batch, std::uint32_t streams, bool spread,
                                  std::string_view prefix = "stream",
                                  std::uint64_t payload_offset = 0,
                                  const tag_pool* tags = nullptr) {
  const auto names = stream_names(prefix, spread ? streams : 1);
  std::vector<std::uint64_t> versions(names.size(), 0);
  batch_result r;
  stopwatch clock;
  if (!spread) {
    std::vector<new_event> evs(batch);
    for (auto& e : evs) {
      e.type = std::string(event_type);
      if (tags) e.tags.resize(2);
    }
    for (std::uint64_t done = 0; done < events;) {
      const std::uint64_t n = std::min<std::uint64_t>(batch, events - done);
      for (std::uint64_t k = 0; k < n; ++k) {
        const std::uint64_t i = payload_offset + done + k;
        evs[k].payload.assign(pl[i]);
        if (tags) {
          evs[k].tags[0].assign(tags->course(i));
          evs[k].tags[1].assign(tags->student(i));
        }
      }
      auto a = s.append(names[0], expected_version::exact(versions[0]),
                        std::span<const new_event>(evs.data(), n));
      if (!a) throw std::runtime_error("append to " + names[0] + ": " + a.err().to_string());
      if (a->last_version != versions[0] + n)
        throw std::runtime_error("append to " + names[0] + ": wrong version");
      versions[0] += n;
      ++r.commits;
      done += n;
    }
  } else {
    std::vector<write_request> reqs(batch);
    for (auto& w : reqs) {
      w.appends.resize(1);
      w.appends[0].events.resize(1);
      w.appends[0].events[0].type = std::string(event_type);
      if (tags) w.appends[0].events[0].tags.resize(2);
    }
    std::vector<std::size_t> which(batch);
    for (std::uint64_t done = 0; done < events;) {
      const std::uint64_t n = std::min<std::uint64_t>(batch, events - done);
      for (std::uint64_t k = 0; k < n; ++k) {
        const std::size_t i = (done + k) % names.size();
        append_request& a = reqs[k].appends[0];
        a.stream.assign(names[i]);
        a.expected = expected_version::exact(versions[i]++);
        a.events[0].payload.assign(pl[payload_offset + done + k]);
        if (tags) {
          a.events[0].tags[0].assign(tags->course(payload_offset + done + k));
          a.events[0].tags[1].assign(tags->student(payload_offset + done + k));
        }
        which[k] = i;
      }
      auto out = s.write(std::span<const write_request>(reqs.data(), n));
      if (!out) throw std::runtime_error("write: " + out.err().to_string());
      for (std::uint64_t k = 0; k < n; ++k) {
        const write_outcome& o = (*out)[k];
        if (!o)
          throw std::runtime_error("append to " + names[which[k]] + ": " + o.err().to_string());
      }
      ++r.commits;
      done += n;
    }
  }
  r.seconds = clock.elapsed_s();
  return r;
}

/// Checks a store holding `expected` events: the head, and every stream's
/// version adding up to it. Returns the number of streams.
inline std::uint64_t verify_store(const event_store& s, std::uint64_t expected) {
  auto txn = must(s.read(), "read");
  if (txn.head() != expected)
    throw std::runtime_error("verify: head " + std::to_string(txn.head()) + ", expected " +
                             std::to_string(expected));
  std::uint64_t total = 0, streams = 0;
  must(txn.scan_streams([&](std::string_view, const stream_info& info) {
    total += info.version;
    ++streams;
    return true;
  }),
       "verify: scanning the streams");
  if (total != expected)
    throw std::runtime_error("verify: stream versions add up to " + std::to_string(total) +
                             ", expected " + std::to_string(expected));
  return streams;
}

/// W9's typed log (W9b and W9d): `events` events to one stream in
/// transactions of `batch`, event i of W9's rare type when is_rare(i)
/// (0.1%), the others of the usual type, then checked. Returns the number of
/// rare events. The caller syncs the files when it wrote without fsync.
inline std::uint64_t write_typed(event_store& s, const payloads& pl, std::uint64_t events,
                                 std::uint32_t batch) {
  const std::string stream = stream_name("stream", 0);
  std::vector<new_event> evs(batch);
  for (std::uint64_t done = 0; done < events;) {
    const std::uint64_t n = std::min<std::uint64_t>(batch, events - done);
    for (std::uint64_t k = 0; k < n; ++k) {
      evs[k].type.assign(is_rare(done + k) ? rare_event_type : event_type);
      evs[k].payload.assign(pl[done + k]);
    }
    must(s.append(stream, expected_version::exact(done), std::span<const new_event>(evs.data(), n)),
         "W9 set-up append");
    done += n;
  }
  verify_store(s, events);
  return rare_count(events);
}

}  // namespace varve::bench::vv
