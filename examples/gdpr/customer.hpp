// The customer aggregate of the GDPR example: a profile with personal data
// (name, email, address) that can be registered and changed.
//
// No snapshots: a snapshot is the aggregate's state in clear (snapshots are
// not encrypted and shredding does not remove them), and this state is
// personal data.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <varve/actors/aggregate.hpp>

namespace gdpr {

// Events, stored as JSON (the store encrypts their payloads).
struct registered {
  static constexpr std::string_view type_name = "customer_registered";
  std::string name;
  std::string email;
  std::string address;
};
VARVE_JSON(registered, name, email, address)
struct email_changed {
  static constexpr std::string_view type_name = "email_changed";
  std::string email;
};
VARVE_JSON(email_changed, email)
struct address_changed {
  static constexpr std::string_view type_name = "address_changed";
  std::string address;
};
VARVE_JSON(address_changed, address)
/// Never stored: what an event of a shredded stream decodes to (its payload
/// is gone; its type is still there).
struct erased {
  static constexpr std::string_view type_name = "erased";
};
VARVE_JSON(erased)

// Commands: plain structs (they stay in the process).
struct register_customer {
  std::string name;
  std::string email;
  std::string address;
};
struct change_email {
  std::string email;
};
struct change_address {
  std::string address;
};

using customer_event = std::variant<registered, email_changed, address_changed, erased>;

/// The default codec (JSON), except that an event without payload (every stored
/// customer event has one) is one whose stream was shredded: it decodes to
/// `erased`, so that an aggregate actor can still hydrate from such a stream
/// and refuse its commands.
struct customer_codec {
  using base = varve::default_codec<customer_event>;
  static std::string type_of(const customer_event& e) { return base::type_of(e); }
  static bool encode(const customer_event& e, std::string& out) { return base::encode(e, out); }
  static std::optional<customer_event> decode(std::string_view type, std::string_view bytes) {
    if (bytes.empty()) return customer_event{erased{}};
    return base::decode(type, bytes);
  }
};

struct customer {
  static constexpr std::string_view category = "customer";
  using codec = customer_codec;

  struct state {
    bool registered = false;
    bool forgotten = false;
    std::string email;
    std::string address;
  };
  using event = customer_event;
  using command = std::variant<register_customer, change_email, change_address>;

  static void apply(state& s, const event& e) {
    if (auto* r = std::get_if<registered>(&e)) {
      s.registered = true;
      s.email = r->email;
      s.address = r->address;
    }
    if (auto* c = std::get_if<email_changed>(&e)) s.email = c->email;
    if (auto* c = std::get_if<address_changed>(&e)) s.address = c->address;
    if (std::holds_alternative<erased>(e)) {
      s = state{};
      s.registered = s.forgotten = true;
    }
  }

  static varve::decision<event> decide(const state& s, const command& c) {
    using varve::errc;
    using varve::error;
    if (s.forgotten) return error{errc::shredded, "the customer's data was forgotten"};
    if (auto* r = std::get_if<register_customer>(&c)) {
      if (s.registered) return error{errc::rejected, "the customer is already registered"};
      if (r->name.empty() || r->email.find('@') == std::string::npos)
        return error{errc::rejected, "a customer needs a name and an email address"};
      return std::vector<event>{registered{r->name, r->email, r->address}};
    }
    if (!s.registered) return error{errc::rejected, "no such customer"};
    if (auto* m = std::get_if<change_email>(&c)) {
      if (m->email.find('@') == std::string::npos)
        return error{errc::rejected, "not an email address"};
      if (m->email == s.email) return std::vector<event>{};  // nothing changes
      return std::vector<event>{email_changed{m->email}};
    }
    const auto& a = std::get<change_address>(c);
    if (a.address == s.address) return std::vector<event>{};
    return std::vector<event>{address_changed{a.address}};
  }
};

}  // namespace gdpr
