// Event data for the workloads: payload bytes and stream names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace varve::bench {

/// The event type every benchmark event carries.
inline constexpr std::string_view event_type = "bench-event";

/// A pool of `count` distinct pseudo-random payloads of `size` bytes each
/// (deterministic for a seed). Event i uses payload i % count: the bytes vary
/// from event to event without generating anything while measuring.
class payloads {
 public:
  explicit payloads(std::size_t size, std::size_t count = 64, std::uint64_t seed = 0x5eedULL);
  std::string_view operator[](std::uint64_t i) const noexcept {
    return {bytes_.data() + (i % count_) * size_, size_};
  }
  std::size_t size() const noexcept { return size_; }

 private:
  std::size_t size_;
  std::size_t count_;
  std::string bytes_;
};

/// "<prefix>-<i, 7 digits>", e.g. stream_name("stream", 42) == "stream-0000042".
std::string stream_name(std::string_view prefix, std::uint64_t i);

/// stream_name(prefix, 0 .. n-1).
std::vector<std::string> stream_names(std::string_view prefix, std::uint64_t n);

}  // namespace varve::bench
