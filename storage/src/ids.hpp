// Event ids made by the writer (private to varve::storage).
#pragma once

#include "varve/storage/event.hpp"

namespace varve::detail {

/// A fresh time-ordered id (the layout of event_id::generate) for the time
/// `now`: the writer stamps a transaction's ids with the time it read once
/// when the transaction began, instead of reading the clock per event.
event_id generate_event_id(timestamp_us now);

}  // namespace varve::detail
