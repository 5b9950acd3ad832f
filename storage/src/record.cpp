#include "record.hpp"

#include <isa-l/crc.h>

#if VARVE_HAVE_ISAL_CRC32_ISCSI_01 && defined(__x86_64__)
extern "C" unsigned int crc32_iscsi_01(unsigned char* buffer, int len, unsigned int init_crc);
#endif

#include <cstring>
#include <string>

#include "bytes.hpp"

namespace varve::record {

namespace {

error corrupt(global_position position, std::string_view what) {
  return {errc::corruption,
          "event record at position " + std::to_string(position) + ": " + std::string(what)};
}

bool known_format(std::uint8_t format) {
  return format == format_v1 || format == format_v2 || format == format_v3;
}

using crc_function = unsigned int (*)(unsigned char*, int, unsigned int);

/// The CRC32C for records under 256 bytes, most of the log. ISA-L's
/// crc32_iscsi picks its AVX-512 variant where the CPU has it, which takes
/// twice as long as its crc32-instruction variant below 256 bytes (150
/// bytes: 20 ns against 10.5 ns on this project's machines) and is faster
/// above. The variant is in ISA-L's x86-64 builds (the build checks) but
/// not in its header.
crc_function short_crc() {
#if VARVE_HAVE_ISAL_CRC32_ISCSI_01 && defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul")) return crc32_iscsi_01;
#endif
  return crc32_iscsi;
}

}  // namespace

std::uint32_t checksum(global_position position, std::string_view bytes) {
  // ISA-L's crc32_iscsi is CRC32C without the final inversion. The position
  // goes in after the CRC, not before it: one call over the record costs
  // about a third of two chained calls for a 170-byte record.
  static const crc_function crc_short = short_crc();
  auto* in = reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data()));
  const int size = static_cast<int>(bytes.size());
  const std::uint32_t crc =
      (bytes.size() < 256 ? crc_short(in, size, 0xFFFFFFFFu) : crc32_iscsi(in, size, 0xFFFFFFFFu)) ^
      0xFFFFFFFFu;
  return crc ^ static_cast<std::uint32_t>(position);
}

void encode_tags(const std::vector<std::string>& tags, std::string& out) {
  out.clear();
  for (const std::string& t : tags) {
    out.push_back(static_cast<char>(static_cast<std::uint8_t>(t.size())));
    out.append(t);
  }
}

namespace {

/// The milliseconds of a UUIDv7 id (its first 48 bits, big-endian); the
/// time of an event is stored as a difference from it.
std::int64_t id_millis(const event_id& id) {
  return static_cast<std::int64_t>(
      bytes::get_be<std::uint64_t>(reinterpret_cast<const char*>(id.bytes.data())) >> 16);
}

std::uint64_t time_delta(const header& h) {
  // Wrapping arithmetic: any id and time give a delta that reads back.
  return bytes::zigzag(static_cast<std::int64_t>(
      static_cast<std::uint64_t>(h.time) - static_cast<std::uint64_t>(id_millis(h.id)) * 1000u));
}

std::uint64_t back_of(global_position position, const header& h) {
  return h.previous_position == 0 ? 0 : position - h.previous_position;
}

}  // namespace

std::size_t head_size(global_position position, const header& h, std::size_t type,
                      std::size_t metadata, std::size_t payload) {
  using bytes::varint_size;
  return 3 + varint_size(type) + varint_size(metadata) + varint_size(payload) +
         varint_size(h.tags.size()) + varint_size(h.stream_id) + varint_size(h.version) +
         varint_size(back_of(position, h)) + 16 + varint_size(time_delta(h));
}

char* encode_head(char* out, global_position position, const header& h, std::uint8_t flags,
                  std::string_view type, std::size_t metadata_size, std::size_t payload_size) {
  using bytes::put_varint;
  char* p = out;
  *p++ = static_cast<char>(format_v3);
  *p++ = static_cast<char>(flags);
  *p++ = static_cast<char>(static_cast<std::uint8_t>(h.tag_count));
  p = put_varint(p, type.size());
  p = put_varint(p, metadata_size);
  p = put_varint(p, payload_size);
  p = put_varint(p, h.tags.size());
  p = put_varint(p, h.stream_id);
  p = put_varint(p, h.version);
  p = put_varint(p, back_of(position, h));
  std::memcpy(p, h.id.bytes.data(), 16);
  p = put_varint(p + 16, time_delta(h));
  std::memcpy(p, type.data(), type.size());
  p += type.size();
  if (!h.tags.empty()) std::memcpy(p, h.tags.data(), h.tags.size());
  return p + h.tags.size();
}

