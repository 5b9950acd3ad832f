// sqlite: an `events` table with the optimistic version check in the same
// transaction (BEGIN IMMEDIATE; SELECT max(version); compare; INSERT; COMMIT),
// WAL mode, synchronous=FULL. One connection per writer thread for W2.
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/concurrent.hpp"
#include "common/main.hpp"
#include "common/options.hpp"
#include "common/payload.hpp"
#include "common/record.hpp"
#include "common/stream_reads.hpp"
#include "common/tempdir.hpp"

namespace vb = varve::bench;

namespace {

constexpr const char* system_name = "sqlite";

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS events(
  position INTEGER PRIMARY KEY,
  stream   TEXT    NOT NULL,
  version  INTEGER NOT NULL,
  type     TEXT    NOT NULL,
  payload  BLOB    NOT NULL,
  UNIQUE(stream, version))
)sql";

class sqlite_error : public std::runtime_error {
 public:
  sqlite_error(sqlite3* db, int rc, const std::string& what)
      : std::runtime_error(what + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc))), rc_(rc) {}
  int code() const noexcept { return rc_; }

 private:
  int rc_;
};

/// How a writer waits for the write lock another connection holds.
enum class busy_wait {
  /// sqlite3_busy_timeout: SQLite's own sleeps, growing from 1 to 100 ms. A
  /// writer that is awake when the lock frees takes it again and again: the best
  /// throughput, and seconds of p99 for the writers left asleep.
  sqlite,
  /// The writers of this process take a process-wide mutex around each write
  /// transaction (SQLite admits one writer at a time anyway): fairer, a
  /// wake-up per hand-over. The busy timeout still covers other processes.
  mutex,
  poll,  ///< a busy handler polling the lock: yield a few times, then 20 us sleeps
};

struct connection_config {
  bool sync = true;
  int busy_timeout_ms = 600'000;
  busy_wait wait = busy_wait::sqlite;
};

/// The writers' mutex of busy_wait::mutex.
std::mutex process_write_lock;

/// The `poll` busy handler: SQLite calls it each time the lock is still
/// taken, `count` being the number of calls for this wait. Gives up (SQLITE_BUSY,
/// which the caller retries) after the busy timeout.
int poll_busy_handler(void* timeout_ms, int count) {
  thread_local std::uint64_t since = 0;
  const std::uint64_t now = vb::now_ns();
  if (count == 0) since = now;
  if (now - since > static_cast<std::uint64_t>(*static_cast<int*>(timeout_ms)) * 1'000'000)
    return 0;
  if (count < 8)
    std::this_thread::yield();
  else
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  return 1;
}

/// One connection, opened without SQLite's own mutexes (one thread uses it).
class database {
 public:
  database(const std::filesystem::path& file, const connection_config& cfg) {
    const int rc =
        sqlite3_open_v2(file.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      throw std::runtime_error("sqlite3_open_v2 " + file.string() + ": " + msg);
    }
    try {
      busy_timeout_ms_ = cfg.busy_timeout_ms;
      if (cfg.wait == busy_wait::poll)
        check(sqlite3_busy_handler(db_, poll_busy_handler, &busy_timeout_ms_),
              "sqlite3_busy_handler");
      else
        check(sqlite3_busy_timeout(db_, busy_timeout_ms_), "sqlite3_busy_timeout");
      exec("PRAGMA journal_mode=WAL");
      exec(cfg.sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF");
      exec("PRAGMA cache_size=-65536");    // 64 MiB page cache
      exec("PRAGMA mmap_size=268435456");  // read the database through a 256 MiB map
      exec("PRAGMA temp_store=MEMORY");
    } catch (...) {
      sqlite3_close(db_);
      throw;
    }
  }
  ~database() { sqlite3_close(db_); }
  database(const database&) = delete;
  database& operator=(const database&) = delete;

  sqlite3* get() const noexcept { return db_; }

  void check(int rc, const char* what) const {
    if (rc != SQLITE_OK) throw sqlite_error(db_, rc, what);
  }

  /// Runs SQL with no parameters, retrying while the database is busy.
  void exec(const char* sql) {
    for (;;) {
      const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) return;
      if (rc != SQLITE_BUSY) throw sqlite_error(db_, rc, sql);
    }
  }

