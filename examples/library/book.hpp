// A library's books: each book (stream "book-<isbn>") has copies that
// members borrow and bring back. A member borrows at most one copy of a
// book, and only while a copy is on the shelf.
#pragma once

#include <set>
#include <string>
#include <variant>
#include <varve/actors/aggregate.hpp>

namespace library {

// Events: stored as JSON under these names.
struct book_added {
  static constexpr std::string_view type_name = "book_added";
  std::string title;
  int copies = 0;
};
VARVE_JSON(book_added, title, copies)
struct book_lent {
  static constexpr std::string_view type_name = "book_lent";
  std::string member;
};
VARVE_JSON(book_lent, member)
struct book_returned {
  static constexpr std::string_view type_name = "book_returned";
  std::string member;
};
VARVE_JSON(book_returned, member)

// Commands: plain structs.
struct add_book {
  std::string title;
  int copies = 1;
};
struct lend {
  std::string member;
};
struct give_back {
  std::string member;
};

struct book {
  static constexpr std::string_view category = "book";
  struct state {
    std::string title;
    int copies = 0;
    std::set<std::string> borrowers;
  };
  using event = std::variant<book_added, book_lent, book_returned>;
  using command = std::variant<add_book, lend, give_back>;

  static void apply(state& s, const event& e) {
    if (auto* a = std::get_if<book_added>(&e)) s = {a->title, a->copies, {}};
    if (auto* l = std::get_if<book_lent>(&e)) s.borrowers.insert(l->member);
    if (auto* r = std::get_if<book_returned>(&e)) s.borrowers.erase(r->member);
  }

  static varve::decision<event> decide(const state& s, const command& c) {
    auto refuse = [](std::string why) {
      return varve::error{varve::errc::rejected, std::move(why)};
    };
    if (auto* a = std::get_if<add_book>(&c)) {
      if (!s.title.empty()) return refuse("the book is in the catalogue already");
      if (a->title.empty() || a->copies < 1) return refuse("a book needs a title and a copy");
      return std::vector<event>{book_added{a->title, a->copies}};
    }
    if (s.title.empty()) return refuse("no such book");
    if (auto* l = std::get_if<lend>(&c)) {
      if (s.borrowers.contains(l->member)) return refuse(l->member + " has this book already");
      if (static_cast<int>(s.borrowers.size()) >= s.copies) return refuse("no copy is left");
      return std::vector<event>{book_lent{l->member}};
    }
    const auto& r = std::get<give_back>(c);
    if (!s.borrowers.contains(r.member)) return refuse(r.member + " does not have this book");
    return std::vector<event>{book_returned{r.member}};
  }
};

}  // namespace library
