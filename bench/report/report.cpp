// The summary step of scripts/bench.sh: reads a run's JSONL records, appends
// the final {"workload":"summary"} object (each ratio of BENCHMARKS.md against
// its target), and writes the run's Markdown table and W2 plots (gnuplot).
//
// A run may hold several rounds (`scripts/bench.sh --repeat N`; each record's
// "round", 1 when absent). A ratio is computed within one round, from that
// round's varve and baseline figures; the summary gives its median and its
// min-max over the rounds. A target is met when the median meets it and the
// worst round is within 10% of it.
#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/main.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::vector<std::string> systems_order = {"varve", "lmdb-raw", "lmdb-group", "sqlite",
                                                "postgres"};

// ---------------------------------------------------------------- records

struct records {
  std::vector<json> all;  // measurements, in file order (no summaries)

  static std::uint64_t param_u64(const json& r, const char* key, std::uint64_t fallback) {
    const auto& p = r.at("params");
    auto it = p.find(key);
    return it != p.end() && it->is_number() ? it->get<std::uint64_t>() : fallback;
  }
  static bool encrypted(const json& r) { return r.at("params").value("encrypted", false); }
  static std::uint64_t prefilled(const json& r) { return param_u64(r, "prefilled", 0); }
  /// Tags per event (W9a's tagged W1a and W2 runs; 0 for the others).
  static std::uint64_t tags(const json& r) { return param_u64(r, "tags", 0); }
  /// "W7" / "W8" for Varve's plain runs measured as those ratios' references.
  static std::string reference_for(const json& r) {
    return r.at("params").value("reference_for", "");
  }
  /// The round of `scripts/bench.sh --repeat` the record was measured in (1
  /// for records without one).
  static int round(const json& r) {
    auto it = r.find("round");
    return it != r.end() && it->is_number_integer() ? it->get<int>() : 1;
  }

  /// The last record of `workload` by `system` (at `writers` writers when given),
  /// plain (not encrypted, untagged) with `prefill` events stored before
  /// unless said, and not a reference run unless `reference` names the ratio
  /// it is for. W9c records (W9c, W9c-decider) count as untagged (their tags
  /// are the workload's).
  const json* find(const std::string& workload, const std::string& system,
                   std::optional<std::uint64_t> writers = {}, bool enc = false,
                   std::uint64_t prefill = 0, const std::string& reference = "",
                   std::uint64_t tag_count = 0) const {
    const json* found = nullptr;
    for (const auto& r : all) {
      if (r.value("workload", "") != workload || r.value("system", "") != system) continue;
      if (writers && param_u64(r, "writers", 1) != *writers) continue;
      if (encrypted(r) != enc || prefilled(r) != prefill) continue;
      if (reference_for(r) != reference) continue;
      if (workload.rfind("W9c", 0) != 0 && tags(r) != tag_count) continue;
      found = &r;
    }
    return found;
  }

  /// The records of one round.
  records of_round(int n) const {
    records rs;
    for (const auto& r : all)
      if (round(r) == n) rs.all.push_back(r);
    return rs;
  }
  std::set<int> rounds() const {
    std::set<int> out;
    for (const auto& r : all)
      out.insert(round(r));
    return out;
  }
};

std::optional<double> number(const json* r, const char* field) {
  if (!r) return std::nullopt;
  auto it = r->find(field);
  if (it == r->end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

records load(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  records rs;
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      throw std::runtime_error(file.string() + ":" + std::to_string(n) + ": " + e.what());
    }
    if (!j.is_object() || !j.contains("workload"))
      throw std::runtime_error(file.string() + ":" + std::to_string(n) + ": not a record");
    if (j["workload"] == "summary") continue;  // replaced by the new one
    if (!j.contains("system") || !j.contains("params") || !j["params"].is_object())
      throw std::runtime_error(file.string() + ":" + std::to_string(n) +
                               ": record without system or params");
    rs.all.push_back(std::move(j));
  }
  return rs;
}

// ---------------------------------------------------------------- spread

struct target {
  std::string op;  // ">=" or "<="
  double value;
};

/// Median and range of the figures of several rounds.
struct spread {
  double median = 0, min = 0, max = 0;
  std::size_t n = 0;
};

/// The median (the mean of the two middle figures for an even count), min and
/// max; nothing for no figures.
std::optional<spread> spread_of(std::vector<double> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  spread s;
  s.n = v.size();
  s.min = v.front();
  s.max = v.back();
  const std::size_t mid = v.size() / 2;
  s.median = v.size() % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return s;
}

enum class verdict { met, not_met, median_only };

/// Met: the median meets the target and the worst round is within 10% of it
/// (">= t": min >= t - 0.1|t|; "<= t": max <= t + 0.1|t|). `median_only`: the
/// median meets it, the worst round does not.
verdict judge(const target& t, const spread& s) {
  const double slack = 0.1 * std::fabs(t.value);
  const bool at_least = t.op == ">=";
  const bool median_ok = at_least ? s.median >= t.value : s.median <= t.value;
  if (!median_ok) return verdict::not_met;
  const bool worst_ok = at_least ? s.min >= t.value - slack : s.max <= t.value + slack;
  return worst_ok ? verdict::met : verdict::median_only;
}

const char* verdict_text(verdict v) {
  switch (v) {
    case verdict::met:
      return "met";
    case verdict::not_met:
      return "not met";
    case verdict::median_only:
      return "met on the median, worst round outside 10%";
  }
  return "";
}

// ---------------------------------------------------------------- summary

std::string target_text(const std::optional<target>& t) {
  if (!t) return "";
  std::ostringstream s;
  s << t->op << ' ' << t->value;
  return s.str();
}

/// One round's figures for one ratio: the ratio (or absolute figure) and the
/// two figures it comes from, or a note saying which side is missing.
struct sample {
  std::optional<double> value, varve, baseline;
  std::string note;
};

