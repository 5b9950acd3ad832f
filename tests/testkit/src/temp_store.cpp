// The temporary store of a test.
#include "varve/testkit/temp_store.hpp"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <system_error>

namespace varve::testkit {

namespace fs = std::filesystem;

namespace {

fs::path make_directory() {
  std::error_code ec;
  const fs::path base = fs::temp_directory_path(ec);
  if (ec) throw testkit_error("no temporary directory: " + ec.message());
  std::string pattern = (base / "varve-testkit-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw testkit_error("mkdtemp " + pattern + ": " + std::strerror(errno));
  return pattern;
}

std::array<std::uint8_t, 32> random_key() {
  std::random_device random;
  std::array<std::uint8_t, 32> key{};
  for (auto& b : key)
    b = static_cast<std::uint8_t>(random());
  return key;
}

std::shared_ptr<event_store> open_store(const options& o) {
  auto r = event_store::open(o);
  if (!r)
    throw testkit_error("opening the store in " + o.directory.string() + ": " +
                        r.err().to_string());
  return std::move(r).value();
}

}  // namespace

temp_store::temp_store(temp_store_options opts) : path_(make_directory()) {
  options_.directory = path_ / "store";
  options_.sync = opts.sync;
  options_.map_size = opts.map_size;
  if (opts.encrypted) options_.master_key = random_key();
  try {
    store_ = open_store(options_);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(path_, ec);
    throw;
  }
}

temp_store::~temp_store() {
  store_.reset();
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void temp_store::reopen() {
  if (store_.use_count() > 1)
    throw testkit_error("reopening the store in " + options_.directory.string() + ": " +
                        std::to_string(store_.use_count() - 1) + " other owners still hold it");
  store_.reset();
  store_ = open_store(options_);
}

}  // namespace varve::testkit
