// Compiled three times by tests/CMakeLists.txt: as it is, it must compile;
// with VARVE_EVENT_WITHOUT_JSON, an event type lacks its JSON form, and with
// VARVE_EVENT_NAMES_CLASH two event types have one stored name: the build
// must fail with Varve's own static_assert message, not pages of errors
// from inside nlohmann or CAF (or, for the clash, not at all, while the
// second type's events would read back as the first's).
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
#ifdef VARVE_EVENT_NAMES_CLASH
  static constexpr std::string_view type_name = "started";
#else
  static constexpr std::string_view type_name = "stopped";
#endif
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
