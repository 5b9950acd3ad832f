// The projection engine: handing a batch to the handler. Events the filter
// leaves out still move the cursor (and so do the ranges a filtered read
// covered with nothing for the projection); a failing event's writes are undone
// (with a batch handler: the whole group's), and the batch ends before it.
#include <exception>

#include "varve/projections/engine.hpp"

namespace varve {

namespace {

/// Calls the handler; an exception is errc::handler_failed.
template <class F>
result<void> call(F&& f) {
  try {
    return f();
  } catch (const std::exception& ex) {
    return error{errc::handler_failed, std::string("the handler threw: ") + ex.what()};
  } catch (...) {
    return error{errc::handler_failed, "the handler threw"};
  }
}

}  // namespace

projection_engine::batch_outcome projection_engine::handle(const log_batch& batch, view_batch& view,
                                                           global_position after) {
  batch_outcome o;
  o.last = after;
  auto failed_at = [&](const delivered_event& d, error err) {
    o.failure = handler_failure{d.event.position, std::string(d.stream), std::string(d.event.type),
                                d.event.version, std::move(err)};
  };
  if (spec_.handle_batch) {
    std::span<const delivered_event> group = batch.events;  // a filter that passes all: as read
    if (!spec_.filter.passes_all()) {
      group_.clear();
      for (const auto& d : batch.events)
        if (spec_.filter.matches(d.stream, d.event)) group_.push_back(d);
      group = group_;
    }
    if (!group.empty()) {
      auto r = call([&] { return spec_.handle_batch(group, view); });
      if (!r) {
        view.rollback(0);  // the group is retried as a whole; the policy applies to its first event
        failed_at(group.front(), r.err());
      }
    }
    if (!o.failure) {
      o.last = batch.events.back().event.position;
      o.last_time = batch.events.back().event.time;
      o.handled = group.size();
    } else {
      for (const auto& d : batch.events) {  // the events before the failed one
        if (d.event.position >= o.failure->position) break;
        o.last = d.event.position;
        o.last_time = d.event.time;
      }
    }
    group_.clear();  // its views die with the batch
  } else {
    for (const auto& d : batch.events) {
      if (spec_.filter.matches(d.stream, d.event)) {
        const auto mark = view.savepoint();
        auto r = call([&] { return spec_.handle(d, view); });
        if (!r) {
          view.rollback(mark);
          failed_at(d, r.err());
          break;
        }
        ++o.handled;
      }
      o.last = d.event.position;
      o.last_time = d.event.time;
    }
  }
  // A filtered read covers the log past its last event: nothing for the
  // projection there.
  if (!o.failure && batch.covered > o.last) {
    o.last = batch.covered;
    if (batch.covered == batch.head && batch.head_time != 0) o.last_time = batch.head_time;
  }
  o.updates = std::move(view.updates());
  return o;
}

}  // namespace varve