/// One ratio or target of BENCHMARKS.md, and how to compute it from one
/// round's records.
struct spec {
  std::string id;
  std::optional<std::uint64_t> writers;
  std::string metric;
  std::optional<target> t;
  std::function<sample(const records&)> eval;
};

std::string missing_note(bool have_varve, bool have_baseline, const std::string& baseline) {
  if (!have_varve && !have_baseline) return "varve not measured; " + baseline + " not measured";
  if (!have_varve) return "varve not measured";
  if (!have_baseline) return baseline + " not measured";
  return "";
}

/// varve's `field` over the baseline's `field`.
spec ratio(const std::string& id, const std::string& workload, const std::string& baseline,
           std::optional<std::uint64_t> writers, const std::optional<target>& t,
           const char* field = "events_per_s") {
  const std::string metric = std::string("varve / ") + baseline + " " + field;
  return {id, writers, metric, t, [=](const records& rs) {
            const auto vv = number(rs.find(workload, "varve", writers), field);
            const auto bv = number(rs.find(workload, baseline, writers), field);
            sample s{std::nullopt, vv, bv, missing_note(vv.has_value(), bv.has_value(), baseline)};
            if (vv && bv && *bv > 0) s.value = *vv / *bv;
            return s;
          }};
}

/// An absolute varve figure against a target (or reported without one).
spec absolute(const std::string& id, const std::string& workload, const char* field,
              const std::string& metric, const std::optional<target>& t, bool enc = false,
              std::optional<std::uint64_t> writers = {}) {
  return {id, writers, metric, t, [=](const records& rs) {
            const auto vv = number(rs.find(workload, "varve", writers, enc), field);
            return sample{vv, vv, std::nullopt, vv ? "" : "varve not measured"};
          }};
}

/// varve's figure in one configuration over varve's plain figure: the plain
/// run measured as this ratio's reference (just before it), else the plain
/// run of the workload.
spec self_ratio(const std::string& id, const std::string& workload, const std::string& metric,
                const std::optional<target>& t, bool enc, std::uint64_t prefill) {
  return {id, std::nullopt, metric, t, [=](const records& rs) {
            const auto changed =
                number(rs.find(workload, "varve", std::nullopt, enc, prefill), "events_per_s");
            const json* ref = rs.find(workload, "varve", std::nullopt, false, 0, id);
            const auto plain = number(ref ? ref : rs.find(workload, "varve"), "events_per_s");
            sample s{std::nullopt, changed, plain, ""};
            if (changed && plain && *plain > 0) s.value = *changed / *plain;
            if (!s.value) s.note = "varve not measured";
            return s;
          }};
}

/// W9: one varve figure over another of the same round, e.g. the query read
/// over the filtered scan (`of` over `over`, each a workload and a system).
spec w9_ratio(const std::string& id, const std::string& metric, const target& t,
              const std::pair<std::string, std::string>& of,
              const std::pair<std::string, std::string>& over) {
  return {id, std::nullopt, metric, t, [=](const records& rs) {
            const auto a = number(rs.find(of.first, of.second), "events_per_s");
            const auto b = number(rs.find(over.first, over.second), "events_per_s");
            sample s{std::nullopt, a, b, ""};
            if (a && b && *b > 0) s.value = *a / *b;
            if (!a) s.note = of.second + " " + of.first + " not measured";
            if (!b)
              s.note +=
                  (s.note.empty() ? "" : "; ") + over.second + " " + over.first + " not measured";
            return s;
          }};
}

/// varve's figure of `workload` (at `writers`) with `tag_count` tags per
/// event, or of W9c, over the untagged unconditional run measured as its
/// reference (`reference`: "W9a", "W9c"; else the plain run of `plain`).
spec w9_self_ratio(const std::string& id, const std::string& workload, const std::string& plain,
                   std::optional<std::uint64_t> writers, const std::string& metric, const target& t,
                   const std::string& reference, std::uint64_t tag_count) {
  return {id, writers, metric, t, [=](const records& rs) {
            const auto changed = number(
                rs.find(workload, "varve", writers, false, 0, "", tag_count), "events_per_s");
            const json* ref = rs.find(plain, "varve", writers, false, 0, reference);
            const auto base = number(ref ? ref : rs.find(plain, "varve", writers), "events_per_s");
            sample s{std::nullopt, changed, base, ""};
            if (changed && base && *base > 0) s.value = *changed / *base;
            if (!changed) s.note = "varve not measured";
            if (!base) s.note += (s.note.empty() ? "" : "; ") + plain + " reference not measured";
            return s;
          }};
}

/// The writer counts of a workload's records, only those with `tag_count`
/// tags when given (`fallback` when there are none).
std::set<std::uint64_t> writer_counts(const records& rs, const std::string& workload,
                                      std::uint64_t fallback,
                                      std::optional<std::uint64_t> tag_count = {}) {
  std::set<std::uint64_t> counts;
  for (const auto& r : rs.all)
    if (r.value("workload", "") == workload && (!tag_count || records::tags(r) == *tag_count))
      counts.insert(records::param_u64(r, "writers", 1));
  if (counts.empty()) counts.insert(fallback);
  return counts;
}

std::set<std::uint64_t> w2_writer_counts(const records& rs) {
  std::set<std::uint64_t> counts;
  for (const auto& r : rs.all)
    if (r.value("workload", "") == "W2") counts.insert(records::param_u64(r, "writers", 1));
  return counts;
}

