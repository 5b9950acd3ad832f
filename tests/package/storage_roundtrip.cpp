// A program of a project that uses Varve::storage: it opens a store in a
// fresh temporary directory, appends events, reads them back, opens the store
// again, and does the same in an encrypted store (LMDB, ISA-L's CRC32C and
// Botan all take part). Prints "storage roundtrip: ok" and exits 0 when every
// result is as expected; otherwise names the first wrong one and exits 1.
#include <varve/storage/event_store.hpp>

#include <stdlib.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "storage roundtrip: FAILED: " << what << "\n";
    ++failures;
  }
}

/// Opens the store at `dir`, or says why not.
std::unique_ptr<varve::event_store> open(const std::filesystem::path& dir,
                                         std::optional<std::array<std::uint8_t, 32>> key) {
  varve::options opts;
  opts.directory = dir;
  opts.sync = varve::durability::no_sync;
  opts.master_key = key;
  auto store = varve::event_store::open(opts);
  if (!store) {
    check(false, "open " + dir.string() + ": " + store.err().to_string());
    return nullptr;
  }
  return std::move(store).value();
}

/// Checks that the stream `name` holds `payloads` in order, as type "noted".
void check_stream(const varve::event_store& store, const std::string& name,
                  const std::vector<std::string>& payloads) {
  auto txn = store.read();
  if (!txn) return check(false, "read: " + txn.err().to_string());
  auto events = txn->read_stream(name, 1, varve::direction::forward, 100);
  if (!events) return check(false, "read_stream: " + events.err().to_string());
  check(events->size() == payloads.size(), name + ": " + std::to_string(events->size()) +
                                               " events, expected " +
                                               std::to_string(payloads.size()));
  for (std::size_t i = 0; i < events->size() && i < payloads.size(); ++i) {
    const varve::event_view& e = (*events)[i];
    check(e.version == i + 1, name + ": event " + std::to_string(i) + " has a wrong version");
    check(e.type == "noted", name + ": event " + std::to_string(i) + " has a wrong type");
    check(e.payload == payloads[i],
          name + ": event " + std::to_string(i) + " reads '" + std::string(e.payload) + "'");
  }
}

/// Appends to a new stream, refuses a stale expected version, appends again
/// and reads everything back.
void roundtrip(varve::event_store& store, const std::string& name) {
  std::vector<varve::new_event> first;
  for (const char* p : {"one", "two", "three"})
    first.push_back({.type = "noted", .payload = p});
  auto appended = store.append(name, varve::expected_version::no_stream(), first);
  if (!appended) return check(false, "append: " + appended.err().to_string());
  check(appended->first_version == 1 && appended->last_version == 3, name + ": versions 1..3");

  std::vector<varve::new_event> late{{.type = "noted", .payload = "late"}};
  auto stale = store.append(name, varve::expected_version::exact(1), late);
  check(!stale && stale.err().code() == varve::errc::wrong_expected_version,
        name + ": a stale expected version must be refused");

  auto next = store.append(name, varve::expected_version::exact(3), late);
  if (!next) return check(false, "append: " + next.err().to_string());
  check(next->first_version == 4, name + ": version 4");
  check_stream(store, name, {"one", "two", "three", "late"});
}

}  // namespace

int main() {
  char pattern[] = "/tmp/varve-package-storage.XXXXXX";
  if (!mkdtemp(pattern)) {
    std::cerr << "storage roundtrip: no temporary directory\n";
    return 1;
  }
  const std::filesystem::path root = pattern;

  if (auto store = open(root / "plain", std::nullopt)) roundtrip(*store, "order-1");
  if (auto again = open(root / "plain", std::nullopt)) {
    check_stream(*again, "order-1", {"one", "two", "three", "late"});
    auto txn = again->read();
    check(txn && txn->head() == 4, "plain store: head 4 after reopening");
  }

  std::array<std::uint8_t, 32> key{};
  for (std::size_t i = 0; i < key.size(); ++i)
    key[i] = static_cast<std::uint8_t>(i * 7 + 1);
  if (auto store = open(root / "sealed", key)) roundtrip(*store, "customer-1");
  {
    varve::options opts;
    opts.directory = root / "sealed";
    auto keyless = varve::event_store::open(opts);
    check(!keyless && keyless.err().code() == varve::errc::auth_failed,
          "an encrypted store must not open without its key");
  }
  if (auto again = open(root / "sealed", key))
    check_stream(*again, "customer-1", {"one", "two", "three", "late"});

  std::filesystem::remove_all(root);
  if (failures) return 1;
  std::cout << "storage roundtrip: ok\n";
  return 0;
}
