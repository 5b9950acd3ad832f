#include <chrono>
#include <cstring>
#include <random>

#include "bytes.hpp"
#include "forks.hpp"
#include "ids.hpp"
#include "varve/storage/event.hpp"
#include "varve/storage/options.hpp"

namespace varve {

namespace {

// splitmix64: a fast generator for the random bits of event ids. Ids need to
// be unique, not secret; each thread seeds its own from std::random_device.
/// The random part of generated ids: one generator per thread, seeded from
/// the operating system, and seeded again after a fork (a generator seeded
/// before it would make the same ids in the parent and the child).
struct id_rng {
  std::uint64_t state = 0;
  unsigned seeded_after = ~0u;  // the fork count when it was seeded
  void seed() {
    std::random_device rd;
    state = (std::uint64_t{rd()} << 32) ^ rd();
    seeded_after = detail::forks_made();
  }
  std::uint64_t next() {
    if (seeded_after != detail::forks_made()) seed();
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

event_id detail::generate_event_id(timestamp_us now) {
  thread_local id_rng rng;
  const std::int64_t ms = now / 1000;
  event_id id;
  std::uint64_t hi = (static_cast<std::uint64_t>(ms) << 16) | 0x7000 | (rng.next() & 0x0FFF);
  std::uint64_t lo = (rng.next() & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;
  bytes::put_be(reinterpret_cast<char*>(id.bytes.data()), hi);
  bytes::put_be(reinterpret_cast<char*>(id.bytes.data()) + 8, lo);
  return id;
}

event_id event_id::generate() {
  return detail::generate_event_id(std::chrono::duration_cast<std::chrono::microseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
}

std::optional<event_id> event_id::parse(std::string_view text) {
  event_id id;
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '-') {
      if (text.size() != 36 || (i != 8 && i != 13 && i != 18 && i != 23)) return std::nullopt;
      continue;
    }
    int hi = hex_value(c);
    if (hi < 0 || n >= 32) return std::nullopt;
    if (n % 2 == 0)
      id.bytes[n / 2] = static_cast<std::uint8_t>(hi << 4);
    else
      id.bytes[n / 2] |= static_cast<std::uint8_t>(hi);
    ++n;
  }
  if (n != 32 || (text.size() != 32 && text.size() != 36)) return std::nullopt;
  return id;
}

std::string event_id::to_string() const {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 0xF];
  }
  return out;
}

std::string expected_version::to_string() const {
  switch (kind_) {
    case kind::any:
      return "any";
    case kind::no_stream:
      return "no_stream";
    case kind::stream_exists:
      return "stream_exists";
    case kind::exact:
      return std::to_string(version_);
  }
  return "?";
}

recorded_event recorded_event::from(const event_view& v, std::string_view stream_name) {
  return recorded_event{v.position,
                        std::string(stream_name),
                        v.version,
                        v.id,
                        v.time,
                        std::string(v.type),
                        std::string(v.metadata),
                        std::string(v.payload),
                        v.shredded,
                        std::vector<std::string>(v.tags.begin(), v.tags.end())};
}

std::string_view to_string(durability d) noexcept {
  switch (d) {
    case durability::sync:
      return "sync";
    case durability::no_meta_sync:
      return "no_meta_sync";
    case durability::no_sync:
      return "no_sync";
  }
  return "?";
}

}  // namespace varve
