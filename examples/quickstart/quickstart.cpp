// The storage API at a glance (shown in the README).
#include <varve/storage/event_store.hpp>

#include <iostream>

int main(int argc, char** argv) {
  varve::options opts;
  opts.directory = argc > 1 ? argv[1] : "var/quickstart";
  auto store = varve::event_store::open(opts);
  if (!store) {
    std::cerr << store.err().to_string() << "\n";
    return 1;
  }

  // Append two events to a new stream; fails if the stream already exists.
  varve::new_event opened{.type = "account_opened", .payload = R"({"owner":"ada"})"};
  varve::new_event deposited{.type = "deposited", .payload = R"({"amount":100})"};
  auto appended =
      (*store)->append("account-1", varve::expected_version::no_stream(), {{opened, deposited}});
  if (!appended) {
    std::cerr << appended.err().to_string() << "\n";  // e.g. wrong_expected_version
    return 1;
  }
  std::cout << "appended versions " << appended->first_version << ".." << appended->last_version
            << " at positions " << appended->first_position << ".." << appended->last_position
            << "\n";

  // Read the stream back without copying: views live as long as `txn`.
  auto txn = (*store)->read();
  if (!txn) return 1;
  auto events = txn->read_stream("account-1", 1, varve::direction::forward, 100);
  if (!events) return 1;
  for (const varve::event_view& e : *events)
    std::cout << e.position << " v" << e.version << " " << e.type << " " << e.payload << "\n";
  return 0;
}
