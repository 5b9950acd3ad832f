// Moving a store's events out and in: export (JSON lines), import (into an
// empty store, positions, versions, ids and times exactly as exported).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "commands.hpp"
#include "encoding.hpp"
#include "exit_code.hpp"
#include "log_reader.hpp"
#include "output.hpp"
#include "progress.hpp"

namespace varvectl {

namespace {

struct export_args {
  std::uint64_t from = 1;
};

/// Makes standard output mode 0600 when it is a regular file (the export
/// holds the store's data; the umask would leave it readable by others).
/// Pipes, terminals and devices stay as they are. Errors: io_error when a
/// file that others can read cannot be restricted (someone else's file).
varve::result<void> keep_output_private() {
  struct stat st {};
  if (::fstat(STDOUT_FILENO, &st) != 0 || !S_ISREG(st.st_mode)) return {};
  if ((st.st_mode & 07777) == 0600) return {};
  if (::fchmod(STDOUT_FILENO, 0600) == 0 || (st.st_mode & 077) == 0) return {};
  return varve::error{varve::errc::io_error,
                      std::string("cannot make the output file mode 0600 (") +
                          std::strerror(errno) +
                          "); it is readable by others: export to a file of your own"};
}

int run_export(const global_options& g, const export_args& a) {
  if (auto r = keep_output_private(); !r) return report(r.err(), g.json);
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  varve::global_position head = 0;
  {
    auto txn = (*store)->read();
    if (!txn) return report(txn.err(), g.json);
    head = txn->head();
  }
  // Up to the head as it is now: events appended meanwhile are left out, so
  // the file is the log as of one moment.
  log_range range;
  range.from = a.from;  // >= 1 (whole_number(1, ...))
  range.upto = head;
  progress bar("export", head >= range.from ? head - range.from + 1 : 0);
  std::uint64_t done = 0;
  auto n = read_log(**store, range, [&](const varve::recorded_event& e) {
    print_json(event_to_json(e));
    bar.update(++done);
    return true;
  });
  bar.finish();
  std::cout.flush();
  if (!n) return report(n.err(), g.json);
  if (!std::cout)
    return report(varve::error{varve::errc::io_error, "writing the export failed"}, g.json);
  return exit_ok;
}

struct import_args {
  std::string file;
};

/// The input, readable twice: the file itself, or standard input spooled.
struct input_file {
  std::FILE* f = nullptr;
  ~input_file() {
    if (f) std::fclose(f);
  }
};

varve::result<std::unique_ptr<input_file>> open_input(const std::string& path) {
  auto in = std::make_unique<input_file>();
  if (path == "-") {
    in->f = std::tmpfile();
    if (!in->f) return varve::error{varve::errc::io_error, "cannot make a temporary file"};
    char buf[65536];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0)
      if (std::fwrite(buf, 1, n, in->f) != n)
        return varve::error{varve::errc::io_error, "cannot spool standard input"};
    std::rewind(in->f);
  } else {
    in->f = std::fopen(path.c_str(), "rb");
    if (!in->f) {
      const int e = errno;
      const std::string why = "cannot open " + path + ": " + std::strerror(e);
      if (e == ENOENT || e == ENOTDIR) return varve::error{varve::errc::not_found, why};
      return usage_error(why);
    }
  }
  return in;
}

/// Calls `visit(line_number, event)` for each non-blank line of `in`, from
/// the start. Errors: invalid_argument naming the line.
template <class Visit>
varve::result<std::uint64_t> for_each_event(std::FILE* in, const std::string& name, Visit visit) {
  std::rewind(in);
  struct line_buffer {
    char* data = nullptr;
    std::size_t capacity = 0;
    ~line_buffer() { std::free(data); }
  } buf;
  std::uint64_t line_no = 0, events = 0;
  ssize_t len = 0;
  while ((len = ::getline(&buf.data, &buf.capacity, in)) >= 0) {
    ++line_no;
    std::string_view line(buf.data, static_cast<std::size_t>(len));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
      line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto where = [&] { return name + " line " + std::to_string(line_no) + ": "; };
    auto e = event_from_line(line);
    if (!e) return usage_error(where() + e.err().message());
    ++events;
    if (auto r = visit(*e); !r) return usage_error(where() + r.err().message());
  }
  if (std::ferror(in)) return varve::error{varve::errc::io_error, "reading " + name + " failed"};
  return events;
}

struct stream_check {
  varve::stream_version version = 0;
  bool shredded = false;
};

/// The store's limits on what it appends (the checks of its writer, before
/// anything is written): stream names of 1 to 511 bytes (LMDB's key size) of
/// valid UTF-8, types of 1 to 65535 bytes (the record's type length), and
/// type + metadata + payload at most options::max_event_bytes.
constexpr std::size_t max_stream_bytes = 511;

/// Whether the store would take `e` (an event of an import, whose versions
/// and positions the caller checks). Errors: invalid_argument saying why not.
varve::result<void> storable(const parsed_event& e, std::uint64_t max_event_bytes) {
  if (e.stream.empty()) return usage_error("the stream name is empty");
  if (e.stream.size() > max_stream_bytes)
    return usage_error("the stream name is " + std::to_string(e.stream.size()) +
                       " bytes, over the limit of " + std::to_string(max_stream_bytes));
  if (!valid_utf8(e.stream)) return usage_error("the stream name is not valid UTF-8");
  const varve::new_event& ev = e.event;
  if (ev.type.empty()) return usage_error("empty type");
  if (ev.type.size() > varve::max_type_bytes)
    return usage_error("the type is " + std::to_string(ev.type.size()) +
                       " bytes, over the limit of " + std::to_string(varve::max_type_bytes));
  const std::uint64_t size = ev.type.size() + ev.metadata.size() + ev.payload.size();
  if (size > max_event_bytes)
    return usage_error("the event is " + std::to_string(size) +
                       " bytes (type, metadata and payload), over the store's max_event_bytes (" +
                       std::to_string(max_event_bytes) + ")");
  return {};
}

constexpr std::size_t batch_events = 1000;
constexpr std::size_t batch_bytes = std::size_t{8} << 20;

int run_import(const global_options& g, const import_args& a) {
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  {
    auto txn = (*store)->read();
    if (!txn) return report(txn.err(), g.json);
    if (txn->head() != 0 || txn->stream_count() != 0)
      return report(
          usage_error("the store in " + g.db + " is not empty (" + std::to_string(txn->head()) +
                      " events): import needs an empty store"),
          g.json);
  }
  auto in = open_input(a.file);
  if (!in) return report(in.err(), g.json);
  const std::string name = a.file == "-" ? "standard input" : a.file;
  const std::uint64_t max_bytes = (*store)->opts().max_event_bytes;

  // Pass 1: check everything before writing anything.
  std::map<std::string, stream_check> streams;
  varve::global_position expect = 1;
  progress checking("import (checking)");
  auto checked = for_each_event((*in)->f, name, [&](const parsed_event& e) -> varve::result<void> {
    checking.update(expect);
    if (e.position != expect)
      return usage_error("position " + std::to_string(e.position) + " where " +
                         std::to_string(expect) +
                         " was expected (an import holds the whole log, from position 1)");
    ++expect;
    if (auto ok = storable(e, max_bytes); !ok) return ok;
    auto [it, fresh] = streams.try_emplace(e.stream);
    if (e.version != it->second.version + 1)
      return usage_error("stream '" + e.stream + "' version " + std::to_string(e.version) +
                         " after version " + std::to_string(it->second.version));
    if (!fresh && it->second.shredded != e.shredded)
      return usage_error("stream '" + e.stream + "' has shredded and unshredded events");
    it->second.version = e.version;
    it->second.shredded = e.shredded;
    return {};
  });
  checking.finish();
  if (!checked) return report(checked.err(), g.json);
  const std::uint64_t total = *checked;

  // Pass 2: append in position order, in batches of one transaction each.
  progress bar("import", total);
  std::vector<varve::write_request> batch;
  std::set<std::string> in_request;
  std::size_t pending_events = 0, pending_bytes = 0;
  varve::global_position next = 1;  // the position the next appended event must get
  std::uint64_t committed = 0;      // events of this import the store holds
  std::optional<varve::error> failure;

  auto flush = [&]() -> bool {
    if (batch.empty()) return true;
    auto out = (*store)->write(batch);
    if (!out) {  // the transaction failed: nothing of this batch committed
      failure = std::move(out).err();
      return false;
    }
    // Requests commit or fail one by one, and a failed request fails alone:
    // the others of the batch are committed all the same.
    for (std::size_t r = 0; r < batch.size(); ++r) {
      varve::write_outcome& outcome = (*out)[r];
      if (!outcome) {
        if (!failure) failure = std::move(outcome).err();
        continue;
      }
      for (std::size_t i = 0; i < batch[r].appends.size(); ++i) {
        const varve::append_result& res = outcome.value()[i];
        const std::size_t n = batch[r].appends[i].events.size();
        if (!res.idempotent) committed += n;
        if (!failure && (res.first_position != next || res.idempotent))
          failure = varve::error{varve::errc::io_error,
                                 "stream '" + batch[r].appends[i].stream + "' landed at position " +
                                     std::to_string(res.first_position) + " instead of " +
                                     std::to_string(next) + " (another writer?)"};
        next += n;
      }
    }
    if (failure) return false;
    bar.update(next - 1);
    batch.clear();
    in_request.clear();
    pending_events = pending_bytes = 0;
    return true;
  };
  // A failure once writing began: the events committed so far stay (the
  // store is never emptied behind the user's back), and the error says so.
  auto stopped = [&](const varve::error& cause, const std::string& when) {
    if (committed == 0)
      return report(varve::error{cause.code(), "import stopped" + when +
                                                   " before committing any event (the store is "
                                                   "still empty): " +
                                                   cause.message()},
                    g.json);
    return report(
        varve::error{cause.code(), "import stopped after committing " + std::to_string(committed) +
                                       " event" + (committed == 1 ? "" : "s") + when +
                                       ": the store holds a partial import; remove " + g.db +
                                       " and import again (" + cause.message() + ")"},
        g.json);
  };

  auto imported = for_each_event((*in)->f, name, [&](const parsed_event& e) -> varve::result<void> {
    if (batch.empty() ||
        (in_request.count(e.stream) && batch.back().appends.back().stream != e.stream)) {
      batch.emplace_back();
      in_request.clear();
    }
    varve::write_request& req = batch.back();
    if (req.appends.empty() || req.appends.back().stream != e.stream) {
      req.appends.push_back(
          varve::append_request{e.stream, varve::expected_version::exact(e.version - 1), {}});
      in_request.insert(e.stream);
    }
    req.appends.back().events.push_back(e.event);
    ++pending_events;
    pending_bytes += e.event.type.size() + e.event.metadata.size() + e.event.payload.size();
    if ((pending_events >= batch_events || pending_bytes >= batch_bytes) && !flush())
      return varve::error{varve::errc::io_error, "stopped"};
    return {};
  });
  if (imported && !flush()) imported = varve::error{varve::errc::io_error, "stopped"};
  bar.finish();
  if (failure) return stopped(*failure, "");
  if (!imported) return stopped(imported.err(), "");  // the input changed between the passes

  std::uint64_t shredded = 0;
  for (const auto& [stream, check] : streams) {
    if (!check.shredded) continue;
    if (auto r = (*store)->shred(stream); !r)
      return stopped(r.err(), " (before shredding stream '" + stream + "')");
    ++shredded;
  }
  if (g.json) {
    print_json(
        json{{"events", total}, {"streams", streams.size()}, {"shredded_streams", shredded}});
  } else {
    print_line("imported " + std::to_string(total) + " events in " +
               std::to_string(streams.size()) + " streams (" + std::to_string(shredded) +
               " shredded) into " + g.db);
  }
  return exit_ok;
}

}  // namespace

void add_transfer_commands(CLI::App& app, context& ctx) {
  auto exp = std::make_shared<export_args>();
  auto* ex = app.add_subcommand(
      "export", "write the log as JSON lines on stdout (varvectl export > file.jsonl)");
  ex->add_option("--from", exp->from, "the first position to export, 1 or more (default 1)")
      ->type_name("P")
      ->transform(whole_number(1, "positions start at 1"));
  when_chosen(ex, ctx, [&ctx, exp] { return run_export(ctx.global, *exp); });

  auto imp = std::make_shared<import_args>();
  auto* im = app.add_subcommand(
      "import", "append an export's events to an empty store, positions and ids included");
  im->add_option("FILE", imp->file, "a file written by export, or - for stdin")->required();
  when_chosen(im, ctx, [&ctx, imp] { return run_import(ctx.global, *imp); });
}

}  // namespace varvectl