void encode(char* out, global_position position, const header& h, std::string_view type,
            std::string_view metadata, std::string_view payload) {
  char* p = encode_head(out, position, h, 0, type, metadata.size(), payload.size());
  if (!metadata.empty()) std::memcpy(p, metadata.data(), metadata.size());
  p += metadata.size();
  if (!payload.empty()) std::memcpy(p, payload.data(), payload.size());
  p += payload.size();
  bytes::put_le<std::uint32_t>(p, checksum(position, {out, static_cast<std::size_t>(p - out)}));
}

void encode_shredded(char* out, global_position position, const header& h, std::string_view type) {
  char* p = encode_head(out, position, h, flag_shredded, type, 0, 0);
  bytes::put_le<std::uint32_t>(p, checksum(position, {out, static_cast<std::size_t>(p - out)}));
}

namespace {

/// The fields of a record's header, of any format.
struct fields {
  std::uint8_t format = 0;
  std::uint8_t flags = 0;
  std::size_t tag_count = 0;
  std::uint64_t type_len = 0, meta_len = 0, payload_len = 0, tags_len = 0;
  header links;
  const char* id = nullptr;
  std::uint64_t time_delta = 0;  // format 3
  std::size_t head_len = 0;      // bytes before the type
};

/// Reads the header of a format 1 or 2 record (60 bytes).
const char* parse_fixed(std::string_view bytes, fields& f) {
  using namespace bytes;
  if (bytes.size() < header_size) return "shorter than its header";
  const char* in = bytes.data();
  f.flags = static_cast<std::uint8_t>(in[1]);
  f.type_len = get_le<std::uint16_t>(in + 2);
  f.meta_len = get_le<std::uint32_t>(in + 4);
  f.payload_len = get_le<std::uint32_t>(in + 8);
  f.links.stream_id = get_le<std::uint64_t>(in + 12);
  f.links.version = get_le<std::uint64_t>(in + 20);
  f.links.previous_position = get_le<std::uint64_t>(in + 28);
  f.id = in + 36;
  f.links.time = get_le<std::int64_t>(in + 52);
  f.head_len = header_size;
  return nullptr;
}

/// Reads the header of a format 3 record; `links_only` stops after the
/// stream link.
const char* parse_v3(global_position position, std::string_view bytes, fields& f, bool links_only) {
  using bytes::get_varint;
  const char* in = bytes.data();
  const char* end = in + bytes.size();
  if (bytes.size() < 3) return "shorter than its header";
  f.flags = static_cast<std::uint8_t>(in[1]);
  f.tag_count = static_cast<std::uint8_t>(in[2]);
  const char* p = in + 3;
  std::uint64_t back = 0;
  if (!(p = get_varint(p, end, f.type_len)) || !(p = get_varint(p, end, f.meta_len)) ||
      !(p = get_varint(p, end, f.payload_len)) || !(p = get_varint(p, end, f.tags_len)) ||
      !(p = get_varint(p, end, f.links.stream_id)) || !(p = get_varint(p, end, f.links.version)) ||
      !(p = get_varint(p, end, back)))
    return "shorter than its header";
  if (back > position) return "impossible stream link";
  f.links.previous_position = back == 0 ? 0 : position - back;
  if (back != 0 && f.links.previous_position == 0) return "impossible stream link";
  if (links_only) return nullptr;
  if (end - p < 16) return "shorter than its header";
  f.id = p;
  if (!(p = get_varint(p + 16, end, f.time_delta))) return "shorter than its header";
  f.head_len = static_cast<std::size_t>(p - in);
  return nullptr;
}

/// The header of any known format, and the checks of its stream link;
/// nullptr when the link is possible.
const char* parse(global_position position, std::string_view bytes, fields& f, bool links_only) {
  if (bytes.empty()) return "shorter than its header";
  f.format = static_cast<std::uint8_t>(bytes[0]);
  const char* what = nullptr;
  if (f.format == format_v3)
    what = parse_v3(position, bytes, f, links_only);
  else if (f.format == format_v1 || f.format == format_v2)
    what = parse_fixed(bytes, f);
  else
    return "unknown record format";
  if (what) return what;
  const header& h = f.links;
  if (h.stream_id == 0 || h.version == 0 || h.previous_position >= position ||
      (h.version == 1) != (h.previous_position == 0))
    return "impossible stream link";
  return nullptr;
}

error link_error(global_position position, std::string_view bytes, const char* what) {
  if (!bytes.empty() && !known_format(static_cast<std::uint8_t>(bytes[0])))
    return corrupt(position,
                   "unknown record format " + std::to_string(static_cast<std::uint8_t>(bytes[0])));
  return corrupt(position, what);
}

/// Checks a tag section of `count` tags; nullptr when it is well formed.
const char* check_tags(std::string_view tags, std::size_t count) {
  if (count > max_tags) return "too many tags";
  std::size_t seen = 0;
  for (std::size_t at = 0; at < tags.size(); ++seen) {
    const auto len = static_cast<std::uint8_t>(tags[at]);
    if (len == 0) return "an empty tag";
    at += 1 + len;
    if (at > tags.size()) return "a tag runs past its section";
  }
  if (seen != count) return "the tag count does not match the tags";
  return nullptr;
}

}  // namespace

