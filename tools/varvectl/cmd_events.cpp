// Events: append, read, read-all, read-query, tail.
#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "exit_code.hpp"
#include "log_reader.hpp"
#include "output.hpp"
#include "signals.hpp"

namespace varvectl {

namespace {

struct append_args {
  std::string stream;
  std::optional<std::string> type;
  std::optional<std::string> data;
  std::optional<std::string> metadata;
  std::string expected = "any";
  std::optional<std::string> id;
  std::optional<std::string> events;
  std::vector<std::string> tags;
  bool raw = false;
};

/// The bytes as compact JSON (keys in the order given) when they are a JSON
/// text nested at most max_json_depth deep; else (empty, not JSON, nested
/// deeper) the bytes as they are.
std::string compacted(std::string bytes) {
  if (bytes.empty()) return bytes;
  auto parsed = parse_json(bytes);
  if (!parsed.value) return bytes;
  return parsed.value->dump();
}

/// The bytes an argument names: "@FILE" (the file's bytes), "-" (standard
/// input), or the text itself, which must then be JSON. JSON is stored
/// compact unless `raw`; other bytes of a file or stdin as they are.
varve::result<std::string> argument_bytes(const std::string& what, const std::string& arg,
                                          bool raw) {
  if (arg == "-") {
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return varve::error{varve::errc::io_error, "reading standard input failed"};
    return raw ? all : compacted(std::move(all));
  }
  if (!arg.empty() && arg[0] == '@') {
    const std::string path = arg.substr(1);
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
      const int e = errno;
      const std::string why = "cannot read " + what + " file " + path + ": " + std::strerror(e);
      if (e == ENOENT || e == ENOTDIR) return varve::error{varve::errc::not_found, why};
      return usage_error(why);
    }
    std::string all;
    char buf[65536];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
      all.append(buf, n);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) return usage_error("cannot read " + what + " file " + path);
    return raw ? all : compacted(std::move(all));
  }
  auto parsed = parse_json(arg);
  if (parsed.too_deep)
    return usage_error(what + " nests arrays and objects deeper than " +
                       std::to_string(max_json_depth) +
                       " levels (give @FILE or - to store such bytes as they are)");
  if (!parsed.value)
    return usage_error(what + " is not JSON (give @FILE or - for other bytes): " + arg);
  if (raw) return arg;
  return parsed.value->dump();  // compact, keys in the order given
}

varve::result<varve::expected_version> parse_expected(const std::string& text) {
  if (text == "any") return varve::expected_version::any();
  if (text == "no-stream" || text == "no_stream") return varve::expected_version::no_stream();
  if (text == "exists" || text == "stream-exists" || text == "stream_exists")
    return varve::expected_version::stream_exists();
  auto n = parse_whole_number(text);
  if (!n)
    return usage_error(
        "--expected-version: expected any, no-stream, exists or a whole number from 0 to " +
        std::to_string(UINT64_MAX) + ", not '" + text + "'");
  return varve::expected_version::exact(*n);
}

/// The events of a JSON-lines file (or "-": standard input), one object per
/// non-blank line (new_event_from_line), each checked against the store's
/// limits. Errors: invalid_argument naming the line, or the file holding no
/// event; not_found (no such file); io_error.
varve::result<std::vector<varve::new_event>> read_events(const std::string& path,
                                                         std::uint64_t max_event_bytes) {
  const bool from_stdin = path == "-";
  const std::string name = from_stdin ? "standard input" : path;
  std::FILE* f = from_stdin ? stdin : std::fopen(path.c_str(), "rb");
  if (!f) {
    const int e = errno;
    const std::string why = "cannot read --events file " + path + ": " + std::strerror(e);
    if (e == ENOENT || e == ENOTDIR) return varve::error{varve::errc::not_found, why};
    return usage_error(why);
  }
  struct input {
    std::FILE* f;
    bool close;
    char* line = nullptr;
    std::size_t capacity = 0;
    ~input() {
      std::free(line);
      if (close) std::fclose(f);
    }
  } in{f, !from_stdin};
  std::vector<varve::new_event> events;
  std::uint64_t line_no = 0;
  ssize_t len = 0;
  while ((len = ::getline(&in.line, &in.capacity, f)) >= 0) {
    ++line_no;
    std::string_view line(in.line, static_cast<std::size_t>(len));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
      line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = name + " line " + std::to_string(line_no) + ": ";
    auto e = new_event_from_line(line);
    if (!e) return usage_error(where + e.err().message());
    if (e->type.empty()) return usage_error(where + "empty type");
    if (e->type.size() > varve::max_type_bytes)
      return usage_error(where + "the type is " + std::to_string(e->type.size()) +
                         " bytes, over the limit of " + std::to_string(varve::max_type_bytes));
    const std::uint64_t size = e->type.size() + e->metadata.size() + e->payload.size();
    if (size > max_event_bytes)
      return usage_error(where + "the event is " + std::to_string(size) +
                         " bytes (type, metadata and payload), over the store's "
                         "max_event_bytes (" +
                         std::to_string(max_event_bytes) + ")");
    events.push_back(std::move(*e));
  }
  if (std::ferror(f)) return varve::error{varve::errc::io_error, "reading " + name + " failed"};
  if (events.empty()) return usage_error(name + " holds no events (one JSON object per line)");
  return events;
}

