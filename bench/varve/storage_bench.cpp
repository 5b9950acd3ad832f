// varve, storage API: W1a, W1b (batch append), W3 (log scan), W4 (stream
// read), W7 (W1a, W1b and W3 with encryption on), W8 (W1a, W1b and W3 with
// 10M events already stored), W9a (W1a with 2 tags per event), W9b (query
// read of a rare type, and the filtered scan it replaces) and W9d (catch-up
// on a rare type in batches, with the type index and without), each on a
// fresh store in a temporary directory.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/latency.hpp"
#include "common/main.hpp"
#include "common/options.hpp"
#include "common/payload.hpp"
#include "common/record.hpp"
#include "common/stream_reads.hpp"
#include "common/tempdir.hpp"
#include "store_setup.hpp"

namespace fs = std::filesystem;
namespace vb = varve::bench;
namespace vv = varve::bench::vv;

namespace {

/// What varies between the plain, encrypted (W7) and prefilled (W8) runs.
struct variant {
  bool encrypted = false;
  std::uint64_t prefilled = 0;     ///< events stored before the measurement
  const fs::path* seed = nullptr;  ///< a store holding them, copied for each run
  /// A plain run measured right before W7's or W8's own, as its reference
  /// ("W7" or "W8"; the report divides by it rather than by the plain run
  /// of the same workload made minutes earlier).
  const char* reference_for = nullptr;
  /// Two tags per event (W9a).
  const vb::tag_pool* tags = nullptr;
};

vb::measurement record(const vb::options& o, const variant& v, const char* workload,
                       std::uint64_t events) {
  vb::measurement m;
  m.workload = workload;
  m.system = vv::system_name;
  m.params = o.make_params(1, events, o.batch);
  m.params.encrypted = v.encrypted;
  if (v.prefilled > 0) m.params.extra["prefilled"] = v.prefilled;
  if (v.reference_for) m.params.extra["reference_for"] = v.reference_for;
  if (v.tags) m.params.extra["tags"] = 2;
  return m;
}

/// A fresh store directory in `dir`: empty, or a copy of the seed store.
fs::path fresh_store(const vb::temp_dir& dir, const variant& v) {
  const fs::path p = dir / "store";
  if (v.seed) {
    fs::create_directories(p);
    for (const auto& f : fs::directory_iterator(*v.seed))
      if (f.path().filename() != "lock.mdb") fs::copy_file(f.path(), p / f.path().filename());
    // Set-up: the copy's pages reach the disk and leave the cache before
    // the measurement (the store starts cold, as after a restart).
    vv::sync_files(p, true);
  }
  return p;
}

/// W8's seed: `n` events in a store, round-robin over 1000 streams of their
/// own ("prefill-*"), 10 events per stream and 10k per transaction (set-up:
/// no fsync).
void prefill(const fs::path& p, const vv::store_settings& ss, const vb::options& o, bool encrypted,
             std::uint64_t n) {
  auto store = vv::open_store(vv::store_options(p, ss, false, encrypted));
  const vb::payloads pl(o.payload);
  constexpr std::uint32_t streams = 1000, per_stream = 10;
  const auto names = vb::stream_names("prefill", streams);
  std::vector<varve::append_request> reqs(streams);
  for (std::uint32_t i = 0; i < streams; ++i) {
    reqs[i].stream = names[i];
    reqs[i].events.resize(per_stream);
    for (auto& e : reqs[i].events)
      e.type = std::string(vb::event_type);
  }
  vb::stopwatch clock;
  std::uint64_t done = 0, round = 0;
  while (done < n) {
    const std::uint64_t left = n - done;
    const std::uint32_t k = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(streams, (left + per_stream - 1) / per_stream));
    std::uint64_t written = 0;
    for (std::uint32_t i = 0; i < k; ++i) {
      const std::uint64_t m = std::min<std::uint64_t>(per_stream, left - written);
      reqs[i].events.resize(m);
      reqs[i].expected = varve::expected_version::exact(round * per_stream);
      for (std::uint64_t j = 0; j < m; ++j)
        reqs[i].events[j].payload.assign(pl[done + written + j]);
      written += m;
    }
    vv::must(store->append(std::span<const varve::append_request>(reqs.data(), k)), "prefill");
    done += written;
    ++round;
  }
  vv::verify_store(*store, n);
  std::cerr << "varve: prefilled " << n << " events in " << clock.elapsed_s() << " s\n";
}

