#include "common/payload.hpp"

#include <cstdio>
#include <stdexcept>
#include <string>

namespace varve::bench {

namespace {

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

payloads::payloads(std::size_t size, std::size_t count, std::uint64_t seed)
    : size_(size), count_(count) {
  if (count_ == 0) throw std::invalid_argument("payloads: count must be at least 1");
  bytes_.resize(size_ * count_);
  std::uint64_t state = seed;
  for (std::size_t i = 0; i < bytes_.size(); i += 8) {
    const std::uint64_t r = splitmix64(state);
    for (std::size_t b = 0; b < 8 && i + b < bytes_.size(); ++b)
      bytes_[i + b] = static_cast<char>((r >> (8 * b)) & 0xff);
  }
}

tag_pool::tag_pool() {
  course_.reserve(courses);
  for (std::uint64_t i = 0; i < courses; ++i)
    course_.push_back("course:" + std::to_string(i));
  student_.reserve(students);
  for (std::uint64_t i = 0; i < students; ++i)
    student_.push_back("student:" + std::to_string(i));
}

std::string stream_name(std::string_view prefix, std::uint64_t i) {
  char digits[24];
  const int n = std::snprintf(digits, sizeof digits, "%07llu", static_cast<unsigned long long>(i));
  std::string s;
  s.reserve(prefix.size() + 1 + static_cast<std::size_t>(n));
  s.append(prefix).push_back('-');
  s.append(digits, static_cast<std::size_t>(n));
  return s;
}

std::vector<std::string> stream_names(std::string_view prefix, std::uint64_t n) {
  std::vector<std::string> names;
  names.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i)
    names.push_back(stream_name(prefix, i));
  return names;
}

}  // namespace varve::bench
