// Database URLs that libpq cannot parse, or parses into the wrong fields,
// never show their password: not in Url::Parse's message or hint, not on
// the CLI's stderr or stdout, not in its log file. Each password is made of
// characters that occur nowhere else (Qz7 Jx9K), so that finding any 4 of
// its characters in a row in the output means it leaked.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness/error.h"
#include "harness/sys/process.h"
#include "harness/pg/url.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

namespace fs = std::filesystem;
using pg::Url;

struct MalformedCase {
  std::string name;      // the test's name suffix
  std::string url;       // what the user passes
  std::string password;  // what must not be shown, whole or in part
  std::string reason;    // a piece of the message that says what is wrong
};

// The password, or any 4 characters of it in a row, in `text`; "" when none.
std::string LeakedFragment(const std::string& text, const std::string& password) {
  if (text.find(password) != std::string::npos) return password;
  for (size_t i = 0; i + 4 <= password.size(); ++i)
    if (text.find(password.substr(i, 4)) != std::string::npos) return password.substr(i, 4);
  return {};
}

#define EXPECT_NO_LEAK(text, password)                                          \
  EXPECT_EQ(LeakedFragment(text, password), "") << "the password leaked in:\n" \
                                                << (text)

TEST(LeakedFragment, FindsAnyFourCharactersInARow) {
  EXPECT_EQ(LeakedFragment("host 7%Jx here", "Qz7%Jx9K"), "7%Jx");
  EXPECT_EQ(LeakedFragment("Qz7%Jx9K", "Qz7%Jx9K"), "Qz7%Jx9K");
  EXPECT_EQ(LeakedFragment("Qz7 %Jx 9K", "Qz7%Jx9K"), "");
}

const std::vector<MalformedCase>& MalformedCases() {
  static const std::vector<MalformedCase> cases = {
      // The reported one: the whole URL was printed.
      {"UnterminatedIpv6", "postgresql://postgres:Qz7Jx9K@[127.0.0.1/t1", "Qz7Jx9K",
       "no closing ']'"},
      // libpq quotes the password when it cannot decode it.
      {"RawPercent", "postgresql://postgres:Qz7%Jx9K@localhost/t1", "Qz7%Jx9K",
       "the password has a '%'"},
      {"PercentZz", "postgresql://postgres:Qz7%zzJx9K@localhost/t1", "Qz7%zzJx9K",
       "the password has a '%'"},
      {"PercentZero", "postgresql://postgres:Qz7%00Jx9K@localhost/t1", "Qz7%00Jx9K", "%00"},
      // Parsed without complaint, but into the host, port or database name.
      {"Slash", "postgresql://postgres:Qz7/Jx9K@localhost/t1", "Qz7/Jx9K", "%2F"},
      {"At", "postgresql://postgres:Qz7@Jx9K@localhost/t1", "Qz7@Jx9K", "%40"},
      {"AtThenSlash", "postgresql://postgres:Qz7@Jx/9K@localhost/t1", "Qz7@Jx/9K", "%40"},
      {"AtBeforeIpv6", "postgresql://postgres:Qz7@Jx9K@[::1]:5432/t1", "Qz7@Jx9K", "%40"},
      {"SlashThenQuestion", "postgresql://postgres:Qz7/Jx9K?Wv8@localhost/t1", "Qz7/Jx9K?Wv8",
       "%2F"},
      // Characters that are fine in a password, in a URL broken elsewhere.
      {"Question", "postgresql://postgres:Qz7?Jx9K@[127.0.0.1/t1", "Qz7?Jx9K", "no closing"},
      {"Hash", "postgresql://postgres:Qz7#Jx9K@[127.0.0.1/t1", "Qz7#Jx9K", "no closing"},
      {"Colon", "postgresql://postgres:Qz7:Jx9K@[127.0.0.1/t1", "Qz7:Jx9K", "no closing"},
      {"Space", "postgresql://postgres:Qz7 Jx9K@[127.0.0.1/t1", "Qz7 Jx9K", "no closing"},
      {"DoubleQuote", "postgresql://postgres:Qz7\"Jx9K@[127.0.0.1/t1", "Qz7\"Jx9K", "no closing"},
      {"SingleQuote", "postgresql://postgres:Qz7'Jx9K@[127.0.0.1/t1", "Qz7'Jx9K", "no closing"},
      {"Backslash", "postgresql://postgres:Qz7\\Jx9K@[127.0.0.1/t1", "Qz7\\Jx9K", "no closing"},
      {"NonAscii", "postgresql://postgres:Qz7\xc3\xa9Jx9K@[127.0.0.1/t1", "Qz7\xc3\xa9Jx9K",
       "no closing"},
      {"EmptyIpv6", "postgresql://postgres:Qz7Jx9K@[]/t1", "Qz7Jx9K", "is empty"},
      {"AfterIpv6", "postgresql://postgres:Qz7Jx9K@[::1]x/t1", "Qz7Jx9K", "must be followed"},
      {"BadPort", "postgresql://postgres:Qz7Jx9K@localhost:54x2/t1", "Qz7Jx9K",
       "port '54x2' is not a number"},
      // In the query string.
      {"QueryPasswordPercent", "postgresql://localhost/t1?password=Qz7%Jx9K", "Qz7%Jx9K",
       "the password has a '%'"},
      {"QueryPasswordNoSeparator", "postgresql://localhost/t1?password=Qz7Jx9K&sslmode",
       "Qz7Jx9K", "no '='"},
      {"QueryPasswordTwoSeparators", "postgresql://localhost/t1?password=Qz7=Jx9K", "Qz7=Jx9K",
       "more than one '='"},
      {"QuerySslpassword", "postgresql://localhost/t1?sslpassword=Qz7%Jx9K", "Qz7%Jx9K",
       "'%'"},
      {"QueryEncodedKey", "postgresql://localhost/t1?pass%77ord=Qz7%Jx9K&x", "Qz7%Jx9K", "'%'"},
      {"QueryPasswordThenBadPort", "postgresql://localhost:54x2/t1?password=Qz7Jx9K", "Qz7Jx9K",
       "port '54x2'"},
      // Not a URL to libpq: read as key=value settings, which it is not.
      {"UpperCaseScheme", "POSTGRESQL://postgres:Qz7Jx9K@localhost/t1", "Qz7Jx9K",
       "postgresql://"},
      {"JdbcUrl", "jdbc:postgresql://localhost/t1?user=postgres&password=Qz7Jx9K", "Qz7Jx9K",
       "postgresql://"},
      // key=value settings.
      {"KeyValueUnterminatedQuote", "host=localhost password='Qz7 Jx9K dbname=t1", "Qz7 Jx9K",
       "not closed"},
      {"KeyValueUnquotedSpace", "host=localhost password=Qz7 Jx9K dbname=t1", "Qz7 Jx9K",
       "must be quoted"},
      {"KeyValueUnquotedSpaceThenEquals", "host=localhost password=Qz7 Jx9K=1", "Qz7 Jx9K=1",
       "must be quoted"},
      {"KeyValueSpacesAroundEquals", "host=localhost password = 'Qz7 Jx9K", "Qz7 Jx9K",
       "not closed"},
      {"KeyValueNoEquals", "host=localhost password Qz7Jx9K", "Qz7Jx9K", "no '='"},
      {"KeyValueSslpassword", "host=localhost sslpassword='Qz7\\'Jx9K", "Qz7\\'Jx9K",
       "not closed"},
  };
  return cases;
}