int run_append(const global_options& g, const append_args& a) {
  if (a.events) {
    if (a.type || a.data || a.metadata || a.id || a.raw || !a.tags.empty())
      return report(usage_error("--events takes each event's type, data, metadata, id and tags "
                                "from its line: give no TYPE, --data, --metadata, --id, --tag "
                                "or --raw"),
                    g.json);
  } else if (!a.type) {
    return report(usage_error("append needs a TYPE (or --events FILE)"), g.json);
  }
  if (a.data && a.metadata && *a.data == "-" && *a.metadata == "-")
    return report(usage_error("only one of --data and --metadata can read standard input"), g.json);
  std::vector<varve::new_event> events;
  if (!a.events) {
    varve::new_event e;
    e.type = *a.type;
    if (a.data) {
      auto bytes = argument_bytes("--data", *a.data, a.raw);
      if (!bytes) return report(bytes.err(), g.json);
      e.payload = std::move(*bytes);
    }
    if (a.metadata) {
      auto bytes = argument_bytes("--metadata", *a.metadata, a.raw);
      if (!bytes) return report(bytes.err(), g.json);
      e.metadata = std::move(*bytes);
    }
    if (a.id) {
      e.id = varve::event_id::parse(*a.id);
      if (!e.id) return report(usage_error("--id is not a UUID: '" + *a.id + "'"), g.json);
    }
    if (auto ok = check_tags(a.tags); !ok)
      return report(usage_error("--tag: " + ok.err().message()), g.json);
    e.tags = a.tags;
    events.push_back(std::move(e));
  }
  auto expected = parse_expected(a.expected);
  if (!expected) return report(expected.err(), g.json);

  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  if (a.events) {
    auto read = read_events(*a.events, (*store)->opts().max_event_bytes);
    if (!read) return report(read.err(), g.json);
    events = std::move(*read);
  }
  // One request: every event is stored, or none.
  auto r = (*store)->append(a.stream, *expected, events);
  if (!r) return report(r.err(), g.json);
  const std::size_t n = events.size();
  if (g.json) {
    json j{{"position", r->last_position}, {"stream", a.stream}, {"version", r->last_version}};
    if (a.events) {
      j["first_position"] = r->first_position;
      j["first_version"] = r->first_version;
      j["events"] = n;
    }
    print_json(j);
  } else if (!a.events) {
    print_line("appended to '" + a.stream + "' at version " + std::to_string(r->last_version) +
               ", position " + std::to_string(r->last_position) +
               (r->idempotent ? " (already there: nothing written)" : ""));
  } else {
    print_line("appended " + std::to_string(n) + " event" + (n == 1 ? "" : "s") + " to '" +
               a.stream + "' at versions " + std::to_string(r->first_version) + ".." +
               std::to_string(r->last_version) + ", positions " +
               std::to_string(r->first_position) + ".." + std::to_string(r->last_position) +
               (r->idempotent ? " (already there: nothing written)" : ""));
  }
  return exit_ok;
}

struct read_args {
  std::string stream;
  std::optional<std::uint64_t> from;
  bool backward = false;
  std::uint64_t limit = UINT64_MAX;
};

int run_read(const global_options& g, const read_args& a) {
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  const auto dir = a.backward ? varve::direction::backward : varve::direction::forward;
  const std::uint64_t from = a.from ? *a.from : (a.backward ? varve::from_end : 1);
  auto n = read_stream(**store, a.stream, from, dir, a.limit, [&](const varve::recorded_event& e) {
    print_event(e, g.json);
    return true;
  });
  if (!n) return report(n.err(), g.json);
  return exit_ok;
}

int run_read_all(const global_options& g, const read_args& a) {
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  log_range range;
  range.dir = a.backward ? varve::direction::backward : varve::direction::forward;
  range.from = a.from ? *a.from : (a.backward ? varve::from_end : 1);
  range.limit = a.limit;
  auto n = read_log(**store, range, [&](const varve::recorded_event& e) {
    print_event(e, g.json);
    return true;
  });
  if (!n) return report(n.err(), g.json);
  return exit_ok;
}

