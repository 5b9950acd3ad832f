// The projection actor: a thin actor around a projection_engine. It carries
// the engine's reads to its log source, its commits to the storage actor of
// its own store, and its timers as messages to itself; control requests
// become engine calls whose replies are response promises.
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <optional>

#include "local_log.hpp"
#include "varve/actors/error.hpp"
#include "varve/projections/source.hpp"

namespace varve {

namespace {

struct projection_actor_state : engine_io {
  static inline const char* name = "varve.projection";

  projection_actor::pointer self = nullptr;
  storage_actor storage;
  std::shared_ptr<log_source> source;
  std::optional<projection_engine> engine;

  void read(global_position after, std::size_t limit, std::uint64_t ticket) override {
    source->read(after, limit, ticket);
  }

  void write(write_request request, std::uint64_t ticket) override {
    self->request(storage, caf::infinite, write_atom_v, std::move(request))
        .then([this, ticket](
                  const std::vector<append_result>&) { engine->on_written(ticket, std::nullopt); },
              [this, ticket](caf::error& e) { engine->on_written(ticket, error_from(e)); });
  }

  void wake(engine_timer timer, std::chrono::milliseconds delay, std::uint64_t ticket) override {
    switch (timer) {
      case engine_timer::read:
        return self->send(self, continue_atom_v, ticket);
      case engine_timer::retry:
        return self->delayed_send(self, delay, retry_atom_v, ticket);
      case engine_timer::checkpoint:
        return self->delayed_send(self, delay, checkpoint_atom_v, ticket);
    }
  }
};

using pointer = projection_actor::stateful_pointer<projection_actor_state>;

/// A control request's response promise as the engine's reply.
template <class Promise>
projection_engine::reply deliver_to(Promise promise) {
  return [promise](const projection_status& s) mutable { promise.deliver(s); };
}

projection_actor::behavior_type projection_behavior(pointer self,
                                                    std::shared_ptr<log_source> source,
                                                    std::shared_ptr<const event_store> store,
                                                    storage_actor storage, projection_spec spec) {
  auto& st = self->state;
  st.self = self;
  st.storage = std::move(storage);
  st.source = std::move(source);
  st.engine.emplace(std::move(spec), std::move(store), st, st.source->where());
  // The checkpoint is read once the storage actor has committed what came
  // before: the last writes of an instance that stopped just now (a commit
  // in flight, its stored state) land first, and this one starts from
  // them. Other messages wait meanwhile.
  self->request(st.storage, caf::infinite, stats_atom_v)
      .await(
          [self](const commit_stats&) {
            self->state.engine->start();
            self->state.source->start(self, *self->state.engine);
          },
          [self](caf::error& e) {
            self->state.engine->fail("reading the checkpoint: " + error_from(e).to_string());
          });
  // Stopping: the engine's last write (its stored state, at-least-once its
  // cursor) goes to the storage actor, which commits it before it stops.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    caf::anon_send(self->state.storage, write_atom_v, self->state.engine->stop());
    self->quit(msg.reason);
  });
  auto promise = [self] { return self->make_response_promise<projection_status>(); };
  return {
      [self](committed_atom, std::uint64_t head) { self->state.engine->on_head(head); },
      [self](status_atom) {
        auto& st = self->state;
        if (auto head = st.source->head()) st.engine->observe_head(*head);
        return st.engine->status();
      },
      [self, promise](pause_atom) -> caf::result<projection_status> {
        auto p = promise();
        self->state.engine->pause(deliver_to(p));
        return p;
      },
      [self, promise](resume_atom) -> caf::result<projection_status> {
        auto p = promise();
        self->state.engine->resume(deliver_to(p));
        return p;
      },
      [self, promise](reset_atom, std::uint64_t to) -> caf::result<projection_status> {
        auto p = promise();
        self->state.engine->reset(to, deliver_to(p));
        return p;
      },
      [self, promise](rebuild_atom) -> caf::result<projection_status> {
        auto p = promise();
        self->state.engine->rebuild(deliver_to(p));
        return p;
      },
      [self, promise](control_error_atom, std::string& why) -> caf::result<projection_status> {
        auto p = promise();
        self->state.engine->report_error(std::move(why), deliver_to(p));
        return p;
      },
      [self](continue_atom, std::uint64_t ticket) {
        self->state.engine->on_timer(engine_timer::read, ticket);
      },
      [self](retry_atom, std::uint64_t ticket) {
        self->state.engine->on_timer(engine_timer::retry, ticket);
      },
      [self](checkpoint_atom, std::uint64_t ticket) {
        self->state.engine->on_timer(engine_timer::checkpoint, ticket);
      },
      [self](source_timer_atom, std::uint64_t tag) { self->state.source->on_timer(tag); },
  };
}

/// The log of the projection's own store, read in this process; heads from
/// its storage actor.
class local_source final : public log_source {
 public:
  local_source(std::shared_ptr<const event_store> store, storage_actor storage)
      : reader_(std::move(store)), storage_(std::move(storage)) {}

  void start(projection_actor::pointer self, projection_engine& engine) override {
    engine_ = &engine;
    self->request(storage_, caf::infinite, subscribe_atom_v, caf::actor_cast<head_subscriber>(self))
        .then(
            [this](std::uint64_t head) { engine_->on_head(head); },
            [this](caf::error& e) { engine_->fail("subscribing: " + error_from(e).to_string()); });
  }

  void read(global_position after, std::size_t limit, std::uint64_t ticket) override {
    reader_.read(*engine_, after, limit, ticket);
  }

  std::optional<global_position> head() const override { return reader_.head(); }

 private:
  detail::local_log_reader reader_;
  storage_actor storage_;
  projection_engine* engine_ = nullptr;
};

}  // namespace

projection_actor spawn_projection(caf::actor_system& sys, std::shared_ptr<log_source> source,
                                  std::shared_ptr<const event_store> store, storage_actor storage,
                                  projection_spec spec, bool detached) {
  if (detached)
    return sys.spawn<caf::detached>(projection_behavior, std::move(source), std::move(store),
                                    std::move(storage), std::move(spec));
  return sys.spawn(projection_behavior, std::move(source), std::move(store), std::move(storage),
                   std::move(spec));
}

projection_actor spawn_projection(caf::actor_system& sys, std::shared_ptr<const event_store> store,
                                  storage_actor storage, projection_spec spec) {
  auto source = std::make_shared<local_source>(store, storage);
  return spawn_projection(sys, std::move(source), std::move(store), std::move(storage),
                          std::move(spec));
}

}  // namespace varve