 private:
  sqlite3* db_ = nullptr;
  int busy_timeout_ms_ = 0;
};

/// A prepared statement, reset after each use.
class statement {
 public:
  statement(const database& db, const char* sql) : db_(db) {
    db.check(sqlite3_prepare_v3(db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr),
             sql);
  }
  ~statement() { sqlite3_finalize(stmt_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  sqlite3_stmt* get() const noexcept { return stmt_; }
  void bind_text(int i, std::string_view s) {
    db_.check(sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC),
              "sqlite3_bind_text");
  }
  void bind_blob(int i, std::string_view s) {
    db_.check(sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC),
              "sqlite3_bind_blob");
  }
  void bind_int(int i, std::uint64_t v) {
    db_.check(sqlite3_bind_int64(stmt_, i, static_cast<sqlite3_int64>(v)), "sqlite3_bind_int64");
  }
  /// sqlite3_step: SQLITE_ROW or SQLITE_DONE, throws on anything else.
  int step() {
    const int rc = sqlite3_step(stmt_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      sqlite3_reset(stmt_);
      throw sqlite_error(db_.get(), rc, std::string("step: ") + sqlite3_sql(stmt_));
    }
    return rc;
  }
  void reset() { sqlite3_reset(stmt_); }

 private:
  const database& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

/// The append path: begin, check and insert, commit.
class appender {
 public:
  explicit appender(database& db)
      : db_(db),
        begin_(db, "BEGIN IMMEDIATE"),
        commit_(db, "COMMIT"),
        rollback_(db, "ROLLBACK"),
        current_(db, "SELECT max(version) FROM events WHERE stream = ?1"),
        insert_(db, "INSERT INTO events(stream, version, type, payload) VALUES(?1, ?2, ?3, ?4)") {}

  /// Takes the write lock, retrying when the busy timeout runs out.
  void begin() {
    for (;;) {
      const int rc = sqlite3_step(begin_.get());
      sqlite3_reset(begin_.get());
      if (rc == SQLITE_DONE) return;
      if (rc != SQLITE_BUSY) throw sqlite_error(db_.get(), rc, "BEGIN IMMEDIATE");
      ++busy_retries_;
    }
  }

  void commit() {
    for (;;) {
      const int rc = sqlite3_step(commit_.get());
      sqlite3_reset(commit_.get());
      if (rc == SQLITE_DONE) return;
      if (rc != SQLITE_BUSY) throw sqlite_error(db_.get(), rc, "COMMIT");
      ++busy_retries_;
    }
  }

  void rollback() noexcept {
    if (sqlite3_get_autocommit(db_.get()) == 0) {
      sqlite3_step(rollback_.get());
      sqlite3_reset(rollback_.get());
    }
  }

  /// Inside a transaction: appends `count` events to `stream` if its current
  /// version is `expected`, else returns false having written nothing.
  bool append(std::string_view stream, std::uint64_t expected, std::uint64_t count,
              const vb::payloads& pl, std::uint64_t first_payload) {
    current_.bind_text(1, stream);
    std::uint64_t version = 0;
    if (current_.step() == SQLITE_ROW && sqlite3_column_type(current_.get(), 0) != SQLITE_NULL)
      version = static_cast<std::uint64_t>(sqlite3_column_int64(current_.get(), 0));
    current_.reset();
    if (version != expected) return false;

    insert_.bind_text(1, stream);
    insert_.bind_text(3, vb::event_type);
    for (std::uint64_t k = 0; k < count; ++k) {
      insert_.bind_int(2, expected + 1 + k);
      insert_.bind_blob(4, pl[first_payload + k]);
      insert_.step();
      insert_.reset();
    }
    return true;
  }

  std::uint64_t busy_retries() const noexcept { return busy_retries_; }

 private:
  database& db_;
  statement begin_, commit_, rollback_, current_, insert_;
  std::uint64_t busy_retries_ = 0;
};

/// Rolls back unless committed.
class write_txn {
 public:
  /// Begins a write transaction (BEGIN IMMEDIATE), first taking `lock` when given.
  explicit write_txn(appender& a, std::mutex* lock = nullptr) : a_(a) {
    if (lock) lock_ = std::unique_lock(*lock);
    a_.begin();
  }
  ~write_txn() {
    if (!done_) a_.rollback();
  }
  write_txn(const write_txn&) = delete;
  write_txn& operator=(const write_txn&) = delete;
  void commit() {
    a_.commit();
    done_ = true;
  }

