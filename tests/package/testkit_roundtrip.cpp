// A program of a project that tests its model with Varve::testkit and no test
// framework: given / when / then on a small aggregate (a check that must
// pass, one that must fail), and a projection run over given events in a
// temporary store. Prints "testkit roundtrip: ok" and exits 0 when every
// result is as expected; otherwise names the first wrong one and exits 1.
#include <charconv>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <varve/testkit/testkit.hpp>

namespace {

struct added {
  static constexpr std::string_view type_name = "added";
  long n = 0;
};
struct add {
  long n = 0;
};

/// added: the amount in decimal.
struct tally_codec {
  static std::string type_of(const added&) { return "added"; }
  static bool encode(const added& e, std::string& out) {
    out = std::to_string(e.n);
    return true;
  }
  static std::optional<added> decode(std::string_view type, std::string_view bytes) {
    long n = 0;
    if (type != "added") return std::nullopt;
    auto [end, ec] = std::from_chars(bytes.data(), bytes.data() + bytes.size(), n);
    if (ec != std::errc{} || end != bytes.data() + bytes.size()) return std::nullopt;
    return added{n};
  }
};

struct tally {
  static constexpr std::string_view category = "tally";
  struct state {
    long total = 0;
  };
  using event = added;
  using command = add;
  using codec = tally_codec;
  static void apply(state& s, const event& e) { s.total += e.n; }
  static varve::decision<event> decide(const state&, const command& c) {
    if (c.n <= 0) return varve::error{varve::errc::rejected, "not positive"};
    return std::vector<event>{added{c.n}};
  }
};

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "testkit roundtrip: FAILED: " << what << "\n";
    ++failures;
  }
}

}  // namespace

int main() {
  varve::testkit::aggregate_test<tally> t;
  auto accepted = t.given({added{2}}).when(add{3}).then_events({added{3}});
  check(accepted.ok(), "then_events: " + accepted.message());
  check(t.state().total == 5, "the state folds given and decided events");
  check(t.when(add{0}).then_rejected_with("not positive").ok(), "then_rejected_with");
  auto wrong = t.when(add{1}).then_events({added{2}});
  check(!wrong && wrong.message().find("payloads differ") != std::string::npos,
        "a wrong expectation must fail, saying why: '" + wrong.message() + "'");

  varve::projection_spec spec;
  spec.name = "totals";
  spec.handle = [](const varve::delivered_event& d, varve::view_batch& view) {
    auto e = tally_codec::decode(d.event.type, d.event.payload);
    auto current = view.get(d.stream);
    if (!e || !current) return varve::result<void>{varve::error{varve::errc::corruption, "?"}};
    view.put(d.stream, std::to_string((*current ? std::stol(**current) : 0) + e->n));
    return varve::result<void>{};
  };
  varve::testkit::projection_harness h(spec);
  h.given<tally>("tally-1", {added{2}, added{5}});
  auto live = h.run();
  check(live.ok(), "run: " + live.message());
  check(h.view("tally-1").value_or("none") == "7", "the view holds the sum");
  check(h.rebuilds_identically().ok(), "rebuilds_identically");

  if (failures) return 1;
  std::cout << "testkit roundtrip: ok\n";
  return 0;
}