/// The ratios and targets of BENCHMARKS.md. `rs` (every round) only decides
/// which W2, W9a and W9c writer counts are listed.
std::vector<spec> specs(const records& rs) {
  std::vector<spec> out;
  out.push_back(ratio("W1a", "W1a", "lmdb-raw", std::nullopt, target{">=", 1.5}));
  out.push_back(ratio("W1b", "W1b", "lmdb-raw", std::nullopt, target{">=", 6.0}));

  const std::map<std::uint64_t, double> w2_targets = {{64, 1.5}, {256, 2.0}, {1024, 2.0}};
  for (const auto& [w, t] : w2_targets)
    out.push_back(ratio("W2", "W2", "lmdb-group", w, target{">=", t}));
  out.push_back(
      {"W2", 1, "varve p50_us - lmdb-raw p50_us", target{"<=", 30.0}, [](const records& r) {
         const auto vv = number(r.find("W2", "varve", 1), "p50_us");
         const auto bv = number(r.find("W2", "lmdb-raw", 1), "p50_us");
         sample s{std::nullopt, vv, bv, missing_note(vv.has_value(), bv.has_value(), "lmdb-raw")};
         if (vv && bv) s.value = *vv - *bv;
         return s;
       }});
  std::set<std::uint64_t> counts = w2_writer_counts(rs);
  for (std::uint64_t w : {1, 16, 64, 256, 1024})
    counts.insert(w);
  for (std::uint64_t w : counts)
    out.push_back(ratio("W2", "W2", "lmdb-group", w, target{"<=", 1.0}, "p99_us"));
  for (std::uint64_t w : counts) {
    out.push_back(ratio("W2", "W2", "sqlite", w, std::nullopt));
    if (w <= 256 || rs.find("W2", "postgres", w))
      out.push_back(ratio("W2", "W2", "postgres", w, std::nullopt));
  }
  out.push_back(ratio("W3", "W3", "lmdb-raw", std::nullopt, target{">=", 0.7}));
  out.push_back(ratio("W4", "W4", "lmdb-raw", std::nullopt, target{">=", 1.0}));

  out.push_back(
      absolute("W5", "W5a", "ms", "varve rehydration ms, no snapshots", target{"<=", 1.5}));
  out.push_back(
      absolute("W5", "W5b", "ms", "varve rehydration ms, snapshots every 100", target{"<=", 0.1}));
  out.push_back(absolute("W5", "W5c", "ms", "varve rehydration ms, JSON events, no snapshots",
                         target{"<=", 1.5}));
  out.push_back(absolute("W6", "W6a", "events_per_s", "varve at-least-once catch-up events_per_s",
                         target{">=", 5e6}));
  out.push_back(absolute("W6", "W6b", "events_per_s", "varve exactly-once catch-up events_per_s",
                         target{">=", 1e6}));
  out.push_back(
      absolute("W6", "W6c", "p99_us", "varve live commit->handler p99_us", target{"<=", 1000.0}));
  out.push_back(self_ratio("W7", "W1a", "varve W1a encrypted / plain events_per_s",
                           target{">=", 0.7}, true, 0));
  out.push_back(self_ratio("W7", "W1b", "varve W1b encrypted / plain events_per_s",
                           target{">=", 0.7}, true, 0));
  out.push_back(absolute("W7", "W3", "events_per_s", "varve W3 encrypted events_per_s",
                         target{">=", 3e6}, true));
  out.push_back(
      self_ratio("W7", "W3", "varve W3 encrypted / plain events_per_s", std::nullopt, true, 0));
  for (const char* w : {"W1a", "W1b", "W3"})
    out.push_back(self_ratio("W8", w,
                             std::string("varve ") + w + " with 10M stored / 1M events_per_s",
                             target{">=", 0.8}, false, 10'000'000));

  // W9: query indexes and consistency boundaries.
  out.push_back(w9_self_ratio("W9a", "W1a", "W1a", std::nullopt,
                              "varve W1a 2 tags / untagged events_per_s", target{">=", 0.85}, "W9a",
                              2));
  for (std::uint64_t w : writer_counts(rs, "W2", 64, 2))
    out.push_back(w9_self_ratio("W9a", "W2", "W2", w, "varve W2 2 tags / untagged events_per_s",
                                target{">=", 0.85}, "W9a", 2));
  out.push_back(w9_ratio("W9b", "varve query read / lmdb-raw per-type index events_per_s",
                         target{">=", 1.0}, {"W9b", "varve"}, {"W9b", "lmdb-raw"}));
  out.push_back(w9_ratio("W9b", "varve query read / varve filtered scan events_per_s",
                         target{">=", 50.0}, {"W9b", "varve"}, {"W9b-scan", "varve"}));
  for (std::uint64_t w : writer_counts(rs, "W9c", 64)) {
    out.push_back(w9_self_ratio("W9c", "W9c", "W2", w,
                                "varve conditional decisions / W2 appends events_per_s",
                                target{">=", 0.8}, "W9c", 0));
    out.push_back(absolute("W9c", "W9c", "p99_us", "varve decision p99_us (read to answer)",
                           std::nullopt, false, w));
    out.push_back(absolute("W9c", "W9c", "retries_per_decision",
                           "varve conflicts retried per decision", std::nullopt, false, w));
  }
  for (std::uint64_t w : writer_counts(rs, "W9c-decider", 64)) {
    out.push_back(w9_self_ratio("W9c", "W9c-decider", "W2", w,
                                "varve decider decisions / W2 appends events_per_s",
                                target{">=", 0.8}, "W9c", 0));
    out.push_back(absolute("W9c", "W9c-decider", "p99_us",
                           "varve decider decision p99_us (command to answer)", std::nullopt, false,
                           w));
  }
  out.push_back(w9_ratio("W9d",
                         "varve catch-up on a 0.1% type, storage level: scan_query / "
                         "read_log + type filter events_per_s",
                         target{">=", 20.0}, {"W9d", "varve"}, {"W9d-scan", "varve"}));
  out.push_back(w9_ratio("W9d",
                         "varve catch-up on a 0.1% type, projection engine (exactly-once, view "
                         "row per event): indexed / unindexed filter events_per_s",
                         target{">=", 20.0}, {"W9d-engine", "varve"},
                         {"W9d-engine-scan", "varve"}));
  return out;
}

