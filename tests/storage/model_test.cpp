// Model-based randomized test of the store: random sequences of operations,
// generated from a seed, run against a real store on disk and, beside it,
// against the plain in-memory model of model.hpp. After every step every
// read of the store must equal the model, and verify() must be clean. A
// failing sequence is shrunk (operations deleted, chunks then single ones,
// each candidate replayed on a fresh store) and printed with its seed.
//
// Operations: appends (every expectation, new and existing streams, caller
// ids or none, re-appends of stored events for idempotency), multi-stream
// appends, batches of requests with cursors, snapshots and view changes, bad
// input, save_cursor, shred, rebuild-indexes, rotate-key, close and reopen, compaction,
// backup (the copy is checked like the store), a second process that writes
// while this one keeps its handle, and failures injected at the k-th LMDB
// call of a write (varve/storage/testing.hpp).
//
// Adding an operation: write its struct below, next to the others (how it
// is generated, described, applied to the store and to the model: a store
// operation has `prepare`, anything else `run`), give the model its rule in
// model.hpp, and add the struct to `op` and to `generate_op`.
// An operation must make sense whatever ran before it (a shrunk sequence
// drops earlier ones): refer to the model's state when it runs ("exact(the
// stream's current version)"), not to numbers fixed at generation.
//
// Environment:
//   VARVE_MODEL_SECONDS         time budget per test case (default 45, or none
//                               when VARVE_MODEL_SEEDS is given); the seed
//                               running when it ends stops there
//   VARVE_MODEL_SEEDS           at most this many seeds per test case
//   VARVE_MODEL_STEPS           steps per seed (default 200)
//   VARVE_MODEL_SEED            run this seed only (to reproduce a failure)
//   VARVE_MODEL_FIRST_SEED      first seed of a run (default: from the clock)
//   VARVE_MODEL_SHRINK_SECONDS  time budget for shrinking a failure (default 120)
#define BOOST_TEST_MODULE storage_model
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "model.hpp"
#include "temp_dir.hpp"
#include "varve/storage/testing.hpp"

namespace vm = varve_model;

using varve::direction;
using varve::errc;
using varve::event_id;
using varve::expected_version;
using varve::global_position;
using varve::stream_version;
using varve::timestamp_us;

namespace {

// ------------------------------------------------------------------ basics

/// A difference between the store and the model: `what` names the kind of
/// check (it is what shrinking keeps failing), `detail` says what differed.
struct mismatch {
  std::string what;
  std::string detail;
};

[[noreturn]] void fail(std::string what, std::string detail) {
  throw mismatch{std::move(what), std::move(detail)};
}

timestamp_us now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::uint64_t splitmix(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// The seeded source of every choice: the same seed, the same choices.
class rng {
 public:
  explicit rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return splitmix(state_); }
  /// 0..n-1 (0 when n is 0).
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo + 1); }
  bool chance(unsigned percent) { return below(100) < percent; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  std::uint64_t state_;
};

/// Bytes for people: printable text quoted, long or binary strings summed up.
std::string show_bytes(std::string_view s) {
  std::string out = "\"";
  const std::size_t shown = std::min<std::size_t>(s.size(), 24);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  out += "\"";
  if (shown < s.size()) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\t') c = ' ';
  return s;
}

std::string show_id(const std::optional<event_id>& id) {
  return id ? id->to_string() : std::string("(none)");
}

// ---------------------------------------------------------------- names

/// Streams the operations write to: a hot one (long streams, past the
/// index chunks of 64 and the idempotency window), others, Unicode, a NUL
/// inside, and a name of 511 bytes (LMDB's key limit).
const std::vector<std::string>& stream_names() {
  static const std::vector<std::string> names = {"hot",
                                                 "account-1",
                                                 "account-2",
                                                 "order-7",
                                                 "cart-3",
                                                 "\xc3\xbcn\xc3\xaf"
                                                 "c-\xe6\xb5\x81",
                                                 std::string("nul\0inside", 10),
                                                 "long-" + std::string(506, 'x')};
  return names;
}

/// Stream names that are bad input.
const std::vector<std::string>& bad_stream_names() {
  static const std::vector<std::string> names = {"",         std::string(512, 'y'), "\xff\xfe",
                                                 "\xc0\xaf", "\xed\xa0\x80",        "cut\xe2\x82"};
  return names;
}

/// A name no operation writes to.
constexpr std::string_view never_written = "never-written";

const std::vector<std::string>& consumer_names() {
  static const std::vector<std::string> names = {"proj-a", "proj-b", "\xc3\xbc-proj"};
  return names;
}

const std::vector<std::string>& bad_consumer_names() {
  static const std::vector<std::string> names = {"", std::string(512, 'c')};
  return names;
}

/// View names the store accepts (few: the store holds at most max_views).
const std::vector<std::string>& view_names() {
  static const std::vector<std::string> names = {"balances", "\xc3\xbc-view", "v/with/slashes",
                                                 "big"};
  return names;
}

const std::vector<std::string>& bad_view_names() {
  static const std::vector<std::string> names = {"", std::string("nul\0", 4), std::string(201, 'v'),
                                                 "\xff"};
  return names;
}

const std::vector<std::string>& view_keys() {
  static const std::vector<std::string> keys = {"a", "b", "key-\xc3\xbc", std::string("k\0nul", 5),
                                                std::string(511, 'k')};
  return keys;
}

const std::vector<std::string>& bad_view_keys() {
  static const std::vector<std::string> keys = {"", std::string(512, 'k')};
  return keys;
}

const std::vector<std::string>& view_values() {
  static const std::vector<std::string> values = {"", "1", "value-2", std::string(3000, 'w')};
  return values;
}

/// Tags events carry (the longest at the limit of 255 bytes).
const std::vector<std::string>& event_tags() {
  static const std::vector<std::string> tags = {"k:1", "k:2", "course:7", "student:\xc3\xbc",
                                                std::string(255, 'g')};
  return tags;
}

const std::vector<std::string>& event_types() {
  static const std::vector<std::string> types = {
      "created", "updated", "deleted", "noted-\xc3\xbc", "x", std::string(300, 't')};
  return types;
}

// ------------------------------------------------------------- outcomes

/// What a write answered: `canonical` is compared with the model's
/// prediction; `detail` (error messages) is for people.
struct outcome {
  std::string canonical;
  std::string detail;
};

std::string show(const varve::append_result& r) {
  return "v" + std::to_string(r.first_version) + "-" + std::to_string(r.last_version) + "@" +
         std::to_string(r.first_position) + "-" + std::to_string(r.last_position) +
         (r.idempotent ? " idempotent" : "");
}

std::string show(const varve::error& e) {
  return "error " + std::string(varve::to_string(e.code()));
}

std::string show(const std::vector<varve::append_result>& rs) {
  std::string out = "[";
  for (std::size_t i = 0; i < rs.size(); ++i)
    out += (i ? ", " : "") + show(rs[i]);
  return out + "]";
}

outcome observe(const varve::result<varve::append_result>& r) {
  if (!r) return {show(r.err()), r.err().message()};
  return {"ok " + show(*r), {}};
}

outcome observe(const varve::result<std::vector<varve::append_result>>& r) {
  if (!r) return {show(r.err()), r.err().message()};
  return {"ok " + show(*r), {}};
}

outcome observe(const varve::result<void>& r) {
  if (!r) return {show(r.err()), r.err().message()};
  return {"ok", {}};
}

outcome observe(const varve::result<std::vector<varve::write_outcome>>& r) {
  if (!r) return {show(r.err()), r.err().message()};
  outcome o{"ok {", {}};
  for (std::size_t i = 0; i < r->size(); ++i) {
    const varve::write_outcome& w = (*r)[i];
    o.canonical += (i ? "; " : "") + (w ? show(*w) : show(w.err()));
    if (!w) o.detail += "request " + std::to_string(i) + ": " + w.err().message() + "; ";
  }
  o.canonical += "}";
  return o;
}

/// The model's answer to a batch, as event_store::append answers one request.
varve::result<std::vector<varve::append_result>> one_request(
    varve::result<std::vector<varve::write_outcome>> r) {
  if (!r) return std::move(r).err();
  return std::move(r->front());
}

// ---------------------------------------------------------- specifications
// The parts operations are made of. Each is generated from the seed, and
// resolved into a concrete request against the model when it runs.

/// Bytes of a payload, metadata or snapshot, made from a seed when needed.
struct bytes_spec {
  enum class kind : std::uint8_t { empty, text, binary, large };
  kind k = kind::empty;
  std::uint32_t size = 0;
  std::uint64_t seed = 0;

  static bytes_spec generate(rng& r, unsigned large_percent) {
    bytes_spec b;
    b.seed = r.next();
    const unsigned roll = static_cast<unsigned>(r.below(100));
    if (roll < large_percent) {
      b.k = kind::large;  // several LMDB pages: overflow pages
      b.size = static_cast<std::uint32_t>(r.between(2000, 20000));
    } else if (roll < large_percent + 15) {
      b.k = kind::empty;
    } else if (roll < large_percent + 65) {
      b.k = kind::text;
      b.size = static_cast<std::uint32_t>(r.between(1, 40));
    } else {
      b.k = kind::binary;
      b.size = static_cast<std::uint32_t>(r.between(1, 300));
    }
    return b;
  }

  std::string make() const {
    std::string out(k == kind::empty ? 0 : size, '\0');
    std::uint64_t x = seed;
    for (char& c : out) {
      const std::uint64_t v = splitmix(x);
      c = k == kind::text ? static_cast<char>('a' + v % 26) : static_cast<char>(v & 0xff);
    }
    return out;
  }

  std::string describe() const {
    switch (k) {
      case kind::empty:
        return "empty";
      case kind::text:
        return "text" + std::to_string(size);
      case kind::binary:
        return "bin" + std::to_string(size);
      case kind::large:
        return "large" + std::to_string(size);
    }
    return "?";
  }
};

event_id random_id(rng& r) {
  event_id id;
  for (std::size_t i = 0; i < 16; i += 8) {
    std::uint64_t v = r.next();
    for (std::size_t j = 0; j < 8; ++j, v >>= 8)
      id.bytes[i + j] = static_cast<std::uint8_t>(v);
  }
  return id;
}

/// One event to append.
struct event_spec {
  std::string type;
  bytes_spec payload, metadata;
  std::optional<event_id> id;
  std::optional<timestamp_us> time;
  std::vector<std::string> tags;
  /// A payload that brings the event to max_event_bytes, or one byte past.
  enum class fill : std::uint8_t { none, at_limit, over_limit } size = fill::none;

