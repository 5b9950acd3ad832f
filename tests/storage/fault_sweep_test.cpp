// Fault injection at the LMDB boundary (varve/storage/testing.hpp): a
// workload of batches, multi-stream appends, idempotent re-appends, cursors,
// snapshots, views, a shred and (encrypted) a key rotation runs once per LMDB
// call of its write path, with that call failing with EIO, ENOSPC or
// MDB_MAP_FULL. After each run:
//   - every request is committed whole or not at all;
//   - every acknowledged event (and cursor, snapshot, view row) reads back
//     after reopening, where and as it was acknowledged;
//   - the handle either works or answers failed_state (only after a failed
//     commit), and the reopened store works and verifies clean;
//   - MDB_MAP_FULL anywhere inside a transaction only makes the map grow:
//     every request is acknowledged as without the fault.
#define BOOST_TEST_MODULE fault_sweep
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "temp_dir.hpp"
#include "varve/storage/testing.hpp"

using namespace varve;
using varve_test::temp_dir;

namespace {

/// Counts the write path's LMDB calls and fails the k-th one (1-based;
/// 0: none) with `code`; remembers every call site it saw.
class kth_call_fails final : public fault_injector {
 public:
  kth_call_fails(std::uint64_t k, int code) : k_(k), code_(code) {}
  int before(lmdb_call) override { return 0; }
  int before(lmdb_call call, const lmdb_call_site& site) override {
    ++calls_;
    sites_.insert(std::string(site.file.substr(site.file.rfind('/') + 1)) + ":" +
                  std::to_string(site.line) + " " + std::string(to_string(call)));
    if (calls_ != k_) return 0;
    failed_call_ = call;
    return code_;
  }
  std::uint64_t calls() const { return calls_; }
  const std::set<std::string>& sites() const { return sites_; }
  std::optional<lmdb_call> failed_call() const { return failed_call_; }

 private:
  std::uint64_t k_;
  int code_;
  std::uint64_t calls_ = 0;
  std::set<std::string> sites_;
  std::optional<lmdb_call> failed_call_;
};

new_event marked(std::string marker, std::size_t size = 40) {
  new_event e;
  e.type = "noted";
  e.payload = marker + std::string(size, '.');
  e.metadata = "{\"m\":\"" + marker + "\"}";
  return e;
}

/// What one request of the workload would leave in the store, by unique
/// markers: the payload markers of its events, and its cursor, snapshot and
/// view row.
struct request_marks {
  explicit request_marks(std::string l) : label(std::move(l)) {}
  std::string label;
  std::vector<std::string> events;             // payload markers, in order
  std::optional<std::string> cursor;           // consumer name (position = its number)
  std::optional<std::string> snapshot_stream;  // stream whose snapshot it writes
  std::optional<std::string> view_key;         // key it puts in view "rows"
  bool acked = false;
  std::vector<append_result> results;
};

/// The workload, as steps over a store; each step records its requests'
/// marks and whether they were acknowledged.
struct workload {
  std::vector<request_marks> requests;
  std::vector<std::string> shredded;
  int step_errors = 0;

  void batch(event_store& store, int step) {
    std::vector<write_request> reqs;
    std::vector<request_marks> marks;
    for (int r = 0; r < 4; ++r) {
      const std::string label = "b" + std::to_string(step) + "r" + std::to_string(r);
      write_request w;
      request_marks m(label);
      const std::string stream = r < 2 ? "new-" + label : "old-" + std::to_string(r);
      std::vector<new_event> events;
      for (int i = 0; i < 1 + (step + r) % 3; ++i) {
        m.events.push_back(label + "e" + std::to_string(i));
        events.push_back(marked(m.events.back(), r == 3 && step == 2 ? 3000 : 40));
      }
      w.appends.push_back({stream, r < 2 ? expected_version::no_stream() : expected_version::any(),
                           std::move(events)});
      if (r == 1) {
        m.cursor = "consumer-" + label;
        w.cursors.push_back({*m.cursor, static_cast<global_position>(step * 10 + r)});
      }
      if (r == 2) {
        m.view_key = label;
        w.views.push_back({"rows", view_update::op::put, label, "value-" + label});
      }
      if (r == 3 && step > 0) {
        m.snapshot_stream = "old-3";
        w.snapshots.push_back({"old-3", 1, 7, "snapshot-" + label});
      }
      reqs.push_back(std::move(w));
      marks.push_back(std::move(m));
    }
    auto out = store.write(reqs);
    for (std::size_t i = 0; i < marks.size(); ++i) {
      if (out && (*out)[i]) {
        marks[i].acked = true;
        marks[i].results = *(*out)[i];
      }
      requests.push_back(std::move(marks[i]));
    }
    if (!out) ++step_errors;
  }

