// GDPR: customer profiles with personal data in an encrypted store, and the
// right to be forgotten by crypto-shredding.
//
// The store is opened with a master key: --varve.key-file, else
// "<data-dir>.key", written (32 random bytes, mode 0600) on the first run.
// Customers are aggregates behind a registry (register, change_email,
// change_address); an exactly-once projection keeps a directory (customer id
// -> "name <email>"). Views are not encrypted, so the directory view holds
// the positions of the events with the name and the email, and is resolved
// through the encrypted log: personal data is only ever in the log.
//
// Forgetting a customer takes two steps, as a real application would do it:
//   1. a `customer_forgotten` event (the customer id, nothing personal) is
//      appended to the stream "gdpr-requests"; the directory projection
//      erases the customer's row when it sees it (rows already written stay
//      until the application removes them);
//   2. the customer's stream is shredded through the storage actor: its data
//      key is destroyed, and its events keep their envelopes only.
// Then the others go on changing, and the example checks that the directory
// catches up, that the forgotten customer's events read back shredded and
// refuse new commands (errc::shredded), that the row is gone, and that
// data.mdb holds neither the name nor the email addresses in clear.
//
//   varve_gdpr [--gdpr.customers=N] [--gdpr.changes=N] [--varve.data-dir=DIR]
//              [--varve.key-file=FILE] [--varve.sync=...]   (see config/varve.ini)
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <varve/config/varve_config.hpp>
#include <varve/runtime.hpp>

#include "customer.hpp"

