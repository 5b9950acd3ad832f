// page_check: a structural check of the pages of data.mdb, read with pread.
// What it checks, against which grammar: page_format.hpp.
#include "page_check.hpp"

#include "page_walker.hpp"

namespace varve::detail {

namespace {

using namespace lmdb_pages;

/// Reads the two meta pages and picks the one to walk: the snapshot of
/// `txn_id` when given (read twice alike), else the one LMDB would open.
/// std::nullopt, with faults in `report`, when there is none to walk.
result<std::optional<meta_page>> pick_meta(const data_file& file, page_report& report,
                                           std::optional<std::uint64_t> txn_id) {
  auto first = read_meta(file, 0);
  if (!first) return std::move(first).err();
  if (!*first) {
    add_fault(report, "data.mdb is " + str(report.file_size) +
                          " bytes, too short to hold a meta page: truncated");
    return std::optional<meta_page>{};
  }
  std::array<std::optional<meta_page>, 2> metas{std::move(*first), std::nullopt};
  std::array<std::string, 2> faults{meta_fault(*metas[0], 0), {}};
  const std::uint64_t second_at = metas[0]->page_size();
  if (valid_page_size(second_at)) {
    auto second = read_meta(file, second_at);
    if (!second) return std::move(second).err();
    if (*second) {
      metas[1] = std::move(*second);
      faults[1] = meta_fault(*metas[1], 1);
    } else {
      faults[1] =
          "data.mdb is " + str(report.file_size) + " bytes, too short to hold it: truncated";
    }
  } else {
    faults[1] = "not found: meta page 0 gives no valid page size to find it";
  }
  for (std::uint64_t slot = 0; slot < 2; ++slot)
    if (!faults[slot].empty()) add_fault(report, "meta page " + str(slot) + ": " + faults[slot]);
  const bool sound[2] = {faults[0].empty(), faults[1].empty()};
  if (sound[0] && sound[1] && metas[0]->page_size() != metas[1]->page_size())
    add_fault(report, "meta page 1: page size " + str(metas[1]->page_size()) +
                          ", meta page 0 says " + str(metas[0]->page_size()));
  std::optional<std::uint64_t> chosen;
  if (txn_id) {
    for (std::uint64_t slot = 0; slot < 2; ++slot)
      if (sound[slot] && metas[slot]->txn_id == *txn_id) chosen = slot;
    if (!chosen) return error{errc::busy, "no meta page holds transaction " + str(*txn_id)};
    auto again = read_meta(file, *chosen == 0 ? 0 : second_at);
    if (!again) return std::move(again).err();
    if (!*again || (*again)->bytes != metas[*chosen]->bytes)
      return error{errc::busy, "the meta page of transaction " + str(*txn_id) + " changed"};
  } else if (sound[0] || sound[1]) {
    // mdb_env_pick_meta: the larger txnid, meta page 0 on a tie.
    chosen = !sound[1] || (sound[0] && metas[0]->txn_id >= metas[1]->txn_id) ? 0 : 1;
  }
  if (!chosen) return std::optional<meta_page>{};
  return std::move(metas[*chosen]);
}

result<page_report> check(const std::filesystem::path& path, std::optional<std::uint64_t> txn_id) {
  auto file = data_file::open(path);
  if (!file) return std::move(file).err();
  auto size = file->size();
  if (!size) return std::move(size).err();
  page_report report;
  report.file_size = *size;
  auto meta = pick_meta(*file, report, txn_id);
  if (!meta) return std::move(meta).err();
  if (!*meta) return report;
  const meta_page& m = **meta;
  report.txn_id = m.txn_id;
  report.page_size = m.page_size();
  report.last_page = m.last_page;
  report.main_table = m.main.counts;
  page_walker(*file, m, report).run();
  return report;
}

}  // namespace

result<page_report> check_pages(const std::filesystem::path& data_file) {
  return check(data_file, std::nullopt);
}

result<page_report> check_pages(const std::filesystem::path& data_file, std::uint64_t txn_id) {
  return check(data_file, txn_id);
}

}  // namespace varve::detail
