// The projection engine: control requests. Each one commits the stored
// state (and the cursor's move) before it replies, so that a request
// answered is a request carried out; one that comes while the cursor is
// being written waits for that write.
#include "varve/projections/engine.hpp"

namespace varve {

/// Keeps `request` for later while a write of the cursor is in flight;
/// false: nothing is in flight, carry it out now.
bool projection_engine::defer(std::function<void()> request) {
  if (!busy()) return false;
  deferred_.push_back(std::move(request));
  return true;
}

/// Carries out the requests kept while a write was in flight, in order,
/// until one of them starts a write of its own.
void projection_engine::run_deferred() {
  while (!busy() && !deferred_.empty()) {
    auto request = std::move(deferred_.front());
    deferred_.pop_front();
    request();
  }
}

void projection_engine::control_commit(global_position to, std::vector<view_update> views,
                                       projection_state then, reply done) {
  pending_commit c;
  c.control = true;
  c.to = to;
  c.views = std::move(views);
  c.then = then;
  c.done = std::move(done);
  begin_commit(std::move(c));
}

global_position projection_engine::saved_position() const {
  return spec_.mode == delivery::at_least_once ? position_ : stored_;
}

void projection_engine::pause(reply done) {
  if (defer([this, done] { pause(done); })) return;
  const projection_state then =
      state_ == projection_state::failed ? projection_state::failed : projection_state::paused;
  control_commit(saved_position(), take_unsaved(), then, std::move(done));
}

void projection_engine::resume(reply done) {
  if (defer([this, done] { resume(done); })) return;
  error_.clear();
  attempt_ = 0;
  const global_position at = saved_position();
  control_commit(at, take_unsaved(), reading_state(at), std::move(done));
}

void projection_engine::reset(global_position to, reply done) {
  if (defer([this, to, done] { reset(to, done); })) return;
  unsaved_.clear();
  error_.clear();
  attempt_ = 0;
  const projection_state then =
      state_ == projection_state::paused ? projection_state::paused : reading_state(to);
  control_commit(to, {}, then, std::move(done));
}

void projection_engine::rebuild(reply done) {
  if (defer([this, done] { rebuild(done); })) return;
  unsaved_.clear();
  error_.clear();
  attempt_ = 0;
  handled_time_ = 0;
  std::vector<view_update> clear{
      view_update{view_name(), view_update::op::clear, {}, {}},
      view_update{dead_letter_view(spec_.name), view_update::op::clear, {}, {}}};
  control_commit(0, std::move(clear), reading_state(0), std::move(done));
}

void projection_engine::report_error(std::string why, reply done) {
  if (defer([this, why, done] { report_error(why, done); })) return;
  if (state_ == projection_state::failed) return done(status());  // keeps the error it failed with
  error_ = std::move(why);
  const global_position at = saved_position();
  const projection_state then =
      state_ == projection_state::paused ? projection_state::paused : reading_state(at);
  control_commit(at, take_unsaved(), then, std::move(done));
}

}  // namespace varve
