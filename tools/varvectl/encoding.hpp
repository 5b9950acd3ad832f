// Text encodings of bytes and times: base64 (RFC 4648, padded), ISO-8601 UTC
// times with microseconds, a UTF-8 check, and text made safe for a terminal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace varvectl {

/// Standard base64 with '=' padding.
std::string base64_encode(std::string_view bytes);

/// Decodes standard padded base64; std::nullopt on a bad length, character
/// or padding.
std::optional<std::string> base64_decode(std::string_view text);

/// "2024-05-01T12:34:56.123456Z" for microseconds since the Unix epoch
/// (years outside 0000..9999 get a sign and as many digits as they need).
std::string format_time(std::int64_t micros);

/// The inverse of format_time: "YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z" (or "+00:00"
/// for "Z"); std::nullopt on anything else or a value out of range.
std::optional<std::int64_t> parse_time(std::string_view text);

/// Whether `bytes` are well-formed UTF-8 (no overlongs, surrogates or values
/// past U+10FFFF).
bool valid_utf8(std::string_view bytes);

/// Whether `cp` is a Unicode bidirectional control (U+061C, U+200E,
/// U+200F, U+202A..U+202E, U+2066..U+2069): it reorders the text a terminal
/// shows around it.
bool bidi_control(std::uint32_t cp);

/// The text with every byte a terminal could take for a control written as
/// `\xNN` (two lower-case hex digits): C0 controls (ESC included), DEL, C1
/// controls (U+0080..U+009F: each byte of their UTF-8 form) and bytes that
/// are not well-formed UTF-8; bidirectional controls as `\u{202e}`; and the
/// backslash itself as `\\`, so that the escaped form is unambiguous (a
/// name holding the four characters `\x1b` prints as `\\x1b`, one holding
/// ESC as `\x1b`). Other printable UTF-8 stays as it is. Every line
/// varvectl prints for people goes through it exactly once (stdout and
/// error messages).
std::string terminal_text(std::string_view text);

}  // namespace varvectl