  void multi_stream(event_store& store, int step) {
    const std::string label = "m" + std::to_string(step);
    request_marks m(label);
    std::vector<append_request> reqs;
    for (int s = 0; s < 3; ++s) {
      m.events.push_back(label + "s" + std::to_string(s));
      reqs.push_back(
          {"multi-" + std::to_string(s), expected_version::any(), {marked(m.events.back())}});
    }
    auto out = store.append(reqs);
    if (out) {
      m.acked = true;
      m.results = *out;
    }
    requests.push_back(std::move(m));
  }

  /// 70 events to one stream: its first stream-index chunk gets written.
  void long_stream(event_store& store) {
    request_marks m("long");
    std::vector<new_event> events;
    for (int i = 0; i < 70; ++i) {
      m.events.push_back("long-e" + std::to_string(i));
      events.push_back(marked(m.events.back()));
    }
    auto out = store.append("long", expected_version::no_stream(), events);
    if (out) {
      m.acked = true;
      m.results = {*out};
    }
    requests.push_back(std::move(m));
  }

  /// The same events again, with their ids: idempotent, nothing written.
  void idempotent(event_store& store) {
    std::vector<new_event> events = {marked("idem-e0"), marked("idem-e1")};
    events[0].id = event_id::parse("0190a1b2c3d47e5f8a9b0c1d2e3f4a5b");
    events[1].id = event_id::parse("0190a1b2c3d47e5f8a9b0c1d2e3f4a5c");
    request_marks m("idem");
    m.events = {"idem-e0", "idem-e1"};
    auto first = store.append("idem", expected_version::no_stream(), events);
    if (first) {
      m.acked = true;
      m.results = {*first};
    }
    requests.push_back(std::move(m));
    auto again = store.append("idem", expected_version::no_stream(), events);
    if (again && first) BOOST_CHECK(again->idempotent);
  }

  void run(event_store& store, bool encrypted) {
    batch(store, 0);
    multi_stream(store, 0);
    long_stream(store);
    batch(store, 1);
    idempotent(store);
    if (store.shred("new-b0r0")) shredded.push_back("new-b0r0");
    batch(store, 2);
    if (encrypted) (void)store.rotate_master_key(key_of(2));
    multi_stream(store, 1);
  }

  static std::array<std::uint8_t, 32> key_of(std::uint8_t seed) {
    std::array<std::uint8_t, 32> k{};
    k.fill(seed);
    return k;
  }
};

/// One run of the workload with the k-th call failing; the checks.
struct sweep_run {
  temp_dir dir;
  options opts;
  std::shared_ptr<kth_call_fails> faults;
  workload work;

  sweep_run(bool encrypted, std::uint64_t k, int code) {
    opts = varve_test::test_options(dir / "store");
    opts.map_size = std::uint64_t{64} << 10;  // small: the workload grows it
    if (encrypted) opts.master_key = workload::key_of(1);
    {
      auto store = varve_test::open_store(opts);
      // Streams that exist before the faults.
      for (int r = 2; r < 4; ++r)
        BOOST_REQUIRE(store
                          ->append("old-" + std::to_string(r), expected_version::any(),
                                   {{marked("before-" + std::to_string(r))}})
                          .ok());
      faults = std::make_shared<kth_call_fails>(k, code);
      testing_inject_faults(*store, faults);
      work.run(*store, encrypted);
      check_handle(*store);
    }
  }

  /// The handle works, or answers failed_state after a failed commit.
  void check_handle(event_store& store) {
    testing_inject_faults(store, nullptr);
    auto probe = store.append("probe", expected_version::any(), {{marked("probe")}});
    if (store.failed()) {
      VARVE_CHECK_ERRC(probe, errc::failed_state);
      BOOST_CHECK(faults->failed_call() == lmdb_call::txn_commit);
    } else {
      VARVE_CHECK_OK(probe);
    }
  }

  /// Reopens the store and checks every request: whole or nothing, and
  /// acknowledged ones where they were acknowledged.
  void check_store(const options& reopen_with) {
    auto store = varve_test::open_store(reopen_with);
    auto log = store->read_log();
    VARVE_REQUIRE_OK(log);
    std::map<std::string, recorded_event> by_marker;
    for (const recorded_event& e : *log) {
      const std::string marker =
          e.metadata.empty() ? "" : e.metadata.substr(6, e.metadata.size() - 8);
      if (!marker.empty()) by_marker.emplace(marker, e);
    }
    check_requests(*store, by_marker);
    auto report = store->verify();
    VARVE_REQUIRE_OK(report);
    BOOST_CHECK_MESSAGE(report->faults_total == 0,
                        "verify: " << (report->faults.empty() ? "" : report->faults.front()));
    auto after = store->append("after", expected_version::any(), {{marked("after")}});
    VARVE_CHECK_OK(after);
  }

