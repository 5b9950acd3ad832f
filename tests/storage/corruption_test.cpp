// Damaged records: a stored event whose bytes do not decode reads as
// errc::corruption from every read path, never crashes, and does not hide the
// records around it.
//
// The damage is done with raw LMDB on the closed store, to the record layout
// of storage/FORMAT.md (format 3: format u8, flags u8, tag count u8, then
// varints type_len, metadata_len, payload_len, tags_len, stream_id, version,
// back, the 16-byte id, the time varint; then type, tags, metadata, payload,
// and the CRC32C of everything before it XOR the position), decoded and
// encoded again here by code of the test's own.
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

/// The head of a format 3 record, and the bytes after it.
struct head_fields {
  std::uint8_t format = 3, flags = 0, tag_count = 0;
  std::uint64_t type_len = 0, metadata_len = 0, payload_len = 0, tags_len = 0;
  std::uint64_t stream_id = 0, version = 0, back = 0;
  std::string id;
  std::uint64_t time_delta = 0;
  std::size_t head = 0;  // bytes of the head as read
  std::string rest;      // type, tags, metadata, payload, checksum

  static head_fields of(const std::string& r) {
    head_fields f;
    f.format = static_cast<std::uint8_t>(r.at(0));
    f.flags = static_cast<std::uint8_t>(r.at(1));
    f.tag_count = static_cast<std::uint8_t>(r.at(2));
    std::size_t at = 3;
    auto varint = [&] {
      std::uint64_t v = 0;
      for (unsigned shift = 0;; shift += 7) {
        const auto b = static_cast<unsigned char>(r.at(at++));
        v |= std::uint64_t{b & 0x7Fu} << shift;
        if (b < 0x80) return v;
      }
    };
    for (std::uint64_t* field : {&f.type_len, &f.metadata_len, &f.payload_len, &f.tags_len,
                                 &f.stream_id, &f.version, &f.back})
      *field = varint();
    f.id = r.substr(at, 16);
    at += 16;
    f.time_delta = varint();
    f.head = at;
    f.rest = r.substr(at);
    return f;
  }

  std::string bytes() const {
    std::string out{static_cast<char>(format), static_cast<char>(flags),
                    static_cast<char>(tag_count)};
    auto varint = [&](std::uint64_t v) {
      while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7F) | 0x80));
        v >>= 7;
      }
      out.push_back(static_cast<char>(v));
    };
    for (std::uint64_t v :
         {type_len, metadata_len, payload_len, tags_len, stream_id, version, back})
      varint(v);
    out += id;
    varint(time_delta);
    return out + rest;
  }
};

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
  const auto f = head_fields::of(bytes);
  BOOST_REQUIRE_EQUAL(bytes.size(),
                      f.head + e.type.size() + e.metadata.size() + e.payload.size() + 4);
  BOOST_TEST(f.format == 3);
  BOOST_TEST(f.flags == 0);  // plain
  BOOST_TEST(f.tag_count == 0);
  BOOST_TEST(f.tags_len == 0u);
  BOOST_TEST(get_le<std::uint32_t>(bytes, bytes.size() - 4) ==
             crc32c(damaged, std::string_view(bytes).substr(0, bytes.size() - 4)));
  BOOST_TEST(f.type_len == e.type.size());
  BOOST_TEST(f.metadata_len == e.metadata.size());
  BOOST_TEST(f.payload_len == e.payload.size());
  BOOST_TEST(f.version == 4u);
  BOOST_TEST(f.back == 2u);  // the previous event of "s" is 2 positions back
  BOOST_TEST(f.bytes() == bytes);
  BOOST_TEST(bytes.substr(f.head, e.type.size()) == e.type);
}

