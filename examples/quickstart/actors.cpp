// Actors at a glance (shown in the README): an aggregate, a view, the
// runtime, and read-your-writes.
#include <cstdio>
#include <varve/runtime.hpp>

struct deposited {
  static constexpr std::string_view type_name = "deposited";  // stored with the event
  std::int64_t amount = 0;
};
VARVE_JSON(deposited, amount)  // stored as {"amount":100}
struct deposit {
  std::int64_t amount = 0;
};

struct account {
  static constexpr std::string_view category = "account";  // streams "account-<id>"
  struct state {
    std::int64_t balance = 0;
  };
  using event = deposited;
  using command = deposit;
  static void apply(state& s, const event& e) { s.balance += e.amount; }
  static varve::decision<event> decide(const state&, const command& c) {
    if (c.amount <= 0) return varve::error{varve::errc::rejected, "a deposit must be positive"};
    return std::vector<event>{deposited{c.amount}};
  }
};

varve::projection_spec balances() {  // exactly-once view: stream -> balance
  varve::projection_spec spec{.name = "balances"};
  spec.filter.categories = {"account"};  // only "account-..." streams reach the handler
  spec.handle = [](const varve::delivered_event& d, varve::view_batch& view) {
    auto e = varve::decode_event<account>(d.event);
    if (!e) return varve::result<void>({varve::errc::corruption, "not an account event"});
    auto balance = varve::get_json<std::int64_t>(view, d.stream);
    if (!balance) return varve::result<void>(balance.err());
    return varve::put_json(view, d.stream, balance->value_or(0) + e->amount);
  };
  return spec;
}

int main(int argc, char** argv) {
  auto rt = varve::runtime::open(
      {.store = {.directory = argc > 1 ? argv[1] : "var/quickstart"}, .projections = {balances()}});
  if (!rt) return std::fprintf(stderr, "%s\n", rt.err().to_string().c_str()), 1;
  auto reply = rt->execute<account>("ada", deposit{100});  // blocks until committed
  if (!reply) return std::fprintf(stderr, "%s\n", reply.err().to_string().c_str()), 1;
  std::printf("account-ada at version %llu\n", static_cast<unsigned long long>(reply->version));
  auto refused = rt->execute<account>("ada", deposit{-5});
  std::printf("refused: %s\n", refused ? "no" : refused.err().message().c_str());
  if (auto ok = rt->wait_for("balances", reply->position); !ok)  // read your writes
    return std::fprintf(stderr, "%s\n", ok.err().to_string().c_str()), 1;
  auto balance = rt->view<std::int64_t>("balances", "account-ada");
  if (balance && *balance) std::printf("balance: %lld\n", static_cast<long long>(**balance));
}  // ~runtime: registries, projections, storage actor, then the actor system stop in order
