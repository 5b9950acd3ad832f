// Events: append, read, read-all, tail.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <optional>

#include "commands.hpp"
#include "exit_code.hpp"
#include "log_reader.hpp"
#include "output.hpp"
#include "signals.hpp"

namespace varvectl {

namespace {

struct append_args {
  std::string stream;
  std::string type;
  std::optional<std::string> data;
  std::optional<std::string> metadata;
  std::string expected = "any";
  std::optional<std::string> id;
};

/// The bytes an argument names: "@FILE" (the file's bytes), "-" (standard
/// input), or the text itself, which must then be JSON and is stored compact.
varve::result<std::string> argument_bytes(const std::string& what, const std::string& arg) {
  if (arg == "-") {
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    return all;
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
    return all;
  }
  auto parsed = parse_json(arg);
  if (parsed.too_deep)
    return usage_error(what + " nests arrays and objects deeper than " +
                       std::to_string(max_json_depth) +
                       " levels (give @FILE or - to store such bytes as they are)");
  if (!parsed.value)
    return usage_error(what + " is not JSON (give @FILE or - for other bytes): " + arg);
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

int run_append(const global_options& g, const append_args& a) {
  if (a.data && a.metadata && *a.data == "-" && *a.metadata == "-")
    return report(usage_error("only one of --data and --metadata can read standard input"), g.json);
  varve::new_event e;
  e.type = a.type;
  if (a.data) {
    auto bytes = argument_bytes("--data", *a.data);
    if (!bytes) return report(bytes.err(), g.json);
    e.payload = std::move(*bytes);
  }
  if (a.metadata) {
    auto bytes = argument_bytes("--metadata", *a.metadata);
    if (!bytes) return report(bytes.err(), g.json);
    e.metadata = std::move(*bytes);
  }
  if (a.id) {
    e.id = varve::event_id::parse(*a.id);
    if (!e.id) return report(usage_error("--id is not a UUID: '" + *a.id + "'"), g.json);
  }
  auto expected = parse_expected(a.expected);
  if (!expected) return report(expected.err(), g.json);

  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  auto r = (*store)->append(a.stream, *expected, {&e, 1});
  if (!r) return report(r.err(), g.json);
  if (g.json) {
    print_json(
        json{{"position", r->last_position}, {"stream", a.stream}, {"version", r->last_version}});
  } else {
    print_line("appended to '" + a.stream + "' at version " + std::to_string(r->last_version) +
               ", position " + std::to_string(r->last_position) +
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
  auto* ap = app.add_subcommand("append", "append one event; prints its position and version");
  ap->add_option("STREAM", append->stream, "stream name")->required();
  ap->add_option("TYPE", append->type, "event type")->required();
  ap->add_option("--data", append->data, "payload: JSON text, @FILE (any bytes) or - (stdin)")
      ->type_name("JSON|@FILE|-");
  ap->add_option("--metadata", append->metadata, "metadata: JSON text, @FILE or -")
      ->type_name("JSON|@FILE|-");
  ap->add_option("--expected-version", append->expected,
                 "any (default), no-stream, exists, or the stream's current version N")
      ->type_name("any|no-stream|exists|N");
  ap->add_option("--id", append->id, "the event's id (default: a new UUIDv7)")->type_name("UUID");
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
