#include "common/record.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <iostream>
#include <stdexcept>

namespace varve::bench {

namespace {

__attribute__((format(printf, 2, 3))) void append_format(std::string& out, const char* fmt, ...) {
  char buf[256];
  va_list args;
  va_start(args, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  if (n > 0) out.append(buf, std::min(static_cast<std::size_t>(n), sizeof buf - 1));
}

}  // namespace

nlohmann::json to_json(const measurement& m) {
  nlohmann::json p = {
      {"writers", m.params.writers}, {"events", m.params.events}, {"batch", m.params.batch},
      {"payload", m.params.payload}, {"sync", m.params.sync},     {"encrypted", m.params.encrypted},
  };
  for (const auto& [k, v] : m.params.extra.items())
    p[k] = v;

  nlohmann::json j = {
      {"workload", m.workload},
      {"system", m.system},
      {"params", std::move(p)},
      {"events_per_s", m.events_per_s},
  };
  if (m.p50_us) j["p50_us"] = *m.p50_us;
  if (m.p99_us) j["p99_us"] = *m.p99_us;
  if (m.events_per_commit) j["events_per_commit"] = *m.events_per_commit;
  for (const auto& [k, v] : m.extra.items())
    j[k] = v;
  return j;
}

record_sink::record_sink(const std::string& path) : to_stdout_(path.empty() || path == "-") {
  if (!to_stdout_) {
    file_.open(path, std::ios::out | std::ios::app);
    if (!file_) throw std::runtime_error("cannot open " + path + " for appending");
  }
}

void record_sink::write(const measurement& m) {
  const std::string line = to_json(m).dump();
  if (to_stdout_) {
    std::cout << line << '\n' << std::flush;
  } else {
    file_ << line << '\n' << std::flush;
    if (!file_) throw std::runtime_error("writing a benchmark record failed");
  }

  std::string s;
  append_format(s, "%-10s %-4s writers=%-5u events=%-8llu %12.0f events/s", m.system.c_str(),
                m.workload.c_str(), m.params.writers,
                static_cast<unsigned long long>(m.params.events), m.events_per_s);
  if (m.p50_us && m.p99_us) append_format(s, "  p50 %9.1f us  p99 %10.1f us", *m.p50_us, *m.p99_us);
  if (m.events_per_commit) append_format(s, "  %.1f events/commit", *m.events_per_commit);
  std::cerr << s << '\n';
}

}  // namespace varve::bench
