// What sending the bank's commands to another process takes: an inspect
// overload per command type (CAF serialises them), and a type-id block
// (main.cpp). In one process, commands need neither.
#pragma once

#include <caf/meta/type_name.hpp>

#include "../bank/account.hpp"

namespace bank {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, open& x) {
  return f(caf::meta::type_name("open"), x.owner);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, deposit& x) {
  return f(caf::meta::type_name("deposit"), x.amount);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, withdraw& x) {
  return f(caf::meta::type_name("withdraw"), x.amount);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, close&) {
  return f(caf::meta::type_name("close"));
}

}  // namespace bank