  static event_spec generate(rng& r, bool with_id) {
    event_spec e;
    e.type = r.pick(event_types());
    e.payload = bytes_spec::generate(r, 5);
    e.metadata = r.chance(55) ? bytes_spec{} : bytes_spec::generate(r, 2);
    if (with_id) e.id = random_id(r);
    for (const std::string& t : event_tags())
      if (r.chance(25)) e.tags.push_back(t);
    if (r.chance(15)) {
      static const std::vector<timestamp_us> times = {0, -1, 1,
                                                      std::numeric_limits<timestamp_us>::max(),
                                                      std::numeric_limits<timestamp_us>::min()};
      e.time = r.chance(20) ? r.pick(times)
                            : static_cast<timestamp_us>(r.next() % 4'000'000'000'000'000ull) -
                                  1'000'000'000'000'000;
    }
    return e;
  }

  varve::new_event make(std::uint64_t max_event_bytes) const {
    varve::new_event e;
    e.type = type;
    e.metadata = metadata.make();
    if (size == fill::none) {
      e.payload = payload.make();
    } else {
      const std::uint64_t used = e.type.size() + e.metadata.size();
      std::uint64_t n = used >= max_event_bytes ? 0 : max_event_bytes - used;
      if (size == fill::over_limit) n = max_event_bytes + 1 - std::min(used, max_event_bytes);
      e.payload.assign(n, 'f');
    }
    e.id = id;
    e.time = time;
    e.tags = tags;
    return e;
  }

  std::string describe() const {
    std::string out = show_bytes(type) + " " + payload.describe();
    if (metadata.k != bytes_spec::kind::empty) out += " meta:" + metadata.describe();
    if (size == fill::at_limit) out += " (at max_event_bytes)";
    if (size == fill::over_limit) out += " (over max_event_bytes)";
    if (id) out += " id:" + id->to_string().substr(0, 8);
    if (time) out += " time:" + std::to_string(*time);
    for (const std::string& t : tags)
      out += " tag:" + show_bytes(t);
    return out;
  }
};

/// An expected version, fixed or relative to the stream's version when the
/// operation runs.
struct expect_spec {
  enum class kind : std::uint8_t {
    any,
    no_stream,
    stream_exists,
    exact_current,  ///< exact(the stream's version): right
    exact_offset,   ///< exact(the stream's version + n): wrong unless n = 0 after clamping
    exact_literal   ///< exact(n)
  };
  kind k = kind::any;
  std::int64_t n = 0;

  static expect_spec generate(rng& r) {
    const auto roll = r.below(100);
    if (roll < 25) return {kind::any, 0};
    if (roll < 31) return {kind::no_stream, 0};
    if (roll < 40) return {kind::stream_exists, 0};
    if (roll < 84) return {kind::exact_current, 0};
    if (roll < 95) {
      static const std::vector<std::int64_t> offsets = {-2, -1, 1, 2};
      return {kind::exact_offset, r.pick(offsets)};
    }
    return {kind::exact_literal, static_cast<std::int64_t>(r.below(80))};
  }

  expected_version resolve(stream_version current) const {
    switch (k) {
      case kind::any:
        return expected_version::any();
      case kind::no_stream:
        return expected_version::no_stream();
      case kind::stream_exists:
        return expected_version::stream_exists();
      case kind::exact_current:
        return expected_version::exact(current);
      case kind::exact_offset: {
        const std::int64_t v = static_cast<std::int64_t>(current) + n;
        return expected_version::exact(static_cast<stream_version>(std::max<std::int64_t>(v, 0)));
      }
      case kind::exact_literal:
        return expected_version::exact(static_cast<stream_version>(n));
    }
    return expected_version::any();
  }

  std::string describe() const {
    switch (k) {
      case kind::any:
        return "any";
      case kind::no_stream:
        return "no_stream";
      case kind::stream_exists:
        return "stream_exists";
      case kind::exact_current:
        return "exact(current)";
      case kind::exact_offset:
        return "exact(current" + std::string(n < 0 ? "" : "+") + std::to_string(n) + ")";
      case kind::exact_literal:
        return "exact(" + std::to_string(n) + ")";
    }
    return "?";
  }
};

/// Resolves the parts of one call (an append, a batch) against the model:
/// what earlier parts of the same call will have appended is counted in, so
/// that exact(current) chains within a batch.
struct resolver {
  const vm::model& m;
  std::map<std::string, stream_version, std::less<>> versions;
  std::map<std::string, global_position, std::less<>> cursors;

  stream_version version(std::string_view name) const {
    auto it = versions.find(name);
    return it != versions.end() ? it->second : m.version_of(name);
  }
  void appended(const std::string& name, std::size_t n) { versions[name] = version(name) + n; }
  global_position cursor(std::string_view consumer) const {
    auto it = cursors.find(consumer);
    return it != cursors.end() ? it->second : m.cursor_position(consumer);
  }
};

/// Sending stored events again: the `count` events that end `back` versions
/// before the stream's end, with their ids (idempotency).
struct again_spec {
  std::uint32_t back = 0;
  std::uint32_t count = 1;
  enum class where : std::uint8_t {
    same_place,     ///< exact(the version before them)
    any,            ///< the window of the last 64 events
    stream_exists,  ///< the same window
    no_stream,      ///< exact(0) in effect
    on_top          ///< exact(current): appended again as new events
  } at = where::same_place;
  enum class change : std::uint8_t {
    none,
    first_id,     ///< the first event gets another id
    later_id,     ///< a later event gets another id
    strip_later,  ///< a later event's id is reset (std::optional::reset)
    strip_first,  ///< the first event's id is reset
    extra_event   ///< one new event after them
  } edit = change::none;

  static again_spec generate(rng& r) {
    again_spec a;
    a.back =
        r.chance(60) ? 0 : static_cast<std::uint32_t>(r.chance(80) ? r.below(10) : r.below(90));
    a.count = static_cast<std::uint32_t>(r.between(1, 5));
    const auto w = r.below(100);
    a.at = w < 45   ? where::same_place
           : w < 70 ? where::any
           : w < 80 ? where::stream_exists
           : w < 88 ? where::no_stream
                    : where::on_top;
    const auto c = r.below(100);
    a.edit = c < 50   ? change::none
             : c < 60 ? change::first_id
             : c < 70 ? change::later_id
             : c < 85 ? change::strip_later
             : c < 90 ? change::strip_first
                      : change::extra_event;
    return a;
  }

  std::string describe() const {
    static const char* wheres[] = {"same place", "any", "stream_exists", "no_stream",
                                   "exact(current)"};
    static const char* edits[] = {"",
                                  ", other first id",
                                  ", other later id",
                                  ", later id reset",
                                  ", first id reset",
                                  ", one event more"};
    return "again(" + std::to_string(count) + " events " + std::to_string(back) + " back, " +
           wheres[static_cast<int>(at)] + edits[static_cast<int>(edit)] + ")";
  }
};

/// Appends to one stream.
struct append_spec {
  std::string stream;
  expect_spec expect;
  /// The events; a re-append uses them when the stream is too short.
  std::vector<event_spec> events;
  std::optional<again_spec> again;
  std::uint64_t seed = 0;  // for the ids a re-append changes

  static append_spec generate(rng& r, const std::vector<std::string>& streams,
                              std::uint64_t& fresh) {
    append_spec a;
    a.seed = r.next();
    a.stream = r.chance(8) ? "fresh-" + std::to_string(fresh++) : r.pick(streams);
    a.expect = expect_spec::generate(r);
    const auto ids = r.below(100);  // all given, none, or some
    const std::size_t n = r.chance(3) ? r.between(20, 70) : r.between(1, 5);
    for (std::size_t i = 0; i < n; ++i)
      a.events.push_back(event_spec::generate(r, ids < 45 || (ids >= 85 && r.chance(50))));
    if (r.chance(20)) a.again = again_spec::generate(r);
    if (r.chance(5)) {  // bad input
      switch (r.below(7)) {
        case 0:
          a.stream = r.pick(bad_stream_names());
          break;
        case 1:
          a.events.clear();
          break;
        case 2:
          a.events[r.below(a.events.size())].type.clear();
          break;
        case 3:
          a.events[r.below(a.events.size())].type.assign(vm::max_type_size + 1, 'T');
          break;
        case 4:
          a.events[r.below(a.events.size())].size = event_spec::fill::over_limit;
          break;
        default:
          a.events[r.below(a.events.size())].size = event_spec::fill::at_limit;  // fine
          break;
      }
      a.again.reset();
    }
    return a;
  }

  varve::append_request resolve(resolver& res) const {
    const vm::model& m = res.m;
    varve::append_request out;
    out.stream = stream;
    const vm::stream* s = m.find(stream);
    if (again && s && s->version() >= std::uint64_t{again->back} + again->count) {
      const stream_version v0 = s->version() - again->back - again->count;
      for (stream_version v = v0 + 1; v <= v0 + again->count; ++v) {
        const vm::event& e = m.at(s->positions[v - 1]);
        varve::new_event n;
        n.type = e.type;
        n.payload = e.payload;
        n.metadata = e.metadata;
        n.id = e.id;  // empty when the store generated it and the model has not learned it
        if (e.time_given) n.time = e.time;
        out.events.push_back(std::move(n));
      }
      rng r(seed);
      switch (again->edit) {
        case again_spec::change::none:
          break;
        case again_spec::change::first_id:
          out.events.front().id = random_id(r);
          break;
        case again_spec::change::later_id:
          out.events[r.below(out.events.size())].id = random_id(r);
          break;
        case again_spec::change::strip_later:
          // The id is reset, not replaced: the optional keeps its old bytes.
          out.events[out.events.size() > 1 ? 1 + r.below(out.events.size() - 1) : 0].id.reset();
          break;
        case again_spec::change::strip_first:
          out.events.front().id.reset();
          break;
        case again_spec::change::extra_event:
          out.events.push_back(events.front().make(m.lim().max_event_bytes));
          break;
      }
      switch (again->at) {
        case again_spec::where::same_place:
          out.expected = expected_version::exact(v0);
          break;
        case again_spec::where::any:
          out.expected = expected_version::any();
          break;
        case again_spec::where::stream_exists:
          out.expected = expected_version::stream_exists();
          break;
        case again_spec::where::no_stream:
          out.expected = expected_version::no_stream();
          break;
        case again_spec::where::on_top:
          out.expected = expected_version::exact(res.version(stream));
          break;
      }
    } else {
      out.expected = expect.resolve(res.version(stream));
      for (const event_spec& e : events)
        out.events.push_back(e.make(m.lim().max_event_bytes));
    }
    res.appended(stream, out.events.size());
    return out;
  }

  std::string describe() const {
    std::string out = show_bytes(stream) + " ";
    if (again) return out + again->describe();
    out += expect.describe() + " [";
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (i == 3 && events.size() > 4) {
        out += ", ... " + std::to_string(events.size() - 3) + " more";
        break;
      }
      out += (i ? ", " : "") + events[i].describe();
    }
    return out + "]";
  }
};

/// A consumer's checkpoint in a request.
struct cursor_spec {
  std::string consumer;
  bool at_head = false;
  global_position position = 0;
  bytes_spec state;
  enum class expect : std::uint8_t { none, right, wrong } expected = expect::none;

  static cursor_spec generate(rng& r) {
    cursor_spec c;
    c.consumer = r.chance(3) ? r.pick(bad_consumer_names()) : r.pick(consumer_names());
    c.at_head = r.chance(50);
    c.position = r.below(500);
    c.state = r.chance(50) ? bytes_spec{} : bytes_spec::generate(r, 3);
    const auto e = r.below(100);
    c.expected = e < 50 ? expect::none : e < 85 ? expect::right : expect::wrong;
    return c;
  }

  varve::cursor_update resolve(resolver& res) const {
    varve::cursor_update u;
    u.consumer = consumer;
    u.position = at_head ? res.m.head() : position;
    u.state = state.make();
    if (expected == expect::right) u.expected = res.cursor(consumer);
    if (expected == expect::wrong) {
      // Stale: "no cursor yet" when it has one, or a position it is not at.
      const global_position at = res.cursor(consumer);
      u.expected = at != 0 && position % 2 == 0 ? 0 : at + 1 + position % 3;
    }
    res.cursors[consumer] = u.position;
    return u;
  }

