// The courses example (examples/courses): its decision models' rules on a
// Varve::testkit temp_store, through the embedded path (run_decision,
// prepare_decision): no actors. Given events are appended with their
// tags as the models decide them.
#define BOOST_TEST_MODULE courses
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <string>
#include <varve/testkit/temp_store.hpp>
#include <vector>

#include "../../examples/courses/model.hpp"
#include "../storage/temp_dir.hpp"  // how Boost.Test prints errc

using namespace courses;
using varve::errc;

namespace {

/// A temp_store and the models run on it, one command at a time.
struct school {
  varve::testkit::temp_store ts;

  explicit school(varve::testkit::temp_store_options o = {}) : ts(o) {}

  template <class D>
  varve::result<varve::decision_reply> run(typename D::command c) {
    return varve::run_decision<D>(*ts.store(), c);
  }
  /// Runs `c`, which must succeed.
  template <class D>
  varve::decision_reply given(typename D::command c) {
    auto r = run<D>(std::move(c));
    BOOST_REQUIRE_MESSAGE(r, (r ? "" : r.err().to_string()));
    return *r;
  }
  /// The refusal of `c` (fails the test when it is accepted).
  template <class D>
  std::string refusal(typename D::command c) {
    auto r = run<D>(std::move(c));
    BOOST_REQUIRE_MESSAGE(!r, "accepted");
    BOOST_TEST(r.err().code() == errc::rejected, r.err().to_string());
    return r.err().message();
  }
  varve::global_position head() const { return ts.store()->read()->head(); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_course_is_defined_once_with_at_least_one_seat) {
  school s;
  BOOST_TEST(s.refusal<course_definition>(define_course{"c1", 0}) ==
             "a course takes at least one student");
  s.given<course_definition>(define_course{"c1", 2});
  BOOST_TEST(s.refusal<course_definition>(define_course{"c1", 5}) == "course c1 exists already");
  BOOST_TEST(s.refusal<course_definition>(change_capacity{"c2", 5}) == "no course c2");
  BOOST_TEST(s.head() == 1u);
}

BOOST_AUTO_TEST_CASE(a_subscription_is_stored_in_the_students_stream_tagged_with_both) {
  school s;
  s.given<course_definition>(define_course{"c1", 2});
  auto r = s.given<subscription>(subscribe{"c1", "s1"});
  BOOST_TEST(r.read_at == 1u);
  BOOST_TEST(r.position == 2u);
  auto e = s.ts.store()->read_log(2);
  BOOST_REQUIRE(e);
  BOOST_REQUIRE_EQUAL(e->size(), 1u);
  BOOST_TEST((*e)[0].stream == "student-s1");
  BOOST_TEST((*e)[0].type == "student_subscribed");
  BOOST_TEST((*e)[0].tags == (std::vector<std::string>{"course:c1", "student:s1"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_course_takes_students_up_to_its_capacity_and_each_once) {
  school s;
  BOOST_TEST(s.refusal<subscription>(subscribe{"c1", "s1"}) == "no course c1");
  s.given<course_definition>(define_course{"c1", 2});
  s.given<subscription>(subscribe{"c1", "s1"});
  BOOST_TEST(s.refusal<subscription>(subscribe{"c1", "s1"}) == "s1 takes c1 already");
  s.given<subscription>(subscribe{"c1", "s2"});
  BOOST_TEST(s.refusal<subscription>(subscribe{"c1", "s3"}) == "course c1 is full");
  // More seats: one more student.
  s.given<course_definition>(change_capacity{"c1", 3});
  s.given<subscription>(subscribe{"c1", "s3"});
  BOOST_TEST(s.refusal<subscription>(subscribe{"c1", "s4"}) == "course c1 is full");
}

BOOST_AUTO_TEST_CASE(a_capacity_never_goes_below_the_students_a_course_has) {
  school s;
  s.given<course_definition>(define_course{"c1", 3});
  s.given<subscription>(subscribe{"c1", "s1"});
  s.given<subscription>(subscribe{"c1", "s2"});
  BOOST_TEST(s.refusal<course_definition>(change_capacity{"c1", 1}) == "course c1 has 2 students");
  s.given<course_definition>(change_capacity{"c1", 2});
}

BOOST_AUTO_TEST_CASE(a_student_takes_at_most_the_limit_of_courses) {
  school s;
  for (int c = 0; c <= max_courses; ++c)
    s.given<course_definition>(define_course{"c" + std::to_string(c), 10});
  for (int c = 0; c < max_courses; ++c)
    s.given<subscription>(subscribe{"c" + std::to_string(c), "s1"});
  BOOST_TEST(s.refusal<subscription>(subscribe{"c" + std::to_string(max_courses), "s1"}) ==
             "s1 takes " + std::to_string(max_courses) + " courses already");
  // Another student is not held back by s1's subscriptions.
  s.given<subscription>(subscribe{"c" + std::to_string(max_courses), "s2"});
}

BOOST_AUTO_TEST_CASE(a_subscription_reads_only_its_course_and_its_students_subscriptions) {
  school s;
  s.given<course_definition>(define_course{"c1", 1});
  s.given<course_definition>(define_course{"c2", 1});
  s.given<subscription>(subscribe{"c2", "s9"});  // c2 is full: no matter for c1
  auto folded = varve::fold_boundary<subscription>(*s.ts.store(), subscribe{"c1", "s1"});
  BOOST_REQUIRE(folded);
  BOOST_TEST(folded->events == 1u);  // c1's definition only
  BOOST_TEST(folded->state.capacity == 1);
  BOOST_TEST(folded->state.course_students == 0);
  s.given<subscription>(subscribe{"c1", "s1"});
}

BOOST_AUTO_TEST_CASE(a_user_name_is_claimed_once_without_a_stream_of_its_own) {
  school s;
  s.given<username_claim>(claim_username{"ada", "u1"});
  BOOST_TEST(s.refusal<username_claim>(claim_username{"ada", "u2"}) == "the name ada is taken");
  s.given<username_claim>(claim_username{"bob", "u2"});
  auto log = s.ts.store()->read_log();
  BOOST_REQUIRE(log);
  BOOST_TEST((*log)[0].stream == "user-u1");
  BOOST_TEST((*log)[1].stream == "user-u2");
}

BOOST_AUTO_TEST_CASE(of_two_subscriptions_decided_on_one_read_for_the_last_seat_one_commits) {
  school s;
  s.given<course_definition>(define_course{"c1", 1});
  // Decided on the same read, written in one batch: the second's condition
  // sees the first.
  auto a = varve::prepare_decision<subscription>(*s.ts.store(), subscribe{"c1", "s1"});
  auto b = varve::prepare_decision<subscription>(*s.ts.store(), subscribe{"c1", "s2"});
  BOOST_REQUIRE(a && b);
  std::vector<varve::write_request> batch{a->request, b->request};
  auto out = s.ts.store()->write(batch);
  BOOST_REQUIRE(out);
  BOOST_TEST((*out)[0].ok());
  BOOST_REQUIRE(!(*out)[1].ok());
  BOOST_TEST((*out)[1].err().code() == errc::wrong_expected_version);
  // The embedded path reads again and refuses.
  BOOST_TEST(s.refusal<subscription>(subscribe{"c1", "s2"}) == "course c1 is full");
  BOOST_TEST(s.head() == 2u);
}

BOOST_AUTO_TEST_CASE(the_rules_hold_in_an_encrypted_store_and_after_a_reopen) {
  school s({.encrypted = true});
  s.given<course_definition>(define_course{"c1", 1});
  s.given<subscription>(subscribe{"c1", "s1"});
  s.given<username_claim>(claim_username{"ada", "u1"});
  s.ts.reopen();
  BOOST_TEST(s.refusal<subscription>(subscribe{"c1", "s2"}) == "course c1 is full");
  BOOST_TEST(s.refusal<username_claim>(claim_username{"ada", "u2"}) == "the name ada is taken");
}

BOOST_AUTO_TEST_CASE(a_name_over_the_tag_limit_is_invalid_and_writes_nothing) {
  school s;
  auto r = s.run<username_claim>(claim_username{std::string(300, 'n'), "u1"});
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.err().code() == errc::invalid_argument, r.err().to_string());
  BOOST_TEST(s.head() == 0u);
}
