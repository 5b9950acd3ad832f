// Damaged records: a stored event whose bytes do not decode reads as
// errc::corruption from every read path, never crashes, and does not hide the
// records around it.
//
// The damage is done with raw LMDB on the closed store, to the record layout
// of storage/FORMAT.md (60-byte header: format u8, flags u8, type_len u16,
// metadata_len u32, payload_len u32, stream_id u64, version u64, previous u64,
// event id 16 bytes, time i64; then type, metadata, payload, and the CRC32C
// of everything before it XOR the position).
#define BOOST_TEST_MODULE corruption
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "raw_lmdb.hpp"
#include "temp_dir.hpp"

using namespace varve;
using varve_test::make_event;
using varve_test::open_store;
using varve_test::temp_dir;
using varve_test::test_options;

namespace {

constexpr std::size_t header_size = 60;
constexpr std::size_t type_len_at = 2;
constexpr std::size_t metadata_len_at = 4;
constexpr std::size_t payload_len_at = 8;
constexpr std::size_t previous_at = 28;

template <class T>
T get_le(const std::string& bytes, std::size_t at) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    v |= static_cast<T>(static_cast<unsigned char>(bytes.at(at + i))) << (8 * i);
  }
  return v;
}

template <class T>
void set_le(std::string& bytes, std::size_t at, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    bytes.at(at + i) = static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
  }
}

std::uint32_t crc32c(global_position position, std::string_view bytes) {
  return varve_test::record_checksum(position, bytes);
}

/// `bytes` with its last 4 bytes replaced by the checksum of the rest: a
/// change that a checksum alone would not catch.
std::string with_checksum(global_position position, std::string bytes) {
  set_le<std::uint32_t>(bytes, bytes.size() - 4,
                        crc32c(position, std::string_view(bytes).substr(0, bytes.size() - 4)));
  return bytes;
}

constexpr global_position damaged = 7;  // stream "s", version 4
constexpr global_position events_in_store = 20;

}  // namespace

/// A closed store of 20 events: "s" at the odd positions, "t" at the even ones.
struct corruption_fixture {
  temp_dir dir;
  options opts;
  std::vector<recorded_event> originals;  // index = position - 1

  corruption_fixture() : opts(test_options(dir / "store")) {
    auto store = open_store(opts);
    for (global_position p = 1; p <= events_in_store; ++p) {
      const std::string stream = p % 2 ? "s" : "t";
      const std::vector<new_event> events = {
          make_event("corrupt-me", "payload of " + std::to_string(p) + std::string(100, 'p'),
                     "{\"meta\":" + std::to_string(p) + "}")};
      auto r = store->append(stream, expected_version::any(), events);
      BOOST_REQUIRE_MESSAGE(r.ok(), varve_test::describe(r));
    }
    auto log = store->read_log();
    VARVE_REQUIRE_OK(log);
    originals = std::move(log).value();
    BOOST_REQUIRE_EQUAL(originals.size(), events_in_store);
  }

  std::string record(global_position p) {
    varve_test::raw_env env(opts.directory);
    auto bytes = env.get_event(p);
    BOOST_REQUIRE_MESSAGE(bytes.has_value(), "no record at " << p);
    return *bytes;
  }

  void overwrite(global_position p, const std::string& bytes) {
    varve_test::raw_env env(opts.directory);
    env.put_event(p, bytes);
  }

  /// Replaces the damaged record with `bytes`, checks every read path, and
  /// puts the original back.
  void expect_corruption(const std::string& what, const std::string& bytes) {
    BOOST_TEST_CONTEXT(what) {
      const std::string original = record(damaged);
      overwrite(damaged, bytes);
      check_reads();
      overwrite(damaged, original);
      // Repaired, the record reads again (the damage was what was detected).
      auto store = open_store(opts);
      auto tx = store->read();
      VARVE_REQUIRE_OK(tx);
      auto e = tx->event_at(damaged);
      VARVE_CHECK_OK(e);
    }
  }

