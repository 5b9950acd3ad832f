// Comparing the ids of events Varve generated, for the tests that check that
// processes (forked children, parents) draw ids of their own.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "varve/storage/event.hpp"

namespace varve_test {

/// The random bits of an id Varve generated: all but its time and its
/// version and variant bits.
inline std::string random_bits(const varve::event_id& id) {
  std::string bits(id.bytes.begin() + 6, id.bytes.end());
  bits[0] = static_cast<char>(bits[0] & 0x0F);
  bits[2] = static_cast<char>(bits[2] & 0x3F);
  return bits;
}

/// How many events of `a` have ids with the random bits of an id in `b`
/// (0 when the two were drawn independently).
inline int shared_random_bits(const std::vector<varve::recorded_event>& a,
                              const std::vector<varve::recorded_event>& b) {
  std::set<std::string> drawn;
  for (const auto& e : b)
    drawn.insert(random_bits(e.id));
  int shared = 0;
  for (const auto& e : a)
    shared += static_cast<int>(drawn.count(random_bits(e.id)));
  return shared;
}

}  // namespace varve_test
