#include "local_log.hpp"

#include <algorithm>

namespace varve::detail {

namespace {

/// Stream ids below this have their names cached.
constexpr std::uint64_t max_cached_names = std::uint64_t{1} << 20;

}  // namespace

/// The name of stream `id`, from the cache or looked up in `txn` (then
/// cached). The view stays valid until the next lookup of an id not yet
/// cached (the cache may grow), or with the transaction.
std::string_view local_log_reader::name_of(const read_transaction& txn, std::uint64_t id) {
  if (id < names_.size() && !names_[id].empty()) return names_[id];
  auto name = txn.stream_name(id);
  if (!name) return {};
  if (id >= max_cached_names) return *name;
  if (id >= names_.size()) names_.resize(std::max<std::size_t>(id + 1, 2 * names_.size()));
  return names_[id] = std::string(*name);
}

void local_log_reader::read(projection_engine& engine, global_position after, std::size_t limit,
                            std::uint64_t ticket) {
  auto txn = store_->read();
  if (!txn) return engine.on_read_failed(ticket, txn.err());
  const global_position head = txn->head();
  if (head > head_ || head_time_ == 0) {
    head_ = std::max(head_, head);
    if (auto last = txn->event_at(head)) head_time_ = last->time;
  }
  global_position covered = 0;
  if (auto q = engine.filter().index_query(*txn)) {
    // Views that live as long as the transaction (a scan's visitor gets
    // decrypted bytes valid during its call only).
    auto matched = txn->read_query(*q, after + 1, direction::forward, limit);
    if (!matched) return engine.on_read_failed(ticket, matched.err());
    events_ = std::move(*matched);
    covered = events_.size() < limit ? std::max(head, after) : events_.back().position;
  } else {
    auto n = txn->read_log(after + 1, direction::forward, limit, events_);
    if (!n) return engine.on_read_failed(ticket, n.err());
  }
  for (const event_view& e : events_)  // names first (the cache may grow), then views into it
    name_of(*txn, e.stream_id);
  delivered_.clear();
  for (const event_view& e : events_)
    delivered_.push_back(delivered_event{e, name_of(*txn, e.stream_id)});
  engine.on_batch(ticket, log_batch{delivered_, head, head_time_, &*txn, covered});
  delivered_.clear();  // their views die with the transaction
  events_.clear();
}

std::optional<global_position> local_log_reader::head() const {
  auto txn = store_->read();
  if (!txn) return std::nullopt;
  return txn->head();
}

}  // namespace varve::detail
