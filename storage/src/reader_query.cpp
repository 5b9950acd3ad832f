// Reading the log by query, through the type, category and tag indexes.
#include <algorithm>
#include "indexes.hpp"

#include "store_impl.hpp"

namespace varve {

result<std::size_t> read_transaction::scan_query(
    const query& q, global_position from, direction dir, std::size_t limit,
    function_ref<bool(const event_view&)> visit) const {
  if (auto valid = detail::index::validate(q); !valid) return std::move(valid).err();
  if (limit == 0) return std::size_t{0};
  const detail::read_state& s = *state_;
  auto covered = detail::index::read_coverage(s.txn.get(), s.store->dbs);
  if (!covered) return std::move(covered).err();
  const detail::index::query_source src{
      s.txn.get(), &s.store->dbs, head(), covered->indexed_through, covered->segmented_through,
      nullptr,     &s.finder()};
  const bool any_category = std::any_of(q.items.begin(), q.items.end(),
                                        [](const query_item& i) { return !i.categories.empty(); });
  const bool keep = s.keep_bodies;
  std::size_t visited = 0;
  event_view ev;
  auto scanned = detail::index::scan_candidates(
      src, q, dir == direction::forward ? std::max<global_position>(from, 1) : from, dir,
      [&](global_position pos, std::string_view bytes) -> result<bool> {
        if (auto failed = s.event_into(pos, bytes, keep, ev)) return std::move(*failed);
        std::string_view name;
        if (any_category) {
          auto found = s.name_of(ev.stream_id);
          if (!found) return std::move(found).err();
          name = *found;
        }
        if (!q.matches(ev, name)) return true;
        ++visited;
        return visit(ev) && visited < limit;
      });
  if (!scanned) return std::move(scanned).err();
  return visited;
}

result<std::vector<event_view>> read_transaction::read_query(const query& q, global_position from,
                                                             direction dir,
                                                             std::size_t limit) const {
  std::vector<event_view> out;
  auto collect = [&](const event_view& v) {
    out.push_back(v);
    return true;
  };
  detail::keeping_bodies keep(*state_);
  auto n = scan_query(q, from, dir, limit, collect);
  if (!n) return std::move(n).err();
  return out;
}

result<std::vector<append_result>> event_store::append(std::span<const append_request> requests,
                                                       const append_condition& condition) {
  write_request req;
  req.condition = condition;
  std::vector<detail::append_ref> appends;
  appends.reserve(requests.size());
  for (const append_request& a : requests)
    appends.push_back(detail::append_ref{a.stream, a.expected, a.events});
  const detail::request_ref ref{appends, &req};
  auto out = impl_->write(std::span<const detail::request_ref>(&ref, 1), nullptr);
  if (!out) return std::move(out).err();
  return std::move(out->front());
}

}  // namespace varve