  std::string describe() const {
    static const char* expects[] = {"", " expected(right)", " expected(stale)"};
    return "cursor " + show_bytes(consumer) + " at " +
           (at_head ? std::string("head") : std::to_string(position)) +
           (state.k == bytes_spec::kind::empty ? "" : " state:" + state.describe()) +
           expects[static_cast<int>(expected)];
  }
};

/// A snapshot in a request.
struct snapshot_spec {
  std::string stream;
  enum class at : std::uint8_t { zero, current, past_end, inside } version = at::current;
  std::uint64_t inside = 0;
  std::uint32_t schema = 0;
  bytes_spec bytes;

  static snapshot_spec generate(rng& r, const std::vector<std::string>& streams) {
    snapshot_spec s;
    s.stream = r.chance(5) ? std::string(never_written) : r.pick(streams);
    const auto v = r.below(100);
    s.version = v < 5 ? at::zero : v < 60 ? at::current : v < 67 ? at::past_end : at::inside;
    s.inside = r.next();
    s.schema = static_cast<std::uint32_t>(r.below(4));
    s.bytes = bytes_spec::generate(r, 8);
    return s;
  }

  /// After the request's appends have been resolved (they count).
  varve::snapshot_update resolve(const resolver& res) const {
    const stream_version v = res.version(stream);
    varve::snapshot_update u;
    u.stream = stream;
    switch (version) {
      case at::zero:
        u.version = 0;
        break;
      case at::current:
        u.version = v;
        break;
      case at::past_end:
        u.version = v + 1;
        break;
      case at::inside:
        u.version = v == 0 ? 1 : 1 + inside % v;
        break;
    }
    u.schema = schema;
    u.bytes = bytes.make();
    return u;
  }

  std::string describe() const {
    static const char* ats[] = {"0", "current", "past the end", "inside"};
    return "snapshot " + show_bytes(stream) + " at " + ats[static_cast<int>(version)] + " schema " +
           std::to_string(schema) + " " + bytes.describe();
  }
};

/// A view change in a request.
struct view_spec {
  varve::view_update u;

  static view_spec generate(rng& r) {
    view_spec v;
    v.u.view = r.chance(2) ? r.pick(bad_view_names()) : r.pick(view_names());
    const auto k = r.below(100);
    v.u.kind = k < 55   ? varve::view_update::op::put
               : k < 75 ? varve::view_update::op::erase
               : k < 82 ? varve::view_update::op::clear
                        : varve::view_update::op::erase_if_equal;
    v.u.key = r.chance(2) ? r.pick(bad_view_keys()) : r.pick(view_keys());
    v.u.value = r.pick(view_values());
    return v;
  }

  std::string describe() const {
    static const char* kinds[] = {"put", "erase", "clear", "erase_if_equal"};
    return std::string("view ") + show_bytes(u.view) + " " + kinds[static_cast<int>(u.kind)] + " " +
           show_bytes(u.key) +
           (u.kind == varve::view_update::op::put ||
                    u.kind == varve::view_update::op::erase_if_equal
                ? "=" + show_bytes(u.value)
                : "");
  }
};

/// Streams of one operation: a few, so that its parts meet.
std::vector<std::string> some_streams(rng& r) {
  std::vector<std::string> out;
  for (std::size_t i = r.between(1, 3); i > 0; --i) {
    const std::string& name = r.chance(40) ? stream_names().front() : r.pick(stream_names());
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
}

/// Appends of one request: to distinct streams, `streams` first; now and
/// then one stream twice (invalid_argument).
std::vector<append_spec> appends_of_one_request(rng& r, std::size_t n,
                                                const std::vector<std::string>& streams,
                                                std::uint64_t& fresh) {
  std::vector<std::string> pool = streams;
  for (const std::string& name : stream_names())
    if (std::find(pool.begin(), pool.end(), name) == pool.end()) pool.push_back(name);
  std::vector<append_spec> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(append_spec::generate(r, {pool[i % pool.size()]}, fresh));
    if (i > 0 && r.chance(4)) out.back().stream = out.front().stream;
  }
  return out;
}

/// One request of a batch.
struct request_spec {
  std::vector<append_spec> appends;
  std::vector<cursor_spec> cursors;
  std::vector<snapshot_spec> snapshots;
  std::vector<view_spec> views;

  static request_spec generate(rng& r, const std::vector<std::string>& streams,
                               std::uint64_t& fresh) {
    request_spec q;
    q.appends = appends_of_one_request(r, r.chance(25) ? 0 : r.between(1, 3), streams, fresh);
    if (r.chance(25))
      for (std::size_t i = r.between(1, 2); i > 0; --i)
        q.cursors.push_back(cursor_spec::generate(r));
    if (r.chance(25)) q.snapshots.push_back(snapshot_spec::generate(r, streams));
    if (r.chance(30))
      for (std::size_t i = r.between(1, 3); i > 0; --i)
        q.views.push_back(view_spec::generate(r));
    return q;
  }

  varve::write_request resolve(resolver& res) const {
    varve::write_request w;
    for (const append_spec& a : appends)
      w.appends.push_back(a.resolve(res));
    for (const cursor_spec& c : cursors)
      w.cursors.push_back(c.resolve(res));
    for (const snapshot_spec& s : snapshots)
      w.snapshots.push_back(s.resolve(res));
    for (const view_spec& v : views)
      w.views.push_back(v.u);
    return w;
  }

  std::string describe() const {
    std::string out = "{";
    const char* sep = "";
    for (const auto& a : appends)
      out += std::exchange(sep, "; ") + ("append " + a.describe());
    for (const auto& c : cursors)
      out += std::exchange(sep, "; ") + c.describe();
    for (const auto& s : snapshots)
      out += std::exchange(sep, "; ") + s.describe();
    for (const auto& v : views)
      out += std::exchange(sep, "; ") + v.describe();
    return out + "}";
  }
};

/// A store operation resolved against the model: the call to make on a
/// store, and the model's prediction of its answer (which changes the model
/// as the store must change).
struct prepared {
  std::function<outcome(varve::event_store&)> on_store;
  std::function<std::string(vm::model&, const vm::write_context&)> on_model;
};

// ------------------------------------------------------------ store operations
// Each: generate (from the seed), describe (for the printed sequence),
// prepare (the concrete call and the model's prediction).

/// event_store::append to one stream.
struct append_op {
  append_spec a;

  static append_op generate(rng& r, std::uint64_t& fresh) {
    return {append_spec::generate(r, stream_names(), fresh)};
  }
  std::string describe() const { return "append " + a.describe(); }
  prepared prepare(const vm::model& m) const {
    resolver res{m, {}, {}};
    auto req = std::make_shared<const varve::append_request>(a.resolve(res));
    return {[req](varve::event_store& s) {
              return observe(s.append(req->stream, req->expected, req->events));
            },
            [req](vm::model& model, const vm::write_context& ctx) {
              std::vector<varve::write_request> batch(1);
              batch[0].appends.push_back(*req);
              auto r = one_request(model.write(batch, ctx));
              if (!r) return show(r.err());
              return "ok " + show(r->front());
            }};
  }
};

/// event_store::append to several streams at once (all or nothing).
struct multi_append_op {
  std::vector<append_spec> as;

  static multi_append_op generate(rng& r, std::uint64_t& fresh) {
    multi_append_op o;
    o.as = appends_of_one_request(r, r.chance(3) ? 0 : r.between(1, 4), some_streams(r), fresh);
    return o;
  }
  std::string describe() const {
    std::string out = "append to several [";
    for (std::size_t i = 0; i < as.size(); ++i)
      out += (i ? "; " : "") + as[i].describe();
    return out + "]";
  }
  prepared prepare(const vm::model& m) const {
    resolver res{m, {}, {}};
    auto reqs = std::make_shared<std::vector<varve::append_request>>();
    for (const append_spec& a : as)
      reqs->push_back(a.resolve(res));
    return {[reqs](varve::event_store& s) { return observe(s.append(*reqs)); },
            [reqs](vm::model& model, const vm::write_context& ctx) {
              std::vector<varve::write_request> batch(1);
              batch[0].appends = *reqs;
              return observe(one_request(model.write(batch, ctx))).canonical;
            }};
  }
};

/// event_store::write: a batch of requests in one transaction.
struct batch_op {
  std::vector<request_spec> reqs;

  static batch_op generate(rng& r, std::uint64_t& fresh) {
    batch_op o;
    const auto streams = some_streams(r);
    for (std::size_t i = r.chance(3) ? 0 : r.between(1, 6); i > 0; --i)
      o.reqs.push_back(request_spec::generate(r, streams, fresh));
    return o;
  }
  std::string describe() const {
    std::string out = "write " + std::to_string(reqs.size()) + " requests";
    for (const auto& q : reqs)
      out += " " + q.describe();
    return out;
  }
  prepared prepare(const vm::model& m) const {
    resolver res{m, {}, {}};
    auto batch = std::make_shared<std::vector<varve::write_request>>();
    for (const request_spec& q : reqs)
      batch->push_back(q.resolve(res));
    return {[batch](varve::event_store& s) { return observe(s.write(*batch)); },
            [batch](vm::model& model, const vm::write_context& ctx) {
              return observe(model.write(*batch, ctx)).canonical;
            }};
  }
};

/// event_store::save_cursor.
struct save_cursor_op {
  cursor_spec c;

  static save_cursor_op generate(rng& r) { return {cursor_spec::generate(r)}; }
  std::string describe() const {
    return "save_cursor " + show_bytes(c.consumer) + " at " +
           (c.at_head ? std::string("head") : std::to_string(c.position));
  }
  prepared prepare(const vm::model& m) const {
    const std::string consumer = c.consumer;
    const global_position position = c.at_head ? m.head() : c.position;
    return {[=](varve::event_store& s) { return observe(s.save_cursor(consumer, position)); },
            [=](vm::model& model, const vm::write_context& ctx) {
              std::vector<varve::write_request> batch(1);
              batch[0].cursors.push_back({consumer, position, {}, std::nullopt});
              auto r = one_request(model.write(batch, ctx));
              return r ? std::string("ok") : show(r.err());
            }};
  }
};

/// event_store::shred.
struct shred_op {
  std::string stream;

  static shred_op generate(rng& r, std::uint64_t fresh) {
    // Mostly streams made for the occasion: a shredded stream takes no more
    // appends, and the long-lived ones should stay long-lived.
    const auto roll = r.below(100);
    if (roll < 8) return {std::string(never_written)};
    if (roll < 11) return {stream_names().front()};
    if (roll < 60 && fresh > 0) return {"fresh-" + std::to_string(r.below(fresh))};
    return {stream_names()[1 + r.below(stream_names().size() - 1)]};
  }
  std::string describe() const { return "shred " + show_bytes(stream); }
  prepared prepare(const vm::model&) const {
    const std::string name = stream;
    return {[name](varve::event_store& s) { return observe(s.shred(name)); },
            [name](vm::model& model, const vm::write_context& ctx) {
              return observe(model.shred(name, ctx)).canonical;
            }};
  }
};

/// event_store::rebuild_indexes.
struct rebuild_indexes_op {
  static rebuild_indexes_op generate(rng&) { return {}; }
  std::string describe() const { return "rebuild-indexes"; }
  prepared prepare(const vm::model&) const {
    return {[](varve::event_store& s) { return observe(s.rebuild_indexes()); },
            [](vm::model& model, const vm::write_context& ctx) {
              return observe(model.rebuild_indexes(ctx)).canonical;
            }};
  }
};

