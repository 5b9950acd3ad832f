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
struct text_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

template <class V>
using text_map = std::unordered_map<std::string, V, text_hash, std::equal_to<>>;

}  // namespace varve::detail
