// Botan 2 marks ghash.h as "to become internal" with a compiler warning; GHASH
// is public API in 2.x and is what GCM is made of here.
#define BOTAN_NO_DEPRECATED_WARNINGS 1

#include "crypto.hpp"

#include <botan/aead.h>
#include <botan/block_cipher.h>
#include <botan/exceptn.h>
#include <botan/ghash.h>
#include <botan/hex.h>
#include <botan/mem_ops.h>
#include <botan/rfc3394.h>
#include <botan/system_rng.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bytes.hpp"
#include "forks.hpp"

namespace varve::crypto {

namespace {

constexpr std::string_view check_text = "varve master key check";
constexpr std::string_view check_ad = "varve/meta/key_check";

/// Whether the `size` bytes at `a` and `b` are equal, in a time that
/// depends on `size` only: eight bytes at a time, no early exit. Botan's
/// constant_time_compare goes a byte at a time through a volatile, which
/// took about 1,000 instructions for a 32-byte key: more than decrypting
/// a 100-byte event.
bool equal_in_constant_time(const std::uint8_t* a, const std::uint8_t* b, std::size_t size) {
  std::uint64_t diff = 0;
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    diff |= x ^ y;
  }
  for (; i < size; ++i)
    diff |= static_cast<std::uint64_t>(a[i] ^ b[i]);
  return diff == 0;
}

/// out = a XOR b over `size` bytes, eight at a time (GCC 12 at -O2 XORs a
/// byte loop a byte at a time: about 1,000 instructions for an event of
/// 100 bytes). `out` may be `a`.
void xor_into(std::uint8_t* out, const std::uint8_t* a, const std::uint8_t* b, std::size_t size) {
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    x ^= y;
    std::memcpy(out + i, &x, 8);
  }
  for (; i < size; ++i)
    out[i] = a[i] ^ b[i];
}

std::unique_ptr<Botan::AEAD_Mode> make_cipher(const key_bytes& key, Botan::Cipher_Dir dir) {
  auto c = Botan::AEAD_Mode::create_or_throw("AES-256/GCM", dir);
  c->set_key(key.data(), key.size());
  return c;
}

/// Set (by an exit handler) once the process has begun exiting and Botan's
/// locked-memory pool is about to be unmapped. Read and written under
/// exit_mutex(): a sealer destroyed on another thread during exit frees
/// its ciphers wholly before the pool goes, or keeps them all.
bool botan_pool_gone = false;

std::mutex& exit_mutex() {
  static auto* m = new std::mutex;  // never destroyed: used during exit
  return *m;
}

/// Makes Botan's pool of locked memory (a function-local static, made at
/// its first allocation) now if it is not made yet, and registers after it
/// an exit handler, which therefore runs before the pool is destroyed.
void watch_for_exit() {
  static const bool watched = [] {
    Botan::deallocate_memory(Botan::allocate_memory(1, 1), 1, 1);
    std::atexit([] {
      std::lock_guard<std::mutex> lock(exit_mutex());
      botan_pool_gone = true;
    });
    return true;
  }();
  (void)watched;
}

}  // namespace

result<key_bytes> new_data_key() {
  try {
    key_bytes key(key_size);
    Botan::system_rng().randomize(key.data(), key.size());
    return key;
  } catch (const std::exception& e) {
    return error{errc::io_error, std::string("the system's random generator failed: ") + e.what()};
  }
}

result<key_bytes> read_key_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return error{errc::invalid_argument,
                 "cannot read key file " + path + ": " + std::strerror(errno)};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return error{errc::invalid_argument, "key file " + path + " is not a regular file"};
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return error{errc::invalid_argument, "key file " + path + " has mode " + mode +
                                             ": group or others may access it; chmod 600 it"};
  }
  key_bytes content(129);
  ssize_t n = ::read(fd, content.data(), content.size());
  ::close(fd);
  if (n < 0)
    return error{errc::invalid_argument,
                 "cannot read key file " + path + ": " + std::strerror(errno)};
  content.resize(static_cast<std::size_t>(n));
  if (content.size() == key_size) return content;
  while (!content.empty() && (content.back() == '\n' || content.back() == '\r'))
    content.pop_back();
  if (content.size() == 2 * key_size) {
    try {
      auto key = Botan::hex_decode_locked(reinterpret_cast<const char*>(content.data()),
                                          content.size(), false);
      if (key.size() == key_size) return key_bytes(key.begin(), key.end());
    } catch (const std::exception&) {
    }
  }
  return error{errc::invalid_argument,
               "key file " + path + " must hold 32 bytes, or 64 hexadecimal digits"};
}