vm::key_bytes key_of(std::uint64_t seed) {
  vm::key_bytes k{};
  for (std::size_t i = 0; i < k.size(); ++i)
    k[i] = static_cast<std::uint8_t>(splitmix(seed));
  return k;
}

/// event_store::rotate_master_key.
struct rotate_op {
  std::uint64_t key_seed = 0;

  static rotate_op generate(rng& r) { return {r.next()}; }
  std::string describe() const { return "rotate-key"; }
  prepared prepare(const vm::model&) const {
    const vm::key_bytes next = key_of(key_seed);
    return {[next](varve::event_store& s) { return observe(s.rotate_master_key(next)); },
            [next](vm::model& model, const vm::write_context& ctx) {
              return observe(model.rotate(next, ctx)).canonical;
            }};
  }
};

using store_op = std::variant<append_op, multi_append_op, batch_op, save_cursor_op, shred_op,
                              rebuild_indexes_op, rotate_op>;

std::string describe(const store_op& o) {
  return std::visit([](const auto& x) { return x.describe(); }, o);
}

prepared prepare(const store_op& o, const vm::model& m) {
  return std::visit([&](const auto& x) { return x.prepare(m); }, o);
}

/// A store operation, drawn with the weights of a normal step.
store_op generate_store_op(rng& r, bool encrypted, bool allow_rotate, std::uint64_t& fresh) {
  for (;;) {
    const auto roll = r.below(100);
    if (roll < 46) return append_op::generate(r, fresh);
    if (roll < 62) return multi_append_op::generate(r, fresh);
    if (roll < 88) return batch_op::generate(r, fresh);
    if (roll < 93) return save_cursor_op::generate(r);
    if (roll < 95) return shred_op::generate(r, fresh);
    if (roll < 97) return rebuild_indexes_op::generate(r);
    if (!allow_rotate) continue;
    if (encrypted || r.chance(15)) return rotate_op::generate(r);
  }
}

// ------------------------------------------------------------------- the world

struct run_config {
  std::uint64_t seed = 0;
  bool encrypted = false;
  std::uint64_t map_size = 0;
  std::uint64_t max_event_bytes = 0;
  varve::durability sync = varve::durability::no_sync;
  bool verify_checksums = true;
  bool prefault_map = true;

  static run_config of(std::uint64_t seed, bool encrypted) {
    rng r(seed ^ 0xC0FFEE);
    run_config c;
    c.seed = seed;
    c.encrypted = encrypted;
    // Small maps grow in the middle of batches.
    static const std::vector<std::uint64_t> maps = {
        std::uint64_t{64} << 10, std::uint64_t{256} << 10, std::uint64_t{64} << 20};
    c.map_size = r.pick(maps);
    c.max_event_bytes = r.chance(50) ? 40000 : std::uint64_t{1} << 20;
    const auto d = r.below(100);
    c.sync = d < 80   ? varve::durability::no_sync
             : d < 95 ? varve::durability::no_meta_sync
                      : varve::durability::sync;
    c.verify_checksums = r.chance(75);
    c.prefault_map = r.chance(50);
    return c;
  }

  std::string describe() const {
    return std::string(encrypted ? "encrypted" : "plain") + ", map_size " +
           std::to_string(map_size) + ", max_event_bytes " + std::to_string(max_event_bytes) +
           ", " + std::string(varve::to_string(sync)) +
           (verify_checksums ? "" : ", verify_checksums off") +
           (prefault_map ? "" : ", prefault_map off");
  }
};

struct counters {
  std::uint64_t seeds = 0;
  std::uint64_t steps = 0;
  std::uint64_t operations = 0;
  std::uint64_t faults = 0;
  std::uint64_t children = 0;
  /// What the answers were: "appended", "idempotent", "error <code>", and
  /// where injected faults hit ("fault at <call>").
  std::map<std::string, std::uint64_t> seen;
  /// Steps after which the map was larger than before them.
  std::uint64_t map_growths = 0;
  /// The longest stream any seed built.
  stream_version longest_stream = 0;

  /// Counts the parts of a canonical answer.
  void tally(const std::string& canonical) {
    for (std::size_t at = 0; (at = canonical.find("error ", at)) != std::string::npos; at += 6) {
      const auto end = canonical.find_first_of(";}] ", at + 6);
      ++seen[canonical.substr(at, end == std::string::npos ? std::string::npos : end - at)];
    }
    for (std::size_t at = 0; (at = canonical.find('@', at)) != std::string::npos; ++at) {
      const auto end = canonical.find_first_of(";,}]", at);
      const std::string part =
          canonical.substr(at, end == std::string::npos ? std::string::npos : end - at);
      ++seen[part.find("idempotent") != std::string::npos ? "idempotent" : "appended"];
    }
  }
};

/// The store on disk, its model, and the checks that compare them.
struct world {
  run_config cfg;
  counters& count;
  varve_test::temp_dir dir;
  vm::model m;
  std::unique_ptr<varve::event_store> store;
  rng r;                       // the checks' choices
  std::uint64_t map_size = 0;  // at the last check
  std::uint64_t backups = 0;   // directories made by backup_op

  world(const run_config& c, counters& n)
      : cfg(c),
        count(n),
        m(vm::limits{511, c.max_event_bytes},
          c.encrypted ? std::optional<vm::key_bytes>(key_of(c.seed)) : std::nullopt),
        r(c.seed ^ 0x5EED) {
    open();
  }

  std::filesystem::path directory() const { return dir / "store"; }

  varve::options options_with(std::optional<vm::key_bytes> key) const {
    varve::options o = varve_test::test_options(directory());
    o.map_size = cfg.map_size;
    o.max_event_bytes = cfg.max_event_bytes;
    o.sync = cfg.sync;
    o.verify_checksums = cfg.verify_checksums;
    o.prefault_map = cfg.prefault_map;
    o.master_key = key;
    return o;
  }

  void open() {
    auto opened = varve::event_store::open(options_with(m.key));
    if (!opened) fail("open", "open: " + opened.err().to_string());
    store = std::move(*opened);
    if (store->encrypted() != m.encrypted()) fail("open", "encrypted() differs");
    m.reopened();
  }

  void close() { store.reset(); }

  // ---- comparisons

  void learn(const varve::event_view& v) {
    if (v.position == 0 || v.position > m.head()) return;  // the comparison reports it
    vm::event& e = m.at(v.position);
    vm::stream& s = m.streams.at(e.stream);
    const auto at = "position " + std::to_string(v.position) + ": ";
    if (!e.id) {
      const auto& b = v.id.bytes;
      std::int64_t ms = 0;
      for (std::size_t i = 0; i < 6; ++i)
        ms = (ms << 8) | b[i];
      if ((b[6] >> 4) != 7 || (b[8] & 0xC0) != 0x80)
        fail("generated id", at + "id " + v.id.to_string() + " is not in the UUIDv7 layout");
      if (ms < e.written.lo / 1000 || ms > e.written.hi / 1000)
        fail("generated id", at + "id " + v.id.to_string() + " has " + std::to_string(ms) +
                                 " ms, outside the write's clock window");
      if (ms < s.generated_ms)
        fail("generated id", at + "id " + v.id.to_string() +
                                 " is older than an earlier generated id of the stream");
      if (!m.generated_ids.insert(b).second)
        fail("generated id", at + "id " + v.id.to_string() + " was generated twice");
      if (!e.time_given && ms != v.time / 1000)
        fail("generated id", at + "id " + v.id.to_string() + " has other milliseconds than time " +
                                 std::to_string(v.time));
      e.id = v.id;
      s.generated_ms = ms;
    }
    if (!e.time) {
      if (v.time < e.written.lo || v.time > e.written.hi)
        fail("time", at + "time " + std::to_string(v.time) + " outside the write's clock window [" +
                         std::to_string(e.written.lo) + ", " + std::to_string(e.written.hi) + "]");
      e.time = v.time;
    }
  }

  /// Differences between an event read and the model's; empty when equal.
  std::string diff(global_position position, const std::string* stream_name,
                   std::uint64_t stream_id, stream_version version, global_position previous,
                   const event_id& id, timestamp_us time, std::string_view type,
                   std::string_view metadata, std::string_view payload, bool shredded) const {
    if (position == 0 || position > m.head())
      return "position " + std::to_string(position) + " is not in the model";
    const vm::event& e = m.at(position);
    const vm::stream& s = m.streams.at(e.stream);
    const global_position want_previous = e.version > 1 ? s.positions[e.version - 2] : 0;
    const std::string_view want_metadata = s.shredded ? std::string_view() : e.metadata;
    const std::string_view want_payload = s.shredded ? std::string_view() : e.payload;
    const bool same = (stream_name ? *stream_name == e.stream : stream_id == s.id) &&
                      version == e.version && (stream_name || previous == want_previous) && e.id &&
                      id == *e.id && e.time && time == *e.time && type == e.type &&
                      shredded == s.shredded && metadata == want_metadata &&
                      payload == want_payload;
    if (same) return {};
    std::string out;
    auto field = [&](const std::string& name, const std::string& got, const std::string& want) {
      if (got != want) out += name + " " + got + " (model: " + want + "); ";
    };
    if (stream_name) field("stream", show_bytes(*stream_name), show_bytes(e.stream));
    if (!stream_name) field("stream id", std::to_string(stream_id), std::to_string(s.id));
    field("version", std::to_string(version), std::to_string(e.version));
    if (!stream_name) field("previous", std::to_string(previous), std::to_string(want_previous));
    field("id", id.to_string(), show_id(e.id));
    field("time", std::to_string(time), e.time ? std::to_string(*e.time) : "(unknown)");
    auto bytes = [&](const std::string& name, std::string_view got, std::string_view want) {
      if (got == want) return;
      std::size_t at = 0;
      while (at < got.size() && at < want.size() && got[at] == want[at])
        ++at;
      out += name + " " + show_bytes(got) + " (model: " + show_bytes(want) +
             ", first difference at byte " + std::to_string(at) + "); ";
    };
    bytes("type", type, e.type);
    field("shredded", shredded ? "yes" : "no", s.shredded ? "yes" : "no");
    bytes("metadata", metadata, want_metadata);
    bytes("payload", payload, want_payload);
    if (!out.empty()) out = "position " + std::to_string(position) + ": " + out;
    return out;
  }

  std::string diff(const varve::event_view& v) const {
    return diff(v.position, nullptr, v.stream_id, v.version, v.previous_position, v.id, v.time,
                v.type, v.metadata, v.payload, v.shredded);
  }
  std::string diff(const varve::recorded_event& v) const {
    return diff(v.position, &v.stream, 0, v.version, 0, v.id, v.time, v.type, v.metadata, v.payload,
                v.shredded);
  }

  template <class Event>
  void compare_events(const std::string& what, const std::string& call,
                      const varve::result<std::vector<Event>>& got,
                      const std::vector<global_position>& want) {
    if (!got) fail(what, call + ": " + got.err().to_string());
    std::string positions;
    for (const Event& e : *got)
      positions += std::to_string(e.position) + " ";
    if (got->size() != want.size()) {
      std::string model;
      for (global_position p : want)
        model += std::to_string(p) + " ";
      fail(what, call + ": " + std::to_string(got->size()) + " events (" + positions +
                     "), model: " + std::to_string(want.size()) + " (" + model + ")");
    }
    for (std::size_t i = 0; i < want.size(); ++i) {
      if ((*got)[i].position != want[i])
        fail(what, call + ": event " + std::to_string(i) + " at position " +
                       std::to_string((*got)[i].position) + ", model: " + std::to_string(want[i]));
      if (auto d = diff((*got)[i]); !d.empty()) fail(what, call + ": " + d);
    }
  }

