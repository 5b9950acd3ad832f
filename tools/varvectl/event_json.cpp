#include "event_json.hpp"

#include "encoding.hpp"

namespace varvectl {

namespace {

constexpr int max_depth = 256;

/// Whether the JSON-ish text nests arrays and objects deeper than `limit`
/// (serialising is recursive: keep it off deep inputs).
bool nests_deeper_than(std::string_view s, int limit) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

varve::error bad(std::string message) {
  return varve::error{varve::errc::invalid_argument, std::move(message)};
}

}  // namespace

std::optional<json> bytes_as_json(std::string_view bytes, bool exact) {
  if (bytes.empty() || nests_deeper_than(bytes, max_depth)) return std::nullopt;
  try {
    json value = json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (value.is_discarded()) return std::nullopt;
    if (exact && (value.is_null() || value.dump() != bytes)) return std::nullopt;
    return value;
  } catch (const json::exception&) {
    return std::nullopt;
  }
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

}  // namespace

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

  if (obj.contains("type_base64")) {
    // "type" is then only a readable copy.
    if (!obj["type_base64"].is_string()) return bad("'type_base64' is not a string");
    auto decoded = base64_decode(obj["type_base64"].get_ref<const std::string&>());
    if (!decoded) return bad("'type_base64' is not valid base64");
    out.event.type = std::move(*decoded);
  } else {
    auto type = get_string(obj, "type");
    if (!type) return std::move(type).err();
    out.event.type = std::move(*type);
  }

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
  out.event.metadata = std::move(*metadata);
  out.event.payload = std::move(*data);
  return out;
}

}  // namespace varvectl
