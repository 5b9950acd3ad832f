// The page check: a data.mdb whose pages were damaged or cut short gives
// faults that name the page, from check_pages on a closed file and from
// event_store::verify on an open store, and never kills the process; a
// sound store checks clean.
//
// The damage is done with ordinary file writes, to LMDB 0.9's layout
// (libraries/liblmdb/mdb.c): a page starts with a 16-byte header pgno:u64
// pad:u16 flags:u16 lower:u16 upper:u16 (pages:u32 on overflow pages),
// followed by the u16 offsets of its nodes; a node is lo:u16 hi:u16 flags:u16
// key_size:u16 key data, and a branch node's child page is
// lo | hi << 16 | flags << 32. Stores are damaged in their compacted copy
// (backup), where every page but the two meta pages is in use.
#define BOOST_TEST_MODULE page_check
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>

#include "page_check.hpp"
#include "temp_dir.hpp"

using namespace varve;
using varve_test::make_event;
using varve_test::temp_dir;
namespace fs = std::filesystem;

namespace {

constexpr std::uint16_t p_branch = 0x01;
constexpr std::uint16_t p_leaf = 0x02;
constexpr std::uint16_t f_bigdata = 0x01;
constexpr std::uint16_t f_subdata = 0x02;
constexpr std::uint64_t streams = 6;
constexpr std::uint64_t versions = 150;  // past two stream-index chunks

template <class T>
T load(const std::string& bytes, std::size_t at) {
  BOOST_REQUIRE_LE(at + sizeof(T), bytes.size());
  T v;
  std::memcpy(&v, bytes.data() + at, sizeof v);
  return v;
}

template <class T>
std::string bytes_of(T v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot read " << path);
  return {std::istreambuf_iterator<char>(in), {}};
}

/// Writes `bytes` at `offset` of `path` with pwrite, as any program could.
void write_at(const fs::path& path, std::uint64_t offset, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  BOOST_REQUIRE_MESSAGE(fd >= 0, "open " << path);
  const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
  ::close(fd);
  BOOST_REQUIRE_EQUAL(n, static_cast<ssize_t>(bytes.size()));
}

std::array<std::uint8_t, 32> test_key() {
  std::array<std::uint8_t, 32> k{};
  for (std::size_t i = 0; i < k.size(); ++i)
    k[i] = static_cast<std::uint8_t>(7 * i + 3);
  return k;
}

options store_options(const fs::path& dir, bool encrypted) {
  options o = varve_test::test_options(dir);
  if (encrypted) o.master_key = test_key();
  return o;
}

/// Six streams written interleaved to 150 events each, every 25th event of
/// each stream 10 000 bytes (overflow pages); cursors, snapshots, two views;
/// then one stream shredded.
void fill(event_store& store) {
  for (std::uint64_t v = 0; v < versions; ++v) {
    std::vector<write_request> batch(1);
    write_request& req = batch.front();
    for (std::uint64_t s = 0; s < streams; ++s) {
      const std::size_t size = v % 25 == 7 ? 10000 : 100;
      req.appends.push_back(append_request{"account-" + std::to_string(s),
                                           expected_version::exact(v),
                                           {make_event("deposited", std::string(size, 'x'))}});
    }
    req.cursors.push_back(cursor_update{"reporter", v + 1, "{}", std::nullopt});
    if (v > 0) req.snapshots.push_back(snapshot_update{"account-1", v, 1, std::string(v, 's')});
    // The key appended, not "k" + std::to_string(v): GCC 12 at -O2 and above
    // takes that for an overlapping copy (a false -Wrestrict).
    req.views.push_back(view_update{"balances", view_update::op::put,
                                    std::string("k").append(std::to_string(v)), "value"});
    req.views.push_back(view_update{"totals", view_update::op::put, "total", std::to_string(v)});
    auto out = store.write(batch);
    BOOST_REQUIRE_MESSAGE(out.ok(), varve_test::describe(out));
    BOOST_REQUIRE_MESSAGE(out->front().ok(), varve_test::describe(out->front()));
  }
  BOOST_REQUIRE(store.shred("account-5").ok());
}

/// The pages in use in a data.mdb, by kind: the test's own walk of its
/// trees, to know where to damage them.
struct page_map {
  std::uint64_t page_size = 0;
  std::uint64_t last_page = 0;
  std::vector<std::uint64_t> branches;
  std::vector<std::uint64_t> leaves;
  std::vector<std::uint64_t> overflows;  // first pages of overflow runs
};

void map_tree(const std::string& file, page_map& map, std::uint64_t pgno, bool main) {
  const std::uint64_t at = pgno * map.page_size;
  const auto flags = load<std::uint16_t>(file, at + 10);
  const auto lower = load<std::uint16_t>(file, at + 12);
  for (std::uint64_t i = 0; i < (lower - 16u) / 2; ++i) {
    const std::uint64_t node = at + load<std::uint16_t>(file, at + 16 + 2 * i);
    const auto lo = load<std::uint16_t>(file, node);
    const auto hi = load<std::uint16_t>(file, node + 2);
    const auto node_flags = load<std::uint16_t>(file, node + 4);
    const auto key_size = load<std::uint16_t>(file, node + 6);
    const std::uint64_t data = node + 8 + key_size;
    if (flags == p_branch) {
      map_tree(file, map, lo | std::uint64_t{hi} << 16 | std::uint64_t{node_flags} << 32, main);
    } else if (node_flags & f_bigdata) {
      map.overflows.push_back(load<std::uint64_t>(file, data));
    } else if (main && (node_flags & f_subdata)) {
      const auto root = load<std::uint64_t>(file, data + 40);
      if (root != ~std::uint64_t{0}) map_tree(file, map, root, false);
    }
  }
  (flags == p_branch ? map.branches : map.leaves).push_back(pgno);
  BOOST_REQUIRE(flags == p_branch || flags == p_leaf);
}

page_map map_pages(const fs::path& data_file) {
  const std::string file = read_file(data_file);
  page_map map;
  map.page_size = load<std::uint32_t>(file, 40);  // meta page 0's free table pad
  // The meta page LMDB opens: the larger transaction id.
  const std::uint64_t meta =
      load<std::uint64_t>(file, 144) >= load<std::uint64_t>(file, map.page_size + 144)
          ? 0
          : map.page_size;
  map.last_page = load<std::uint64_t>(file, meta + 136);
  for (std::uint64_t table = 0; table < 2; ++table) {
    const auto root = load<std::uint64_t>(file, meta + 40 + 48 * table + 40);
    if (root != ~std::uint64_t{0}) map_tree(file, map, root, table == 1);
  }
  return map;
}

/// A sound store, filled and closed, and its compacted copy (backup).
struct sound_store {
  temp_dir dir;
  bool encrypted;
  fs::path original;
  fs::path copy;
  page_map pages;  // of the copy
  verify_report report;

