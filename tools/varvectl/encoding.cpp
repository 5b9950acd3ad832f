#include "encoding.hpp"

#include <array>
#include <boost/archive/iterators/base64_from_binary.hpp>
#include <boost/archive/iterators/binary_from_base64.hpp>
#include <boost/archive/iterators/transform_width.hpp>
#include <cstdio>
#include <limits>

namespace varvectl {

namespace bai = boost::archive::iterators;

std::string base64_encode(std::string_view bytes) {
  using encoder = bai::base64_from_binary<bai::transform_width<const char*, 6, 8>>;
  std::string out(encoder(bytes.data()), encoder(bytes.data() + bytes.size()));
  out.append((3 - bytes.size() % 3) % 3, '=');
  return out;
}

namespace {

bool base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

}  // namespace

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=')
    ++pad;
  std::string body(text);
  for (std::size_t i = 0; i < body.size() - pad; ++i)
    if (!base64_char(body[i])) return std::nullopt;
  // Padding decodes as zero bits ('A'); the bytes it stands for are dropped.
  for (std::size_t i = body.size() - pad; i < body.size(); ++i)
    body[i] = 'A';
  using decoder = bai::transform_width<bai::binary_from_base64<const char*>, 8, 6>;
  std::string out(decoder(body.data()), decoder(body.data() + body.size()));
  out.resize(body.size() / 4 * 3 - pad);
  return out;
}

namespace {

// Howard Hinnant's civil-calendar algorithms (proleptic Gregorian, any year).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
}

constexpr std::int64_t us_per_day = 86'400'000'000;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

std::string format_time(std::int64_t micros) {
  const std::int64_t days = floor_div(micros, us_per_day);
  const std::int64_t in_day = micros - days * us_per_day;  // 0 .. us_per_day-1
  std::int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, y, m, d);
  const std::int64_t secs = in_day / 1'000'000;
  const std::int64_t frac = in_day % 1'000'000;
  char year[32];
  if (y >= 0 && y <= 9999)
    std::snprintf(year, sizeof year, "%04lld", static_cast<long long>(y));
  else
    std::snprintf(year, sizeof year, "%+05lld", static_cast<long long>(y));
  char rest[64];
  std::snprintf(rest, sizeof rest, "-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ", m, d,
                static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                static_cast<long long>(secs % 60), static_cast<long long>(frac));
  return std::string(year) + rest;
}

namespace {

/// Reads exactly `n` digits at `at`, advancing it.
bool digits(std::string_view s, std::size_t& at, std::size_t n, std::int64_t& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[at + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  at += n;
  return true;
}

bool literal(std::string_view s, std::size_t& at, char c) {
  if (at >= s.size() || s[at] != c) return false;
  ++at;
  return true;
}

}  // namespace

std::optional<std::int64_t> parse_time(std::string_view s) {
  std::size_t at = 0;
  bool negative = false;
  std::size_t year_digits = 4;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    at = 1;
    year_digits = s.find('-', 1);
    if (year_digits == std::string_view::npos || year_digits - 1 < 4 || year_digits - 1 > 6)
      return std::nullopt;
    year_digits -= 1;
  }
  std::int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, frac = 0;
  if (!digits(s, at, year_digits, y) || !literal(s, at, '-') || !digits(s, at, 2, mo) ||
      !literal(s, at, '-') || !digits(s, at, 2, d) || !literal(s, at, 'T') ||
      !digits(s, at, 2, h) || !literal(s, at, ':') || !digits(s, at, 2, mi) ||
      !literal(s, at, ':') || !digits(s, at, 2, sec))
    return std::nullopt;
  if (negative) y = -y;
  if (at < s.size() && s[at] == '.') {
    ++at;
    std::size_t n = 0;
    while (at + n < s.size() && s[at + n] >= '0' && s[at + n] <= '9')
      ++n;
    if (n == 0 || n > 6 || !digits(s, at, n, frac)) return std::nullopt;
    for (std::size_t i = n; i < 6; ++i)
      frac *= 10;
  }
  const std::string_view zone = s.substr(at);
  if (zone != "Z" && zone != "+00:00") return std::nullopt;
  static constexpr std::array<unsigned, 12> month_days{31, 29, 31, 30, 31, 30,
                                                       31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] || h > 23 || mi > 59 || sec > 59)
    return std::nullopt;
  const std::int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  std::int64_t check_y = 0;
  unsigned check_m = 0, check_d = 0;
  civil_from_days(days, check_y, check_m, check_d);  // rejects Feb 29 of common years
  if (check_y != y || check_m != mo || check_d != d) return std::nullopt;
  const std::int64_t in_day = ((h * 60 + mi) * 60 + sec) * 1'000'000 + frac;
  const __int128 total = static_cast<__int128>(days) * us_per_day + in_day;
  if (total > std::numeric_limits<std::int64_t>::max() ||
      total < std::numeric_limits<std::int64_t>::min())
    return std::nullopt;
  return static_cast<std::int64_t>(total);
}

namespace {

/// The length of the well-formed UTF-8 sequence at `s[i]` (1 to 4), or 0
/// when the bytes there are not one (no overlongs, surrogates or values past
/// U+10FFFF). `cp` receives its code point.
std::size_t utf8_sequence(std::string_view s, std::size_t i, std::uint32_t& cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  if (c < 0x80) {
    cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    n = 1;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 2;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 3;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n >= s.size()) return 0;
  for (std::size_t k = 1; k <= n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n + 1;
}

}  // namespace

bool valid_utf8(std::string_view s) {
  std::uint32_t cp = 0;
  for (std::size_t i = 0, n = 0; i < s.size(); i += n)
    if ((n = utf8_sequence(s, i, cp)) == 0) return false;
  return true;
}

bool bidi_control(std::uint32_t cp) {
  return cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

std::string terminal_text(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  auto escape = [&](char c) {
    const auto b = static_cast<unsigned char>(c);
    out += "\\x";
    out += hex[b >> 4];
    out += hex[b & 0xF];
  };
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i, cp);
    if (n == 0) {  // not UTF-8: this byte alone
      escape(s[i++]);
      continue;
    }
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
      for (std::size_t k = 0; k < n; ++k)
        escape(s[i + k]);
    } else if (cp == '\\') {
      out += "\\\\";
    } else if (bidi_control(cp)) {
      char code[16];
      std::snprintf(code, sizeof code, "\\u{%04x}", static_cast<unsigned>(cp));
      out += code;
    } else {
      out.append(s, i, n);
    }
    i += n;
  }
  return out;
}

}  // namespace varvectl
