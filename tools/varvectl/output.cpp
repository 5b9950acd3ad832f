#include "output.hpp"

#include <cstdio>
#include <iostream>

#include "encoding.hpp"

namespace varvectl {

void print_json(const json& value) {
  std::cout << json_text(value) << '\n';
}

void print_line(std::string_view text) {
  std::cout << terminal_text(text) << '\n';
}

void print_escaped_line(std::string_view escaped) {
  std::cout << escaped << '\n';
}

std::string bytes_for_humans(std::string_view bytes) {
  if (bytes.empty()) return {};
  if (auto value = bytes_as_json(bytes, false))
    return value->dump(-1, ' ', false, json::error_handler_t::replace);
  return "base64:" + base64_encode(bytes);
}

std::string event_for_humans(const varve::recorded_event& e) {
  // Starts from a string, not `"@" + std::to_string(...)`: GCC 12 at -O2 and
  // above takes that for an overlapping copy (a false -Wrestrict).
  std::string line = std::string("@").append(std::to_string(e.position)) + " " + e.stream + " v" +
                     std::to_string(e.version) + " " + e.type + " " + format_time(e.time) +
                     " id=" + e.id.to_string();
  if (!e.tags.empty())
    line += " tags=" + json(e.tags).dump(-1, ' ', false, json::error_handler_t::replace);
  if (e.shredded) return line + " [shredded]";
  if (!e.payload.empty()) line += " data=" + bytes_for_humans(e.payload);
  if (!e.metadata.empty()) line += " metadata=" + bytes_for_humans(e.metadata);
  return line;
}

void print_event(const varve::recorded_event& e, bool as_json) {
  if (as_json)
    print_json(event_to_json(e));
  else
    print_line(event_for_humans(e));
}

std::string human_size(std::uint64_t bytes) {
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace varvectl