json opt(std::optional<double> v) {
  return v ? json(*v) : json(nullptr);
}

/// One summary entry: the spec evaluated in every round, then the median and
/// range of the rounds that gave a figure. `value` is the median.
json entry(const spec& s, const std::map<int, records>& by_round) {
  std::vector<double> values, varve, baseline;
  json per_round = json::array();
  std::vector<std::string> notes;  // distinct, in order
  std::vector<int> missing;        // rounds without a value
  for (const auto& [n, rs] : by_round) {
    const sample x = s.eval(rs);
    per_round.push_back({{"round", n},
                         {"value", opt(x.value)},
                         {"varve", opt(x.varve)},
                         {"baseline", opt(x.baseline)}});
    if (x.value)
      values.push_back(*x.value);
    else
      missing.push_back(n);
    if (x.varve) varve.push_back(*x.varve);
    if (x.baseline) baseline.push_back(*x.baseline);
    if (!x.note.empty() && std::find(notes.begin(), notes.end(), x.note) == notes.end())
      notes.push_back(x.note);
  }
  const auto sp = spread_of(values);
  const auto vs = spread_of(varve), bs = spread_of(baseline);

  json e = {{"id", s.id}, {"metric", s.metric}};
  e["writers"] = s.writers ? json(*s.writers) : json(nullptr);
  e["target"] = s.t ? json(target_text(s.t)) : json(nullptr);
  e["target_op"] = s.t ? json(s.t->op) : json(nullptr);
  e["target_value"] = s.t ? json(s.t->value) : json(nullptr);
  e["value"] = sp ? json(sp->median) : json(nullptr);
  e["median"] = e["value"];
  e["min"] = sp ? json(sp->min) : json(nullptr);
  e["max"] = sp ? json(sp->max) : json(nullptr);
  e["rounds_measured"] = sp ? sp->n : 0;
  if (sp && s.t) {
    const verdict v = judge(*s.t, *sp);
    e["met"] = v == verdict::met;
    e["status"] = verdict_text(v);
  } else {
    e["met"] = nullptr;
    e["status"] = nullptr;
  }
  e["varve"] = vs ? json(vs->median) : json(nullptr);
  e["baseline"] = bs ? json(bs->median) : json(nullptr);
  e["rounds"] = std::move(per_round);

  std::string note;
  for (const auto& x : notes)
    note += (note.empty() ? "" : "; ") + x;
  if (sp && !missing.empty()) {
    std::string which;
    for (int n : missing)
      which += (which.empty() ? "" : ", ") + std::to_string(n);
    note = "measured in " + std::to_string(sp->n) + " of " + std::to_string(by_round.size()) +
           " rounds (" + (note.empty() ? std::string("no figure") : note) + " in round " + which +
           ")";
  }
  if (!note.empty()) e["note"] = note;
  return e;
}

/// Splits `rs` by round; rounds 1..repeat are present even when empty (a
/// round whose runs all failed).
std::map<int, records> by_round(const records& rs, int repeat) {
  std::map<int, records> out;
  for (int n = 1; n <= repeat; ++n)
    out[n];
  for (int n : rs.rounds())
    out[n] = rs.of_round(n);
  return out;
}

json summarize(const records& rs, const std::string& run, int repeat) {
  const auto rounds = by_round(rs, repeat);
  json ratios = json::array();
  for (const auto& s : specs(rs))
    ratios.push_back(entry(s, rounds));
  return json{{"workload", "summary"},
              {"run", run},
              {"repeat", static_cast<int>(rounds.size())},
              {"ratios", std::move(ratios)}};
}

// ---------------------------------------------------------------- markdown