result<std::string> master_key::wrap(const key_bytes& data_key) const {
  try {
    const Botan::secure_vector<std::uint8_t> in(data_key.begin(), data_key.end());
    auto wrapped = Botan::rfc3394_keywrap(in, Botan::SymmetricKey(key_.data(), key_.size()));
    return std::string(wrapped.begin(), wrapped.end());
  } catch (const std::exception& e) {
    return error{errc::io_error, std::string("wrapping a data key: ") + e.what()};
  }
}

result<key_bytes> master_key::unwrap(std::string_view wrapped) const {
  if (wrapped.size() != wrapped_key_size)
    return error{errc::corruption, "a wrapped data key has the wrong size"};
  try {
    const Botan::secure_vector<std::uint8_t> in(wrapped.begin(), wrapped.end());
    auto out = Botan::rfc3394_keyunwrap(in, Botan::SymmetricKey(key_.data(), key_.size()));
    return key_bytes(out.begin(), out.end());
  } catch (const std::exception&) {
    return error{errc::auth_failed, "a data key does not unwrap under the master key"};
  }
}

result<std::string> master_key::make_check() const {
  try {
    auto enc = make_cipher(key_, Botan::ENCRYPTION);
    key_bytes nonce(nonce_size);
    Botan::system_rng().randomize(nonce.data(), nonce.size());
    enc->set_associated_data(reinterpret_cast<const std::uint8_t*>(check_ad.data()),
                             check_ad.size());
    enc->start(nonce);
    Botan::secure_vector<std::uint8_t> buf(check_text.begin(), check_text.end());
    enc->finish(buf);
    std::string out(nonce.begin(), nonce.end());
    out.append(buf.begin(), buf.end());
    return out;
  } catch (const std::exception& e) {
    return error{errc::io_error, std::string("making the key check value: ") + e.what()};
  }
}

bool master_key::check(std::string_view value) const {
  if (value.size() != nonce_size + check_text.size() + tag_size) return false;
  try {
    auto dec = make_cipher(key_, Botan::DECRYPTION);
    dec->set_associated_data(reinterpret_cast<const std::uint8_t*>(check_ad.data()),
                             check_ad.size());
    dec->start(reinterpret_cast<const std::uint8_t*>(value.data()), nonce_size);
    Botan::secure_vector<std::uint8_t> buf(value.begin() + nonce_size, value.end());
    dec->finish(buf);
    return std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()) == check_text;
  } catch (const std::exception&) {
    return false;
  }
}

namespace {

// The associated data of an event. Format 3: position || head, type and
// tags || stream name (`type` is empty: the head covers it); format 2:
// position || header || type || stream name; format 1: stream id ||
// version || position || id || type.
std::size_t associated_data_size(const event_place& at) {
  if (!at.head.empty()) return 8 + at.head.size() + at.type.size() + at.stream_name.size();
  return 40 + at.type.size();
}

void put_associated_data(const event_place& at, std::uint8_t* out) {
  char* p = reinterpret_cast<char*>(out);
  if (!at.head.empty()) {
    bytes::put_le<std::uint64_t>(p, at.position);
    std::memcpy(p += 8, at.head.data(), at.head.size());
    p += at.head.size();
    if (!at.type.empty()) std::memcpy(p, at.type.data(), at.type.size());
    if (!at.stream_name.empty())
      std::memcpy(p + at.type.size(), at.stream_name.data(), at.stream_name.size());
    return;
  }
  bytes::put_le<std::uint64_t>(p, at.stream_id);
  bytes::put_le<std::uint64_t>(p + 8, at.version);
  bytes::put_le<std::uint64_t>(p + 16, at.position);
  std::memcpy(p + 24, at.id.bytes.data(), 16);
  if (!at.type.empty()) std::memcpy(p + 40, at.type.data(), at.type.size());
}

}  // namespace

struct sealer::gcm {
  static constexpr std::size_t block = 16;
  static constexpr std::size_t batch = 32;  // counter blocks encrypted per call

  key_bytes key;  // the key this cipher was made from
  std::unique_ptr<Botan::BlockCipher> aes = Botan::BlockCipher::create_or_throw("AES-256");
  Botan::GHASH ghash;
  Botan::secure_vector<std::uint8_t> state = Botan::secure_vector<std::uint8_t>(block);
  std::vector<std::uint8_t> hashed;  // associated data and ciphertext, padded, and the lengths

