// Varve's one error vocabulary, and the result type every storage call returns.
//
// The storage layer never throws across its API: a call either yields its value
// or an `error` carrying a code from `errc` and a message that names the problem
// ("stream 'account-7': expected version 3, stream is at version 5").
// "Not found" is an error only where a caller asked for one specific thing;
// where absence is a normal answer the API returns std::optional instead.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace varve {

/// The kinds of failure, shared by every layer of Varve.
enum class errc : std::uint8_t {
  not_found = 1,           ///< the thing asked for does not exist
  wrong_expected_version,  ///< an optimistic-concurrency check failed
  corruption,              ///< stored bytes do not decode
  io_error,                ///< the operating system or LMDB reported an I/O failure
  storage_full,            ///< the map reached its maximum, or the disk is full
  invalid_argument,        ///< bad input: stream name, event, option, expected version
  auth_failed,             ///< wrong key, or a ciphertext that does not authenticate
  shredded,                ///< the stream was crypto-shredded
  format_version,          ///< the store was written by a newer format version
  failed_state,            ///< an earlier I/O failure stopped all writes to this store
  busy,                    ///< a resource is held elsewhere (e.g. open read transactions)
  rejected,                ///< an aggregate refused a command (a domain rule)
  unavailable,             ///< an actor or service that should answer is gone
  handler_failed,          ///< application code (a projection's handler, an aggregate's
                           ///< decide or codec) threw: a bug to fix, not a domain refusal
  timeout,                 ///< what was waited for did not happen in the time given
};

/// The stable lower-case name of a code, e.g. "wrong_expected_version".
std::string_view to_string(errc code) noexcept;

/// A failure: a code to branch on and a message for people.
class error {
 public:
  error(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  /// "<code>: <message>", for logs and command-line output.
  std::string to_string() const;

 private:
  errc code_;
  std::string message_;
};

/// Either a value of type T or an error. Check `ok()` (or `if (r)`) before
/// touching `value()`: reading the wrong alternative (value() of an error,
/// err() of a value) is a programming error and throws
/// std::bad_variant_access, the only exception a storage call's result can
/// give.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : data_(std::in_place_index<0>, std::move(value)) {}
  result(error err) : data_(std::in_place_index<1>, std::move(err)) {}

  bool ok() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(data_); }
  const T& value() const& { return std::get<0>(data_); }
  T&& value() && { return std::get<0>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  /// The value, or `fallback` when this is an error (as std::optional's).
  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }
  T value_or(T fallback) && { return ok() ? std::move(*this).value() : std::move(fallback); }

  const error& err() const& { return std::get<1>(data_); }
  error&& err() && { return std::get<1>(std::move(data_)); }

 private:
  std::variant<T, error> data_;
};

/// A result with no value: success, or an error.
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error err) : err_(std::move(err)), failed_(true) {}

  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }
  const error& err() const& { return err_; }
  error&& err() && { return std::move(err_); }

 private:
  error err_{errc::invalid_argument, {}};
  bool failed_ = false;
};

}  // namespace varve