  void check_reads() {
    auto store = open_store(opts);
    auto txr = store->read();
    VARVE_REQUIRE_OK(txr);
    const auto& tx = *txr;

    auto at = tx.event_at(damaged);
    VARVE_CHECK_ERRC(at, errc::corruption);
    if (!at.ok()) BOOST_TEST_MESSAGE("event_at: " << at.err().message());

    // The log, read across the damaged record in both directions.
    std::vector<global_position> visited;
    auto note = [&](const event_view& e) {
      visited.push_back(e.position);
      return true;
    };
    auto forward = tx.scan_log(1, direction::forward, SIZE_MAX, note);
    VARVE_CHECK_ERRC(forward, errc::corruption);
    for (auto p : visited)
      BOOST_TEST(p < damaged, "forward scan handed out position " << p);
    visited.clear();
    auto backward = tx.scan_log(from_end, direction::backward, SIZE_MAX, note);
    VARVE_CHECK_ERRC(backward, errc::corruption);
    for (auto p : visited)
      BOOST_TEST(p > damaged, "backward scan handed out position " << p);
    VARVE_CHECK_ERRC(tx.read_log(1, direction::forward, SIZE_MAX), errc::corruption);
    VARVE_CHECK_ERRC(store->read_log(), errc::corruption);
    VARVE_CHECK_ERRC(store->read_log(damaged, direction::forward, 1), errc::corruption);

    // The damaged record's stream.
    VARVE_CHECK_ERRC(tx.read_stream("s", 1, direction::forward, SIZE_MAX), errc::corruption);
    VARVE_CHECK_ERRC(tx.read_stream("s", from_end, direction::backward, SIZE_MAX),
                     errc::corruption);
    VARVE_CHECK_ERRC(store->read_stream("s"), errc::corruption);
    VARVE_CHECK_ERRC(store->read_stream("s", 4, direction::forward, 1), errc::corruption);

    // Everything else still reads.
    for (global_position p = 1; p <= events_in_store; ++p) {
      if (p == damaged) continue;
      auto e = tx.event_at(p);
      BOOST_TEST_CONTEXT("position " << p) {
        VARVE_CHECK_OK(e);
        if (e.ok()) {
          BOOST_TEST(e->payload == originals[p - 1].payload);
          BOOST_TEST(e->metadata == originals[p - 1].metadata);
        }
      }
    }
    auto after = tx.read_log(damaged + 1, direction::forward, SIZE_MAX);
    VARVE_CHECK_OK(after);
    if (after.ok()) BOOST_TEST(after->size() == events_in_store - damaged);
    auto before = tx.read_log(damaged - 1, direction::backward, SIZE_MAX);
    VARVE_CHECK_OK(before);
    if (before.ok()) BOOST_TEST(before->size() == damaged - 1);
    auto other = store->read_stream("t");
    VARVE_CHECK_OK(other);
    if (other.ok()) BOOST_TEST(other->size() == events_in_store / 2);
    auto info = tx.stream("s");
    VARVE_CHECK_OK(info);
    BOOST_TEST(tx.head() == events_in_store);
  }
};

BOOST_FIXTURE_TEST_SUITE(corruption, corruption_fixture)

BOOST_AUTO_TEST_CASE(layout_matches_the_documented_record_format) {
  // Guards the tests below: they damage fields at these offsets.
  const std::string bytes = record(damaged);
  const auto& e = originals[damaged - 1];
  BOOST_REQUIRE_EQUAL(bytes.size(),
                      header_size + e.type.size() + e.metadata.size() + e.payload.size() + 4);
  BOOST_TEST(bytes[0] == 2);  // format 2
  BOOST_TEST(bytes[1] == 0);  // plain
  BOOST_TEST(get_le<std::uint32_t>(bytes, bytes.size() - 4) ==
             crc32c(damaged, std::string_view(bytes).substr(0, bytes.size() - 4)));
  BOOST_TEST(get_le<std::uint16_t>(bytes, type_len_at) == e.type.size());
  BOOST_TEST(get_le<std::uint32_t>(bytes, metadata_len_at) == e.metadata.size());
  BOOST_TEST(get_le<std::uint32_t>(bytes, payload_len_at) == e.payload.size());
  BOOST_TEST(get_le<std::uint64_t>(bytes, previous_at) == damaged - 2);
  BOOST_TEST(bytes.substr(header_size, e.type.size()) == e.type);
}

