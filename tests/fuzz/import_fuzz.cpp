// libFuzzer target: the line reader of `varvectl import` (event_from_line:
// JSON nested at most varvectl::max_json_depth deep, then the event's form)
// must refuse any malformed or too deeply nested line with an error, never a
// crash, and whatever it accepts must print back to the same event
// (event_from_json ∘ event_to_json is the identity on what event_from_line
// accepts). Too deep: corpus/import/deep_data.json nests 300 deep, just past
// the limit; a line nested 100,000 deep, which crashed import (copying and
// serialising JSON recurse once per level), is checked once at start-up:
// as a seed it would make every input the fuzzer tries that long.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "varvectl/event_json.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string line =
      R"({"position":1,"stream":"s","version":1,"type":"t",)"
      R"("id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","time":"2024-05-01T12:34:56.123456Z",)"
      R"("shredded":false,"metadata":null,"data":)" +
      std::string(100000, '[') + std::string(100000, ']') + "}";
  if (varvectl::event_from_line(line)) std::abort();  // must be refused
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = varvectl::event_from_line(text);
  if (!parsed) return 0;
  varve::recorded_event e;
  e.position = parsed->position;
  e.stream = parsed->stream;
  e.version = parsed->version;
  e.shredded = parsed->shredded;
  e.type = parsed->event.type;
  e.metadata = parsed->event.metadata;
  e.payload = parsed->event.payload;
  e.tags = parsed->event.tags;
  if (parsed->event.id) e.id = *parsed->event.id;
  if (parsed->event.time) e.time = *parsed->event.time;
  auto again = varvectl::event_from_line(varvectl::json_text(varvectl::event_to_json(e)));
  if (!again || again->event.payload != e.payload || again->event.metadata != e.metadata ||
      again->stream != e.stream || again->event.type != e.type || again->event.tags != e.tags)
    std::abort();  // a round trip that loses bytes
  return 0;
}
