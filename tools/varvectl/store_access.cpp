#include "store_access.hpp"

#include <filesystem>
#include <system_error>

namespace varvectl {

namespace fs = std::filesystem;

varve::options store_options(const global_options& g, bool create) {
  varve::options o;
  o.directory = g.db;
  o.create_if_missing = create;
  if (!g.key_file.empty()) o.key_file = g.key_file;
  return o;
}

bool holds_store(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / "data.mdb", ec);
}

varve::result<std::unique_ptr<varve::event_store>> open_store(const global_options& g) {
  // LMDB would create an empty environment in a directory without one: look first.
  if (!holds_store(g.db))
    return varve::error{varve::errc::not_found,
                        "no Varve store in " + g.db +
                            " (give --db DIR or set VARVE_DB; 'varvectl init' creates one)"};
  return varve::event_store::open(store_options(g, false));
}

varve::result<std::unique_ptr<varve::event_store>> create_store(const global_options& g) {
  if (holds_store(g.db))
    return varve::error{varve::errc::invalid_argument, "a store already exists in " + g.db};
  // open() lays out the directory and LMDB's files before it reads the key
  // file: when it fails (a bad key file), remove what this call created, so
  // that a corrected `init` can follow.
  std::error_code ec;
  const fs::path dir(g.db);
  const bool had_dir = fs::exists(dir, ec);
  const bool had_lock = fs::exists(dir / "lock.mdb", ec);
  auto store = varve::event_store::open(store_options(g, true));
  if (!store) {
    fs::remove(dir / "data.mdb", ec);
    if (!had_lock) fs::remove(dir / "lock.mdb", ec);
    if (!had_dir) fs::remove(dir, ec);  // only when empty
  }
  return store;
}

}  // namespace varvectl
