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

/// W9: the type of the rare events of the query workloads (W9b, W9d): one
/// event in `rare_every` (event i, from 0, when i % rare_every ==
/// rare_every / 2), the others are `event_type`.
inline constexpr std::string_view rare_event_type = "bench-rare-event";
inline constexpr std::uint64_t rare_every = 1000;
inline constexpr bool is_rare(std::uint64_t i) noexcept {
  return i % rare_every == rare_every / 2;
}
/// Rare events among events 0 .. n-1.
inline constexpr std::uint64_t rare_count(std::uint64_t n) noexcept {
  return n / rare_every + (n % rare_every > rare_every / 2 ? 1 : 0);
}

/// W9's tags, in the shape of the DCB course example: event (or decision) n
/// is about course h mod 1000 and student (h >> 20) mod 10000, h a 64-bit
/// mix of n ("course:42", "student:4242"). Hashed, so that the tags of one
/// commit are spread over the index as real ones would be (consecutive n
/// would put them side by side, and their index entries in the same pages).
/// The strings are built once, so that nothing is formatted while measuring.
class tag_pool {
 public:
  static constexpr std::uint64_t courses = 1000, students = 10000;
  tag_pool();
  std::string_view course(std::uint64_t n) const noexcept { return course_[mix(n) % courses]; }
  std::string_view student(std::uint64_t n) const noexcept {
    return student_[(mix(n) >> 20) % students];
  }
  static std::uint64_t mix(std::uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  std::vector<std::string> course_, student_;
};

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
