// The store as a whole: init, streams, stats, verify, backup, compact, shred, rotate-key.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "encoding.hpp"
#include "exit_code.hpp"
#include "output.hpp"
#include "progress.hpp"

namespace varvectl {

namespace {

namespace fs = std::filesystem;

int run_init(const global_options& g) {
  auto store = create_store(g);
  if (!store) return report(store.err(), g.json);
  const bool encrypted = (*store)->encrypted();
  if (g.json) {
    print_json(json{{"directory", g.db}, {"encrypted", encrypted}});
  } else {
    print_line(
        "created a store in " + g.db +
        (encrypted ? " (encrypted: AES-256-GCM, key from the key file)" : " (not encrypted)"));
  }
  return exit_ok;
}

std::string_view state_name(varve::stream_state s) {
  switch (s) {
    case varve::stream_state::live:
      return "live";
    case varve::stream_state::shredded:
      return "shredded";
    case varve::stream_state::deleted:
      return "deleted";
  }
  return "unknown";
}

int run_streams(const global_options& g) {
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  std::vector<std::pair<std::string, varve::stream_info>> streams;
  {
    auto txn = (*store)->read();
    if (!txn) return report(txn.err(), g.json);
    auto n = txn->scan_streams([&](std::string_view name, const varve::stream_info& info) {
      streams.emplace_back(std::string(name), info);
      return true;
    });
    if (!n) return report(n.err(), g.json);
  }
  if (g.json) {
    for (const auto& [name, info] : streams)
      print_json(json{{"stream", name},
                      {"version", info.version},
                      {"last_position", info.last_position},
                      {"state", state_name(info.state)}});
    return exit_ok;
  }
  for (auto& s : streams)  // escaped before the columns are measured
    s.first = terminal_text(s.first);
  std::size_t width = 6;
  for (const auto& s : streams)
    width = std::max(width, s.first.size());
  auto pad = [](std::string s, std::size_t w) {
    if (s.size() < w) s.append(w - s.size(), ' ');
    return s;
  };
  print_line(pad("STREAM", width) + "  " + pad("VERSION", 9) + "  " + pad("LAST", 12) + "  STATE");
  for (const auto& [name, info] : streams)
    print_escaped_line(pad(name, width) + "  " + pad(std::to_string(info.version), 9) + "  " +
                       pad(std::to_string(info.last_position), 12) + "  " +
                       std::string(state_name(info.state)));
  print_line(std::to_string(streams.size()) + " stream" + (streams.size() == 1 ? "" : "s"));
  return exit_ok;
}

/// Bytes the file takes on disk (allocated blocks), and its length.
std::pair<std::uint64_t, std::uint64_t> file_sizes(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return {0, 0};
  return {static_cast<std::uint64_t>(st.st_blocks) * 512, static_cast<std::uint64_t>(st.st_size)};
}

int run_stats(const global_options& g) {
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  auto s = (*store)->stats();
  if (!s) return report(s.err(), g.json);
  std::uint64_t projections = 0;
  {
    auto txn = (*store)->read();
    if (!txn) return report(txn.err(), g.json);
    auto n = txn->scan_cursors([](std::string_view, const varve::cursor_view&) { return true; });
    if (!n) return report(n.err(), g.json);
    projections = *n;
  }
  const auto [disk, length] = file_sizes(fs::path(g.db) / "data.mdb");
  const double map_use = s->map_size ? std::round(10000.0 * static_cast<double>(s->used_bytes) /
                                                  static_cast<double>(s->map_size)) /
                                           10000.0
                                     : 0.0;
  if (g.json) {
    // commits / events_per_commit: counted by the store itself (meta), for
    // every process that wrote; stores written before the count began
    // report fewer commits than they had.
    const json per_commit =
        s->commits ? json(static_cast<double>(s->events_committed) / s->commits) : json(nullptr);
    print_json(json{{"events", s->head},
                    {"streams", s->streams},
                    {"commits", s->commits},
                    {"events_per_commit", per_commit},
                    {"size_bytes", disk},
                    {"file_bytes", length},
                    {"used_bytes", s->used_bytes},
                    {"map_size", s->map_size},
                    {"map_use", map_use},
                    {"consumers", projections},
                    {"encrypted", s->encrypted}});
    return exit_ok;
  }
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.1f%%", 100.0 * map_use);
  print_line("store:             " + g.db + (s->encrypted ? " (encrypted)" : " (not encrypted)"));
  print_line("events:            " + std::to_string(s->head));
  print_line("streams:           " + std::to_string(s->streams));
  print_line("consumers:         " + std::to_string(projections) + " (cursors)");
  print_line("size on disk:      " + human_size(disk) + " (data.mdb, " + human_size(length) +
             " long)");
  print_line("map use:           " + human_size(s->used_bytes) + " of " + human_size(s->map_size) +
             " (" + pct + ")");
  print_line("commits:           " + std::to_string(s->commits));
  char per[32];
  std::snprintf(per, sizeof per, "%.1f",
                s->commits ? static_cast<double>(s->events_committed) / s->commits : 0.0);
  print_line("events per commit: " + std::string(per));
  return exit_ok;
}

int run_verify(const global_options& g) {
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  progress bar("verify");
  auto r = (*store)->verify([&](std::uint64_t done, std::uint64_t total) {
    bar.set_total(total);
    bar.update(done);
  });
  bar.finish();
  if (!r) return report(r.err(), g.json);
  const bool sound = r->faults_total == 0;
  if (g.json) {
    print_json(json{{"ok", sound},
                    {"events", r->events},
                    {"streams", r->streams},
                    {"shredded", r->shredded},
                    {"chunks", r->chunks},
                    {"faults_total", r->faults_total},
                    {"faults", r->faults}});
  } else {
    print_line("checked " + std::to_string(r->events) + " events in " + std::to_string(r->streams) +
               " streams (" + std::to_string(r->shredded) + " shredded, " +
               std::to_string(r->chunks) + " index chunks)");
    if (sound) {
      print_line("ok: no faults");
    } else {
      print_line(std::to_string(r->faults_total) + " fault" + (r->faults_total == 1 ? "" : "s") +
                 ":");
      for (const auto& f : r->faults)
        print_line("  " + f);
      if (r->faults_total > r->faults.size())
        print_line("  ... and " + std::to_string(r->faults_total - r->faults.size()) + " more");
    }
  }
  return sound ? exit_ok : exit_failure;
}

struct backup_args {
  std::string destination;
};

int run_backup(const global_options& g, const backup_args& a) {
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  auto before = (*store)->stats();
  if (!before) return report(before.err(), g.json);
  progress bar("backup", before->used_bytes);
  bar.set_bytes(true);
  std::atomic<bool> done{false};
  std::thread watcher;
  if (bar.active()) {  // the copy's growing data file, against the pages in use (an upper bound)
    watcher = std::thread([&] {
      while (!done.load()) {
        bar.update(file_sizes(fs::path(a.destination) / "data.mdb").second);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  auto copied = (*store)->backup(a.destination);
  done = true;
  if (watcher.joinable()) watcher.join();
  bar.finish();
  if (!copied) return report(copied.err(), g.json);

  // Open the copy to say what it holds (and that it opens, with the same key).
  global_options copy = g;
  copy.db = a.destination;
  auto reopened = open_store(copy);
  if (!reopened) return report(reopened.err(), g.json);
  auto s = (*reopened)->stats();
  if (!s) return report(s.err(), g.json);
  const std::uint64_t size = file_sizes(fs::path(a.destination) / "data.mdb").second;
  if (g.json) {
    print_json(json{{"destination", a.destination},
                    {"events", s->head},
                    {"streams", s->streams},
                    {"size_bytes", size}});
  } else {
    print_line("backed up " + std::to_string(s->head) + " events in " + std::to_string(s->streams) +
               " streams to " + a.destination + " (" + human_size(size) + ", compacted)");
  }
  return exit_ok;
}

int run_compact(const global_options& g) {
  auto r = varve::event_store::compact(g.db);
  if (!r) return report(r.err(), g.json);
  if (g.json) {
    print_json(json{{"compacted", true},
                    {"bytes_before", r->bytes_before},
                    {"bytes_after", r->bytes_after},
                    {"entries", r->entries}});
  } else {
    print_line("compacted " + g.db + ": data.mdb " + human_size(r->bytes_before) + " -> " +
               human_size(r->bytes_after) + ", " + std::to_string(r->entries) +
               " entries rewritten into a fresh file");
    print_line(
        "note: what shredding, deleted snapshots and erased view rows left in the old file is "
        "gone from data.mdb; the filesystem may keep the old blocks until it reuses them.");
  }
  return exit_ok;
}

int run_rebuild_indexes(const global_options& g) {
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  if (auto r = (*store)->rebuild_indexes(); !r) return report(r.err(), g.json);
  auto txn = (*store)->read();
  if (!txn) return report(txn.err(), g.json);
  if (g.json)
    print_json(json{{"rebuilt", true}, {"indexed_through", txn->head()}});
  else
    print_line("rebuilt the type, category and tag indexes of " + g.db + " from its " +
               std::to_string(txn->head()) + " events");
  return exit_ok;
}

struct shred_args {
  std::string stream;
};

int run_shred(const global_options& g, const shred_args& a) {
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  std::optional<varve::stream_info> info;
  {
    auto txn = (*store)->read();
    if (!txn) return report(txn.err(), g.json);
    auto found = txn->stream(a.stream);
    if (!found) return report(found.err(), g.json);
    if (!*found)
      return report(
          varve::error{varve::errc::not_found, "stream '" + a.stream + "' does not exist"}, g.json);
    info = **found;
  }
  const bool already = info->state == varve::stream_state::shredded;
  const bool encrypted = (*store)->encrypted();
  if (auto r = (*store)->shred(a.stream); !r) return report(r.err(), g.json);
  if (g.json) {
    print_json(json{{"stream", a.stream},
                    {"events", info->version},
                    {"shredded", true},
                    {"already_shredded", already},
                    {"encrypted", encrypted}});
  } else if (already) {
    print_line("stream '" + a.stream + "' was already shredded");
  } else if (encrypted) {
    print_line("stream '" + a.stream +
               "' shredded: its data key is destroyed, so its events' data and metadata can no "
               "longer be decrypted by anyone; their envelopes (type, id, time, version, "
               "position) remain.");
    print_line(
        "note: the old wrapped key stays in free pages of data.mdb until LMDB reuses them or "
        "'varvectl compact' rewrites the file.");
  } else {
    print_line("stream '" + a.stream +
               "' shredded: its events' data and metadata are erased from the log and its "
               "snapshot deleted; their envelopes remain.");
    print_line(
        "note: the erased bytes stay in free pages of data.mdb until LMDB reuses them or "
        "'varvectl compact' rewrites the file.");
  }
  return exit_ok;
}

struct rotate_args {
  std::string new_key_file;
};

int run_rotate(const global_options& g, const rotate_args& a) {
  if (auto present = key_file_present("--new-key-file", a.new_key_file); !present)
    return report(present.err(), g.json);
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  if (auto r = (*store)->rotate_master_key(fs::path(a.new_key_file)); !r)
    return report(r.err(), g.json);
  if (g.json)
    print_json(json{{"rotated", true}, {"new_key_file", a.new_key_file}});
  else
    print_line("rotated the master key: only the key in " + a.new_key_file + " opens " + g.db +
               " from now on");
  return exit_ok;
}

}  // namespace

void add_store_commands(CLI::App& app, context& ctx) {
  auto* init =
      app.add_subcommand("init", "create a store in --db (encrypted when --key-file is given)");
  when_chosen(init, ctx, [&ctx] { return run_init(ctx.global); });

  auto* streams = app.add_subcommand("streams", "list the streams: version, last position, state");
  when_chosen(streams, ctx, [&ctx] { return run_streams(ctx.global); });

  auto* stats = app.add_subcommand(
      "stats", "events, streams, size on disk, map use, commits, events per commit");
  when_chosen(stats, ctx, [&ctx] { return run_stats(ctx.global); });

  auto* verify = app.add_subcommand(
      "verify",
      "check the whole store (index and log agree, positions gapless, records decode "
      "and authenticate); exit 1 on any fault");
  when_chosen(verify, ctx, [&ctx] { return run_verify(ctx.global); });

  auto backup = std::make_shared<backup_args>();
  auto* b = app.add_subcommand("backup", "write a consistent, compacted copy while writers run");
  b->add_option("DEST", backup->destination, "new or empty directory")->required();
  when_chosen(b, ctx, [&ctx, backup] { return run_backup(ctx.global, *backup); });

  auto shred = std::make_shared<shred_args>();
  auto* c = app.add_subcommand(
      "compact",
      "rewrite the closed store into a fresh data file: removes what shred, deleted snapshots "
      "and erased view rows left in data.mdb (refused while any process has the store open)");
  when_chosen(c, ctx, [&ctx] { return run_compact(ctx.global); });

  auto* ri = app.add_subcommand(
      "rebuild-indexes",
      "drop the type, category and tag indexes and build them again from the log (for an "
      "index verify reports damaged); writers may go on meanwhile");
  when_chosen(ri, ctx, [&ctx] { return run_rebuild_indexes(ctx.global); });

  auto* s = app.add_subcommand("shred", "forget a stream's data for good (crypto-shredding)");
  s->add_option("STREAM", shred->stream, "stream name")->required();
  when_chosen(s, ctx, [&ctx, shred] { return run_shred(ctx.global, *shred); });

  auto rotate = std::make_shared<rotate_args>();
  auto* r = app.add_subcommand("rotate-key", "re-wrap every data key under a new master key");
  r->add_option("--new-key-file", rotate->new_key_file, "the new master key file (mode 0600)")
      ->required()
      ->type_name("FILE");
  when_chosen(r, ctx, [&ctx, rotate] { return run_rotate(ctx.global, *rotate); });
}

}  // namespace varvectl
