// The projection control protocol: what projections keep in the store
// besides their views, and what other processes (varvectl, another version
// of the application) read and write there. No CAF: varvectl links it alone
// (varve::projection_protocol).
//
// - The checkpoint state: JSON stored after the position in the projection's
//   row of the `cursors` table (checkpoint_state).
// - Control requests: JSON rows of the view "varve.projection_control",
//   keyed by projection name, that the projection manager carries out and
//   erases (control_request).
// - Dead letters: JSON rows of the view "varve.dead_letters.<name>", keyed by
//   the event's position as 8 bytes big-endian (dead_letter).
//
// storage/FORMAT.md ("Projections: views, cursor state, control requests")
// writes the format down. Rows may come from another process in another
// shape, so every parse function checks each value's type, never throws, and
// says what is wrong in its error; the encode functions replace bytes that
// are not UTF-8 (an error message may quote any bytes) and never throw.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <varve/storage/error.hpp>
#include <varve/storage/event.hpp>

namespace varve {

/// A projection's delivery mode.
enum class delivery : std::uint8_t {
  exactly_once,   ///< view writes and cursor commit in one transaction
  at_least_once,  ///< the cursor is saved every N events / T ms and at stop
};

/// The states of a projection (the diagram is in engine.hpp).
enum class projection_state : std::uint8_t {
  catching_up,  ///< behind the head: reading
  live,         ///< at the head: waiting for the next commit
  committing,   ///< a commit is in flight; reading waits (never stored)
  retrying,     ///< a handler failed: waiting to try again
  paused,       ///< not reading, by request
  failed,       ///< stopped by its failure policy or an error it cannot go past
  stopped,      ///< its process stopped it
};

/// "exactly_once" | "at_least_once".
std::string_view to_string(delivery mode) noexcept;
/// "catching_up", "live", "committing", "retrying", "paused", "failed", "stopped".
std::string_view to_string(projection_state state) noexcept;
/// The mode named `text`; std::nullopt for any other text.
std::optional<delivery> parse_delivery(std::string_view text) noexcept;
/// The state named `text`; std::nullopt for any other text.
std::optional<projection_state> parse_projection_state(std::string_view text) noexcept;

/// A state for people: the state's name, and while retrying
/// "retrying (attempt K of N)", K being the attempt that comes next and N
/// the attempts allowed (the first one and its retries).
std::string describe(projection_state state, unsigned attempt = 0, unsigned attempts = 0);

/// What a projection stores after the position of its cursor:
/// {"mode", "state", "error", "updated_us"} and, when they apply,
/// {"attempt", "attempts"} (retrying) and {"source"} (a remote log).
struct checkpoint_state {
  std::optional<delivery> mode{};  ///< none when the stored state does not say
  projection_state state = projection_state::stopped;
  std::string error{};          ///< the last error, empty when none
  timestamp_us updated_us = 0;  ///< when it was written, 0 when not said
  unsigned attempt = 0;         ///< retrying: the attempt that comes next
  unsigned attempts = 0;        ///< retrying: the attempts allowed
  std::string source{};         ///< where the log is ("HOST:PORT"); empty: this store
};

/// The JSON text of `s`.
std::string to_json(const checkpoint_state& s);

/// A stored checkpoint state's fields as they stand, for a listing that
/// shows what it can (varvectl): each field whose JSON type is right (any
/// text for "state" and "mode"), std::nullopt for the others, and the first
/// problem met ("" when none; as parse_checkpoint_state says it).
struct checkpoint_fields {
  std::optional<std::string> state{}, mode{}, error{}, source{};
  std::optional<timestamp_us> updated_us{};
  std::optional<std::uint64_t> attempt{}, attempts{};
  std::string problem{};
};

/// Reads the fields of a stored checkpoint state. Never throws.
checkpoint_fields read_checkpoint_fields(std::string_view text);

/// Reads a stored checkpoint state. Errors (errc::corruption, saying what is
/// wrong): not JSON, not an object, no "state", a "state" that is not a
/// string or names no stored state ("committing" is never stored), or a
/// field of the wrong type. Fields it does not know are ignored.
result<checkpoint_state> parse_checkpoint_state(std::string_view text);

/// The view in which `varvectl projections pause|resume|reset|rebuild`
/// leaves requests for the projection manager (key: projection name).
inline constexpr std::string_view control_view = "varve.projection_control";

enum class control_command : std::uint8_t { pause, resume, reset, rebuild };

/// "pause", "resume", "reset", "rebuild".
std::string_view to_string(control_command command) noexcept;
/// The command named `text`; std::nullopt for any other text.
std::optional<control_command> parse_control_command(std::string_view text) noexcept;

/// A control request: {"command", "position" (reset only), "requested_us"}.
struct control_request {
  control_command command = control_command::pause;
  global_position position = 0;   ///< reset: the position to go on after
  timestamp_us requested_us = 0;  ///< when it was left, 0 when not said
};

/// The JSON text of `r` ("position" only for a reset).
std::string to_json(const control_request& r);

/// Reads a control request. Errors (errc::invalid_argument, saying what is
/// wrong): not JSON, not an object, no "command" or one that is not a string
/// or names no command, a reset without an unsigned "position", a
/// "requested_us" that is not an integer.
result<control_request> parse_control_request(std::string_view text);

/// The name of the view that holds the dead letters of projection `name`.
std::string dead_letter_view(std::string_view name);

/// The key of an event in a dead-letter view: its position, 8 bytes big-endian.
std::string position_key(global_position position);

/// An event that a projection skipped after its handler kept failing:
/// {"stream", "type", "version", "error", "failed_us"}.
struct dead_letter {
  std::string stream{};
  std::string type{};
  stream_version version = 0;
  std::string error{};
  timestamp_us failed_us = 0;
};

/// The JSON text of `d`.
std::string to_json(const dead_letter& d);

/// Reads a dead letter. Errors (errc::corruption): not JSON, not an object,
/// a field missing or of the wrong type.
result<dead_letter> parse_dead_letter(std::string_view text);

/// Microseconds since the Unix epoch, now: the time the protocol stores.
timestamp_us now_us() noexcept;

}  // namespace varve
