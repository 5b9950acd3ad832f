// Comparing encoded events, and the messages of the aggregate checks.
#include <algorithm>
#include <cstdio>

#include "varve/testkit/aggregate_test.hpp"
#include "varve/testkit/events.hpp"

namespace varve::testkit {

namespace {

/// Bytes shown of a payload, in hex, starting a little before `from`.
constexpr std::size_t shown_bytes = 16;

std::string hex(std::string_view bytes, std::size_t from) {
  const std::size_t start = from > 4 ? from - 4 : 0;
  std::string out = start > 0 ? ".. " : "";
  const std::size_t end = std::min(bytes.size(), start + shown_bytes);
  for (std::size_t i = start; i < end; ++i) {
    char b[4];
    std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(bytes[i]));
    if (i > start) out += ' ';
    out += b;
  }
  if (end < bytes.size()) out += " ..";
  if (bytes.empty()) out = "no bytes";
  return out;
}

std::string in_quotes(std::string_view s) {
  return "'" + std::string(s) + "'";
}

/// "1 byte", "2 bytes".
std::string counted(std::size_t n, std::string_view word) {
  return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

/// How two events of one type differ: the first differing byte and both
/// payloads around it.
std::string payload_difference(const encoded_event& expected, const encoded_event& actual) {
  const auto mismatch = std::mismatch(expected.bytes.begin(), expected.bytes.end(),
                                      actual.bytes.begin(), actual.bytes.end());
  const auto at = static_cast<std::size_t>(mismatch.first - expected.bytes.begin());
  return in_quotes(expected.type) + " in both, the payloads differ at byte " + std::to_string(at) +
         " (expected " + counted(expected.bytes.size(), "byte") + ": " + hex(expected.bytes, at) +
         "; actual " + counted(actual.bytes.size(), "byte") + ": " + hex(actual.bytes, at) + ")";
}

}  // namespace

verdict compare_events(std::span<const encoded_event> expected,
                       std::span<const encoded_event> actual) {
  std::vector<std::string> differences;
  const std::size_t n = std::max(expected.size(), actual.size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::string at = "  event " + std::to_string(i) + ": ";
    if (i >= actual.size()) {
      differences.push_back(at + "expected " + in_quotes(expected[i].type) + ", missing");
    } else if (i >= expected.size()) {
      differences.push_back(at + "actual " + in_quotes(actual[i].type) + ", not expected");
    } else if (expected[i].type != actual[i].type) {
      differences.push_back(at + "expected " + in_quotes(expected[i].type) + ", actual " +
                            in_quotes(actual[i].type));
    } else if (expected[i].bytes != actual[i].bytes) {
      differences.push_back(at + payload_difference(expected[i], actual[i]));
    }
  }
  if (differences.empty()) return verdict::pass();
  std::string message = "the events differ: expected " + detail::describe_events(expected) +
                        ", actual " + detail::describe_events(actual);
  for (const auto& d : differences)
    message += "\n" + d;
  return verdict::fail(std::move(message));
}

namespace detail {

std::string describe_events(std::span<const encoded_event> events) {
  std::string out = counted(events.size(), "event");
  if (events.empty()) return out;
  out += " (";
  for (std::size_t i = 0; i < events.size(); ++i)
    out += (i ? ", " : "") + in_quotes(events[i].type);
  return out + ")";
}

std::string refused_instead(std::span<const encoded_event> expected, const error& refusal) {
  return "expected " + describe_events(expected) +
         ", but the command was refused: " + refusal.to_string();
}

std::string decided_instead(std::string_view expected_refusal,
                            std::span<const encoded_event> decided) {
  return "expected " + std::string(expected_refusal) + ", but the command was accepted with " +
         describe_events(decided);
}

}  // namespace detail

}  // namespace varve::testkit
