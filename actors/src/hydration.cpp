// The parts of hydration that do not depend on the aggregate type.
#include "varve/actors/aggregate.hpp"

namespace varve::detail {

bool hydrates_inline(const event_store& store, std::string_view stream, stream_version from) {
  auto txn = store.read();
  if (!txn) return true;
  auto info = txn->stream(stream);
  return !info || !*info || (*info)->version <= from + inline_hydration_limit;
}

error undecodable(std::string_view stream, const event_view& v) {
  return error{errc::corruption, "stream '" + std::string(stream) + "' version " +
                                     std::to_string(v.version) + " (position " +
                                     std::to_string(v.position) + "): the event of type '" +
                                     std::string(v.type) + "' does not decode"};
}

error unreadable(std::string_view stream, stream_version version, const error& e) {
  return error{e.code(), "stream '" + std::string(stream) + "' version " + std::to_string(version) +
                             ": " + e.message()};
}

void ignore_snapshot(std::string_view stream, std::string_view why) {
  log(log_level::warning, "aggregate",
      "ignoring the snapshot of '" + std::string(stream) + "': " + std::string(why));
}

void report_unhydrated(std::string_view stream, const error& e) {
  // Appended, not `"'" + std::string(...)`: GCC 12 at -O2 and above takes
  // that for an overlapping copy (a false -Wrestrict).
  std::string text = "'";
  text.append(stream).append("' cannot hydrate: ").append(e.to_string());
  log(log_level::error, "aggregate", text);
}

}  // namespace varve::detail
