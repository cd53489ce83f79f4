#include "harness/pg/url.h"

#include <libpq-fe.h>
#include <pqxx/pqxx>

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "harness/error.h"

namespace harness::pg {

namespace {

// Nothing the user typed reaches a message unmasked: libpq's parse errors
// quote the input (the whole URL, or the value that failed to decode, which
// may be the password), and a password holding '@' or '/' ends up in the host
// name, the port or the database name. So a malformed URL is shown with its
// password replaced by "****" (MaskedText), libpq's message is turned into a
// reason of our own (ReasonFor), and the values it parsed are checked for
// the traces such a password leaves (CheckParsed).

constexpr std::string_view kMask = "****";

const char kUriHint[] =
    "use postgresql://USER:PASSWORD@HOST:PORT/DBNAME, with special characters in the user "
    "name and password percent-encoded ('%' as %25, '@' as %40, '/' as %2F, ':' as %3A, "
    "'?' as %3F, '#' as %23, a space as %20), or key=value settings such as "
    "\"host=HOST port=5432 dbname=DBNAME user=USER password='PASSWORD'\"";
const char kKeyValueHint[] =
    "use key=value settings such as \"host=HOST port=5432 dbname=DBNAME user=USER "
    "password='PASSWORD'\": quote a value that holds spaces with ' ', and write ' and \\ "
    "inside it as \\' and \\\\; or a URL postgresql://USER:PASSWORD@HOST:PORT/DBNAME";

// libpq's own test: a URL starts with exactly one of these (case matters);
// anything else is read as key=value settings.
size_t UriPrefixLength(const std::string& text) {
  for (std::string_view prefix : {"postgresql://", "postgres://"})
    if (text.compare(0, prefix.size(), prefix) == 0) return prefix.size();
  return 0;
}

bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// A '%' not followed by two hex digits (what libpq refuses to decode).
bool HasBadPercent(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == '%' && (i + 2 >= s.size() || !IsHex(s[i + 1]) || !IsHex(s[i + 2]))) return true;
  return false;
}

std::string PercentDecodedLower(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && IsHex(s[i + 1]) && IsHex(s[i + 2])) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// A setting name that carries a password: libpq's password and sslpassword,
// and the names people mistype for them.
bool IsPasswordKey(std::string_view raw_key) {
  const std::string key = PercentDecodedLower(raw_key);
  return key.find("passw") != std::string::npos || key == "pass" || key == "pwd" ||
         key == "pw" || key == "passwd";
}

struct Span {
  size_t begin;
  size_t end;  // exclusive
};

// How libpq splits a URL it recognises (conninfo_uri_parse_options): the
// user information ends at the first '@' before any '/'.
struct UriLayout {
  size_t prefix = 0;                      // 0: not a URL to libpq
  size_t userinfo_at = std::string::npos;  // the '@' libpq ends the user information at
  size_t netloc = 0;                      // where the host list starts
  size_t query = std::string::npos;       // the '?' that starts the parameters
};

UriLayout LayoutOf(const std::string& text) {
  UriLayout l;
  l.prefix = UriPrefixLength(text);
  if (l.prefix == 0) return l;
  size_t stop = text.find_first_of("@/", l.prefix);
  if (stop != std::string::npos && text[stop] == '@') l.userinfo_at = stop;
  l.netloc = l.userinfo_at == std::string::npos ? l.prefix : l.userinfo_at + 1;
  l.query = text.find('?', l.netloc);
  return l;
}

// Where a password may be in `text`, which libpq may not have been able to
// parse. Generous on purpose: hiding too much costs a less helpful message.
//  - After "://" (any scheme, any case): from the first ':' to the LAST '@',
//    since a password may hold '@', '/', '%', ':', '?', '#'.
//  - A password setting (password=, sslpassword=, ?password=, a bare
//    "password" with no '='): from its value to the end of the text, since
//    where a value ends is unknown in a malformed string.
std::vector<Span> SecretSpans(const std::string& text) {
  std::vector<Span> spans;
  std::optional<Span> userinfo;
  if (size_t scheme = text.find("://"); scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t at = text.rfind('@');
    if (at != std::string::npos && at >= start) {
      const size_t colon = text.find(':', start);
      if (colon < at) userinfo = Span{colon + 1, at};
    }
  }
  auto in_userinfo = [&](size_t pos) {
    return userinfo && pos >= userinfo->begin && pos < userinfo->end;
  };
  size_t value_from = std::string::npos;
  // key=value and ?key=value settings whose (decoded) name is a password's.
  for (size_t eq = text.find('='); eq != std::string::npos; eq = text.find('=', eq + 1)) {
    if (in_userinfo(eq)) continue;
    size_t k = eq;
    while (k > 0 && IsSpace(text[k - 1])) --k;
    const size_t key_end = k;
    while (k > 0 && !IsSpace(text[k - 1]) && text[k - 1] != '?' && text[k - 1] != '&' &&
           text[k - 1] != '=' && text[k - 1] != '\'')
      --k;
    if (k < key_end && IsPasswordKey(std::string_view(text).substr(k, key_end - k))) {
      value_from = std::min(value_from, eq + 1);
      break;
    }
  }
  // The word "password" without an '=' after it ("password secret").
  std::string lower = text;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (size_t pos = lower.find("password"); pos != std::string::npos;
       pos = lower.find("password", pos + 1)) {
    if (in_userinfo(pos)) continue;
    size_t v = pos + 8;
    while (v < text.size() && IsSpace(text[v])) ++v;
    if (v < text.size() && text[v] == '=') ++v;
    value_from = std::min(value_from, v);
    break;
  }
  if (userinfo && userinfo->begin < userinfo->end) spans.push_back(*userinfo);
  if (value_from != std::string::npos && value_from < text.size())
    spans.push_back(Span{value_from, text.size()});
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  std::vector<Span> merged;
  for (const Span& s : spans) {
    if (!merged.empty() && s.begin <= merged.back().end)
      merged.back().end = std::max(merged.back().end, s.end);
    else
      merged.push_back(s);
  }
  return merged;
}

// `text` with every span that may hold a password replaced by "****" (and
// control characters by '?'); `hidden` receives what was replaced.
std::string MaskedText(const std::string& text, std::vector<std::string>& hidden) {
  std::string out;
  size_t pos = 0;
  for (const Span& s : SecretSpans(text)) {
    out += text.substr(pos, s.begin - pos);
    out += kMask;
    hidden.push_back(text.substr(s.begin, s.end - s.begin));
    pos = s.end;
  }
  out += text.substr(pos);
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

// Whether `shown` and one of the hidden pieces have a run of 4 characters
// (fewer when either is shorter) in common.
bool SharesAFragment(const std::string& shown, const std::vector<std::string>& hidden) {
  for (const auto& h : hidden) {
    const size_t k = std::min({size_t{4}, shown.size(), h.size()});
    if (k == 0) continue;
    for (size_t i = 0; i + k <= shown.size(); ++i)
      if (h.find(shown.substr(i, k)) != std::string::npos) return true;
  }
  return false;
}

// libpq's message with every "..." quotation (user text) removed; empty when
// what is left might still carry input (non-ASCII: a translation quotes
// differently) or shares a fragment with what was masked.
std::string ScrubbedLibpqText(const std::string& msg, const std::vector<std::string>& hidden) {
  std::string out;
  bool quoted = false;
  for (char c : msg) {
    if (c == '"') {
      quoted = !quoted;
      continue;
    }
    if (!quoted) out += (c == '\n' ? ' ' : c);
  }
  std::string collapsed;
  for (char c : out)
    if (!(c == ' ' && (collapsed.empty() || collapsed.back() == ' '))) collapsed += c;
  while (!collapsed.empty() && (collapsed.back() == ' ' || collapsed.back() == ':'))
    collapsed.pop_back();
  for (char c : collapsed)
    if (static_cast<unsigned char>(c) >= 0x80) return {};
  if (SharesAFragment(collapsed, hidden)) return {};
  return collapsed;
}

bool Has(const std::string& s, std::string_view needle) {
  return s.find(needle) != std::string::npos;
}

// What libpq's way of reading the user information makes of a password
// holding '/' or '@': a note to add to the reason, or "".
std::string StructureNote(const std::string& text) {
  const UriLayout l = LayoutOf(text);
  if (l.prefix == 0) return {};
  if (l.userinfo_at == std::string::npos) {
    if (text.find('@', l.prefix) != std::string::npos)
      return "a '/' comes before the '@' that ends the user name and password, so libpq reads "
             "\"USER:PASSWORD\" as \"HOST:PORT\": write '/' in a password as %2F";
    return {};
  }
  const size_t stray = text.find('@', l.netloc);
  if (stray != std::string::npos && stray < l.query)
    return "there is an '@' after the one that ends the user name and password, so part of "
           "the password is read as the host: write '@' in a password as %40";
  return {};
}

std::string WithNote(std::string reason, const std::string& note) {
  if (!note.empty()) reason += "; " + note;
  return reason;
}

// A reason of our own for a libpq parse error (libpq's English messages,
// fe-connect.c); never its quotation of the input.
std::string ReasonFor(const std::string& libpq_msg, const std::string& text,
                      const std::vector<std::string>& hidden) {
  const UriLayout l = LayoutOf(text);
  const std::string note = StructureNote(text);
  if (l.prefix == 0 && Has(text, "://"))
    return "it starts like a URL but not with postgresql:// or postgres:// (in lower case), so "
           "libpq reads it as key=value settings and cannot";
  if (Has(libpq_msg, "invalid percent-encoded token")) {
    bool in_password = false;
    for (const auto& h : hidden) in_password = in_password || HasBadPercent(h);
    return WithNote(std::string(in_password ? "the password" : "the URL") +
                        " has a '%' that is not followed by two hexadecimal digits: write a "
                        "'%' as %25",
                    note);
  }
  if (Has(libpq_msg, "forbidden value %00"))
    return WithNote("it holds %00, which libpq does not allow", note);
  if (Has(libpq_msg, "in IPv6 host address") && Has(libpq_msg, "end of string"))
    return WithNote("an IPv6 host address opened with '[' has no closing ']'", note);
  if (Has(libpq_msg, "IPv6 host address may not be empty"))
    return WithNote("the IPv6 host address between '[' and ']' is empty", note);
  if (Has(libpq_msg, "unexpected character") && Has(libpq_msg, "in URI"))
    return WithNote(
        "an IPv6 host address in [...] must be followed by ':PORT', '/', '?' or ','", note);
  if (Has(libpq_msg, "extra key/value separator"))
    return WithNote("a query parameter has more than one '=': write '=' inside a value as %3D",
                    note);
  if (Has(libpq_msg, "missing key/value separator"))
    return WithNote("a query parameter has no '=' (the form is ?key=value&key=value)", note);
  if (Has(libpq_msg, "invalid URI query parameter"))
    return WithNote("the query string names a setting libpq does not know", note);
  if (Has(libpq_msg, "missing \"=\" after"))
    return "a word has no '=' after it: settings are key=value, and a value that holds spaces "
           "must be quoted (password='two words')";
  if (Has(libpq_msg, "unterminated quoted string"))
    return "a value opened with a quote (') is not closed";
  if (Has(libpq_msg, "invalid connection option"))
    return "it names a setting libpq does not know (a value that holds spaces must be quoted: "
           "password='two words')";
  if (Has(libpq_msg, "out of memory")) return "out of memory";
  std::string scrubbed = ScrubbedLibpqText(libpq_msg, hidden);
  return WithNote(scrubbed.empty() ? "libpq cannot parse it" : "libpq: " + scrubbed, note);
}

// `shown` is the masked text.
Error Malformed(const std::string& shown, const std::string& reason) {
  return UsageError("malformed database URL " + shown + ": " + reason,
                    shown.find("://") != std::string::npos ? kUriHint : kKeyValueHint);
}

}  // namespace

Url Url::Parse(const std::string& text) {
  if (text.empty())
    throw UsageError("no database URL given",
                     "pass --database-url postgresql://USER@HOST:PORT/DB or set DATABASE_URL");
  std::vector<std::string> hidden;
  const std::string shown = MaskedText(text, hidden);
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(text.c_str(), &err);
  if (opts == nullptr) {
    std::string msg = err ? err : "out of memory";
    if (err) PQfreemem(err);
    throw Malformed(shown, ReasonFor(msg, text, hidden));
  }
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> guard(opts, &PQconninfoFree);
  Url url;
  url.text_ = text;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o)
    if (o->val != nullptr && *o->val != '\0') url.options_[o->keyword] = o->val;
  // libpq parses a password holding '@' or '/' without complaint, into the
  // host, port or database name, where messages would show it.
  const UriLayout l = LayoutOf(text);
  if (l.prefix != 0) {
    const size_t stray = text.find('@', l.netloc);
    if (stray != std::string::npos && stray < l.query)
      throw Malformed(shown, StructureNote(text));
  }
  // libpq checks the port only when connecting; a typo there is bad input.
  const std::string port = url.Get("port");
  if (port.find_first_not_of("0123456789,") != std::string::npos) {
    std::string reason = "the port is not a number";
    if (!SharesAFragment(port, hidden) && port.size() <= 40) {
      std::string safe = port;
      for (auto& c : safe)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
      reason = "port '" + safe + "' is not a number";
    }
    throw Malformed(shown, WithNote(reason, StructureNote(text)));
  }
  return url;
}

