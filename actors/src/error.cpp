#include "varve/actors/error.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace varve {

caf::error make_error(errc code) {
  return caf::error(static_cast<std::uint8_t>(code), error_category);
}

caf::error make_error(errc code, std::string message) {
  return caf::error(static_cast<std::uint8_t>(code), error_category,
                    caf::make_message(std::move(message)));
}

caf::error to_caf(const error& e) {
  return make_error(e.code(), e.message());
}

error error_from(const caf::error& e) {
  if (e.category() == error_category) {
    std::string message;
    if (e.context().match_elements<std::string>()) message = e.context().get_as<std::string>(0);
    return error{static_cast<errc>(e.code()), std::move(message)};
  }
  if (e.category() == caf::atom("system")) {
    const auto s = static_cast<caf::sec>(e.code());
    if (s == caf::sec::request_receiver_down || s == caf::sec::request_timeout ||
        s == caf::sec::no_context || s == caf::sec::invalid_argument)
      return error{errc::unavailable, caf::to_string(s)};
    return error{errc::io_error, caf::to_string(s)};
  }
  return error{errc::io_error, "error " + std::to_string(e.code()) + " of category " +
                                   caf::to_string(e.category())};
}

void add_error_category(caf::actor_system_config& cfg) {
  cfg.add_error_category(error_category,
                         [](std::uint8_t code, caf::atom_value, const caf::message& context) {
                           std::string out = "varve::";
                           out += to_string(static_cast<errc>(code));
                           if (context.match_elements<std::string>()) {
                             out += ": ";
                             out += context.get_as<std::string>(0);
                           }
                           return out;
                         });
}

}  // namespace varve
