#include "varve/runtime.hpp"

#include <caf/atom.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/settings.hpp>
#include <caf/thread_hook.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include <varve/actors/error.hpp>
#include <varve/actors/log.hpp>

#include "varve/config/varve_config.hpp"

namespace varve {

namespace {

/// How long shutdown waits for each actor it stops before going on without
/// it (a well-behaved actor is down in milliseconds).
constexpr auto stop_timeout = std::chrono::seconds(10);

/// Stops `actor` and waits until it is down, at most stop_timeout.
void stop(caf::scoped_actor& self, const caf::actor& actor, std::string_view what) {
  if (!actor) return;
  self->monitor(actor);
  self->send_exit(actor, caf::exit_reason::user_shutdown);
  bool down = false;
  while (!down) {
    bool timed_out = false;
    self->receive([&](caf::down_msg& m) { down = m.source == actor.address(); },
                  caf::after(stop_timeout) >> [&] { timed_out = true; });
    if (timed_out) {
      log(log_level::warning, "runtime", std::string(what) + " did not stop in time; going on");
      return;
    }
  }
}

}  // namespace

struct runtime::impl {
  std::unique_ptr<varve_config> own_config;  // when opened from runtime_options
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<const event_store> store;
  storage_actor storage;
  projection_manager manager;
  aggregate_options aggregates;
  decision_options decisions;
  std::map<std::string, delivery, std::less<>> modes;  // projection -> delivery

  std::mutex mutex;  // guards what follows
  std::vector<std::pair<std::type_index, caf::actor>> registries;
  std::vector<std::pair<std::type_index, caf::actor>> deciders;
  std::atomic<bool> stopped{false};

  ~impl() { shutdown(); }

  void shutdown() {
    std::vector<std::pair<std::type_index, caf::actor>> regs, decs;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (stopped || !sys) return;
      stopped = true;
      regs.swap(registries);
      decs.swap(deciders);
    }
    {
      caf::scoped_actor self{*sys};
      for (auto& [type, registry] : regs)
        stop(self, registry, "a registry");
      for (auto& [type, decider] : decs)
        stop(self, decider, "a decider");
      stop(self, caf::actor_cast<caf::actor>(manager), "the projection manager");
      stop(self, caf::actor_cast<caf::actor>(storage), "the storage actor");
    }
    manager = nullptr;
    storage = nullptr;
    // Actors the application spawned on system() are not waited for.
    sys->await_actors_before_shutdown(false);
    sys.reset();
  }
};

