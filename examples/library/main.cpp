// The library: books lent to members, on varve::runtime. Members borrow and
// bring back books from threads of their own; after each loan a member reads
// their loans back (read-your-writes with wait_for). At the end the "loans"
// view must equal a fold of the log.
//
//   varve_library [--library.books=N] [--library.members=N] [--library.rounds=N]
//                 [--varve.data-dir=DIR] [--varve.sync=...]   (see config/varve.ini)
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <varve/config/varve_config.hpp>
#include <varve/runtime.hpp>

#include "book.hpp"
#include "loans.hpp"

using namespace library;

struct library_config : varve::varve_config {
  std::size_t books = 50, members = 16, rounds = 200;
  library_config() {
    opt_group{custom_options_, "library"}
        .add(books, "books", "books in the catalogue")
        .add(members, "members", "members borrowing at once")
        .add(rounds, "rounds", "loans each member tries");
  }
};

/// Who has which book, folded from the log.
std::map<std::string, std::set<std::string>> fold_loans(const varve::event_store& store) {
  std::map<std::string, std::set<std::string>> loans;
  auto txn = store.read();
  (void)txn->scan_log(1, varve::direction::forward, SIZE_MAX, [&](const varve::event_view& v) {
    auto stream = txn->stream_name(v.stream_id);
    auto e = varve::decode_event<book>(v);
    if (!stream || !stream->starts_with("book-") || !e) return true;
    if (auto* l = std::get_if<book_lent>(&*e)) loans[l->member].insert(std::string(*stream));
    if (auto* r = std::get_if<book_returned>(&*e)) loans[r->member].erase(std::string(*stream));
    return true;
  });
  return loans;
}

int main(int argc, char** argv) {
  library_config cfg;
  if (int code = varve::configure(cfg, argc, argv, {.data_dir = "var/library"});
      code != 0 || cfg.cli_helptext_printed)
    return code;
  std::fprintf(stderr, "%s\n", cfg.scheduler_summary().c_str());
  auto rt = varve::runtime::open(cfg, {loans_view(), notifier(cfg.data_dir + "-notices.log")});
  if (!rt) return std::fprintf(stderr, "library: %s\n", rt.err().to_string().c_str()), 1;

  for (std::size_t b = 0; b < cfg.books; ++b)  // refused on a second run: already there
    (void)rt->execute<book>("isbn-" + std::to_string(b),
                            add_book{"Volume " + std::to_string(b), 1 + static_cast<int>(b % 3)});

  std::atomic<std::size_t> lent{0}, refused{0}, returned{0}, stale{0};
  {
    std::vector<std::jthread> members;
    for (std::size_t m = 0; m < cfg.members; ++m)
      members.emplace_back([&, m] {
        const std::string member = "member-" + std::to_string(m);
        std::mt19937 rng(static_cast<unsigned>(m));
        for (std::size_t round = 0; round < cfg.rounds; ++round) {
          const std::string id = "isbn-" + std::to_string(rng() % cfg.books);
          if (rng() % 2 == 0) {
            if (rt->execute<book>(id, give_back{member})) ++returned;
            continue;
          }
          auto loan = rt->execute<book>(id, lend{member});
          if (!loan) {
            ++refused;  // no copy left, or this member has it already
            continue;
          }
          ++lent;
          // Read your writes: the view shows the loan once wait_for returns.
          auto mine = rt->wait_for("loans", loan->position).ok()
                          ? rt->view<std::vector<std::string>>("loans", member)
                          : varve::result<std::optional<std::vector<std::string>>>(std::nullopt);
          if (!mine || !*mine || std::ranges::count(**mine, "book-" + id) == 0) ++stale;
        }
      });
  }

  const auto head = rt->store()->read()->head();
  for (const char* name : {"loans", "notifier"})
    if (auto ok = rt->wait_for(name, head); !ok)
      std::fprintf(stderr, "library: %s\n", ok.err().to_string().c_str());
  std::size_t wrong = 0, members = 0;
  for (const auto& [member, books] : fold_loans(*rt->store())) {
    auto seen = rt->view<std::vector<std::string>>("loans", member);
    const std::set<std::string> held = seen && *seen
                                           ? std::set<std::string>((*seen)->begin(), (*seen)->end())
                                           : std::set<std::string>{};
    ++members;
    if (held != books) ++wrong;
  }
  std::printf("library: %zu loans, %zu refused, %zu returns; %zu stale reads after wait_for\n",
              lent.load(), refused.load(), returned.load(), stale.load());
  std::printf("check:   loans view %s the log for %zu members\n",
              wrong == 0 ? "equals a fold of" : "DIFFERS from", members);
  return wrong == 0 && stale == 0 ? 0 : 1;
}
