// lmdb-raw: the event-store layout of lmdb_layout.hpp with plain LMDB C calls,
// one transaction per batch (W1) or per event (W2, writers contending on
// LMDB's writer lock), a bare cursor scan (W3), indexed stream reads (W4) and
// reads of a rare event type through a dense per-type index (W9b).
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "baselines/lmdb_layout.hpp"
#include "common/clock.hpp"
#include "common/concurrent.hpp"
#include "common/main.hpp"
#include "common/options.hpp"
#include "common/payload.hpp"
#include "common/record.hpp"
#include "common/stream_reads.hpp"
#include "common/tempdir.hpp"

namespace vb = varve::bench;
namespace lm = varve::bench::lmdb;

namespace {

constexpr const char* system_name = "lmdb-raw";

struct batch_result {
  std::uint64_t commits = 0;
  double seconds = 0;
};

/// Appends `events` events in transactions of `batch`: to one stream, or
/// round-robin over `streams` streams (event i to stream i % streams), each
/// append checking the stream's exact expected version.
batch_result write_batches(lm::store& s, const vb::payloads& pl, std::uint64_t events,
                           std::uint32_t batch, std::uint32_t streams, bool spread) {
  const auto names = vb::stream_names("stream", spread ? streams : 1);
  std::vector<std::uint64_t> versions(names.size(), 0);
  batch_result r;
  vb::stopwatch clock;
  for (std::uint64_t done = 0; done < events;) {
    const std::uint64_t n = std::min<std::uint64_t>(batch, events - done);
    lm::txn t(s.env(), 0);
    lm::appender a(s, t.get());
    if (!spread) {
      if (!a.append(names[0], versions[0], n, pl, done))
        throw std::runtime_error("unexpected version conflict on " + names[0]);
      versions[0] += n;
    } else {
      for (std::uint64_t k = 0; k < n; ++k) {
        const std::size_t i = (done + k) % names.size();
        if (!a.append(names[i], versions[i], 1, pl, done + k))
          throw std::runtime_error("unexpected version conflict on " + names[i]);
        ++versions[i];
      }
    }
    t.commit();
    ++r.commits;
    done += n;
  }
  r.seconds = clock.elapsed_s();
  return r;
}

void run_w1(const vb::options& o, const lm::store_config& cfg, vb::record_sink& out, bool spread) {
  vb::temp_dir dir(o.dir);
  lm::store s(dir.path(), cfg);
  const vb::payloads pl(o.payload);
  const batch_result r = write_batches(s, pl, o.events, o.batch, o.streams, spread);
  if (lm::verify(s) != o.events) throw std::runtime_error("W1: wrong event count");

  vb::measurement m;
  m.workload = spread ? "W1b" : "W1a";
  m.system = system_name;
  m.params = o.make_params(1, o.events, o.batch);
  m.params.extra["streams"] = spread ? o.streams : 1;
  m.events_per_s = static_cast<double>(o.events) / r.seconds;
  m.events_per_commit = static_cast<double>(o.events) / static_cast<double>(r.commits);
  m.extra["seconds"] = r.seconds;
  out.write(m);
}

void run_w2(const vb::options& o, const lm::store_config& cfg, vb::record_sink& out,
            std::uint32_t writers) {
  vb::temp_dir dir(o.dir);
  lm::store s(dir.path(), cfg);
  const vb::payloads pl(o.payload);

  const auto result = vb::run_concurrent_appends(o.w2_config(writers), [&](std::uint32_t w) {
    return vb::append_fn(
        [&s, &pl, w, name = vb::stream_name("writer", w), version = std::uint64_t{0}]() mutable {
          lm::txn t(s.env(), 0);  // waits for LMDB's writer lock
          lm::appender a(s, t.get());
          if (!a.append(name, version, 1, pl, version + w))
            throw std::runtime_error("unexpected version conflict on " + name);
          t.commit();  // durable here
          ++version;
        });
  });
  const std::uint64_t stored = lm::verify(s);

  vb::measurement m;
  m.workload = "W2";
  m.system = system_name;
  m.params = o.make_params(writers, result.events, 1);
  m.events_per_s = result.events_per_s();
  m.p50_us = result.latency.p50_us;
  m.p99_us = result.latency.p99_us;
  m.events_per_commit = 1.0;
  m.extra["seconds"] = result.seconds;
  m.extra["max_us"] = result.latency.max_us;
  m.extra["stored_events"] = stored;
  out.write(m);
}

void run_w3(const vb::options& o, const lm::store_config& cfg, vb::record_sink& out) {
  vb::temp_dir dir(o.dir);
  lm::store s(dir.path(), cfg);
  const vb::payloads pl(o.payload);
  s.set_sync(false);  // set-up: the scan is what is measured
  write_batches(s, pl, o.events, o.batch, 1, false);
  s.flush();

  double best = 0;
  std::uint64_t sink = 0;
  for (std::uint32_t r = 0; r < o.repeat; ++r) {
    vb::stopwatch clock;
    lm::txn t(s.env(), MDB_RDONLY);
    const std::uint64_t n = lm::scan_log(t.get(), s, sink);
    const double seconds = clock.elapsed_s();
    if (n != o.events) throw std::runtime_error("W3: scanned a wrong number of events");
    best = std::max(best, static_cast<double>(n) / seconds);
  }

  vb::measurement m;
  m.workload = "W3";
  m.system = system_name;
  m.params = o.make_params(1, o.events, o.batch);
  m.params.extra["repeat"] = o.repeat;
  m.events_per_s = best;
  m.extra["checksum"] = sink;
  out.write(m);
}

void run_w4(const vb::options& o, const lm::store_config& cfg, vb::record_sink& out) {
  vb::temp_dir dir(o.dir);
  lm::store s(dir.path(), cfg);
  const vb::payloads pl(o.payload);
  s.set_sync(false);  // set-up: the reads are what is measured
  write_batches(s, pl, o.events, o.batch, o.streams, true);
  s.flush();

  const auto names = vb::stream_names("stream", o.streams);
  std::uint64_t sink = 0;
  lm::txn t(s.env(), MDB_RDONLY);
  auto m = vb::run_stream_reads(o, system_name, names, o.events / o.streams,
                                [&](const std::string& name) {
                                  t.reset_renew();  // a read transaction of its own
                                  return lm::read_stream(t.get(), s, name, sink);
                                });
  m.extra["checksum"] = sink;
  out.write(m);
}

/// W9b: `events` events to one stream in transactions of `batch`, event i
/// of W9's rare type when is_rare(i), the others of the usual type; every
/// event's position also goes to the type index.
void write_typed(lm::store& s, const vb::payloads& pl, std::uint64_t events, std::uint32_t batch) {
  const std::string stream = vb::stream_name("stream", 0);
  std::uint64_t version = 0;
  for (std::uint64_t done = 0; done < events;) {
    const std::uint64_t n = std::min<std::uint64_t>(batch, events - done);
    lm::txn t(s.env(), 0);
    lm::appender a(s, t.get());
    // Runs of one type, each one append.
    for (std::uint64_t k = 0; k < n;) {
      const bool rare = vb::is_rare(done + k);
      std::uint64_t run = 1;
      while (k + run < n && vb::is_rare(done + k + run) == rare)
        ++run;
      if (!a.append(stream, version, run, pl, done + k,
                    rare ? vb::rare_event_type : vb::event_type))
        throw std::runtime_error("unexpected version conflict on " + stream);
      version += run;
      k += run;
    }
    t.commit();
    done += n;
  }
}

void run_w9b(const vb::options& o, lm::store_config cfg, vb::record_sink& out) {
  vb::temp_dir dir(o.dir);
  cfg.type_index = true;
  lm::store s(dir.path(), cfg);
  const vb::payloads pl(o.payload);
  s.set_sync(false);  // set-up: the reads are what is measured
  write_typed(s, pl, o.events, o.batch);
  s.flush();
  if (lm::verify(s) != o.events) throw std::runtime_error("W9b: wrong event count");

  std::uint64_t sink = 0;
  lm::txn t(s.env(), MDB_RDONLY);
  auto m = vb::run_query_reads(o, system_name, vb::rare_count(o.events), [&] {
    t.reset_renew();  // a read transaction of its own
    return lm::read_type(t.get(), s, vb::rare_event_type, sink);
  });
  m.params.extra["mode"] = "type-index";
  m.extra["checksum"] = sink;
  out.write(m);
}

}  // namespace

