// What the projection conformance tests do with a projection, whatever its
// log source: ask its status, wait for it, stop it, and read its view, its
// cursor and its stored state in its own store.
#pragma once

#include <atomic>
#include <cstdio>
#include <mutex>
#include <varve/projections/protocol.hpp>

#include "log_sources.hpp"

namespace conformance {

/// What handlers saw, shared with the test thread.
struct probe {
  std::mutex mutex;
  std::vector<global_position> positions;
  std::vector<delivered_event> copies;  ///< envelopes only (views cleared)
  std::vector<std::string> streams;

  void add(const delivered_event& d) {
    std::lock_guard lock(mutex);
    positions.push_back(d.event.position);
    delivered_event copy{d.event, {}};
    copy.event.type = {};
    copy.event.payload = {};
    copy.event.metadata = {};
    copy.event.tags = {};
    copies.push_back(copy);
    streams.emplace_back(d.stream);
  }
  std::vector<global_position> seen() {
    std::lock_guard lock(mutex);
    return positions;
  }
};

inline std::string event_key(global_position p) {
  char key[32];
  std::snprintf(key, sizeof key, "event/%020llu", static_cast<unsigned long long>(p));
  return key;
}

/// A projection that keeps one row per event (position -> stream) and a
/// count per stream: a lost or repeated event shows in its view.
inline projection_spec counting(std::string name, std::shared_ptr<probe> rec = nullptr,
                                delivery mode = delivery::exactly_once) {
  projection_spec spec;
  spec.name = std::move(name);
  spec.mode = mode;
  spec.batch_events = 100;
  spec.retry_backoff = 1ms;
  spec.handle = [rec](const delivered_event& d, view_batch& view) -> result<void> {
    if (rec) rec->add(d);
    view.put(event_key(d.event.position), std::string(d.stream));
    auto count = view.get("count/" + std::string(d.stream));
    if (!count) return count.err();
    const long n = *count ? std::stol(**count) : 0;
    view.put("count/" + std::string(d.stream), std::to_string(n + 1));
    return {};
  };
  return spec;
}

template <class Source>
struct harness : Source {
  using Source::own;
  using Source::sys;

  projection_status status(const projection_actor& p) {
    return varve_test::projection_status_of(sys, p);
  }

  /// Waits until `pred` holds for the projection's status (60 s at most).
  template <class Pred>
  projection_status wait_for(const projection_actor& p, Pred pred) {
    for (int i = 0; i < 6000; ++i) {
      auto s = status(p);
      if (pred(s)) return s;
      std::this_thread::sleep_for(10ms);
    }
    auto s = status(p);
    BOOST_FAIL("projection " << s.name << " stuck at " << s.position << " of " << s.head
                             << ", state " << s.state << ", error " << s.error);
    return s;
  }
  projection_status wait_caught_up(const projection_actor& p) {
    const global_position head = this->head();
    return wait_for(p, [&](const projection_status& s) { return s.position >= head; });
  }
  projection_status wait_state(const projection_actor& p, std::string state) {
    return wait_for(p, [&](const projection_status& s) { return s.state == state; });
  }

  /// Stops the projection and waits until what it sent as it stopped is
  /// committed.
  void stop(const projection_actor& p, caf::exit_reason reason = caf::exit_reason::user_shutdown) {
    caf::scoped_actor self{sys};
    self->monitor(p);
    caf::anon_send_exit(p, reason);
    self->receive([](const caf::down_msg&) {});
    this->settle_writes();
  }
  void stop(const projection_manager& m) {
    caf::scoped_actor self{sys};
    self->monitor(m);
    caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
    self->receive([](const caf::down_msg&) {});
    this->settle_writes();
  }

  std::optional<std::string> view_value(std::string_view view, std::string_view key) {
    auto txn = own->read();
    BOOST_REQUIRE(txn.ok());
    auto v = txn->view_get(view, key);
    BOOST_REQUIRE(v.ok());
    return *v ? std::optional<std::string>(std::string(**v)) : std::nullopt;
  }
  std::size_t view_rows(std::string_view view, std::string_view prefix) {
    auto txn = own->read();
    BOOST_REQUIRE(txn.ok());
    std::size_t n = 0;
    auto r = txn->scan_view(view, prefix, [&](std::string_view k, std::string_view) {
      if (!k.starts_with(prefix)) return false;
      ++n;
      return true;
    });
    BOOST_REQUIRE(r.ok());
    return n;
  }
  global_position cursor(std::string_view name) {
    auto txn = own->read();
    BOOST_REQUIRE(txn.ok());
    auto c = txn->cursor(name);
    BOOST_REQUIRE(c.ok());
    return c->value_or(0);
  }
  /// The state stored with the cursor, as varvectl reads it.
  checkpoint_state stored_state(std::string_view name) {
    auto txn = own->read();
    BOOST_REQUIRE(txn.ok());
    auto c = txn->cursor_state(name);
    BOOST_REQUIRE(c.ok() && c->has_value());
    auto s = parse_checkpoint_state((*c)->state);
    if (!s) BOOST_FAIL("stored state " << (*c)->state << ": " << s.err().to_string());
    return *s;
  }

  /// Writes `w` into the projection's store (as another process might).
  void write(write_request w) {
    caf::scoped_actor self{sys};
    self->request(this->own_storage, caf::infinite, write_atom_v, std::move(w))
        .receive([](const std::vector<append_result>&) {},
                 [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
  }
  /// Leaves a control request as varvectl does, in the projection's store.
  void leave_request(const std::string& name, std::string text) {
    write_request w;
    w.views.push_back(
        view_update{std::string(control_view), view_update::op::put, name, std::move(text)});
    write(std::move(w));
  }
  void leave_request(const std::string& name, control_request r) {
    leave_request(name, to_json(r));
  }
  /// Waits until the manager has carried out and erased the request of `name`.
  void wait_request_taken(std::string_view name) {
    for (int i = 0; i < 20000 && view_value(control_view, name); ++i)
      std::this_thread::sleep_for(1ms);
    BOOST_REQUIRE(!view_value(control_view, name));
  }

  projection_status ask_manager(const projection_manager& m, std::string name) {
    caf::scoped_actor self{sys};
    projection_status out;
    self->request(m, caf::infinite, status_atom_v, std::move(name))
        .receive([&](const projection_status& s) { out = s; },
                 [&](caf::error& e) { BOOST_FAIL("manager: " << sys.render(e)); });
    return out;
  }
  template <class Pred>
  projection_status wait_managed(const projection_manager& m, const std::string& name, Pred pred) {
    for (int i = 0; i < 6000; ++i) {
      auto s = ask_manager(m, name);
      if (pred(s)) return s;
      std::this_thread::sleep_for(10ms);
    }
    auto s = ask_manager(m, name);
    BOOST_FAIL("projection " << name << " stuck at " << s.position << ", state " << s.state
                             << ", error " << s.error);
    return s;
  }
};

}  // namespace conformance
