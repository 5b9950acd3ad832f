// The projection harness: the projection actor's part (projection_actor.cpp,
// local_source) played synchronously, with a queue for its mailbox.
#include "varve/testkit/projection_harness.hpp"

#include <algorithm>
#include <deque>

#include "local_log.hpp"  // projections/src: the reader of the projection actor's local source

namespace varve::testkit {

namespace {

/// Messages handed to the engine in one run() at most.
constexpr std::uint64_t max_messages = 1'000'000;

/// The outcome of one write request as the storage actor answers it.
std::optional<error> commit(event_store& store, const write_request& request) {
  auto out = store.write({&request, 1});
  if (!out) return out.err();
  if (!out->front()) return out->front().err();
  return std::nullopt;
}

}  // namespace

/// The engine_io of the harness and the engine it drives.
class projection_harness::driver final : public engine_io {
 public:
  driver(const projection_spec& spec, std::shared_ptr<event_store> store,
         std::vector<timer_call>& timers)
      : store_(std::move(store)), reader_(store_), timers_(timers) {
    engine.emplace(spec, store_, *this);
  }

  // As the local source: the read is answered during the call.
  void read(global_position after, std::size_t limit, std::uint64_t ticket) override {
    reader_.read(*engine, after, limit, ticket);
  }
  // As the projection actor: a request to the storage actor, answered later.
  void write(write_request request, std::uint64_t ticket) override {
    queue_.push_back({now_, ++sequence_, kind::write, std::move(request), {}, ticket});
  }
  // A message to itself: now (delay 0) or delayed.
  void wake(engine_timer timer, std::chrono::milliseconds delay, std::uint64_t ticket) override {
    timers_.push_back({timer, delay});
    queue_.push_back({now_ + delay, ++sequence_, kind::timer, {}, timer, ticket});
  }
  /// The storage actor's notification of a new head (committed_atom).
  void publish(global_position head) {
    queue_.push_back({now_, ++sequence_, kind::head, {}, {}, head});
  }

  /// Hands the earliest message due to the engine; false when none is left.
  bool step() {
    if (queue_.empty()) return false;
    auto next = std::min_element(queue_.begin(), queue_.end(), [](const auto& a, const auto& b) {
      return a.due != b.due ? a.due < b.due : a.sequence < b.sequence;
    });
    message m = std::move(*next);
    queue_.erase(next);
    now_ = m.due;
    switch (m.what) {
      case kind::write:
        engine->on_written(m.value, commit(*store_, m.request));
        break;
      case kind::timer:
        engine->on_timer(m.timer, m.value);
        break;
      case kind::head:
        engine->on_head(m.value);
        break;
    }
    return true;
  }

  std::optional<global_position> head() const { return reader_.head(); }

  std::optional<projection_engine> engine;

 private:
  enum class kind : std::uint8_t { write, timer, head };
  struct message {
    std::chrono::milliseconds due{0};
    std::uint64_t sequence = 0;
    kind what = kind::timer;
    write_request request;
    engine_timer timer = engine_timer::read;
    std::uint64_t value = 0;  ///< the ticket, or the head
  };

  std::shared_ptr<event_store> store_;
  varve::detail::local_log_reader reader_;
  std::vector<timer_call>& timers_;
  std::deque<message> queue_;
  std::chrono::milliseconds now_{0};
  std::uint64_t sequence_ = 0;
};

projection_harness::projection_harness(projection_spec spec, temp_store_options store)
    : store_(store), spec_(std::move(spec)) {}

projection_harness::~projection_harness() = default;

projection_harness& projection_harness::given_events(std::string_view stream,
                                                     const std::vector<new_event>& events) {
  auto r = store_.store()->append(stream, expected_version::any(), events);
  if (!r)
    throw testkit_error("appending " + std::to_string(events.size()) + " events to '" +
                        std::string(stream) + "': " + r.err().to_string());
  appended();
  return *this;
}

void projection_harness::appended() {
  if (!driver_) return;
  if (auto head = driver_->head()) driver_->publish(*head);
}

verdict projection_harness::run() {
  if (!driver_) {
    // As the projection actor starts: the engine, then the subscription,
    // whose answer (the head) comes as a message.
    driver_ = std::make_unique<driver>(spec_, store_.store(), timers_);
    driver_->engine->start();
    if (auto head = driver_->head()) driver_->publish(*head);
  }
  std::uint64_t handed = 0;
  while (driver_->step())
    if (++handed == max_messages)
      return verdict::fail("projection '" + spec_.name + "' did not settle after " +
                           std::to_string(max_messages) + " messages");
  const projection_status s = status();
  if (s.state == "live" && s.position == s.head) return verdict::pass();
  std::string message = "projection '" + spec_.name + "' is " + s.state_text() + " at position " +
                        std::to_string(s.position) + " of " + std::to_string(s.head) +
                        ", expected live at the head";
  if (!s.error.empty()) message += "; its error: " + s.error;
  return verdict::fail(std::move(message));
}

projection_status projection_harness::status() const {
  if (!driver_) throw testkit_error("projection '" + spec_.name + "' has not run: call run()");
  if (auto head = driver_->head()) driver_->engine->observe_head(*head);
  return driver_->engine->status();
}

projection_engine& projection_harness::engine() {
  if (!driver_) throw testkit_error("projection '" + spec_.name + "' has not run: call run()");
  return *driver_->engine;
}

void projection_harness::restart() {
  if (!driver_) return;
  const write_request last = driver_->engine->stop();
  driver_.reset();
  if (auto failure = commit(*store_.store(), last))
    throw testkit_error("stopping projection '" + spec_.name + "': " + failure->to_string());
}

std::optional<std::string> projection_harness::view(std::string_view key) const {
  auto txn = store_.store()->read();
  if (!txn) throw testkit_error("reading view '" + view_name() + "': " + txn.err().to_string());
  auto value = txn->view_get(view_name(), key);
  if (!value) throw testkit_error("reading view '" + view_name() + "': " + value.err().to_string());
  if (!*value) return std::nullopt;
  return std::string(**value);
}

namespace {

std::vector<std::pair<std::string, std::string>> scan(const event_store& store,
                                                      const std::string& view) {
  auto txn = store.read();
  if (!txn) throw testkit_error("reading view '" + view + "': " + txn.err().to_string());
  std::vector<std::pair<std::string, std::string>> out;
  auto n = txn->scan_view(view, "", [&](std::string_view key, std::string_view value) {
    out.emplace_back(std::string(key), std::string(value));
    return true;
  });
  if (!n) throw testkit_error("reading view '" + view + "': " + n.err().to_string());
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> projection_harness::rows() const {
  return scan(*store_.store(), view_name());
}

std::vector<std::pair<global_position, dead_letter>> projection_harness::dead_letters() const {
  const std::string name = dead_letter_view(spec_.name);
  std::vector<std::pair<global_position, dead_letter>> out;
  for (const auto& [key, value] : scan(*store_.store(), name)) {
    auto letter = parse_dead_letter(value);
    if (!letter || key.size() != 8)
      throw testkit_error("a row of view '" + name + "' is not a dead letter");
    global_position position = 0;
    for (unsigned char c : key)
      position = position << 8 | c;
    out.emplace_back(position, std::move(*letter));
  }
  return out;
}

}  // namespace varve::testkit
