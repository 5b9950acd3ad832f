// An aggregate's events as the store keeps them: encoded with the
// aggregate's codec, compared by their encoding, appended to a stream.
//
// Events compare by what the codec makes of them (the stored type name and
// the bytes), so event types need no operator==: two events are equal when
// the store could not tell them apart.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <varve/actors/aggregate.hpp>
#include <varve/storage/event_store.hpp>

#include "varve/testkit/verdict.hpp"

namespace varve::testkit {

/// The codec of aggregate A, chosen as its aggregate actor chooses it:
/// A::codec when A declares one, default_codec<A::event> otherwise.
template <aggregate A>
using codec_of = typename varve::detail::codec_of<A>::type;

/// An event as stored: the type name its codec gives and its bytes.
struct encoded_event {
  std::string type;
  std::string bytes;
};

/// `e` encoded with A's codec; std::nullopt when the codec cannot encode it.
/// Exceptions of the codec pass through.
template <aggregate A>
std::optional<encoded_event> encode(const typename A::event& e) {
  encoded_event out{codec_of<A>::type_of(e), {}};
  if (!codec_of<A>::encode(e, out.bytes)) return std::nullopt;
  return out;
}

/// Every event of `events` encoded with A's codec. Throws testkit_error
/// naming `what`, the event's index and its type when one does not encode.
template <aggregate A>
std::vector<encoded_event> encode_all(std::span<const typename A::event> events,
                                      std::string_view what) {
  std::vector<encoded_event> out;
  out.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    auto e = encode<A>(events[i]);
    if (!e)
      throw testkit_error(std::string(what) + " " + std::to_string(i) + " ('" +
                          codec_of<A>::type_of(events[i]) +
                          "') does not encode with the aggregate's codec");
    out.push_back(std::move(*e));
  }
  return out;
}

/// Compares two lists of encoded events, in order. Passes when they have the
/// same length and each pair the same type and bytes; otherwise the message
/// says "the events differ: expected 1 event ('withdrawn'), actual 2 events
/// ('deposited', 'withdrawn')" and names every difference on a line of its
/// own: "event 0: expected 'withdrawn', actual 'deposited'", "event 0:
/// 'withdrawn' in both, the payloads differ at byte 1 (expected 2 bytes:
/// 33 31; actual 2 bytes: 33 30)" (up to 16 bytes shown in hex, around the
/// first difference), "event 1: actual 'withdrawn', not expected", "event
/// 1: expected 'closed', missing".
verdict compare_events(std::span<const encoded_event> expected,
                       std::span<const encoded_event> actual);

/// Appends `events` to `stream` of `store` with `expected`, each encoded
/// with A's codec as the aggregate actor encodes what it appends (type name
/// from the codec, no metadata). Returns the store's append_result. Throws
/// testkit_error when an event does not encode or the store refuses the
/// append (its error in the message, e.g. wrong_expected_version).
template <aggregate A>
append_result append_events(event_store& store, std::string_view stream,
                            const std::vector<typename A::event>& events,
                            expected_version expected = expected_version::any()) {
  std::vector<new_event> out;
  for (auto& e : encode_all<A>(events, "event")) {
    new_event n;
    n.type = std::move(e.type);
    n.payload = std::move(e.bytes);
    out.push_back(std::move(n));
  }
  auto r = store.append(stream, expected, out);
  if (!r)
    throw testkit_error("appending " + std::to_string(events.size()) + " events to '" +
                        std::string(stream) + "': " + r.err().to_string());
  return *r;
}

}  // namespace varve::testkit
