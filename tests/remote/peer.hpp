// What the remote tests and their peer process (peer.cpp) share: a counter
// aggregate, whose command crosses the wire (so it has an inspect overload
// and a type-id block after varve::remote's; its events and state are
// stored as JSON), and a counting projection.
#pragma once

#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <variant>
#include <varve/actors/aggregate.hpp>
#include <varve/projections/projection.hpp>
#include <varve/remote/type_ids.hpp>

namespace tally {

struct added {
  static constexpr std::string_view type_name = "added";
  std::int64_t n = 0;
};
VARVE_JSON(added, n)

struct add {
  std::int64_t n = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, add& x) {
  return f(caf::meta::type_name("tally::add"), x.n);
}

struct counter {
  static constexpr std::string_view category = "counter";
  static constexpr std::uint32_t snapshot_schema = 2;  // 2: JSON
  struct state {
    std::int64_t total = 0;
  };
  using event = std::variant<added>;
  using command = add;

  static void apply(state& s, const event& e) { s.total += std::get<added>(e).n; }
  static varve::decision<event> decide(const state&, const command& c) {
    if (c.n <= 0) return varve::error{varve::errc::rejected, "only positive amounts are added"};
    return std::vector<event>{added{c.n}};
  }
};

VARVE_JSON(counter::state, total)

/// Keeps one row per event (position -> stream:version) and a count per
/// stream: a duplicate or a lost event shows in the view.
inline varve::projection_spec counting(std::string name) {
  varve::projection_spec spec;
  spec.name = std::move(name);
  spec.batch_events = 1000;
  spec.handle = [](const varve::delivered_event& d,
                   varve::view_batch& view) -> varve::result<void> {
    char key[32];
    std::snprintf(key, sizeof key, "event/%020llu",
                  static_cast<unsigned long long>(d.event.position));
    view.put(key, std::string(d.stream) + ":" + std::to_string(d.event.version) + ":" +
                      std::string(d.event.payload));
    auto count = view.get("count/" + std::string(d.stream));
    if (!count) return count.err();
    const long n = *count ? std::stol(**count) : 0;
    view.put("count/" + std::string(d.stream), std::to_string(n + 1));
    return {};
  };
  return spec;
}

}  // namespace tally

CAF_BEGIN_TYPE_ID_BLOCK(varve_remote_test, caf::id_block::varve_remote::end)
CAF_ADD_TYPE_ID(varve_remote_test, (tally::add))
CAF_END_TYPE_ID_BLOCK(varve_remote_test)