BOOST_AUTO_TEST_CASE(truncated_record_reads_as_corruption) {
  const std::string bytes = record(damaged);
  expect_corruption("empty value", "");
  expect_corruption("one byte", bytes.substr(0, 1));
  expect_corruption("10 bytes", bytes.substr(0, 10));
  const std::size_t head = head_fields::of(bytes).head;
  expect_corruption("head minus one byte", bytes.substr(0, head - 1));
  expect_corruption("head only", bytes.substr(0, head));
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
  const head_fields original = head_fields::of(record(damaged));
  auto with = [&](std::function<void(head_fields&)> change) {
    head_fields f = original;
    change(f);
    return f.bytes();
  };
  expect_corruption("payload_len 0xffffffff",
                    with([](head_fields& f) { f.payload_len = 0xffffffffu; }));
  expect_corruption("metadata_len 2^64 - 1",
                    with([](head_fields& f) { f.metadata_len = ~std::uint64_t{0}; }));
  expect_corruption("type_len 0xffff", with([](head_fields& f) { f.type_len = 0xffff; }));
  expect_corruption("payload_len one too many", with([](head_fields& f) { ++f.payload_len; }));
  expect_corruption("type_len one too few", with([](head_fields& f) { --f.type_len; }));
  expect_corruption("tags_len one, no tag count", with([](head_fields& f) {
                      f.tags_len = 1;
                      --f.payload_len;
                    }));
  expect_corruption("a tag count without tags", with([](head_fields& f) { f.tag_count = 1; }));
  // The lengths still add up to the stored size modulo 2^64: a decoder that
  // sums them without bounds would read far past the record.
  expect_corruption("lengths that wrap around 2^64", with([](head_fields& f) {
                      f.metadata_len += std::uint64_t{1} << 63;
                      f.payload_len += std::uint64_t{1} << 63;
                    }));
  // Sizes that add up, but the type would be empty, which no append writes.
  expect_corruption("type_len 0 with a consistent total", with([](head_fields& f) {
                      f.metadata_len += f.type_len;
                      f.type_len = 0;
                    }));
  // A varint that never ends.
  std::string endless = original.bytes().substr(0, 3) + std::string(12, '\xff');
  expect_corruption("a varint of 12 bytes", endless);
}

BOOST_AUTO_TEST_CASE(record_with_an_unknown_format_or_impossible_link_reads_as_corruption) {
  const std::string bytes = record(damaged);
  std::string unknown_format = bytes;
  unknown_format[0] = 4;
  expect_corruption("format byte 4", with_checksum(damaged, unknown_format));
  head_fields f = head_fields::of(bytes);
  f.back = damaged;
  expect_corruption("previous at position 0 for version 4", with_checksum(damaged, f.bytes()));
  f.back = damaged + 4;
  expect_corruption("previous after own position", with_checksum(damaged, f.bytes()));
  f.back = 0;
  expect_corruption("no previous for version 4", with_checksum(damaged, f.bytes()));
}

