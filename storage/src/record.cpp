#include "record.hpp"

#include <isa-l/crc.h>

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
  return format == format_v1 || format == format_v2;
}

}  // namespace

std::uint32_t checksum(global_position position, std::string_view bytes) {
  // ISA-L's crc32_iscsi is CRC32C without the final inversion. The position
  // goes in after the CRC, not before it: one call over the record costs
  // about a third of two chained calls for a 170-byte record.
  const std::uint32_t crc =
      crc32_iscsi(reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data())),
                  static_cast<int>(bytes.size()), 0xFFFFFFFFu) ^
      0xFFFFFFFFu;
  return crc ^ static_cast<std::uint32_t>(position);
}

char* encode_head(char* out, const header& h, std::uint8_t flags, std::string_view type,
                  std::size_t metadata_size, std::size_t payload_size) {
  using namespace bytes;
  out[0] = static_cast<char>(format_v2);
  out[1] = static_cast<char>(flags);
  put_le<std::uint16_t>(out + 2, static_cast<std::uint16_t>(type.size()));
  put_le<std::uint32_t>(out + 4, static_cast<std::uint32_t>(metadata_size));
  put_le<std::uint32_t>(out + 8, static_cast<std::uint32_t>(payload_size));
  put_le<std::uint64_t>(out + 12, h.stream_id);
  put_le<std::uint64_t>(out + 20, h.version);
  put_le<std::uint64_t>(out + 28, h.previous_position);
  std::memcpy(out + 36, h.id.bytes.data(), 16);
  put_le<std::int64_t>(out + 52, h.time);
  std::memcpy(out + header_size, type.data(), type.size());
  return out + header_size + type.size();
}

void encode(char* out, global_position position, const header& h, std::string_view type,
            std::string_view metadata, std::string_view payload) {
  char* p = encode_head(out, h, 0, type, metadata.size(), payload.size());
  if (!metadata.empty()) std::memcpy(p, metadata.data(), metadata.size());
  p += metadata.size();
  if (!payload.empty()) std::memcpy(p, payload.data(), payload.size());
  p += payload.size();
  bytes::put_le<std::uint32_t>(p, checksum(position, {out, static_cast<std::size_t>(p - out)}));
}

void encode_shredded(char* out, global_position position, const header& h, std::string_view type) {
  char* p = encode_head(out, h, flag_shredded, type, 0, 0);
  bytes::put_le<std::uint32_t>(p, checksum(position, {out, static_cast<std::size_t>(p - out)}));
}

namespace {

/// The checks of decode_links; nullptr when the link is possible.
const char* check_links(global_position position, std::string_view bytes, header& h) {
  using namespace bytes;
  if (bytes.size() < header_size) return "shorter than its header";
  const char* in = bytes.data();
  if (!known_format(static_cast<std::uint8_t>(in[0]))) return "unknown record format";
  h.stream_id = get_le<std::uint64_t>(in + 12);
  h.version = get_le<std::uint64_t>(in + 20);
  h.previous_position = get_le<std::uint64_t>(in + 28);
  if (h.stream_id == 0 || h.version == 0 || h.previous_position >= position ||
      (h.version == 1) != (h.previous_position == 0))
    return "impossible stream link";
  return nullptr;
}

error link_error(global_position position, std::string_view bytes, const char* what) {
  if (bytes.size() >= header_size && !known_format(static_cast<std::uint8_t>(bytes[0])))
    return corrupt(position,
                   "unknown record format " + std::to_string(static_cast<std::uint8_t>(bytes[0])));
  return corrupt(position, what);
}

}  // namespace

result<header> decode_links(global_position position, std::string_view bytes) {
  header h;
  if (const char* what = check_links(position, bytes, h)) return link_error(position, bytes, what);
  return h;
}

const char* decode_into(global_position position, std::string_view bytes, event_view& v, body& d,
                        bool check_sum) {
  using namespace bytes;
  header links;
  if (const char* what = check_links(position, bytes, links)) return what;
  const char* in = bytes.data();
  const auto format = static_cast<std::uint8_t>(in[0]);
  const auto flags = static_cast<std::uint8_t>(in[1]);
  if ((flags & ~(flag_sealed | flag_shredded)) != 0 || flags == (flag_sealed | flag_shredded))
    return "unknown flags";
  std::uint64_t type_len = get_le<std::uint16_t>(in + 2);
  std::uint64_t meta_len = get_le<std::uint32_t>(in + 4);
  std::uint64_t payload_len = get_le<std::uint32_t>(in + 8);
  if (type_len == 0) return "empty event type";
  const bool sealed = flags & flag_sealed, shredded = flags & flag_shredded;
  if (shredded && (meta_len != 0 || payload_len != 0)) return "a shredded record with data";
  const std::uint64_t trailer = sealed ? crypto_overhead : format == format_v2 ? checksum_size : 0;
  if (header_size + type_len + meta_len + payload_len + trailer != bytes.size())
    return "lengths do not match the stored size";
  if (!sealed && format == format_v2 && check_sum) {
    const std::size_t covered = bytes.size() - checksum_size;
    if (get_le<std::uint32_t>(in + covered) != checksum(position, std::string_view(in, covered)))
      return "checksum mismatch: the stored bytes changed";
  }
  v.position = position;
  v.stream_id = links.stream_id;
  v.version = links.version;
  v.previous_position = links.previous_position;
  std::memcpy(v.id.bytes.data(), in + 36, 16);
  v.time = get_le<std::int64_t>(in + 52);
  v.shredded = shredded;
  d.format = format;
  d.head = std::string_view(in, header_size);
  const char* p = in + header_size;
  v.type = {p, type_len};
  p += type_len;
  d.metadata_size = meta_len;
  if (sealed) {
    d.is_sealed = true;
    d.sealed = {p, meta_len + payload_len + crypto_overhead};
    v.metadata = {};
    v.payload = {};
    return nullptr;
  }
  d.is_sealed = false;
  d.sealed = {};
  v.metadata = {p, meta_len};
  p += meta_len;
  v.payload = {p, payload_len};
  return nullptr;
}

result<decoded> decode_record(global_position position, std::string_view bytes, bool check_sum) {
  decoded d;
  if (const char* what = decode_into(position, bytes, d, check_sum)) {
    header h;
    if (check_links(position, bytes, h)) return link_error(position, bytes, what);
    return corrupt(position, what);
  }
  return d;
}

}  // namespace varve::record
