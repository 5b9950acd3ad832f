// The bank example's model (examples/bank): the account aggregate's rules
// with given / when / then, and the balances projection over given events,
// with Varve::testkit; no actors.
#define BOOST_TEST_MODULE bank_model
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <varve/testkit/testkit.hpp>

#include "../../examples/bank/account.hpp"
#include "../../examples/bank/balances.hpp"

using namespace bank;
using varve::testkit::aggregate_test;
using varve::testkit::projection_harness;

BOOST_AUTO_TEST_SUITE(account_rules)

BOOST_AUTO_TEST_CASE(an_account_opens_once) {
  aggregate_test<account> t;
  BOOST_TEST(t.when(open{"ada"}).then_events({opened{"ada"}}));
  BOOST_TEST(t.state().open);
  BOOST_TEST(t.when(open{"ada"}).then_rejected_with("already open"));
}

BOOST_AUTO_TEST_CASE(nothing_but_open_before_it_is_open) {
  aggregate_test<account> t;
  BOOST_TEST(t.when(deposit{10}).then_rejected_with("not open"));
  BOOST_TEST(t.when(withdraw{10}).then_rejected_with("not open"));
  BOOST_TEST(t.when(bank::close{}).then_rejected_with("not open"));
}

BOOST_AUTO_TEST_CASE(deposits_must_be_positive) {
  aggregate_test<account> t;
  t.given({opened{"ada"}});
  BOOST_TEST(t.when(deposit{100}).then_events({deposited{100}}));
  BOOST_TEST(t.state().balance == 100);
  BOOST_TEST(t.when(deposit{0}).then_rejected_with("a deposit must be positive"));
  BOOST_TEST(t.when(deposit{-5}).then_rejected());
  BOOST_TEST(t.state().balance == 100);
}

BOOST_AUTO_TEST_CASE(withdrawals_within_the_balance_only) {
  aggregate_test<account> t;
  t.given({opened{"ada"}, deposited{100}});
  BOOST_TEST(t.when(withdraw{50}).then_events({withdrawn{50}}));
  BOOST_TEST(t.state().balance == 50);
  BOOST_TEST(t.when(withdraw{51}).then_rejected_with("insufficient funds"));
  BOOST_TEST(t.when(withdraw{0}).then_rejected_with("must be positive"));
  BOOST_TEST(t.when(withdraw{50}).then_events({withdrawn{50}}));  // down to zero is fine
  BOOST_TEST(t.state().balance == 0);
  BOOST_TEST(t.version() == 4u);
}

BOOST_AUTO_TEST_CASE(only_an_empty_account_closes_and_then_takes_nothing) {
  aggregate_test<account> t;
  t.given({opened{"ada"}, deposited{10}});
  BOOST_TEST(t.when(bank::close{}).then_rejected_with("only an empty account can be closed"));
  t.given({withdrawn{10}});
  BOOST_TEST(t.when(bank::close{}).then_events({closed{}}));
  BOOST_TEST(t.state().closed);
  BOOST_TEST(t.when(deposit{1}).then_rejected_with("not open"));
}

BOOST_AUTO_TEST_CASE(given_commands_build_the_history) {
  aggregate_test<account> t;
  t.given_commands({open{"ada"}, deposit{70}, withdraw{20}});
  BOOST_TEST(t.state().balance == 50);
  BOOST_CHECK_THROW(t.given_commands({withdraw{60}}), varve::testkit::testkit_error);
}

BOOST_AUTO_TEST_CASE(a_wrong_expectation_on_bank_events_reads_well) {
  aggregate_test<account> t;
  auto owner = t.when(open{"ada"}).then_events({opened{"bob"}});
  BOOST_TEST(!owner);
  BOOST_TEST(
      owner.message().find("'account_opened' in both, the payloads differ") != std::string::npos,
      owner.message());
  t.given({deposited{100}});
  auto type = t.when(withdraw{30}).then_events({deposited{30}});
  BOOST_TEST(!type);
  BOOST_TEST(
      type.message().find("event 0: expected 'deposited', actual 'withdrawn'") != std::string::npos,
      type.message());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(balances_view)

BOOST_AUTO_TEST_CASE(balances_equal_a_fold_of_each_account) {
  projection_harness h(balances_projection());
  h.given<account>("account-1", {opened{"ada"}, deposited{100}, withdrawn{30}})
      .given<account>("account-2", {opened{"bob"}, deposited{5}});
  h.given_events("order-1", {varve::new_event{.type = "order_placed", .payload = "?"}});
  BOOST_TEST(h.run());
  BOOST_TEST(h.view("account-1").value_or("none") == "70");
  BOOST_TEST(h.view("account-2").value_or("none") == "5");
  BOOST_TEST(!h.view("order-1"));  // not an account: the filter leaves it out
  h.given<account>("account-2", {withdrawn{5}, closed{}});
  BOOST_TEST(h.run());
  BOOST_TEST(h.view("account-2").value_or("none") == "0");
  BOOST_TEST(h.rebuilds_identically());
  BOOST_TEST(h.status().position == 8u);
}

BOOST_AUTO_TEST_CASE(an_account_event_that_does_not_decode_stops_it) {
  auto spec = balances_projection();
  spec.max_retries = 0;
  projection_harness h(spec);
  h.given<account>("account-1", {opened{"ada"}, deposited{10}});
  h.given_events("account-1", {varve::new_event{.type = "deposited", .payload = "garbage"}});
  auto v = h.run();
  BOOST_TEST(!v);
  BOOST_TEST(v.message().find("position 3: corruption: an account event does not decode") !=
                 std::string::npos,
             v.message());
  BOOST_TEST(h.status().state == "failed");
  BOOST_TEST(h.view("account-1").value_or("none") == "10");
}

BOOST_AUTO_TEST_SUITE_END()