struct query_args {
  std::vector<std::string> types, tags, categories;
  std::optional<std::string> query_json;
  std::optional<std::uint64_t> from;
  bool backward = false;
  std::uint64_t limit = UINT64_MAX;
};

/// The strings of `field` of a --query item: absent or an array of strings.
varve::result<std::vector<std::string>> query_strings(const json& item, const char* field,
                                                      std::size_t n) {
  std::vector<std::string> out;
  auto it = item.find(field);
  if (it == item.end()) return out;
  if (!it->is_array())
    return usage_error("--query: item " + std::to_string(n) + ": '" + field +
                       "' is not an array of strings");
  for (const auto& v : *it) {
    if (!v.is_string())
      return usage_error("--query: item " + std::to_string(n) + ": '" + field +
                         "' holds a value that is not a string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

/// The query of read-query's arguments: one item of --type, --tag and
/// --category, or the items of --query (a JSON array of objects with
/// "types", "tags" and "categories", each an array of strings).
varve::result<varve::query> query_of(const query_args& a) {
  const bool terms = !a.types.empty() || !a.tags.empty() || !a.categories.empty();
  if (!a.query_json) {
    if (!terms)
      return usage_error(
          "read-query needs --type, --tag, --category or --query (read-all reads every event)");
    return varve::query{{varve::query_item{a.types, a.tags, a.categories}}};
  }
  if (terms) return usage_error("--query takes the place of --type, --tag and --category");
  auto parsed = parse_json(*a.query_json);
  if (!parsed.value) return usage_error("--query is not JSON: " + *a.query_json);
  const json& doc = *parsed.value;
  if (!doc.is_array() || doc.empty())
    return usage_error(
        "--query is not a non-empty array of items ([{\"types\":[...],\"tags\":[...],"
        "\"categories\":[...]}, ...])");
  varve::query q;
  std::size_t n = 0;
  for (const auto& item : doc) {
    ++n;
    if (!item.is_object())
      return usage_error("--query: item " + std::to_string(n) + " is not an object");
    for (const auto& [key, value] : item.items())
      if (key != "types" && key != "tags" && key != "categories")
        return usage_error("--query: item " + std::to_string(n) + ": unknown field '" + key +
                           "' (an item has types, tags and categories)");
    varve::query_item qi;
    for (auto [field, into] : {std::pair{"types", &qi.types}, std::pair{"tags", &qi.tags},
                               std::pair{"categories", &qi.categories}}) {
      auto strings = query_strings(item, field, n);
      if (!strings) return std::move(strings).err();
      *into = std::move(*strings);
    }
    q.items.push_back(std::move(qi));
  }
  return q;
}

int run_read_query(const global_options& g, const query_args& a) {
  auto q = query_of(a);
  if (!q) return report(q.err(), g.json);
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  const auto dir = a.backward ? varve::direction::backward : varve::direction::forward;
  const varve::global_position from = a.from ? *a.from : (a.backward ? varve::from_end : 1);
  auto n = read_query(**store, *q, from, dir, a.limit, [&](const varve::recorded_event& e) {
    print_event(e, g.json);
    return true;
  });
  if (!n) return report(n.err(), g.json);
  return exit_ok;
}

struct tail_args {
  std::optional<std::uint64_t> from;
};

constexpr auto poll_interval = std::chrono::milliseconds(50);

int run_tail(const global_options& g, const tail_args& a) {
  catch_stop_signals();
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  varve::global_position next = 1;
  if (a.from) {
    next = *a.from;  // >= 1 (whole_number(1, ...))
  } else {
    auto txn = (*store)->read();
    if (!txn) return report(txn.err(), g.json);
    next = txn->head() + 1;
  }
  while (!stop_requested()) {
    log_range range;
    range.from = next;
    auto n = read_log(**store, range, [&](const varve::recorded_event& e) {
      print_event(e, g.json);
      next = e.position + 1;
      return !stop_requested();
    });
    if (!n) return report(n.err(), g.json);
    std::cout.flush();
    if (*n == 0) sleep_unless_stopped(poll_interval);
  }
  std::cout.flush();
  return exit_ok;
}

}  // namespace

void add_event_commands(CLI::App& app, context& ctx) {
  auto append = std::make_shared<append_args>();
  auto* ap = app.add_subcommand(
      "append", "append one event, or --events FILE atomically; prints position and version");
  ap->add_option("STREAM", append->stream, "stream name")->required();
  ap->add_option("TYPE", append->type, "event type (not with --events)");
  ap->add_option("--data", append->data,
                 "payload: JSON text, @FILE (any bytes) or - (stdin); JSON is stored compact")
      ->type_name("JSON|@FILE|-");
  ap->add_option("--metadata", append->metadata, "metadata: JSON text, @FILE or -")
      ->type_name("JSON|@FILE|-");
  ap->add_option("--expected-version", append->expected,
                 "any (default), no-stream, exists, or the stream's current version N")
      ->type_name("any|no-stream|exists|N");
  ap->add_option("--id", append->id, "the event's id (default: a new UUIDv7)")->type_name("UUID");
  ap->add_option("--tag", append->tags,
                 "a tag of the event, by convention KEY:VALUE (repeat for more; at most 32, "
                 "each 1 to 255 bytes)")
      ->type_name("TAG")
      ->allow_extra_args(false);
  ap->add_flag("--raw", append->raw, "store --data and --metadata bytes exactly as given");
  ap->add_option("--events", append->events,
                 "JSON lines, one event each (type, data, metadata, id), or - (stdin): all "
                 "appended in one request under one --expected-version, or none")
      ->type_name("FILE|-");
  when_chosen(ap, ctx, [&ctx, append] { return run_append(ctx.global, *append); });

  auto read = std::make_shared<read_args>();
  auto* rd = app.add_subcommand("read", "read a stream");
  rd->add_option("STREAM", read->stream, "stream name")->required();
  rd->add_option("--from", read->from,
                 "the first version to read, 1 or more (default 1; with --backward the newest "
                 "to read, default the last)")
      ->type_name("V")
      ->transform(whole_number(1, "versions start at 1"));
  rd->add_flag("--backward", read->backward, "newest first");
  rd->add_option("--limit", read->limit, "at most N events")
      ->type_name("N")
      ->transform(whole_number(0));
  when_chosen(rd, ctx, [&ctx, read] { return run_read(ctx.global, *read); });

  auto all = std::make_shared<read_args>();
  auto* ra = app.add_subcommand("read-all", "read the global log");
  ra->add_option("--from", all->from,
                 "the first position to read, 1 or more (default 1; with --backward the newest "
                 "to read, default the head)")
      ->type_name("P")
      ->transform(whole_number(1, "positions start at 1"));
  ra->add_flag("--backward", all->backward, "newest first");
  ra->add_option("--limit", all->limit, "at most N events")
      ->type_name("N")
      ->transform(whole_number(0));
  when_chosen(ra, ctx, [&ctx, all] { return run_read_all(ctx.global, *all); });

  auto rq = std::make_shared<query_args>();
  auto* qr = app.add_subcommand(
      "read-query",
      "read the events of a query through the store's indexes: of any --type given, in any "
      "--category given, carrying every --tag given");
  qr->add_option("--type", rq->types, "an event type (repeat: any of them)")
      ->type_name("TYPE")
      ->allow_extra_args(false);
  qr->add_option("--tag", rq->tags, "a tag the events carry (repeat: all of them)")
      ->type_name("TAG")
      ->allow_extra_args(false);
  qr->add_option("--category", rq->categories,
                 "a stream category, the name up to its first '-' (repeat: any of them)")
      ->type_name("C")
      ->allow_extra_args(false);
  qr->add_option("--query", rq->query_json,
                 "several items, any of which an event matches, instead of --type, --tag and "
                 "--category: "
                 "'[{\"types\":[\"T\"],\"tags\":[\"K:V\"]},{\"categories\":[\"C\"]}]'")
      ->type_name("JSON");
  qr->add_option("--from", rq->from,
                 "the first position to look at, 1 or more (default 1; with --backward the "
                 "newest, default the head)")
      ->type_name("P")
      ->transform(whole_number(1, "positions start at 1"));
  qr->add_flag("--backward", rq->backward, "newest first");
  qr->add_option("--limit", rq->limit, "at most N events")
      ->type_name("N")
      ->transform(whole_number(0));
  when_chosen(qr, ctx, [&ctx, rq] { return run_read_query(ctx.global, *rq); });

  auto tail = std::make_shared<tail_args>();
  auto* tl = app.add_subcommand(
      "tail", "print events as they are appended, until interrupted (SIGINT/SIGTERM)");
  tl->add_option("--from", tail->from,
                 "the first position to print, 1 or more (default: the next one appended)")
      ->type_name("P")
      ->transform(whole_number(1, "positions start at 1"));
  when_chosen(tl, ctx, [&ctx, tail] { return run_tail(ctx.global, *tail); });
}

}  // namespace varvectl
