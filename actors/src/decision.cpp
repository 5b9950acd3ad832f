// The parts of decision models that do not depend on the model.
#include "varve/actors/decision.hpp"

#include <algorithm>
#include <unordered_map>

namespace varve::detail {

error unreadable_in_boundary(const event_view& v) {
  if (v.shredded)
    return error{errc::shredded, "the event at position " + std::to_string(v.position) +
                                     " (type '" + std::string(v.type) +
                                     "') is in the boundary and its stream was shredded"};
  return error{errc::corruption, "the event at position " + std::to_string(v.position) +
                                     " of type '" + std::string(v.type) +
                                     "' is in the boundary and does not decode with the "
                                     "decision model's codec"};
}

error boundary_read_failed(const query& q, const error& e) {
  return error{e.code(), "reading the boundary " + q.to_string() + ": " + e.message()};
}

namespace {

/// invalid_argument naming the tag rule that event `i` of `stream` breaks,
/// or nothing.
std::optional<error> check_tags(const encoded_event& e, std::size_t i) {
  auto bad = [&](std::string why) {
    return error{errc::invalid_argument, "decided event " + std::to_string(i) + " ('" +
                                             e.event.type + "' for '" + e.stream + "') " + why +
                                             "; nothing stored"};
  };
  const auto& tags = e.event.tags;
  if (tags.size() > max_tags)
    return bad("has " + std::to_string(tags.size()) + " tags, more than " +
               std::to_string(max_tags));
  for (std::size_t t = 0; t < tags.size(); ++t) {
    if (tags[t].empty()) return bad("has an empty tag");
    if (tags[t].size() > max_tag_bytes)
      return bad("has a tag of " + std::to_string(tags[t].size()) + " bytes, more than " +
                 std::to_string(max_tag_bytes));
    if (std::find(tags.begin(), tags.begin() + static_cast<std::ptrdiff_t>(t), tags[t]) !=
        tags.begin() + static_cast<std::ptrdiff_t>(t))
      return bad("has the tag '" + tags[t] + "' twice");
  }
  return std::nullopt;
}

}  // namespace

result<write_request> build_request(std::vector<encoded_event> events, query q,
                                    global_position read_at) {
  write_request out;
  std::unordered_map<std::string, std::size_t> slot;  // stream -> index in out.appends
  for (std::size_t i = 0; i < events.size(); ++i) {
    auto& e = events[i];
    if (e.stream.empty())
      return error{errc::invalid_argument, "decided event " + std::to_string(i) + " ('" +
                                               e.event.type + "') has no stream; nothing stored"};
    if (auto bad = check_tags(e, i)) return std::move(*bad);
    auto [at, added] = slot.try_emplace(e.stream, out.appends.size());
    if (added) out.appends.push_back({e.stream, expected_version::any(), {}});
    out.appends[at->second].events.push_back(std::move(e.event));
  }
  out.condition = append_condition{std::move(q), read_at};
  return out;
}

error unencodable(const std::string& type, const std::string& stream) {
  return error{errc::invalid_argument,
               "the decision model's codec cannot encode the '" + type + "' event decided for '" +
                   stream + "' (with JSON: a string that is not UTF-8); nothing stored"};
}

decision_reply reply_of(const std::vector<append_result>& appended, std::uint32_t events,
                        global_position read_at, std::uint32_t attempts) {
  decision_reply r;
  r.events = events;
  r.read_at = read_at;
  r.attempts = attempts;
  for (const auto& a : appended) {
    if (a.first_position != 0 && (r.first_position == 0 || a.first_position < r.first_position))
      r.first_position = a.first_position;
    r.position = std::max(r.position, a.last_position);
  }
  return r;
}

error gave_up(const error& conflict, std::uint32_t attempts) {
  return error{errc::wrong_expected_version,
               conflict.message() + " (gave up after " + std::to_string(attempts) +
                   " attempts: the boundary kept changing under the decision)"};
}

}  // namespace varve::detail
