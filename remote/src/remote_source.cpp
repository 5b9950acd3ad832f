// The log source of a projection host: a store service in another process.
// It connects, subscribes the projection to the service's heads, and reads
// batches on the engine's behalf. A connection lost (the service's node
// down, a request timed out) is reconnected with exponential backoff; the
// read the engine waits for is kept and asked again once subscribed. A
// projection whose filter names event types, tags or categories has the
// service read through its store's indexes (read_query_atom); the engine
// checks each event it is handed against the filter all the same.
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <varve/projections/source.hpp>

#include "handshake.hpp"
#include "varve/remote/client.hpp"
#include "varve/remote/projection_host.hpp"

namespace varve::remote {

namespace {

/// The tags of `e` in the stored form a tag_list reads (len:u8 bytes,
/// repeated; the service read them from a record, so each fits).
std::string encoded_tags(const recorded_event& e) {
  std::string out;
  for (const auto& t : e.tags) {
    out += static_cast<char>(static_cast<unsigned char>(t.size()));
    out += t;
  }
  return out;
}

/// A view of `e`; its tags are views into `tags` (encoded_tags(e)).
event_view view_of(const recorded_event& e, const std::string& tags) {
  event_view v;
  v.tags = tag_list(tags, e.tags.size());
  v.position = e.position;
  v.version = e.version;
  v.id = e.id;
  v.time = e.time;
  v.type = e.type;
  v.metadata = e.metadata;
  v.payload = e.payload;
  v.shredded = e.shredded;
  return v;
}

/// The terms of `f` for the service's indexes; std::nullopt when the
/// whole log is to be read (see projection_filter::index_query, which the
/// service applies to them: it leaves out categories that a stream's own
/// name shadows).
std::optional<filter_terms> terms_of(const projection_filter& f) {
  if (!f.indexed || f.passes_all()) return std::nullopt;
  filter_terms t{f.event_types, f.tags, {}};
  bool by_category = !f.categories.empty() && f.stream_prefixes.empty();
  for (const auto& c : f.categories)
    if (c.empty() || c.find('-') != std::string::npos) by_category = false;
  if (by_category) t.categories = f.categories;
  if (t.types.empty() && t.tags.empty() && t.categories.empty()) return std::nullopt;
  return t;
}

class remote_source final : public log_source {
 public:
  explicit remote_source(remote_projection_options opts) : opts_(std::move(opts)) {}

  void start(projection_actor::pointer self, projection_engine& engine) override {
    self_ = self;
    engine_ = &engine;
    terms_ = terms_of(engine.filter());
    self->set_down_handler([this](caf::down_msg& msg) {
      if (service_ && msg.source == service_.address())
        lost(generation_, "it went away (" + caf::to_string(msg.reason) + ")");
    });
    connect();
  }

  void read(global_position after, std::size_t limit, std::uint64_t ticket) override {
    wanted_ = read_request{after, static_cast<std::uint64_t>(limit), ticket};
    if (subscribed_) ask(*wanted_);
  }

  void on_timer(std::uint64_t tag) override {
    if (tag & slow_connect) {
      // The middleman has not answered this attempt's connect yet: say so
      // (it goes on waiting; see connect()).
      if (connecting_ && !service_ && (tag & ~slow_connect) == attempt_)
        engine_->source_unavailable(
            "cannot connect to the store service at " + where() + ": no answer in " +
            std::to_string(opts_.request_timeout.count()) + " ms, still trying");
      return;
    }
    if (tag == generation_ && !service_) connect();
  }

  std::string where() const override { return opts_.host + ":" + std::to_string(opts_.port); }

 private:
  struct read_request {
    global_position after = 0;
    std::uint64_t limit = 0;
    std::uint64_t ticket = 0;
  };

  /// Asynchronous, as every step of the source: the middleman's connect,
  /// the handshake, then the subscription. Each failure is reported to the
  /// engine and retried after the backoff. One attempt at a time; the
  /// connection's generation only moves once it is subscribed (lost()).
  ///
  /// The connect waits for the middleman's answer however long it takes:
  /// CAF 0.17's middleman connects one address at a time, blocking its
  /// thread until the kernel gives up on an address that drops the
  /// connection (about two minutes). Asking again after a timeout would
  /// queue connect after connect behind that one, each blocking in turn
  /// (and the actor system's shutdown waits for them). After
  /// request_timeout the status says that it is still trying.
  void connect() {
    if (connecting_) return;
    connecting_ = true;
    ++attempt_;
    const std::string at = where();
    auto& sys = self_->system();
    self_->delayed_send(self_, opts_.request_timeout, source_timer_atom_v, slow_connect | attempt_);
    self_
        ->request(sys.middleman().actor_handle(), caf::infinite, caf::connect_atom_v, opts_.host,
                  opts_.port)
        .then(
            [this, at](const caf::node_id&, caf::strong_actor_ptr& ptr,
                       const std::set<std::string>& ifs) {
              auto& sys = self_->system();
              if (!ptr)
                return unreachable(
                    error{errc::unavailable, "cannot connect to the store service at " + at +
                                                 ": nothing is published there"});
              if (!sys.assignable(ifs, sys.message_types<service_actor>()))
                return unreachable(detail::interface_mismatch(at, protocol_version));
              hello(caf::actor_cast<service_actor>(std::move(ptr)));
            },
            [this, at](caf::error& e) {
              unreachable(detail::connect_failed(self_->system(), at, e, protocol_version));
            });
  }

