#pragma once
// The view writes of the projection suites' counting handler, which makes a
// lost or repeated delivery visible in the view: row "e<position>" counts
// how often that event was handled, "total" counts every handling, and "z"
// is put and erased in turn (a row that comes and goes).

#include <cstdint>
#include <string>
#include <varve/projections/spec.hpp>

namespace varve_test {

inline varve::result<void> count_in_view(const varve::delivered_event& d, varve::view_batch& v) {
  auto bump = [&v](const std::string& key) -> varve::result<void> {
    auto current = v.get(key);
    if (!current) return current.err();
    const std::int64_t n = *current ? std::stoll(**current) : 0;
    v.put(key, std::to_string(n + 1));
    return {};
  };
  if (auto r = bump("e" + std::to_string(d.event.position)); !r) return r;
  if (auto r = bump("total"); !r) return r;
  auto z = v.get("z");
  if (!z) return z.err();
  if (*z)
    v.erase("z");
  else
    v.put("z", "1");
  return {};
}

}  // namespace varve_test
