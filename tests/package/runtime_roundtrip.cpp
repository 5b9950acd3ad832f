// A program of a project that uses Varve::runtime, as the README shows it:
// an aggregate with JSON events and commands without CAF inspect overloads,
// an exactly-once JSON view, execute, wait_for and the ordered shutdown, in
// a fresh temporary directory. Prints "runtime roundtrip: ok" and exits 0
// when every result is as expected; otherwise names the first wrong one and
// exits 1.
#include <stdlib.h>

#include <filesystem>
#include <iostream>
#include <string>
#include <varve/runtime.hpp>

namespace tally_app {

struct counted {
  static constexpr std::string_view type_name = "counted";
  int by = 0;
};
VARVE_JSON(counted, by)
struct count {
  int by = 1;
};

struct tally {
  static constexpr std::string_view category = "tally";
  struct state {
    int total = 0;
  };
  using event = counted;
  using command = count;
  static void apply(state& s, const event& e) { s.total += e.by; }
  static varve::decision<event> decide(const state& s, const command& c) {
    if (s.total + c.by > 10) return varve::error{varve::errc::rejected, "over ten"};
    return std::vector<event>{counted{c.by}};
  }
};

varve::projection_spec totals() {
  varve::projection_spec spec{.name = "totals"};
  spec.handle = [](const varve::delivered_event& d, varve::view_batch& view) {
    auto total = varve::get_json<int>(view, d.stream);
    if (!total) return varve::result<void>(total.err());
    return varve::put_json(view, d.stream,
                           total->value_or(0) + varve::decode_event<tally>(d.event)->by);
  };
  return spec;
}

}  // namespace tally_app

int main() {
  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) {
      std::cerr << "runtime roundtrip: FAILED: " << what << "\n";
      ++failures;
    }
  };
  std::string pattern = (std::filesystem::temp_directory_path() / "varve-rt-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) return 1;
  const std::filesystem::path dir = pattern;
  {
    auto rt = varve::runtime::open(
        {.store = {.directory = dir / "store"}, .projections = {tally_app::totals()}});
    check(rt.ok(), "open");
    if (rt) {
      auto a = rt->execute<tally_app::tally>("t", tally_app::count{4});
      auto b = rt->execute<tally_app::tally>("t", tally_app::count{5});
      auto over = rt->execute<tally_app::tally>("t", tally_app::count{2});
      check(a && b && b->version == 2, "two commands accepted, version 2");
      check(!over && over.err().code() == varve::errc::rejected, "the third refused");
      check(b && rt->wait_for("totals", b->position).ok(), "wait_for");
      auto total = rt->view<int>("totals", "tally-t");
      check(total && *total && **total == 9, "the view shows 9");
    }
  }
  std::filesystem::remove_all(dir);
  if (failures) return 1;
  std::cout << "runtime roundtrip: ok\n";
}
