#include "crypto.hpp"

#include <botan/exceptn.h>
#include <botan/hex.h>
#include <botan/rfc3394.h>
#include <botan/system_rng.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "bytes.hpp"

namespace varve::crypto {

namespace {

constexpr std::string_view check_text = "varve master key check";
constexpr std::string_view check_ad = "varve/meta/key_check";

std::unique_ptr<Botan::AEAD_Mode> make_cipher(const key_bytes& key, Botan::Cipher_Dir dir) {
  auto c = Botan::AEAD_Mode::create_or_throw("AES-256/GCM", dir);
  c->set_key(key);
  return c;
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
      key_bytes key = Botan::hex_decode_locked(reinterpret_cast<const char*>(content.data()),
                                               content.size(), false);
      if (key.size() == key_size) return key;
    } catch (const std::exception&) {
    }
  }
  return error{errc::invalid_argument,
               "key file " + path + " must hold 32 bytes, or 64 hexadecimal digits"};
}

result<std::string> master_key::wrap(const key_bytes& data_key) const {
  try {
    auto wrapped = Botan::rfc3394_keywrap(data_key, Botan::SymmetricKey(key_));
    return std::string(wrapped.begin(), wrapped.end());
  } catch (const std::exception& e) {
    return error{errc::io_error, std::string("wrapping a data key: ") + e.what()};
  }
}

result<key_bytes> master_key::unwrap(std::string_view wrapped) const {
  if (wrapped.size() != wrapped_key_size)
    return error{errc::corruption, "a wrapped data key has the wrong size"};
  try {
    key_bytes in(wrapped.begin(), wrapped.end());
    return Botan::rfc3394_keyunwrap(in, Botan::SymmetricKey(key_));
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
    key_bytes buf(check_text.begin(), check_text.end());
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
    key_bytes buf(value.begin() + nonce_size, value.end());
    dec->finish(buf);
    return std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()) == check_text;
  } catch (const std::exception&) {
    return false;
  }
}

void sealer::set_associated_data(Botan::AEAD_Mode& mode, const event_place& at) {
  ad_.resize(40 + at.type.size());
  bytes::put_le<std::uint64_t>(ad_.data(), at.stream_id);
  bytes::put_le<std::uint64_t>(ad_.data() + 8, at.version);
  bytes::put_le<std::uint64_t>(ad_.data() + 16, at.position);
  std::memcpy(ad_.data() + 24, at.id.bytes.data(), 16);
  std::memcpy(ad_.data() + 40, at.type.data(), at.type.size());
  mode.set_associated_data(reinterpret_cast<const std::uint8_t*>(ad_.data()), ad_.size());
}

sealer::sealer() = default;
sealer::~sealer() = default;

sealer::ciphers* sealer::ciphers_for(std::uint64_t stream_id, const key_bytes& key) {
  if (auto it = ciphers_.find(stream_id); it != ciphers_.end()) return &it->second;
  if (ciphers_.size() >= 1024) ciphers_.clear();
  ciphers c{make_cipher(key, Botan::ENCRYPTION), make_cipher(key, Botan::DECRYPTION)};
  return &ciphers_.emplace(stream_id, std::move(c)).first->second;
}

result<std::uint32_t> sealer::next_nonce_counter() {
  if (!counter_drawn_) {
    try {
      Botan::system_rng().randomize(reinterpret_cast<std::uint8_t*>(&counter_), sizeof counter_);
    } catch (const std::exception& e) {
      return error{errc::io_error,
                   std::string("the system's random generator failed: ") + e.what()};
    }
    counter_drawn_ = true;
  }
  return counter_++;
}

result<void> sealer::seal(const event_place& at, const key_bytes& key, std::string_view metadata,
                          std::string_view payload, char* out) {
  auto counter = next_nonce_counter();
  if (!counter) return std::move(counter).err();
  try {
    auto* c = ciphers_for(at.stream_id, key);
    bytes::put_le<std::uint64_t>(out, at.version);
    bytes::put_le<std::uint32_t>(out + 8, *counter);
    // The plaintext goes where its ciphertext is stored: whole blocks are
    // encrypted there in place, the tail and the tag in buffer_.
    char* body = out + nonce_size;
    const std::size_t size = metadata.size() + payload.size();
    if (!metadata.empty()) std::memcpy(body, metadata.data(), metadata.size());
    if (!payload.empty()) std::memcpy(body + metadata.size(), payload.data(), payload.size());
    set_associated_data(*c->enc, at);
    c->enc->start(reinterpret_cast<const std::uint8_t*>(out), nonce_size);
    const std::size_t bulk = size - size % c->enc->update_granularity();
    if (bulk > 0) c->enc->process(reinterpret_cast<std::uint8_t*>(body), bulk);
    buffer_.resize(size - bulk);
    if (!buffer_.empty()) std::memcpy(buffer_.data(), body + bulk, buffer_.size());
    c->enc->finish(buffer_);
    std::memcpy(body + bulk, buffer_.data(), buffer_.size());
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
    auto* c = ciphers_for(at.stream_id, key);
    plain.resize(sealed.size() - nonce_size);
    std::memcpy(plain.data(), sealed.data() + nonce_size, plain.size());
    set_associated_data(*c->dec, at);
    c->dec->start(reinterpret_cast<const std::uint8_t*>(sealed.data()), nonce_size);
    c->dec->finish(plain);
    return {};
  } catch (const Botan::Invalid_Authentication_Tag&) {
    return error{errc::auth_failed, "does not authenticate"};
  } catch (const std::exception& e) {
    return error{errc::io_error, std::string("opening an event: ") + e.what()};
  }
}

std::shared_ptr<const key_bytes> key_cache::find(std::uint64_t stream_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = keys_.find(stream_id);
  return it == keys_.end() ? nullptr : it->second;
}

void key_cache::put(std::uint64_t stream_id, std::shared_ptr<const key_bytes> key) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (keys_.size() >= capacity_ && !keys_.count(stream_id)) keys_.erase(keys_.begin());
  keys_[stream_id] = std::move(key);
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
