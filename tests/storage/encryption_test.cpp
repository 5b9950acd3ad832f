// Encryption at rest and shredding: what is sealed, what authenticates, the
// master key at open, key files, shredding and key rotation.
#define BOOST_TEST_MODULE encryption
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <botan/aead.h>
#include <botan/rfc3394.h>
#include <botan/symkey.h>

#include <lmdb.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <varve/storage/testing.hpp>

#include "crypto.hpp"
#include "forks.hpp"
#include "raw_lmdb.hpp"
#include "temp_dir.hpp"

using namespace varve;
using varve_test::make_event;
using varve_test::temp_dir;

namespace {

constexpr std::string_view marker = "PLAINTEXT-MARKER-7f3a";

std::array<std::uint8_t, 32> key_of(std::uint8_t seed) {
  std::array<std::uint8_t, 32> k{};
  for (std::size_t i = 0; i < k.size(); ++i)
    k[i] = static_cast<std::uint8_t>(seed * 31 + i);
  return k;
}

struct encrypted_fixture {
  temp_dir dir;
  options opts;
  std::unique_ptr<event_store> store;

  encrypted_fixture() {
    opts = varve_test::test_options(dir / "store");
    opts.master_key = key_of(1);
    store = varve_test::open_store(opts);
    BOOST_REQUIRE(store->encrypted());
  }

  result<std::unique_ptr<event_store>> reopen(std::optional<std::array<std::uint8_t, 32>> key) {
    store.reset();
    options o = opts;
    o.master_key = key;
    return event_store::open(o);
  }

