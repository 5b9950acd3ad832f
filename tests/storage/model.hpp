// A plain in-memory model of a Varve store: what an event_store must hold
// after any sequence of writes, and the outcome each write must have. It
// follows the contract of varve/storage/event_store.hpp and the writer's
// rules (storage/src/writer.cpp for batches, expectations and idempotency;
// storage/src/admin.cpp for shredding and key rotation) with standard
// containers only. model_test.cpp runs random operations against a real
// store and this model side by side and compares every read.
//
// What the model cannot know in advance it learns from the store once and
// then holds it to: the ids and times the store generates for events that
// came without them (checked against the clock window of the write that
// made them).
//
// Adding an operation to the store: give the model its rule here (a member
// that returns the outcome the store must give and changes the state only
// when the store commits), then add the operation to model_test.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "varve/storage/error.hpp"
#include "varve/storage/event.hpp"
#include "varve/storage/event_store.hpp"

namespace varve_model {

using varve::append_request;
using varve::append_result;
using varve::direction;
using varve::errc;
using varve::error;
using varve::event_id;
using varve::expected_version;
using varve::global_position;
using varve::result;
using varve::stream_version;
using varve::timestamp_us;
using varve::write_outcome;
using varve::write_request;

/// How many of a stream's newest events an `any` or `stream_exists` append
/// with caller-given ids is compared against (writer.cpp).
inline constexpr stream_version idempotency_window = 64;
/// Longest event type a record holds.
inline constexpr std::size_t max_type_size = 0xFFFF;
/// Longest view name.
inline constexpr std::size_t max_view_name = 200;
/// Versions per stream-index chunk (FORMAT.md).
inline constexpr stream_version chunk_size = 64;

using key_bytes = std::array<std::uint8_t, 32>;

/// Well-formed UTF-8: no overlong forms, no surrogates, nothing above
/// U+10FFFF.
inline bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t more = 0;
    std::uint32_t cp = 0, least = 0;
    if (c >= 0xC0 && c <= 0xDF) {
      more = 1, cp = c & 0x1Fu, least = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      more = 2, cp = c & 0x0Fu, least = 0x800;
    } else if (c >= 0xF0 && c <= 0xF7) {
      more = 3, cp = c & 0x07u, least = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i <= more) return false;
    for (std::size_t k = 1; k <= more; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3Fu);
    }
    if (cp < least || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += more + 1;
  }
  return true;
}

/// The wall-clock interval in which a write ran: times the store stamps
/// lie in it.
struct clock_window {
  timestamp_us lo = std::numeric_limits<timestamp_us>::min();
  timestamp_us hi = std::numeric_limits<timestamp_us>::max();
};

/// Who writes, and when.
struct write_context {
  clock_window when;
  /// Through the handle the model follows (its events_written counts);
  /// false for another process.
  bool this_handle = true;
};

/// One event of the log.
struct event {
  global_position position = 0;
  std::string stream;
  stream_version version = 0;
  std::string type;
  std::string payload;
  std::string metadata;
  std::vector<std::string> tags;
  /// The caller's id, or the one the store generated once learned.
  std::optional<event_id> id;
  bool id_given = false;
  /// The caller's time, or the one the store stamped once learned.
  std::optional<timestamp_us> time;
  bool time_given = false;
  /// Where a time the store stamps (and a generated id's milliseconds) must lie.
  clock_window written;
};

struct snapshot {
  stream_version version = 0;
  std::uint32_t schema = 0;
  std::string bytes;
};

struct stream {
  std::uint64_t id = 0;
  /// The position of version v at [v - 1].
  std::vector<global_position> positions;
  bool shredded = false;
  std::optional<snapshot> snap;
  /// Milliseconds of the newest id the store generated for this stream
  /// (generated ids are time-ordered per stream).
  std::int64_t generated_ms = std::numeric_limits<std::int64_t>::min();

  stream_version version() const { return positions.size(); }
};

struct cursor {
  global_position position = 0;
  std::string state;
};

struct limits {
  std::size_t max_key_size = 511;
  std::uint64_t max_event_bytes = std::uint64_t{16} << 20;
};

class model {
 public:
  model(limits lim, std::optional<key_bytes> master) : key(master), lim_(lim) {}

  // ---- State, read by the checks.

