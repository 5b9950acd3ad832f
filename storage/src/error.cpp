#include "varve/storage/error.hpp"

namespace varve {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::not_found:
      return "not_found";
    case errc::wrong_expected_version:
      return "wrong_expected_version";
    case errc::corruption:
      return "corruption";
    case errc::io_error:
      return "io_error";
    case errc::storage_full:
      return "storage_full";
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::auth_failed:
      return "auth_failed";
    case errc::shredded:
      return "shredded";
    case errc::format_version:
      return "format_version";
    case errc::failed_state:
      return "failed_state";
    case errc::busy:
      return "busy";
    case errc::rejected:
      return "rejected";
    case errc::unavailable:
      return "unavailable";
    case errc::handler_failed:
      return "handler_failed";
    case errc::timeout:
      return "timeout";
  }
  return "unknown";
}

std::string error::to_string() const {
  std::string out(varve::to_string(code_));
  out += ": ";
  out += message_;
  return out;
}

}  // namespace varve