  std::string data_file() const {
    std::ifstream in(dir / "store" / "data.mdb", std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
};

void append_marked(event_store& store, const std::string& stream, int n) {
  for (int i = 0; i < n; ++i) {
    auto r =
        store.append(stream, expected_version::any(),
                     {{make_event("noted", std::string(marker) + "-payload-" + std::to_string(i),
                                  std::string(marker) + "-metadata")}});
    BOOST_REQUIRE_MESSAGE(r.ok(), varve_test::describe(r));
  }
}

/// Bytes from lower-case hex digits.
std::string unhex(std::string_view hex) {
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<char>(std::stoi(std::string(hex.substr(2 * i, 2)), nullptr, 16));
  return out;
}

/// The nonce of the sealed record at `position` (type "noted": the body
/// starts after the 60-byte header and 5 bytes of type).
std::string nonce_at(varve_test::raw_env& raw, std::uint64_t position) {
  auto record = raw.get_event(position);
  BOOST_REQUIRE(record);
  const std::size_t body = varve_test::layout_of(*record).body();
  BOOST_REQUIRE(record->size() >= body + 12);
  return record->substr(body, 12);
}

std::uint64_t le_at(const std::string& bytes, std::size_t offset, std::size_t size) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < size; ++i)
    v |= std::uint64_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  return v;
}

/// Replaces the wrapped data key of stream id `id` (raw LMDB, store closed).
void put_wrapped_key(const std::filesystem::path& dir, std::uint64_t id, std::string_view wrapped) {
  MDB_env* env = nullptr;
  BOOST_REQUIRE_EQUAL(mdb_env_create(&env), 0);
  BOOST_REQUIRE_EQUAL(mdb_env_set_maxdbs(env, 32), 0);
  BOOST_REQUIRE_EQUAL(mdb_env_open(env, dir.c_str(), 0, 0600), 0);
  MDB_txn* txn = nullptr;
  BOOST_REQUIRE_EQUAL(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi dbi = 0;
  BOOST_REQUIRE_EQUAL(mdb_dbi_open(txn, "keys", MDB_INTEGERKEY, &dbi), 0);
  MDB_val k{sizeof id, &id}, v{wrapped.size(), const_cast<char*>(wrapped.data())};
  BOOST_REQUIRE_EQUAL(mdb_put(txn, dbi, &k, &v, 0), 0);
  BOOST_REQUIRE_EQUAL(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

/// Runs `work` in a child process (fork): what another process does to the
/// store while this one keeps it open. Returns whether `work` returned true.
bool in_another_process(const std::function<bool()>& work) {
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(work() ? 0 : 1);
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/// Bytes of `s` with the u32 at `at` set to `v` (little-endian).
void put_le32(std::string& s, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

void write_key_file(const std::filesystem::path& path, std::string_view content, mode_t mode) {
  {
    std::ofstream out(path, std::ios::binary);
    out << content;
  }
  BOOST_REQUIRE_EQUAL(::chmod(path.c_str(), mode), 0);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(encrypted, encrypted_fixture)

BOOST_AUTO_TEST_CASE(events_round_trip_and_the_data_file_holds_no_plaintext) {
  append_marked(*store, "profile-1", 20);
  auto events = store->read_stream("profile-1");
  BOOST_REQUIRE(events.ok());
  BOOST_REQUIRE_EQUAL(events->size(), 20u);
  BOOST_CHECK_EQUAL((*events)[3].payload, std::string(marker) + "-payload-3");
  BOOST_CHECK_EQUAL((*events)[3].metadata, std::string(marker) + "-metadata");
  BOOST_CHECK_EQUAL((*events)[3].type, "noted");  // types stay in clear
  store.reset();
  BOOST_CHECK(data_file().find(marker) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_plain_store_holds_the_same_marker_in_clear) {
  temp_dir plain_dir;
  auto plain = varve_test::open_store(varve_test::test_options(plain_dir / "store"));
  BOOST_CHECK(!plain->encrypted());
  append_marked(*plain, "profile-1", 1);
  plain.reset();
  std::ifstream in(plain_dir / "store" / "data.mdb", std::ios::binary);
  std::string bytes{std::istreambuf_iterator<char>(in), {}};
  BOOST_CHECK(bytes.find(marker) != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_large_payload_is_sealed_like_a_small_one) {
  std::string big(1 << 20, 'z');
  big.replace(1000, marker.size(), marker);
  BOOST_REQUIRE(
      store->append("big", expected_version::no_stream(), {{make_event("blob", big)}}).ok());
  auto back = store->read_stream("big");
  BOOST_REQUIRE(back.ok());
  BOOST_CHECK((*back)[0].payload == big);
  store.reset();
  BOOST_CHECK(data_file().find(marker) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_flipped_ciphertext_byte_fails_authentication) {
  append_marked(*store, "s", 3);
  store.reset();
  {
    varve_test::raw_env raw(dir / "store");
    auto record = raw.get_event(2);
    BOOST_REQUIRE(record);
    (*record)[record->size() - 20] ^= 0x01;
    raw.put_event(2, *record);
  }
  auto reopened = reopen(key_of(1));
  BOOST_REQUIRE(reopened.ok());
  auto txn = (*reopened)->read();
  auto bad = txn->event_at(2);
  BOOST_REQUIRE(!bad.ok());
  BOOST_CHECK_EQUAL(bad.err().code(), errc::auth_failed);
  BOOST_CHECK(txn->event_at(1).ok());
  BOOST_CHECK(txn->event_at(3).ok());
  auto scan = txn->read_log(1, direction::forward, 10);
  BOOST_CHECK(!scan.ok() && scan.err().code() == errc::auth_failed);
}

BOOST_AUTO_TEST_CASE(swapped_records_both_fail_authentication) {
  append_marked(*store, "s", 2);
  store.reset();
  {
    varve_test::raw_env raw(dir / "store");
    auto one = raw.get_event(1), two = raw.get_event(2);
    BOOST_REQUIRE(one && two);
    // Swap the sealed bodies, keeping each record's header: the ciphertext
    // now sits at another place than the one its associated data names.
    std::string a = *one, b = *two;
    const std::size_t body_a = varve_test::layout_of(a).body();  // head, "noted", tags
    const std::size_t body_b = varve_test::layout_of(b).body();
    a.replace(body_a, std::string::npos, two->substr(body_b));
    b.replace(body_b, std::string::npos, one->substr(body_a));
    raw.put_event(1, a);
    raw.put_event(2, b);
  }
  auto reopened = reopen(key_of(1));
  BOOST_REQUIRE(reopened.ok());
  auto txn = (*reopened)->read();
  BOOST_CHECK_EQUAL(txn->event_at(1).err().code(), errc::auth_failed);
  BOOST_CHECK_EQUAL(txn->event_at(2).err().code(), errc::auth_failed);
}

BOOST_AUTO_TEST_CASE(a_wrong_key_is_refused_at_open_and_nothing_is_written) {
  append_marked(*store, "s", 1);
  store.reset();
  const std::string before = data_file();
  auto wrong = reopen(key_of(2));
  BOOST_REQUIRE(!wrong.ok());
  BOOST_CHECK_EQUAL(wrong.err().code(), errc::auth_failed);
  BOOST_CHECK_EQUAL(wrong.err().message(), "wrong master key");
  BOOST_CHECK(data_file() == before);
}

BOOST_AUTO_TEST_CASE(an_encrypted_store_refuses_to_open_without_its_key) {
  store.reset();
  auto none = reopen(std::nullopt);
  BOOST_REQUIRE(!none.ok());
  BOOST_CHECK_EQUAL(none.err().code(), errc::auth_failed);
  BOOST_CHECK(none.err().message().find("encrypted") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(shredding_keeps_envelopes_refuses_appends_and_lasts) {
  append_marked(*store, "gone", 5);
  append_marked(*store, "kept", 5);
  const auto head = store->read()->head();
  BOOST_REQUIRE(store->shred("gone").ok());
  BOOST_CHECK(store->shred("gone").ok());  // again: nothing to do

  auto check = [&](event_store& s) {
    auto gone = s.read_stream("gone");
    BOOST_REQUIRE_MESSAGE(gone.ok(), varve_test::describe(gone));
    BOOST_REQUIRE_EQUAL(gone->size(), 5u);
    for (const auto& e : *gone) {
      BOOST_CHECK(e.shredded);
      BOOST_CHECK(e.payload.empty() && e.metadata.empty());
      BOOST_CHECK_EQUAL(e.type, "noted");
      BOOST_CHECK_EQUAL(e.stream, "gone");
    }
    auto all = s.read_log();
    BOOST_REQUIRE(all.ok());
    BOOST_CHECK_EQUAL(all->size(), head);
    int readable = 0;
    for (const auto& e : *all)
      readable += !e.shredded;
    BOOST_CHECK_EQUAL(readable, 5);
    auto refused = s.append("gone", expected_version::any(), {{make_event("noted", "again")}});
    BOOST_REQUIRE(!refused.ok());
    BOOST_CHECK_EQUAL(refused.err().code(), errc::shredded);
    auto info = s.read()->stream("gone");
    BOOST_CHECK((*info)->state == stream_state::shredded);
    BOOST_CHECK_EQUAL((*info)->version, 5u);
    BOOST_CHECK_EQUAL(s.read()->head(), head);
  };
  check(*store);
  auto reopened = reopen(key_of(1));
  BOOST_REQUIRE(reopened.ok());
  check(**reopened);
  reopened.value().reset();
  // Only the kept stream still has a data key.
  BOOST_CHECK_EQUAL(varve_test::raw_env(dir / "store").entries("keys"), 1u);
}

BOOST_AUTO_TEST_CASE(an_idempotent_reappend_works_on_an_encrypted_store) {
  auto events = varve_test::make_events(2, "enc");
  for (auto& e : events)
    e.id = event_id::generate();
  auto first = store->append("idem", expected_version::no_stream(), events);
  BOOST_REQUIRE_MESSAGE(first.ok(), varve_test::describe(first));
  for (auto expected : {expected_version::no_stream(), expected_version::any()}) {
    auto again = store->append("idem", expected, events);
    BOOST_REQUIRE_MESSAGE(again.ok(), varve_test::describe(again));
    BOOST_CHECK(again->idempotent);
    BOOST_CHECK_EQUAL(again->first_position, first->first_position);
  }
  BOOST_CHECK_EQUAL(store->read()->head(), 2u);
}

BOOST_AUTO_TEST_CASE(rotating_the_master_key_retires_the_old_one) {
  append_marked(*store, "a", 3);
  append_marked(*store, "b", 3);
  BOOST_REQUIRE(store->rotate_master_key(key_of(9)).ok());
  BOOST_CHECK(store->append("a", expected_version::exact(3), {{make_event("noted", "x")}}).ok());
  auto old_key = reopen(key_of(1));
  BOOST_REQUIRE(!old_key.ok());
  BOOST_CHECK_EQUAL(old_key.err().code(), errc::auth_failed);
  auto new_key = reopen(key_of(9));
  BOOST_REQUIRE_MESSAGE(new_key.ok(), varve_test::describe(new_key));
  auto a = (*new_key)->read_stream("a");
  BOOST_REQUIRE(a.ok());
  BOOST_CHECK_EQUAL(a->size(), 4u);
  BOOST_CHECK_EQUAL((*a)[0].payload, std::string(marker) + "-payload-0");
}

BOOST_AUTO_TEST_CASE(nonces_are_a_handle_prefix_and_a_counter_and_a_retry_gets_a_new_one) {
  append_marked(*store, "s", 1);
  // The commit of version 2 fails after its event was sealed; the retry
  // seals version 2 again and must not reuse that nonce.
  testing_fail_next_commit(*store, ENOSPC);
  auto failed = store->append("s", expected_version::exact(1), {{make_event("noted", "lost")}});
  BOOST_REQUIRE(!failed.ok());
  BOOST_CHECK_EQUAL(failed.err().code(), errc::storage_full);
  append_marked(*store, "s", 2);
  append_marked(*store, "t", 1);  // another key: the sealer's counter goes on
  // A second handle (a restart, another process, a restored copy) draws a
  // prefix of its own.
  store = reopen(key_of(1)).value();
  append_marked(*store, "s", 1);
  store.reset();
  varve_test::raw_env raw(dir / "store");
  std::set<std::string> nonces;
  std::uint64_t prefixes[6] = {}, counters[6] = {};
  for (std::uint64_t p = 1; p <= 5; ++p) {
    const std::string n = nonce_at(raw, p);
    nonces.insert(n);
    prefixes[p] = le_at(n, 0, 8);
    counters[p] = le_at(n, 8, 4);
  }
  BOOST_CHECK_EQUAL(nonces.size(), 5u);
  for (std::uint64_t p = 2; p <= 4; ++p)
    BOOST_CHECK_EQUAL(prefixes[p], prefixes[1]);  // one handle, one prefix
  BOOST_CHECK_NE(prefixes[5], prefixes[1]);
  // version 1, (version 2 lost), version 2, version 3, then stream t.
  BOOST_CHECK_EQUAL(counters[1], 0u);
  BOOST_CHECK_EQUAL(counters[2], 2u);
  BOOST_CHECK_EQUAL(counters[3], 3u);
  BOOST_CHECK_EQUAL(counters[4], 4u);
  BOOST_CHECK_EQUAL(counters[5], 0u);
}

BOOST_AUTO_TEST_CASE(a_record_sealed_with_a_random_nonce_still_opens) {
  // Written by the earlier scheme (nonce = version || 4 random bytes) under
  // key_of(1): stream id 1, version 1, position 1, as stored then, with the
  // stream's data key as wrapped then.
  const std::string record = unhex(
      "010105000c000000210000000100000000000000010000000000000000000000000000000190a1b2c3d47e5f"
      "8a9b0c1d2e3f4a5b00401e18240a06006e6f7465640100000000000000e9c288f899b9a6f9ed016dd75bbe4e"
      "df9c4b3a92ba53b29220692f372a5d15d7ab2321837b36df372562984efd5f3414d0ea58ab83cb1a5582fc47"
      "190707d46eb6");
  const std::string wrapped =
      unhex("8c22734746b68fe077e8caba6940e0e4d982ba10c68d4d5b3a433cf13eac0f0a774400e7c95923d1");
  auto made = store->append("old-stream", expected_version::no_stream(),
                            {{make_event("noted", "a placeholder of the same size......")}});
  BOOST_REQUIRE_MESSAGE(made.ok(), varve_test::describe(made));
  store.reset();
  {
    varve_test::raw_env raw(dir / "store");
    raw.put_event(1, record);
  }
  put_wrapped_key(dir / "store", 1, wrapped);
  auto reopened = reopen(key_of(1));
  BOOST_REQUIRE_MESSAGE(reopened.ok(), varve_test::describe(reopened));
  auto events = (*reopened)->read_stream("old-stream");
  BOOST_REQUIRE_MESSAGE(events.ok(), varve_test::describe(events));
  BOOST_REQUIRE_EQUAL(events->size(), 1u);
  BOOST_CHECK_EQUAL((*events)[0].payload, "sealed-by-the-random-nonce-scheme");
  BOOST_CHECK_EQUAL((*events)[0].metadata, "old-metadata");
  BOOST_CHECK_EQUAL((*events)[0].id.to_string(), "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
  // And appending after it seals with the new scheme, both readable.
  BOOST_REQUIRE((*reopened)
                    ->append("old-stream", expected_version::exact(1),
                             {{make_event("noted", "sealed-by-the-counter-scheme")}})
                    .ok());
  auto both = (*reopened)->read_stream("old-stream");
  BOOST_REQUIRE(both.ok() && both->size() == 2u);
  BOOST_CHECK_EQUAL((*both)[1].payload, "sealed-by-the-counter-scheme");
}

BOOST_AUTO_TEST_CASE(sealed_bodies_are_standard_aes_256_gcm) {
  // Each stored body, opened with Botan's own AES-256/GCM and the data key
  // unwrapped (RFC 3394) with Botan's own key unwrap: sizes around the
  // 16-byte block and the sealer's 32-block batches.
  const std::vector<std::size_t> sizes{0,   1,   15,  16,  17,  31,  32,   33,
                                       100, 255, 256, 511, 512, 513, 1000, 4099};
  std::vector<new_event> events;
  for (std::size_t n : sizes) {
    std::string payload(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
      payload[i] = static_cast<char>((i * 7 + n) & 0xff);
    events.push_back(make_event("noted", payload, n % 2 ? "meta-" + std::to_string(n) : ""));
  }
  BOOST_REQUIRE(store->append("gcm", expected_version::no_stream(), events).ok());
  auto stored = store->read_stream("gcm");
  BOOST_REQUIRE(stored.ok());
  BOOST_REQUIRE_EQUAL(stored->size(), sizes.size());
  store.reset();

  std::string wrapped;
  {
    MDB_env* env = nullptr;
    BOOST_REQUIRE_EQUAL(mdb_env_create(&env), 0);
    BOOST_REQUIRE_EQUAL(mdb_env_set_maxdbs(env, 32), 0);
    BOOST_REQUIRE_EQUAL(mdb_env_open(env, (dir / "store").c_str(), MDB_RDONLY, 0600), 0);
    MDB_txn* txn = nullptr;
    BOOST_REQUIRE_EQUAL(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), 0);
    MDB_dbi dbi = 0;
    BOOST_REQUIRE_EQUAL(mdb_dbi_open(txn, "keys", MDB_INTEGERKEY, &dbi), 0);
    std::uint64_t id = 1;
    MDB_val k{sizeof id, &id}, v{};
    BOOST_REQUIRE_EQUAL(mdb_get(txn, dbi, &k, &v), 0);
    wrapped.assign(static_cast<const char*>(v.mv_data), v.mv_size);
    mdb_txn_abort(txn);
    mdb_env_close(env);
  }
  const auto master = key_of(1);
  Botan::SymmetricKey kek(master.data(), master.size());
  const auto data_key = Botan::rfc3394_keyunwrap(
      Botan::secure_vector<std::uint8_t>(wrapped.begin(), wrapped.end()), kek);
  BOOST_REQUIRE_EQUAL(data_key.size(), 32u);

  varve_test::raw_env raw(dir / "store");
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const recorded_event& e = (*stored)[i];
    auto record = raw.get_event(e.position);
    BOOST_REQUIRE(record);
    const std::size_t body = varve_test::layout_of(*record).body();
    const std::string sealed = record->substr(body);  // after head, "noted" and tags
    // FORMAT.md: AD = position:u64 LE || head || type || tags || stream name.
    std::string ad(8, '\0');
    for (int b = 0; b < 8; ++b)
      ad[b] = static_cast<char>((e.position >> (8 * b)) & 0xff);
    ad += record->substr(0, body);
    ad += "gcm";
    auto gcm = Botan::AEAD_Mode::create_or_throw("AES-256/GCM", Botan::DECRYPTION);
    gcm->set_key(data_key);
    gcm->set_associated_data(reinterpret_cast<const std::uint8_t*>(ad.data()), ad.size());
    gcm->start(reinterpret_cast<const std::uint8_t*>(sealed.data()), 12);
    Botan::secure_vector<std::uint8_t> text(sealed.begin() + 12, sealed.end());
    BOOST_REQUIRE_NO_THROW(gcm->finish(text));
    BOOST_CHECK_EQUAL(std::string(text.begin(), text.end()), e.metadata + e.payload);
  }
}

BOOST_AUTO_TEST_SUITE_END()

/// The nonces a sealer makes around a fork: its last before it, then the
/// first the parent and the child each make after it. `fork_call` makes the
/// child; `notice` runs in both processes before they seal (the check a
/// write transaction makes as it begins).
struct nonces_around_fork {
  std::string before, parent, child;
};
nonces_around_fork seal_around_fork(crypto::sealer& sealer, pid_t (*fork_call)(),
                                    void (*notice)()) {
  nonces_around_fork out;
  char made[crypto::nonce_size];
  BOOST_REQUIRE(sealer.next_nonce(made).ok());
  out.before.assign(made, sizeof made);
  int fds[2];
  BOOST_REQUIRE(::pipe(fds) == 0);
  const pid_t pid = fork_call();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    notice();
    const bool ok = sealer.next_nonce(made).ok() &&
                    ::write(fds[1], made, sizeof made) == static_cast<ssize_t>(sizeof made);
    ::_exit(ok ? 0 : 1);
  }
  ::close(fds[1]);
  notice();
  BOOST_REQUIRE(sealer.next_nonce(made).ok());
  out.parent.assign(made, sizeof made);
  BOOST_REQUIRE_EQUAL(::read(fds[0], made, sizeof made), static_cast<ssize_t>(sizeof made));
  out.child.assign(made, sizeof made);
  ::close(fds[0]);
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
  BOOST_REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return out;
}

BOOST_AUTO_TEST_CASE(a_sealer_copied_into_a_forked_child_draws_a_new_nonce_prefix) {
  // A child made by fork(2) holds a copy of its parent's handles, sealer
  // and all: sealing with it must not repeat the nonces the parent makes
  // next (GCM with a repeated nonce gives away plaintext and the key's
  // authentication).
  crypto::sealer sealer;
  const auto n = seal_around_fork(sealer, &::fork, [] {});
  BOOST_CHECK_EQUAL(le_at(n.parent, 0, 8), le_at(n.before, 0, 8));
  BOOST_CHECK_NE(le_at(n.child, 0, 8), le_at(n.parent, 0, 8));
  BOOST_CHECK(n.child != n.parent);
}

BOOST_AUTO_TEST_CASE(a_sealer_in_a_child_of_a_raw_fork_draws_a_new_prefix_once_it_is_noticed) {
  // syscall(SYS_fork) runs no pthread_atfork handler; a write transaction
  // notices the new process as it begins (notice_unannounced_fork) before
  // it seals anything. In the parent the notice finds its own process: no
  // fork.
  crypto::sealer sealer;
  const auto n = seal_around_fork(
      sealer, [] { return static_cast<pid_t>(::syscall(SYS_fork)); },
      &detail::notice_unannounced_fork);
  BOOST_CHECK_EQUAL(le_at(n.parent, 0, 8), le_at(n.before, 0, 8));
  BOOST_CHECK_NE(le_at(n.child, 0, 8), le_at(n.parent, 0, 8));
}

BOOST_AUTO_TEST_CASE(a_key_given_to_a_plain_store_is_refused) {
  temp_dir dir;
  auto o = varve_test::test_options(dir / "store");
  BOOST_REQUIRE(varve_test::open_store(o)
                    ->append("s", expected_version::any(), {{make_event("t", "p")}})
                    .ok());
  o.master_key = key_of(3);
  auto with_key = event_store::open(o);
  VARVE_REQUIRE_ERRC(with_key, errc::invalid_argument);
  BOOST_TEST_MESSAGE(with_key.err().message());
  BOOST_CHECK(with_key.err().message().find("not encrypted") != std::string::npos);
  o.master_key.reset();
  auto without = varve_test::open_store(o);
  BOOST_CHECK(!without->encrypted());
  BOOST_CHECK_EQUAL(without->read_stream("s")->front().payload, "p");
  auto rotate = without->rotate_master_key(key_of(4));
  BOOST_CHECK(!rotate.ok() && rotate.err().code() == errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(shredding_a_plain_stream_erases_its_data) {
  temp_dir dir;
  auto store = varve_test::open_store(varve_test::test_options(dir / "store"));
  append_marked(*store, "plain", 3);
  BOOST_REQUIRE(store->shred("plain").ok());
  auto back = store->read_stream("plain");
  BOOST_REQUIRE(back.ok());
  for (const auto& e : *back)
    BOOST_CHECK(e.shredded && e.payload.empty() && e.metadata.empty());
  store.reset();
  varve_test::raw_env raw(dir / "store");
  for (std::uint64_t p = 1; p <= 3; ++p)
    BOOST_CHECK(raw.get_event(p)->find(marker) == std::string::npos);
  BOOST_CHECK(
      !event_store::open(varve_test::test_options(dir / "other")).value()->shred("missing").ok());
}

BOOST_AUTO_TEST_CASE(key_files_must_be_private_and_well_formed) {
  temp_dir dir;
  auto o = varve_test::test_options(dir / "store");
  const auto key_path = dir / "master.key";
  write_key_file(key_path, std::string(64, 'a') + "\n", 0644);
  o.key_file = key_path;
  auto loose = event_store::open(o);
  BOOST_REQUIRE(!loose.ok());
  BOOST_CHECK_EQUAL(loose.err().code(), errc::invalid_argument);
  BOOST_CHECK(loose.err().message().find("group or others") != std::string::npos);
  BOOST_CHECK(loose.err().message().find(std::string(64, 'a')) == std::string::npos);

  write_key_file(key_path, "too short", 0600);
  auto bad = event_store::open(o);
  BOOST_REQUIRE(!bad.ok());
  BOOST_CHECK_EQUAL(bad.err().code(), errc::invalid_argument);

  write_key_file(key_path, std::string(64, 'a') + "\n", 0600);  // hex form
  {
    auto good = event_store::open(o);
    BOOST_REQUIRE_MESSAGE(good.ok(), varve_test::describe(good));
    BOOST_CHECK((*good)->encrypted());
  }
  std::array<std::uint8_t, 32> same{};
  same.fill(0xaa);
  write_key_file(key_path, std::string(reinterpret_cast<const char*>(same.data()), 32), 0600);
  BOOST_CHECK(event_store::open(o).ok());  // raw form of the same key

  o.key_file.clear();
  o.master_key = same;
  BOOST_CHECK(event_store::open(o).ok());
  o.key_file = key_path;
  auto both = event_store::open(o);
  BOOST_CHECK(!both.ok() && both.err().code() == errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(streams_created_by_a_batch_that_grew_the_map_read_back) {
  // A 1 MiB map fills while batches create streams: the transaction that
  // hits the limit is aborted, the map grows and the batch runs again with
  // fresh data keys. Every acknowledged event must open afterwards.
  temp_dir small_dir;
  options o = varve_test::test_options(small_dir / "store");
  o.map_size = std::uint64_t{1} << 20;
  o.master_key = key_of(7);
  auto small = varve_test::open_store(o);
  const std::string payload(3000, 'p');
  for (int s = 0; s < 40; ++s) {
    std::vector<new_event> events;
    for (int i = 0; i < 20; ++i)
      events.push_back(make_event("filled", payload + std::to_string(i)));
    auto r = small->append("grown-" + std::to_string(s), expected_version::no_stream(), events);
    BOOST_REQUIRE_MESSAGE(r.ok(), varve_test::describe(r));
  }
  auto check_all = [&](event_store& st) {
    for (int s = 0; s < 40; ++s) {
      auto events = st.read_stream("grown-" + std::to_string(s));
      BOOST_REQUIRE_MESSAGE(events.ok(), "grown-" << s << ": " << varve_test::describe(events));
      BOOST_REQUIRE_EQUAL(events->size(), 20u);
      BOOST_CHECK_EQUAL((*events)[19].payload, payload + "19");
    }
    auto report = st.verify();
    BOOST_REQUIRE(report.ok());
    BOOST_CHECK_EQUAL(report->faults_total, 0u);
  };
  check_all(*small);
  small.reset();
  auto reopened = varve_test::open_store(o);
  check_all(*reopened);
}

BOOST_AUTO_TEST_CASE(a_store_with_any_encryption_marker_is_encrypted) {
  // Without its key check, or without both the key check and the cipher
  // name, a store that holds data keys is still encrypted: it never opens
  // as a plain store that would append in clear.
  temp_dir d;
  options o = varve_test::test_options(d / "store");
  o.master_key = key_of(5);
  append_marked(*varve_test::open_store(o), "secret", 2);
  {
    varve_test::raw_env raw(o.directory);
    MDB_txn* txn = nullptr;
    BOOST_REQUIRE_EQUAL(mdb_txn_begin(raw.get(), nullptr, 0, &txn), 0);
    MDB_dbi meta = 0;
    BOOST_REQUIRE_EQUAL(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    for (const char* name : {"key_check", "cipher"}) {
      MDB_val k{std::strlen(name), const_cast<char*>(name)};
      BOOST_REQUIRE_EQUAL(mdb_del(txn, meta, &k, nullptr), 0);
    }
    BOOST_REQUIRE_EQUAL(mdb_txn_commit(txn), 0);
  }
  options no_key = o;
  no_key.master_key.reset();
  auto plain = event_store::open(no_key);
  VARVE_REQUIRE_ERRC(plain, errc::auth_failed);
  options wrong = o;
  wrong.master_key = key_of(6);
  VARVE_CHECK_ERRC(event_store::open(wrong), errc::auth_failed);  // the data keys tell
  auto store = varve_test::open_store(o);
  BOOST_CHECK(store->encrypted());
  append_marked(*store, "secret", 1);
  append_marked(*store, "new", 1);
  auto events = store->read_stream("secret");
  VARVE_REQUIRE_OK(events);
  BOOST_CHECK_EQUAL(events->size(), 3u);
  store.reset();
  std::ifstream in(d / "store" / "data.mdb", std::ios::binary);
  const std::string file{std::istreambuf_iterator<char>(in), {}};
  BOOST_CHECK(file.find(marker) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_plain_handle_never_appends_in_clear_to_a_stream_with_a_key) {
  // Another process gives stream 1 of a plain store a data key after this
  // handle opened it (as an older build could): this handle must not add
  // unsealed records to that stream.
  temp_dir d;
  options o = varve_test::test_options(d / "store");
  auto store = varve_test::open_store(o);
  append_marked(*store, "s", 1);
  BOOST_REQUIRE(in_another_process([&] {
    MDB_env* env = nullptr;
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 32) ||
        mdb_env_open(env, o.directory.c_str(), 0, 0600))
      return false;
    MDB_txn* txn = nullptr;
    MDB_dbi keys = 0;
    std::uint64_t id = 1;
    std::string wrapped(40, 'k');
    MDB_val k{sizeof id, &id}, v{wrapped.size(), wrapped.data()};
    bool ok = mdb_txn_begin(env, nullptr, 0, &txn) == 0 &&
              mdb_dbi_open(txn, "keys", MDB_INTEGERKEY, &keys) == 0 &&
              mdb_put(txn, keys, &k, &v, 0) == 0 && mdb_txn_commit(txn) == 0;
    mdb_env_close(env);
    return ok;
  }));
  auto r = store->append("s", expected_version::any(), {{make_event("noted", "in clear")}});
  VARVE_REQUIRE_ERRC(r, errc::corruption);
  BOOST_TEST_MESSAGE(r.err().message());
  BOOST_CHECK_EQUAL(store->read()->head(), 1u);
}

BOOST_FIXTURE_TEST_SUITE(encrypted, encrypted_fixture)

BOOST_AUTO_TEST_CASE(an_unsealed_record_in_an_encrypted_store_does_not_authenticate) {
  append_marked(*store, "s", 3);
  store.reset();
  {
    // Clear the sealed flag and put chosen bytes in place of the sealed
    // body, with a correct checksum: a forgery by someone without the key.
    varve_test::raw_env raw(dir / "store");
    std::string rec = *raw.get_event(2);
    const std::string forged = "forged-payload";
    const auto l = varve_test::layout_of(rec);
    std::string plain = rec.substr(0, l.body());
    plain[1] = 0;
    BOOST_REQUIRE(forged.size() < 128 && l.metadata < 128 && l.payload < 128);  // 1-byte varints
    plain[l.metadata_len_at] = 0;
    plain[l.payload_len_at] = static_cast<char>(forged.size());
    plain += forged;
    std::string sum(4, '\0');
    put_le32(sum, 0, varve_test::record_checksum(2, plain));
    plain += sum;
    raw.put_event(2, plain);
  }
  auto reopened = reopen(key_of(1));
  VARVE_REQUIRE_OK(reopened);
  auto tx = (*reopened)->read();
  VARVE_REQUIRE_OK(tx);
  auto e = tx->event_at(2);
  VARVE_REQUIRE_ERRC(e, errc::auth_failed);
  VARVE_CHECK_ERRC((*reopened)->read_stream("s"), errc::auth_failed);
  auto report = (*reopened)->verify();
  VARVE_REQUIRE_OK(report);
  BOOST_CHECK_EQUAL(report->faults_total, 1u);
  BOOST_TEST_MESSAGE(report->faults.at(0));
}

BOOST_AUTO_TEST_CASE(every_header_field_is_bound_into_the_associated_data) {
  std::vector<new_event> events = {make_event("noted", "payload-bytes", "metadata-bytes")};
  BOOST_REQUIRE(store->append("s", expected_version::no_stream(), events).ok());
  store.reset();
  std::string original;
  {
    varve_test::raw_env raw(dir / "store");
    original = *raw.get_event(1);
  }
  auto try_change = [&](const std::string& what, std::string changed) {
    BOOST_TEST_CONTEXT(what) {
      {
        varve_test::raw_env raw(dir / "store");
        raw.put_event(1, changed);
      }
      auto st = reopen(key_of(1));
      VARVE_REQUIRE_OK(st);
      VARVE_CHECK_ERRC((*st)->read_stream("s"), errc::auth_failed);
      auto report = (*st)->verify();
      VARVE_REQUIRE_OK(report);
      BOOST_CHECK_EQUAL(report->faults_total, 1u);
      st->reset();
      varve_test::raw_env raw(dir / "store");
      raw.put_event(1, original);
    }
  };
  const auto l = varve_test::layout_of(original);
  std::string moved = original;  // 5 bytes of metadata become payload
  BOOST_REQUIRE_EQUAL(l.metadata, 14u);
  BOOST_REQUIRE_EQUAL(l.payload, 13u);
  moved[l.metadata_len_at] = 14 - 5;
  moved[l.payload_len_at] = 13 + 5;
  try_change("metadata length", moved);
  std::string later = original;
  later[l.time_at] = static_cast<char>(later[l.time_at] ^ 2);  // the time, 1 ms later or earlier
  try_change("time", later);
  std::string event_id = original;
  event_id[l.id_at + 4] = static_cast<char>(event_id[l.id_at + 4] ^ 1);
  try_change("event id", event_id);
  auto back = reopen(key_of(1));
  VARVE_REQUIRE_OK(back);
  VARVE_CHECK_OK((*back)->read_stream("s"));  // the original still opens
}

BOOST_AUTO_TEST_CASE(a_shred_by_another_process_is_seen_by_a_running_reader) {
  append_marked(*store, "customer", 2);
  {
    auto before = store->read_stream("customer");  // the key is now cached here
    VARVE_REQUIRE_OK(before);
    BOOST_CHECK(!before->front().shredded);
  }
  BOOST_REQUIRE(in_another_process([&] {
    auto other = event_store::open(opts);
    return other.ok() && (*other)->shred("customer").ok();
  }));
  auto after = store->read_stream("customer");
  VARVE_REQUIRE_OK(after);
  for (const auto& e : *after) {
    BOOST_CHECK(e.shredded);
    BOOST_CHECK(e.payload.empty());
  }
  auto again = store->append("customer", expected_version::any(), {{make_event("noted", "x")}});
  VARVE_CHECK_ERRC(again, errc::shredded);
}

BOOST_AUTO_TEST_CASE(a_key_rotated_by_another_process_stops_new_streams_here) {
  append_marked(*store, "old", 1);
  BOOST_REQUIRE(in_another_process([&] {
    auto other = event_store::open(opts);
    return other.ok() && (*other)->rotate_master_key(key_of(9)).ok();
  }));
  // This handle still holds key_of(1): a data key it wrapped now would not
  // unwrap under the store's new master key.
  auto r = store->append("new-stream", expected_version::no_stream(), {{make_event("noted", "x")}});
  VARVE_REQUIRE_ERRC(r, errc::auth_failed);
  BOOST_TEST_MESSAGE(r.err().message());
  BOOST_CHECK(r.err().message().find("another process") != std::string::npos);
  VARVE_CHECK_ERRC(store->rotate_master_key(key_of(10)), errc::auth_failed);
  auto rotated = reopen(key_of(9));
  VARVE_REQUIRE_OK(rotated);
  BOOST_CHECK((*rotated)->read_stream("old").ok());
  auto report = (*rotated)->verify();
  VARVE_REQUIRE_OK(report);
  BOOST_CHECK_EQUAL(report->faults_total, 0u);
  BOOST_CHECK(!(*rotated)->read()->stream("new-stream").value());
}

BOOST_AUTO_TEST_CASE(events_served_under_another_stream_name_do_not_authenticate) {
  // Without the key, swap what two names point at (both name tables): each
  // stream would then serve the other's events. The associated data binds
  // the stream's name, so neither authenticates.
  append_marked(*store, "acct-1", 2);
  append_marked(*store, "acct-2", 2);
  store.reset();
  {
    varve_test::raw_env raw(dir / "store");
    const std::string id1 = *raw.get("stream_names", "acct-1");
    const std::string id2 = *raw.get("stream_names", "acct-2");
    raw.put("stream_names", "acct-1", id2);
    raw.put("stream_names", "acct-2", id1);
    MDB_txn* txn = nullptr;
    BOOST_REQUIRE_EQUAL(mdb_txn_begin(raw.get(), nullptr, 0, &txn), 0);
    MDB_dbi ids = 0;
    BOOST_REQUIRE_EQUAL(mdb_dbi_open(txn, "stream_ids", MDB_INTEGERKEY, &ids), 0);
    for (const auto& [id, name] : {std::pair{id1, "acct-2"}, std::pair{id2, "acct-1"}}) {
      MDB_val k{id.size(), const_cast<char*>(id.data())},
          v{std::strlen(name), const_cast<char*>(name)};
      BOOST_REQUIRE_EQUAL(mdb_put(txn, ids, &k, &v, 0), 0);
    }
    BOOST_REQUIRE_EQUAL(mdb_txn_commit(txn), 0);
  }
  auto swapped = reopen(key_of(1));
  VARVE_REQUIRE_OK(swapped);
  VARVE_CHECK_ERRC((*swapped)->read_stream("acct-1"), errc::auth_failed);
  VARVE_CHECK_ERRC((*swapped)->read_log(), errc::auth_failed);
  auto report = (*swapped)->verify();
  VARVE_REQUIRE_OK(report);
  BOOST_CHECK_EQUAL(report->faults_total, 4u);
}

BOOST_AUTO_TEST_CASE(reads_after_another_process_rotated_the_key_say_so) {
  append_marked(*store, "s", 1);
  BOOST_REQUIRE(in_another_process([&] {
    auto other = event_store::open(opts);
    return other.ok() && (*other)->rotate_master_key(key_of(9)).ok();
  }));
  auto read = store->read_stream("s");
  VARVE_REQUIRE_ERRC(read, errc::auth_failed);
  BOOST_TEST_MESSAGE(read.err().message());
  BOOST_CHECK(read.err().message().find("another process") != std::string::npos);
  auto append = store->append("s", expected_version::any(), {{make_event("noted", "x")}});
  VARVE_REQUIRE_ERRC(append, errc::auth_failed);
  BOOST_CHECK(append.err().message().find("another process") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(two_processes_creating_one_store_agree_on_its_encryption) {
  // Two processes open a fresh directory at the same moment, one with key
  // 1, the other with key 2 (or with none). Exactly one creates the store;
  // the other opens what it made, or is refused: never a plain handle on an
  // encrypted store, never a false "corruption", never an append in clear.
  for (int round = 0; round < 30; ++round) {
    temp_dir d;
    options o = varve_test::test_options(d / "store");
    int go[2];
    BOOST_REQUIRE_EQUAL(::pipe(go), 0);
    std::vector<pid_t> pids;
    for (int child = 0; child < 2; ++child) {
      const pid_t pid = ::fork();
      BOOST_REQUIRE(pid >= 0);
      if (pid == 0) {
        char c = 0;
        (void)!::read(go[0], &c, 1);  // both start together
        options mine = o;
        if (child == 0 || round % 2 == 0) mine.master_key = key_of(child == 0 ? 1 : 2);
        auto store = event_store::open(mine);
        if (!store)  // 3: refused as it should be
          ::_exit(store.err().code() == errc::auth_failed ||
                          store.err().code() == errc::invalid_argument
                      ? 3
                      : 2);
        if ((*store)->encrypted() != mine.master_key.has_value()) ::_exit(4);
        append_marked(**store, "child-" + std::to_string(child), 1);
        ::_exit(0);
      }
      pids.push_back(pid);
    }
    BOOST_REQUIRE_EQUAL(::write(go[1], "gg", 2), 2);
    int codes[2] = {};
    for (int child = 0; child < 2; ++child) {
      int status = 0;
      BOOST_REQUIRE_EQUAL(::waitpid(pids[child], &status, 0), pids[child]);
      codes[child] = WIFEXITED(status) ? WEXITSTATUS(status) : 100;
    }
    ::close(go[0]);
    ::close(go[1]);
    BOOST_TEST_CONTEXT("round " << round) {
      for (int c : codes)
        BOOST_CHECK(c == 0 || c == 3);
      BOOST_CHECK((codes[0] == 0) != (codes[1] == 0));  // exactly one of them has the store
      // Whoever succeeded, the store reads back whole under its one key.
      std::optional<std::array<std::uint8_t, 32>> winner;
      if (codes[0] == 0) winner = key_of(1);
      if (codes[1] == 0 && round % 2 == 0) winner = key_of(2);
      options again = o;
      again.master_key = winner;
      auto store = event_store::open(again);
      VARVE_REQUIRE_OK(store);
      auto log = (*store)->read_log();
      VARVE_REQUIRE_OK(log);
      BOOST_CHECK_EQUAL(log->size(), std::size_t(codes[0] == 0) + std::size_t(codes[1] == 0));
    }
  }
}
