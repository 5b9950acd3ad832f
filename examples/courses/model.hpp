// Course subscriptions, the example of the DCB literature (dcb.events):
// a course takes at most `capacity` students, a student takes at most
// `max_courses` courses, and a user name is claimed once. No stream holds
// what one rule needs: a subscription is stored in the student's stream
// ("student-<id>") and tagged with the course and the student, and each
// decision reads the events its rule depends on by tag.
#pragma once

#include <string>
#include <variant>
#include <varve/actors/decision.hpp>
#include <vector>

namespace courses {

/// The most courses one student takes.
inline constexpr int max_courses = 3;

// Events, stored as JSON under these names, tagged "course:<id>",
// "student:<id>" and "username:<name>".
struct course_defined {
  static constexpr std::string_view type_name = "course_defined";
  std::string course;
  int capacity = 0;
};
VARVE_JSON(course_defined, course, capacity)
struct capacity_changed {
  static constexpr std::string_view type_name = "course_capacity_changed";
  std::string course;
  int capacity = 0;
};
VARVE_JSON(capacity_changed, course, capacity)
struct student_subscribed {
  static constexpr std::string_view type_name = "student_subscribed";
  std::string course;
  std::string student;
};
VARVE_JSON(student_subscribed, course, student)
struct username_claimed {
  static constexpr std::string_view type_name = "username_claimed";
  std::string username;
  std::string user;
};
VARVE_JSON(username_claimed, username, user)

inline std::string course_tag(const std::string& id) {
  return "course:" + id;
}
inline std::string student_tag(const std::string& id) {
  return "student:" + id;
}

inline varve::error refuse(std::string why) {
  return {varve::errc::rejected, std::move(why)};
}

// Commands: plain structs.
struct define_course {
  std::string course;
  int capacity = 0;
};
struct change_capacity {
  std::string course;
  int capacity = 0;
};
struct subscribe {
  std::string course;
  std::string student;
};
struct claim_username {
  std::string username;
  std::string user;
};

/// Defining a course and changing its capacity: the course's events. A
/// capacity never goes below the students the course has.
struct course_definition {
  using event = std::variant<course_defined, capacity_changed, student_subscribed>;
  using command = std::variant<define_course, change_capacity>;
  struct state {
    bool defined = false;
    int capacity = 0;
    int students = 0;
  };

  static const std::string& course_of(const command& c) {
    return std::visit([](const auto& x) -> const std::string& { return x.course; }, c);
  }
  static varve::query boundary(const command& c) {
    return {{{{"course_defined", "course_capacity_changed", "student_subscribed"},
              {course_tag(course_of(c))},
              {}}}};
  }
  static void apply(state& s, const event& e) {
    if (auto* d = std::get_if<course_defined>(&e)) s.defined = true, s.capacity = d->capacity;
    if (auto* c = std::get_if<capacity_changed>(&e)) s.capacity = c->capacity;
    if (std::holds_alternative<student_subscribed>(e)) ++s.students;
  }
  static varve::dcb_decision<event> decide(const state& s, const command& c) {
    const std::string& course = course_of(c);
    const int capacity = std::visit([](const auto& x) { return x.capacity; }, c);
    if (capacity < 1) return refuse("a course takes at least one student");
    if (std::holds_alternative<define_course>(c)) {
      if (s.defined) return refuse("course " + course + " exists already");
      return std::vector<varve::tagged_event<event>>{
          {"course-" + course, course_defined{course, capacity}, {course_tag(course)}}};
    }
    if (!s.defined) return refuse("no course " + course);
    if (capacity < s.students)
      return refuse("course " + course + " has " + std::to_string(s.students) + " students");
    return std::vector<varve::tagged_event<event>>{
        {"course-" + course, capacity_changed{course, capacity}, {course_tag(course)}}};
  }
};

/// A student subscribes to a course: the course's events and the student's
/// subscriptions, in one boundary.
struct subscription {
  using event = std::variant<course_defined, capacity_changed, student_subscribed>;
  using command = subscribe;
  struct state {
    std::string course, student;
    bool defined = false;
    int capacity = 0;
    int course_students = 0;  // subscriptions to the course
    int student_courses = 0;  // the student's subscriptions
    bool already = false;
  };

  static varve::query boundary(const command& c) {
    return {{{{"course_defined", "course_capacity_changed", "student_subscribed"},
              {course_tag(c.course)},
              {}},
             {{"student_subscribed"}, {student_tag(c.student)}, {}}}};
  }
  static state initial(const command& c) { return {c.course, c.student}; }
  static void apply(state& s, const event& e) {
    if (auto* d = std::get_if<course_defined>(&e)) s.defined = true, s.capacity = d->capacity;
    if (auto* c = std::get_if<capacity_changed>(&e)) s.capacity = c->capacity;
    if (auto* sub = std::get_if<student_subscribed>(&e)) {
      if (sub->course == s.course) ++s.course_students;
      if (sub->student == s.student) ++s.student_courses;
      if (sub->course == s.course && sub->student == s.student) s.already = true;
    }
  }
  static varve::dcb_decision<event> decide(const state& s, const command& c) {
    if (!s.defined) return refuse("no course " + c.course);
    if (s.already) return refuse(c.student + " takes " + c.course + " already");
    if (s.course_students >= s.capacity) return refuse("course " + c.course + " is full");
    if (s.student_courses >= max_courses)
      return refuse(c.student + " takes " + std::to_string(max_courses) + " courses already");
    return std::vector<varve::tagged_event<event>>{
        {"student-" + c.student,
         student_subscribed{c.course, c.student},
         {course_tag(c.course), student_tag(c.student)}}};
  }
};

/// A user claims a name: unique without a stream per name.
struct username_claim {
  using event = username_claimed;
  using command = claim_username;
  struct state {
    std::string taken_by;
  };

  static varve::query boundary(const command& c) {
    return varve::query{{{{"username_claimed"}, {"username:" + c.username}, {}}}};
  }
  static void apply(state& s, const event& e) { s.taken_by = e.user; }
  static varve::dcb_decision<event> decide(const state& s, const command& c) {
    if (!s.taken_by.empty()) return refuse("the name " + c.username + " is taken");
    return std::vector<varve::tagged_event<event>>{
        {"user-" + c.user, username_claimed{c.username, c.user}, {"username:" + c.username}}};
  }
};

}  // namespace courses
