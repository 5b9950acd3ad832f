// What the varvectl tests need besides varvectl itself: damaging a record
// with raw LMDB, playing the application's projection manager (cursors with
// state, taking control requests), and a steady writer in another process.
//
//   varvectl_helper corrupt DIR POSITION truncate|flip   damage the record at POSITION
//   varvectl_helper cursor DIR NAME POSITION STATE        save a cursor with a JSON state
//   varvectl_helper view DIR VIEW KEY                     print a view's value, or "(none)"
//   varvectl_helper take DIR NAME POSITION STATE          erase NAME's control request and
//                                                         save its cursor, in one transaction
//   varvectl_helper append-loop DIR STREAM N [STOP]       append N events, one per commit;
//                                                         stop early once the file STOP exists
//   varvectl_helper create-loop DIR STREAM N              like an application: open the store,
//                                                         creating it when missing, and append
//                                                         N events, one per commit
//
// The key file, for encrypted stores, comes from $VARVE_KEY_FILE.
#include <lmdb.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "varve/storage/event_store.hpp"

namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "varvectl_helper: %s\n", what.c_str());
  return 1;
}

int check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) {
    std::fprintf(stderr, "varvectl_helper: %s: %s\n", what, mdb_strerror(rc));
    std::exit(1);
  }
  return rc;
}

int corrupt(const char* dir, std::uint64_t position, const std::string& how) {
  MDB_env* env = nullptr;
  check(mdb_env_create(&env), "mdb_env_create");
  check(mdb_env_set_maxdbs(env, 64), "mdb_env_set_maxdbs");
  check(mdb_env_open(env, dir, 0, 0600), "mdb_env_open");
  MDB_txn* txn = nullptr;
  check(mdb_txn_begin(env, nullptr, 0, &txn), "mdb_txn_begin");
  MDB_dbi dbi = 0;
  check(mdb_dbi_open(txn, "events", MDB_INTEGERKEY, &dbi), "mdb_dbi_open events");
  MDB_val k{sizeof position, &position}, v{};
  check(mdb_get(txn, dbi, &k, &v), "mdb_get");
  std::string record(static_cast<const char*>(v.mv_data), v.mv_size);
  if (how == "truncate")
    record.pop_back();  // the lengths no longer add up: does not decode
  else
    record.back() ^= 0x5a;  // a payload byte, or the tag of a sealed record
  MDB_val nv{record.size(), record.data()};
  check(mdb_put(txn, dbi, &k, &nv, 0), "mdb_put");
  check(mdb_txn_commit(txn), "mdb_txn_commit");
  mdb_env_close(env);
  return 0;
}

varve::result<std::unique_ptr<varve::event_store>> open(const char* dir, bool create = false) {
  varve::options o;
  o.directory = dir;
  o.create_if_missing = create;
  if (const char* key = std::getenv("VARVE_KEY_FILE"); key && *key) o.key_file = key;
  return varve::event_store::open(o);
}

int write(const char* dir, varve::write_request req) {
  auto store = open(dir);
  if (!store) return fail(store.err().to_string());
  auto out = (*store)->write({&req, 1});
  if (!out) return fail(out.err().to_string());
  if (!out->front()) return fail(out->front().err().to_string());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "corrupt" && argc == 5) return corrupt(argv[2], std::stoull(argv[3]), argv[4]);
  if (cmd == "cursor" && argc == 6) {
    varve::write_request req;
    req.cursors.push_back(varve::cursor_update{argv[3], std::stoull(argv[4]), argv[5]});
    return write(argv[2], std::move(req));
  }
  if (cmd == "take" && argc == 6) {
    varve::write_request req;
    req.views.push_back(
        varve::view_update{"varve.projection_control", varve::view_update::op::erase, argv[3], ""});
    req.cursors.push_back(varve::cursor_update{argv[3], std::stoull(argv[4]), argv[5]});
    return write(argv[2], std::move(req));
  }
  if (cmd == "view" && argc == 5) {
    auto store = open(argv[2]);
    if (!store) return fail(store.err().to_string());
    auto txn = (*store)->read();
    if (!txn) return fail(txn.err().to_string());
    auto v = txn->view_get(argv[3], argv[4]);
    if (!v) return fail(v.err().to_string());
    std::printf("%s\n", *v ? std::string(**v).c_str() : "(none)");
    return 0;
  }
  if ((cmd == "append-loop" && (argc == 5 || argc == 6)) || (cmd == "create-loop" && argc == 5)) {
    const std::filesystem::path stop = argc == 6 ? argv[5] : "";
    auto store = open(argv[2], cmd == "create-loop");
    if (!store) return fail(store.err().to_string());
    const std::uint64_t n = std::stoull(argv[4]);
    for (std::uint64_t i = 1; i <= n; ++i) {
      if (!stop.empty() && i % 16 == 0 && std::filesystem::exists(stop)) break;
      varve::new_event e{.type = "tick", .payload = "{\"i\":" + std::to_string(i) + "}"};
      auto r = (*store)->append(argv[3], varve::expected_version::any(), {&e, 1});
      if (!r) return fail(r.err().to_string());
    }
    return 0;
  }
  return fail("usage: see the comment at the top of varvectl_helper.cpp");
}
