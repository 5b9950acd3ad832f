// Encryption at rest (private to varve::storage; the only place Botan is used).
//
// Each stream has a 256-bit data key from the operating system's generator,
// kept wrapped (RFC 3394) under the store's master key. Metadata and payload
// of an event are sealed together with AES-256-GCM:
//
//   sealed  := nonce:12 ciphertext(metadata || payload) tag:16
//   nonce   := prefix:u64 LE || counter:u32 LE
//   AD      := position:u64 LE || header:60 || type || stream name    (format 2 records)
//            | stream_id:u64 LE || version:u64 LE || position:u64 LE
//              || event_id:16 || type                                  (format 1 records)
//
// The prefix is drawn from the operating system's generator when a sealer
// seals its first event, again whenever its counter wraps, and again in a
// child made by fork(2) (which holds a copy of the sealer); the counter
// goes up by one at every seal. One sealer thus never repeats a nonce, and
// two sealers (two handles, processes, or copies of a store) share one only
// when they drew the same 64-bit prefix (storage/FORMAT.md gives the bound).
// Readers take the nonce from the record, whatever made it. The format 2
// associated data covers the whole record header (format, flags, lengths,
// stream, version, link, id, time) and the position.
//
// Key material and plaintexts live in key_bytes, zeroed when released. Not
// in Botan::secure_vector: that takes memory from Botan's locked pool, which
// Botan unmaps when the process exits, before a store held in a global or
// static is closed; key bytes released into it then crash the process. The
// ciphers a sealer keeps are Botan's objects, in that pool: a sealer
// destroyed after the pool is gone keeps them (the process is ending).
// No function here throws: Botan's exceptions become varve errors.
#pragma once

#include <botan/mem_ops.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "varve/storage/error.hpp"
#include "varve/storage/event.hpp"

namespace varve::crypto {

/// std::allocator that zeroes memory before it releases it.
template <class T>
struct scrubbing_allocator {
  using value_type = T;
  scrubbing_allocator() noexcept = default;
  template <class U>
  scrubbing_allocator(const scrubbing_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept {
    Botan::secure_scrub_memory(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const scrubbing_allocator<U>&) const noexcept {
    return true;
  }
};

using key_bytes = std::vector<std::uint8_t, scrubbing_allocator<std::uint8_t>>;

inline constexpr std::size_t key_size = 32;
inline constexpr std::size_t wrapped_key_size = 40;
inline constexpr std::size_t nonce_size = 12;
inline constexpr std::size_t tag_size = 16;
/// Bytes a sealed body adds to metadata + payload.
inline constexpr std::size_t seal_overhead = nonce_size + tag_size;

/// A fresh data key from the operating system's generator.
result<key_bytes> new_data_key();

/// Reads a master key file: 32 raw bytes, or 64 hex digits (a trailing
/// newline is fine). Refuses a file readable or writable by group or others.
result<key_bytes> read_key_file(const std::string& path);

/// The master key of a store: wraps and unwraps data keys, and makes and
/// checks the value in `meta` that tells a wrong master key at open.
class master_key {
 public:
  explicit master_key(key_bytes key) : key_(std::move(key)) {}

  result<std::string> wrap(const key_bytes& data_key) const;
  /// Errors: auth_failed (tampered or wrapped under another key).
  result<key_bytes> unwrap(std::string_view wrapped) const;

  /// A check value: a known text sealed under the master key.
  result<std::string> make_check() const;
  bool check(std::string_view value) const;

 private:
  key_bytes key_;
};

/// Where an event sits: what its associated data binds. `head` holds the
/// record's 60 header bytes for a format 2 record (the associated data
/// covers them and the stream's name), and is empty for a format 1 record.
struct event_place {
  std::uint64_t stream_id;
  stream_version version;
  global_position position;
  const event_id& id;
  std::string_view type;
  std::string_view head = {};
  std::string_view stream_name = {};
};

/// Seals and opens event bodies. Keeps a bounded number of ciphers with their
/// keys set (the key schedule costs more than sealing a small event), each
/// used only with the key it was made from. Not thread-safe: one per writer
/// or per read transaction.
///
/// GCM is composed here from Botan's AES-256 and GHASH rather than taken
/// from Botan's GCM mode, which for a small event spent a third of its time
/// on work beyond the cipher (a 256-byte key stream per message, separate
/// GHASH passes for associated data, text and lengths); the result is the
/// same bytes (NIST SP 800-38D): equal to Botan's GCM output for every size
/// from 0 to 1200 bytes and for 1 MiB when it was written, and the tests open
/// a record that Botan's GCM sealed.
class sealer {
 public:
  sealer();
  ~sealer();

  /// Writes the next nonce this sealer makes (see above) into `out`
  /// (nonce_size bytes); draws a new prefix first when none is drawn yet,
  /// the counter wrapped, or the process is a fork(2) child of the one
  /// that drew it. Errors: io_error (the generator failed).
  result<void> next_nonce(char* out);

  /// Seals metadata || payload into `out` (seal_overhead + both sizes bytes).
  result<void> seal(const event_place& at, const key_bytes& key, std::string_view metadata,
                    std::string_view payload, char* out);

  /// Opens a sealed body into `plain` (metadata || payload).
  /// Errors: auth_failed (the bytes or their place were tampered with).
  result<void> open(const event_place& at, const key_bytes& key, std::string_view sealed,
                    key_bytes& plain);

  /// Forgets the cipher of a stream (after shredding it, or when its key
  /// was made by a transaction that did not commit).
  void forget(std::uint64_t stream_id);

  /// AES-256-GCM with a 12-byte nonce and a 16-byte tag under one key, made
  /// of Botan's AES-256 and GHASH (crypto.cpp).
  struct gcm;

 private:
  gcm* cipher_for(std::uint64_t stream_id, const key_bytes& key);

  std::unordered_map<std::uint64_t, std::unique_ptr<gcm>> ciphers_;
  std::uint64_t last_id_ = 0;  // the stream of the last cipher used, in last_
  gcm* last_ = nullptr;
  std::uint64_t prefix_ = 0;
  std::uint32_t counter_ = 0;
  bool prefix_drawn_ = false;
  unsigned drawn_after_ = 0;  // forks_made() when the prefix was drawn
  key_bytes buffer_;
};

/// Unwrapped data keys shared by the readers of a store, bounded in number,
/// each kept with the wrapped key it came from: a key is found only by the
/// wrapped bytes the caller read in its own transaction, so a key shredded
/// or re-wrapped by another process is never used from the cache. A key
/// leaves memory (zeroed) when evicted and no transaction holds it.
/// Thread-safe.
class key_cache {
 public:
  explicit key_cache(std::size_t capacity) : capacity_(capacity) {}

  /// The key unwrapped from `wrapped` for this stream, or nullptr.
  std::shared_ptr<const key_bytes> find(std::uint64_t stream_id, std::string_view wrapped) const;
  void put(std::uint64_t stream_id, std::string_view wrapped, std::shared_ptr<const key_bytes> key);
  void erase(std::uint64_t stream_id);
  void clear();

 private:
  struct entry {
    std::string wrapped;
    std::shared_ptr<const key_bytes> key;
  };
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, entry> keys_;
};

}  // namespace varve::crypto