  /// The master key that opens the store (encrypted stores), and the one it
  /// replaced at the last rotation.
  std::optional<key_bytes> key;
  std::optional<key_bytes> retired_key;
  /// Position p at [p - 1].
  std::vector<event> log;
  std::map<std::string, stream, std::less<>> streams;
  /// The name of stream id i at [i - 1].
  std::vector<std::string> names;
  std::map<std::string, cursor, std::less<>> cursors;
  std::map<std::string, std::map<std::string, std::string>, std::less<>> views;
  /// The handle the model follows stopped taking writes (an I/O error at commit).
  bool failed = false;
  /// Events appended through that handle since it was opened.
  std::uint64_t events_through_handle = 0;
  /// Every id the store generated, learned.
  std::set<std::array<std::uint8_t, 16>> generated_ids;

  const limits& lim() const { return lim_; }
  bool encrypted() const { return key.has_value(); }
  global_position head() const { return log.size(); }

  const stream* find(std::string_view name) const {
    auto it = streams.find(name);
    return it == streams.end() ? nullptr : &it->second;
  }
  stream* find(std::string_view name) {
    auto it = streams.find(name);
    return it == streams.end() ? nullptr : &it->second;
  }
  stream_version version_of(std::string_view name) const {
    const stream* s = find(name);
    return s ? s->version() : 0;
  }
  const event& at(global_position p) const { return log.at(p - 1); }
  event& at(global_position p) { return log.at(p - 1); }
  /// The id of version v of `s`, when known (given, or learned).
  std::optional<event_id> id_of(const stream& s, stream_version v) const {
    return at(s.positions.at(v - 1)).id;
  }
  global_position cursor_position(std::string_view consumer) const {
    auto it = cursors.find(consumer);
    return it == cursors.end() ? 0 : it->second.position;
  }

  // ---- Writes: the outcome the store must give; the state changes only
  // where the store commits.

  /// event_store::write (and append, save_cursor: one request).
  result<std::vector<write_outcome>> write(std::span<const write_request> batch,
                                           const write_context& ctx) {
    if (ctx.this_handle && failed)
      return error{errc::failed_state, "the handle stopped taking writes"};
    std::vector<write_outcome> out;
    out.reserve(batch.size());
    for (const write_request& req : batch)
      out.push_back(apply(req, ctx));
    return out;
  }

  /// event_store::shred.
  result<void> shred(std::string_view name, const write_context& ctx) {
    if (ctx.this_handle && failed)
      return error{errc::failed_state, "the handle stopped taking writes"};
    stream* s = find(name);
    if (!s) return error{errc::not_found, "no such stream"};
    s->shredded = true;  // again: nothing changes
    s->snap.reset();
    return {};
  }

  /// event_store::rebuild_indexes: the indexes are derived from the log,
  /// so nothing the model holds changes (every check's queries must still
  /// find what the log has).
  result<void> rebuild_indexes(const write_context& ctx) const {
    if (ctx.this_handle && failed)
      return error{errc::failed_state, "the handle stopped taking writes"};
    return {};
  }

  /// event_store::rotate_master_key.
  result<void> rotate(const key_bytes& next, const write_context& ctx) {
    if (!encrypted()) return error{errc::invalid_argument, "the store is not encrypted"};
    if (ctx.this_handle && failed)
      return error{errc::failed_state, "the handle stopped taking writes"};
    retired_key = key;
    key = next;
    return {};
  }

  /// A new handle: it takes writes, and has written nothing yet.
  void reopened() {
    failed = false;
    events_through_handle = 0;
  }

  // ---- Reads: positions in the order the store visits them.

  std::vector<global_position> read_log(global_position from, direction dir,
                                        std::size_t limit) const {
    std::vector<global_position> out;
    if (limit == 0 || log.empty()) return out;
    if (dir == direction::forward) {
      for (global_position p = std::max<global_position>(from, 1);
           p <= head() && out.size() < limit; ++p)
        out.push_back(p);
    } else {
      for (global_position p = std::min(from, head()); p >= 1 && out.size() < limit; --p)
        out.push_back(p);
    }
    return out;
  }

  std::vector<global_position> read_stream(const stream& s, stream_version from, direction dir,
                                           std::size_t limit) const {
    std::vector<global_position> out;
    if (limit == 0) return out;
    if (dir == direction::forward) {
      for (stream_version v = std::max<stream_version>(from, 1);
           v <= s.version() && out.size() < limit; ++v)
        out.push_back(s.positions[v - 1]);
    } else {
      for (stream_version v = std::min(from, s.version()); v >= 1 && out.size() < limit; --v)
        out.push_back(s.positions[v - 1]);
    }
    return out;
  }

