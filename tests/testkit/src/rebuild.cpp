// The projection harness: rebuilding a projection and comparing its views.
#include <map>

#include "varve/testkit/projection_harness.hpp"

namespace varve::testkit {

namespace {

/// At most this many differing keys are named in a message.
constexpr std::size_t named_keys = 20;

std::string in_quotes(std::string_view s) {
  return "'" + std::string(s) + "'";
}

}  // namespace

verdict projection_harness::rebuilds_identically() {
  if (!driver_) {
    if (auto first = run(); !first) return verdict::fail("before the rebuild: " + first.message());
  }
  const auto before = rows();
  std::optional<projection_status> replied;
  engine().rebuild([&replied](const projection_status& s) { replied = s; });
  auto again = run();
  if (!replied) return verdict::fail("the rebuild of '" + spec_.name + "' was not carried out");
  if (!again) return verdict::fail("after the rebuild: " + again.message());

  std::map<std::string, std::string> after;
  for (auto& [key, value] : rows())
    after.emplace(std::move(key), std::move(value));
  std::vector<std::string> differences;
  for (const auto& [key, value] : before) {
    auto it = after.find(key);
    if (it == after.end())
      differences.push_back("key " + in_quotes(key) + ": " + in_quotes(value) +
                            " before, none after");
    else if (it->second != value)
      differences.push_back("key " + in_quotes(key) + ": " + in_quotes(value) + " before, " +
                            in_quotes(it->second) + " after");
    if (it != after.end()) after.erase(it);
  }
  for (const auto& [key, value] : after)
    differences.push_back("key " + in_quotes(key) + ": none before, " + in_quotes(value) +
                          " after");
  if (differences.empty()) return verdict::pass();

  std::string message = "view '" + (spec_.view.empty() ? spec_.name : spec_.view) +
                        "' differs after a rebuild from the same events (" +
                        std::to_string(differences.size()) + " keys):";
  for (std::size_t i = 0; i < differences.size() && i < named_keys; ++i)
    message += "\n  " + differences[i];
  if (differences.size() > named_keys)
    message += "\n  and " + std::to_string(differences.size() - named_keys) + " more";
  return verdict::fail(std::move(message));
}

}  // namespace varve::testkit
