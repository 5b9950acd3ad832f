// The aggregate of the testkit's own tests: a counter with a limit, and a
// codec of its own (decimal text), so that it needs no inspect overloads and
// its codec can refuse events on purpose.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <varve/actors/aggregate.hpp>

namespace counter_model {

struct added {
  static constexpr std::string_view type_name = "added";
  std::int64_t n = 0;
};
struct cleared {
  static constexpr std::string_view type_name = "cleared";
};
/// Encodes, but its codec does not decode it.
struct opaque {
  static constexpr std::string_view type_name = "opaque";
};
/// Its codec does not encode it.
struct poison {
  static constexpr std::string_view type_name = "poison";
};

struct add {
  std::int64_t n = 0;
};
struct clear {};
struct emit_poison {};
struct explode {};

struct counter_codec;

struct counter {
  static constexpr std::string_view category = "counter";
  static constexpr std::int64_t limit = 100;
  struct state {
    std::int64_t total = 0;
    int clears = 0;
  };
  using event = std::variant<added, cleared, opaque, poison>;
  using command = std::variant<add, clear, emit_poison, explode>;
  using codec = counter_codec;

  static void apply(state& s, const event& e) {
    if (auto* a = std::get_if<added>(&e)) s.total += a->n;
    if (std::holds_alternative<cleared>(e)) {
      s.total = 0;
      ++s.clears;
    }
  }

  static varve::decision<event> decide(const state& s, const command& c) {
    using varve::errc;
    if (auto* a = std::get_if<add>(&c)) {
      if (a->n <= 0) return varve::error{errc::rejected, "an amount must be positive"};
      if (s.total + a->n > limit) return varve::error{errc::rejected, "over the limit"};
      if (a->n == 7) return std::vector<event>{added{3}, added{4}};  // two events
      return std::vector<event>{added{a->n}};
    }
    if (std::holds_alternative<clear>(c)) {
      if (s.total == 0) return std::vector<event>{};  // nothing to do
      return std::vector<event>{cleared{}};
    }
    if (std::holds_alternative<emit_poison>(c)) return std::vector<event>{added{1}, poison{}};
    throw std::logic_error("decide exploded");
  }
};

/// added: the amount in decimal; cleared and opaque: no bytes; poison: refused.
struct counter_codec {
  static std::string type_of(const counter::event& e) {
    return std::visit([](const auto& x) { return std::string(x.type_name); }, e);
  }
  static bool encode(const counter::event& e, std::string& out) {
    if (std::holds_alternative<poison>(e)) return false;
    out = std::holds_alternative<added>(e) ? std::to_string(std::get<added>(e).n) : "";
    return true;
  }
  static std::optional<counter::event> decode(std::string_view type, std::string_view bytes) {
    if (type == cleared::type_name && bytes.empty()) return cleared{};
    if (type != added::type_name) return std::nullopt;
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(bytes.data(), bytes.data() + bytes.size(), n);
    if (ec != std::errc{} || end != bytes.data() + bytes.size()) return std::nullopt;
    return added{n};
  }
};

}  // namespace counter_model
