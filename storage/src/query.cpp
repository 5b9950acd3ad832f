// Queries: matching an event, their canonical text, stream categories.
#include "varve/storage/query.hpp"

#include <algorithm>

namespace varve {

std::string_view category_of(std::string_view stream_name) {
  const std::size_t dash = stream_name.find('-');
  return dash == std::string_view::npos ? std::string_view{} : stream_name.substr(0, dash);
}

namespace {

bool item_matches(const query_item& item, const event_view& e, std::string_view stream_name) {
  if (!item.types.empty() &&
      std::find(item.types.begin(), item.types.end(), e.type) == item.types.end())
    return false;
  if (!item.categories.empty() && std::find(item.categories.begin(), item.categories.end(),
                                            category_of(stream_name)) == item.categories.end())
    return false;
  for (const std::string& t : item.tags)
    if (!e.tags.contains(t)) return false;
  return true;
}

/// A list as text: sorted, without duplicates, each entry length-prefixed
/// ("3:abc") so that no entry can be mistaken for two.
std::string list_text(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  std::string out = "[";
  for (const std::string& s : v)
    out += std::to_string(s.size()) + ":" + s;
  return out + "]";
}

}  // namespace

bool query::matches(const event_view& event, std::string_view stream_name) const {
  for (const query_item& item : items)
    if (item_matches(item, event, stream_name)) return true;
  return false;
}

std::string query::to_string() const {
  std::vector<std::string> texts;
  texts.reserve(items.size());
  for (const query_item& item : items)
    texts.push_back("types" + list_text(item.types) + "tags" + list_text(item.tags) + "categories" +
                    list_text(item.categories));
  std::sort(texts.begin(), texts.end());
  texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
  std::string out;
  for (const std::string& t : texts)
    out += (out.empty() ? "" : "|") + t;
  return out;
}

}  // namespace varve
