#include "event_json.hpp"

#include <algorithm>
#include <iterator>

#include "encoding.hpp"

namespace varvectl {

namespace {

varve::error bad(std::string message) {
  return varve::error{varve::errc::invalid_argument, std::move(message)};
}

}  // namespace

parsed_json parse_json(std::string_view text, int max_depth) {
  // nlohmann's parser keeps its own stack (it does not recurse); the callback
  // sees each array and object open with the number of those around it, and
  // from the first one past the limit on, nothing is kept.
  parsed_json out;
  const json::parser_callback_t guard = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::array_start || event == json::parse_event_t::object_start) &&
        depth >= max_depth)
      out.too_deep = true;
    return !out.too_deep;
  };
  try {
    json value = json::parse(text.begin(), text.end(), guard, false);
    if (!out.too_deep && !value.is_discarded()) out.value = std::move(value);
  } catch (const json::exception&) {
    // allow_exceptions = false: not expected; the text is refused all the same
  }
  return out;
}

std::optional<json> bytes_as_json(std::string_view bytes, bool exact) {
  if (bytes.empty()) return std::nullopt;
  auto parsed = parse_json(bytes);
  if (!parsed.value) return std::nullopt;
  if (exact && (parsed.value->is_null() || parsed.value->dump() != bytes)) return std::nullopt;
  return std::move(parsed.value);
}

std::string json_text(const json& value) {
  const std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  // Valid UTF-8 now: DEL is the byte 0x7F, a C1 control the bytes C2 80..C2 9F,
  // a bidirectional control D8 9C or E2 80/81 xx; all occur only inside
  // strings, where \uXXXX means the same.
  std::string out;
  out.reserve(text.size());
  static constexpr char hex[] = "0123456789abcdef";
  auto byte = [&](std::size_t i) {
    return static_cast<unsigned>(static_cast<unsigned char>(text[i]));
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const unsigned c = byte(i);
    unsigned code = 0x10000;  // none
    if (c == 0x7F) {
      code = c;
    } else if (c == 0xC2 && i + 1 < text.size() && byte(i + 1) <= 0x9F) {
      code = byte(++i);
    } else if (c == 0xD8 && i + 1 < text.size() && byte(i + 1) == 0x9C) {
      code = 0x061C;
      ++i;
    } else if (c == 0xE2 && i + 2 < text.size()) {
      const unsigned cp = ((c & 0x0F) << 12) | ((byte(i + 1) & 0x3F) << 6) | (byte(i + 2) & 0x3F);
      if (bidi_control(cp)) {
        code = cp;
        i += 2;
      }
    }
    if (code == 0x10000) {
      out += text[i];
    } else {
      out += "\\u";
      out += hex[code >> 12];
      out += hex[(code >> 8) & 0xF];
      out += hex[(code >> 4) & 0xF];
      out += hex[code & 0xF];
    }
  }
  return out;
}

void put_bytes(json& obj, const std::string& field, std::string_view bytes) {
  if (bytes.empty()) {
    obj[field] = nullptr;
  } else if (auto value = bytes_as_json(bytes, true)) {
    obj[field] = std::move(*value);
  } else {
    obj[field + "_base64"] = base64_encode(bytes);
  }
}

varve::result<std::string> get_bytes(const json& obj, const std::string& field) {
  const auto plain = obj.find(field);
  const auto encoded = obj.find(field + "_base64");
  if (encoded != obj.end()) {
    if (plain != obj.end()) return bad("both '" + field + "' and '" + field + "_base64' given");
    if (!encoded->is_string()) return bad("'" + field + "_base64' is not a string");
    auto decoded = base64_decode(encoded->get_ref<const std::string&>());
    if (!decoded) return bad("'" + field + "_base64' is not valid base64");
    return std::move(*decoded);
  }
  if (plain == obj.end() || plain->is_null()) return std::string();
  return plain->dump();
}