  explicit gcm(const key_bytes& k) : key(k) {
    aes->set_key(key.data(), key.size());
    std::uint8_t h[block] = {};
    aes->encrypt(h);  // H = E_K(0^128)
    ghash.set_key(h, block);
    Botan::secure_scrub_memory(h, block);
  }

  /// out = in XOR the key stream from counter 2 on (CTR with inc32 on the
  /// last 4 bytes of nonce || counter), and `mask` = E_K(nonce || 1), the
  /// tag's mask. `in` and `out` may be the same.
  void ctr(const std::uint8_t nonce[nonce_size], const std::uint8_t* in, std::uint8_t* out,
           std::size_t size, std::uint8_t mask[block]) {
    std::uint8_t counters[block * batch], stream[block * batch];
    std::uint32_t counter = 1;
    std::size_t done = 0, used = 0;  // `used`: key stream bytes to scrub
    bool first = true;
    while (first || done < size) {
      const std::size_t blocks =
          std::min(batch, (size - done + block - 1) / block + (first ? 1 : 0));
      used = std::max(used, blocks * block);
      for (std::size_t i = 0; i < blocks; ++i) {
        std::memcpy(counters + block * i, nonce, nonce_size);
        bytes::put_be<std::uint32_t>(reinterpret_cast<char*>(counters + block * i + nonce_size),
                                     counter++);
      }
      aes->encrypt_n(counters, stream, blocks);
      std::size_t at = 0;
      if (first) {
        std::memcpy(mask, stream, block);
        at = block;
        first = false;
      }
      const std::size_t n = std::min(size - done, blocks * block - at);
      xor_into(out + done, in + done, stream + at, n);
      done += n;
    }
    Botan::secure_scrub_memory(stream, used);
  }

  /// The tag of `ciphertext` with the associated data of event `at`: GHASH
  /// over ad || 0* || ciphertext || 0* || bits(ad):u64 BE || bits(text):u64
  /// BE, assembled in `hashed` and hashed in one pass, XOR mask.
  void tag(const event_place& at, const std::uint8_t* ciphertext, std::size_t size,
           const std::uint8_t mask[block], std::uint8_t out[block]) {
    const std::size_t ad = associated_data_size(at);
    const std::size_t ad_padded = (ad + block - 1) / block * block;
    const std::size_t text_padded = (size + block - 1) / block * block;
    const std::size_t total = ad_padded + text_padded + block;
    if (hashed.size() < total) hashed.resize(total);
    std::uint8_t* h = hashed.data();
    put_associated_data(at, h);
    std::memset(h + ad, 0, ad_padded - ad);
    if (size > 0) std::memcpy(h + ad_padded, ciphertext, size);
    std::memset(h + ad_padded + size, 0, text_padded - size);
    char* lengths = reinterpret_cast<char*>(h + ad_padded + text_padded);
    bytes::put_be<std::uint64_t>(lengths, std::uint64_t{ad} * 8);
    bytes::put_be<std::uint64_t>(lengths + 8, std::uint64_t{size} * 8);
    std::fill(state.begin(), state.end(), std::uint8_t{0});
    ghash.ghash_update(state, h, total);
    xor_into(out, state.data(), mask, block);
  }
};

sealer::sealer() = default;
sealer::~sealer() {
  if (ciphers_.empty()) return;
  std::lock_guard<std::mutex> lock(exit_mutex());
  if (!botan_pool_gone) {
    ciphers_.clear();  // before the exit handler can run: the pool is still there
    return;
  }
  // The process is exiting and Botan's pool is unmapped: the ciphers'
  // memory lies in it, and freeing it would crash. Keep them.
  static auto* kept = new std::vector<std::unique_ptr<gcm>>;
  for (auto& [stream, cipher] : ciphers_)
    kept->push_back(std::move(cipher));
}

void sealer::forget(std::uint64_t stream_id) {
  ciphers_.erase(stream_id);
  last_ = nullptr;
}

