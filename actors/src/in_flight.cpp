// The events a decider has in flight (detail/in_flight.hpp).
#include "varve/actors/detail/in_flight.hpp"

namespace varve::detail {

void in_flight_events::add(std::uint64_t key, const write_request& request) {
  auto& events = appends_[key];
  for (const auto& a : request.appends)
    for (const auto& e : a.events) {
      event out{a.stream, e.type, {}, e.tags.size()};
      for (const auto& t : e.tags) {  // 1..255 bytes each: checked by build_request
        out.tags.push_back(static_cast<char>(static_cast<unsigned char>(t.size())));
        out.tags += t;
      }
      events.push_back(std::move(out));
    }
}

void in_flight_events::remove(std::uint64_t key) {
  appends_.erase(key);
}

bool in_flight_events::touches(const query& q) const {
  for (const auto& [key, events] : appends_)
    for (const auto& e : events) {
      event_view v;
      v.type = e.type;
      v.tags = tag_list(e.tags, e.tag_count);
      if (q.matches(v, e.stream)) return true;
    }
  return false;
}

}  // namespace varve::detail
