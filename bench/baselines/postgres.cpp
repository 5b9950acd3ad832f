// postgres: the same `events` table and optimistic check on a PostgreSQL
// server (scripts/bench.sh starts a private one), one connection per writer.
//   W1: per 1000-event transaction: BEGIN; SELECT each stream's max(version)
//       in one query; compare; COPY the rows (binary); COMMIT.
//   W2: one statement per append, the check and the insert together:
//       INSERT ... SELECT ... WHERE max(version) = expected (one round trip,
//       one transaction), UNIQUE(stream, version) catching any race.
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/clock.hpp"
#include "common/concurrent.hpp"
#include "common/main.hpp"
#include "common/options.hpp"
#include "common/payload.hpp"
#include "common/record.hpp"

namespace vb = varve::bench;

namespace {

constexpr const char* system_name = "postgres";

constexpr const char* schema = R"sql(
CREATE TABLE events(
  position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream   text   NOT NULL,
  version  bigint NOT NULL,
  type     text   NOT NULL,
  payload  bytea  NOT NULL,
  UNIQUE(stream, version))
)sql";

constexpr const char* append_sql = R"sql(
INSERT INTO events(stream, version, type, payload)
SELECT $1, $2 + 1, $3, $4
WHERE coalesce((SELECT max(version) FROM events WHERE stream = $1), 0) = $2
)sql";

constexpr Oid text_oid = 25, int8_oid = 20, bytea_oid = 17, text_array_oid = 1009;
constexpr const char* unique_violation = "23505";

struct result_deleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using result = std::unique_ptr<PGresult, result_deleter>;

std::string trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

std::string sqlstate(const PGresult* r) {
  const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return s ? s : "";
}

/// One connection, used by one thread.
class connection {
 public:
  explicit connection(const std::string& conninfo, bool sync) {
    // A burst of 1024 connections may find the previous run's backends still
    // exiting: retry "too many clients" and start-up refusals for a while.
    for (int attempt = 0;; ++attempt) {
      conn_ = PQconnectdb(conninfo.c_str());
      if (PQstatus(conn_) == CONNECTION_OK) break;
      const std::string msg = trimmed(PQerrorMessage(conn_));
      PQfinish(conn_);
      conn_ = nullptr;
      const bool transient = msg.find("too many clients") != std::string::npos ||
                             msg.find("the database system is") != std::string::npos;
      if (!transient || attempt >= 200) throw std::runtime_error("connect to PostgreSQL: " + msg);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    try {
      exec(sync ? "SET synchronous_commit = on" : "SET synchronous_commit = off");
      exec("SET client_min_messages = warning");
    } catch (...) {
      PQfinish(conn_);
      throw;
    }
  }
  ~connection() { PQfinish(conn_); }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  PGconn* get() const noexcept { return conn_; }

  /// Runs a statement that must succeed; returns its result.
  result exec(const char* sql) {
    result r(PQexec(conn_, sql));
    expect_ok(r, sql);
    return r;
  }

  result exec_params(const char* sql, int n, const Oid* types, const char* const* values,
                     const int* lengths, const int* formats) {
    result r(PQexecParams(conn_, sql, n, types, values, lengths, formats, 0));
    expect_ok(r, sql);
    return r;
  }

  void expect_ok(const result& r, const char* what) const {
    const ExecStatusType st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      throw std::runtime_error(std::string(what) + ": " + trimmed(PQerrorMessage(conn_)));
  }

  /// A single value of a one-row result, as text.
  std::string scalar(const char* sql) {
    result r = exec(sql);
    if (PQntuples(r.get()) != 1) throw std::runtime_error(std::string(sql) + ": no row");
    return PQgetvalue(r.get(), 0, 0);
  }

 private:
  PGconn* conn_ = nullptr;
};

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

/// Rows in COPY's binary format.
class copy_buffer {
 public:
  void start() {
    buf_.clear();
    buf_.append("PGCOPY\n\377\r\n\0", 11);
    put_be(buf_, 0, 4);  // flags
    put_be(buf_, 0, 4);  // header extension length
  }
  void row(std::string_view stream, std::uint64_t version, std::string_view type,
           std::string_view payload) {
    put_be(buf_, 4, 2);  // fields
    field(stream);
    put_be(buf_, 8, 4);
    put_be(buf_, version, 8);
    field(type);
    field(payload);
  }
  const std::string& finish() {
    put_be(buf_, 0xffff, 2);  // -1: end of data
    return buf_;
  }

 private:
  void field(std::string_view s) {
    put_be(buf_, s.size(), 4);
    buf_.append(s);
  }
  std::string buf_;
};

/// Postgres array literal of quoted strings: {"a","b"}.
std::string text_array(const std::vector<std::string_view>& items) {
  std::string s = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) s.push_back(',');
    s.push_back('"');
    for (char c : items[i]) {
      if (c == '"' || c == '\\') s.push_back('\\');
      s.push_back(c);
    }
    s.push_back('"');
  }
  s.push_back('}');
  return s;
}