namespace {

using namespace varve;
using gdpr::customer;
namespace fs = std::filesystem;

constexpr std::string_view requests_stream = "gdpr-requests";
constexpr std::string_view forgotten_type = "customer_forgotten";

struct gdpr_config : varve_config {
  std::size_t customers = 20;
  std::size_t changes = 3;
  gdpr_config() {
    opt_group{custom_options_, "gdpr"}
        .add(customers, "customers", "customers to register (one of them is forgotten)")
        .add(changes, "changes", "email changes per remaining customer after the forgetting");
  }
};

/// The key file to use: --varve.key-file, else "<data-dir>.key", created
/// with 32 random bytes (mode 0600) when neither it nor the store exists.
/// Sets cfg.key_file; returns an error text, empty when all is well.
std::string prepare_key(gdpr_config& cfg, bool& created) {
  created = false;
  if (!cfg.key_file.empty()) return {};
  const fs::path key = cfg.data_dir + ".key";
  cfg.key_file = key.string();
  std::error_code ec;
  if (fs::exists(key, ec)) return {};
  if (fs::exists(fs::path(cfg.data_dir) / "data.mdb", ec))
    return "the store " + cfg.data_dir + " exists but its key file " + key.string() +
           " does not; give it with --varve.key-file";
  if (key.has_parent_path()) fs::create_directories(key.parent_path(), ec);
  std::array<unsigned char, 32> bytes{};
  if (::getrandom(bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()))
    return "no random bytes for a key";
  const int fd = ::open(key.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return "cannot create the key file " + key.string();
  const bool written =
      ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  bytes.fill(0);
  if (::close(fd) != 0 || !written) return "cannot write the key file " + key.string();
  created = true;
  return {};
}

/// A customer's personal data. Surnames are built from a number unique to
/// the customer in this store, so no two customers of a store share one.
struct person {
  std::string id, name, address;
  std::vector<std::string> emails;  // every address it had, the current one last
  std::string entry() const { return name + " <" + emails.back() + ">"; }
};

person make_person(const std::string& run, std::size_t n, std::uint64_t unique) {
  static constexpr std::array<const char*, 8> firsts{"Ada",     "Alan",   "Grace",   "Edsger",
                                                     "Barbara", "Donald", "Frances", "Niklaus"};
  static constexpr std::array<const char*, 8> syllables{"ka", "lo", "mi", "ne",
                                                        "ru", "so", "ta", "vi"};
  // Four syllables from the low 12 bits, shuffled (2731 is odd: a bijection
  // modulo 4096), then one per 3 higher bits.
  std::uint64_t digits = ((unique & 0xFFF) * 2731 + 1234) & 0xFFF;
  std::string surname;
  for (int i = 0; i < 4; ++i, digits /= 8)
    surname += syllables[digits % 8];
  for (std::uint64_t high = unique >> 12; high != 0; high /= 8)
    surname += syllables[high % 8];
  surname[0] = static_cast<char>(surname[0] - 'a' + 'A');
  person p;
  p.id = run + "-" + std::to_string(n);
  const std::string first = firsts[n % firsts.size()];
  p.name = first + " " + surname;
  std::string local = first + "." + surname;
  for (auto& c : local)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  p.emails.push_back(local + "@example.org");
  p.address = std::to_string(n + 1) + " " + surname + " Street, Springfield";
  return p;
}

/// The exactly-once directory projection: view "directory", customer id ->
/// "<position> <position>", the events that hold the customer's name and
/// current email. Views are not encrypted (and LMDB keeps the old bytes of
/// a changed page until it reuses the page), so the view keeps references
/// into the encrypted log, never the personal data itself; resolve() reads
/// them. Events of a shredded stream (read after the shredding) carry no
/// data and are passed over; a `customer_forgotten` request erases the row.
projection_spec directory_projection() {
  projection_spec spec;
  spec.name = "directory";
  spec.filter.categories = {"customer", std::string(requests_stream)};
  spec.handle = [](const delivered_event& d, view_batch& view) -> result<void> {
    if (d.stream == requests_stream) {  // payload: the customer id as a JSON string
      auto id = d.event.payload;
      if (id.size() >= 2 && id.front() == '"' && id.back() == '"') id = id.substr(1, id.size() - 2);
      if (d.event.type == forgotten_type) view.erase(id);
      return {};
    }
    if (d.event.shredded) return {};  // forgotten: nothing to read, nothing to show
    const std::string id(d.stream.substr(customer::category.size() + 1));
    const std::string here = std::to_string(d.event.position);
    if (d.event.type == gdpr::registered::type_name) {
      view.put(id, here + " " + here);
    } else if (d.event.type == gdpr::email_changed::type_name) {
      auto row = view.get(id);
      if (!row) return row.err();
      // No row: the customer was forgotten meanwhile; do not bring it back.
      if (*row) view.put(id, (*row)->substr(0, (*row)->find(' ')) + " " + here);
    }
    return {};
  };
  return spec;
}

/// A directory row as "name <email>", read from the events it points to.
/// Errors: shredded (the events were forgotten), corruption.
result<std::string> resolve(const read_transaction& txn, std::string_view row) {
  const auto space = row.find(' ');
  if (space == std::string_view::npos) return error{errc::corruption, "a bad directory row"};
  auto read = [&](std::string_view text) -> result<gdpr::customer_event> {
    global_position position = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), position);
    if (ec != std::errc{} || end != text.data() + text.size())
      return error{errc::corruption, "a bad directory row"};
    auto e = txn.event_at(position);
    if (!e) return std::move(e).err();
    if (e->shredded) return error{errc::shredded, "its events were shredded"};
    auto decoded = decode_event<customer>(*e);
    if (!decoded) return error{errc::corruption, "a customer event does not decode"};
    return std::move(*decoded);
  };
  auto named = read(row.substr(0, space));
  if (!named) return std::move(named).err();
  auto mailed = read(row.substr(space + 1));
  if (!mailed) return std::move(mailed).err();
  auto* r = std::get_if<gdpr::registered>(&*named);
  if (!r) return error{errc::corruption, "a directory row that names no registration"};
  std::string email = r->email;
  if (auto* c = std::get_if<gdpr::email_changed>(&*mailed)) email = c->email;
  return r->name + " <" + email + ">";
}

std::optional<std::string> directory_row(const event_store& store, const std::string& id) {
  auto txn = store.read();
  if (!txn) return std::nullopt;
  auto v = txn->view_get("directory", id);
  if (!v || !*v) return std::nullopt;
  return std::string(**v);
}

/// A row resolved in a fresh read transaction, or the error in words.
std::string resolved(const event_store& store, std::string_view row) {
  auto txn = store.read();
  if (!txn) return txn.err().to_string();
  auto r = resolve(*txn, row);
  return r ? *r : r.err().to_string();
}

