// The library's read side: the exactly-once view "loans" (member -> the
// books they have, by stream), and an at-least-once notifier that writes one line per
// loan to a file, skipping what it wrote before a restart.
#pragma once

#include <cstdio>
#include <fstream>
#include <memory>
#include <varve/projections/json_view.hpp>
#include <vector>

#include "book.hpp"

namespace library {

inline varve::projection_spec loans_view() {
  varve::projection_spec spec;
  spec.name = "loans";
  spec.filter.categories = {"book"};
  spec.handle = [](const varve::delivered_event& d,
                   varve::view_batch& view) -> varve::result<void> {
    auto e = varve::decode_event<book>(d.event);
    if (!e) return varve::error{varve::errc::corruption, "a book event does not decode"};
    if (std::holds_alternative<book_added>(*e)) return {};
    const bool lent = std::holds_alternative<book_lent>(*e);
    const auto& member = lent ? std::get<book_lent>(*e).member : std::get<book_returned>(*e).member;
    auto held = varve::get_json<std::vector<std::string>>(view, member);
    if (!held) return held.err();
    auto list = held->value_or(std::vector<std::string>{});
    if (lent)
      list.emplace_back(d.stream);
    else
      std::erase(list, std::string(d.stream));
    return varve::put_json(view, member, list);
  };
  return spec;
}

inline varve::projection_spec notifier(const std::string& path) {
  varve::projection_spec spec;
  spec.name = "notifier";
  spec.mode = varve::delivery::at_least_once;
  spec.filter.event_types = {"book_lent"};
  auto written = std::make_shared<varve::global_position>(0);
  std::ifstream in(path);
  for (varve::global_position p; in >> p; in.ignore(1 << 20, '\n'))
    *written = std::max(*written, p);
  spec.handle = [written, path](const varve::delivered_event& d,
                                varve::view_batch&) -> varve::result<void> {
    if (d.event.position <= *written) return {};  // sent before a restart
    auto e = varve::decode_event<book>(d.event);
    if (!e) return varve::error{varve::errc::corruption, "a book event does not decode"};
    std::ofstream out(path, std::ios::app);
    out << d.event.position << " to " << std::get<book_lent>(*e).member << ": enjoy " << d.stream
        << "\n";
    if (!out.flush()) return varve::error{varve::errc::io_error, "cannot write " + path};
    *written = d.event.position;
    return {};
  };
  return spec;
}

}  // namespace library
