// The event record codec (private to varve::storage). The grammar is in
// storage/FORMAT.md. Writers write format 3:
//
//   record   := head type tags body
//   head     := format:u8 (3) flags:u8 tag_count:u8
//               type_len metadata_len payload_len tags_len        (varints)
//               stream_id version back                            (varints)
//               event_id:16 bytes time_delta                      (varint)
//   back     := position - previous position (0 for version 1)
//   time     := milliseconds of the id (UUIDv7) * 1000 + unzigzag(time_delta)
//   tags     := (len:u8 bytes){tag_count}
//   body     := metadata payload checksum:u32      flags = 0 (plain)
//             | checksum:u32                       flags = 2 (shredded in a plain store)
//             | nonce:12 ciphertext tag:16         flags = 1 (sealed; see crypto.hpp)
//   checksum := CRC32C(every byte before it) XOR (position mod 2^32)
//
// Formats 1 and 2 (a fixed 60-byte header, no tags; format 1 without
// checksums) are read as before.
//
// decode() checks every length against the stored size, so damaged bytes are
// reported as errc::corruption instead of being read out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "varve/storage/error.hpp"
#include "varve/storage/event.hpp"

namespace varve::record {

/// Records written before checksums: no checksum, a narrower associated data.
inline constexpr std::uint8_t format_v1 = 1;
/// Records with checksums and a fixed 60-byte header.
inline constexpr std::uint8_t format_v2 = 2;
/// The format writers write: a header of variable-length integers, and tags.
inline constexpr std::uint8_t format_v3 = 3;
/// Flags: metadata and payload are sealed (AES-256-GCM, see crypto.hpp).
inline constexpr std::uint8_t flag_sealed = 1;
/// Flags: the stream was shredded in a plain store; metadata and payload are gone.
inline constexpr std::uint8_t flag_shredded = 2;
/// The header of format 1 and 2 records.
inline constexpr std::size_t header_size = 60;
inline constexpr std::size_t max_type_size = varve::max_type_bytes;
/// What sealing adds to a body: a 12-byte nonce and a 16-byte tag.
inline constexpr std::size_t crypto_overhead = 28;
/// The CRC32C at the end of an unsealed format 2 record.
inline constexpr std::size_t checksum_size = 4;

/// The fields of a record other than its type, metadata and payload.
/// `tags` is the encoded tag section (len:u8 bytes, repeated) holding
/// `tag_count` tags; see encode_tags.
struct header {
  std::uint64_t stream_id = 0;
  stream_version version = 0;
  global_position previous_position = 0;
  event_id id;
  timestamp_us time = 0;
  std::string_view tags{};
  std::size_t tag_count = 0;
};

/// Appends the tag section of `tags` to `out` (cleared first). The tags
/// were checked (1..255 bytes each, at most max_tags).
void encode_tags(const std::vector<std::string>& tags, std::string& out);

/// The size of the format 3 head of a record stored at `position`.
std::size_t head_size(global_position position, const header& h, std::size_t type,
                      std::size_t metadata, std::size_t payload);

/// The size of a plain (or, with empty metadata and payload, shredded)
/// format 3 record.
inline std::size_t encoded_size(global_position position, const header& h, std::size_t type,
                                std::size_t metadata, std::size_t payload) {
  return head_size(position, h, type, metadata, payload) + type + h.tags.size() + metadata +
         payload + checksum_size;
}

/// The size of a sealed format 3 record.
inline std::size_t sealed_size(global_position position, const header& h, std::size_t type,
                               std::size_t metadata, std::size_t payload) {
  return head_size(position, h, type, metadata, payload) + type + h.tags.size() + metadata +
         payload + crypto_overhead;
}

/// The checksum of a record stored at `position`: CRC32C (Castagnoli) of
/// `bytes`, XOR the low 32 bits of the position (a record copied to
/// another position fails its check).
std::uint32_t checksum(global_position position, std::string_view bytes);

/// Writes a plain format 3 record stored at `position` into `out`, which
/// holds exactly encoded_size(...) bytes, checksum included.
void encode(char* out, global_position position, const header& h, std::string_view type,
            std::string_view metadata, std::string_view payload);

/// Writes a shredded format 3 record (head, type, tags, checksum) into
/// `out`, which holds exactly encoded_size(position, h, type.size(), 0, 0) bytes.
void encode_shredded(char* out, global_position position, const header& h, std::string_view type);

/// Writes a format 3 head, the type and the tags with the given flags and
/// plaintext sizes; returns where the body (the sealed body) goes.
char* encode_head(char* out, global_position position, const header& h, std::uint8_t flags,
                  std::string_view type, std::size_t metadata_size, std::size_t payload_size);

/// What a decoded record holds besides its event view. For a sealed record
/// the view's metadata and payload are empty and `sealed` holds nonce,
/// ciphertext and tag; the metadata size tells where metadata ends in the
/// opened body. `head` is what a sealed record's associated data covers
/// besides the position and the stream name: the 60 header bytes of a
/// format 2 record (its type follows), or head, type and tags of a format
/// 3 record.
struct body {
  std::string_view sealed;
  std::string_view head;
  std::size_t metadata_size = 0;
  std::uint8_t format = 0;
  bool is_sealed = false;
};

/// A decoded record: its event view and its body.
struct decoded : body {
  event_view view;
};

/// Decodes the record stored at `position`; views point into `bytes`. The
/// checksum of a format 2 record is checked when `check_sum` is set.
/// Errors: corruption (names the position and what is wrong).
result<decoded> decode_record(global_position position, std::string_view bytes,
                              bool check_sum = true);

/// decode_record without building a result: fills `view` and `b` and
/// returns nullptr, or returns what is wrong (then decode_record gives the
/// error). For the read path, which decodes every event it visits.
const char* decode_into(global_position position, std::string_view bytes, event_view& view, body& b,
                        bool check_sum = true);
inline const char* decode_into(global_position position, std::string_view bytes, decoded& out,
                               bool check_sum = true) {
  return decode_into(position, bytes, out.view, out, check_sum);
}

/// The stream link of a record (stream id, version, previous position),
/// read without decoding the rest or checking its checksum. Errors: corruption.
result<header> decode_links(global_position position, std::string_view bytes);

}  // namespace varve::record
