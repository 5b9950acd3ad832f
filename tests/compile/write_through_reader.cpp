// Compiled twice by tests/CMakeLists.txt: as it is, it must compile; with
// VARVE_WRITE_THROUGH_READER, it must not. Aggregates (and projections, the
// projection manager and the remote service) hold the store read-only:
// every write goes through the storage actor, which publishes it, so a
// write that no projection would hear of does not compile.
#include <varve/actors/aggregate.hpp>

namespace {

[[maybe_unused]] void read_and_write(const varve::aggregate_context& ctx) {
  auto txn = ctx.store->read();  // reading: zero copy, in this process
  (void)txn;
#ifdef VARVE_WRITE_THROUGH_READER
  varve::new_event e;
  e.type = "written-behind-the-storage-actor";
  (void)ctx.store->append("s", varve::expected_version::any(), {&e, 1});
#endif
}

}  // namespace

int main() {}