BOOST_AUTO_TEST_CASE(truncated_record_reads_as_corruption) {
  const std::string bytes = record(damaged);
  expect_corruption("empty value", "");
  expect_corruption("one byte", bytes.substr(0, 1));
  expect_corruption("10 bytes", bytes.substr(0, 10));
  expect_corruption("header minus one byte", bytes.substr(0, header_size - 1));
  expect_corruption("header only", bytes.substr(0, header_size));
  expect_corruption("half", bytes.substr(0, bytes.size() / 2));
  expect_corruption("last byte missing", bytes.substr(0, bytes.size() - 1));
}

BOOST_AUTO_TEST_CASE(garbage_record_reads_as_corruption) {
  const std::string bytes = record(damaged);
  expect_corruption("0xa5 bytes", std::string(300, '\xa5'));
  expect_corruption("0xff bytes", std::string(bytes.size(), '\xff'));
  expect_corruption("zero bytes", std::string(bytes.size(), '\0'));
  std::mt19937 rng(20240607);
  for (int round = 0; round < 5; ++round) {
    std::string noise(16 + rng() % 400, '\0');
    for (auto& c : noise)
      c = static_cast<char>(rng() & 0xff);
    expect_corruption("random bytes, round " + std::to_string(round), noise);
  }
  std::string extended = bytes + "trailing junk";
  expect_corruption("trailing bytes past the lengths", extended);
}

BOOST_AUTO_TEST_CASE(record_with_an_impossible_length_reads_as_corruption) {
  const std::string bytes = record(damaged);
  const auto type_len = get_le<std::uint16_t>(bytes, type_len_at);
  const auto metadata_len = get_le<std::uint32_t>(bytes, metadata_len_at);
  const auto payload_len = get_le<std::uint32_t>(bytes, payload_len_at);

  auto with = [&](std::function<void(std::string&)> change) {
    std::string b = bytes;
    change(b);
    return b;
  };
  expect_corruption("payload_len 0xffffffff", with([&](std::string& b) {
                      set_le<std::uint32_t>(b, payload_len_at, 0xffffffffu);
                    }));
  expect_corruption("metadata_len 0xffffffff", with([&](std::string& b) {
                      set_le<std::uint32_t>(b, metadata_len_at, 0xffffffffu);
                    }));
  expect_corruption("type_len 0xffff",
                    with([&](std::string& b) { set_le<std::uint16_t>(b, type_len_at, 0xffff); }));
  expect_corruption("payload_len one too many", with([&](std::string& b) {
                      set_le<std::uint32_t>(b, payload_len_at, payload_len + 1);
                    }));
  expect_corruption("type_len one too few", with([&](std::string& b) {
                      set_le<std::uint16_t>(b, type_len_at, type_len - 1);
                    }));
  // The lengths still add up to the stored size modulo 2^32: a decoder that
  // sums in 32 bits would read far past the record.
  expect_corruption("lengths that wrap around 2^32", with([&](std::string& b) {
                      set_le<std::uint32_t>(b, metadata_len_at, metadata_len + 0x80000000u);
                      set_le<std::uint32_t>(b, payload_len_at, payload_len + 0x80000000u);
                    }));
  // Sizes that add up, but the type would be empty, which no append writes.
  expect_corruption("type_len 0 with a consistent total", with([&](std::string& b) {
                      set_le<std::uint16_t>(b, type_len_at, 0);
                      set_le<std::uint32_t>(b, metadata_len_at, metadata_len + type_len);
                    }));
}

BOOST_AUTO_TEST_CASE(record_with_an_unknown_format_or_impossible_link_reads_as_corruption) {
  const std::string bytes = record(damaged);
  std::string unknown_format = bytes;
  unknown_format[0] = 3;
  expect_corruption("format byte 3", with_checksum(damaged, unknown_format));
  std::string self_link = bytes;
  set_le<std::uint64_t>(self_link, previous_at, damaged);
  expect_corruption("previous == own position", with_checksum(damaged, self_link));
  std::string forward_link = bytes;
  set_le<std::uint64_t>(forward_link, previous_at, damaged + 4);
  expect_corruption("previous after own position", with_checksum(damaged, forward_link));
}

BOOST_AUTO_TEST_CASE(a_changed_byte_anywhere_in_a_record_fails_its_checksum) {
  // LMDB keeps no checksums: without the record's own, a flipped payload
  // byte would read back as valid data.
  const std::string bytes = record(damaged);
  for (std::size_t at : {std::size_t{0} + 1, std::size_t{40}, std::size_t{52}, header_size,
                         header_size + 12, bytes.size() / 2, bytes.size() - 5, bytes.size() - 1}) {
    std::string changed = bytes;
    changed[at] = static_cast<char>(changed[at] ^ 0x04);
    expect_corruption("byte " + std::to_string(at) + " flipped", changed);
  }
  // The same record moved to another position fails too: the position is
  // covered.
  expect_corruption("record of position 9 stored at 7", record(9));
}