varve::result<void> check_tags(const std::vector<std::string>& tags) {
  if (tags.size() > varve::max_tags)
    return bad(std::to_string(tags.size()) + " tags, over the limit of " +
               std::to_string(varve::max_tags));
  for (std::size_t i = 0; i < tags.size(); ++i) {
    const std::string& t = tags[i];
    if (t.empty()) return bad("tag " + std::to_string(i + 1) + " is empty");
    if (t.size() > varve::max_tag_bytes)
      return bad("tag " + std::to_string(i + 1) + " is " + std::to_string(t.size()) +
                 " bytes, over the limit of " + std::to_string(varve::max_tag_bytes));
    if (!valid_utf8(t)) return bad("tag " + std::to_string(i + 1) + " is not valid UTF-8");
    if (std::find(tags.begin(), tags.begin() + static_cast<std::ptrdiff_t>(i), t) !=
        tags.begin() + static_cast<std::ptrdiff_t>(i))
      return bad("tag '" + t + "' is given twice");
  }
  return {};
}

json event_to_json(const varve::recorded_event& e) {
  json j;
  j["position"] = e.position;
  j["stream"] = e.stream;
  j["version"] = e.version;
  if (valid_utf8(e.type)) {
    j["type"] = e.type;
  } else {
    // A readable copy, bad bytes replaced by U+FFFD; the exact bytes in base64.
    j["type"] = json::parse(json(e.type).dump(-1, ' ', false, json::error_handler_t::replace));
    j["type_base64"] = base64_encode(e.type);
  }
  j["id"] = e.id.to_string();
  j["time"] = format_time(e.time);
  j["shredded"] = e.shredded;
  if (!e.tags.empty()) j["tags"] = e.tags;
  if (e.shredded) {
    j["metadata"] = nullptr;
  } else {
    put_bytes(j, "metadata", e.metadata);
    put_bytes(j, "data", e.payload);
  }
  return j;
}

namespace {

varve::result<std::uint64_t> get_unsigned(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end()) return bad(std::string("'") + field + "' is missing");
  if (!it->is_number_unsigned()) return bad(std::string("'") + field + "' is not a number >= 0");
  return it->get<std::uint64_t>();
}

varve::result<std::string> get_string(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end()) return bad(std::string("'") + field + "' is missing");
  if (!it->is_string()) return bad(std::string("'") + field + "' is not a string");
  return it->get<std::string>();
}

/// The type: "type_base64" decoded when given ("type" is then only a
/// readable copy), else "type".
varve::result<std::string> get_type(const json& obj) {
  if (auto it = obj.find("type_base64"); it != obj.end()) {
    if (!it->is_string()) return bad("'type_base64' is not a string");
    auto decoded = base64_decode(it->get_ref<const std::string&>());
    if (!decoded) return bad("'type_base64' is not valid base64");
    return std::move(*decoded);
  }
  return get_string(obj, "type");
}

/// "tags": an array of strings the store would take; absent or null: none.
varve::result<std::vector<std::string>> get_tags(const json& obj) {
  std::vector<std::string> out;
  auto it = obj.find("tags");
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return bad("'tags' is not an array of strings");
  for (const auto& t : *it) {
    if (!t.is_string()) return bad("'tags' holds " + std::string(t.type_name()) + ", not a string");
    out.push_back(t.get<std::string>());
  }
  if (auto ok = check_tags(out); !ok) return bad("'tags': " + ok.err().message());
  return out;
}

varve::result<parsed_json> parse_event_line(std::string_view line) {
  // The event object holds its data and metadata one level down.
  auto parsed = parse_json(line, max_json_depth + 1);
  if (parsed.too_deep)
    return bad("a value nested deeper than " + std::to_string(max_json_depth) +
               " levels (varvectl's limit for data and metadata)");
  if (!parsed.value) return bad("not JSON");
  return parsed;
}

}  // namespace

