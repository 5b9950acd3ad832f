// Fault injection for tests of Varve's failure handling. Not for production.
#pragma once

#include <cerrno>

#include "varve/storage/event_store.hpp"

namespace varve {

/// Makes the next commit of `store` fail as if its pages or its fsync had
/// failed with the operating-system error `os_error` (the transaction is
/// aborted, nothing of it reaches the disk). An I/O error puts the store in
/// its failed state; ENOSPC reports storage_full and leaves it usable.
void testing_fail_next_commit(event_store& store, int os_error = EIO);

}  // namespace varve