result<header> decode_links(global_position position, std::string_view bytes) {
  fields f;
  if (const char* what = parse(position, bytes, f, true)) return link_error(position, bytes, what);
  return f.links;
}

namespace {

/// decode_into for format 3, the read path's common case: the same checks
/// as parse() and the general path below, without building `fields`.
const char* decode_v3(global_position position, std::string_view bytes, event_view& v, body& d,
                      bool check_sum) {
  using bytes::get_varint;
  const char* in = bytes.data();
  const char* end = in + bytes.size();
  if (bytes.size() < 3) return "shorter than its header";
  const auto flags = static_cast<std::uint8_t>(in[1]);
  const std::size_t tag_count = static_cast<std::uint8_t>(in[2]);
  std::uint64_t type_len, meta_len, payload_len, tags_len, stream_id, version, back, delta;
  const char* p = in + 3;
  if (!(p = get_varint(p, end, type_len)) || !(p = get_varint(p, end, meta_len)) ||
      !(p = get_varint(p, end, payload_len)) || !(p = get_varint(p, end, tags_len)) ||
      !(p = get_varint(p, end, stream_id)) || !(p = get_varint(p, end, version)) ||
      !(p = get_varint(p, end, back)))
    return "shorter than its header";
  if (back > position) return "impossible stream link";
  const global_position previous = back == 0 ? 0 : position - back;
  if (stream_id == 0 || version == 0 || (back != 0 && previous == 0) ||
      (version == 1) != (previous == 0))
    return "impossible stream link";
  if (end - p < 16) return "shorter than its header";
  const char* id = p;
  if (!(p = get_varint(p + 16, end, delta))) return "shorter than its header";
  if ((flags & ~(flag_sealed | flag_shredded)) != 0 || flags == (flag_sealed | flag_shredded))
    return "unknown flags";
  if (type_len == 0) return "empty event type";
  if (type_len > max_type_size) return "an event type over 65535 bytes";
  const bool sealed = flags & flag_sealed, shredded = flags & flag_shredded;
  if (shredded && (meta_len != 0 || payload_len != 0)) return "a shredded record with data";
  const std::uint64_t trailer = sealed ? crypto_overhead : checksum_size;
  const std::uint64_t room = static_cast<std::uint64_t>(end - p);
  if (type_len > room || meta_len > room || payload_len > room || tags_len > room ||
      type_len + tags_len + meta_len + payload_len + trailer != room)
    return "lengths do not match the stored size";
  if (!sealed && check_sum) {
    const std::size_t covered = bytes.size() - checksum_size;
    if (bytes::get_le<std::uint32_t>(in + covered) !=
        checksum(position, std::string_view(in, covered)))
      return "checksum mismatch: the stored bytes changed";
  }
  const std::string_view tags(p + type_len, tags_len);
  if (tags_len != 0 || tag_count != 0) {
    if (const char* what = check_tags(tags, tag_count)) return what;
  }
  v.position = position;
  v.stream_id = stream_id;
  v.version = version;
  v.previous_position = previous;
  std::memcpy(v.id.bytes.data(), id, 16);
  v.time = static_cast<timestamp_us>(static_cast<std::uint64_t>(id_millis(v.id)) * 1000u +
                                     static_cast<std::uint64_t>(bytes::unzigzag(delta)));
  v.shredded = shredded;
  d.format = format_v3;
  d.head = std::string_view(in, static_cast<std::size_t>(p - in) + type_len + tags_len);
  v.type = {p, type_len};
  v.tags = tag_list(tags, tag_count);
  p += type_len + tags_len;
  d.metadata_size = meta_len;
  d.is_sealed = sealed;
  if (sealed) {
    d.sealed = {p, meta_len + payload_len + crypto_overhead};
    v.metadata = {};
    v.payload = {};
    return nullptr;
  }
  d.sealed = {};
  v.metadata = {p, meta_len};
  v.payload = {p + meta_len, payload_len};
  return nullptr;
}

}  // namespace