  void check_requests(event_store& store, const std::map<std::string, recorded_event>& by_marker) {
    auto tx = store.read();
    VARVE_REQUIRE_OK(tx);
    for (const request_marks& m : work.requests) {
      BOOST_TEST_CONTEXT("request " << m.label << (m.acked ? " (acknowledged)" : " (failed)")) {
        std::size_t found = 0;
        for (const std::string& marker : m.events)
          found += by_marker.count(marker);
        const bool shredded = !m.events.empty() && m.label == "b0r0" && !work.shredded.empty();
        if (shredded) continue;  // its payloads are gone by design
        BOOST_CHECK_MESSAGE(found == 0 || found == m.events.size(),
                            found << " of " << m.events.size() << " events committed");
        if (m.acked) BOOST_CHECK_EQUAL(found, m.events.size());
        if (!m.acked && m.label != "idem") BOOST_CHECK_EQUAL(found, 0u);
        // Acknowledged events sit where the store said.
        if (m.acked && found == m.events.size()) {
          std::vector<global_position> positions;
          for (const append_result& r : m.results)
            for (global_position p = r.first_position; p <= r.last_position; ++p)
              positions.push_back(p);
          BOOST_REQUIRE_EQUAL(positions.size(), m.events.size());
          for (std::size_t i = 0; i < m.events.size(); ++i)
            BOOST_CHECK_EQUAL(by_marker.at(m.events[i]).position, positions[i]);
        }
        const bool whole = m.acked || found > 0;
        if (m.cursor) {
          auto c = tx->cursor(*m.cursor);
          VARVE_REQUIRE_OK(c);
          BOOST_CHECK_EQUAL(c->has_value(), whole);
        }
        if (m.view_key) {
          auto v = tx->view_get("rows", *m.view_key);
          VARVE_REQUIRE_OK(v);
          BOOST_CHECK_EQUAL(v->has_value(), whole);
        }
        if (m.snapshot_stream && m.acked) {
          auto s = tx->snapshot(*m.snapshot_stream);
          VARVE_REQUIRE_OK(s);
          BOOST_CHECK(s->has_value());
        }
      }
    }
  }
};

/// The number of write-path calls of the workload, and their sites.
std::pair<std::uint64_t, std::set<std::string>> baseline(bool encrypted, std::vector<bool>& acked) {
  sweep_run clean(encrypted, 0, 0);
  acked.clear();
  for (const auto& m : clean.work.requests)
    acked.push_back(m.acked);
  return {clean.faults->calls(), clean.faults->sites()};
}

void sweep(bool encrypted) {
  std::vector<bool> acked_without_faults;
  const auto [calls, sites] = baseline(encrypted, acked_without_faults);
  for (bool a : acked_without_faults)
    BOOST_REQUIRE(a);
  std::set<std::string> kinds;
  for (const std::string& s : sites)
    kinds.insert(s.substr(s.rfind(' ') + 1));
  BOOST_TEST_MESSAGE((encrypted ? "encrypted" : "plain")
                     << ": " << calls << " write-path calls at " << sites.size() << " call sites ("
                     << kinds.size() << " kinds of call)");
  for (const std::string& s : sites)
    BOOST_TEST_MESSAGE("  site " << s);
  BOOST_CHECK(kinds.count("txn_commit") && kinds.count("put") && kinds.count("cursor_put") &&
              kinds.count("get") && kinds.count("set_mapsize") && kinds.count("dbi_open"));
  std::uint64_t runs = 0;
  for (const int code : {EIO, ENOSPC, lmdb_map_full}) {
    for (std::uint64_t k = 1; k <= calls; ++k) {
      BOOST_TEST_CONTEXT((encrypted ? "encrypted" : "plain")
                         << ", call " << k << " of " << calls << " fails with "
                         << (code == EIO      ? "EIO"
                             : code == ENOSPC ? "ENOSPC"
                                              : "MDB_MAP_FULL")) {
        sweep_run run(encrypted, k, code);
        ++runs;
        options reopen_with = run.opts;
        // A rotation that committed changed the key the store opens with.
        if (encrypted && !event_store::open(run.opts).ok())
          reopen_with.master_key = workload::key_of(2);
        run.check_store(reopen_with);
        const auto failed = run.faults->failed_call();
        if (code == lmdb_map_full && failed && *failed != lmdb_call::set_mapsize &&
            *failed != lmdb_call::txn_begin) {
          // MDB_MAP_FULL inside a transaction or at its commit: the map grows
          // and every request goes through as without the fault.
          for (std::size_t i = 0; i < run.work.requests.size(); ++i)
            BOOST_CHECK_MESSAGE(
                run.work.requests[i].acked == acked_without_faults[i],
                "request " << run.work.requests[i].label << " was not acknowledged");
        }
      }
    }
  }
  BOOST_TEST_MESSAGE((encrypted ? "encrypted" : "plain") << ": " << runs << " faulted runs");
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_failed_lmdb_call_of_the_write_path_leaves_whole_requests_plain) {
  sweep(false);
}

BOOST_AUTO_TEST_CASE(every_failed_lmdb_call_of_the_write_path_leaves_whole_requests_encrypted) {
  sweep(true);
}
