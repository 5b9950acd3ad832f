// Test support for the storage suites: a fresh temporary directory per test,
// removed at the end, and a few helpers to open stores and build events.
//
// Include after <boost/test/unit_test.hpp> (the helpers use BOOST_REQUIRE).
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "varve/storage/error.hpp"
#include "varve/storage/event.hpp"
#include "varve/storage/event_store.hpp"
#include "varve/storage/options.hpp"

namespace varve {

// How Boost.Test prints Varve values in failed assertions (found by ADL).
inline std::ostream& boost_test_print_type(std::ostream& os, errc code) {
  return os << to_string(code);
}
inline std::ostream& boost_test_print_type(std::ostream& os, const event_id& id) {
  return os << id.to_string();
}
inline std::ostream& boost_test_print_type(std::ostream& os, direction dir) {
  return os << (dir == direction::forward ? "forward" : "backward");
}
inline std::ostream& boost_test_print_type(std::ostream& os, stream_state state) {
  return os << static_cast<int>(state);
}

}  // namespace varve

namespace varve_test {

namespace fs = std::filesystem;

/// A fresh directory under the system's temporary directory (mkdtemp),
/// removed with everything in it when the object goes away.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "varve-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    // A test may have taken write permission away; give it back first.
    for (auto it = fs::recursive_directory_iterator(
             path_, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec)) fs::permissions(it->path(), fs::perms::owner_all, ec);
    }
    fs::permissions(path_, fs::perms::owner_all, ec);
    fs::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const fs::path& path() const noexcept { return path_; }
  /// The path of an entry inside the directory (not created).
  fs::path operator/(std::string_view name) const { return path_ / name; }

 private:
  fs::path path_;
};

/// "ok" or "<code>: <message>", for assertion messages.
template <class T>
std::string describe(const varve::result<T>& r) {
  return r.ok() ? std::string("ok") : r.err().to_string();
}

/// A master key for encrypted test stores, different for each seed.
inline std::array<std::uint8_t, 32> test_key(std::uint8_t seed) {
  std::array<std::uint8_t, 32> key{};
  for (std::size_t i = 0; i < key.size(); ++i)
    key[i] = static_cast<std::uint8_t>(seed + 7 * i);
  return key;
}

/// Options for a test store in `dir`: defaults, but no fsync (fast).
inline varve::options test_options(const fs::path& dir) {
  varve::options o;
  o.directory = dir;
  o.sync = varve::durability::no_sync;
  return o;
}

/// Opens a store or fails the test with the error.
inline std::unique_ptr<varve::event_store> open_store(const varve::options& o) {
  auto r = varve::event_store::open(o);
  BOOST_REQUIRE_MESSAGE(r.ok(), "open " << o.directory.string() << ": " << describe(r));
  return std::move(r).value();
}

inline varve::new_event make_event(std::string type, std::string payload = {},
                                   std::string metadata = {}) {
  varve::new_event e;
  e.type = std::move(type);
  e.payload = std::move(payload);
  e.metadata = std::move(metadata);
  return e;
}

/// `n` events of type "test-event" with payloads "<prefix>-0", "<prefix>-1", ...
inline std::vector<varve::new_event> make_events(std::size_t n, std::string_view prefix = "e") {
  std::vector<varve::new_event> events;
  events.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    events.push_back(make_event("test-event", std::string(prefix) + "-" + std::to_string(i)));
  }
  return events;
}

/// True when `text` holds `number` as a whole decimal token (not part of a
/// longer number).
inline bool mentions_number(std::string_view text, std::uint64_t number) {
  const std::string digits = std::to_string(number);
  for (std::size_t at = text.find(digits); at != std::string_view::npos;
       at = text.find(digits, at + 1)) {
    const bool digit_before = at > 0 && text[at - 1] >= '0' && text[at - 1] <= '9';
    const std::size_t end = at + digits.size();
    const bool digit_after = end < text.size() && text[end] >= '0' && text[end] <= '9';
    if (!digit_before && !digit_after) return true;
  }
  return false;
}

