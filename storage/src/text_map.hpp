#pragma once
// Hash maps keyed by std::string and looked up by std::string_view (stream
// names, index key texts), without building a std::string per lookup.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace varve::detail {

/// A transparent hash of text.
///
/// Its call is not noexcept on purpose: libstdc++ then stores each node's
/// hash, so a lookup compares hashes before texts and finds a bucket's end
/// without hashing the next node's text again. A hash it deems cheap (a
/// noexcept one) is recomputed at every node of the walk.
struct text_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <class V>
using text_map = std::unordered_map<std::string, V, text_hash, std::equal_to<>>;

}  // namespace varve::detail