  std::vector<std::pair<std::string, std::string>> scan_view(std::string_view view,
                                                             std::string_view from_key) const {
    std::vector<std::pair<std::string, std::string>> out;
    auto v = views.find(view);
    if (v == views.end()) return out;
    for (auto it = v->second.lower_bound(std::string(from_key)); it != v->second.end(); ++it)
      out.emplace_back(it->first, it->second);
    return out;
  }

  std::optional<std::string> view_get(std::string_view view, std::string_view key_) const {
    auto v = views.find(view);
    if (v == views.end()) return std::nullopt;
    auto it = v->second.find(std::string(key_));
    if (it == v->second.end()) return std::nullopt;
    return it->second;
  }

 private:
  /// One stream of a request, checked.
  struct plan {
    const append_request* request = nullptr;
    bool exists = false;
    stream_version version = 0;  // before the request
    std::optional<append_result> idempotent;
  };

  static error invalid(std::string why) { return error{errc::invalid_argument, std::move(why)}; }

  /// Whether `r`'s events (every one with an id) sit at versions after+1...
  /// of `s`; their places if so.
  std::optional<append_result> already_appended(const stream& s, const append_request& r,
                                                stream_version after) const {
    const stream_version k = r.events.size();
    if (after + k > s.version()) return std::nullopt;
    for (stream_version i = 0; i < k; ++i) {
      const auto& given = r.events[i].id;
      const auto stored = id_of(s, after + 1 + i);
      if (!given || !stored || *given != *stored) return std::nullopt;
    }
    return append_result{after + 1, after + k, s.positions[after], s.positions[after + k - 1],
                         true};
  }

  /// The checks of one stream of a request, in the writer's order: input,
  /// state, expectation, idempotency.
  result<plan> check(const append_request& r) const {
    if (r.stream.empty()) return invalid("empty stream name");
    if (r.stream.size() > lim_.max_key_size) return invalid("stream name too long");
    if (!valid_utf8(r.stream)) return invalid("stream name not UTF-8");
    if (r.events.empty()) return invalid("no events");
    for (const varve::new_event& e : r.events) {
      if (e.type.empty()) return invalid("empty type");
      if (e.type.size() > max_type_size) return invalid("type too long");
      if (e.type.size() + e.metadata.size() + e.payload.size() > lim_.max_event_bytes)
        return invalid("event over max_event_bytes");
    }
    const stream* s = find(r.stream);
    if (s && s->shredded) return error{errc::shredded, "stream shredded"};
    const stream_version cur = s ? s->version() : 0;
    const expected_version& e = r.expected;
    bool holds = false;
    switch (e.type()) {
      case expected_version::kind::any:
        holds = true;
        break;
      case expected_version::kind::no_stream:
        holds = cur == 0;
        break;
      case expected_version::kind::stream_exists:
        holds = cur > 0;
        break;
      case expected_version::kind::exact:
        holds = cur == e.version();
        break;
    }
    plan p{&r, s != nullptr, cur, std::nullopt};
    bool all_ids = true;
    for (const varve::new_event& ev : r.events)
      all_ids = all_ids && ev.id.has_value();
    if (!holds) {
      const bool positional = e.type() == expected_version::kind::exact ||
                              e.type() == expected_version::kind::no_stream;
      if (positional && all_ids && s) {
        p.idempotent = already_appended(*s, r, e.version());
        if (p.idempotent) return p;
      }
      return error{errc::wrong_expected_version,
                   "expected " + e.to_string() + ", stream at " + std::to_string(cur)};
    }
    const bool windowed = e.type() == expected_version::kind::any ||
                          e.type() == expected_version::kind::stream_exists;
    if (windowed && s && r.events.front().id) {
      const stream_version lo = cur > idempotency_window ? cur - idempotency_window + 1 : 1;
      for (stream_version v = lo; v <= cur; ++v) {
        if (id_of(*s, v) != r.events.front().id) continue;
        p.idempotent = already_appended(*s, r, v - 1);
        if (p.idempotent) return p;
        return invalid("first id found at version " + std::to_string(v) +
                       " without the same events after it");
      }
    }
    return p;
  }

