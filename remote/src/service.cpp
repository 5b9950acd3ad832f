#include "varve/remote/service.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <varve/actors/aggregate.hpp>
#include <varve/actors/error.hpp>
#include <varve/projections/projection.hpp>

namespace varve::remote {

void configure_remote(caf::actor_system_config& cfg) {
  cfg.load<caf::io::middleman>();
  cfg.add_message_types<caf::id_block::varve>();
  cfg.add_message_types<caf::id_block::varve_projections>();
  cfg.add_message_types<caf::id_block::varve_remote>();
  add_error_category(cfg);
}

namespace {

/// Copies the events `views` of `txn` into a batch, up to the byte bound.
result<event_batch> to_batch(const read_transaction& txn, const std::vector<event_view>& views) {
  event_batch out;
  out.head = txn.head();
  if (out.head > 0)
    if (auto newest = txn.event_at(out.head)) out.head_time = newest->time;
  out.events.reserve(views.size());
  std::size_t bytes = 0;
  for (const auto& v : views) {
    if (!out.events.empty() && bytes >= max_batch_bytes) break;
    auto name = txn.stream_name(v.stream_id);
    if (!name) return std::move(name).err();
    out.events.push_back(recorded_event::from(v, *name));
    bytes += v.type.size() + v.payload.size() + v.metadata.size() + name->size() + 64;
  }
  return out;
}

/// A forward read of at most `limit` matches from `from` that returned
/// `matches` of them: sets how far `batch` covers the log. Every match up to
/// the head was seen when fewer than asked came back and all of them fit in
/// the answer; else every match up to the last one sent.
void set_covered(event_batch& batch, std::size_t matches, std::uint64_t limit,
                 global_position from) {
  if (batch.events.size() < matches || matches == limit)
    batch.covered = batch.events.empty() ? 0 : batch.events.back().position;
  else
    batch.covered = std::max(batch.head, from == 0 ? 0 : from - 1);
}

caf::result<event_batch> answer(result<event_batch>&& r) {
  if (!r) return to_caf(r.err());
  return std::move(r).value();
}

struct service_state {
  static inline const char* name = "varve.service";
  std::shared_ptr<const event_store> store;
  storage_actor storage;
  aggregate_registries aggregates;
};

service_actor::behavior_type service_behavior(service_actor::stateful_pointer<service_state> self,
                                              std::shared_ptr<const event_store> store,
                                              storage_actor storage,
                                              aggregate_registries aggregates) {
  self->state.store = std::move(store);
  self->state.storage = std::move(storage);
  self->state.aggregates = std::move(aggregates);
  return {
      [](hello_atom, std::uint32_t client) -> caf::result<std::uint32_t> {
        if (client != protocol_version)
          return make_error(errc::invalid_argument,
                            "protocol version mismatch: client speaks " + std::to_string(client) +
                                ", service speaks " + std::to_string(protocol_version));
        return protocol_version;
      },
      [self](append_atom a, append_request& r) {
        return self->delegate(self->state.storage, a, std::move(r));
      },
      [self](append_atom a, std::vector<append_request>& r) {
        return self->delegate(self->state.storage, a, std::move(r));
      },
      [self](read_atom, const std::string& stream, std::uint64_t from, bool backward,
             std::uint64_t limit) -> caf::result<event_batch> {
        auto txn = self->state.store->read();
        if (!txn) return to_caf(txn.err());
        auto views =
            txn->read_stream(stream, from, backward ? direction::backward : direction::forward,
                             std::min(limit, max_batch_events));
        if (!views) return to_caf(views.err());
        return answer(to_batch(*txn, *views));
      },
      [self](read_log_atom, std::uint64_t from, bool backward,
             std::uint64_t limit) -> caf::result<event_batch> {
        auto txn = self->state.store->read();
        if (!txn) return to_caf(txn.err());
        auto views = txn->read_log(from, backward ? direction::backward : direction::forward,
                                   std::min(limit, max_batch_events));
        if (!views) return to_caf(views.err());
        return answer(to_batch(*txn, *views));
      },
      [self](read_query_atom, const filter_terms& terms, std::uint64_t from,
             std::uint64_t limit) -> caf::result<event_batch> {
        auto txn = self->state.store->read();
        if (!txn) return to_caf(txn.err());
        const std::uint64_t lim = std::min(limit, max_batch_events);
        projection_filter filter{terms.categories, {}, terms.types, terms.tags};
        auto q = filter.index_query(*txn);
        if (!q) {  // nothing for the indexes: the log itself
          auto views = txn->read_log(from, direction::forward, lim);
          if (!views) return to_caf(views.err());
          return answer(to_batch(*txn, *views));
        }
        auto views = txn->read_query(*q, from, direction::forward, lim);
        if (!views) return to_caf(views.err());
        auto batch = to_batch(*txn, *views);
        if (!batch) return to_caf(batch.err());
        set_covered(*batch, views->size(), lim, from);
        return std::move(*batch);
      },
      [self](read_query_atom, const query& q, std::uint64_t from, bool backward,
             std::uint64_t limit) -> caf::result<event_batch> {
        auto txn = self->state.store->read();
        if (!txn) return to_caf(txn.err());
        const std::uint64_t lim = std::min(limit, max_batch_events);
        auto views =
            txn->read_query(q, from, backward ? direction::backward : direction::forward, lim);
        if (!views) return to_caf(views.err());
        auto batch = to_batch(*txn, *views);
        if (!batch) return to_caf(batch.err());
        if (!backward) {
          set_covered(*batch, views->size(), lim, from);
          // A position past the head was not seen: a decision that appended
          // under it would pass over matches written there later.
          batch->covered = std::min(batch->covered, batch->head);
        }
        return std::move(*batch);
      },
      [self](write_atom a, write_request& r) {
        return self->delegate(self->state.storage, a, std::move(r));
      },
      [self](subscribe_atom a, head_subscriber& subscriber) {
        return self->delegate(self->state.storage, a, std::move(subscriber));
      },
      [self](unsubscribe_atom a, head_subscriber& subscriber) {
        self->send(self->state.storage, a, std::move(subscriber));
      },
      [self](shred_atom a, std::string& stream) {
        return self->delegate(self->state.storage, a, std::move(stream));
      },
      [self](stats_atom a) { return self->delegate(self->state.storage, a); },
      [self](command_atom, const std::string& type) -> caf::result<caf::actor> {
        const auto& all = self->state.aggregates;
        if (auto it = all.find(type); it != all.end()) return it->second;
        std::string known;
        for (const auto& [name, registry] : all)
          known += (known.empty() ? "" : ", ") + name;
        return make_error(errc::not_found, "no aggregate type '" + type +
                                               "' is served here (served: " +
                                               (known.empty() ? "none" : known) + ")");
      },
  };
}

}  // namespace

service_actor spawn_service(caf::actor_system& sys, std::shared_ptr<const event_store> store,
                            storage_actor storage, aggregate_registries aggregates) {
  return sys.spawn(service_behavior, std::move(store), std::move(storage), std::move(aggregates));
}

result<std::uint16_t> publish(caf::actor_system& sys, const service_actor& service,
                              const std::string& host, std::uint16_t port) {
  auto p = sys.middleman().publish(service, port, host.c_str(), true);
  if (!p)
    return error{errc::unavailable, "cannot listen on " + host + ":" + std::to_string(port) + ": " +
                                        sys.render(p.error())};
  return *p;
}

}  // namespace varve::remote
