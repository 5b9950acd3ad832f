// JSON in rows of the store: cursor states and control requests. Another
// process (varvectl, another version of the application) may have written
// them in another shape, and messages that go into them may hold any bytes,
// so nothing here throws: readers check each value's kind before they take
// it, and writers replace bytes that are not UTF-8.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace varve::detail {

/// The kind of a JSON value with its article, for messages: "a number",
/// "an array", "an object", "a string".
inline std::string kind_of(const nlohmann::json& j) {
  const std::string kind = j.type_name();
  return (j.is_object() || j.is_array() ? "an " : "a ") + kind;
}

/// `j` as text; bytes of its strings that are not UTF-8 become U+FFFD
/// (nlohmann's default would throw).
inline std::string json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// At most `max` bytes of `text`, cut at a character boundary when `text`
/// is UTF-8, with "..." when cut: long values from a row stay short in
/// messages.
inline std::string excerpt(const std::string& text, std::size_t max = 64) {
  if (text.size() <= max) return text;
  std::size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
    --end;
  return text.substr(0, end) + "...";
}

}  // namespace varve::detail
