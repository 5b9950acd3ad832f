#include "store_access.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
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

varve::result<void> key_file_present(const std::string& option, const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) == 0 || (errno != ENOENT && errno != ENOTDIR))
    return {};
  return varve::error{varve::errc::not_found, option + ": key file " + path + " does not exist (" +
                                                  std::strerror(errno) + ")"};
}

varve::result<std::unique_ptr<varve::event_store>> open_store(const global_options& g) {
  if (auto present = key_file_present("--key-file", g.key_file); !present)
    return std::move(present).err();
  // LMDB would create an empty environment in a directory without one: look first.
  if (!holds_store(g.db))
    return varve::error{varve::errc::not_found,
                        "no Varve store in " + g.db +
                            " (give --db DIR or set VARVE_DB; 'varvectl init' creates one)"};
  return varve::event_store::open(store_options(g, false));
}

varve::result<std::unique_ptr<varve::event_store>> create_store(const global_options& g) {
  if (auto present = key_file_present("--key-file", g.key_file); !present)
    return std::move(present).err();
  // A plain message for the common case; the store decides for good.
  if (holds_store(g.db))
    return varve::error{varve::errc::invalid_argument, "a store already exists in " + g.db};
  // The store decides, inside LMDB's write lock, whether a store is there
  // already (error_if_exists): of two processes creating one at once,
  // exactly one succeeds, and nothing is ever removed here (by then it may
  // be another process's live store). It reads the key file before it
  // creates anything.
  varve::options o = store_options(g, true);
  o.error_if_exists = true;
  auto store = varve::event_store::open(o);
  if (store) return store;
  const varve::error& e = store.err();
  // Another process created the store meanwhile: the store's own check
  // says so, or, when the key does not fit the store it found (another
  // key, or a plain store), its key check spoke first. Say what happened.
  const bool key_mismatch = e.code() == varve::errc::auth_failed ||
                            (e.code() == varve::errc::invalid_argument && !g.key_file.empty());
  if (key_mismatch && !e.message().starts_with("a store already exists") && holds_store(g.db))
    return varve::error{
        varve::errc::invalid_argument,
        "a store already exists in " + g.db +
            " (another process created it meanwhile; with this key: " + e.message() + ")"};
  return store;
}

}  // namespace varvectl