  explicit sound_store(bool encrypt)
      : encrypted(encrypt), original(dir / "store"), copy(dir / "copy") {
    auto store = varve_test::open_store(store_options(original, encrypted));
    fill(*store);
    auto checked = store->verify();
    BOOST_REQUIRE_MESSAGE(checked.ok(), varve_test::describe(checked));
    report = *checked;
    auto copied = store->backup(copy);
    BOOST_REQUIRE_MESSAGE(copied.ok(), varve_test::describe(copied));
    pages = map_pages(copy / "data.mdb");
    BOOST_REQUIRE(!pages.branches.empty() && !pages.leaves.empty() && !pages.overflows.empty());
  }

  /// A fresh copy of the compacted store's data.mdb in its own directory.
  fs::path fresh_copy(const std::string& name) const {
    const fs::path target = dir / name;
    fs::create_directories(target);
    fs::copy_file(copy / "data.mdb", target / "data.mdb");
    return target;
  }
};

std::string joined(const std::vector<std::string>& faults) {
  std::string out;
  for (const std::string& f : faults)
    out += "\n  " + f;
  return out;
}

/// Whether a fault begins by naming page `pgno` ("page 17 (...): ...").
bool names_page(const std::vector<std::string>& faults, std::uint64_t pgno) {
  const std::string name = "page " + std::to_string(pgno);
  for (const std::string& f : faults) {
    if (f.rfind(name, 0) == 0 && f.size() > name.size() &&
        (f[name.size()] < '0' || f[name.size()] > '9'))
      return true;
  }
  return false;
}

bool mentions(const std::vector<std::string>& faults, std::string_view text) {
  for (const std::string& f : faults)
    if (f.find(text) != std::string::npos) return true;
  return false;
}

/// Damages two fresh copies of the compacted store with `damage`: one
/// closed, checked with check_pages, and one under an open store, checked
/// with verify (LMDB reads the damaged pages through its map). Both must
/// report a fault naming page `named`.
void expect_fault_naming(const sound_store& s, std::uint64_t named, const std::string& name,
                         const std::function<void(const fs::path& data_file)>& damage) {
  BOOST_TEST_CONTEXT(name << ", page " << named) {
    const fs::path closed = s.fresh_copy(name + "-closed");
    damage(closed / "data.mdb");
    auto pages = detail::check_pages(closed / "data.mdb");
    BOOST_REQUIRE_MESSAGE(pages.ok(), varve_test::describe(pages));
    BOOST_CHECK_MESSAGE(names_page(pages->faults, named),
                        "check_pages faults:" << joined(pages->faults));

    const fs::path open = s.fresh_copy(name + "-open");
    auto store = varve_test::open_store(store_options(open, s.encrypted));
    damage(open / "data.mdb");
    auto report = store->verify();
    BOOST_REQUIRE_MESSAGE(report.ok(), varve_test::describe(report));
    BOOST_CHECK_MESSAGE(names_page(report->faults, named),
                        "verify faults:" << joined(report->faults));
    BOOST_CHECK_EQUAL(report->events, 0u);  // the log is not walked through damaged pages
  }
}

/// The offset of node `i` of page `pgno` in the file.
std::uint64_t node_at(const fs::path& data_file, const page_map& map, std::uint64_t pgno,
                      std::uint64_t i) {
  const std::string file = read_file(data_file);
  return pgno * map.page_size + load<std::uint16_t>(file, pgno * map.page_size + 16 + 2 * i);
}

/// Makes node `i` of branch page `pgno` point at page `child`.
void point_at(const fs::path& data_file, const page_map& map, std::uint64_t pgno, std::uint64_t i,
              std::uint64_t child) {
  const std::uint64_t node = node_at(data_file, map, pgno, i);
  write_at(data_file, node, bytes_of(static_cast<std::uint16_t>(child & 0xffff)));
  write_at(data_file, node + 2, bytes_of(static_cast<std::uint16_t>((child >> 16) & 0xffff)));
  write_at(data_file, node + 4, bytes_of(static_cast<std::uint16_t>(child >> 32)));
}

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string out(n, '\0');
  for (char& c : out)
    c = static_cast<char>(rng());
  return out;
}