void run_w1(const vb::options& o, const vv::store_settings& ss, vb::record_sink& out, bool spread,
            const variant& v) {
  vb::temp_dir dir(o.dir);
  auto store = vv::open_store(vv::store_options(fresh_store(dir, v), ss, o.sync(), v.encrypted));
  const vb::payloads pl(o.payload);
  const auto r =
      vv::write_batches(*store, pl, o.events, o.batch, o.streams, spread, "stream", 0, v.tags);
  vv::verify_store(*store, v.prefilled + o.events);

  vb::measurement m = record(o, v, spread ? "W1b" : "W1a", o.events);
  m.params.extra["streams"] = spread ? o.streams : 1;
  m.events_per_s = static_cast<double>(o.events) / r.seconds;
  m.events_per_commit = static_cast<double>(o.events) / static_cast<double>(r.commits);
  m.extra["seconds"] = r.seconds;
  m.extra["commits"] = r.commits;
  m.extra["stored_events"] = v.prefilled + o.events;
  out.write(m);
}

void run_w3(const vb::options& o, const vv::store_settings& ss, vb::record_sink& out,
            const variant& v) {
  vb::temp_dir dir(o.dir);
  auto store = vv::open_store(vv::store_options(fresh_store(dir, v), ss, false, v.encrypted));
  const vb::payloads pl(o.payload);
  vv::write_batches(*store, pl, o.events, o.batch, 1, false);  // set-up: no fsync
  const std::uint64_t total = v.prefilled + o.events;
  vv::verify_store(*store, total);
  vv::sync_files(dir / "store");

  double best = 0;
  std::uint64_t sink = 0;
  for (std::uint32_t r = 0; r < o.repeat; ++r) {
    vb::stopwatch clock;
    auto txn = vv::must(store->read(), "read");
    // Zero copy (plain stores): views into the map; touch each event's
    // version, payload size and first payload byte.
    const std::size_t n = vv::must(
        txn.scan_log(1, varve::direction::forward, SIZE_MAX,
                     [&](const varve::event_view& e) {
                       sink += e.version + e.payload.size() +
                               static_cast<unsigned char>(e.payload.empty() ? 0 : e.payload[0]);
                       return true;
                     }),
        "scan_log");
    const double seconds = clock.elapsed_s();
    if (n != total) throw std::runtime_error("W3: scanned a wrong number of events");
    best = std::max(best, static_cast<double>(n) / seconds);
  }

  vb::measurement m = record(o, v, "W3", total);
  m.params.extra["repeat"] = o.repeat;
  m.events_per_s = best;
  m.extra["checksum"] = sink;
  out.write(m);
}

void run_w4(const vb::options& o, const vv::store_settings& ss, vb::record_sink& out) {
  vb::temp_dir dir(o.dir);
  auto store = vv::open_store(vv::store_options(dir / "store", ss, false));
  const vb::payloads pl(o.payload);
  vv::write_batches(*store, pl, o.events, o.batch, o.streams, true);  // set-up: no fsync
  vv::verify_store(*store, o.events);
  vv::sync_files(dir / "store");

  const auto names = vb::stream_names("stream", o.streams);
  std::uint64_t sink = 0;
  // The same streams as lmdb-raw, each read in its own read transaction.
  auto m = vb::run_stream_reads(o, vv::system_name, names, o.events / o.streams,
                                [&](const std::string& name) -> std::uint64_t {
                                  auto txn = vv::must(store->read(), "read");
                                  return vv::must(
                                      txn.scan_stream(name, 1, varve::direction::forward, SIZE_MAX,
                                                      [&](const varve::event_view& e) {
                                                        sink += e.version + e.payload.size();
                                                        return true;
                                                      }),
                                      "scan_stream");
                                });
  m.extra["checksum"] = sink;
  out.write(m);
}

// ------------------------------------------------------------------ W9b, W9d

/// Touches what a reader of an event would: its version, payload size and
/// first payload byte (as W3).
std::uint64_t touch(const varve::event_view& e) {
  return e.version + e.payload.size() +
         static_cast<unsigned char>(e.payload.empty() ? 0 : e.payload[0]);
}

/// W9b's and W9d's set-up: the typed log (vv::write_typed), written without
/// fsync, then the files synced. Returns the number of rare events.
std::uint64_t write_typed(varve::event_store& store, const vb::temp_dir& dir,
                          const vb::options& o) {
  const std::uint64_t rare = vv::write_typed(store, vb::payloads(o.payload), o.events, o.batch);
  vv::sync_files(dir / "store");
  return rare;
}

