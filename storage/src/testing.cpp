// Fault injection for tests (varve/storage/testing.hpp).
#include "varve/storage/testing.hpp"

#include <memory>
#include <mutex>
#include <utility>

#include "store_impl.hpp"

namespace varve {

void testing_inject_faults(event_store& store, std::shared_ptr<fault_injector> faults) {
  std::lock_guard<std::mutex> lock(store.impl_->write_mutex);
  store.impl_->faults = std::move(faults);
}

namespace {

/// Fails the next commit once, then lets every call through.
class next_commit_fails final : public fault_injector {
 public:
  explicit next_commit_fails(int code) : code_(code) {}
  int before(lmdb_call call) override {
    if (call != lmdb_call::txn_commit) return 0;
    return std::exchange(code_, 0);
  }

 private:
  int code_;
};

}  // namespace

void testing_fail_next_commit(event_store& store, int os_error) {
  testing_inject_faults(store, std::make_shared<next_commit_fails>(os_error));
}

}  // namespace varve
