// The projection control protocol (protocol.hpp): JSON rows read field by
// field, each value's kind checked before it is taken.
#include "varve/projections/protocol.hpp"

#include <array>
#include <chrono>
#include <nlohmann/json.hpp>
#include <utility>

#include "json_rows.hpp"

namespace varve {

namespace {

using nlohmann::json;

constexpr std::array<std::pair<delivery, std::string_view>, 2> modes{{
    {delivery::exactly_once, "exactly_once"},
    {delivery::at_least_once, "at_least_once"},
}};

constexpr std::array<std::pair<projection_state, std::string_view>, 7> states{{
    {projection_state::catching_up, "catching_up"},
    {projection_state::live, "live"},
    {projection_state::committing, "committing"},
    {projection_state::retrying, "retrying"},
    {projection_state::paused, "paused"},
    {projection_state::failed, "failed"},
    {projection_state::stopped, "stopped"},
}};

constexpr std::array<std::pair<control_command, std::string_view>, 4> commands{{
    {control_command::pause, "pause"},
    {control_command::resume, "resume"},
    {control_command::reset, "reset"},
    {control_command::rebuild, "rebuild"},
}};

template <class Table, class E>
std::string_view name_in(const Table& table, E value) noexcept {
  for (const auto& [v, name] : table)
    if (v == value) return name;
  return "?";
}

template <class Table>
auto value_in(const Table& table, std::string_view text) noexcept
    -> std::optional<typename Table::value_type::first_type> {
  for (const auto& [v, name] : table)
    if (name == text) return v;
  return std::nullopt;
}

/// Reads the fields of one JSON object, each checked for its kind: a field
/// of the wrong kind reads as absent; the first problem met is kept.
class object_reader {
 public:
  object_reader(std::string_view text, std::string_view what) : what_(what) {
    doc_ = json::parse(text, nullptr, false);
    if (doc_.is_discarded())
      fail(std::string(what_) + " is not JSON");
    else if (!doc_.is_object())
      fail(std::string(what_) + " is " + detail::kind_of(doc_) + ", not an object");
  }

  /// The string field `name`: std::nullopt when absent (a problem when `required`).
  std::optional<std::string> string(const char* name, bool required) {
    const json* v = find(name, required);
    if (!v) return std::nullopt;
    if (!v->is_string()) return wrong(name, *v, "a string"), std::nullopt;
    return v->get<std::string>();
  }
  std::optional<std::uint64_t> unsigned_number(const char* name, bool required) {
    const json* v = find(name, required);
    if (!v) return std::nullopt;
    if (!v->is_number_unsigned()) return wrong(name, *v, "an unsigned integer"), std::nullopt;
    return v->get<std::uint64_t>();
  }
  std::optional<std::int64_t> integer(const char* name, bool required) {
    const json* v = find(name, required);
    if (!v) return std::nullopt;
    if (!v->is_number_integer() ||
        (v->is_number_unsigned() && v->get<std::uint64_t>() > std::uint64_t(INT64_MAX)))
      return wrong(name, *v, "an integer"), std::nullopt;
    return v->get<std::int64_t>();
  }
  void fail(std::string why) {
    if (problem_.empty()) problem_ = std::move(why);
  }
  bool ok() const { return problem_.empty(); }
  const std::string& problem() const { return problem_; }

 private:
  const json* find(const char* name, bool required) {
    if (!doc_.is_object()) return nullptr;
    auto it = doc_.find(name);
    if (it != doc_.end()) return &*it;
    if (required) fail(std::string(what_) + " has no '" + name + "'");
    return nullptr;
  }
  void wrong(const char* name, const json& v, const char* wanted) {
    fail(std::string("'") + name + "' is " + detail::kind_of(v) + ", not " + wanted);
  }

