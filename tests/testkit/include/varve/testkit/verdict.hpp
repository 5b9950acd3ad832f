// What the testkit's checks answer, and the exceptions it throws.
//
// The convention, the same for every check of the testkit (then_events,
// then_rejected, projection_harness::run, ...): a check returns a `verdict`,
// a value that is true when the expectation holds and otherwise carries a
// message for people (what was expected, what happened, where they differ).
// Nothing in the testkit depends on a test framework:
//
//   Boost.Test   BOOST_TEST(t.when(cmd).then_events({...}));
//                (on failure Boost prints the message: "['<message>' evaluates
//                to false]"); or BOOST_CHECK_MESSAGE(v, v.message())
//   GoogleTest   auto v = t.when(cmd).then_events({...}); EXPECT_TRUE(v) << v;
//   plain        assert(v); or: if (!v) { std::cerr << v << "\n"; return 1; }
//   exceptions   t.when(cmd).then_events({...}).or_throw();   // expectation_failed
//
// A verdict is [[nodiscard]]: a check whose answer is dropped does not
// compile with warnings as errors.
//
// What cannot be arranged (a given event that the codec does not encode or
// decode, a store that does not open, an append the store refuses, a view
// that does not read) is not an expectation: the testkit throws
// `testkit_error` naming it, which test frameworks report as an error.
// Exceptions thrown by the application's own code (apply, decide, a codec, a
// projection handler outside the engine) pass through unchanged.
#pragma once

#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>

namespace varve::testkit {

/// Thrown by verdict::or_throw() for an expectation that does not hold; what()
/// is the verdict's message.
class expectation_failed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown when the testkit cannot arrange what a test asked for (see above).
class testkit_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The answer of a check: passed, or failed with a message.
class [[nodiscard]] verdict {
 public:
  /// A check that holds.
  static verdict pass() { return verdict(true, {}); }
  /// A check that does not hold, and why (should not be empty).
  static verdict fail(std::string message) { return verdict(false, std::move(message)); }

  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  /// Why the check failed; empty when it passed.
  const std::string& message() const noexcept { return message_; }

  /// Does nothing when the check passed; throws expectation_failed with the
  /// message otherwise.
  void or_throw() const {
    if (!ok_) throw expectation_failed(message_);
  }

  /// The message, or "ok": what Boost.Test and GoogleTest print.
  friend std::ostream& operator<<(std::ostream& os, const verdict& v) {
    return os << (v.ok_ ? std::string("ok") : v.message_);
  }

 private:
  verdict(bool ok, std::string message) : ok_(ok), message_(std::move(message)) {}
  bool ok_;
  std::string message_;
};

}  // namespace varve::testkit
