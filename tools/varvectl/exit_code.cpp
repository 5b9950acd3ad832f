#include "exit_code.hpp"

#include <iostream>
#include <string>

#include "encoding.hpp"
#include "event_json.hpp"

namespace varvectl {

exit_code exit_code_for(varve::errc code) noexcept {
  switch (code) {
    case varve::errc::wrong_expected_version:
      return exit_conflict;
    case varve::errc::auth_failed:
      return exit_auth;
    case varve::errc::not_found:
      return exit_not_found;
    case varve::errc::invalid_argument:
      return exit_usage;
    default:
      return exit_failure;
  }
}

exit_code report(const varve::error& e, bool json) {
  std::cout.flush();
  if (json) {
    varvectl::json j;
    j["error"] = std::string(varve::to_string(e.code()));
    j["message"] = e.message();
    std::cerr << json_text(j) << '\n';
  } else {
    std::cerr << terminal_text("varvectl: " + e.to_string()) << '\n';
  }
  return exit_code_for(e.code());
}

varve::error usage_error(std::string_view message) {
  return varve::error{varve::errc::invalid_argument, std::string(message)};
}

}  // namespace varvectl