sealer::gcm* sealer::cipher_for(std::uint64_t stream_id, const key_bytes& key) {
  auto same_key = [&](const gcm& c) {
    return c.key.size() == key.size() &&
           equal_in_constant_time(c.key.data(), key.data(), key.size());
  };
  if (last_ && last_id_ == stream_id && same_key(*last_)) return last_;
  auto it = ciphers_.find(stream_id);
  if (it != ciphers_.end() && !same_key(*it->second)) {
    ciphers_.erase(it);  // made from another key of this stream: never use it again
    it = ciphers_.end();
  }
  if (it == ciphers_.end()) {
    watch_for_exit();  // before the first of Botan's objects this sealer keeps
    if (ciphers_.size() >= 1024) ciphers_.clear();
    it = ciphers_.emplace(stream_id, std::make_unique<gcm>(key)).first;
  }
  last_id_ = stream_id;
  return last_ = it->second.get();
}

result<void> sealer::next_nonce(char* out) {
  // A child made by fork(2) holds a copy of its parent's prefix and
  // counter: both would make the same nonces.
  if (!prefix_drawn_ || counter_ == 0 || drawn_after_ != detail::forks_made()) {
    try {
      Botan::system_rng().randomize(reinterpret_cast<std::uint8_t*>(&prefix_), sizeof prefix_);
    } catch (const std::exception& e) {
      return error{errc::io_error,
                   std::string("the system's random generator failed: ") + e.what()};
    }
    prefix_drawn_ = true;
    drawn_after_ = detail::forks_made();
  }
  bytes::put_le<std::uint64_t>(out, prefix_);
  bytes::put_le<std::uint32_t>(out + 8, counter_++);
  return {};
}

result<void> sealer::seal(const event_place& at, const key_bytes& key, std::string_view metadata,
                          std::string_view payload, char* out) {
  if (auto nonce = next_nonce(out); !nonce) return nonce;
  try {
    gcm* c = cipher_for(at.stream_id, key);
    // The plaintext goes where its ciphertext is stored and is encrypted there.
    auto* nonce = reinterpret_cast<const std::uint8_t*>(out);
    auto* body = reinterpret_cast<std::uint8_t*>(out + nonce_size);
    const std::size_t size = metadata.size() + payload.size();
    if (!metadata.empty()) std::memcpy(body, metadata.data(), metadata.size());
    if (!payload.empty()) std::memcpy(body + metadata.size(), payload.data(), payload.size());
    std::uint8_t mask[gcm::block];
    c->ctr(nonce, body, body, size, mask);
    c->tag(at, body, size, mask, body + size);
    Botan::secure_scrub_memory(mask, sizeof mask);
    return {};
  } catch (const std::exception& e) {
    return error{errc::io_error, std::string("sealing an event: ") + e.what()};
  }
}

result<void> sealer::open(const event_place& at, const key_bytes& key, std::string_view sealed,
                          key_bytes& plain) {
  if (sealed.size() < seal_overhead)
    return error{errc::corruption, "a sealed event body is too short"};
  try {
    gcm* c = cipher_for(at.stream_id, key);
    const auto* nonce = reinterpret_cast<const std::uint8_t*>(sealed.data());
    const auto* text = nonce + nonce_size;
    const std::size_t size = sealed.size() - seal_overhead;
    plain.resize(size);
    std::uint8_t mask[gcm::block], expected[gcm::block];
    c->ctr(nonce, text, plain.data(), size, mask);
    c->tag(at, text, size, mask, expected);
    const bool authentic = equal_in_constant_time(expected, text + size, gcm::block);
    Botan::secure_scrub_memory(mask, sizeof mask);
    if (!authentic) {  // nothing of an unauthenticated text is handed out
      Botan::secure_scrub_memory(plain.data(), plain.size());
      plain.clear();
      return error{errc::auth_failed, "does not authenticate"};
    }
    return {};
  } catch (const std::exception& e) {
    return error{errc::io_error, std::string("opening an event: ") + e.what()};
  }
}

std::shared_ptr<const key_bytes> key_cache::find(std::uint64_t stream_id,
                                                 std::string_view wrapped) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = keys_.find(stream_id);
  if (it == keys_.end() || it->second.wrapped != wrapped) return nullptr;
  return it->second.key;
}

void key_cache::put(std::uint64_t stream_id, std::string_view wrapped,
                    std::shared_ptr<const key_bytes> key) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (keys_.size() >= capacity_ && !keys_.count(stream_id)) keys_.erase(keys_.begin());
  keys_[stream_id] = entry{std::string(wrapped), std::move(key)};
}

void key_cache::erase(std::uint64_t stream_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  keys_.erase(stream_id);
}

void key_cache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  keys_.clear();
}

}  // namespace varve::crypto