const char* decode_into(global_position position, std::string_view bytes, event_view& v, body& d,
                        bool check_sum) {
  using namespace bytes;
  if (!bytes.empty() && static_cast<std::uint8_t>(bytes[0]) == format_v3) [[likely]]
    return decode_v3(position, bytes, v, d, check_sum);
  fields f;
  if (const char* what = parse(position, bytes, f, false)) return what;
  const char* in = bytes.data();
  const auto flags = f.flags;
  if ((flags & ~(flag_sealed | flag_shredded)) != 0 || flags == (flag_sealed | flag_shredded))
    return "unknown flags";
  if (f.type_len == 0) return "empty event type";
  if (f.type_len > max_type_size) return "an event type over 65535 bytes";
  const bool sealed = flags & flag_sealed, shredded = flags & flag_shredded;
  if (shredded && (f.meta_len != 0 || f.payload_len != 0)) return "a shredded record with data";
  const std::uint64_t trailer = sealed                  ? crypto_overhead
                                : f.format != format_v1 ? checksum_size
                                                        : 0;
  const std::uint64_t room = bytes.size() - f.head_len;
  // Each length is at most the size of the record: their sum cannot wrap.
  if (f.type_len > room || f.meta_len > room || f.payload_len > room || f.tags_len > room ||
      f.type_len + f.tags_len + f.meta_len + f.payload_len + trailer != room)
    return "lengths do not match the stored size";
  if (!sealed && f.format != format_v1 && check_sum) {
    const std::size_t covered = bytes.size() - checksum_size;
    if (get_le<std::uint32_t>(in + covered) != checksum(position, std::string_view(in, covered)))
      return "checksum mismatch: the stored bytes changed";
  }
  const char* p = in + f.head_len;
  const std::string_view tags(p + f.type_len, f.tags_len);
  if (f.format == format_v3) {
    if (const char* what = check_tags(tags, f.tag_count)) return what;
  }
  v.position = position;
  v.stream_id = f.links.stream_id;
  v.version = f.links.version;
  v.previous_position = f.links.previous_position;
  std::memcpy(v.id.bytes.data(), f.id, 16);
  if (f.format == format_v3) {
    event_id id;
    std::memcpy(id.bytes.data(), f.id, 16);
    v.time = static_cast<timestamp_us>(static_cast<std::uint64_t>(id_millis(id)) * 1000u +
                                       static_cast<std::uint64_t>(unzigzag(f.time_delta)));
  } else {
    v.time = f.links.time;
  }
  v.shredded = shredded;
  d.format = f.format;
  d.head = f.format == format_v3 ? std::string_view(in, f.head_len + f.type_len + f.tags_len)
                                 : std::string_view(in, header_size);
  v.type = {p, f.type_len};
  v.tags = tag_list(tags, f.tag_count);
  p += f.type_len + f.tags_len;
  d.metadata_size = f.meta_len;
  if (sealed) {
    d.is_sealed = true;
    d.sealed = {p, f.meta_len + f.payload_len + crypto_overhead};
    v.metadata = {};
    v.payload = {};
    return nullptr;
  }
  d.is_sealed = false;
  d.sealed = {};
  v.metadata = {p, f.meta_len};
  p += f.meta_len;
  v.payload = {p, f.payload_len};
  return nullptr;
}

result<decoded> decode_record(global_position position, std::string_view bytes, bool check_sum) {
  decoded d;
  if (const char* what = decode_into(position, bytes, d, check_sum)) {
    fields f;
    if (parse(position, bytes, f, false)) return link_error(position, bytes, what);
    return corrupt(position, what);
  }
  return d;
}

}  // namespace varve::record