std::string Url::Get(const std::string& key) const {
  auto it = options_.find(key);
  return it == options_.end() ? std::string() : it->second;
}

std::string Url::host() const {
  std::string h = Get("host");
  if (h.empty()) h = Get("hostaddr");
  return h.empty() ? "localhost" : h;
}
std::string Url::port() const {
  std::string p = Get("port");
  return p.empty() ? "5432" : p;
}
std::string Url::user() const { return Get("user"); }
std::string Url::dbname() const {
  std::string d = Get("dbname");
  return d.empty() ? user() : d;
}

std::string Url::Describe() const {
  std::string out = host() + ":" + port() + "/" + dbname();
  // A user name holding ':' is a password written into it (a
  // percent-encoded separator, say): never shown.
  if (const std::string u = user(); !u.empty())
    out += " as " + (u.find(':') == std::string::npos ? u : u.substr(0, u.find(':')) + ":****");
  return out;
}

namespace {
void AddSetting(std::string& conninfo, const std::string& key, const std::string& value) {
  std::string quoted;
  for (char c : value) {
    if (c == '\\' || c == '\'') quoted += '\\';
    quoted += c;
  }
  if (!conninfo.empty()) conninfo += ' ';
  conninfo += key + "='" + quoted + "'";
}

bool IsSecretSetting(const std::string& key) { return key == "password" || key == "sslpassword"; }
}  // namespace

