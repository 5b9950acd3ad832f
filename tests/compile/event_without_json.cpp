// Compiled twice by tests/CMakeLists.txt: as it is, it must compile; with
// VARVE_EVENT_WITHOUT_JSON, an event type lacks its JSON form and the build
// must fail with Varve's own static_assert message, not pages of errors
// from inside nlohmann or CAF.
#include <cstdint>
#include <string_view>
#include <variant>
#include <varve/actors/aggregate.hpp>

namespace app {

struct started {
  static constexpr std::string_view type_name = "started";
  std::int64_t at = 0;
};
VARVE_JSON(started, at)
struct stopped {
  static constexpr std::string_view type_name = "stopped";
};
#ifndef VARVE_EVENT_WITHOUT_JSON
VARVE_JSON(stopped)
#endif

struct start {};

struct machine {
  static constexpr std::string_view category = "machine";
  struct state {};
  using event = std::variant<started, stopped>;
  using command = start;
  static void apply(state&, const event&) {}
  static varve::decision<event> decide(const state&, const command&) {
    return std::vector<event>{started{1}};
  }
};

}  // namespace app

int main() {
  std::string bytes;
  return varve::json_codec<app::machine::event>::encode(app::started{1}, bytes) ? 0 : 1;
}
