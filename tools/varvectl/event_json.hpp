// Events as JSON objects: what `read --json`, `tail --json` and `export`
// print and what `import` reads back, byte for byte.
//
//   {"position":1,"stream":"account-1","version":1,"type":"opened",
//    "id":"0190a1b2-...","time":"2024-05-01T12:34:56.123456Z","shredded":false,
//    "tags":["account:1"],"metadata":null,"data":{"owner":"ada"}}
//
// "tags" is there when the event has tags (in their stored order); an
// object without it (an export of a store without tags) has none.
//
// A payload (or metadata) is stored as `"data": <value>` when its bytes are a
// JSON text that serialises back to exactly those bytes (compact, keys in
// their order), nests at most max_json_depth deep and is not `null`; as
// `"data": null` when it is empty; and as `"data_base64": "..."` otherwise.
// A shredded event has "shredded": true, "metadata": null and no data. A
// type that is not UTF-8 gets "type_base64" beside a readable "type".
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "varve/storage/error.hpp"
#include "varve/storage/event.hpp"

namespace varvectl {

using json = nlohmann::ordered_json;

/// How deep JSON that varvectl did not write itself may nest arrays and
/// objects (`[[1]]` nests 2 deep): data and metadata given to `append` and
/// `import`, and stored payloads shown by read, read-all, tail and export.
/// Deeper values are refused as input and shown as base64 (serialising JSON
/// is recursive: a value nested 100,000 deep would overflow the stack).
inline constexpr int max_json_depth = 256;

/// What parse_json made of a text.
struct parsed_json {
  std::optional<json> value;  ///< the value; none when the text is refused
  bool too_deep = false;      ///< refused for nesting deeper than the limit
};

/// Parses a JSON text, refusing it (too_deep) as soon as arrays and objects
/// nest deeper than `max_depth`; nothing deeper is ever built. Syntax errors
/// give no value (and too_deep false).
parsed_json parse_json(std::string_view text, int max_depth = max_json_depth);

/// The bytes as a JSON value when they are a JSON text nested at most
/// max_json_depth deep that serialises back to exactly them (`exact`), or to
/// anything (`!exact`, for people); std::nullopt otherwise.
std::optional<json> bytes_as_json(std::string_view bytes, bool exact);

/// The value as one line of output: compact, bad UTF-8 replaced by U+FFFD,
/// and besides the C0 controls JSON escapes, DEL, the C1 controls
/// (U+0080..U+009F) and the bidirectional controls (see bidi_control)
/// escaped as `\uXXXX` too, so no control reaches a terminal.
std::string json_text(const json& value);

/// Puts `bytes` into `obj` as `field` (a JSON value, or null when empty) or
/// `<field>_base64` (see above).
void put_bytes(json& obj, const std::string& field, std::string_view bytes);

/// The bytes put_bytes stored: from `<field>_base64`, or `field` (null or
/// absent: empty; else the value's compact serialisation).
/// Errors: invalid_argument (bad base64, both forms given).
varve::result<std::string> get_bytes(const json& obj, const std::string& field);

/// Whether the store would take these tags: at most varve::max_tags, each
/// 1..varve::max_tag_bytes bytes of UTF-8, none twice. Errors:
/// invalid_argument saying which tag is wrong.
varve::result<void> check_tags(const std::vector<std::string>& tags);

/// The event as an object, in the field order shown above.
json event_to_json(const varve::recorded_event& e);

/// An event read back from event_to_json's form.
struct parsed_event {
  varve::global_position position = 0;
  std::string stream;
  varve::stream_version version = 0;
  bool shredded = false;
  varve::new_event event;  ///< type, payload, metadata, id, time and tags
};

/// Parses one object of event_to_json's form. Errors: invalid_argument,
/// naming the field that is missing or wrong.
varve::result<parsed_event> event_from_json(const json& obj);

/// Parses one object of what `append --events` reads: "type" (or
/// "type_base64"), "data" or "data_base64", "metadata" or "metadata_base64",
/// "id" and "tags" (an array of strings, see check_tags), each but the type
/// optional; "position", "stream", "version",
/// "time" and a false "shredded" (event_to_json's form) are allowed and
/// ignored, since the store assigns them. A JSON "data" or "metadata" is
/// stored as its compact serialisation. Errors: invalid_argument naming the
/// field that is missing, wrong or unknown.
varve::result<varve::new_event> new_event_from_json(const json& obj);

/// new_event_from_json for one line of text (data and metadata nested at
/// most max_json_depth deep). Errors: invalid_argument: not JSON, nested
/// too deep, or those of new_event_from_json.
varve::result<varve::new_event> new_event_from_line(std::string_view line);

/// Parses one line of an export (what `import` reads): a JSON object of
/// event_to_json's form whose data and metadata nest at most max_json_depth
/// deep. Errors: invalid_argument: not JSON, nested too deep, or those of
/// event_from_json.
varve::result<parsed_event> event_from_line(std::string_view line);

}  // namespace varvectl