std::string Url::ConnInfo(const std::map<std::string, std::string>& defaults,
                          bool with_password) const {
  std::string conninfo;
  for (const auto& [k, v] : options_)
    if (with_password || !IsSecretSetting(k)) AddSetting(conninfo, k, v);
  for (const auto& [k, v] : defaults)
    if (!has(k) && (with_password || !IsSecretSetting(k))) AddSetting(conninfo, k, v);
  return conninfo;
}

Url Url::WithDatabase(const std::string& dbname) const {
  // Rebuild as a keyword/value string: libpq accepts it everywhere a URL goes.
  std::string conninfo;
  for (const auto& [k, v] : options_)
    if (k != "dbname") AddSetting(conninfo, k, v);
  AddSetting(conninfo, "dbname", dbname);
  return Parse(conninfo);
}

std::string Redact(const std::string& text, const Url& url) {
  // The passwords as libpq uses them, and as written in the URL
  // (percent-encoded in the user information or the query string).
  std::vector<std::string> secrets = {url.password(), url.Get("sslpassword")};
  const std::string& raw = url.text();
  const UriLayout l = LayoutOf(raw);
  if (l.prefix != 0) {
    if (l.userinfo_at != std::string::npos) {
      const size_t colon = raw.find(':', l.prefix);
      if (colon < l.userinfo_at) secrets.push_back(raw.substr(colon + 1, l.userinfo_at - colon - 1));
    }
    if (l.query != std::string::npos) {
      for (size_t p = l.query + 1; p <= raw.size();) {
        size_t amp = raw.find('&', p);
        if (amp == std::string::npos) amp = raw.size();
        const std::string param = raw.substr(p, amp - p);
        if (size_t eq = param.find('='); eq != std::string::npos &&
                                         IsPasswordKey(std::string_view(param).substr(0, eq)))
          secrets.push_back(param.substr(eq + 1));
        p = amp + 1;
      }
    }
  }
  std::sort(secrets.begin(), secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  std::string out = text;
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    for (size_t pos = 0; (pos = out.find(secret, pos)) != std::string::npos;) {
      out.replace(pos, secret.size(), kMask);
      pos += kMask.size();
    }
  }
  return out;
}

}  // namespace harness::pg