  template <class T>
  void expect_equal(const std::string& what, const std::string& call, const T& got, const T& want) {
    if (!(got == want)) {
      std::ostringstream s;
      s << call << ": " << got << ", model: " << want;
      fail(what, s.str());
    }
  }

  /// A `from` for a read: often inside, sometimes at an edge or past it.
  std::uint64_t some_from(std::uint64_t last) {
    const auto roll = r.below(10);
    if (roll == 0) return 0;
    if (roll == 1) return last + 1 + r.below(3);
    if (roll == 2) return varve::from_end;
    return last == 0 ? 1 : 1 + r.below(last);
  }
  std::size_t some_limit(std::uint64_t last) {
    const auto roll = r.below(10);
    if (roll == 0) return 0;
    if (roll == 1) return 1;
    if (roll < 4) return SIZE_MAX;
    return static_cast<std::size_t>(1 + r.below(last + 2));
  }

  static std::string read_call(const std::string& name, std::uint64_t from, direction dir,
                               std::size_t limit) {
    return name + "(" + (from == varve::from_end ? std::string("from_end") : std::to_string(from)) +
           ", " + (dir == direction::forward ? "forward" : "backward") + ", " +
           (limit == SIZE_MAX ? std::string("all") : std::to_string(limit)) + ")";
  }

  /// A random query (types, tags, categories, several items), read from
  /// the store and found in the model's log.
  void check_query(const varve::read_transaction& tx) {
    varve::query q;
    const auto items = r.below(3);
    for (std::uint64_t i = 0; i < items; ++i) {
      varve::query_item item;
      if (r.chance(50)) item.types.push_back(r.pick(event_types()));
      if (r.chance(20)) item.types.push_back(r.pick(event_types()));
      if (r.chance(50)) item.tags.push_back(r.pick(event_tags()));
      if (r.chance(20)) item.tags.push_back(r.pick(event_tags()));
      if (r.chance(15) && !m.log.empty()) {
        const std::string c(varve::category_of(m.log[r.below(m.log.size())].stream));
        if (!c.empty()) item.categories.push_back(c);
      }
      q.items.push_back(std::move(item));
    }
    const direction dir = r.chance(50) ? direction::backward : direction::forward;
    const auto from = some_from(m.head());
    const auto limit = some_limit(m.head());
    auto matches = [&](const vm::event& e) {
      for (const auto& item : q.items) {
        if (!item.types.empty() &&
            std::find(item.types.begin(), item.types.end(), e.type) == item.types.end())
          continue;
        if (!item.categories.empty() &&
            std::find(item.categories.begin(), item.categories.end(),
                      varve::category_of(e.stream)) == item.categories.end())
          continue;
        if (std::all_of(item.tags.begin(), item.tags.end(), [&](const std::string& t) {
              return std::find(e.tags.begin(), e.tags.end(), t) != e.tags.end();
            }))
          return true;
      }
      return false;
    };
    std::vector<const vm::event*> want;
    const std::uint64_t start = dir == direction::forward ? std::max<std::uint64_t>(from, 1) : from;
    for (std::size_t n = 0; n < m.log.size() && want.size() < limit; ++n) {
      const vm::event& e = dir == direction::forward ? m.log[n] : m.log[m.log.size() - 1 - n];
      if (dir == direction::forward ? e.position < start : e.position > start) continue;
      if (matches(e)) want.push_back(&e);
    }
    const std::string call = read_call("read_query " + q.to_string(), from, dir, limit);
    auto got = tx.read_query(q, from, dir, limit);
    if (!got) return fail("query", call + ": " + got.err().to_string());
    expect_equal<std::size_t>("query", call + ": count", got->size(), want.size());
    for (std::size_t i = 0; i < std::min(got->size(), want.size()); ++i) {
      const varve::event_view& v = (*got)[i];
      expect_equal<std::uint64_t>("query", call + ": position", v.position, want[i]->position);
      const std::vector<std::string> tags(v.tags.begin(), v.tags.end());
      if (tags != want[i]->tags)
        fail("query", call + ": the tags of " + std::to_string(v.position));
    }
  }

  /// Every read of the store against the model.
  /// Every read of the store against the model. `copy`: the store is a
  /// copy (a backup), not the handle the model follows.
  void check(bool copy = false) {
    {
      auto opened = store->read();
      if (!opened) fail("read", "read(): " + opened.err().to_string());
      const varve::read_transaction& tx = *opened;
      check_log(tx);
      check_streams(tx);
      check_side_tables(tx);
    }
    check_owned();
    check_store(copy);
  }

  void check_log(const varve::read_transaction& tx) {
    expect_equal<std::uint64_t>("head", "head()", tx.head(), m.head());
    expect_equal<std::uint64_t>("streams", "stream_count()", tx.stream_count(), m.names.size());
    {  // the whole log first: it teaches the model generated ids and times
      auto all = tx.read_log(1, direction::forward, SIZE_MAX);
      if (all)
        for (const auto& v : *all)
          learn(v);
      compare_events("log", "read_log(1, forward, all)", all,
                     m.read_log(1, direction::forward, SIZE_MAX));
    }
    compare_events("log", "read_log(from_end, backward, all)",
                   tx.read_log(varve::from_end, direction::backward, SIZE_MAX),
                   m.read_log(varve::from_end, direction::backward, SIZE_MAX));
    for (int i = 0; i < 4; ++i) {
      const direction dir = i % 2 ? direction::backward : direction::forward;
      const auto from = some_from(m.head());
      const auto limit = some_limit(m.head());
      compare_events("log", read_call("read_log", from, dir, limit), tx.read_log(from, dir, limit),
                     m.read_log(from, dir, limit));
    }
    for (int i = 0; i < 3; ++i)
      check_query(tx);
    {  // read_log into a vector that held something: cleared first
      std::vector<varve::event_view> out(3);
      const auto from = some_from(m.head());
      const auto limit = some_limit(m.head());
      auto n = tx.read_log(from, direction::forward, limit, out);
      if (!n) fail("log", "read_log into a vector: " + n.err().to_string());
      expect_equal<std::size_t>("log", "read_log into a vector: count", *n, out.size());
      compare_events("log", read_call("read_log into a vector", from, direction::forward, limit),
                     varve::result<std::vector<varve::event_view>>(out),
                     m.read_log(from, direction::forward, limit));
    }
    {  // a visitor that stops early
      const std::size_t stop = 1 + r.below(5);
      std::size_t seen = 0;
      auto n = tx.scan_log(1, direction::forward, SIZE_MAX,
                           [&](const varve::event_view&) { return ++seen < stop; });
      if (!n) fail("log", "scan_log stopping early: " + n.err().to_string());
      expect_equal<std::size_t>("log", "scan_log stopping after " + std::to_string(stop), *n,
                                std::min<std::size_t>(stop, m.head()));
    }
    std::vector<global_position> points = {0, m.head() + 1, m.head() + 1000, varve::from_end};
    for (int i = 0; i < 4 && m.head() > 0; ++i)
      points.push_back(1 + r.below(m.head()));
    for (global_position p : points) {
      auto e = tx.event_at(p);
      const std::string call = "event_at(" + std::to_string(p) + ")";
      if (p == 0 || p > m.head()) {
        if (e || e.err().code() != errc::not_found)
          fail("event_at",
               call + ": " + (e ? "an event" : e.err().to_string()) + ", model: not_found");
        continue;
      }
      if (!e) fail("event_at", call + ": " + e.err().to_string());
      if (e->position != p) fail("event_at", call + ": position " + std::to_string(e->position));
      if (auto d = diff(*e); !d.empty()) fail("event_at", call + ": " + d);
    }
  }