vb::measurement w9_record(const vb::options& o, const char* workload, const char* mode,
                          std::uint64_t events) {
  vb::measurement m;
  m.workload = workload;
  m.system = vv::system_name;
  m.params = o.make_params(1, events, o.batch);
  m.params.extra["stored_events"] = o.events;
  m.params.extra["repeat"] = o.repeat;
  m.params.extra["mode"] = mode;
  return m;
}

/// W9b: reads of every event of the rare type through the type index
/// (read_transaction::scan_query of query::of_types, zero copy), each in a
/// read transaction of its own, as lmdb-raw reads its per-type index; then
/// the same events found by a scan of the whole log comparing each event's
/// type (scan_log), which is what a store without the index would do.
void run_w9b(const vb::options& o, const vv::store_settings& ss, vb::record_sink& out) {
  vb::temp_dir dir(o.dir);
  auto store = vv::open_store(vv::store_options(dir / "store", ss, false));
  const std::uint64_t rare = write_typed(*store, dir, o);
  const varve::query q = varve::query::of_types({std::string(vb::rare_event_type)});

  std::uint64_t sink = 0;
  auto m = vb::run_query_reads(o, vv::system_name, rare, [&]() -> std::uint64_t {
    auto txn = vv::must(store->read(), "read");
    return vv::must(txn.scan_query(q, 1, varve::direction::forward, SIZE_MAX,
                                   [&](const varve::event_view& e) {
                                     sink += touch(e);
                                     return true;
                                   }),
                    "scan_query");
  });
  m.params.extra["mode"] = "query";
  m.extra["checksum"] = sink;
  out.write(m);

  double best = 0, best_scan = 0;
  for (std::uint32_t r = 0; r < o.repeat; ++r) {
    vb::stopwatch clock;
    auto txn = vv::must(store->read(), "read");
    std::uint64_t matched = 0;
    const std::size_t n = vv::must(txn.scan_log(1, varve::direction::forward, SIZE_MAX,
                                                [&](const varve::event_view& e) {
                                                  if (e.type == vb::rare_event_type) {
                                                    sink += touch(e);
                                                    ++matched;
                                                  }
                                                  return true;
                                                }),
                                   "scan_log");
    const double seconds = clock.elapsed_s();
    if (n != o.events || matched != rare)
      throw std::runtime_error("W9b: the filtered scan found a wrong number of events");
    best = std::max(best, static_cast<double>(matched) / seconds);
    best_scan = std::max(best_scan, static_cast<double>(n) / seconds);
  }
  vb::measurement f = w9_record(o, "W9b-scan", "filtered-scan", rare);
  f.events_per_s = best;  // rare events found per second
  f.extra["scanned_events_per_s"] = best_scan;
  f.extra["checksum"] = sink;
  out.write(f);
}