int main(int argc, char** argv) {
  return vb::guarded_main([&] {
    CLI::App app{
        "lmdb-raw: the event-store layout on plain LMDB (W1a, W1b, W2, W3, W4; W9b with a "
        "per-type index)"};
    vb::options o;
    vb::add_common_options(app, o);
    double map_gib = 8;
    app.add_option("--map-size-gib", map_gib, "LMDB map size")
        ->capture_default_str()
        ->check(CLI::Range(0.01, 1024.0));
    CLI11_PARSE(app, argc, argv);
    vb::finish(o);
    vb::raise_fd_limit();

    lm::store_config cfg;
    cfg.sync = o.sync();
    cfg.map_size = static_cast<std::uint64_t>(map_gib * 1024 * 1024 * 1024);
    vb::record_sink out(o.out);
    if (o.wants("W1a")) run_w1(o, cfg, out, false);
    if (o.wants("W1b")) run_w1(o, cfg, out, true);
    if (o.wants("W2"))
      for (std::uint32_t w : o.writers)
        run_w2(o, cfg, out, w);
    if (o.wants("W3")) run_w3(o, cfg, out);
    if (o.wants("W4")) run_w4(o, cfg, out);
    if (o.wants("W9b")) run_w9b(o, cfg, out);
    return 0;
  });
}
