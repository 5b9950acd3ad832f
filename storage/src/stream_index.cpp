#include <string>

#include "lmdb.hpp"
#include "record.hpp"
#include "tables.hpp"

namespace varve::detail {

namespace {

error broken(std::uint64_t stream_id, std::string_view what) {
  return {errc::corruption, "stream id " + std::to_string(stream_id) + ": " + std::string(what)};
}

}  // namespace

result<void> stream_positions(lookup get, const tables& t, std::uint64_t stream_id,
                              stream_version head_version, global_position head_position,
                              stream_version first, stream_version last,
                              std::vector<global_position>& out,
                              std::vector<std::string_view>* records) {
  const std::size_t start = out.size();
  const stream_version indexed = head_version / chunk_size * chunk_size;
  stream_version v = first;
  while (v <= last && v <= indexed) {
    const std::uint64_t chunk = (v - 1) / chunk_size;
    const std::string key = chunk_key(stream_id, chunk);
    MDB_val k = lmdb::to_val(key), val{};
    int rc = get(t.stream_index, k, val);
    if (rc == MDB_NOTFOUND) return broken(stream_id, "stream index chunk missing");
    if (rc != 0) return lmdb::to_error(rc, "reading the stream index");
    if (val.mv_size != chunk_size * 8)
      return broken(stream_id, "stream index chunk has a bad size");
    const char* positions = static_cast<const char*>(val.mv_data);
    const stream_version end = std::min(last, (chunk + 1) * chunk_size);
    for (; v <= end; ++v)
      out.push_back(bytes::get_le<std::uint64_t>(positions + ((v - 1) % chunk_size) * 8));
  }
  if (v > last) {
    if (records) records->resize(records->size() + (out.size() - start));
    return {};
  }

  // Versions after the last full chunk: walk back from the head.
  const std::size_t base = out.size();
  out.resize(base + (last - v + 1));
  if (records) records->resize(records->size() + (out.size() - start));
  global_position pos = head_position;
  for (stream_version ver = head_version;; --ver) {
    if (ver <= last) out[base + (ver - v)] = pos;
    if (ver == v) break;
    bytes::u64_key key(pos);
    MDB_val k = lmdb::to_val(key.view()), val{};
    int rc = get(t.events, k, val);
    if (rc == MDB_NOTFOUND) return broken(stream_id, "event " + std::to_string(pos) + " missing");
    if (rc != 0) return lmdb::to_error(rc, "reading the log");
    auto links = record::decode_links(pos, lmdb::to_view(val));
    if (!links) return std::move(links).err();
    if (records && ver <= last)
      (*records)[records->size() - out.size() + base + (ver - v)] = lmdb::to_view(val);
    if (links->stream_id != stream_id || links->version != ver)
      return broken(stream_id, "event " + std::to_string(pos) + " is not version " +
                                   std::to_string(ver) + " of the stream");
    pos = links->previous_position;
  }
  return {};
}

}  // namespace varve::detail