/// True when `text` contains `word`, also accepting spaces for underscores
/// ("no_stream" or "no stream").
inline bool mentions_word(std::string_view text, std::string word) {
  if (text.find(word) != std::string_view::npos) return true;
  for (char& c : word) {
    if (c == '_') c = ' ';
  }
  return text.find(word) != std::string_view::npos;
}

/// A store in a fresh temporary directory, opened with test_options; the
/// fixture of most storage tests.
struct store_fixture {
  temp_dir dir;
  varve::options opts;
  std::unique_ptr<varve::event_store> store;

  store_fixture() : opts(test_options(dir / "store")), store(open_store(opts)) {}

  /// Closes the store and opens it again with the same options.
  void reopen() {
    store.reset();
    store = open_store(opts);
  }

  varve::read_transaction read() const {
    auto tx = store->read();
    BOOST_REQUIRE_MESSAGE(tx.ok(), "read: " << describe(tx));
    return std::move(tx).value();
  }

  varve::global_position head() const { return read().head(); }

  /// The stream's current version, 0 when it does not exist.
  varve::stream_version version_of(std::string_view name) const {
    auto tx = read();
    auto info = tx.stream(name);
    BOOST_REQUIRE_MESSAGE(info.ok(), "stream " << name << ": " << describe(info));
    return info.value() ? info.value()->version : 0;
  }

  /// Appends, requiring success.
  varve::append_result append(std::string_view stream, varve::expected_version expected,
                              const std::vector<varve::new_event>& events) {
    auto r = store->append(stream, expected, events);
    BOOST_REQUIRE_MESSAGE(
        r.ok(), "append to " << stream << " (" << expected.to_string() << "): " << describe(r));
    return r.value();
  }

  /// The whole log, owned.
  std::vector<varve::recorded_event> log() const {
    auto r = store->read_log();
    BOOST_REQUIRE_MESSAGE(r.ok(), "read_log: " << describe(r));
    return std::move(r).value();
  }

  /// The whole stream, owned, in version order.
  std::vector<varve::recorded_event> stream_events(std::string_view name) const {
    auto r = store->read_stream(name);
    BOOST_REQUIRE_MESSAGE(r.ok(), "read_stream " << name << ": " << describe(r));
    return std::move(r).value();
  }
};

}  // namespace varve_test

// Each macro evaluates its result expression once: `VARVE_REQUIRE_OK(
// store->append(...))` appends once (Boost builds the message even when the
// check passes).

/// Requires a result to hold a value; on failure prints its error.
#define VARVE_REQUIRE_OK(r)                                                                   \
  do {                                                                                        \
    const auto& varve_result_ = (r);                                                          \
    BOOST_REQUIRE_MESSAGE(varve_result_.ok(),                                                 \
                          "expected success, got " << ::varve_test::describe(varve_result_)); \
  } while (false)

/// Checks a result to hold a value; on failure prints its error.
#define VARVE_CHECK_OK(r)                                                                   \
  do {                                                                                      \
    const auto& varve_result_ = (r);                                                        \
    BOOST_CHECK_MESSAGE(varve_result_.ok(),                                                 \
                        "expected success, got " << ::varve_test::describe(varve_result_)); \
  } while (false)

/// Checks that a result failed with the given code.
#define VARVE_CHECK_ERRC(r, expected_code)                                                    \
  do {                                                                                        \
    const auto& varve_result_ = (r);                                                          \
    BOOST_CHECK_MESSAGE(!varve_result_.ok() && varve_result_.err().code() == (expected_code), \
                        "expected error " << ::varve::to_string(expected_code) << ", got "    \
                                          << ::varve_test::describe(varve_result_));          \
  } while (false)

/// Requires that a result failed with the given code.
#define VARVE_REQUIRE_ERRC(r, expected_code)                                                    \
  do {                                                                                          \
    const auto& varve_result_ = (r);                                                            \
    BOOST_REQUIRE_MESSAGE(!varve_result_.ok() && varve_result_.err().code() == (expected_code), \
                          "expected error " << ::varve::to_string(expected_code) << ", got "    \
                                            << ::varve_test::describe(varve_result_));          \
  } while (false)
