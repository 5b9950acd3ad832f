// How to open a store. Every field is checked by event_store::open, which
// answers invalid_argument naming the field when a value is out of range.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

namespace varve {

/// When a commit reaches the disk.
enum class durability : std::uint8_t {
  sync,          ///< fsync at every commit (default): an acknowledged append survives a power cut
  no_meta_sync,  ///< data synced, LMDB's meta page not: a crash may lose the last commit,
                 ///< never corrupts
  no_sync,       ///< no fsync: an operating-system crash may lose recent commits;
                 ///< a process crash loses nothing
};

/// "sync", "no_meta_sync" or "no_sync".
std::string_view to_string(durability d) noexcept;

struct options {
  /// Directory holding the store (data.mdb, lock.mdb). Created, mode 0700,
  /// when missing and `create_if_missing` is set. Without it, open creates
  /// nothing: no directory, no store in an empty one, and no completion of
  /// a creation cut short (not_found).
  std::filesystem::path directory{};
  bool create_if_missing = true;
  /// Refuse (invalid_argument) to open a store that exists already: open
  /// then only creates one. Decided inside LMDB's write lock, so of two
  /// processes creating a store at once, exactly one succeeds.
  bool error_if_exists = false;

  durability sync = durability::sync;

  /// Initial size of the memory map. The map grows by itself (doubling) when
  /// full, up to `max_map_size`; past that, appends fail with storage_full.
  /// The data file only takes the space its pages use. At least 64 KiB
  /// (open refuses less, invalid_argument).
  std::uint64_t map_size = std::uint64_t{64} << 20;
  std::uint64_t max_map_size = std::uint64_t{256} << 30;

  /// Largest event accepted (type + metadata + payload), in bytes.
  std::uint64_t max_event_bytes = std::uint64_t{16} << 20;

  /// Most read transactions open at once across all processes using the store.
  std::uint32_t max_readers = 256;

  /// Most read-model views (named tables) the store can hold.
  std::uint32_t max_views = 128;

  /// Check the CRC32C of every plain record a read decodes (a record that
  /// fails reads as errc::corruption). Turning it off saves about 15 ns per
  /// event read; verify() always checks. Encrypted records are checked by
  /// their authentication tag either way.
  bool verify_checksums = true;

  /// At open, map into this process the store's pages that the operating
  /// system already holds in memory (its page cache), so that reads do not
  /// take a page fault on each page they touch first (1 to 10 us a fault
  /// on a virtual machine, about 0.05 us a page this way: some 20 ms per
  /// GiB held, at open). Reads nothing from disk, and takes no memory but
  /// the page tables (2 MiB per GiB mapped). Off: pages are mapped as reads
  /// first touch them. Pages written after open are mapped as read.
  bool prefault_map = true;

  /// Encryption at rest: the store's 256-bit master key, given in memory or
  /// as a key file (32 raw bytes or 64 hex digits; refused when group or
  /// others may access it). Give at most one. A new store given a key is
  /// created encrypted; an encrypted store opens only with its key
  /// (errc::auth_failed otherwise); a plain store given a key is refused
  /// (errc::invalid_argument: it would not encrypt anything). open() keeps
  /// its own copy in memory that is zeroed on release.
  std::optional<std::array<std::uint8_t, 32>> master_key{};
  std::filesystem::path key_file{};
};

}  // namespace varve