std::string grouped(double v) {
  const auto n = static_cast<long long>(std::llround(v));
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return n < 0 ? "-" + out : out;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

/// A ratio or a small figure: 3 decimals, or 3 significant digits below 0.01.
std::string small(double v) {
  if (v == 0 || std::fabs(v) >= 0.01) return fixed(v, 3);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

/// decimals < 0: grouped integer; `small_figure`: small().
std::string format(double v, int decimals, bool small_figure = false) {
  if (small_figure) return small(v);
  return decimals < 0 ? grouped(v) : fixed(v, decimals);
}

/// The median of the figures, then "(min–max)" when they differ once formatted.
std::string spread_cell(const std::vector<double>& v, int decimals, bool small_figure = false) {
  const auto s = spread_of(v);
  if (!s) return "";
  std::string out = format(s->median, decimals, small_figure);
  const std::string lo = format(s->min, decimals, small_figure),
                    hi = format(s->max, decimals, small_figure);
  if (lo != hi) out += " (" + lo + "–" + hi + ")";
  return out;
}

std::string cell(std::optional<double> v, int decimals) {
  if (!v) return "";
  return format(*v, decimals);
}

/// Figures BENCHMARKS.md gives "for scale", measured on this kind of machine.
std::optional<double> reference(const std::string& workload, const std::string& system,
                                std::uint64_t writers) {
  static const std::map<std::tuple<std::string, std::string, std::uint64_t>, double> refs = {
      {{"W1a", "lmdb-raw", 1}, 0.88e6},  {{"W1b", "lmdb-raw", 1}, 0.14e6},
      {{"W3", "lmdb-raw", 1}, 43e6},     {{"W2", "lmdb-group", 1}, 3e3},
      {{"W2", "lmdb-group", 16}, 25e3},  {{"W2", "lmdb-group", 64}, 54e3},
      {{"W2", "lmdb-group", 256}, 68e3}, {{"W2", "lmdb-group", 1024}, 76e3},
      {{"W2", "postgres", 1}, 5.5e3},    {{"W2", "postgres", 16}, 20e3},
      {{"W2", "postgres", 64}, 22e3},    {{"W2", "postgres", 256}, 14e3},
      {{"W2", "sqlite", 1}, 6e3},        {{"W2", "sqlite", 16}, 6e3},
      {{"W2", "sqlite", 64}, 6e3},       {{"W2", "sqlite", 256}, 6e3},
      {{"W2", "sqlite", 1024}, 6e3},
  };
  auto it = refs.find({workload, system, writers});
  if (it == refs.end()) return std::nullopt;
  return it->second;
}

int system_rank(const std::string& s) {
  auto it = std::find(systems_order.begin(), systems_order.end(), s);
  return static_cast<int>(it - systems_order.begin());
}

std::string machine_line() {
  std::string s = std::to_string(std::thread::hardware_concurrency()) + " cores";
  utsname u{};
  if (::uname(&u) == 0) s += ", " + std::string(u.sysname) + " " + u.release + " " + u.machine;
  return s;
}

/// What makes records of different rounds the same measurement (W2's
/// `params.events`, the appends counted in the window, varies from round to
/// round and is not part of it).
std::string measurement_key(const json& r) {
  const auto& p = r.at("params");
  json k = {r.value("workload", ""),
            r.value("system", ""),
            records::param_u64(r, "writers", 1),
            records::encrypted(r),
            records::prefilled(r),
            records::reference_for(r),
            records::tags(r),
            records::param_u64(r, "batch", 1),
            records::param_u64(r, "payload", 0),
            p.value("sync", true),
            p.value("busy_wait", ""),
            p.value("mode", ""),
            p.value("handler", "")};
  return k.dump();
}

/// The figures of `field` over a group of records (those that have it).
std::vector<double> figures(const std::vector<const json*>& group, const char* field) {
  std::vector<double> out;
  for (const json* r : group)
    if (auto v = number(r, field)) out.push_back(*v);
  return out;
}

std::vector<double> param_figures(const std::vector<const json*>& group, const char* key) {
  std::vector<double> out;
  for (const json* r : group)
    out.push_back(double(records::param_u64(*r, key, 0)));
  return out;
}

void write_markdown(const fs::path& file, const records& rs, const json& summary,
                    const std::string& run, const fs::path& jsonl,
                    const std::vector<fs::path>& plots) {
  const int repeat = summary.value("repeat", 1);
  const bool multi = repeat > 1;

  // One row per measurement, its rounds together.
  std::vector<std::vector<const json*>> groups;
  {
    std::map<std::string, std::size_t> index;
    for (const auto& r : rs.all) {
      const std::string k = measurement_key(r);
      auto it = index.find(k);
      if (it == index.end()) {
        index.emplace(k, groups.size());
        groups.push_back({&r});
      } else {
        groups[it->second].push_back(&r);
      }
    }
  }
  std::stable_sort(groups.begin(), groups.end(), [](const auto& ga, const auto& gb) {
    const json* a = ga.front();
    const json* b = gb.front();
    const auto wa = a->value("workload", ""), wb = b->value("workload", "");
    if (wa != wb) return wa < wb;
    const auto sa = system_rank(a->value("system", "")), sb = system_rank(b->value("system", ""));
    if (sa != sb) return sa < sb;
    return records::param_u64(*a, "writers", 1) < records::param_u64(*b, "writers", 1);
  });

  std::ostringstream md;
  md << "# Benchmark run " << run << "\n\n"
     << "Machine: " << machine_line();
  const bool have_start = summary.contains("load_at_start"),
             have_end = summary.contains("load_at_end");
  if (have_start || have_end) {
    md << ", load average ";
    if (have_start) md << fixed(summary["load_at_start"].get<double>(), 2) << " at the start";
    if (have_start && have_end) md << " and ";
    if (have_end) md << fixed(summary["load_at_end"].get<double>(), 2) << " at the end";
    md << " (other work competing for the CPUs and the disk makes every durable commit slower)";
  }
  md << ". Records: `" << jsonl.filename().string() << "`.";
  if (multi)
    md << " **" << repeat
       << " rounds**, Varve and its baselines interleaved (for each workload, and for W2 each "
          "writer count: every system once per round, the order reversed every other round). "
          "Figures are the median over the rounds with the min–max in parentheses; a ratio is "
          "computed within one round, from that round's two figures, then its median and range "
          "taken over the rounds. A target is met when the median meets it and the worst round "
          "is within 10% of it.";
  md << " Sync (fsync at every commit) unless the sync column says no; 100-byte payloads "
        "unless said. W3 and W4 report the best of their repetitions; W4's latencies are per "
        "read of a whole stream. W2's max is the longest append, a starved writer's. W5 (varve): "
        "*ms* is the rehydration time (spawn to first answer, minus the same for an empty "
        "stream), events/s the events replayed per second of it. W6a/W6b: catch-up; W6c: live, "
        "p50/p99 from the append's answer (the commit) to the handler. W9a: W1a and W2 with two "
        "tags per event, each after an untagged reference run. W9b: events/s is rare events "
        "(0.1% of the log) read per second, per read for the query and lmdb-raw's per-type "
        "index (p50/p99 per read of all of them), per scan of the whole log for the filtered "
        "scan. W9c: DCB decisions (a query read, then an append under its condition) per "
        "second; p50/p99 from a decision's first read to its answer, retries included "
        "(W9c-decider: the same decisions sent to the decider, p50/p99 from the command to "
        "its answer). W9d: "
        "storage-level catch-up on the rare type in batches, with the index and without; "
        "W9d-engine: an exactly-once projection of the rare type catching up through the "
        "engine, with the index and with the filter's index off (events/s: log positions "
        "covered). "
        "*Reference* is the figure BENCHMARKS.md gives for scale.\n\n"
     << "## Measurements\n\n"
     << "| workload | system | writers | events | batch | payload | sync | events/s | p50 µs | "
        "p99 µs | max µs | ms | events/commit | reference events/s |"
     << (multi ? " rounds |" : "") << "\n"
     << "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
     << (multi ? "---:|" : "") << "\n";
  for (const auto& g : groups) {
    const json* r = g.front();
    const auto& p = r->at("params");
    const std::string workload = r->value("workload", ""), system = r->value("system", "");
    const std::uint64_t writers = records::param_u64(*r, "writers", 1);
    std::string w = workload;
    if (p.value("encrypted", false)) w += " (encrypted)";
    if (records::prefilled(*r) > 0)
      w += " (" + grouped(double(records::prefilled(*r))) + " stored)";
    if (records::tags(*r) > 0 && workload.rfind("W9c", 0) != 0)
      w += " (" + std::to_string(records::tags(*r)) + " tags)";
    if (workload.rfind("W9", 0) == 0 && p.contains("mode") && p["mode"].is_string())
      w += " (" + p["mode"].get<std::string>() + ")";
    if (!records::reference_for(*r).empty()) w += " (" + records::reference_for(*r) + " reference)";
    md << "| " << w << " | " << system << " | " << writers << " | "
       << spread_cell(param_figures(g, "events"), -1) << " | " << records::param_u64(*r, "batch", 1)
       << " | " << records::param_u64(*r, "payload", 0) << " | "
       << (p.value("sync", true) ? "yes" : "no") << " | "
       << spread_cell(figures(g, "events_per_s"), -1) << " | "
       << spread_cell(figures(g, "p50_us"), 1) << " | " << spread_cell(figures(g, "p99_us"), 1)
       << " | " << spread_cell(figures(g, "max_us"), 1) << " | "
       << spread_cell(figures(g, "ms"), 0, true) << " | "
       << spread_cell(figures(g, "events_per_commit"), 1) << " | "
       << cell(reference(workload, system, writers), -1) << " |";
    if (multi) md << " " << g.size() << " |";
    md << "\n";
  }

  md << "\n## Targets (BENCHMARKS.md)\n\n";
  if (multi)
    md << "| id | writers | metric | target | median | min–max | rounds | met | note |\n"
       << "|---|---:|---|---|---:|---:|---:|---|---|\n";
  else
    md << "| id | writers | metric | target | value | met | note |\n"
       << "|---|---:|---|---|---:|---|---|\n";
  for (const auto& e : summary.at("ratios")) {
    const auto writers = e.at("writers");
    const auto value = e.at("value");
    std::string met = "";
    if (e.at("status").is_string()) {
      const std::string st = e.at("status").get<std::string>();
      if (st == verdict_text(verdict::met))
        met = "yes";
      else if (st == verdict_text(verdict::not_met))
        met = "**no**";
      else
        met = "**no**: " + st;
    }
    md << "| " << e.value("id", "") << " | " << (writers.is_null() ? "" : writers.dump()) << " | "
       << e.value("metric", "") << " | "
       << (e.at("target").is_null() ? "(report)" : e.at("target").get<std::string>()) << " | "
       << (value.is_null() ? "null" : small(value.get<double>())) << " | ";
    if (multi) {
      std::string range;
      if (!value.is_null())
        range = small(e.at("min").get<double>()) + "–" + small(e.at("max").get<double>());
      md << range << " | " << e.value("rounds_measured", 0) << " | ";
    }
    md << met << " | " << e.value("note", "") << " |\n";
  }

  if (!plots.empty()) {
    md << "\n## W2: concurrent single-event appends\n\n";
    if (multi) md << "Medians over the rounds; the bars span the min–max.\n\n";
    for (const auto& p : plots)
      md << "![" << p.stem().string() << "](" << p.filename().string() << ")\n\n";
  }

  std::ofstream out(file);
  out << md.str();
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

// ---------------------------------------------------------------- plots

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

/// Renders one W2 plot (field against writers, one line per system: the
/// median over the rounds, with min-max bars when there are several) with
/// gnuplot. False when gnuplot failed or there is nothing to plot.
bool plot_w2(const records& rs, const fs::path& png, const char* field, double scale,
             const std::string& title, const std::string& ylabel, bool log_y) {
  std::map<std::string, std::map<std::uint64_t, std::vector<double>>> figures;
  for (const auto& r : rs.all) {
    if (r.value("workload", "") != "W2" || records::encrypted(r)) continue;
    // W9a's tagged runs and the W9 references are not W2's own points.
    if (records::tags(r) > 0 || !records::reference_for(r).empty()) continue;
    const auto v = number(&r, field);
    if (!v || *v <= 0) continue;
    figures[r.value("system", "")][records::param_u64(r, "writers", 1)].push_back(*v * scale);
  }
  if (figures.empty()) return false;
  bool bars = false;
  std::map<std::string, std::map<std::uint64_t, spread>> series;
  for (const auto& [s, pts] : figures)
    for (const auto& [x, ys] : pts) {
      series[s][x] = *spread_of(ys);
      bars = bars || ys.size() > 1;
    }
  std::vector<std::string> systems;
  for (const auto& [s, pts] : series)
    systems.push_back(s);
  std::sort(systems.begin(), systems.end(), [](const std::string& a, const std::string& b) {
    return system_rank(a) < system_rank(b) || (system_rank(a) == system_rank(b) && a < b);
  });
  std::set<std::uint64_t> xs;
  for (const auto& [s, pts] : series)
    for (const auto& [x, y] : pts)
      xs.insert(x);

  std::ostringstream gp;
  gp << "set terminal pngcairo size 960,600 font 'sans,11'\n"
     << "set output " << quoted(png.string()) << "\n"
     << "set title " << quoted(title) << "\n"
     << "set xlabel 'writers (log scale)'\nset ylabel " << quoted(ylabel) << "\n"
     << "set logscale x 2\nset grid\nset key top left box opaque\n"
     << "set format y '%.0f'\n";
  if (log_y) gp << "set logscale y 10\nset format y '%g'\n";
  const double lo = static_cast<double>(*xs.begin()), hi = static_cast<double>(*xs.rbegin());
  gp << "set xrange [" << lo / 1.5 << ":" << hi * 1.5 << "]\n";
  gp << "set xtics (";
  bool first = true;
  for (auto x : xs) {
    gp << (first ? "" : ", ") << '"' << x << "\" " << x;
    first = false;
  }
  gp << ")\n";
  if (!log_y) gp << "set yrange [0:*]\n";
  for (std::size_t i = 0; i < systems.size(); ++i) {
    gp << "$d" << i << " << EOD\n";
    for (const auto& [x, s] : series[systems[i]])
      gp << x << ' ' << s.median << ' ' << s.min << ' ' << s.max << '\n';
    gp << "EOD\n";
  }
  gp << "plot ";
  for (std::size_t i = 0; i < systems.size(); ++i)
    gp << (i ? ", " : "") << "$d" << i
       << (bars ? " using 1:2:3:4 with yerrorlines" : " using 1:2 with linespoints")
       << " lw 2 pt 7 title " << quoted(systems[i]);
  gp << "\n";

  FILE* pipe = ::popen("gnuplot", "w");
  if (!pipe) {
    std::cerr << "report: cannot run gnuplot\n";
    return false;
  }
  const std::string script = gp.str();
  std::fwrite(script.data(), 1, script.size(), pipe);
  const int status = ::pclose(pipe);
  if (status != 0) {
    std::cerr << "report: gnuplot failed for " << png << " (status " << status << ")\n";
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- self-test

/// Checks of the arithmetic above (median, range, met, rounds); prints each
/// failure, returns the exit code.
int self_test() {
  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) {
      std::cerr << "self-test: FAILED: " << what << '\n';
      ++failures;
    }
  };
  auto near = [](double a, double b) { return std::fabs(a - b) < 1e-9; };

  check(!spread_of({}), "no figures, no spread");
  {
    const auto s = spread_of({3.0});
    check(s && s->median == 3 && s->min == 3 && s->max == 3 && s->n == 1, "one figure");
  }
  {
    const auto s = spread_of({5.0, 1.0, 3.0});
    check(s && s->median == 3 && s->min == 1 && s->max == 5 && s->n == 3, "odd count");
  }
  {
    const auto s = spread_of({4.0, 1.0, 2.0, 10.0});
    check(s && near(s->median, 3) && s->min == 1 && s->max == 10, "even count: mean of middles");
  }

  auto judged = [](const char* op, double t, std::vector<double> v) {
    return judge(target{op, t}, *spread_of(std::move(v)));
  };
  check(judged(">=", 1.5, {1.6, 1.7, 1.8}) == verdict::met, ">=: every round above");
  check(judged(">=", 1.5, {1.35, 1.6, 1.7}) == verdict::met, ">=: worst exactly at 0.9 t");
  check(judged(">=", 1.5, {1.3, 1.6, 1.7}) == verdict::median_only, ">=: worst below 0.9 t");
  check(judged(">=", 1.5, {1.4, 1.45, 2.0}) == verdict::not_met, ">=: median below");
  check(judged(">=", 1.5, {1.5}) == verdict::met, ">=: one round at the target");
  check(judged("<=", 1.0, {0.5, 0.9, 1.1}) == verdict::met, "<=: worst exactly at 1.1 t");
  check(judged("<=", 1.0, {0.5, 0.9, 1.2}) == verdict::median_only, "<=: worst above 1.1 t");
  check(judged("<=", 1.0, {0.9, 1.05, 1.05}) == verdict::not_met, "<=: median above");
  check(judged("<=", 30, {-40, 10, 32}) == verdict::met, "<= 30 µs difference: worst 32");
  check(judged("<=", 30, {-40, 10, 34}) == verdict::median_only, "<= 30 µs difference: worst 34");

  // A run of three rounds: W1a ratios 2.0, 1.6, 1.2 (median 1.6 >= 1.5, worst
  // 1.2 < 1.35), W3 without lmdb-raw in round 2.
  records rs;
  auto rec = [&](int round, const char* w, const char* s, double eps) {
    rs.all.push_back({{"workload", w},
                      {"system", s},
                      {"round", round},
                      {"params", {{"writers", 1}, {"events", 1000}}},
                      {"events_per_s", eps}});
  };
  for (const auto& [round, w, s, eps] :
       std::vector<std::tuple<int, const char*, const char*, double>>{{1, "W1a", "varve", 200},
                                                                      {1, "W1a", "lmdb-raw", 100},
                                                                      {2, "W1a", "lmdb-raw", 100},
                                                                      {2, "W1a", "varve", 160},
                                                                      {3, "W1a", "varve", 120},
                                                                      {3, "W1a", "lmdb-raw", 100},
                                                                      {1, "W3", "varve", 80},
                                                                      {1, "W3", "lmdb-raw", 100},
                                                                      {2, "W3", "varve", 80},
                                                                      {3, "W3", "varve", 90},
                                                                      {3, "W3", "lmdb-raw", 100}})
    rec(round, w, s, eps);
  const json summary = summarize(rs, "self-test", 3);
  check(summary.at("repeat") == 3, "repeat");
  const json* w1a = nullptr;
  const json* w3 = nullptr;
  for (const auto& e : summary.at("ratios")) {
    if (e.at("id") == "W1a") w1a = &e;
    if (e.at("id") == "W3") w3 = &e;
  }
  check(w1a && near(w1a->at("value").get<double>(), 1.6) &&
            near(w1a->at("min").get<double>(), 1.2) && near(w1a->at("max").get<double>(), 2.0) &&
            w1a->at("met") == false && w1a->at("status") == verdict_text(verdict::median_only) &&
            w1a->at("rounds").size() == 3 && w1a->at("rounds_measured") == 3,
        "W1a over three rounds");
  check(w3 && near(w3->at("value").get<double>(), 0.85) && w3->at("rounds_measured") == 2 &&
            w3->at("met") == true && w3->value("note", "").find("round 2") != std::string::npos,
        "W3 measured in two rounds of three");
  // Records without a round are round 1.
  records old;
  old.all.push_back({{"workload", "W1a"},
                     {"system", "varve"},
                     {"params", json::object()},
                     {"events_per_s", 300}});
  old.all.push_back({{"workload", "W1a"},
                     {"system", "lmdb-raw"},
                     {"params", json::object()},
                     {"events_per_s", 100}});
  const json s1 = summarize(old, "old", 1);
  check(s1.at("repeat") == 1 && near(s1.at("ratios")[0].at("value").get<double>(), 3.0) &&
            s1.at("ratios")[0].at("met") == true,
        "records without a round");

  // W9a: a tagged W1a run and its untagged reference leave the plain W1a
  // ratio alone; the W9a ratio is tagged over its reference.
  records w9;
  auto w9rec = [&](const char* w, const char* sys, double eps, json extra) {
    json p = {{"writers", 1}, {"events", 1000}};
    p.update(extra);
    w9.all.push_back({{"workload", w}, {"system", sys}, {"params", p}, {"events_per_s", eps}});
  };
  w9rec("W1a", "varve", 300, json::object());
  w9rec("W1a", "lmdb-raw", 100, json::object());
  w9rec("W1a", "varve", 200, {{"reference_for", "W9a"}});
  w9rec("W1a", "varve", 180, {{"tags", 2}});
  w9rec("W9b", "varve", 4e6, json::object());
  w9rec("W9b", "lmdb-raw", 2e6, json::object());
  w9rec("W9b-scan", "varve", 2e4, json::object());
  const json s9 = summarize(w9, "w9", 1);
  auto value_of = [&](const std::string& id, const std::string& metric_start) -> double {
    for (const auto& e : s9.at("ratios"))
      if (e.at("id") == id && e.value("metric", "").rfind(metric_start, 0) == 0 &&
          e.at("value").is_number())
        return e.at("value").get<double>();
    return -1;
  };
  check(near(value_of("W1a", "varve / lmdb-raw"), 3.0), "W1a ignores tagged and reference runs");
  check(near(value_of("W9a", "varve W1a 2 tags"), 0.9), "W9a: tagged over its reference");
  check(near(value_of("W9b", "varve query read / lmdb-raw"), 2.0), "W9b over lmdb-raw");
  check(near(value_of("W9b", "varve query read / varve filtered"), 200.0),
        "W9b over the filtered scan");

  std::cerr << "self-test: " << (failures ? "FAILED" : "ok") << '\n';
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return varve::bench::guarded_main([&] {
    CLI::App app{
        "Summarizes a benchmark run: appends the summary record to the JSONL file and "
        "writes <run>.md and the W2 plots beside it"};
    std::string in;
    std::string run;
    bool no_plots = false;
    bool test = false;
    int repeat = 1;
    std::optional<double> load_at_start, load_at_end;
    app.add_option("jsonl", in, "The run's records (bench/results/<run>.jsonl)");
    app.add_option("--run", run, "Run name (default: the file name without .jsonl)");
    app.add_flag("--no-plots", no_plots, "Do not run gnuplot");
    app.add_option("--repeat", repeat,
                   "Rounds the run was asked for (scripts/bench.sh --repeat); more are counted "
                   "when the records have them")
        ->check(CLI::PositiveNumber);
    app.add_option("--load-at-start", load_at_start,
                   "The machine's 1-minute load average when the run started (noted in the "
                   "summary and the table)");
    app.add_option("--load-at-end", load_at_end, "The same when the measurements ended");
    app.add_flag("--self-test", test, "Check the median, range and met arithmetic, and exit");
    CLI11_PARSE(app, argc, argv);
    if (test) return self_test();
    if (in.empty()) {
      std::cerr << "report: a JSONL file is required\n" << app.help();
      return 106;  // CLI11's RequiredError
    }

    const fs::path jsonl = in;
    if (run.empty()) run = jsonl.stem().string();
    const records rs = load(jsonl);
    json summary = summarize(rs, run, repeat);
    if (load_at_start) summary["load_at_start"] = *load_at_start;
    if (load_at_end) summary["load_at_end"] = *load_at_end;

    // Rewrite the file as its measurements plus one summary, last.
    const fs::path tmp = jsonl.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      for (const auto& r : rs.all)
        out << r.dump() << '\n';
      out << summary.dump() << '\n';
      out.close();
      if (!out) throw std::runtime_error("cannot write " + tmp.string());
    }
    fs::rename(tmp, jsonl);

    const fs::path dir = jsonl.parent_path();
    std::vector<fs::path> plots;
    if (!no_plots) {
      const fs::path tput = dir / (run + "-w2-throughput.png");
      const fs::path p99 = dir / (run + "-w2-p99.png");
      if (plot_w2(rs, tput, "events_per_s", 1.0,
                  "W2: concurrent single-event appends, fsync per commit", "events/s", false))
        plots.push_back(tput);
      if (plot_w2(rs, p99, "p99_us", 1e-3, "W2: p99 append latency", "p99 latency (ms, log scale)",
                  true))
        plots.push_back(p99);
    }
    const fs::path md = dir / (run + ".md");
    write_markdown(md, rs, summary, run, jsonl, plots);

    std::cout << "report: " << md.string() << '\n';
    for (const auto& p : plots)
      std::cout << "report: " << p.string() << '\n';
    return 0;
  });
}