runtime::runtime(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
runtime::runtime(runtime&&) noexcept = default;
runtime& runtime::operator=(runtime&&) noexcept = default;
runtime::~runtime() = default;

namespace {

result<void> check_names(const std::vector<projection_spec>& specs) {
  std::set<std::string> names;
  for (const auto& s : specs) {
    if (s.name.empty()) return error{errc::invalid_argument, "a projection has no name"};
    if (!names.insert(s.name).second)
      return error{errc::invalid_argument, "two projections are named '" + s.name + "'"};
  }
  return {};
}

/// A blocking request to one of the runtime's actors: its answer, or the
/// error (timeout after 30 s, which a well-behaved actor never reaches).
template <class T, class Handle, class... Ts>
result<T> call(caf::actor_system& sys, const Handle& to, Ts&&... xs) {
  std::optional<result<T>> out;
  caf::scoped_actor self{sys};
  self->request(to, std::chrono::seconds(30), std::forward<Ts>(xs)...)
      .receive([&](T& x) { out.emplace(std::move(x)); },
               [&](caf::error& e) { out.emplace(error_from(e)); });
  return std::move(*out);
}

const error shut_down{errc::unavailable, "the runtime is shut down"};

/// The actor system whose thread this is (scheduler workers), if any.
thread_local const caf::actor_system* system_of_this_thread = nullptr;

/// Marks the threads of an actor system, so that a blocking call made on
/// one of them (from inside an actor: a projection's handler, an
/// aggregate's decide) is refused instead of waiting for itself.
class thread_marker : public caf::thread_hook {
 public:
  void init(caf::actor_system& sys) override { sys_ = &sys; }
  void thread_started() override { system_of_this_thread = sys_; }
  void thread_terminates() override { system_of_this_thread = nullptr; }

 private:
  const caf::actor_system* sys_ = nullptr;
};

}  // namespace

result<runtime> runtime::open(runtime_options options) {
  auto cfg = std::make_unique<varve_config>();
  add_varve_types(*cfg);
  cfg->add_thread_hook<thread_marker>();
  caf::put(cfg->content, "scheduler.max-threads", std::max<std::size_t>(options.threads, 1));
  auto p = std::make_unique<impl>();
  p->own_config = std::move(cfg);
  if (auto ok = check_names(options.projections); !ok) return std::move(ok).err();
  if (options.store.directory.empty())
    return error{errc::invalid_argument, "the store's directory is not set (options.directory)"};
  auto opened = event_store::open(options.store);
  if (!opened) return std::move(opened).err();
  std::shared_ptr<event_store> store = std::move(*opened);
  p->store = store;
  p->aggregates = options.aggregates;
  p->decisions = options.decisions;
  for (const auto& s : options.projections)
    p->modes.emplace(s.name, s.mode);
  p->sys = std::make_unique<caf::actor_system>(*p->own_config);
  p->storage = spawn_storage(*p->sys, store, options.storage);
  p->manager = spawn_projection_manager(*p->sys, p->store, p->storage,
                                        std::move(options.projections), options.poll_interval);
  return runtime(std::move(p));
}

result<runtime> runtime::open(varve_config& cfg, std::vector<projection_spec> projections) {
  add_varve_types(cfg);
  if (cfg.data_dir.empty())
    return error{errc::invalid_argument,
                 "the data directory is not set (--varve.data-dir, varve_config::data_dir; "
                 "varve::configure sets a program's default)"};
  if (auto ok = check_names(projections); !ok) return std::move(ok).err();
  auto opened = event_store::open(cfg.store_options());
  if (!opened) return std::move(opened).err();
  std::shared_ptr<event_store> store = std::move(*opened);
  auto p = std::make_unique<impl>();
  p->store = store;
  p->aggregates = cfg.aggregates();
  p->decisions = cfg.decisions();
  for (auto& s : projections) {
    cfg.apply(s);
    p->modes.emplace(s.name, s.mode);
  }
  cfg.add_thread_hook<thread_marker>();
  p->sys = std::make_unique<caf::actor_system>(cfg);
  p->storage = spawn_storage(*p->sys, store, cfg.storage());
  p->manager = spawn_projection_manager(*p->sys, p->store, p->storage, std::move(projections));
  return runtime(std::move(p));
}

void runtime::shutdown() {
  if (impl_) impl_->shutdown();
}

const std::shared_ptr<const event_store>& runtime::store() const {
  static const std::shared_ptr<const event_store> none;
  return impl_ ? impl_->store : none;
}

caf::actor_system& runtime::system() {
  if (!impl_ || !impl_->sys) throw std::logic_error("varve::runtime::system(): no actor system");
  return *impl_->sys;
}

storage_actor runtime::storage() const {
  return impl_ ? impl_->storage : storage_actor{};
}

projection_manager runtime::manager() const {
  return impl_ ? impl_->manager : projection_manager{};
}

caf::actor runtime::registry_handle(std::type_index type, registry_spawner spawn) {
  if (!impl_) return {};
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (impl_->stopped) return {};
  for (const auto& [t, registry] : impl_->registries)
    if (t == type) return registry;
  auto registry = spawn(*impl_->sys, {impl_->store, impl_->storage, impl_->aggregates});
  impl_->registries.emplace_back(type, registry);
  return registry;
}

caf::actor runtime::decider_handle(std::type_index type, decider_spawner spawn) {
  if (!impl_) return {};
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (impl_->stopped) return {};
  for (const auto& [t, decider] : impl_->deciders)
    if (t == type) return decider;
  auto decider = spawn(*impl_->sys, {impl_->store, impl_->storage, impl_->decisions});
  impl_->deciders.emplace_back(type, decider);
  return decider;
}

template <class Reply>
std::future<result<Reply>> runtime::ask(caf::actor to, caf::message request,
                                        std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<result<Reply>>>();
  auto answer = promise->get_future();
  if (!to) {
    promise->set_value(error{errc::unavailable, "the runtime is shut down"});
    return answer;
  }
  // A short-lived actor per request: it answers the future once, with the
  // reply, the error, or `unavailable` when the registry (or decider) goes
  // down first (a registry that stops may leave what it passed on
  // unanswered).
  // The promise is a spawn argument, not a capture: CAF 0.17 spawns a
  // function without arguments through a null shared_ptr<std::tuple<>>
  // (init_fun_factory), which UBSan reports as a null reference binding.
  using promise_ptr = std::shared_ptr<std::promise<result<Reply>>>;
  impl_->sys->spawn(
      [to, request = std::move(request), timeout](caf::event_based_actor* self,
                                                  promise_ptr promise) mutable {
        auto answered = std::make_shared<bool>(false);
        auto answer = [self, promise, answered](result<Reply> r) {
          if (!*answered) promise->set_value(std::move(r));
          *answered = true;
          self->quit();
        };
        self->set_down_handler([answer](caf::down_msg&) {
          answer(error{errc::unavailable,
                       "the actor that took the command (a registry or a decider) stopped "
                       "before it answered: the command may or may not have been applied"});
        });
        self->monitor(to);
        self->request(to, timeout, std::move(request))
            .then(
                [answer](Reply& r) { answer(std::move(r)); },
                [answer, timeout](caf::error& e) {
                  if (e == caf::sec::request_timeout)
                    answer(error{errc::timeout, "no answer in " + std::to_string(timeout.count()) +
                                                    " ms: the command may still be applied"});
                  else
                    answer(error_from(e));
                });
      },
      promise);
  return answer;
}

template std::future<result<command_reply>> runtime::ask<command_reply>(caf::actor, caf::message,
                                                                        std::chrono::milliseconds);
template std::future<result<decision_reply>> runtime::ask<decision_reply>(
    caf::actor, caf::message, std::chrono::milliseconds);

bool runtime::running() const {
  return impl_ && !impl_->stopped;
}

result<void> runtime::can_block() const {
  if (!running()) return shut_down;
  if (system_of_this_thread == impl_->sys.get())
    return error{errc::invalid_argument,
                 "a blocking call of the runtime from inside one of its actors (a projection's "
                 "handler, an aggregate's decide) would wait for the thread it holds: send "
                 "from a thread of your own, or to registry<A>() without waiting"};
  return {};
}

result<projection_status> runtime::status(std::string_view name) {
  if (auto ok = can_block(); !ok) return std::move(ok).err();
  return call<projection_status>(*impl_->sys, impl_->manager, status_atom_v, std::string(name));
}

result<std::vector<projection_status>> runtime::projections() {
  if (auto ok = can_block(); !ok) return std::move(ok).err();
  return call<std::vector<projection_status>>(*impl_->sys, impl_->manager, list_atom_v);
}

result<commit_stats> runtime::commit_stats() {
  if (auto ok = can_block(); !ok) return std::move(ok).err();
  return call<varve::commit_stats>(*impl_->sys, impl_->storage, stats_atom_v);
}

result<append_result> runtime::append(append_request request) {
  if (auto ok = can_block(); !ok) return std::move(ok).err();
  return call<append_result>(*impl_->sys, impl_->storage, append_atom_v, std::move(request));
}

result<stream_version> runtime::shred(std::string_view stream) {
  if (auto ok = can_block(); !ok) return std::move(ok).err();
  return call<std::uint64_t>(*impl_->sys, impl_->storage, shred_atom_v, std::string(stream));
}

result<projection_status> runtime::pause(std::string_view name) {
  if (auto ok = can_block(); !ok) return std::move(ok).err();
  return call<projection_status>(*impl_->sys, impl_->manager, pause_atom_v, std::string(name));
}

result<projection_status> runtime::resume(std::string_view name) {
  if (auto ok = can_block(); !ok) return std::move(ok).err();
  return call<projection_status>(*impl_->sys, impl_->manager, resume_atom_v, std::string(name));
}

result<projection_status> runtime::rebuild(std::string_view name) {
  if (auto ok = can_block(); !ok) return std::move(ok).err();
  return call<projection_status>(*impl_->sys, impl_->manager, rebuild_atom_v, std::string(name));
}

result<projection_status> runtime::reset(std::string_view name, global_position position) {
  if (auto ok = can_block(); !ok) return std::move(ok).err();
  return call<projection_status>(*impl_->sys, impl_->manager, reset_atom_v, std::string(name),
                                 std::uint64_t{position});
}

result<void> runtime::wait_for(std::string_view name, global_position position,
                               std::chrono::milliseconds timeout) {
  if (auto ok = can_block(); !ok) return std::move(ok).err();
  auto mode = impl_->modes.find(name);
  if (mode == impl_->modes.end())
    return error{errc::not_found, "no projection named '" + std::string(name) + "'"};
  if (position == 0) return {};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(50);
  auto next_status = std::chrono::steady_clock::now();
  global_position at = 0;
  for (;;) {
    // Exactly-once: the cursor is committed with the view, so the view
    // shows the events once the stored cursor is there. At-least-once: the
    // manager knows what was handled before it is checkpointed.
    const auto now = std::chrono::steady_clock::now();
    const bool ask_status = mode->second == delivery::at_least_once || now >= next_status;
    if (mode->second == delivery::exactly_once) {
      auto txn = impl_->store->read();
      if (!txn) return std::move(txn).err();
      auto cursor = txn->cursor(name);
      if (!cursor) return std::move(cursor).err();
      at = cursor->value_or(0);
      if (at >= position) return {};
    }
    if (ask_status) {
      auto s = status(name);
      if (!s) return std::move(s).err();
      if (mode->second == delivery::at_least_once) {
        at = s->position;
        if (at >= position) return {};
      }
      if (s->state == "failed" || s->state == "stopped")
        return error{errc::unavailable, "projection '" + std::string(name) + "' is " + s->state +
                                            " at position " + std::to_string(s->position) +
                                            (s->error.empty() ? "" : ": " + s->error)};
      next_status = now + std::chrono::milliseconds(100);
    }
    if (now >= deadline)
      return error{errc::timeout, "projection '" + std::string(name) + "' is at position " +
                                      std::to_string(at) + ", not " + std::to_string(position) +
                                      ", after " + std::to_string(timeout.count()) + " ms"};
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(5));
  }
}

}  // namespace varve
