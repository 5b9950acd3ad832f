// The library example (examples/library) with Varve::testkit: the book's
// rules with given / when / then, and its two projections over given
// events; no actors.
#define BOOST_TEST_MODULE library
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <varve/testkit/testkit.hpp>

#include "../../examples/library/book.hpp"
#include "../../examples/library/loans.hpp"

using namespace library;
using varve::testkit::aggregate_test;
using varve::testkit::projection_harness;

BOOST_AUTO_TEST_SUITE(book_rules)

BOOST_AUTO_TEST_CASE(a_book_enters_the_catalogue_once_with_a_title_and_a_copy) {
  aggregate_test<book> t;
  BOOST_TEST(t.when(add_book{"", 1}).then_rejected_with("needs a title"));
  BOOST_TEST(t.when(add_book{"Dune", 0}).then_rejected_with("needs a title and a copy"));
  BOOST_TEST(t.when(add_book{"Dune", 2}).then_events({book_added{"Dune", 2}}));
  BOOST_TEST(t.when(add_book{"Dune", 2}).then_rejected_with("in the catalogue already"));
}

BOOST_AUTO_TEST_CASE(nothing_is_lent_or_returned_before_the_book_exists) {
  aggregate_test<book> t;
  BOOST_TEST(t.when(lend{"ada"}).then_rejected_with("no such book"));
  BOOST_TEST(t.when(give_back{"ada"}).then_rejected_with("no such book"));
}

BOOST_AUTO_TEST_CASE(copies_are_lent_while_one_is_on_the_shelf) {
  aggregate_test<book> t;
  t.given({book_added{"Dune", 2}});
  BOOST_TEST(t.when(lend{"ada"}).then_events({book_lent{"ada"}}));
  BOOST_TEST(t.when(lend{"ada"}).then_rejected_with("ada has this book already"));
  BOOST_TEST(t.when(lend{"bob"}).then_events({book_lent{"bob"}}));
  BOOST_TEST(t.when(lend{"cy"}).then_rejected_with("no copy is left"));
  BOOST_TEST(t.when(give_back{"ada"}).then_events({book_returned{"ada"}}));
  BOOST_TEST(t.when(lend{"cy"}).then_events({book_lent{"cy"}}));
}

BOOST_AUTO_TEST_CASE(only_a_borrower_brings_a_book_back) {
  aggregate_test<book> t;
  t.given_commands({add_book{"Dune", 1}, lend{"ada"}});
  BOOST_TEST(t.when(give_back{"bob"}).then_rejected_with("bob does not have this book"));
  BOOST_TEST(t.when(give_back{"ada"}).then_events({book_returned{"ada"}}));
  BOOST_TEST(t.when(give_back{"ada"}).then_rejected());
  BOOST_TEST(t.state().borrowers.empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(read_side)

BOOST_AUTO_TEST_CASE(the_loans_view_lists_what_each_member_holds) {
  projection_harness h(loans_view());
  h.given<book>("book-1", {book_added{"Dune", 2}, book_lent{"ada"}, book_lent{"bob"}})
      .given<book>("book-2", {book_added{"Emma", 1}, book_lent{"ada"}});
  BOOST_TEST(h.run());
  BOOST_TEST(nlohmann::json::parse(h.view("ada").value_or("null")) ==
             nlohmann::json({"book-1", "book-2"}));
  h.given<book>("book-1", {book_returned{"ada"}});
  BOOST_TEST(h.run());
  BOOST_TEST(nlohmann::json::parse(h.view("ada").value_or("null")) == nlohmann::json({"book-2"}));
  BOOST_TEST(nlohmann::json::parse(h.view("bob").value_or("null")) == nlohmann::json({"book-1"}));
  BOOST_TEST(h.rebuilds_identically());
}

BOOST_AUTO_TEST_CASE(the_notifier_writes_each_loan_once_across_a_restart) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("varve-library-notices-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(path);
  {
    projection_harness h(notifier(path.string()));
    h.given<book>("book-1", {book_added{"Dune", 2}, book_lent{"ada"}, book_returned{"ada"}});
    BOOST_TEST(h.run());
  }
  // A new notifier (a restart) over the same log and more: only the new loan.
  projection_harness h(notifier(path.string()));
  h.given<book>("book-1", {book_added{"Dune", 2}, book_lent{"ada"}, book_lent{"bob"}});
  BOOST_TEST(h.run());
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  BOOST_TEST(
      lines == (std::vector<std::string>{"2 to ada: enjoy book-1", "3 to bob: enjoy book-1"}),
      boost::test_tools::per_element());
  std::filesystem::remove(path);
}

BOOST_AUTO_TEST_SUITE_END()