 private:
  std::unique_lock<std::mutex> lock_;  // released after the commit or rollback
  appender& a_;
  bool done_ = false;
};

std::filesystem::path db_file(const vb::temp_dir& dir) {
  return dir / "events.db";
}

void create_schema(const std::filesystem::path& file, const connection_config& cfg) {
  database db(file, cfg);
  db.exec(schema);
}

struct batch_result {
  std::uint64_t commits = 0;
  double seconds = 0;
};

/// As lmdb-raw's: `events` events in transactions of `batch`, to one stream or
/// round-robin over `streams`.
batch_result write_batches(database& db, const vb::payloads& pl, std::uint64_t events,
                           std::uint32_t batch, std::uint32_t streams, bool spread) {
  const auto names = vb::stream_names("stream", spread ? streams : 1);
  std::vector<std::uint64_t> versions(names.size(), 0);
  appender a(db);
  batch_result r;
  vb::stopwatch clock;
  for (std::uint64_t done = 0; done < events;) {
    const std::uint64_t n = std::min<std::uint64_t>(batch, events - done);
    write_txn t(a);
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

std::uint64_t count_events(database& db) {
  statement s(db, "SELECT count(*) FROM events");
  s.step();
  const auto n = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 0));
  s.reset();
  return n;
}

void run_w1(const vb::options& o, const connection_config& cfg, vb::record_sink& out, bool spread) {
  vb::temp_dir dir(o.dir);
  create_schema(db_file(dir), cfg);
  batch_result r;
  {
    database db(db_file(dir), cfg);
    const vb::payloads pl(o.payload);
    r = write_batches(db, pl, o.events, o.batch, o.streams, spread);
    if (count_events(db) != o.events) throw std::runtime_error("W1: wrong event count");
  }

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

void run_w2(const vb::options& o, const connection_config& cfg, vb::record_sink& out,
            std::uint32_t writers) {
  vb::temp_dir dir(o.dir);
  const auto file = db_file(dir);
  create_schema(file, cfg);
  const vb::payloads pl(o.payload);
  std::atomic<std::uint64_t> busy_retries{0};

  const auto result = vb::run_concurrent_appends(o.w2_config(writers), [&](std::uint32_t w) {
    // One connection per writer, opened on the writer's thread.
    struct writer {
      database db;
      appender app;
      std::string name;
      std::uint64_t version = 0;
      std::atomic<std::uint64_t>* retries;
      writer(const std::filesystem::path& f, const connection_config& c, std::string n,
             std::atomic<std::uint64_t>* r)
          : db(f, c), app(db), name(std::move(n)), retries(r) {}
      ~writer() { retries->fetch_add(app.busy_retries(), std::memory_order_relaxed); }
    };
    auto state = std::make_shared<writer>(file, cfg, vb::stream_name("writer", w), &busy_retries);
    std::mutex* lock = cfg.wait == busy_wait::mutex ? &process_write_lock : nullptr;
    return vb::append_fn([state, &pl, w, lock] {
      writer& s = *state;
      write_txn t(s.app, lock);
      if (!s.app.append(s.name, s.version, 1, pl, s.version + w))
        throw std::runtime_error("unexpected version conflict on " + s.name);
      t.commit();
      ++s.version;
    });
  });
  std::uint64_t stored = 0;
  {
    database db(file, cfg);
    stored = count_events(db);
  }

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
  m.params.extra["busy_wait"] = cfg.wait == busy_wait::sqlite  ? "sqlite"
                                : cfg.wait == busy_wait::mutex ? "mutex"
                                                               : "poll";
  m.extra["busy_retries"] = busy_retries.load();
  m.extra["stored_events"] = stored;
  out.write(m);
}

/// The W3/W4 set-up: events written without fsync, then checkpointed into the
/// database file.
void prepare_reads(const std::filesystem::path& file, const vb::options& o,
                   const connection_config& cfg, bool spread) {
  create_schema(file, cfg);
  connection_config fast = cfg;
  fast.sync = false;
  database db(file, fast);
  const vb::payloads pl(o.payload);
  write_batches(db, pl, o.events, o.batch, o.streams, spread);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

void run_w3(const vb::options& o, const connection_config& cfg, vb::record_sink& out) {
  vb::temp_dir dir(o.dir);
  prepare_reads(db_file(dir), o, cfg, false);
  database db(db_file(dir), cfg);
  statement scan(db,
                 "SELECT position, stream, version, type, payload FROM events ORDER BY position");

  double best = 0;
  std::uint64_t sink = 0;
  for (std::uint32_t r = 0; r < o.repeat; ++r) {
    vb::stopwatch clock;
    std::uint64_t n = 0;
    while (scan.step() == SQLITE_ROW) {
      sqlite3_stmt* s = scan.get();
      const auto* stream = sqlite3_column_text(s, 1);
      const auto* type = sqlite3_column_text(s, 3);
      const auto* payload = static_cast<const unsigned char*>(sqlite3_column_blob(s, 4));
      sink += static_cast<std::uint64_t>(sqlite3_column_int64(s, 0)) +
              static_cast<std::uint64_t>(sqlite3_column_int64(s, 2)) + stream[0] + type[0] +
              payload[0] + static_cast<std::uint64_t>(sqlite3_column_bytes(s, 4));
      ++n;
    }
    scan.reset();
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

void run_w4(const vb::options& o, const connection_config& cfg, vb::record_sink& out) {
  vb::temp_dir dir(o.dir);
  prepare_reads(db_file(dir), o, cfg, true);
  database db(db_file(dir), cfg);
  statement read(db,
                 "SELECT position, version, type, payload FROM events WHERE stream = ?1 "
                 "ORDER BY version");
  const auto names = vb::stream_names("stream", o.streams);
  std::uint64_t sink = 0;
  auto m = vb::run_stream_reads(
      o, system_name, names, o.events / o.streams, [&](const std::string& name) {
        read.bind_text(1, name);
        std::uint64_t n = 0;
        while (read.step() == SQLITE_ROW) {
          sqlite3_stmt* s = read.get();
          const auto* payload = static_cast<const unsigned char*>(sqlite3_column_blob(s, 3));
          sink += static_cast<std::uint64_t>(sqlite3_column_int64(s, 1)) + payload[0] +
                  static_cast<std::uint64_t>(sqlite3_column_bytes(s, 3));
          ++n;
        }
        read.reset();
        return n;
      });
  m.extra["checksum"] = sink;
  out.write(m);
}

}  // namespace

int main(int argc, char** argv) {
  return vb::guarded_main([&] {
    CLI::App app{"sqlite: an events table in WAL mode, synchronous=FULL (W1a, W1b, W2, W3, W4)"};
    vb::options o;
    vb::add_common_options(app, o);
    connection_config cfg;
    std::string wait = "sqlite";
    app.add_option("--busy-wait", wait,
                   "W2: how writers wait for the write lock: sqlite (sqlite3_busy_timeout's "
                   "1-100 ms sleeps), mutex (a process-wide mutex around write transactions) "
                   "or poll (a busy handler polling every 20 us)")
        ->check(CLI::IsMember({"sqlite", "mutex", "poll"}))
        ->capture_default_str();
    app.add_option("--busy-timeout-ms", cfg.busy_timeout_ms,
                   "Give up waiting for the write lock after this long (then retry)")
        ->capture_default_str()
        ->check(CLI::Range(1, 86'400'000));
    CLI11_PARSE(app, argc, argv);
    vb::finish(o);
    vb::raise_fd_limit();
    cfg.sync = o.sync();
    cfg.wait = wait == "mutex"  ? busy_wait::mutex
               : wait == "poll" ? busy_wait::poll
                                : busy_wait::sqlite;
    if (sqlite3_threadsafe() == 0) throw std::runtime_error("SQLite was built without threads");

    vb::record_sink out(o.out);
    if (o.wants("W1a")) run_w1(o, cfg, out, false);
    if (o.wants("W1b")) run_w1(o, cfg, out, true);
    if (o.wants("W2"))
      for (std::uint32_t w : o.writers)
        run_w2(o, cfg, out, w);
    if (o.wants("W3")) run_w3(o, cfg, out);
    if (o.wants("W4")) run_w4(o, cfg, out);
    return 0;
  });
}