/// Counts the occurrences of `needle` in `haystack`.
std::size_t occurrences(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

int run(gdpr_config& cfg) {
  bool key_created = false;
  if (auto problem = prepare_key(cfg, key_created); !problem.empty()) {
    std::fprintf(stderr, "gdpr: %s\n", problem.c_str());
    return 1;
  }
  auto rt = runtime::open(cfg, {directory_projection()});
  if (!rt) {
    std::fprintf(stderr, "gdpr: %s\n", rt.err().to_string().c_str());
    return 1;
  }
  const event_store& store = *rt->store();
  if (!store.encrypted()) {
    std::fprintf(stderr,
                 "gdpr: the store %s was created without a key and is not encrypted; "
                 "use another --varve.data-dir\n",
                 cfg.data_dir.c_str());
    return 1;
  }
  // Each run registers new customers: "customer-r<head at start>-<n>".
  const std::uint64_t head0 = store.read()->head();
  const std::string run_id = "r" + std::to_string(head0);
  std::vector<person> people;
  for (std::size_t n = 0; n < cfg.customers; ++n)
    people.push_back(make_person(run_id, n, head0 + n));
  person& victim = people[1];
  const std::string victim_stream = stream_of<customer>(victim.id);
  // Waits until the directory has everything, and says where it is.
  auto caught_up = [&] {
    (void)rt->wait_for("directory", store.read()->head());
    auto s = rt->status("directory");
    return s ? *s : projection_status{};
  };

  std::printf("gdpr: store %s (sync=%s, encrypted), key %s%s, run %s: %zu customers\n",
              cfg.data_dir.c_str(), cfg.sync.c_str(), cfg.key_file.c_str(),
              key_created ? " (new, mode 0600)" : "", run_id.c_str(), cfg.customers);

  // Everyone registers, then changes email and address once.
  std::size_t accepted = 0, failed = 0;
  auto command = [&](const person& p, const char* what, customer::command cmd) {
    auto r = rt->execute<customer>(p.id, std::move(cmd));
    if (r) return void(++accepted);
    ++failed;
    std::fprintf(stderr, "gdpr: %s %s: %s\n", what, p.id.c_str(), r.err().to_string().c_str());
  };
  for (auto& p : people)
    command(p, "register", gdpr::register_customer{p.name, p.emails[0], p.address});
  for (auto& p : people) {
    p.emails.push_back("contact." + p.emails[0]);
    command(p, "change_email", gdpr::change_email{p.emails.back()});
    p.address = "Flat 1, " + p.address;
    command(p, "change_address", gdpr::change_address{p.address});
  }
  auto status = caught_up();
  const std::string old_row = directory_row(store, victim.id).value_or("");
  std::printf("customers: %zu commands accepted, %zu failed; directory at %llu of %llu, %s\n",
              accepted, failed, static_cast<unsigned long long>(status.position),
              static_cast<unsigned long long>(status.head), status.state.c_str());
  std::printf("directory: %s -> row \"%s\" -> %s\n", victim.id.c_str(), old_row.c_str(),
              resolved(store, old_row).c_str());

  // Forget the victim: the request first (the projection erases the row),
  // then the shredding of the stream.
  bool forget_ok = true;
  append_request request{std::string(requests_stream), expected_version::any(), {}};
  request.events.push_back(
      new_event{std::string(forgotten_type), "\"" + victim.id + "\"", {}, {}, {}});
  if (auto r = rt->append(std::move(request))) {
    std::printf("forget:   %s appended to %s at position %llu (customer %s)\n",
                forgotten_type.data(), requests_stream.data(),
                static_cast<unsigned long long>(r->last_position), victim.id.c_str());
  } else {
    forget_ok = false;
    std::fprintf(stderr, "gdpr: forget: %s\n", r.err().to_string().c_str());
  }
  if (auto version = rt->shred(victim_stream)) {
    std::printf("forget:   %s shredded (%llu events): its data key is destroyed\n",
                victim_stream.c_str(), static_cast<unsigned long long>(*version));
  } else {
    forget_ok = false;
    std::fprintf(stderr, "gdpr: shred: %s\n", version.err().to_string().c_str());
  }

  // Life goes on for everyone else.
  const std::size_t accepted_before = accepted;
  for (std::size_t round = 0; round < cfg.changes; ++round)
    for (auto& p : people) {
      if (&p == &victim) continue;
      p.emails.push_back(std::to_string(round + 2) + "." + p.emails[0]);
      command(p, "change_email", gdpr::change_email{p.emails.back()});
    }
  status = caught_up();
  const bool projection_ok = status.state == "live" && status.position >= status.head;
  std::printf("after:    %zu more commands accepted; directory at %llu of %llu, %s%s%s\n",
              accepted - accepted_before, static_cast<unsigned long long>(status.position),
              static_cast<unsigned long long>(status.head), status.state.c_str(),
              status.error.empty() ? "" : ", error: ", status.error.c_str());

  // (a) Through the API: envelopes only, and no more commands.
  std::size_t events = 0, shredded = 0;
  std::string types;
  if (auto read = store.read_stream(victim_stream)) {
    for (const auto& e : *read) {
      ++events;
      if (e.shredded && e.payload.empty() && e.metadata.empty()) ++shredded;
      types += (types.empty() ? "" : ", ") + e.type;
    }
  }
  const bool read_ok = events > 0 && shredded == events;
  std::printf("check:    read %s: %zu events, %zu shredded, without data (%s): %s\n",
              victim_stream.c_str(), events, shredded, types.c_str(), read_ok ? "ok" : "FAILED");
  auto refused = rt->execute<customer>(victim.id, gdpr::change_email{"back@example.org"});
  const bool refuse_ok = !refused && refused.err().code() == errc::shredded;
  std::printf("check:    change_email for %s: %s: %s\n", victim.id.c_str(),
              refused ? "accepted" : refused.err().to_string().c_str(),
              refuse_ok ? "ok" : "FAILED");

  // The directory: the victim's row is gone (and a copy of it resolves to
  // nothing), everyone else's is current.
  std::size_t rows_ok = 0;
  if (auto txn = store.read())
    for (const auto& p : people) {
      auto row = txn->view_get("directory", p.id);
      if (&p == &victim || !row || !*row) continue;
      auto entry = resolve(*txn, **row);
      if (entry && *entry == p.entry()) ++rows_ok;
    }
  const bool row_gone = !directory_row(store, victim.id);
  const std::string old_now = resolved(store, old_row);
  const bool old_dead = old_now.starts_with("shredded");
  const bool directory_ok = row_gone && old_dead && rows_ok + 1 == people.size() && projection_ok;
  std::printf(
      "check:    directory: row %s %s, its old row \"%s\" resolves to \"%s\"; %zu of %zu other "
      "rows current: %s\n",
      victim.id.c_str(), row_gone ? "erased" : "STILL THERE", old_row.c_str(), old_now.c_str(),
      rows_ok, people.size() - 1, directory_ok ? "ok" : "FAILED");

  rt->shutdown();  // everything committed

  // (b) At the byte level: neither the victim's name nor any email address
  // it had is in the file in clear (nor anyone else's: event data is
  // encrypted and the directory holds positions). The control: the stream
  // name, which is not encrypted, is found, so the search does see text.
  std::ifstream in(fs::path(cfg.data_dir) / "data.mdb", std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), {}};
  std::size_t victim_found = occurrences(bytes, victim.name), others_found = 0;
  for (const auto& email : victim.emails)
    victim_found += occurrences(bytes, email);
  for (const auto& p : people) {
    if (&p == &victim) continue;
    others_found += occurrences(bytes, p.name);
    for (const auto& email : p.emails)
      others_found += occurrences(bytes, email);
  }
  const std::size_t control = occurrences(bytes, victim_stream);
  const bool bytes_ok = !bytes.empty() && victim_found == 0 && others_found == 0 && control > 0;
  std::printf(
      "check:    data.mdb (%zu bytes): \"%s\" and its %zu email addresses found %zu times "
      "(the others' data %zu times); control: stream name %s in clear: %s: %s\n",
      bytes.size(), victim.name.c_str(), victim.emails.size(), victim_found, others_found,
      victim_stream.c_str(), control > 0 ? "yes" : "NO", bytes_ok ? "ok" : "FAILED");

  const bool all_ok = failed == 0 && forget_ok && read_ok && refuse_ok && directory_ok && bytes_ok;
  std::printf("%s\n", all_ok ? "gdpr: customer forgotten: unreadable through the API, "
                               "not in the file, directory up to date"
                             : "gdpr: CHECKS FAILED");
  std::printf(
      "look inside:\n"
      "  build/tools/varvectl --db %s --key-file %s read %s\n"
      "  build/tools/varvectl --db %s --key-file %s read gdpr-requests\n",
      cfg.data_dir.c_str(), cfg.key_file.c_str(), victim_stream.c_str(), cfg.data_dir.c_str(),
      cfg.key_file.c_str());
  return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  gdpr_config cfg;
  // Not the demo's store: a store of its own unless told otherwise.
  if (int code =
          configure(cfg, argc, argv, {.data_dir = "var/gdpr", .config_file = "config/varve.ini"});
      code != 0 || cfg.cli_helptext_printed)
    return code;
  std::fprintf(stderr, "%s\n", cfg.scheduler_summary().c_str());
  if (cfg.customers < 2) {
    std::fprintf(stderr, "varve_gdpr: bad configuration: gdpr.customers must be at least 2\n");
    return 2;
  }
  return run(cfg);
}
