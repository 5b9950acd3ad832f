#include "log_reader.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace varvectl {

namespace {

constexpr std::uint64_t chunk_events = 512;

}  // namespace

namespace {

/// Reads by global position in chunks: `scan(txn, from, want, visit)` visits
/// at most `want` events from `from` in `dir` (false from `visit` stops it);
/// each chunk is copied in its own read transaction, then handed to `sink`.
template <class Scan>
varve::result<std::uint64_t> read_by_position(const varve::event_store& store,
                                              varve::global_position from, varve::direction dir,
                                              std::uint64_t limit, varve::global_position upto,
                                              const Scan& scan, const event_sink& sink) {
  const bool forward = dir == varve::direction::forward;
  std::uint64_t handed = 0;
  std::vector<varve::recorded_event> batch;
  for (;;) {
    if (handed >= limit) return handed;
    if (forward && std::max<varve::global_position>(from, 1) > upto) return handed;
    const std::uint64_t want = std::min(chunk_events, limit - handed);
    batch.clear();
    {
      auto txn = store.read();
      if (!txn) return std::move(txn).err();
      std::optional<varve::error> failure;
      auto copy = [&](const varve::event_view& v) {
        if (forward && v.position > upto) return false;
        auto name = txn->stream_name(v.stream_id);
        if (!name) {
          failure = std::move(name).err();
          return false;
        }
        batch.push_back(varve::recorded_event::from(v, *name));
        return true;
      };
      auto n = scan(*txn, from, static_cast<std::size_t>(want), copy);
      if (!n) return std::move(n).err();
      if (failure) return std::move(*failure);
    }
    for (const auto& e : batch) {
      ++handed;
      if (!sink(e)) return handed;
    }
    if (batch.size() < want) return handed;  // the end (of the log, of `upto`, of the matches)
    const varve::global_position last = batch.back().position;
    if (forward) {
      from = last + 1;
    } else {
      if (last <= 1) return handed;
      from = last - 1;
    }
  }
}

}  // namespace

varve::result<std::uint64_t> read_log(const varve::event_store& store, const log_range& range,
                                      const event_sink& sink) {
  auto scan = [&](const varve::read_transaction& txn, varve::global_position from, std::size_t want,
                  varve::function_ref<bool(const varve::event_view&)> visit) {
    return txn.scan_log(from, range.dir, want, visit);
  };
  return read_by_position(store, range.from, range.dir, range.limit, range.upto, scan, sink);
}

varve::result<std::uint64_t> read_query(const varve::event_store& store, const varve::query& q,
                                        varve::global_position from, varve::direction dir,
                                        std::uint64_t limit, const event_sink& sink) {
  auto scan = [&](const varve::read_transaction& txn, varve::global_position at, std::size_t want,
                  varve::function_ref<bool(const varve::event_view&)> visit) {
    return txn.scan_query(q, at, dir, want, visit);
  };
  return read_by_position(store, from, dir, limit, UINT64_MAX, scan, sink);
}

varve::result<std::uint64_t> read_stream(const varve::event_store& store, std::string_view name,
                                         varve::stream_version from, varve::direction dir,
                                         std::uint64_t limit, const event_sink& sink) {
  const bool forward = dir == varve::direction::forward;
  std::uint64_t handed = 0;
  std::vector<varve::recorded_event> batch;
  for (;;) {
    // Scans even for limit 0: the first scan_stream says whether the stream exists.
    const std::uint64_t want = std::min(chunk_events, limit - handed);
    batch.clear();
    {
      auto txn = store.read();
      if (!txn) return std::move(txn).err();
      auto copy = [&](const varve::event_view& v) {
        batch.push_back(varve::recorded_event::from(v, name));
        return true;
      };
      auto n = txn->scan_stream(name, from, dir, static_cast<std::size_t>(want), copy);
      if (!n) return std::move(n).err();
    }
    for (const auto& e : batch) {
      ++handed;
      if (!sink(e)) return handed;
    }
    if (batch.size() < want || handed >= limit) return handed;
    const varve::stream_version last = batch.back().version;
    if (forward) {
      from = last + 1;
    } else {
      if (last <= 1) return handed;
      from = last - 1;
    }
  }
}

}  // namespace varvectl