  result<void> check_snapshot(const std::vector<plan>& plans,
                              const varve::snapshot_update& u) const {
    for (const plan& p : plans) {
      if (p.request->stream != u.stream) continue;
      if (!p.exists) return invalid("a snapshot with the stream's creation");
      const stream_version after = p.idempotent ? p.version : p.version + p.request->events.size();
      if (u.version == 0 || u.version > after) return invalid("snapshot version not in the stream");
      return {};
    }
    const stream* s = find(u.stream);
    if (!s) return invalid("a snapshot of a stream that does not exist");
    if (s->shredded) return error{errc::shredded, "stream shredded: no snapshot"};
    if (u.version == 0 || u.version > s->version())
      return invalid("snapshot version not in the stream");
    return {};
  }

  /// `name` is the update's view: its own, or (empty) the one before's.
  result<void> check_view(const varve::view_update& u, const std::string& name) const {
    if (name.empty() || name.size() > max_view_name || !valid_utf8(name) ||
        name.find('\0') != std::string::npos)
      return invalid("bad view name");
    if (u.kind != varve::view_update::op::clear &&
        (u.key.empty() || u.key.size() > lim_.max_key_size))
      return invalid("bad view key");
    return {};
  }

  /// Appends `r` (checked, not idempotent).
  append_result append(const append_request& r, const write_context& ctx) {
    auto it = streams.find(r.stream);
    if (it == streams.end()) {
      stream fresh;
      fresh.id = names.size() + 1;
      names.push_back(r.stream);
      it = streams.emplace(r.stream, std::move(fresh)).first;
    }
    stream& s = it->second;
    append_result out;
    out.first_version = s.version() + 1;
    out.first_position = head() + 1;
    for (const varve::new_event& e : r.events) {
      event ev;
      ev.position = head() + 1;
      ev.stream = r.stream;
      ev.version = s.version() + 1;
      ev.type = e.type;
      ev.payload = e.payload;
      ev.metadata = e.metadata;
      ev.tags = e.tags;
      ev.id = e.id;
      ev.id_given = e.id.has_value();
      ev.time = e.time;
      ev.time_given = e.time.has_value();
      ev.written = ctx.when;
      s.positions.push_back(ev.position);
      log.push_back(std::move(ev));
    }
    out.last_version = s.version();
    out.last_position = head();
    if (ctx.this_handle) events_through_handle += r.events.size();
    return out;
  }

  /// One request of a batch: every check first, then every write.
  write_outcome apply(const write_request& req, const write_context& ctx) {
    std::vector<plan> plans;
    std::set<std::string_view> seen;
    for (const append_request& a : req.appends) {
      if (!seen.insert(a.stream).second) return invalid("a stream twice in one request");
      auto p = check(a);
      if (!p) return p.err();
      plans.push_back(*p);
    }
    for (const varve::cursor_update& c : req.cursors) {
      if (c.consumer.empty() || c.consumer.size() > lim_.max_key_size)
        return invalid("bad consumer name");
      if (c.expected && *c.expected != cursor_position(c.consumer))
        return error{errc::wrong_expected_version, "cursor elsewhere"};
    }
    for (const varve::snapshot_update& u : req.snapshots) {
      if (auto ok = check_snapshot(plans, u); !ok) return ok.err();
    }
    // An update with an empty view name is to the view of the update
    // before it in the request; the first must name one.
    std::vector<std::string> view_of;
    for (const varve::view_update& u : req.views) {
      view_of.push_back(u.view.empty() && !view_of.empty() ? view_of.back() : u.view);
      if (auto ok = check_view(u, view_of.back()); !ok) return ok.err();
    }
    std::vector<append_result> results;
    for (const plan& p : plans)
      results.push_back(p.idempotent ? *p.idempotent : append(*p.request, ctx));
    for (const varve::cursor_update& c : req.cursors)
      cursors[c.consumer] = cursor{c.position, c.state};
    for (const varve::snapshot_update& u : req.snapshots)
      find(u.stream)->snap = snapshot{u.version, u.schema, u.bytes};
    for (std::size_t i = 0; i < req.views.size(); ++i) {
      const varve::view_update& u = req.views[i];
      auto& rows = views[view_of[i]];
      switch (u.kind) {
        case varve::view_update::op::put:
          rows[u.key] = u.value;
          break;
        case varve::view_update::op::erase:
          rows.erase(u.key);
          break;
        case varve::view_update::op::clear:
          rows.clear();
          break;
        case varve::view_update::op::erase_if_equal:
          if (auto row = rows.find(u.key); row != rows.end() && row->second == u.value)
            rows.erase(row);
          break;
      }
    }
    return results;
  }

  limits lim_;
};

}  // namespace varve_model