  void check_streams(const varve::read_transaction& tx) {
    for (const auto& [name, s] : m.streams) {
      const std::string label = "stream " + show_bytes(name);
      count.longest_stream = std::max(count.longest_stream, s.version());
      auto info = tx.stream(name);
      if (!info || !*info)
        fail("stream info", label + ": " + (info ? "missing" : info.err().to_string()));
      const varve::stream_info& i = **info;
      expect_equal<std::uint64_t>("stream info", label + " id", i.id, s.id);
      expect_equal<std::uint64_t>("stream info", label + " version", i.version, s.version());
      expect_equal<std::uint64_t>("stream info", label + " last_position", i.last_position,
                                  s.positions.back());
      expect_equal<int>(
          "stream info", label + " state", static_cast<int>(i.state),
          static_cast<int>(s.shredded ? varve::stream_state::shredded : varve::stream_state::live));
      auto n = tx.stream_name(s.id);
      if (!n || *n != name)
        fail("stream info", "stream_name(" + std::to_string(s.id) +
                                "): " + (n ? show_bytes(*n) : n.err().to_string()) +
                                ", model: " + show_bytes(name));
      compare_events("stream",
                     read_call("read_stream " + show_bytes(name), 1, direction::forward, SIZE_MAX),
                     tx.read_stream(name, 1, direction::forward, SIZE_MAX),
                     m.read_stream(s, 1, direction::forward, SIZE_MAX));
      compare_events("stream",
                     read_call("read_stream " + show_bytes(name), varve::from_end,
                               direction::backward, SIZE_MAX),
                     tx.read_stream(name, varve::from_end, direction::backward, SIZE_MAX),
                     m.read_stream(s, varve::from_end, direction::backward, SIZE_MAX));
      const direction dir = r.chance(50) ? direction::forward : direction::backward;
      const auto from = some_from(s.version());
      const auto limit = some_limit(s.version());
      compare_events("stream", read_call("read_stream " + show_bytes(name), from, dir, limit),
                     tx.read_stream(name, from, dir, limit), m.read_stream(s, from, dir, limit));
      auto snap = tx.snapshot(name);
      if (!snap) fail("snapshot", label + ": " + snap.err().to_string());
      if (snap->has_value() != s.snap.has_value())
        fail("snapshot", label + ": " + (snap->has_value() ? "a snapshot" : "none") +
                             ", model: " + (s.snap ? "a snapshot" : "none"));
      if (s.snap && ((*snap)->version != s.snap->version || (*snap)->schema != s.snap->schema ||
                     (*snap)->bytes != s.snap->bytes))
        fail("snapshot", label + ": version " + std::to_string((*snap)->version) + " schema " +
                             std::to_string((*snap)->schema) + " " + show_bytes((*snap)->bytes) +
                             ", model: version " + std::to_string(s.snap->version) + " schema " +
                             std::to_string(s.snap->schema) + " " + show_bytes(s.snap->bytes));
    }
    if (!m.streams.empty()) {  // a visitor that stops early, on one stream
      auto it = m.streams.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(r.below(m.streams.size())));
      const std::size_t stop = 1 + r.below(70);
      std::size_t seen = 0;
      const direction dir = r.chance(50) ? direction::forward : direction::backward;
      auto n = tx.scan_stream(it->first, dir == direction::forward ? 1 : varve::from_end, dir,
                              SIZE_MAX, [&](const varve::event_view&) { return ++seen < stop; });
      if (!n) fail("stream", "scan_stream stopping early: " + n.err().to_string());
      expect_equal<std::size_t>(
          "stream",
          "scan_stream " + show_bytes(it->first) + " stopping after " + std::to_string(stop), *n,
          std::min<std::size_t>(stop, it->second.version()));
    }
    {
      auto info = tx.stream(never_written);
      if (!info || *info) fail("stream info", "stream(never-written) is not empty");
      auto events = tx.read_stream(never_written, 1, direction::forward, SIZE_MAX);
      if (events || events.err().code() != errc::not_found)
        fail("stream", "read_stream(never-written) is not not_found");
      auto snap = tx.snapshot(never_written);
      if (!snap || *snap) fail("snapshot", "snapshot(never-written) is not empty");
      for (std::uint64_t id : {std::uint64_t{0}, std::uint64_t{m.names.size() + 1}}) {
        auto n = tx.stream_name(id);
        if (n || n.err().code() != errc::not_found)
          fail("stream info", "stream_name(" + std::to_string(id) + ") is not not_found");
      }
    }
    std::vector<std::pair<std::string, varve::stream_info>> listed;
    auto n = tx.scan_streams([&](std::string_view name, const varve::stream_info& i) {
      listed.emplace_back(std::string(name), i);
      return true;
    });
    if (!n) fail("streams", "scan_streams: " + n.err().to_string());
    std::size_t i = 0;
    for (const auto& [name, s] : m.streams) {
      if (i >= listed.size() || listed[i].first != name || listed[i].second.id != s.id ||
          listed[i].second.version != s.version() ||
          listed[i].second.last_position != s.positions.back() ||
          (listed[i].second.state == varve::stream_state::shredded) != s.shredded)
        fail("streams", "scan_streams entry " + std::to_string(i) + ": " +
                            (i < listed.size() ? show_bytes(listed[i].first) : "(none)") +
                            ", model: " + show_bytes(name));
      ++i;
    }
    if (listed.size() != m.streams.size())
      fail("streams", "scan_streams listed " + std::to_string(listed.size()) + ", model " +
                          std::to_string(m.streams.size()));
  }

  void check_side_tables(const varve::read_transaction& tx) {
    std::vector<std::pair<std::string, vm::cursor>> listed;
    auto n = tx.scan_cursors([&](std::string_view name, const varve::cursor_view& c) {
      listed.emplace_back(std::string(name), vm::cursor{c.position, std::string(c.state)});
      return true;
    });
    if (!n) fail("cursors", "scan_cursors: " + n.err().to_string());
    if (listed.size() != m.cursors.size())
      fail("cursors", "scan_cursors listed " + std::to_string(listed.size()) + ", model " +
                          std::to_string(m.cursors.size()));
    std::size_t i = 0;
    for (const auto& [name, c] : m.cursors) {
      const auto& [got_name, got] = listed[i++];
      if (got_name != name || got.position != c.position || got.state != c.state)
        fail("cursors", "cursor " + show_bytes(got_name) + " at " + std::to_string(got.position) +
                            " " + show_bytes(got.state) + ", model: " + show_bytes(name) + " at " +
                            std::to_string(c.position) + " " + show_bytes(c.state));
      auto one = tx.cursor_state(name);
      if (!one || !*one || (*one)->position != c.position || (*one)->state != c.state)
        fail("cursors", "cursor_state(" + show_bytes(name) + ") differs");
    }
    auto none = tx.cursor_state("never-consumed");
    if (!none || *none) fail("cursors", "cursor_state(never-consumed) is not empty");

    for (const std::string& view : view_names()) {
      const std::string from = r.chance(50) ? std::string() : r.pick(view_keys());
      for (const std::string& start : {std::string(), from}) {
        std::vector<std::pair<std::string, std::string>> rows;
        auto scanned = tx.scan_view(view, start, [&](std::string_view k, std::string_view v) {
          rows.emplace_back(std::string(k), std::string(v));
          return true;
        });
        if (!scanned)
          fail("views", "scan_view " + show_bytes(view) + ": " + scanned.err().to_string());
        const auto want = m.scan_view(view, start);
        if (rows != want) {
          std::string got_keys, want_keys;
          for (const auto& kv : rows)
            got_keys += show_bytes(kv.first) + "=" + show_bytes(kv.second) + " ";
          for (const auto& kv : want)
            want_keys += show_bytes(kv.first) + "=" + show_bytes(kv.second) + " ";
          fail("views", "scan_view(" + show_bytes(view) + ", from " + show_bytes(start) +
                            "): " + got_keys + "; model: " + want_keys);
        }
      }
      for (const std::string& key : view_keys()) {
        auto got = tx.view_get(view, key);
        if (!got) fail("views", "view_get: " + got.err().to_string());
        const auto want = m.view_get(view, key);
        if (got->has_value() != want.has_value() || (want && **got != *want))
          fail("views", "view_get(" + show_bytes(view) + ", " + show_bytes(key) +
                            "): " + (got->has_value() ? show_bytes(**got) : "(none)") +
                            ", model: " + (want ? show_bytes(*want) : "(none)"));
      }
    }
  }

  /// The owned-copy reads, each in its own transaction.
  void check_owned() {
    compare_events("owned log", "event_store::read_log()", store->read_log(),
                   m.read_log(1, direction::forward, SIZE_MAX));
    const direction dir = r.chance(50) ? direction::forward : direction::backward;
    const auto from = some_from(m.head());
    const auto limit = some_limit(m.head());
    compare_events("owned log", read_call("event_store::read_log", from, dir, limit),
                   store->read_log(from, dir, limit), m.read_log(from, dir, limit));
    if (m.streams.empty()) return;
    auto it = m.streams.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(r.below(m.streams.size())));
    const auto& [name, s] = *it;
    compare_events("owned stream", "event_store::read_stream(" + show_bytes(name) + ")",
                   store->read_stream(name), m.read_stream(s, 1, direction::forward, SIZE_MAX));
    const direction sdir = r.chance(50) ? direction::forward : direction::backward;
    const auto sfrom = some_from(s.version());
    const auto slimit = some_limit(s.version());
    compare_events("owned stream",
                   read_call("event_store::read_stream " + show_bytes(name), sfrom, sdir, slimit),
                   store->read_stream(name, sfrom, sdir, slimit),
                   m.read_stream(s, sfrom, sdir, slimit));
  }

  /// stats(), failed() and verify().
  void check_store(bool copy) {
    expect_equal<bool>("failed", "failed()", store->failed(), copy ? false : m.failed);
    auto st = store->stats();
    if (!st) fail("stats", "stats(): " + st.err().to_string());
    expect_equal<std::uint64_t>("stats", "stats().head", st->head, m.head());
    expect_equal<std::uint64_t>("stats", "stats().streams", st->streams, m.names.size());
    expect_equal<std::uint64_t>("stats", "stats().events_committed", st->events_committed,
                                m.head());
    expect_equal<std::uint64_t>("stats", "stats().events_written", st->events_written,
                                copy ? 0 : m.events_through_handle);
    expect_equal<bool>("stats", "stats().encrypted", st->encrypted, m.encrypted());
    if (!copy && map_size != 0 && st->map_size > map_size) ++count.map_growths;
    if (!copy) map_size = st->map_size;
    auto report = store->verify();
    if (!report) fail("verify", "verify(): " + report.err().to_string());
    if (report->faults_total != 0) {
      std::string faults;
      for (std::size_t i = 0; i < report->faults.size() && i < 5; ++i)
        faults += report->faults[i] + "; ";
      fail("verify", std::to_string(report->faults_total) + " faults: " + faults);
    }
    std::uint64_t shredded = 0, chunks = 0;
    for (const auto& [name, s] : m.streams) {
      if (s.shredded) shredded += s.version();
      chunks += s.version() / vm::chunk_size;
    }
    expect_equal<std::uint64_t>("verify", "verify().events", report->events, m.head());
    expect_equal<std::uint64_t>("verify", "verify().streams", report->streams, m.names.size());
    expect_equal<std::uint64_t>("verify", "verify().shredded", report->shredded, shredded);
    expect_equal<std::uint64_t>("verify", "verify().chunks", report->chunks, chunks);
  }

  /// Runs a prepared store operation here and compares its answer.
  void run_here(const prepared& p) {
    const timestamp_us lo = now_us();
    const outcome got = p.on_store(*store);
    const vm::write_context ctx{{lo, now_us()}, true};
    const std::string want = p.on_model(m, ctx);
    ++count.operations;
    count.tally(got.canonical);
    if (got.canonical != want)
      fail("outcome", "store: " + got.canonical +
                          (got.detail.empty() ? "" : " (" + one_line(got.detail) + ")") +
                          "; model: " + want);
  }
};

// ------------------------------------------------------------ control operations

/// Close the store and open it again (with the current key). Encrypted: a
/// wrong key and the key retired by the last rotation are refused first;
/// plain: a master key is refused.
struct reopen_op {
  bool wrong_key = false;
  std::uint64_t seed = 0;

  static reopen_op generate(rng& r) { return {r.chance(50), r.next()}; }
  std::string describe() const {
    return wrong_key ? "reopen (trying a wrong key first)" : "reopen";
  }
  void run(world& w) const {
    w.close();
    if (wrong_key) {
      const varve::errc want = w.m.encrypted() ? errc::auth_failed : errc::invalid_argument;
      auto refused = varve::event_store::open(w.options_with(key_of(seed)));
      if (refused || refused.err().code() != want)
        fail("open", "open with a wrong key: " + varve_test::describe(refused) +
                         ", model: " + std::string(varve::to_string(want)));
    }
    if (w.m.retired_key && w.m.retired_key != w.m.key) {
      auto refused = varve::event_store::open(w.options_with(w.m.retired_key));
      if (refused || refused.err().code() != errc::auth_failed)
        fail("open", "open with the retired key: " + varve_test::describe(refused) +
                         ", model: auth_failed");
    }
    w.open();
    ++w.count.operations;
  }
};

/// event_store::compact: refused (busy) while the store is open; closed,
/// it rewrites the file, and the store holds what it held.
struct compact_op {
  static compact_op generate(rng&) { return {}; }
  std::string describe() const { return "compact"; }
  void run(world& w) const {
    auto busy = varve::event_store::compact(w.directory());
    if (busy || busy.err().code() != errc::busy)
      fail("compact", "compact while open: " + varve_test::describe(busy) + ", model: busy");
    w.close();
    auto done = varve::event_store::compact(w.directory());
    if (!done) fail("compact", "compact: " + done.err().to_string());
    w.open();
    w.count.operations += 2;
  }
};

/// event_store::backup: a copy, opened with the same key, holds what the
/// store holds (every check runs on it); a destination that is not empty is
/// refused.
struct backup_op {
  bool into_non_empty = false;