varve::result<varve::new_event> new_event_from_json(const json& obj) {
  if (!obj.is_object()) return bad("not a JSON object");
  static constexpr std::string_view known[] = {
      "type",     "type_base64", "id",      "data", "data_base64", "metadata", "metadata_base64",
      "position", "stream",      "version", "time", "shredded",    "tags"};
  for (const auto& [key, value] : obj.items()) {
    if (std::find(std::begin(known), std::end(known), key) == std::end(known))
      return bad("unknown field '" + key +
                 "' (an event has type, data or data_base64, metadata or metadata_base64, id, "
                 "tags)");
  }
  if (auto it = obj.find("shredded"); it != obj.end() && *it != false)
    return bad("'shredded' is not false (a shredded event cannot be appended)");
  varve::new_event out;
  auto type = get_type(obj);
  if (!type) return std::move(type).err();
  out.type = std::move(*type);
  if (auto it = obj.find("id"); it != obj.end() && !it->is_null()) {
    if (!it->is_string()) return bad("'id' is not a string");
    const auto& text = it->get_ref<const std::string&>();
    out.id = varve::event_id::parse(text);
    if (!out.id) return bad("'id' is not a UUID: '" + text + "'");
  }
  auto metadata = get_bytes(obj, "metadata");
  if (!metadata) return std::move(metadata).err();
  auto data = get_bytes(obj, "data");
  if (!data) return std::move(data).err();
  auto tags = get_tags(obj);
  if (!tags) return std::move(tags).err();
  out.metadata = std::move(*metadata);
  out.payload = std::move(*data);
  out.tags = std::move(*tags);
  return out;
}

varve::result<varve::new_event> new_event_from_line(std::string_view line) {
  auto parsed = parse_event_line(line);
  if (!parsed) return std::move(parsed).err();
  return new_event_from_json(*parsed->value);
}

varve::result<parsed_event> event_from_json(const json& obj) {
  if (!obj.is_object()) return bad("not a JSON object");
  parsed_event out;
  auto position = get_unsigned(obj, "position");
  if (!position) return std::move(position).err();
  out.position = *position;
  auto version = get_unsigned(obj, "version");
  if (!version) return std::move(version).err();
  out.version = *version;
  auto stream = get_string(obj, "stream");
  if (!stream) return std::move(stream).err();
  out.stream = std::move(*stream);

  auto type = get_type(obj);
  if (!type) return std::move(type).err();
  out.event.type = std::move(*type);

  auto id_text = get_string(obj, "id");
  if (!id_text) return std::move(id_text).err();
  out.event.id = varve::event_id::parse(*id_text);
  if (!out.event.id) return bad("'id' is not a UUID: '" + *id_text + "'");

  auto time_text = get_string(obj, "time");
  if (!time_text) return std::move(time_text).err();
  out.event.time = parse_time(*time_text);
  if (!out.event.time)
    return bad("'time' is not an ISO-8601 UTC time (YYYY-MM-DDTHH:MM:SS.ffffffZ): '" + *time_text +
               "'");

  if (auto it = obj.find("shredded"); it != obj.end()) {
    if (!it->is_boolean()) return bad("'shredded' is not true or false");
    out.shredded = it->get<bool>();
  }
  auto metadata = get_bytes(obj, "metadata");
  if (!metadata) return std::move(metadata).err();
  auto data = get_bytes(obj, "data");
  if (!data) return std::move(data).err();
  if (out.shredded && (!metadata->empty() || !data->empty()))
    return bad("a shredded event carries no data or metadata");
  auto tags = get_tags(obj);
  if (!tags) return std::move(tags).err();
  out.event.metadata = std::move(*metadata);
  out.event.payload = std::move(*data);
  out.event.tags = std::move(*tags);
  return out;
}

varve::result<parsed_event> event_from_line(std::string_view line) {
  auto parsed = parse_event_line(line);
  if (!parsed) return std::move(parsed).err();
  return event_from_json(*parsed->value);
}

}  // namespace varvectl
