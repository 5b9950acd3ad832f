// The event record codec (private to varve::storage). The grammar is in
// storage/FORMAT.md:
//
//   record  := header type metadata payload
//   header  := format:u8 flags:u8 type_len:u16 metadata_len:u32 payload_len:u32
//              stream_id:u64 version:u64 previous_position:u64
//              event_id:16 bytes time_us:i64                      (60 bytes, little-endian)
//
// decode() checks every length against the stored size, so damaged bytes are
// reported as errc::corruption instead of being read out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "varve/storage/error.hpp"
#include "varve/storage/event.hpp"

namespace varve::record {

inline constexpr std::uint8_t format_v1 = 1;
/// Flags: metadata and payload are sealed (AES-256-GCM, see crypto.hpp).
inline constexpr std::uint8_t flag_sealed = 1;
/// Flags: the stream was shredded in a plain store; metadata and payload are gone.
inline constexpr std::uint8_t flag_shredded = 2;
inline constexpr std::size_t header_size = 60;
inline constexpr std::size_t max_type_size = 0xFFFF;
/// What sealing adds to a body: a 12-byte nonce and a 16-byte tag.
inline constexpr std::size_t crypto_overhead = 28;

/// The fields of a record other than its three byte strings.
struct header {
  std::uint64_t stream_id = 0;
  stream_version version = 0;
  global_position previous_position = 0;
  event_id id;
  timestamp_us time = 0;
};

/// The size encode() writes.
inline std::size_t encoded_size(std::size_t type, std::size_t metadata, std::size_t payload) {
  return header_size + type + metadata + payload;
}

/// Writes the record into `out`, which holds exactly encoded_size(...) bytes.
void encode(char* out, const header& h, std::string_view type, std::string_view metadata,
            std::string_view payload);

/// Writes the header and the type with the given flags and plaintext sizes;
/// returns where the body (metadata and payload, or the sealed body) goes.
char* encode_head(char* out, const header& h, std::uint8_t flags, std::string_view type,
                  std::size_t metadata_size, std::size_t payload_size);

/// A decoded record. For a sealed record the view's metadata and payload are
/// empty and `sealed` holds nonce, ciphertext and tag; the metadata size
/// tells where metadata ends in the opened body.
struct decoded {
  event_view view;
  std::string_view sealed;
  std::size_t metadata_size = 0;
  bool is_sealed = false;
};

/// Decodes the record stored at `position`; views point into `bytes`.
/// Errors: corruption (names the position and what is wrong).
result<decoded> decode_record(global_position position, std::string_view bytes);

/// decode_record without building a result: fills `out` and returns nullptr,
/// or returns what is wrong (then decode_record gives the error). For the
/// read path, which decodes every event it visits.
const char* decode_into(global_position position, std::string_view bytes, decoded& out);

/// decode_record for plain records; a sealed record is an error
/// (auth_failed: it needs its stream's key).
result<event_view> decode(global_position position, std::string_view bytes);

/// The stream link of a record (stream id, version, previous position),
/// read without decoding the rest. Errors: corruption.
result<header> decode_links(global_position position, std::string_view bytes);

}  // namespace varve::record