  static backup_op generate(rng& r) { return {r.chance(25)}; }
  std::string describe() const {
    return into_non_empty ? "backup (refused first into a directory that is not empty)" : "backup";
  }
  void run(world& w) const {
    if (into_non_empty) {
      auto refused = w.store->backup(w.directory());
      if (refused || refused.err().code() != errc::invalid_argument)
        fail("backup", "backup into the store's own directory: " + varve_test::describe(refused) +
                           ", model: invalid_argument");
    }
    const auto destination = w.dir / ("backup-" + std::to_string(w.backups++));
    auto done = w.store->backup(destination);
    if (!done) fail("backup", "backup: " + done.err().to_string());
    varve::options o = w.options_with(w.m.key);
    o.directory = destination;
    auto opened = varve::event_store::open(o);
    if (!opened) fail("backup", "opening the backup: " + opened.err().to_string());
    std::unique_ptr<varve::event_store> copy = std::move(*opened);
    {
      struct swapped {
        std::unique_ptr<varve::event_store>& a;
        std::unique_ptr<varve::event_store>& b;
        swapped(std::unique_ptr<varve::event_store>& x, std::unique_ptr<varve::event_store>& y)
            : a(x), b(y) {
          std::swap(a, b);
        }
        ~swapped() { std::swap(a, b); }
        swapped(const swapped&) = delete;
        swapped& operator=(const swapped&) = delete;
      } guard(w.store, copy);
      w.check(true);
    }
    copy.reset();
    std::error_code ec;
    std::filesystem::remove_all(destination, ec);
    ++w.count.operations;
  }
};

/// Writes all of `s` to `fd`.
bool write_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

/// Another process opens the store while this one keeps its handle open,
/// makes 1-5 writes and exits; it reports each answer on a pipe, and this
/// process holds them to the model's predictions.
struct child_op {
  std::vector<store_op> ops;
  /// A write of this process right after, before anything reads.
  std::optional<store_op> then_here;

  static child_op generate(rng& r, bool encrypted, std::uint64_t& fresh) {
    child_op c;
    for (std::size_t i = r.between(1, 5); i > 0; --i)
      c.ops.push_back(generate_store_op(r, encrypted, false, fresh));
    if (r.chance(50)) c.then_here = generate_store_op(r, encrypted, false, fresh);
    return c;
  }
  std::string describe() const {
    std::string out = "in another process: [";
    for (std::size_t i = 0; i < ops.size(); ++i)
      out += (i ? "; " : "") + ::describe(ops[i]);
    out += "]";
    if (then_here) out += ", then here: " + ::describe(*then_here);
    return out;
  }
  void run(world& w) const {
    const global_position head_before = w.m.head();
    const vm::write_context ctx{{now_us(), std::numeric_limits<timestamp_us>::max()}, false};
    std::vector<prepared> calls;
    std::vector<std::string> want;
    for (const store_op& o : ops) {
      calls.push_back(prepare(o, w.m));
      want.push_back(calls.back().on_model(w.m, ctx));
    }
    const varve::options opts = w.options_with(w.m.key);
    int fds[2];
    if (::pipe(fds) != 0) fail("child", "pipe failed");
    std::cout.flush();
    std::cerr.flush();
    const pid_t pid = ::fork();
    if (pid < 0) fail("child", "fork failed");
    if (pid == 0) {
      ::close(fds[0]);
      int code = 0;
      {
        auto opened = varve::event_store::open(opts);
        if (!opened) {
          write_all(fds[1], "open failed: " + one_line(opened.err().to_string()) + "\n");
          ::_exit(3);
        }
        for (const prepared& p : calls) {
          const outcome o = p.on_store(**opened);
          if (!write_all(fds[1], o.canonical + "\t" + one_line(o.detail) + "\n")) code = 4;
        }
      }
      ::close(fds[1]);
      ::_exit(code);
    }
    ::close(fds[1]);
    std::string text;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const timestamp_us hi = now_us();
    for (global_position p = head_before + 1; p <= w.m.head(); ++p)
      if (w.m.at(p).written.hi == std::numeric_limits<timestamp_us>::max())
        w.m.at(p).written.hi = hi;
    ++w.count.children;
    w.count.operations += ops.size();
    std::istringstream lines(text);
    std::string line;
    for (std::size_t i = 0; i < want.size(); ++i) {
      if (!std::getline(lines, line))
        fail("child", "the other process answered " + std::to_string(i) + " of " +
                          std::to_string(want.size()) + " operations (exit status " +
                          std::to_string(status) + "): " + one_line(text));
      const std::string canonical = line.substr(0, line.find('\t'));
      w.count.tally(canonical);
      if (canonical != want[i])
        fail("outcome", "in the other process, operation " + std::to_string(i + 1) + ": " +
                            one_line(line) + "; model: " + want[i]);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fail("child", "the other process exited with status " + std::to_string(status));
    if (then_here) w.run_here(prepare(*then_here, w.m));
  }
};

/// Fails the k-th LMDB call of one write (or the k-th call of one kind)
/// with EIO, ENOSPC or LMDB's map-full, once. LMDB answers map-full only on
/// calls that allocate pages: from the k-th call on, the first such call
/// fails then.
class kth_call_fails final : public varve::fault_injector {
 public:
  kth_call_fails(std::uint32_t k, int code, std::optional<varve::lmdb_call> only, int resize_code)
      : k_(k), code_(code), only_(only), resize_code_(resize_code) {}
  int before(varve::lmdb_call call) override { return before(call, {}); }
  int before(varve::lmdb_call call, const varve::lmdb_call_site& site) override {
    if (fired_) {
      // After map-full: the map's growth fails too, when asked to.
      if (call != varve::lmdb_call::set_mapsize || resize_fired_ || resize_code_ == 0) return 0;
      resize_fired_ = true;
      return resize_code_;
    }
    if ((only_ && call != *only_) || ++calls_ < k_) return 0;
    if (code_ == varve::lmdb_map_full &&
        (call == varve::lmdb_call::txn_begin || call == varve::lmdb_call::set_mapsize))
      return 0;
    fired_ = true;
    call_ = call;
    site_ =
        std::string(site.file.substr(site.file.rfind('/') + 1)) + ":" + std::to_string(site.line);
    return code_;
  }
  /// Where the fault hit: "put (append.cpp:57)".
  std::string where() const { return std::string(varve::to_string(call_)) + " (" + site_ + ")"; }
  bool fired() const { return fired_; }
  bool resize_fired() const { return resize_fired_; }
  varve::lmdb_call call() const { return call_; }

 private:
  std::uint32_t k_;
  int code_;
  std::optional<varve::lmdb_call> only_;
  int resize_code_;
  std::uint32_t calls_ = 0;
  bool fired_ = false;
  bool resize_fired_ = false;
  varve::lmdb_call call_ = varve::lmdb_call::get;
  std::string site_;
};

/// A store operation whose k-th LMDB call fails. The store's promises: a
/// write whose transaction fails leaves nothing of itself (io_error, or
/// storage_full for ENOSPC); map-full makes the writer grow the map and run
/// the write again (it succeeds); an I/O error at commit also stops every
/// later write of the handle (failed_state) until it is reopened, which
/// `reopen_after` then does.
struct fault_op {
  int code = EIO;
  std::uint32_t k = 1;
  /// Count only calls of this kind (the commit, the map's resize).
  std::optional<varve::lmdb_call> only;
  /// With map-full: the growth that follows fails with this code (0: it works).
  int resize_code = 0;
  store_op inner;
  /// A write right after, before anything reads.
  std::optional<store_op> then_here;
  bool reopen_after = true;

  static fault_op generate(rng& r, bool encrypted, std::uint64_t& fresh) {
    fault_op f;
    const auto c = r.below(100);
    f.code = c < 40 ? EIO : c < 70 ? ENOSPC : varve::lmdb_map_full;
    const auto where = r.below(100);
    if (where < 25) {
      f.only = varve::lmdb_call::txn_commit;
      f.k = 1;
    } else if (where < 30) {
      f.only = varve::lmdb_call::set_mapsize;
      f.k = 1;
      if (f.code == varve::lmdb_map_full) f.code = EIO;
    } else {
      f.k = static_cast<std::uint32_t>(1 + (r.chance(50) ? r.below(8) : r.below(60)));
    }
    if (f.code == varve::lmdb_map_full && r.chance(25)) f.resize_code = r.chance(50) ? EIO : ENOSPC;
    f.inner = generate_store_op(r, encrypted, true, fresh);
    if (r.chance(40)) f.then_here = generate_store_op(r, encrypted, true, fresh);
    f.reopen_after = r.chance(80);
    return f;
  }
  static std::string code_name(int code) {
    return code == EIO ? "EIO" : code == ENOSPC ? "ENOSPC" : "map-full";
  }
  std::string describe() const {
    return "LMDB call " + std::to_string(k) +
           (only ? " of kind " + std::string(varve::to_string(*only)) : std::string()) +
           " fails with " + code_name(code) +
           (resize_code ? ", the map's growth with " + code_name(resize_code) : std::string()) +
           " in: " + ::describe(inner) +
           (then_here ? ", then: " + ::describe(*then_here) : std::string()) +
           (reopen_after ? " (then reopen if failed)" : "");
  }
  void run(world& w) const {
    const prepared p = prepare(inner, w.m);
    auto faults = std::make_shared<kth_call_fails>(k, code, only, resize_code);
    varve::testing_inject_faults(*w.store, faults);
    const timestamp_us lo = now_us();
    const outcome got = p.on_store(*w.store);
    const vm::write_context ctx{{lo, now_us()}, true};
    varve::testing_inject_faults(*w.store, nullptr);
    ++w.count.operations;
    std::string want;
    if (faults->fired()) {
      ++w.count.faults;
      ++w.count.seen["fault " + code_name(code) + " at " +
                     std::string(varve::to_string(faults->call()))];
      if (faults->resize_fired()) ++w.count.seen["fault " + code_name(resize_code) + " growing"];
    }
    w.count.tally(got.canonical);
    if (faults->fired() && code != varve::lmdb_map_full) {
      want = show(varve::error{code == EIO ? errc::io_error : errc::storage_full, {}});
      if (code == EIO && faults->call() == varve::lmdb_call::txn_commit) w.m.failed = true;
    } else if (faults->resize_fired()) {
      want = show(varve::error{resize_code == EIO ? errc::io_error : errc::storage_full, {}});
    } else {
      want = p.on_model(w.m, ctx);
    }
    if (got.canonical != want)
      fail("outcome", "store: " + got.canonical +
                          (got.detail.empty() ? "" : " (" + one_line(got.detail) + ")") +
                          "; model: " + want + " (fault " +
                          (faults->fired() ? "at " + faults->where() : std::string("not reached")) +
                          ")");
    if (then_here) w.run_here(prepare(*then_here, w.m));
    if (reopen_after && w.m.failed) {
      w.check();  // reads go on in the failed state
      w.close();
      w.open();
    }
  }
};

// ----------------------------------------------------------------- all of them

using op =
    std::variant<append_op, multi_append_op, batch_op, save_cursor_op, shred_op, rebuild_indexes_op,
                 rotate_op, reopen_op, compact_op, backup_op, child_op, fault_op>;

std::string describe(const op& o) {
  return std::visit([](const auto& x) { return x.describe(); }, o);
}

/// One step's operation, with the weights of a run.
op generate_op(rng& r, bool encrypted, std::uint64_t& fresh) {
  const auto roll = r.below(1000);
  if (roll < 30) return reopen_op::generate(r);
  if (roll < 42) return compact_op::generate(r);
  if (roll < 80) return child_op::generate(r, encrypted, fresh);
  if (roll < 150) return fault_op::generate(r, encrypted, fresh);
  if (roll < 165) return backup_op::generate(r);
  return std::visit([](auto&& s) -> op { return std::move(s); },
                    generate_store_op(r, encrypted, true, fresh));
}

std::vector<op> generate_ops(std::uint64_t seed, std::size_t steps, bool encrypted) {
  rng r(seed);
  std::uint64_t fresh = 0;
  std::vector<op> ops;
  ops.reserve(steps);
  for (std::size_t i = 0; i < steps; ++i)
    ops.push_back(generate_op(r, encrypted, fresh));
  return ops;
}

/// Store operations are prepared and run here; the others (reopen,
/// compact, backup, another process, faults) run themselves.
void apply(world& w, const op& o) {
  std::visit(
      [&](const auto& x) {
        if constexpr (requires { x.run(w); })
          x.run(w);
        else
          w.run_here(x.prepare(w.m));
      },
      o);
}

/// Smaller variants of one operation (parts of it left out), for shrinking.
std::vector<op> simpler(const op& o) {
  std::vector<op> out;
  auto without = [](const auto& v, std::size_t i) {
    auto copy = v;
    copy.erase(copy.begin() + static_cast<std::ptrdiff_t>(i));
    return copy;
  };
  if (const auto* b = std::get_if<batch_op>(&o)) {
    for (std::size_t i = 0; i < b->reqs.size(); ++i)
      out.push_back(batch_op{without(b->reqs, i)});
    for (std::size_t i = 0; i < b->reqs.size(); ++i) {
      const request_spec& q = b->reqs[i];
      auto with = [&](request_spec smaller) {
        batch_op c = *b;
        c.reqs[i] = std::move(smaller);
        out.push_back(std::move(c));
      };
      for (std::size_t j = 0; j < q.appends.size(); ++j) {
        request_spec s = q;
        s.appends = without(q.appends, j);
        with(s);
      }
      if (!q.cursors.empty()) {
        request_spec s = q;
        s.cursors.clear();
        with(s);
      }
      if (!q.snapshots.empty()) {
        request_spec s = q;
        s.snapshots.clear();
        with(s);
      }
      for (std::size_t j = 0; j < q.views.size(); ++j) {
        request_spec s = q;
        s.views = without(q.views, j);
        with(s);
      }
    }
  } else if (const auto* m = std::get_if<multi_append_op>(&o)) {
    for (std::size_t i = 0; i < m->as.size(); ++i)
      out.push_back(multi_append_op{without(m->as, i)});
  } else if (const auto* c = std::get_if<child_op>(&o)) {
    if (c->then_here) out.push_back(child_op{c->ops, std::nullopt});
    for (std::size_t i = 0; i < c->ops.size(); ++i) {
      if (c->ops.size() > 1) out.push_back(child_op{without(c->ops, i), c->then_here});
      out.push_back(std::visit([](auto&& s) -> op { return s; }, c->ops[i]));
    }
  } else if (const auto* f = std::get_if<fault_op>(&o)) {
    if (f->then_here) {
      fault_op g = *f;
      g.then_here.reset();
      out.push_back(std::move(g));
    }
    out.push_back(std::visit([](auto&& s) -> op { return s; }, f->inner));
  }
  // Fewer events in an append.
  auto fewer = [&](const append_spec& a, auto rebuild) {
    if (a.events.size() > 1 && !a.again) {
      append_spec s = a;
      s.events.resize(a.events.size() == 2 ? 1 : a.events.size() / 2);
      out.push_back(rebuild(std::move(s)));
    }
  };
  if (const auto* a = std::get_if<append_op>(&o))
    fewer(a->a, [](append_spec s) -> op { return append_op{std::move(s)}; });
  return out;
}

// ------------------------------------------------------------------- running

struct failure {
  std::size_t step = 0;
  std::string what;
  std::string detail;
};

using clock_type = std::chrono::steady_clock;

/// Runs `ops` on a fresh store, checking after every step; past `deadline`
/// it stops after the step it is at (and says where in `cut_at`).
std::optional<failure> run_sequence(const run_config& cfg, const std::vector<op>& ops,
                                    counters& count,
                                    clock_type::time_point deadline = clock_type::time_point::max(),
                                    std::size_t* cut_at = nullptr) {
  std::size_t step = 0;
  try {
    world w(cfg, count);
    w.check();
    for (; step < ops.size(); ++step) {
      if (step > 0 && clock_type::now() > deadline) {
        if (cut_at) *cut_at = step;
        break;
      }
      BOOST_TEST_CHECKPOINT("seed " << cfg.seed << ", step " << step + 1 << ": "
                                    << describe(ops[step]).substr(0, 200));
      apply(w, ops[step]);
      w.check();
      ++count.steps;
    }
  } catch (const mismatch& m) {
    return failure{step, m.what, m.detail};
  }
  return std::nullopt;
}

struct settings {
  double seconds = 45;
  std::optional<std::uint64_t> seeds;
  std::size_t steps = 200;
  std::optional<std::uint64_t> only_seed;
  std::uint64_t first_seed = 0;
  double shrink_seconds = 120;

