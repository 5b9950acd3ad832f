// The summary step of scripts/bench.sh: reads a run's JSONL records, appends
// the final {"workload":"summary"} object (each ratio of BENCHMARKS.md against
// its target), and writes the run's Markdown table and W2 plots (gnuplot).
#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
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
  /// "W7" / "W8" for Varve's plain runs measured as those ratios' references.
  static std::string reference_for(const json& r) {
    return r.at("params").value("reference_for", "");
  }

  /// The last record of `workload` by `system` (at `writers` writers when given),
  /// plain (not encrypted) with `prefill` events stored before unless said,
  /// and not a reference run unless `reference` names the ratio it is for.
  const json* find(const std::string& workload, const std::string& system,
                   std::optional<std::uint64_t> writers = {}, bool enc = false,
                   std::uint64_t prefill = 0, const std::string& reference = "") const {
    const json* found = nullptr;
    for (const auto& r : all) {
      if (r.value("workload", "") != workload || r.value("system", "") != system) continue;
      if (writers && param_u64(r, "writers", 1) != *writers) continue;
      if (encrypted(r) != enc || prefilled(r) != prefill) continue;
      if (reference_for(r) != reference) continue;
      found = &r;
    }
    return found;
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

// ---------------------------------------------------------------- summary

struct target {
  std::string op;  // ">=" or "<="
  double value;
};

std::string target_text(const std::optional<target>& t) {
  if (!t) return "";
  std::ostringstream s;
  s << t->op << ' ' << t->value;
  return s.str();
}

json entry(const std::string& id, std::optional<std::uint64_t> writers, const std::string& metric,
           const std::optional<target>& t, std::optional<double> value, const std::string& note,
           std::optional<double> varve, std::optional<double> baseline) {
  json e = {{"id", id}, {"metric", metric}};
  e["writers"] = writers ? json(*writers) : json(nullptr);
  e["target"] = t ? json(target_text(t)) : json(nullptr);
  e["target_op"] = t ? json(t->op) : json(nullptr);
  e["target_value"] = t ? json(t->value) : json(nullptr);
  e["value"] = value ? json(*value) : json(nullptr);
  if (value && t)
    e["met"] = t->op == ">=" ? *value >= t->value : *value <= t->value;
  else
    e["met"] = nullptr;
  e["varve"] = varve ? json(*varve) : json(nullptr);
  e["baseline"] = baseline ? json(*baseline) : json(nullptr);
  if (!note.empty()) e["note"] = note;
  return e;
}

std::string missing_note(bool have_varve, bool have_baseline, const std::string& baseline) {
  if (!have_varve && !have_baseline) return "varve not measured; " + baseline + " not measured";
  if (!have_varve) return "varve not measured";
  if (!have_baseline) return baseline + " not measured";
  return "";
}

/// varve's `field` over the baseline's `field`.
json ratio(const records& rs, const std::string& id, const std::string& workload,
           const std::string& baseline, std::optional<std::uint64_t> writers,
           const std::optional<target>& t, const char* field = "events_per_s") {
  const json* v = rs.find(workload, "varve", writers);
  const json* b = rs.find(workload, baseline, writers);
  const auto vv = number(v, field), bv = number(b, field);
  std::optional<double> value;
  if (vv && bv && *bv > 0) value = *vv / *bv;
  const std::string metric = std::string("varve / ") + baseline + " " + field;
  return entry(id, writers, metric, t, value,
               missing_note(vv.has_value(), bv.has_value(), baseline), vv, bv);
}

/// An absolute varve figure against a target.
json absolute(const records& rs, const std::string& id, const std::string& workload,
              const char* field, const std::string& metric, const target& t, bool enc = false) {
  const auto vv = number(rs.find(workload, "varve", std::nullopt, enc), field);
  return entry(id, std::nullopt, metric, t, vv, vv ? "" : "varve not measured", vv, std::nullopt);
}

/// varve's figure in one configuration over varve's plain figure: the plain
/// run measured as this ratio's reference (just before it), else the plain
/// run of the workload.
json self_ratio(const records& rs, const std::string& id, const std::string& workload,
                const std::string& metric, const std::optional<target>& t, bool enc,
                std::uint64_t prefill) {
  const auto changed =
      number(rs.find(workload, "varve", std::nullopt, enc, prefill), "events_per_s");
  const json* ref = rs.find(workload, "varve", std::nullopt, false, 0, id);
  const auto plain = number(ref ? ref : rs.find(workload, "varve"), "events_per_s");
  std::optional<double> value;
  if (changed && plain && *plain > 0) value = *changed / *plain;
  return entry(id, std::nullopt, metric, t, value, value ? "" : "varve not measured", changed,
               plain);
}

std::set<std::uint64_t> w2_writer_counts(const records& rs) {
  std::set<std::uint64_t> counts;
  for (const auto& r : rs.all)
    if (r.value("workload", "") == "W2") counts.insert(records::param_u64(r, "writers", 1));
  return counts;
}

json summarize(const records& rs, const std::string& run) {
  json ratios = json::array();
  ratios.push_back(ratio(rs, "W1a", "W1a", "lmdb-raw", std::nullopt, target{">=", 1.5}));
  ratios.push_back(ratio(rs, "W1b", "W1b", "lmdb-raw", std::nullopt, target{">=", 5.0}));

  const std::map<std::uint64_t, double> w2_targets = {{64, 1.5}, {256, 2.0}, {1024, 2.0}};
  for (const auto& [w, t] : w2_targets)
    ratios.push_back(ratio(rs, "W2", "W2", "lmdb-group", w, target{">=", t}));
  {
    const auto vv = number(rs.find("W2", "varve", 1), "p50_us");
    const auto bv = number(rs.find("W2", "lmdb-raw", 1), "p50_us");
    std::optional<double> value;
    if (vv && bv) value = *vv - *bv;
    ratios.push_back(entry("W2", 1, "varve p50_us - lmdb-raw p50_us", target{"<=", 30.0}, value,
                           missing_note(vv.has_value(), bv.has_value(), "lmdb-raw"), vv, bv));
  }
  std::set<std::uint64_t> counts = w2_writer_counts(rs);
  for (std::uint64_t w : {1, 16, 64, 256, 1024})
    counts.insert(w);
  for (std::uint64_t w : counts)
    ratios.push_back(ratio(rs, "W2", "W2", "lmdb-group", w, target{"<=", 1.0}, "p99_us"));
  for (std::uint64_t w : counts) {
    ratios.push_back(ratio(rs, "W2", "W2", "sqlite", w, std::nullopt));
    if (w <= 256 || rs.find("W2", "postgres", w))
      ratios.push_back(ratio(rs, "W2", "W2", "postgres", w, std::nullopt));
  }
  ratios.push_back(ratio(rs, "W3", "W3", "lmdb-raw", std::nullopt, target{">=", 0.5}));
  ratios.push_back(ratio(rs, "W4", "W4", "lmdb-raw", std::nullopt, target{">=", 1.0}));

  ratios.push_back(
      absolute(rs, "W5", "W5a", "ms", "varve rehydration ms, no snapshots", target{"<=", 2.0}));
  ratios.push_back(absolute(rs, "W5", "W5b", "ms", "varve rehydration ms, snapshots every 100",
                            target{"<=", 0.1}));
  ratios.push_back(absolute(rs, "W6", "W6a", "events_per_s",
                            "varve at-least-once catch-up events_per_s", target{">=", 5e6}));
  ratios.push_back(absolute(rs, "W6", "W6b", "events_per_s",
                            "varve exactly-once catch-up events_per_s", target{">=", 5e5}));
  ratios.push_back(absolute(rs, "W6", "W6c", "p99_us", "varve live commit->handler p99_us",
                            target{"<=", 1000.0}));
  ratios.push_back(self_ratio(rs, "W7", "W1a", "varve W1a encrypted / plain events_per_s",
                              target{">=", 0.7}, true, 0));
  ratios.push_back(self_ratio(rs, "W7", "W1b", "varve W1b encrypted / plain events_per_s",
                              target{">=", 0.7}, true, 0));
  ratios.push_back(absolute(rs, "W7", "W3", "events_per_s", "varve W3 encrypted events_per_s",
                            target{">=", 3e6}, true));
  ratios.push_back(
      self_ratio(rs, "W7", "W3", "varve W3 encrypted / plain events_per_s", std::nullopt, true, 0));
  for (const char* w : {"W1a", "W1b", "W3"})
    ratios.push_back(self_ratio(rs, "W8", w,
                                std::string("varve ") + w + " with 10M stored / 1M events_per_s",
                                target{">=", 0.8}, false, 10'000'000));

  return json{{"workload", "summary"}, {"run", run}, {"ratios", std::move(ratios)}};
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

std::string cell(std::optional<double> v, int decimals) {
  if (!v) return "";
  return decimals < 0 ? grouped(*v) : fixed(*v, decimals);
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

void write_markdown(const fs::path& file, const records& rs, const json& summary,
                    const std::string& run, const fs::path& jsonl,
                    const std::vector<fs::path>& plots) {
  std::vector<const json*> rows;
  for (const auto& r : rs.all)
    rows.push_back(&r);
  std::stable_sort(rows.begin(), rows.end(), [](const json* a, const json* b) {
    const auto wa = a->value("workload", ""), wb = b->value("workload", "");
    if (wa != wb) return wa < wb;
    const auto sa = system_rank(a->value("system", "")), sb = system_rank(b->value("system", ""));
    if (sa != sb) return sa < sb;
    return records::param_u64(*a, "writers", 1) < records::param_u64(*b, "writers", 1);
  });

  std::ostringstream md;
  md << "# Benchmark run " << run << "\n\n"
     << "Machine: " << machine_line();
  if (summary.contains("load_at_start"))
    md << ", load average " << fixed(summary["load_at_start"].get<double>(), 2)
       << " at the start (other work competing for the CPUs and the disk makes every durable "
          "commit slower)";
  md << ". Records: `" << jsonl.filename().string()
     << "`. Sync (fsync at every commit) unless the sync column says no; 100-byte payloads "
        "unless said. W3 and W4 report the best of their repetitions; W4's latencies are per "
        "read of a whole stream. W2's max is the longest append, a starved writer's. W5 (varve): "
        "*ms* is the rehydration time (spawn to first answer, minus the same for an empty "
        "stream), events/s the events replayed per second of it. W6a/W6b: catch-up; W6c: live, "
        "p50/p99 from the append's answer (the commit) to the handler. *Reference* is the "
        "figure BENCHMARKS.md gives for scale.\n\n"
     << "## Measurements\n\n"
     << "| workload | system | writers | events | batch | payload | sync | events/s | p50 µs | "
        "p99 µs | max µs | ms | events/commit | reference events/s |\n"
     << "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const json* r : rows) {
    const auto& p = r->at("params");
    const std::string workload = r->value("workload", ""), system = r->value("system", "");
    const std::uint64_t writers = records::param_u64(*r, "writers", 1);
    std::string w = workload;
    if (p.value("encrypted", false)) w += " (encrypted)";
    if (records::prefilled(*r) > 0)
      w += " (" + grouped(double(records::prefilled(*r))) + " stored)";
    if (!records::reference_for(*r).empty()) w += " (" + records::reference_for(*r) + " reference)";
    md << "| " << w << " | " << system << " | " << writers << " | "
       << grouped(double(records::param_u64(*r, "events", 0))) << " | "
       << records::param_u64(*r, "batch", 1) << " | " << records::param_u64(*r, "payload", 0)
       << " | " << (p.value("sync", true) ? "yes" : "no") << " | "
       << cell(number(r, "events_per_s"), -1) << " | " << cell(number(r, "p50_us"), 1) << " | "
       << cell(number(r, "p99_us"), 1) << " | " << cell(number(r, "max_us"), 1) << " | "
       << (number(r, "ms") ? small(*number(r, "ms")) : std::string()) << " | "
       << cell(number(r, "events_per_commit"), 1) << " | "
       << cell(reference(workload, system, writers), -1) << " |\n";
  }

  md << "\n## Targets (BENCHMARKS.md)\n\n"
     << "| id | writers | metric | target | value | met | note |\n"
     << "|---|---:|---|---|---:|---|---|\n";
  for (const auto& e : summary.at("ratios")) {
    const auto writers = e.at("writers");
    const auto value = e.at("value");
    std::string met = "";
    if (e.at("met").is_boolean()) met = e.at("met").get<bool>() ? "yes" : "**no**";
    md << "| " << e.value("id", "") << " | " << (writers.is_null() ? "" : writers.dump()) << " | "
       << e.value("metric", "") << " | "
       << (e.at("target").is_null() ? "(report)" : e.at("target").get<std::string>()) << " | "
       << (value.is_null() ? "null" : small(value.get<double>())) << " | " << met << " | "
       << e.value("note", "") << " |\n";
  }

  if (!plots.empty()) {
    md << "\n## W2: concurrent single-event appends\n\n";
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

/// Renders one W2 plot (field against writers, one line per system) with
/// gnuplot. False when gnuplot failed or there is nothing to plot.
bool plot_w2(const records& rs, const fs::path& png, const char* field, double scale,
             const std::string& title, const std::string& ylabel, bool log_y) {
  std::map<std::string, std::map<std::uint64_t, double>> series;
  for (const auto& r : rs.all) {
    if (r.value("workload", "") != "W2" || records::encrypted(r)) continue;
    const auto v = number(&r, field);
    if (!v || *v <= 0) continue;
    series[r.value("system", "")][records::param_u64(r, "writers", 1)] = *v * scale;
  }
  if (series.empty()) return false;
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
    for (const auto& [x, y] : series[systems[i]])
      gp << x << ' ' << y << '\n';
    gp << "EOD\n";
  }
  gp << "plot ";
  for (std::size_t i = 0; i < systems.size(); ++i)
    gp << (i ? ", " : "") << "$d" << i << " using 1:2 with linespoints lw 2 pt 7 title "
       << quoted(systems[i]);
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

}  // namespace

int main(int argc, char** argv) {
  return varve::bench::guarded_main([&] {
    CLI::App app{
        "Summarizes a benchmark run: appends the summary record to the JSONL file and "
        "writes <run>.md and the W2 plots beside it"};
    std::string in;
    std::string run;
    bool no_plots = false;
    std::optional<double> load_at_start;
    app.add_option("jsonl", in, "The run's records (bench/results/<run>.jsonl)")->required();
    app.add_option("--run", run, "Run name (default: the file name without .jsonl)");
    app.add_flag("--no-plots", no_plots, "Do not run gnuplot");
    app.add_option("--load-at-start", load_at_start,
                   "The machine's 1-minute load average when the run started (noted in the "
                   "summary and the table)");
    CLI11_PARSE(app, argc, argv);

    const fs::path jsonl = in;
    if (run.empty()) run = jsonl.stem().string();
    const records rs = load(jsonl);
    json summary = summarize(rs, run);
    if (load_at_start) summary["load_at_start"] = *load_at_start;

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