/// Drops and recreates the table, then checkpoints so that a measurement does
/// not pay for the previous one's dirty pages.
void fresh_table(connection& admin) {
  admin.exec("DROP TABLE IF EXISTS events");
  admin.exec(schema);
  admin.exec("CHECKPOINT");
}

/// Drops the table and checkpoints, leaving no background writes to disturb
/// the next measurement (of any system).
void drop_table(connection& admin) {
  admin.exec("DROP TABLE events");
  admin.exec("CHECKPOINT");
}

std::uint64_t count_events(connection& admin) {
  return std::stoull(admin.scalar("SELECT count(*) FROM events"));
}

/// The W1 batch writer.
class batch_appender {
 public:
  explicit batch_appender(connection& c) : c_(c) {}

  struct item {
    std::string_view stream;
    std::uint64_t expected;
    std::uint64_t count;
    std::uint64_t first_payload;
  };

  /// One transaction: checks every stream's current version with one query,
  /// then copies all rows. False (rolled back) when a version differs or a
  /// concurrent writer took a version first.
  bool append(const std::vector<item>& items, const vb::payloads& pl) {
    c_.exec("BEGIN");
    try {
      names_.clear();
      for (const auto& it : items)
        names_.push_back(it.stream);
      const std::string array = text_array(names_);
      const char* values[] = {array.c_str()};
      // One scalar max() per stream: each an index-only backward scan stopping at
      // the first entry (a GROUP BY over `stream = ANY(...)` scans every row).
      result r = c_.exec_params(
          "SELECT s.stream, (SELECT max(e.version) FROM events e WHERE e.stream = s.stream) "
          "FROM unnest($1::text[]) AS s(stream)",
          1, &text_array_oid, values, nullptr, nullptr);
      current_.clear();
      for (int i = 0; i < PQntuples(r.get()); ++i)
        if (!PQgetisnull(r.get(), i, 1))
          current_[PQgetvalue(r.get(), i, 0)] = std::stoull(PQgetvalue(r.get(), i, 1));
      for (const auto& it : items) {
        auto found = current_.find(std::string(it.stream));
        const std::uint64_t version = found == current_.end() ? 0 : found->second;
        if (version != it.expected) {
          c_.exec("ROLLBACK");
          return false;
        }
      }

      copy_.start();
      for (const auto& it : items)
        for (std::uint64_t k = 0; k < it.count; ++k)
          copy_.row(it.stream, it.expected + 1 + k, vb::event_type, pl[it.first_payload + k]);
      const std::string& data = copy_.finish();

      result cr(PQexec(c_.get(),
                       "COPY events(stream, version, type, payload) FROM STDIN (FORMAT binary)"));
      if (PQresultStatus(cr.get()) != PGRES_COPY_IN)
        throw std::runtime_error("COPY: " + trimmed(PQerrorMessage(c_.get())));
      if (PQputCopyData(c_.get(), data.data(), static_cast<int>(data.size())) != 1 ||
          PQputCopyEnd(c_.get(), nullptr) != 1)
        throw std::runtime_error("COPY data: " + trimmed(PQerrorMessage(c_.get())));
      bool conflict = false;
      std::string failure;
      while (PGresult* raw = PQgetResult(c_.get())) {
        result end(raw);
        if (PQresultStatus(raw) == PGRES_COMMAND_OK) continue;
        if (sqlstate(raw) == unique_violation)
          conflict = true;
        else
          failure = trimmed(PQresultErrorMessage(raw));
      }
      if (!failure.empty()) throw std::runtime_error("COPY: " + failure);
      if (conflict) {
        c_.exec("ROLLBACK");
        return false;
      }
      c_.exec("COMMIT");
      return true;
    } catch (...) {
      result ignored(PQexec(c_.get(), "ROLLBACK"));
      throw;
    }
  }

 private:
  connection& c_;
  std::vector<std::string_view> names_;
  std::unordered_map<std::string, std::uint64_t> current_;
  copy_buffer copy_;
};

struct run_context {
  std::string conninfo;
  bool sync = true;
};

