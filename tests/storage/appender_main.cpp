// varve_test_appender: appends events to a store from another process, for
// the multi-process tests.
//
//   varve_test_appender [--key-file <file>] <dir> <stream> <count> [exact-start]
//
// Opens the store in <dir> (default options, no fsync; encrypted with the
// master key in <file> when given), appends <count>
// single events of type "appended" with payload "<pid>:<i>" to <stream>, each
// with expected version exact(exact-start + i) when exact-start is given, else
// any, and prints the position of each on its own line. Exits 0; on a failure
// prints the error on stderr and exits 1 (2 for bad arguments). The store is
// held in a global, as some programs do: it closes after main returns, with
// the other statics.
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "varve/storage/event_store.hpp"

namespace {

std::unique_ptr<varve::event_store> held;

std::optional<std::uint64_t> parse_number(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  std::string key_file;
  if (argc >= 3 && std::string_view(argv[1]) == "--key-file") {
    key_file = argv[2];
    argv[2] = argv[0];
    argv += 2;
    argc -= 2;
  }
  if (argc != 4 && argc != 5) {
    std::cerr << "usage: " << argv[0]
              << " [--key-file <file>] <dir> <stream> <count> [exact-start]\n";
    return 2;
  }
  const std::string stream = argv[2];
  const auto count = parse_number(argv[3]);
  const auto exact_start = argc == 5 ? parse_number(argv[4]) : std::optional<std::uint64_t>(0);
  if (!count || !exact_start) {
    std::cerr << "count and exact-start must be non-negative integers\n";
    return 2;
  }

  varve::options opts;
  opts.directory = argv[1];
  opts.sync = varve::durability::no_sync;
  opts.key_file = key_file;
  auto opened = varve::event_store::open(opts);
  if (!opened) {
    std::cerr << "open " << argv[1] << ": " << opened.err().to_string() << "\n";
    return 1;
  }
  held = std::move(*opened);
  auto* store = &held;

  const std::string pid = std::to_string(::getpid());
  for (std::uint64_t i = 0; i < *count; ++i) {
    varve::new_event event;
    event.type = "appended";
    event.payload = pid + ":" + std::to_string(i);
    const auto expected = argc == 5 ? varve::expected_version::exact(*exact_start + i)
                                    : varve::expected_version::any();
    auto r = (*store)->append(stream, expected, {&event, 1});
    if (!r) {
      std::cerr << "append " << i << " to " << stream << " (" << expected.to_string()
                << "): " << r.err().to_string() << "\n";
      std::fflush(stdout);
      return 1;
    }
    std::printf("%llu\n", static_cast<unsigned long long>(r->first_position));
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}
