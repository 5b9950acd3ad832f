// A counter aggregate for the remote tests: its command crosses the wire, so
// it has a type-id block after varve::remote's.
#pragma once

#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include <cstdint>
#include <variant>
#include <varve/actors/aggregate.hpp>
#include <varve/remote/type_ids.hpp>

namespace tally {

struct added {
  static constexpr std::string_view type_name = "added";
  std::int64_t n = 0;
};

struct add {
  std::int64_t n = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, added& x) {
  return f(caf::meta::type_name("tally::added"), x.n);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, add& x) {
  return f(caf::meta::type_name("tally::add"), x.n);
}

struct counter {
  static constexpr std::string_view category = "counter";
  static constexpr std::uint32_t snapshot_schema = 1;
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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, counter::state& x) {
  return f(caf::meta::type_name("tally::state"), x.total);
}

}  // namespace tally

CAF_BEGIN_TYPE_ID_BLOCK(varve_remote_test, caf::id_block::varve_remote::end)
CAF_ADD_TYPE_ID(varve_remote_test, (tally::add))
CAF_END_TYPE_ID_BLOCK(varve_remote_test)