  /// The handshake with the service just reached, then the subscription.
  void hello(service_actor service) {
    const std::string at = where();
    self_->request(service, opts_.request_timeout, hello_atom_v, protocol_version)
        .then(
            [this, at, service](std::uint32_t theirs) {
              if (theirs != protocol_version)
                return unreachable(detail::version_mismatch(at, protocol_version, theirs));
              subscribe(service);
            },
            [this, at](caf::error& e) {
              unreachable(detail::handshake_failed(at, error_from_remote(e)));
            });
  }

  void subscribe(service_actor service) {
    connecting_ = false;
    service_ = std::move(service);
    self_->monitor(service_);
    const auto g = generation_;
    self_
        ->request(service_, opts_.request_timeout, subscribe_atom_v,
                  caf::actor_cast<head_subscriber>(self_))
        .then(
            [this, g](std::uint64_t head) {
              if (g != generation_) return;
              subscribed_ = true;
              backoff_ = std::chrono::milliseconds(0);
              engine_->source_available();
              engine_->on_head(head);
              if (wanted_) ask(*wanted_);
            },
            [this, g](caf::error& e) { lost(g, error_from_remote(e).message()); });
  }

  /// Connecting failed: say why, and try again later.
  void unreachable(const error& why) {
    connecting_ = false;
    engine_->source_unavailable(why.message());
    reconnect_later();
  }

  void ask(read_request r) {
    const auto g = generation_;
    auto batch = [this, g, r](event_batch& b) {
      if (g != generation_) return;
      if (wanted_ && wanted_->ticket == r.ticket) wanted_.reset();
      delivered_.clear();
      tags_.clear();
      for (const auto& e : b.events)  // all encoded first: views into them follow
        tags_.push_back(encoded_tags(e));
      for (std::size_t i = 0; i < b.events.size(); ++i)
        delivered_.push_back(delivered_event{view_of(b.events[i], tags_[i]), b.events[i].stream});
      engine_->on_batch(r.ticket, log_batch{delivered_, b.head, b.head_time, nullptr, b.covered});
      delivered_.clear();
    };
    auto failed = [this, g, r](caf::error& e) {
      auto err = error_from_remote(e);
      if (err.code() == errc::unavailable) return lost(g, err.message());
      if (g != generation_) return;
      if (wanted_ && wanted_->ticket == r.ticket) wanted_.reset();
      engine_->on_read_failed(r.ticket, err);
    };
    if (terms_)
      self_
          ->request(service_, opts_.request_timeout, read_query_atom_v, *terms_, r.after + 1,
                    r.limit)
          .then(std::move(batch), std::move(failed));
    else
      self_->request(service_, opts_.request_timeout, read_log_atom_v, r.after + 1, false, r.limit)
          .then(std::move(batch), std::move(failed));
  }

  /// The connection is gone (or useless): forget it and reconnect later.
  void lost(std::uint64_t generation, const std::string& why) {
    if (generation != generation_ || !service_) return;
    ++generation_;
    subscribed_ = false;
    self_->demonitor(service_.address());
    service_ = nullptr;
    engine_->source_unavailable("the store service at " + where() + ": " + why);
    reconnect_later();
  }

  void reconnect_later() {
    backoff_ =
        backoff_.count() == 0 ? opts_.min_backoff : std::min(backoff_ * 2, opts_.max_backoff);
    self_->delayed_send(self_, backoff_, source_timer_atom_v, generation_);
  }

  remote_projection_options opts_;
  projection_actor::pointer self_ = nullptr;
  projection_engine* engine_ = nullptr;
  service_actor service_;
  bool connecting_ = false;    ///< a connect or handshake is in flight
  std::uint64_t attempt_ = 0;  ///< connects asked for so far
  /// Marks a timer of an attempt's connect (the others carry a generation).
  static constexpr std::uint64_t slow_connect = std::uint64_t{1} << 63;
  bool subscribed_ = false;
  std::uint64_t generation_ = 0;  ///< bumped when a connection is lost
  std::chrono::milliseconds backoff_{0};
  std::optional<read_request> wanted_;  ///< the read the engine waits for
  std::optional<filter_terms> terms_;   ///< reads through the service's indexes
  std::vector<delivered_event> delivered_;
  std::vector<std::string> tags_;  ///< the batch's tags, encoded, by event
};

}  // namespace

projection_actor spawn_remote_projection(caf::actor_system& sys,
                                         std::shared_ptr<const event_store> local_store,
                                         storage_actor local_storage, projection_spec spec,
                                         remote_projection_options opts) {
  return spawn_projection(sys, std::make_shared<remote_source>(std::move(opts)),
                          std::move(local_store), std::move(local_storage), std::move(spec));
}

projection_spawner remote_projections(std::shared_ptr<const event_store> local_store,
                                      storage_actor local_storage, remote_projection_options opts) {
  return [local_store, local_storage, opts](caf::actor_system& sys, projection_spec spec) {
    return spawn_remote_projection(sys, local_store, local_storage, std::move(spec), opts);
  };
}

}  // namespace varve::remote
