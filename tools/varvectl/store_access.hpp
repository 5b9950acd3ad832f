// The options every command shares, and opening the store they name.
#pragma once

#include <memory>
#include <string>

#include "varve/storage/event_store.hpp"

namespace varvectl {

/// Set before the command: `varvectl [--db DIR] [--key-file FILE] [--json] COMMAND`.
struct global_options {
  std::string db = "var/demo";  ///< --db, else $VARVE_DB, else ./var/demo
  std::string key_file;         ///< --key-file, else $VARVE_KEY_FILE
  bool json = false;            ///< --json: machine-readable output
};

/// Opens the existing store in `g.db` (with the key file when given).
/// Errors: not_found (no store there, no key file), and those of
/// event_store::open: auth_failed (wrong key), invalid_argument (a key file
/// that is loose or malformed), ...
varve::result<std::unique_ptr<varve::event_store>> open_store(const global_options& g);

/// Creates a new store in `g.db`, encrypted when a key file is given
/// (options::error_if_exists: of two processes creating one at once, one
/// succeeds). Never removes anything, even when it fails.
/// Errors: invalid_argument (a store is already there), not_found (no key
/// file), those of open.
varve::result<std::unique_ptr<varve::event_store>> create_store(const global_options& g);

/// The options of the store in `g.db`, for opening it or a copy of it.
varve::options store_options(const global_options& g, bool create);

/// Whether `dir` holds an LMDB environment (a data.mdb file).
bool holds_store(const std::string& dir);

/// not_found ("<option>: key file PATH does not exist") when `path` names
/// no file; nothing for an empty path or a file that exists (whether it
/// holds a usable key is the store's to say: exit 2 when it does not).
varve::result<void> key_file_present(const std::string& option, const std::string& path);

}  // namespace varvectl