  static settings from_environment() {
    auto number = [](const char* name) -> std::optional<std::string> {
      const char* v = std::getenv(name);
      if (!v || !*v) return std::nullopt;
      return std::string(v);
    };
    settings s;
    if (auto v = number("VARVE_MODEL_SECONDS")) s.seconds = std::stod(*v);
    if (auto v = number("VARVE_MODEL_SEEDS")) {
      s.seeds = std::stoull(*v);
      if (!number("VARVE_MODEL_SECONDS")) s.seconds = std::numeric_limits<double>::infinity();
    }
    if (auto v = number("VARVE_MODEL_STEPS")) s.steps = std::stoull(*v);
    if (auto v = number("VARVE_MODEL_SEED")) s.only_seed = std::stoull(*v);
    if (auto v = number("VARVE_MODEL_SHRINK_SECONDS")) s.shrink_seconds = std::stod(*v);
    if (auto v = number("VARVE_MODEL_FIRST_SEED")) {
      s.first_seed = std::stoull(*v);
    } else {
      s.first_seed = static_cast<std::uint64_t>(now_us()) % 1'000'000'000;
    }
    return s;
  }
};

/// The shortest sequence found that still fails the same check.
std::vector<op> shrink(const run_config& cfg, std::vector<op> ops, const failure& first,
                       clock_type::time_point deadline, std::size_t& runs) {
  ops.resize(std::min(ops.size(), first.step + 1));
  auto still_fails = [&](const std::vector<op>& candidate) {
    if (clock_type::now() > deadline) return false;
    ++runs;
    counters scratch;
    auto f = run_sequence(cfg, candidate, scratch);
    return f && f->what == first.what;
  };
  for (std::size_t chunk = std::max<std::size_t>(ops.size() / 2, 1);; chunk /= 2) {
    for (std::size_t at = 0; at < ops.size() && clock_type::now() < deadline;) {
      std::vector<op> candidate = ops;
      const auto end = std::min(ops.size(), at + chunk);
      candidate.erase(candidate.begin() + static_cast<std::ptrdiff_t>(at),
                      candidate.begin() + static_cast<std::ptrdiff_t>(end));
      if (still_fails(candidate))
        ops = std::move(candidate);
      else
        at += chunk;
    }
    if (chunk == 1) break;
  }
  for (bool smaller = true; smaller && clock_type::now() < deadline;) {
    smaller = false;
    for (std::size_t i = 0; i < ops.size() && !smaller; ++i) {
      for (op& variant : simpler(ops[i])) {
        std::vector<op> candidate = ops;
        candidate[i] = std::move(variant);
        if (still_fails(candidate)) {
          ops = std::move(candidate);
          smaller = true;
          break;
        }
      }
    }
  }
  return ops;
}

std::string show_sequence(const std::vector<op>& ops) {
  std::string out;
  for (std::size_t i = 0; i < ops.size(); ++i)
    out += "  " + std::to_string(i + 1) + ". " + describe(ops[i]) + "\n";
  return out;
}

void run_model(bool encrypted) {
  const settings s = settings::from_environment();
  const char* kind = encrypted ? "encrypted" : "plain";
  counters count;
  const auto started = clock_type::now();
  const auto budget = std::chrono::duration<double>(s.seconds);
  const std::uint64_t first =
      s.only_seed ? *s.only_seed : s.first_seed + (encrypted ? 1u << 30 : 0);
  std::optional<std::uint64_t> failed_seed;
  std::size_t cut_at = 0;  // the step where the time budget stopped the last seed
  for (std::uint64_t seed = first;; ++seed) {
    if (s.only_seed && seed != *s.only_seed) break;
    if (s.seeds && count.seeds >= *s.seeds) break;
    if (!s.only_seed && count.seeds > 0 && clock_type::now() - started > budget) break;
    const run_config cfg = run_config::of(seed, encrypted);
    const std::vector<op> ops = generate_ops(seed, s.steps, encrypted);
    // A seed that runs past the budget stops there (a sanitizer build is slow).
    const auto deadline = s.only_seed || budget.count() == std::numeric_limits<double>::infinity()
                              ? clock_type::time_point::max()
                              : started + std::chrono::duration_cast<clock_type::duration>(budget);
    auto f = run_sequence(cfg, ops, count, deadline, &cut_at);
    ++count.seeds;
    if (!f) continue;
    failed_seed = seed;
    std::ostringstream msg;
    msg << "model: seed " << seed << " (" << cfg.describe() << ") failed at step " << f->step + 1
        << " of " << ops.size() << ": " << f->what << ": " << f->detail << "\n"
        << "  step " << f->step + 1 << ": "
        << (f->step < ops.size() ? describe(ops[f->step]) : "(the fresh store)") << "\n";
    std::size_t runs = 0;
    const auto shrink_deadline =
        clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                std::chrono::duration<double>(s.shrink_seconds));
    const std::vector<op> shortest = shrink(cfg, ops, *f, shrink_deadline, runs);
    counters scratch;
    const auto again = run_sequence(cfg, shortest, scratch);
    msg << "shortest failing sequence found (" << shortest.size() << " of " << f->step + 1
        << " steps, " << runs << " replays";
    if (again)
      msg << "; it fails at step " << again->step + 1 << ": " << again->what << ": "
          << again->detail;
    msg << "):\n"
        << show_sequence(shortest) << "reproduce: VARVE_MODEL_SEED=" << seed
        << " VARVE_MODEL_STEPS=" << s.steps << " "
        << (encrypted ? "(encrypted case)" : "(plain case)");
    BOOST_ERROR(msg.str());
    break;
  }
  std::ostringstream summary;
  summary << "model: " << count.seeds << " seeds x " << s.steps << " steps, " << count.operations
          << " operations, " << kind << ", faults injected " << count.faults << ", child processes "
          << count.children << " (seeds from " << first
          << (failed_seed ? ", seed " + std::to_string(*failed_seed) + " failed" : std::string())
          << (cut_at ? ", the last one stopped by the time budget after " + std::to_string(cut_at) +
                           " steps"
                     : std::string())
          << ", "
          << std::chrono::duration_cast<std::chrono::seconds>(clock_type::now() - started).count()
          << " s)";
  std::cout << summary.str() << std::endl;
  BOOST_TEST_MESSAGE(summary.str());
  std::ostringstream reach;
  reach << "model: " << kind << " answers:";
  for (const auto& [what, n] : count.seen)
    reach << " " << what << " " << n << ",";
  reach << " map grew after " << count.map_growths << " steps, longest stream "
        << count.longest_stream << " events";
  std::cout << reach.str() << std::endl;
  BOOST_TEST_MESSAGE(reach.str());
}

}  // namespace

BOOST_AUTO_TEST_CASE(random_operations_on_a_plain_store_match_the_model) {
  run_model(false);
}

BOOST_AUTO_TEST_CASE(random_operations_on_an_encrypted_store_match_the_model) {
  run_model(true);
}
