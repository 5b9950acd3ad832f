// Projections: list their cursors and state; record control requests
// (pause, resume, reset, rebuild) for the application's projection manager.
//
// A projection keeps its checkpoint in the store's `cursors` table, with a
// JSON state; control requests go to the view `varve.projection_control`
// (key: projection name); the manager applies a request, now if it runs,
// else at the projection's next start, and erases it. Both formats are
// read and written with varve::projection_protocol, as the projections do.
#include <map>
#include <varve/projections/protocol.hpp>
#include <vector>

#include "commands.hpp"
#include "encoding.hpp"
#include "exit_code.hpp"
#include "output.hpp"
#include "progress.hpp"
#include "signals.hpp"

namespace varvectl {

namespace {

/// A pending request for output: its fields, or the raw text when it does
/// not read (the manager refuses it and reports why on the projection).
json pending_request(const std::optional<std::string>& raw) {
  if (!raw) return nullptr;
  auto request = varve::parse_control_request(*raw);
  if (!request) return *raw;
  json j;
  j["command"] = varve::to_string(request->command);
  if (request->command == varve::control_command::reset) j["position"] = request->position;
  if (request->requested_us != 0) {  // when it said
    j["requested_us"] = request->requested_us;
    j["requested"] = format_time(request->requested_us);
  }
  return j;
}

struct projection_row {
  std::string name;
  std::optional<varve::global_position> position;  ///< none: no cursor yet
  std::optional<varve::checkpoint_fields> state;   ///< its stored state's fields, if any
  std::optional<std::string> request;              ///< pending control request
};

json row_to_json(const projection_row& r, varve::global_position head) {
  json j;
  j["name"] = r.name;
  const varve::checkpoint_fields s = r.state.value_or(varve::checkpoint_fields{});
  j["mode"] = s.mode ? json(*s.mode) : json(nullptr);
  j["position"] = r.position ? json(*r.position) : json(nullptr);
  j["head"] = head;
  j["lag"] = r.position ? json(head > *r.position ? head - *r.position : 0) : json(nullptr);
  j["state"] = s.state ? json(*s.state) : json(nullptr);
  if (s.attempt && s.attempts) {  // retrying
    j["attempt"] = *s.attempt;
    j["attempts"] = *s.attempts;
  }
  // The error it stored; else why its stored state does not read.
  const std::string error = s.error             ? *s.error
                            : s.problem.empty() ? ""
                                                : "the stored state does not read: " + s.problem;
  j["error"] = error.empty() ? json(nullptr) : json(error);
  j["updated"] = s.updated_us ? json(format_time(*s.updated_us)) : json(nullptr);
  j["pending"] = pending_request(r.request);
  return j;
}

varve::result<std::vector<projection_row>> load_rows(const varve::event_store& store,
                                                     varve::global_position& head) {
  auto txn = store.read();
  if (!txn) return std::move(txn).err();
  head = txn->head();
  std::map<std::string, projection_row> rows;
  auto cursors = txn->scan_cursors([&](std::string_view name, const varve::cursor_view& c) {
    projection_row& r = rows[std::string(name)];
    r.name = name;
    r.position = c.position;
    if (!c.state.empty()) r.state = varve::read_checkpoint_fields(c.state);
    return true;
  });
  if (!cursors) return std::move(cursors).err();
  auto requests =
      txn->scan_view(varve::control_view, "", [&](std::string_view key, std::string_view v) {
        projection_row& r = rows[std::string(key)];
        r.name = key;
        r.request = std::string(v);
        return true;
      });
  if (!requests) return std::move(requests).err();
  std::vector<projection_row> out;
  for (auto& [name, row] : rows)
    out.push_back(std::move(row));
  return out;
}

std::string text_or_dash(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

int run_projections(const global_options& g) {
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  varve::global_position head = 0;
  auto rows = load_rows(**store, head);
  if (!rows) return report(rows.err(), g.json);
  std::vector<json> objects;
  for (const auto& r : *rows)
    objects.push_back(row_to_json(r, head));
  if (g.json) {
    for (const auto& o : objects)
      print_json(o);
    return exit_ok;
  }
  const std::vector<std::string> headers{"NAME",  "MODE",    "POSITION", "LAG",
                                         "STATE", "PENDING", "ERROR"};
  std::vector<std::vector<std::string>> cells;
  for (const auto& o : objects) {
    std::string pending = "-";
    if (o["pending"].is_object())
      pending = text_or_dash(o["pending"]["command"]);
    else if (!o["pending"].is_null())
      pending = "?";
    std::string state = text_or_dash(o["state"]);  // "retrying (attempt 2 of 4)"
    if (auto s = varve::parse_projection_state(state))
      state = varve::describe(*s, o.value("attempt", 0u), o.value("attempts", 0u));
    cells.push_back({o["name"].get<std::string>(), text_or_dash(o["mode"]),
                     text_or_dash(o["position"]), text_or_dash(o["lag"]), state, pending,
                     text_or_dash(o["error"])});
    for (auto& cell : cells.back())  // escaped before the columns are measured
      cell = terminal_text(cell);
  }
  std::vector<std::size_t> width(headers.size());
  for (std::size_t c = 0; c < headers.size(); ++c) {
    width[c] = headers[c].size();
    for (const auto& row : cells)
      width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& row) {
    std::string out;
    for (std::size_t c = 0; c < row.size(); ++c) {
      out += row[c];
      if (c + 1 < row.size()) out.append(width[c] - row[c].size() + 2, ' ');
    }
    print_escaped_line(out);
  };
  line(headers);
  for (const auto& row : cells)
    line(row);
  print_line("head: " + std::to_string(head));
  return exit_ok;
}

struct control_args {
  std::string name;
  std::uint64_t to = 0;  ///< reset only
  bool wait = false;     ///< rebuild only
};

/// Waits until the manager took the rebuild request and the projection is
/// live at the head, showing its progress.
int wait_for_rebuild(const varve::event_store& store, const global_options& g,
                     const std::string& name, std::int64_t requested) {
  progress bar("rebuild " + name);
  for (;;) {
    varve::global_position head = 0;
    std::optional<projection_row> row;
    {
      auto rows = load_rows(store, head);
      if (!rows) return report(rows.err(), g.json);
      for (auto& r : *rows)
        if (r.name == name) row = std::move(r);
    }
    if (row && !row->request && row->position) {
      const varve::checkpoint_fields s = row->state.value_or(varve::checkpoint_fields{});
      const bool fresh = s.updated_us && *s.updated_us >= requested;
      auto is = [&](varve::projection_state state) { return s.state == varve::to_string(state); };
      if (fresh && is(varve::projection_state::failed)) {
        bar.finish();
        return report(varve::error{varve::errc::io_error,
                                   "projection '" + name +
                                       "' failed while rebuilding: " + s.error.value_or("")},
                      g.json);
      }
      bar.set_total(head);
      bar.update(*row->position);
      if (fresh && is(varve::projection_state::live) && *row->position >= head) {
        bar.finish();
        if (g.json)
          print_json(row_to_json(*row, head));
        else
          print_line("projection '" + name + "' is rebuilt and live at position " +
                     std::to_string(*row->position));
        return exit_ok;
      }
    }
    if (!sleep_unless_stopped(std::chrono::milliseconds(100))) {
      bar.finish();
      return report(varve::error{varve::errc::io_error,
                                 "interrupted while waiting; the rebuild request stands"},
                    g.json);
    }
  }
}

int run_control(const global_options& g, varve::control_command verb, const control_args& a) {
  // An interrupt from the moment the request may be recorded ends the wait
  // (a background job of a shell ignores SIGINT until a handler is set).
  if (a.wait) catch_stop_signals();
  auto store = open_store(g);
  if (!store) return report(store.err(), g.json);
  const std::int64_t requested = varve::now_us();
  const varve::control_request request{verb, a.to, requested};
  const std::string command(varve::to_string(verb));
  bool known = false;
  {
    auto txn = (*store)->read();
    if (!txn) return report(txn.err(), g.json);
    auto cursor = txn->cursor(a.name);
    if (!cursor) return report(cursor.err(), g.json);
    known = cursor->has_value();
  }
  varve::write_request req;
  req.views.push_back(varve::view_update{std::string(varve::control_view),
                                         varve::view_update::op::put, a.name,
                                         varve::to_json(request)});
  auto out = (*store)->write({&req, 1});
  if (!out) return report(out.err(), g.json);
  if (!out->front()) return report(out->front().err(), g.json);

  if (a.wait) return wait_for_rebuild(**store, g, a.name, requested);
  if (g.json) {
    json j;
    j["name"] = a.name;
    j["command"] = command;
    if (command == "reset") j["position"] = a.to;
    j["requested"] = format_time(requested);
    j["recorded"] = true;
    j["known"] = known;
    print_json(j);
  } else {
    std::string what =
        command == "reset" ? "a reset (to position " + std::to_string(a.to) + ")" : "a " + command;
    print_line("recorded " + what + " request for projection '" + a.name +
               "': the application's projection manager applies it (at once if it runs, else "
               "when the projection next starts)");
    if (!known)
      print_line("note: no consumer named '" + a.name + "' has a cursor in this store yet");
  }
  return exit_ok;
}

}  // namespace

void add_projection_commands(CLI::App& app, context& ctx) {
  auto* list = app.add_subcommand(
      "projections", "list projections: mode, position, lag, state, error, pending request");
  when_chosen(list, ctx, [&ctx] { return run_projections(ctx.global); });

  struct verb {
    const char* name;
    const char* help;
  };
  for (const verb v : {verb{"pause", "ask the projection manager to pause a projection"},
                       verb{"resume", "ask the projection manager to resume a projection"},
                       verb{"reset", "ask the projection manager to move a projection's cursor"},
                       verb{"rebuild", "ask the projection manager to rebuild a projection"}}) {
    auto args = std::make_shared<control_args>();
    auto* sub = app.add_subcommand(v.name, v.help);
    sub->add_option("NAME", args->name, "projection name")->required();
    if (std::string(v.name) == "reset")
      sub->add_option("--to", args->to,
                      "the position to restart after: 0 (the default) is before the first event")
          ->type_name("P")
          ->transform(whole_number(0));
    if (std::string(v.name) == "rebuild") {
      sub->add_flag("--wait", args->wait,
                    "wait until the running manager has rebuilt it (progress on a terminal)");
    }
    const auto verb = *varve::parse_control_command(v.name);
    when_chosen(sub, ctx, [&ctx, args, verb] { return run_control(ctx.global, verb, *args); });
  }
}

}  // namespace varvectl
