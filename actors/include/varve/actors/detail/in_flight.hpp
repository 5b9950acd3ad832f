// The appends a decider has in flight, as far as queries can see them:
// each event's stream, type and tags. Part of varve/actors/decider.hpp.
//
// A command whose boundary matches an event in flight would read a state
// that the append is about to change, and would then meet it as a
// conflict: the decider holds such a command back until that append is
// answered. No CAF here; not thread-safe (one decider owns it).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <varve/storage/event_store.hpp>

namespace varve::detail {

class in_flight_events {
 public:
  /// Records the events of `request` as in flight under `key`.
  void add(std::uint64_t key, const write_request& request);
  /// The append under `key` was answered.
  void remove(std::uint64_t key);
  /// Whether `q` matches an event in flight.
  bool touches(const query& q) const;
  /// Appends in flight.
  std::size_t size() const { return appends_.size(); }

 private:
  struct event {
    std::string stream;
    std::string type;
    std::string tags;  // encoded as tag_list reads them: len:u8 bytes, repeated
    std::size_t tag_count = 0;
  };
  std::map<std::uint64_t, std::vector<event>> appends_;
};

}  // namespace varve::detail
