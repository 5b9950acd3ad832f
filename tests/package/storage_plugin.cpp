// A user's shared library that links Varve::storage (as a plugin or a
// language binding would): it builds only if Varve's static libraries are
// position-independent. plugin_roundtrip.cpp links it and calls this.
#include <varve/storage/event_store.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

/// Appends two events to a new encrypted store at `dir` and
/// reads them back; returns an empty string, or what went wrong.
extern "C" __attribute__((visibility("default"))) const char* storage_plugin_roundtrip(
    const char* dir) {
  static std::string what;
  varve::options opts;
  opts.directory = dir;
  opts.sync = varve::durability::no_sync;
  opts.master_key = std::array<std::uint8_t, 32>{7};
  auto store = varve::event_store::open(opts);
  if (!store) return (what = "open: " + store.err().to_string()).c_str();
  std::vector<varve::new_event> events{{.type = "noted", .payload = "one"},
                                       {.type = "noted", .payload = "two"}};
  auto appended = (*store)->append("plugin-1", varve::expected_version::no_stream(), events);
  if (!appended) return (what = "append: " + appended.err().to_string()).c_str();
  auto txn = (*store)->read();
  if (!txn) return (what = "read: " + txn.err().to_string()).c_str();
  auto read = txn->read_stream("plugin-1", 1, varve::direction::forward, 10);
  if (!read) return (what = "read_stream: " + read.err().to_string()).c_str();
  if (read->size() != 2 || (*read)[0].payload != "one" || (*read)[1].payload != "two")
    return "read back something else than was appended";
  return "";
}