/// Overwrites the 16-byte header of a few pages of `kind` with random bytes.
void corrupt_headers(const sound_store& s, const std::vector<std::uint64_t>& kind,
                     const std::string& name, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 4; ++round) {
    const std::uint64_t pgno = kind[rng() % kind.size()];
    const std::string header = random_bytes(rng, 16);
    expect_fault_naming(s, pgno, name + "-" + std::to_string(round), [&](const fs::path& file) {
      write_at(file, pgno * s.pages.page_size, header);
    });
  }
}

/// Cuts fresh copies of the compacted store at `count` random places, half
/// at page boundaries, half inside a page, and checks each with `check`.
void truncate_at_random(
    const sound_store& s, std::uint64_t seed, int count,
    const std::function<std::vector<std::string>(const fs::path& dir, std::uint64_t size)>& check) {
  std::mt19937_64 rng(seed);
  const std::uint64_t page_size = s.pages.page_size;
  const std::uint64_t file_size = fs::file_size(s.copy / "data.mdb");
  BOOST_REQUIRE_EQUAL(file_size, (s.pages.last_page + 1) * page_size);
  for (int i = 0; i < count; ++i) {
    std::uint64_t size = rng() % (s.pages.last_page + 1) * page_size;
    if (i % 2 == 1) size += 1 + rng() % (page_size - 1);
    BOOST_TEST_CONTEXT("truncation " << i << " to " << size << " bytes (page " << size / page_size
                                     << ")") {
      const auto faults = check(s.fresh_copy("cut-" + std::to_string(i)), size);
      BOOST_CHECK_MESSAGE(mentions(faults, "truncated"), "faults:" << joined(faults));
      // Past the meta pages, the fault names a page that lies past the end.
      if (size >= 2 * page_size) {
        bool named = false;
        for (const std::string& f : faults)
          named =
              named || (f.rfind("page ", 0) == 0 && f.find("end of data.mdb") != std::string::npos);
        BOOST_CHECK_MESSAGE(named, "faults:" << joined(faults));
      }
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(page_check)

BOOST_AUTO_TEST_CASE(a_sound_store_checks_clean_plain_and_encrypted) {
  for (bool encrypted : {false, true}) {
    BOOST_TEST_CONTEXT((encrypted ? "encrypted" : "plain")) {
      sound_store s(encrypted);
      BOOST_CHECK_MESSAGE(s.report.faults.empty(), "verify faults:" << joined(s.report.faults));
      BOOST_CHECK_GT(s.report.pages, 0u);
      BOOST_CHECK_EQUAL(s.report.events, streams * versions);
      for (const fs::path& dir : {s.original, s.copy}) {
        auto pages = detail::check_pages(dir / "data.mdb");
        BOOST_REQUIRE_MESSAGE(pages.ok(), varve_test::describe(pages));
        BOOST_CHECK_MESSAGE(pages->faults.empty(), dir << " faults:" << joined(pages->faults));
        BOOST_CHECK_GT(pages->pages_checked, 0u);
      }
      // The compacted copy has no free pages: all but the meta pages are in use.
      const page_map& m = s.pages;
      std::uint64_t overflow_pages = 0;
      auto pages = detail::check_pages(s.copy / "data.mdb");
      BOOST_REQUIRE(pages.ok());
      for (std::uint64_t first : m.overflows)
        overflow_pages +=
            load<std::uint32_t>(read_file(s.copy / "data.mdb"), first * m.page_size + 12);
      BOOST_CHECK_EQUAL(pages->pages_checked, m.branches.size() + m.leaves.size() + overflow_pages);
      BOOST_CHECK_EQUAL(pages->pages_checked, m.last_page - 1);
      BOOST_CHECK_EQUAL(pages->free_pages, 0u);
      auto reopened = varve_test::open_store(store_options(s.copy, encrypted));
      auto report = reopened->verify();
      BOOST_REQUIRE(report.ok());
      BOOST_CHECK_MESSAGE(report->faults.empty(), "faults:" << joined(report->faults));
      BOOST_CHECK_EQUAL(report->pages, pages->pages_checked);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_truncated_file_is_a_fault_named_by_page) {
  for (bool encrypted : {false, true}) {
    sound_store s(encrypted);
    truncate_at_random(s, encrypted ? 17 : 16, 30, [](const fs::path& dir, std::uint64_t size) {
      fs::resize_file(dir / "data.mdb", size);
      auto pages = detail::check_pages(dir / "data.mdb");
      BOOST_REQUIRE_MESSAGE(pages.ok(), varve_test::describe(pages));
      return pages->faults;
    });
  }
}

BOOST_AUTO_TEST_CASE(verify_reports_a_store_truncated_while_open_and_lives) {
  for (bool encrypted : {false, true}) {
    sound_store s(encrypted);
    truncate_at_random(s, encrypted ? 27 : 26, 30, [&](const fs::path& dir, std::uint64_t size) {
      auto store = varve_test::open_store(store_options(dir, encrypted));
      fs::resize_file(dir / "data.mdb", size);
      auto report = store->verify();
      BOOST_REQUIRE_MESSAGE(report.ok(), varve_test::describe(report));
      BOOST_CHECK_EQUAL(report->events, 0u);
      return report->faults;
    });
  }
}

BOOST_AUTO_TEST_CASE(a_corrupted_branch_page_header_is_a_fault) {
  sound_store s(false);
  corrupt_headers(s, s.pages.branches, "branch", 1);
}

BOOST_AUTO_TEST_CASE(a_corrupted_leaf_page_header_is_a_fault) {
  sound_store s(false);
  corrupt_headers(s, s.pages.leaves, "leaf", 2);
}

BOOST_AUTO_TEST_CASE(a_corrupted_overflow_page_header_is_a_fault) {
  sound_store s(true);
  corrupt_headers(s, s.pages.overflows, "overflow", 3);
}

BOOST_AUTO_TEST_CASE(a_node_offset_out_of_its_page_is_a_fault) {
  sound_store s(false);
  const std::uint64_t leaf = s.pages.leaves.front();
  const std::uint64_t branch = s.pages.branches.front();
  for (std::uint16_t offset :
       {std::uint16_t(s.pages.page_size - 2), std::uint16_t{0xfff0}, std::uint16_t{4}}) {
    expect_fault_naming(s, leaf, "leaf-offset-" + std::to_string(offset), [&](const fs::path& f) {
      write_at(f, leaf * s.pages.page_size + 16, bytes_of(offset));
    });
    expect_fault_naming(s, branch, "branch-offset-" + std::to_string(offset),
                        [&](const fs::path& f) {
                          write_at(f, branch * s.pages.page_size + 16 + 2, bytes_of(offset));
                        });
  }
  // A node whose key runs past the end of the page.
  expect_fault_naming(s, leaf, "leaf-key-size", [&](const fs::path& f) {
    write_at(f, node_at(f, s.pages, leaf, 0) + 6, bytes_of(std::uint16_t{0xffff}));
  });
}

BOOST_AUTO_TEST_CASE(a_child_pointer_past_the_last_page_is_a_fault) {
  sound_store s(false);
  const std::uint64_t branch = s.pages.branches.front();
  for (std::uint64_t child : {s.pages.last_page + 1, s.pages.last_page + 1000,
                              std::uint64_t{1} << 40, std::uint64_t{0}}) {
    expect_fault_naming(s, branch, "child-" + std::to_string(child),
                        [&](const fs::path& f) { point_at(f, s.pages, branch, 1, child); });
  }
  // An overflow value whose run would end past the last page.
  expect_fault_naming(s, s.pages.overflows.front(), "overflow-run", [&](const fs::path& f) {
    write_at(f, s.pages.overflows.front() * s.pages.page_size + 12,
             bytes_of(std::uint32_t{0x7fffffff}));
  });
}

BOOST_AUTO_TEST_CASE(a_cycle_or_a_shared_page_is_a_fault) {
  sound_store s(false);
  for (std::uint64_t branch : s.pages.branches) {
    expect_fault_naming(s, branch, "cycle-" + std::to_string(branch),
                        [&](const fs::path& f) { point_at(f, s.pages, branch, 1, branch); });
  }
  const std::uint64_t branch = s.pages.branches.front();
  const std::string file = read_file(s.copy / "data.mdb");
  const std::uint64_t first_child =
      load<std::uint16_t>(file, node_at(s.copy / "data.mdb", s.pages, branch, 0)) |
      std::uint64_t{load<std::uint16_t>(file, node_at(s.copy / "data.mdb", s.pages, branch, 0) + 2)}
          << 16;
  expect_fault_naming(s, branch, "shared",
                      [&](const fs::path& f) { point_at(f, s.pages, branch, 1, first_child); });
}

BOOST_AUTO_TEST_SUITE_END()
