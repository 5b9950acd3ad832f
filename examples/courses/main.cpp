// Course subscriptions on varve::runtime with decision models (model.hpp):
// many clients, each a thread, subscribe students to courses, change
// capacities and claim user names at once. At the end the program folds
// the whole log and checks that no course ever had more students than its
// capacity, no student more than max_courses courses, and no name was
// claimed twice; it exits 1 otherwise.
//
//   varve_courses [--courses.courses=N] [--courses.capacity=N]
//                 [--courses.students=N] [--courses.clients=N] [--courses.rounds=N]
//                 [--varve.data-dir=DIR] [--varve.sync=...]   (see config/varve.ini)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <varve/config/varve_config.hpp>
#include <varve/runtime.hpp>

#include "model.hpp"

using namespace courses;

struct courses_config : varve::varve_config {
  std::size_t courses = 40, capacity = 8, students = 400, clients = 64, rounds = 100;
  courses_config() {
    opt_group{custom_options_, "courses"}
        .add(courses, "courses", "courses offered")
        .add(capacity, "capacity", "students per course at first")
        .add(students, "students", "students subscribing")
        .add(clients, "clients", "clients sending commands at once (threads)")
        .add(rounds, "rounds", "commands each client sends");
  }
};

/// Folds the whole log and counts what broke a rule.
struct audit {
  std::size_t subscriptions = 0, claims = 0;
  std::size_t over_capacity = 0, over_limit = 0, twice_subscribed = 0, names_twice = 0;

  explicit audit(const varve::event_store& store) {
    std::map<std::string, int> capacity, students_of;  // by course
    std::map<std::string, int> courses_of;             // by student
    std::set<std::pair<std::string, std::string>> pairs;
    std::set<std::string> names;
    auto txn = store.read();
    (void)txn->scan_log(1, varve::direction::forward, SIZE_MAX, [&](const varve::event_view& v) {
      auto e = varve::json_codec<subscription::event>::decode(v.type, v.payload);
      if (e) {
        if (auto* d = std::get_if<course_defined>(&*e)) capacity[d->course] = d->capacity;
        if (auto* c = std::get_if<capacity_changed>(&*e)) {
          capacity[c->course] = c->capacity;
          if (students_of[c->course] > c->capacity) ++over_capacity;
        }
        if (auto* s = std::get_if<student_subscribed>(&*e)) {
          ++subscriptions;
          if (++students_of[s->course] > capacity[s->course]) ++over_capacity;
          if (++courses_of[s->student] > max_courses) ++over_limit;
          if (!pairs.emplace(s->course, s->student).second) ++twice_subscribed;
        }
      } else if (auto n = varve::json_codec<username_claimed>::decode(v.type, v.payload)) {
        ++claims;
        if (!names.insert(n->username).second) ++names_twice;
      }
      return true;
    });
  }
  bool sound() const { return over_capacity + over_limit + twice_subscribed + names_twice == 0; }
};

int main(int argc, char** argv) {
  courses_config cfg;
  if (int code = varve::configure(cfg, argc, argv, {.data_dir = "var/courses"});
      code != 0 || cfg.cli_helptext_printed)
    return code;
  std::fprintf(stderr, "%s\n", cfg.scheduler_summary().c_str());
  auto rt = varve::runtime::open(cfg);
  if (!rt) return std::fprintf(stderr, "courses: %s\n", rt.err().to_string().c_str()), 1;

  for (std::size_t c = 0; c < cfg.courses; ++c)  // refused on a second run: they exist
    (void)rt->decide<course_definition>(
        define_course{"c" + std::to_string(c), static_cast<int>(cfg.capacity)});

  std::atomic<std::size_t> subscribed{0}, full{0}, refused{0}, claimed{0}, taken{0}, resized{0},
      retries{0}, errors{0};
  const auto started = std::chrono::steady_clock::now();
  {
    std::vector<std::jthread> clients;
    for (std::size_t k = 0; k < cfg.clients; ++k)
      clients.emplace_back([&, k] {
        std::mt19937 rng(static_cast<unsigned>(k) * 7919u + 1u);
        auto pick = [&](std::size_t n) { return std::to_string(rng() % n); };
        for (std::size_t round = 0; round < cfg.rounds; ++round) {
          const auto dice = rng() % 100;
          varve::result<varve::decision_reply> r = varve::decision_reply{};
          if (dice < 80) {
            r = rt->decide<subscription>(
                subscribe{"c" + pick(cfg.courses), "s" + pick(cfg.students)});
            if (r)
              ++subscribed;
            else if (r.err().message().ends_with("is full"))
              ++full;
          } else if (dice < 95) {  // a small pool of names: many clash
            r = rt->decide<username_claim>(claim_username{"name" + pick(50), "u" + pick(1000)});
            if (r)
              ++claimed;
            else if (r.err().code() == varve::errc::rejected)
              ++taken;
          } else {
            r = rt->decide<course_definition>(change_capacity{
                "c" + pick(cfg.courses), 1 + static_cast<int>(rng() % (cfg.capacity + 4))});
            if (r) ++resized;
          }
          if (r)
            retries += r->attempts - 1;
          else if (r.err().code() == varve::errc::rejected)
            ++refused;
          else
            ++errors, std::fprintf(stderr, "courses: %s\n", r.err().to_string().c_str());
        }
      });
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto commands = cfg.clients * cfg.rounds;

  const audit a(*rt->store());
  std::printf("courses: %zu commands from %zu clients in %.2f s, %.0f decisions/s\n", commands,
              cfg.clients, seconds, static_cast<double>(commands) / seconds);
  std::printf(
      "decided: %zu subscriptions (%zu refused: course full), %zu names claimed (%zu "
      "taken), %zu capacity changes; %zu refused in all, %zu retries, %zu errors\n",
      subscribed.load(), full.load(), claimed.load(), taken.load(), resized.load(), refused.load(),
      retries.load(), errors.load());
  if (auto c = rt->commit_stats(); c && c->commits > 0)
    std::printf(
        "commits: %llu events in %llu commits, %.1f events per commit, p50 %llu us, p99 "
        "%llu us\n",
        static_cast<unsigned long long>(c->events), static_cast<unsigned long long>(c->commits),
        static_cast<double>(c->events) / static_cast<double>(c->commits),
        static_cast<unsigned long long>(c->commit_p50_us),
        static_cast<unsigned long long>(c->commit_p99_us));
  std::printf("log:     %zu subscriptions, %zu names claimed\n", a.subscriptions, a.claims);
  std::printf(
      "check:   %s (over capacity %zu, over the limit of %d courses %zu, subscribed "
      "twice %zu, names claimed twice %zu)\n",
      a.sound() ? "no capacity or limit exceeded, no name claimed twice" : "BROKEN",
      a.over_capacity, max_courses, a.over_limit, a.twice_subscribed, a.names_twice);
  return a.sound() && errors == 0 ? 0 : 1;
}
