// What varvectl prints on stdout: JSON values one per line (--json), or lines
// for people.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "event_json.hpp"
#include "varve/storage/event.hpp"

namespace varvectl {

/// One JSON value on one line of stdout (json_text: bad UTF-8 in strings
/// replaced, every control character escaped).
void print_json(const json& value);

/// A line of text for people on stdout, through terminal_text (control
/// characters and bad UTF-8 escaped as `\xNN`, backslashes doubled).
void print_line(std::string_view text);

/// A line on stdout made of pieces that went through terminal_text already
/// (table cells, escaped before their columns are measured): written as it
/// is, since escaping twice would double their backslashes.
void print_escaped_line(std::string_view escaped);

/// Payload or metadata for people: the JSON text (compacted) when the bytes
/// are JSON nested at most max_json_depth deep, else "base64:<base64>"; ""
/// when empty.
std::string bytes_for_humans(std::string_view bytes);

/// An event for people, on one line (print_line escapes what it must):
/// "@12 account-1 v3 deposited 2024-05-01T12:34:56.123456Z id=... data=... metadata=..."
std::string event_for_humans(const varve::recorded_event& e);

/// An event as a JSON line (`json`) or a line for people.
void print_event(const varve::recorded_event& e, bool json);

/// "1.5 MiB", "812 B".
std::string human_size(std::uint64_t bytes);

}  // namespace varvectl