std::string CaseName(const ::testing::TestParamInfo<MalformedCase>& info) {
  return info.param.name;
}

class MalformedUrl : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedUrl, IsAUsageErrorThatHidesThePassword) {
  const MalformedCase& c = GetParam();
  try {
    Url url = Url::Parse(c.url);
    FAIL() << "parsed, as " << url.Describe();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_EQ(static_cast<int>(e.code()), 2);
    EXPECT_EQ(what.rfind("malformed database URL ", 0), 0u) << what;
    EXPECT_CONTAINS(what, "****");
    EXPECT_CONTAINS(what, c.reason);
    EXPECT_FALSE(e.hint().empty());
    EXPECT_NO_LEAK(what, c.password);
    EXPECT_NO_LEAK(e.hint(), c.password);
  }
}

INSTANTIATE_TEST_SUITE_P(Passwords, MalformedUrl, ::testing::ValuesIn(MalformedCases()), CaseName);

// The CLI on a few of them: exit 2, and the password nowhere in what it
// writes. Parsing fails before any connection, so no server is needed.
class MalformedUrlCli : public ::testing::TestWithParam<MalformedCase> {};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST_P(MalformedUrlCli, ExitsTwoAndPrintsNoPassword) {
  const MalformedCase& c = GetParam();
  const fs::path dir = fs::temp_directory_path() / pg::UniqueDatabaseName("mh_url_test");
  fs::create_directories(dir);
  const fs::path log = dir / "harness.log";
  for (bool from_env : {false, true}) {
    SCOPED_TRACE(from_env ? "DATABASE_URL" : "--database-url");
    auto r = from_env ? RunCli({"--log-file", log.string(), "current"}, c.url)
                      : RunCli({"--database-url", c.url, "--log-file", log.string(), "current"});
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_CONTAINS(r.err, "error: malformed database URL");
    EXPECT_CONTAINS(r.err, "hint: ");
    EXPECT_CONTAINS(r.err, c.reason);
    EXPECT_NO_LEAK(r.err, c.password);
    EXPECT_NO_LEAK(r.out, c.password);
    // The log file, and any temporary file it is written through.
    for (const auto& entry : fs::directory_iterator(dir)) {
      SCOPED_TRACE(entry.path().string());
      EXPECT_NO_LEAK(ReadFile(entry.path()), c.password);
    }
  }
  fs::remove_all(dir);
}

