// Filters and the view writes of a batch.
#include "varve/projections/spec.hpp"

#include <algorithm>
#include <functional>

namespace varve {

bool projection_filter::matches(std::string_view stream, std::string_view type) const {
  if (!event_types.empty() &&
      std::find(event_types.begin(), event_types.end(), type) == event_types.end())
    return false;
  if (categories.empty() && stream_prefixes.empty()) return true;
  for (const auto& c : categories)
    if (stream == c ||
        (stream.size() > c.size() && stream.starts_with(c) && stream[c.size()] == '-'))
      return true;
  for (const auto& p : stream_prefixes)
    if (stream.starts_with(p)) return true;
  return false;
}

bool projection_filter::matches(std::string_view stream, const event_view& event) const {
  if (!matches(stream, event.type)) return false;
  for (const auto& t : tags)
    if (!event.tags.contains(t)) return false;
  return true;
}

std::optional<query> projection_filter::index_query(const read_transaction& txn) const {
  if (!indexed || passes_all()) return std::nullopt;
  query_item item{event_types, tags, {}};
  // The index files "account-7" under "account", and a stream named
  // "account" under no category, while the filter has it in "account":
  // categories go to the index only when no such stream exists.
  bool by_category = !categories.empty() && stream_prefixes.empty();
  for (const auto& c : categories) {
    if (!by_category) break;
    if (c.empty() || c.find('-') != std::string::npos) by_category = false;
    auto same_name = txn.stream(c);
    if (!same_name || *same_name) by_category = false;
  }
  if (by_category) item.categories = categories;
  if (item.types.empty() && item.tags.empty() && item.categories.empty()) return std::nullopt;
  return query{{std::move(item)}};
}

namespace {

/// The newest writes a get looks through before it uses the index.
constexpr std::size_t newest_writes = 16;

}  // namespace

// The first update names the view, the rest leave it empty (the same view:
// view_update), which saves an allocation a row for names of over 15 bytes.
void view_batch::put(std::string_view key, std::string_view value) {
  updates_.push_back(view_update{updates_.empty() ? view_ : std::string(), view_update::op::put,
                                 std::string(key), std::string(value)});
}

void view_batch::erase(std::string_view key) {
  updates_.push_back(view_update{
      updates_.empty() ? view_ : std::string(), view_update::op::erase, std::string(key), {}});
}

void view_batch::rollback(std::size_t savepoint) {
  if (savepoint >= updates_.size()) return;
  updates_.resize(savepoint);
  if (indexed_ > savepoint) {  // rare (a handler failed): index again from scratch
    std::fill(slots_.begin(), slots_.end(), 0);
    keys_ = 0;
    indexed_ = 0;
  }
}

/// The slot of `key` in the table: the one that holds it, or the free one
/// where it would go. The table is never full (at most half its slots used).
std::size_t* view_batch::slot_of(std::string_view key) const {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = std::hash<std::string_view>{}(key)&mask;; i = (i + 1) & mask)
    if (slots_[i] == 0 || updates_[slots_[i] - 1].key == key) return &slots_[i];
}

void view_batch::index_up_to_date() const {
  for (; indexed_ < updates_.size(); ++indexed_) {
    if (2 * (keys_ + 1) > slots_.size()) {  // grow: twice the slots, the keys placed again
      std::vector<std::size_t> old(std::max<std::size_t>(64, 2 * slots_.size()), 0);
      old.swap(slots_);
      for (std::size_t at : old)
        if (at != 0) *slot_of(updates_[at - 1].key) = at;
    }
    std::size_t* slot = slot_of(updates_[indexed_].key);
    if (*slot == 0) ++keys_;
    *slot = indexed_ + 1;
  }
}

/// The batch's last write of `key`, or nullptr: among the newest writes,
/// else in the index (brought up to date when writes are left out of it).
const view_update* view_batch::latest(std::string_view key) const {
  const std::size_t newest =
      std::max(indexed_, updates_.size() - std::min(updates_.size(), newest_writes));
  for (std::size_t i = updates_.size(); i > newest; --i)
    if (updates_[i - 1].key == key) return &updates_[i - 1];
  if (newest > indexed_) index_up_to_date();
  if (slots_.empty()) return nullptr;
  const std::size_t at = *slot_of(key);
  return at == 0 ? nullptr : &updates_[at - 1];
}

result<std::optional<std::string>> view_batch::get(std::string_view key) const {
  const view_update* u = latest(key);
  if (!u && base_) u = base_->latest(key);
  if (u)
    return u->kind == view_update::op::put ? std::optional<std::string>{u->value}
                                           : std::optional<std::string>{};
  if (!txn_) return std::optional<std::string>{};
  auto v = txn_->view_get(view_, key);
  if (!v) return std::move(v).err();
  return *v ? std::optional<std::string>{std::string(**v)} : std::optional<std::string>{};
}

}  // namespace varve
