// libFuzzer target: the event record decoder must turn any bytes into an
// event or a corruption error, never read out of bounds or crash.
#include <cstddef>
#include <cstdint>

#include "record.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (varve::global_position position :
       {varve::global_position{1}, varve::global_position{1} << 40}) {
    auto decoded = varve::record::decode_record(position, bytes);
    if (decoded) {
      std::size_t touched = 0;
      for (char c : decoded->view.type)
        touched += static_cast<unsigned char>(c);
      for (char c : decoded->view.metadata)
        touched += static_cast<unsigned char>(c);
      for (char c : decoded->view.payload)
        touched += static_cast<unsigned char>(c);
      for (char c : decoded->sealed)
        touched += static_cast<unsigned char>(c);
      for (std::string_view tag : decoded->view.tags)
        for (char c : tag)
          touched += static_cast<unsigned char>(c);
      if (touched == 1) return 0;  // keeps the reads
    }
    (void)varve::record::decode_links(position, bytes);
  }
  return 0;
}
