// A registry's bookkeeping: the live set (LRU, capped), the commands in
// flight, the counters.
#include <caf/exit_reason.hpp>

#include "varve/actors/aggregate.hpp"

namespace varve::detail {

live_aggregates::live_aggregates(std::size_t max_alive) : max_alive_(max_alive) {}

caf::actor live_aggregates::find(const std::string& id) {
  auto it = alive_.find(id);
  if (it == alive_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.actor;
}

std::vector<caf::actor> live_aggregates::make_room() {
  std::vector<caf::actor> victims;
  while (alive_.size() >= max_alive_ && !lru_.empty()) {
    auto victim = alive_.find(lru_.back());
    victims.push_back(victim->second.actor);
    const auto addr = victim->second.actor.address();
    ids_.erase(addr);
    leaving_by_addr_[addr] = victim->first;
    leaving_[victim->first] = addr;
    lru_.pop_back();
    alive_.erase(victim);
    ++passivated_;
  }
  return victims;
}

void live_aggregates::add(const std::string& id, caf::actor actor) {
  ids_.emplace(actor.address(), id);
  lru_.push_front(id);
  alive_.emplace(id, entry{std::move(actor), lru_.begin()});
  ++spawned_;
}

void live_aggregates::retire(const caf::actor_addr& addr) {
  auto it = ids_.find(addr);
  if (it == ids_.end()) return;
  if (auto a = alive_.find(it->second); a != alive_.end() && a->second.actor.address() == addr) {
    leaving_by_addr_[addr] = a->first;
    leaving_[a->first] = addr;
    lru_.erase(a->second.lru);
    alive_.erase(a);
  }
}

bool live_aggregates::leaving(const std::string& id) const {
  return leaving_.count(id) > 0;
}

void live_aggregates::hold(pending_command job) {
  auto& jobs = held_[job.id];
  jobs.push_back(std::move(job));
}

std::uint64_t live_aggregates::track(const caf::actor_addr& to, pending_command job) {
  const auto key = next_key_++;
  pending_[to].emplace(key, std::move(job));
  return key;
}

std::optional<pending_command> live_aggregates::take(const caf::actor_addr& to, std::uint64_t key) {
  auto p = pending_.find(to);
  if (p == pending_.end()) return std::nullopt;
  auto j = p->second.find(key);
  if (j == p->second.end()) return std::nullopt;
  auto out = std::move(j->second);
  p->second.erase(j);
  if (p->second.empty()) pending_.erase(p);
  return out;
}

bool live_aggregates::bounce(pending_command& job, const caf::actor_addr& from) {
  if (job.bounces >= max_bounces) return false;
  ++job.bounces;
  // The bounce may come before the actor's down message: forget it now, so
  // that the retry does not go to it again.
  retire(from);
  return true;
}

live_aggregates::after_down live_aggregates::down(const caf::actor_addr& addr,
                                                  const caf::error& reason) {
  retire(addr);
  after_down out;
  if (auto l = leaving_by_addr_.find(addr); l != leaving_by_addr_.end()) {
    const std::string id = l->second;
    leaving_by_addr_.erase(l);
    if (auto it = leaving_.find(id); it != leaving_.end() && it->second == addr) {
      leaving_.erase(it);
      if (auto h = held_.find(id); h != held_.end()) {
        out.resume = std::move(h->second);
        held_.erase(h);
      }
    }
  }
  const bool normal = reason == caf::exit_reason::normal;
  if (ids_.erase(addr) > 0 && normal) ++passivated_;  // evicted ones were counted then
  if (normal) return out;  // its queued commands bounce and go to a fresh actor
  ++crashed_;
  auto p = pending_.find(addr);
  if (p == pending_.end()) return out;
  for (auto& [key, job] : p->second)
    out.failed.push_back(std::move(job));
  pending_.erase(p);
  return out;
}

registry_stats live_aggregates::stats() const {
  return {alive_.size(), spawned_, passivated_, crashed_};
}

std::vector<caf::actor> live_aggregates::actors() const {
  std::vector<caf::actor> out;
  out.reserve(alive_.size());
  for (const auto& [id, e] : alive_)
    out.push_back(e.actor);
  return out;
}

}  // namespace varve::detail