  json doc_;
  std::string_view what_;
  std::string problem_;
};

}  // namespace

std::string_view to_string(delivery mode) noexcept {
  return name_in(modes, mode);
}
std::string_view to_string(projection_state state) noexcept {
  return name_in(states, state);
}
std::string_view to_string(control_command command) noexcept {
  return name_in(commands, command);
}

std::optional<delivery> parse_delivery(std::string_view text) noexcept {
  return value_in(modes, text);
}
std::optional<projection_state> parse_projection_state(std::string_view text) noexcept {
  return value_in(states, text);
}
std::optional<control_command> parse_control_command(std::string_view text) noexcept {
  return value_in(commands, text);
}

std::string describe(projection_state state, unsigned attempt, unsigned attempts) {
  std::string out(to_string(state));
  if (state == projection_state::retrying && attempts > 0)
    out += " (attempt " + std::to_string(attempt) + " of " + std::to_string(attempts) + ")";
  return out;
}

std::string to_json(const checkpoint_state& s) {
  json j;
  if (s.mode) j["mode"] = to_string(*s.mode);
  j["state"] = to_string(s.state);
  j["error"] = s.error;
  j["updated_us"] = s.updated_us;
  if (s.state == projection_state::retrying) {
    j["attempt"] = s.attempt;
    j["attempts"] = s.attempts;
  }
  if (!s.source.empty()) j["source"] = s.source;
  return detail::json_text(j);
}

checkpoint_fields read_checkpoint_fields(std::string_view text) {
  object_reader r(text, "it");
  checkpoint_fields f;
  f.state = r.string("state", true);
  f.mode = r.string("mode", false);
  f.error = r.string("error", false);
  f.updated_us = r.integer("updated_us", false);
  f.attempt = r.unsigned_number("attempt", false);
  f.attempts = r.unsigned_number("attempts", false);
  f.source = r.string("source", false);
  f.problem = r.problem();
  return f;
}

result<checkpoint_state> parse_checkpoint_state(std::string_view text) {
  auto bad = [](std::string why) { return error{errc::corruption, std::move(why)}; };
  checkpoint_fields f = read_checkpoint_fields(text);
  if (!f.problem.empty()) return bad(std::move(f.problem));
  checkpoint_state out;
  const auto state = parse_projection_state(*f.state);
  if (!state || *state == projection_state::committing)
    return bad("unknown state '" + detail::excerpt(*f.state) + "'");
  out.state = *state;
  if (f.mode) {
    out.mode = parse_delivery(*f.mode);
    if (!out.mode) return bad("unknown mode '" + detail::excerpt(*f.mode) + "'");
  }
  out.error = f.error.value_or("");
  out.updated_us = f.updated_us.value_or(0);
  out.attempt = static_cast<unsigned>(f.attempt.value_or(0));
  out.attempts = static_cast<unsigned>(f.attempts.value_or(0));
  out.source = f.source.value_or("");
  return out;
}

std::string to_json(const control_request& r) {
  json j;
  j["command"] = to_string(r.command);
  if (r.command == control_command::reset) j["position"] = r.position;
  j["requested_us"] = r.requested_us;
  return detail::json_text(j);
}

result<control_request> parse_control_request(std::string_view text) {
  object_reader r(text, "the request");
  control_request out;
  if (auto command = r.string("command", true)) {
    auto known = parse_control_command(*command);
    if (!known)
      r.fail("unknown command '" + detail::excerpt(*command) + "'");
    else
      out.command = *known;
  }
  if (r.ok() && out.command == control_command::reset) {
    auto at = r.unsigned_number("position", false);
    if (r.ok() && !at) r.fail("the reset has no 'position'");
    if (at) out.position = *at;
  }
  if (auto t = r.integer("requested_us", false)) out.requested_us = *t;
  if (!r.ok()) return error{errc::invalid_argument, r.problem()};
  return out;
}

std::string dead_letter_view(std::string_view name) {
  return "varve.dead_letters." + std::string(name);
}

std::string position_key(global_position position) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i, position >>= 8)
    key[static_cast<std::size_t>(i)] = static_cast<char>(position & 0xff);
  return key;
}

std::string to_json(const dead_letter& d) {
  return detail::json_text(json{{"stream", d.stream},
                                {"type", d.type},
                                {"version", d.version},
                                {"error", d.error},
                                {"failed_us", d.failed_us}});
}

result<dead_letter> parse_dead_letter(std::string_view text) {
  object_reader r(text, "the dead letter");
  dead_letter out;
  if (auto s = r.string("stream", true)) out.stream = std::move(*s);
  if (auto t = r.string("type", true)) out.type = std::move(*t);
  if (auto v = r.unsigned_number("version", true)) out.version = *v;
  if (auto e = r.string("error", true)) out.error = std::move(*e);
  if (auto t = r.integer("failed_us", false)) out.failed_us = *t;
  if (!r.ok()) return error{errc::corruption, r.problem()};
  return out;
}

timestamp_us now_us() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace varve
