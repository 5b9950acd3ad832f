// libFuzzer target: the JSON reader of `varvectl import` must refuse any
// malformed line with an error, and whatever it accepts must print back to
// the same event (event_from_json ∘ event_to_json is the identity on what
// event_from_json accepts).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "varvectl/event_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto obj = varvectl::json::parse(text, nullptr, false);
  if (obj.is_discarded() || !obj.is_object()) return 0;
  auto parsed = varvectl::event_from_json(obj);
  if (!parsed) return 0;
  varve::recorded_event e;
  e.position = parsed->position;
  e.stream = parsed->stream;
  e.version = parsed->version;
  e.shredded = parsed->shredded;
  e.type = parsed->event.type;
  e.metadata = parsed->event.metadata;
  e.payload = parsed->event.payload;
  if (parsed->event.id) e.id = *parsed->event.id;
  if (parsed->event.time) e.time = *parsed->event.time;
  auto again = varvectl::event_from_json(varvectl::event_to_json(e));
  if (!again || again->event.payload != e.payload || again->event.metadata != e.metadata ||
      again->stream != e.stream || again->event.type != e.type)
    std::abort();  // a round trip that loses bytes
  return 0;
}