/// W9d, storage level: what a projection filtered on the rare type reads to
/// catch up from 0 to the head, batch by batch (`o.batch` events a batch,
/// the projections' default, each batch in a read transaction of its own,
/// collected into a reused vector as the projection engine's log reader
/// does): with the type index (scan_query from the position after the
/// batch's last event), and without (read_log of every event, the type
/// compared, as the engine's filter does). Not the projection engine itself.
void run_w9d(const vb::options& o, const vv::store_settings& ss, vb::record_sink& out) {
  vb::temp_dir dir(o.dir);
  auto store = vv::open_store(vv::store_options(dir / "store", ss, false));
  const std::uint64_t rare = write_typed(*store, dir, o);
  const varve::query q = varve::query::of_types({std::string(vb::rare_event_type)});
  std::uint64_t sink = 0;

  // One catch-up; returns {events handled, batches read}.
  auto indexed = [&]() -> std::pair<std::uint64_t, std::uint64_t> {
    std::vector<varve::event_view> batch;
    batch.reserve(o.batch);
    std::uint64_t handled = 0, batches = 0;
    for (varve::global_position from = 1;;) {
      auto txn = vv::must(store->read(), "read");
      batch.clear();
      vv::must(txn.scan_query(q, from, varve::direction::forward, o.batch,
                              [&](const varve::event_view& e) {
                                batch.push_back(e);
                                return true;
                              }),
               "scan_query");
      ++batches;
      for (const auto& e : batch)
        sink += touch(e);
      handled += batch.size();
      if (batch.size() < o.batch) break;
      from = batch.back().position + 1;
    }
    return {handled, batches};
  };
  auto scanned = [&]() -> std::pair<std::uint64_t, std::uint64_t> {
    std::vector<varve::event_view> batch;
    std::uint64_t handled = 0, batches = 0;
    for (varve::global_position from = 1;;) {
      auto txn = vv::must(store->read(), "read");
      const std::size_t n =
          vv::must(txn.read_log(from, varve::direction::forward, o.batch, batch), "read_log");
      ++batches;
      for (const auto& e : batch)
        if (e.type == vb::rare_event_type) {
          sink += touch(e);
          ++handled;
        }
      if (n < o.batch) break;
      from = batch.back().position + 1;
    }
    return {handled, batches};
  };

  for (const bool with_index : {true, false}) {
    double best = 0;
    std::uint64_t batches = 0;
    for (std::uint32_t r = 0; r < o.repeat; ++r) {
      vb::stopwatch clock;
      const auto [handled, b] = with_index ? indexed() : scanned();
      const double seconds = clock.elapsed_s();
      if (handled != rare)
        throw std::runtime_error("W9d: the catch-up handled a wrong number of events");
      best = std::max(best, static_cast<double>(handled) / seconds);
      batches = b;
    }
    vb::measurement m =
        w9_record(o, with_index ? "W9d" : "W9d-scan",
                  with_index ? "storage-query-catch-up" : "storage-scan-catch-up", rare);
    m.events_per_s = best;  // rare events handled per second of catch-up
    m.extra["batches"] = batches;
    m.extra["checksum"] = sink;
    out.write(m);
  }
}

}  // namespace

int main(int argc, char** argv) {
  return vb::guarded_main([&] {
    CLI::App app{
        "varve, storage API: W1a, W1b, W3, W4; W7 (W1a, W1b, W3 encrypted); W8 (W1a, W1b, W3 "
        "with events already stored); W9a (W1a tagged), W9b (query read), W9d (catch-up on a "
        "type, storage level)"};
    vb::options o;
    vb::add_common_options(app, o);
    vv::store_settings ss;
    vv::add_store_options(app, ss);
    std::uint64_t prefilled = 10'000'000;
    app.add_option("--prefill", prefilled, "W8: events stored before the measurement")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
    CLI11_PARSE(app, argc, argv);
    vb::finish(o);

    vb::record_sink out(o.out);
    const variant plain;
    if (o.wants("W1a")) run_w1(o, ss, out, false, plain);
    if (o.wants("W1b")) run_w1(o, ss, out, true, plain);
    if (o.wants("W3")) run_w3(o, ss, out, plain);
    if (o.wants("W4")) run_w4(o, ss, out);
    // W7 and W8 are ratios to plain runs: each is measured right after a
    // plain run of the same workload (its reference), so that the two are
    // taken as close together in time as they can be.
    if (o.wants("W7")) {
      const variant ref{false, 0, nullptr, "W7"}, enc{true, 0, nullptr, nullptr};
      run_w1(o, ss, out, false, ref);
      run_w1(o, ss, out, false, enc);
      run_w1(o, ss, out, true, ref);
      run_w1(o, ss, out, true, enc);
      run_w3(o, ss, out, ref);
      run_w3(o, ss, out, enc);
    }
    if (o.wants("W8")) {
      vb::temp_dir seed_dir(o.dir);
      const fs::path seed = seed_dir / "store";
      prefill(seed, ss, o, false, prefilled);
      const variant ref{false, 0, nullptr, "W8"}, full{false, prefilled, &seed, nullptr};
      run_w1(o, ss, out, false, ref);
      run_w1(o, ss, out, false, full);
      run_w1(o, ss, out, true, ref);
      run_w1(o, ss, out, true, full);
      run_w3(o, ss, out, ref);
      run_w3(o, ss, out, full);
    }
    // W9a: W1a with two tags per event, right after an untagged reference.
    if (o.wants("W9a")) {
      const vb::tag_pool tags;
      variant ref, tagged;
      ref.reference_for = "W9a";
      tagged.tags = &tags;
      run_w1(o, ss, out, false, ref);
      run_w1(o, ss, out, false, tagged);
    }
    if (o.wants("W9b")) run_w9b(o, ss, out);
    if (o.wants("W9d")) run_w9d(o, ss, out);
    return 0;
  });
}
