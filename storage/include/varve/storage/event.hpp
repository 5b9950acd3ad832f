// The vocabulary of the log: positions, versions, event ids, expected versions,
// events to append and events as read back.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace varve {

/// A place in the global log. The first event is at 1; positions are gapless,
/// strictly increasing in commit order and never reused. 0 means "before the
/// first event".
using global_position = std::uint64_t;

/// A place in one stream. The first event of a stream is version 1; a stream's
/// current version is the number of events in it (0: the stream does not exist).
using stream_version = std::uint64_t;

/// Microseconds since the Unix epoch (UTC).
using timestamp_us = std::int64_t;

/// A 16-byte event id. Ids that Varve generates are time-ordered
/// (UUIDv7 layout: 48 bits of milliseconds, then random bits).
struct event_id {
  std::array<std::uint8_t, 16> bytes{};

  /// A fresh, time-ordered id. Thread-safe.
  static event_id generate();

  /// Parses the canonical 36-character form ("0190a1b2-...") or 32 hex digits;
  /// std::nullopt on anything else.
  static std::optional<event_id> parse(std::string_view text);

  /// The canonical lower-case 8-4-4-4-12 form.
  std::string to_string() const;

  friend bool operator==(const event_id&, const event_id&) = default;
};

/// The condition an append places on the stream's current version, with
/// EventStoreDB's meaning.
class expected_version {
 public:
  enum class kind : std::uint8_t { any, no_stream, stream_exists, exact };

  /// any().
  expected_version() = default;

  /// No condition.
  static expected_version any() { return {kind::any, 0}; }
  /// The stream must not exist yet (same as exact(0)).
  static expected_version no_stream() { return {kind::no_stream, 0}; }
  /// The stream must hold at least one event.
  static expected_version stream_exists() { return {kind::stream_exists, 0}; }
  /// The stream's current version must be `n` (0: empty stream); the new
  /// events get versions n+1, n+2, ...
  static expected_version exact(stream_version n) { return {kind::exact, n}; }

  kind type() const noexcept { return kind_; }
  stream_version version() const noexcept { return version_; }

  /// "any", "no_stream", "stream_exists" or the number.
  std::string to_string() const;

  friend bool operator==(const expected_version&, const expected_version&) = default;

 private:
  expected_version(kind k, stream_version v) : kind_(k), version_(v) {}
  kind kind_ = kind::any;
  stream_version version_ = 0;
};

/// An event type is 1..max_type_bytes bytes.
inline constexpr std::size_t max_type_bytes = 0xFFFF;
/// At most this many tags on one event.
inline constexpr std::size_t max_tags = 32;
/// A tag is 1..max_tag_bytes bytes of UTF-8.
inline constexpr std::size_t max_tag_bytes = 255;

/// An event to append. `type` must be non-empty. When `id` is empty Varve
/// generates one; give ids yourself to make retries idempotent. When `time` is
/// empty the append's clock time is used.
///
/// `tags` name what the event is about, for queries and append conditions
/// (query.hpp): short UTF-8 strings, by convention "key:value"
/// ("course:c7", "student:s42"). At most max_tags per event, each
/// 1..max_tag_bytes bytes, no tag twice; they are stored in the order given.
/// Tags, like types, stay in clear in an encrypted store (they index the
/// log; encryption binds them to the event) and survive shredding: put no
/// personal data in them.
struct new_event {
  std::string type{};
  std::string payload{};
  std::string metadata{};
  std::optional<event_id> id{};
  std::optional<timestamp_us> time{};
  std::vector<std::string> tags{};
};

/// The tags of a stored event, as views into its record (valid as long as
/// the event_view they belong to). Iterates the tags in stored order.
class tag_list {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using pointer = const std::string_view*;
    using reference = std::string_view;

    iterator() = default;
    std::string_view operator*() const { return {at_ + 1, static_cast<unsigned char>(*at_)}; }
    iterator& operator++() {
      at_ += 1 + static_cast<unsigned char>(*at_);
      return *this;
    }
    iterator operator++(int) {
      iterator before = *this;
      ++*this;
      return before;
    }
    friend bool operator==(const iterator&, const iterator&) = default;

   private:
    friend class tag_list;
    explicit iterator(const char* at) : at_(at) {}
    const char* at_ = nullptr;
  };

  tag_list() = default;
  /// Over `encoded` (len:u8 bytes, repeated) holding `count` tags; the
  /// record decoder checks the encoding before it builds one.
  tag_list(std::string_view encoded, std::size_t count) : encoded_(encoded), count_(count) {}

  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  iterator begin() const { return iterator(encoded_.data()); }
  iterator end() const { return iterator(encoded_.data() + encoded_.size()); }
  /// Whether `tag` is one of the tags.
  bool contains(std::string_view tag) const {
    for (std::string_view t : *this)
      if (t == tag) return true;
    return false;
  }
  /// The stored bytes (len:u8 tag, repeated).
  std::string_view encoded() const noexcept { return encoded_; }

 private:
  std::string_view encoded_;
  std::size_t count_ = 0;
};

/// Events for one stream under one expectation.
struct append_request {
  std::string stream{};
  expected_version expected = expected_version::any();
  std::vector<new_event> events{};
};

/// Where an append landed. Versions and positions of one request are
/// consecutive. `idempotent` is true when the same events (by id) were already
/// at that place and nothing was written; the original places are returned.
struct append_result {
  stream_version first_version = 0;
  stream_version last_version = 0;  ///< the stream's version after the append
  global_position first_position = 0;
  global_position last_position = 0;
  bool idempotent = false;
};

/// Whether a stream takes appends.
enum class stream_state : std::uint8_t { live = 0, shredded = 1, deleted = 2 };

/// What the store knows about one stream, without scanning it.
struct stream_info {
  std::uint64_t id = 0;        ///< internal integer id, allocated in creation order
  stream_version version = 0;  ///< current version = number of events
  global_position last_position = 0;
  stream_state state = stream_state::live;
};

/// An event read from the store, as views. In a plain store the string views
/// point into the memory map and are valid only while the read transaction
/// that produced the view is open (see read_transaction for encrypted
/// stores); copy with `recorded_event::from`.
///
/// An event of a shredded stream keeps its envelope (position, stream,
/// version, id, time, type) and has `shredded` set, with empty metadata and
/// payload: its data can no longer be read by anyone.
struct event_view {
  global_position position = 0;
  std::uint64_t stream_id = 0;
  stream_version version = 0;
  global_position previous_position = 0;  ///< the stream's previous event, 0 for the first
  event_id id;
  timestamp_us time = 0;
  std::string_view type;
  std::string_view metadata;
  std::string_view payload;
  tag_list tags;
  bool shredded = false;
};

/// An owned copy of an event, stream name included; valid as long as you keep it.
struct recorded_event {
  global_position position = 0;
  std::string stream;
  stream_version version = 0;
  event_id id;
  timestamp_us time = 0;
  std::string type;
  std::string metadata;
  std::string payload;
  bool shredded = false;
  std::vector<std::string> tags;

  static recorded_event from(const event_view& view, std::string_view stream_name);
};

/// Reading direction for streams and the log.
enum class direction : std::uint8_t { forward, backward };

}  // namespace varve