void run_w1(const vb::options& o, const run_context& ctx, connection& admin, vb::record_sink& out,
            bool spread) {
  fresh_table(admin);
  const vb::payloads pl(o.payload);
  const auto names = vb::stream_names("stream", spread ? o.streams : 1);
  std::vector<std::uint64_t> versions(names.size(), 0);
  std::uint64_t commits = 0;
  double seconds = 0;
  {
    connection c(ctx.conninfo, ctx.sync);
    batch_appender a(c);
    std::vector<batch_appender::item> items;
    std::vector<std::size_t> item_stream;  // items[j] is to names[item_stream[j]]
    std::unordered_map<std::size_t, std::size_t> seen;
    vb::stopwatch clock;
    for (std::uint64_t done = 0; done < o.events;) {
      const std::uint64_t n = std::min<std::uint64_t>(o.batch, o.events - done);
      items.clear();
      item_stream.clear();
      if (!spread) {
        items.push_back({names[0], versions[0], n, done});
        item_stream.push_back(0);
      } else {
        // Round-robin; a stream met twice in one batch (batch > streams) gets
        // its events as one run so that the version check stays exact.
        seen.clear();
        for (std::uint64_t k = 0; k < n; ++k) {
          const std::size_t i = (done + k) % names.size();
          auto [it, fresh] = seen.try_emplace(i, items.size());
          if (fresh) {
            items.push_back({names[i], versions[i], 1, done + k});
            item_stream.push_back(i);
          } else {
            ++items[it->second].count;
          }
        }
      }
      if (!a.append(items, pl)) throw std::runtime_error("unexpected version conflict");
      for (std::size_t j = 0; j < items.size(); ++j)
        versions[item_stream[j]] += items[j].count;
      ++commits;
      done += n;
    }
    seconds = clock.elapsed_s();
  }
  if (count_events(admin) != o.events) throw std::runtime_error("W1: wrong event count");
  drop_table(admin);

  vb::measurement m;
  m.workload = spread ? "W1b" : "W1a";
  m.system = system_name;
  m.params = o.make_params(1, o.events, o.batch);
  m.params.extra["streams"] = spread ? o.streams : 1;
  m.events_per_s = static_cast<double>(o.events) / seconds;
  m.events_per_commit = static_cast<double>(o.events) / static_cast<double>(commits);
  m.extra["seconds"] = seconds;
  out.write(m);
}

void run_w2(const vb::options& o, const run_context& ctx, connection& admin, vb::record_sink& out,
            std::uint32_t writers) {
  fresh_table(admin);
  const vb::payloads pl(o.payload);

  const auto result = vb::run_concurrent_appends(o.w2_config(writers), [&](std::uint32_t w) {
    struct writer {
      connection conn;
      std::string name;
      std::uint64_t version = 0;
      writer(const run_context& c, std::string n) : conn(c.conninfo, c.sync), name(std::move(n)) {
        const Oid types[] = {text_oid, int8_oid, text_oid, bytea_oid};
        ::result r(PQprepare(conn.get(), "append", append_sql, 4, types));
        conn.expect_ok(r, "PREPARE append");
      }
    };
    auto state = std::make_shared<writer>(ctx, vb::stream_name("writer", w));
    return vb::append_fn([state, &pl, w] {
      writer& s = *state;
      char version_be[8];
      for (int i = 0; i < 8; ++i)
        version_be[i] = static_cast<char>(s.version >> (8 * (7 - i)));
      const std::string_view payload = pl[s.version + w];
      // event_type views a string literal: NUL-terminated as text parameters must be.
      const char* values[] = {s.name.c_str(), version_be, vb::event_type.data(), payload.data()};
      const int lengths[] = {0, 8, 0, static_cast<int>(payload.size())};
      const int formats[] = {0, 1, 0, 1};
      ::result r(PQexecPrepared(s.conn.get(), "append", 4, values, lengths, formats, 0));
      const bool conflict =
          sqlstate(r.get()) == unique_violation || (PQresultStatus(r.get()) == PGRES_COMMAND_OK &&
                                                    std::strcmp(PQcmdTuples(r.get()), "1") != 0);
      if (conflict) throw std::runtime_error("unexpected version conflict on " + s.name);
      s.conn.expect_ok(r, "append");
      ++s.version;
    });
  });
  const std::uint64_t stored = count_events(admin);
  drop_table(admin);

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

}  // namespace

int main(int argc, char** argv) {
  return vb::guarded_main([&] {
    CLI::App app{"postgres: an events table on a PostgreSQL server (W1a, W1b, W2)"};
    vb::options o;
    vb::add_common_options(app, o);
    run_context ctx;
    app.add_option("--conninfo", ctx.conninfo,
                   "libpq connection string, e.g. \"host=/tmp/x port=5432 user=postgres "
                   "dbname=postgres\" (default: libpq's PG* environment)");
    CLI11_PARSE(app, argc, argv);
    vb::finish(o);
    vb::raise_fd_limit();
    ctx.sync = o.sync();

    vb::record_sink out(o.out);
    connection admin(ctx.conninfo, ctx.sync);
    const std::string fsync = admin.scalar("SHOW fsync");
    if (ctx.sync && fsync != "on")
      throw std::runtime_error("the server runs with fsync=" + fsync + "; start it with fsync=on");
    const auto max_connections = std::stoul(admin.scalar("SHOW max_connections"));

    if (o.wants("W1a")) run_w1(o, ctx, admin, out, false);
    if (o.wants("W1b")) run_w1(o, ctx, admin, out, true);
    if (o.wants("W2")) {
      for (std::uint32_t w : o.writers) {
        // The admin connection holds one slot; superusers may use the reserved ones.
        if (w + 1 > max_connections) {
          std::cerr << "postgres: skipping W2 at " << w
                    << " writers (max_connections=" << max_connections << ")\n";
          continue;
        }
        run_w2(o, ctx, admin, out, w);
      }
    }
    return 0;
  });
}