std::vector<MalformedCase> CliCases() {
  std::vector<MalformedCase> out;
  for (const auto& c : MalformedCases())
    for (const char* name : {"UnterminatedIpv6", "RawPercent", "Slash", "At", "Space",
                             "BadPort", "QueryPasswordPercent", "UpperCaseScheme",
                             "KeyValueUnterminatedQuote", "KeyValueUnquotedSpace"})
      if (c.name == name) out.push_back(c);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Passwords, MalformedUrlCli, ::testing::ValuesIn(CliCases()), CaseName);

// What the checks above must not break: special characters written as the
// URL form asks, '@' where a query value holds it, and libpq's port check.
TEST(UrlParse, AcceptsPercentEncodedSpecialCharacters) {
  Url url = Url::Parse("postgresql://postgres:Qz7%25Jx%40%2F%3F%23%3A%20K@localhost:5433/t1");
  EXPECT_EQ(url.password(), "Qz7%Jx@/?#: K");
  EXPECT_EQ(url.Describe(), "localhost:5433/t1 as postgres");
  // '?', '#', ':' and ' ' need no encoding in a password (libpq reads it up
  // to the first '@').
  EXPECT_EQ(Url::Parse("postgresql://postgres:Qz7?#: Jx@localhost/t1").password(), "Qz7?#: Jx");
  EXPECT_EQ(Url::Parse("postgresql://localhost/t1?user=me@corp&password=Qz7Jx").user(),
            "me@corp");
  EXPECT_EQ(Url::Parse("host=localhost password='Qz7 \\'Jx'").password(), "Qz7 'Jx");
}

TEST(UrlParse, NamesAPortThatIsNotANumber) {
  try {
    Url::Parse("postgresql://user:pw@host:notaport/db");
    FAIL();
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "port 'notaport' is not a number");
    EXPECT_CONTAINS(e.what(), "postgresql://user:****@host:notaport/db");
  }
}

TEST(UrlParse, SaysWhatIsWrongWithoutAPassword) {
  try {
    Url::Parse("not a url at all");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_CONTAINS(e.what(), "malformed database URL not a url at all: ");
    EXPECT_CONTAINS(e.hint(), "key=value");
  }
}

TEST(UrlRedact, HidesBothPasswordsAsUsedAndAsWritten) {
  Url url = Url::Parse("postgresql://u:Qz7%40Jx@localhost/t1?sslpassword=Wv8%2FKm");
  ASSERT_EQ(url.password(), "Qz7@Jx");
  const std::string redacted = pg::Redact(
      "failed: password Qz7@Jx, written Qz7%40Jx; key passphrase Wv8/Km, written Wv8%2FKm", url);
  EXPECT_NO_LEAK(redacted, std::string("Qz7@Jx"));
  EXPECT_NO_LEAK(redacted, std::string("Qz7%40Jx"));
  EXPECT_NO_LEAK(redacted, std::string("Wv8/Km"));
  EXPECT_NO_LEAK(redacted, std::string("Wv8%2FKm"));
  EXPECT_CONTAINS(redacted, "failed: password ****, written ****");
  // A password that its own mask contains does not loop forever.
  EXPECT_EQ(pg::Redact("a*b", Url::Parse("host=localhost password=*")), "a****b");
}

TEST(UrlConnInfo, LeavesBothPasswordsOutForACommandLine) {
  Url url = Url::Parse("host=localhost user=u password=Qz7Jx sslpassword=Wv8Km sslkey=/k.pem");
  const std::string without = url.ConnInfo({{"sslpassword", "Zz9"}}, /*with_password=*/false);
  EXPECT_NO_LEAK(without, std::string("Qz7Jx"));
  EXPECT_NO_LEAK(without, std::string("Wv8Km"));
  EXPECT_CONTAINS(without, "sslkey='/k.pem'");
  // Nor from the defaults.
  const std::string defaults = Url::Parse("host=localhost").ConnInfo(
      {{"password", "Zz9Yq"}, {"sslpassword", "Yy8Xw"}, {"connect_timeout", "10"}}, false);
  EXPECT_NO_LEAK(defaults, std::string("Zz9Yq"));
  EXPECT_NO_LEAK(defaults, std::string("Yy8Xw"));
  EXPECT_CONTAINS(defaults, "connect_timeout='10'");
  const std::string with = url.ConnInfo();
  EXPECT_CONTAINS(with, "password='Qz7Jx'");
  EXPECT_CONTAINS(with, "sslpassword='Wv8Km'");
}

// A ':' percent-encoded in the user information puts the password into
// the user name, which Describe() prints in every message.
TEST(UrlDescribe, NeverShowsAPasswordWrittenIntoTheUserName) {
  Url url = Url::Parse("postgresql://alice%3AQz7Jx9Km@localhost/db");
  EXPECT_NO_LEAK(url.Describe(), std::string("Qz7Jx9Km"));
  EXPECT_CONTAINS(url.Describe(), "as alice:****");
}

}  // namespace
}  // namespace harness::testing