BOOST_AUTO_TEST_CASE(a_changed_byte_anywhere_in_a_record_fails_its_checksum) {
  // LMDB keeps no checksums: without the record's own, a flipped payload
  // byte would read back as valid data.
  const std::string bytes = record(damaged);
  const std::size_t head = head_fields::of(bytes).head;
  for (std::size_t at : {std::size_t{0} + 1, std::size_t{12}, head - 1, head, head + 12,
                         bytes.size() / 2, bytes.size() - 5, bytes.size() - 1}) {
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
  const std::size_t at = head_fields::of(changed).head + 20;
  changed[at] = static_cast<char>(changed[at] ^ 0x01);
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
  // A store written before checksums: format byte 1, a 60-byte header, no
  // checksum, no indexes, and format_version 1 in meta.
  for (global_position p = 1; p <= events_in_store; ++p) {
    const head_fields f = head_fields::of(record(p));
    std::string v1(60, '\0');
    v1[0] = 1;
    v1[1] = static_cast<char>(f.flags);
    set_le<std::uint16_t>(v1, 2, static_cast<std::uint16_t>(f.type_len));
    set_le<std::uint32_t>(v1, 4, static_cast<std::uint32_t>(f.metadata_len));
    set_le<std::uint32_t>(v1, 8, static_cast<std::uint32_t>(f.payload_len));
    set_le<std::uint64_t>(v1, 12, f.stream_id);
    set_le<std::uint64_t>(v1, 20, f.version);
    set_le<std::uint64_t>(v1, 28, f.back == 0 ? 0 : p - f.back);
    v1.replace(36, 16, f.id);
    set_le<std::int64_t>(v1, 52, originals[p - 1].time);
    v1 += f.rest.substr(0, f.rest.size() - 4);
    overwrite(p, v1);
  }
  {
    varve_test::raw_env env(opts.directory);
    env.put("meta", "format_version", varve_test::le32(1));
    env.remove_indexes();
  }
  auto store = open_store(opts);
  auto log = store->read_log();
  VARVE_REQUIRE_OK(log);
  BOOST_REQUIRE_EQUAL(log->size(), events_in_store);
  BOOST_TEST((*log)[damaged - 1].payload == originals[damaged - 1].payload);
  BOOST_TEST((*log)[damaged - 1].time == originals[damaged - 1].time);
  // Opening built the indexes of the old records.
  auto typed = store->read_query(query::of_types({"corrupt-me"}));
  VARVE_REQUIRE_OK(typed);
  BOOST_TEST(typed->size() == events_in_store);
  auto report = store->verify();
  VARVE_REQUIRE_OK(report);
  BOOST_TEST(report->faults_total == 0u);
  store.reset();
  {  // Building them made it a store of format 4, which older builds refuse.
    varve_test::raw_env env(opts.directory);
    BOOST_TEST(*env.get("meta", "format_version") == varve_test::le32(4));
    BOOST_TEST(env.get_event(1)->at(0) == 1);  // the old records stay as they were
  }
  // New events are written in format 3, after the old ones.
  store = open_store(opts);
  auto next = store->append("s", expected_version::any(), {{make_event("after", "x")}});
  VARVE_REQUIRE_OK(next);
  store.reset();
  varve_test::raw_env env(opts.directory);
  BOOST_TEST(env.get_event(events_in_store + 1)->at(0) == 3);
  BOOST_TEST(*env.get("meta", "format_version") == varve_test::le32(4));
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

BOOST_AUTO_TEST_CASE(records_of_every_length_carry_the_documented_checksum) {
  // The store computes CRC32C one way for records under 256 bytes and
  // another for longer ones; both must give FORMAT.md's checksum, which a
  // second implementation (Boost.CRC) computes here, and read back.
  temp_dir dir;
  const options opts = test_options(dir / "store");
  constexpr std::size_t sizes = 600;  // records of ~40 to ~640 bytes
  {
    auto store = open_store(opts);
    std::vector<new_event> events;
    for (std::size_t n = 0; n < sizes; ++n)
      events.push_back(make_event("sized", std::string(n, static_cast<char>('a' + n % 26))));
    VARVE_REQUIRE_OK(store->append("s", expected_version::no_stream(), events));
  }
  std::size_t shortest = SIZE_MAX, longest = 0;
  {
    varve_test::raw_env env(opts.directory);
    for (global_position p = 1; p <= sizes; ++p) {
      const auto bytes = env.get_event(p);
      BOOST_REQUIRE(bytes.has_value());
      shortest = std::min(shortest, bytes->size());
      longest = std::max(longest, bytes->size());
      BOOST_TEST_CONTEXT("position " << p << ", " << bytes->size() << " bytes") {
        BOOST_TEST(get_le<std::uint32_t>(*bytes, bytes->size() - 4) ==
                   crc32c(p, std::string_view(*bytes).substr(0, bytes->size() - 4)));
      }
    }
  }
  BOOST_TEST(shortest < 200u);
  BOOST_TEST(longest > 300u);
  auto store = open_store(opts);
  auto log = store->read_log();
  VARVE_REQUIRE_OK(log);
  BOOST_REQUIRE_EQUAL(log->size(), sizes);
  for (std::size_t n = 0; n < sizes; ++n)
    BOOST_TEST(log->at(n).payload.size() == n);
}