BOOST_AUTO_TEST_CASE(verify_reports_a_changed_byte_even_when_reads_skip_checksums) {
  std::string changed = record(damaged);
  changed[header_size + 20] = static_cast<char>(changed[header_size + 20] ^ 0x01);
  overwrite(damaged, changed);
  options unchecked = opts;
  unchecked.verify_checksums = false;
  auto store = open_store(unchecked);
  auto e = store->read_log(damaged, direction::forward, 1);
  VARVE_REQUIRE_OK(e);  // reads that skip the check hand the bytes out...
  BOOST_TEST(e->at(0).payload != originals[damaged - 1].payload);
  auto report = store->verify();  // ...verify does not
  VARVE_REQUIRE_OK(report);
  BOOST_TEST(report->faults_total == 1u);
  BOOST_TEST_MESSAGE(report->faults.at(0));
  BOOST_TEST(report->faults.at(0).find("checksum") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(records_of_format_1_still_read) {
  // A store written before checksums: format byte 1, no checksum, and
  // format_version 1 in meta, which opening upgrades.
  for (global_position p = 1; p <= events_in_store; ++p) {
    std::string v1 = record(p);
    v1.resize(v1.size() - 4);
    v1[0] = 1;
    overwrite(p, v1);
  }
  {
    varve_test::raw_env env(opts.directory);
    env.put("meta", "format_version", varve_test::le32(1));
  }
  auto store = open_store(opts);
  auto log = store->read_log();
  VARVE_REQUIRE_OK(log);
  BOOST_REQUIRE_EQUAL(log->size(), events_in_store);
  BOOST_TEST((*log)[damaged - 1].payload == originals[damaged - 1].payload);
  auto report = store->verify();
  VARVE_REQUIRE_OK(report);
  BOOST_TEST(report->faults_total == 0u);
  store.reset();
  {  // Reading leaves the store as it was: an older build still opens it.
    varve_test::raw_env env(opts.directory);
    BOOST_TEST(*env.get("meta", "format_version") == varve_test::le32(1));
  }
  // New events are written in format 2, after the old ones, and the store's
  // version goes up with the first of them.
  store = open_store(opts);
  auto next = store->append("s", expected_version::any(), {{make_event("after", "x")}});
  VARVE_REQUIRE_OK(next);
  store.reset();
  varve_test::raw_env env(opts.directory);
  BOOST_TEST(env.get_event(events_in_store + 1)->at(0) == 2);
  BOOST_TEST(*env.get("meta", "format_version") == varve_test::le32(2));
}

BOOST_AUTO_TEST_CASE(a_log_walk_that_skips_a_position_is_corruption) {
  // LMDB does not check its own pages: a damaged tree can make a cursor
  // skip or repeat entries. The log is gapless, so a skip shows.
  {
    varve_test::raw_env env(opts.directory);
    MDB_txn* txn = nullptr;
    BOOST_REQUIRE_EQUAL(mdb_txn_begin(env.get(), nullptr, 0, &txn), 0);
    MDB_dbi events = 0;
    BOOST_REQUIRE_EQUAL(mdb_dbi_open(txn, "events", MDB_INTEGERKEY, &events), 0);
    std::uint64_t position = damaged;
    MDB_val k{sizeof position, &position};
    BOOST_REQUIRE_EQUAL(mdb_del(txn, events, &k, nullptr), 0);
    BOOST_REQUIRE_EQUAL(mdb_txn_commit(txn), 0);
  }
  auto store = open_store(opts);
  auto forward = store->read_log();
  VARVE_REQUIRE_ERRC(forward, errc::corruption);
  BOOST_TEST_MESSAGE(forward.err().message());
  VARVE_CHECK_ERRC(store->read_log(from_end, direction::backward), errc::corruption);
  VARVE_CHECK_OK(store->read_log(1, direction::forward, damaged - 1));  // before it: fine
}

BOOST_AUTO_TEST_SUITE_END()
