// SIGINT or SIGTERM in any phase of a rehearsal, the forecast's included,
// ends it INTERRUPTED with exit 130, naming that phase, never READY; a
// scratch clone is dropped on the way out and the source is unchanged. The
// signal is sent by the tool itself as the phase starts
// (HARNESS_TEST_INTERRUPT_PHASE, verify/phases.h), so the phase's own work
// runs interrupted, as with a signal midway. The default run keeps the
// forecast's phase, which once ended READY; every phase is a Slow* case,
// and so is the test that the lists below are every phase there is.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/codesearch/quickstart_sample.h"
#include "harness/pg/disposable_database.h"
#include "scenarios/support/test_env.h"

namespace harness::testing {
namespace {

// The phases of 002's rehearsal: embedded, then on a scratch clone.
const std::vector<std::string> kEmbeddedPhases = {
    "start embedded PostgreSQL", "build a database at 005", "generate data", "connect", "current revision",
    "pre-migration checks", "record the schema and the rows", "upgrade 005 -> 002",
    "count what the upgrade discarded", "post-migration checks", "idempotent re-run (stamp 005, upgrade again)",
    "downgrade 002 -> 005", "rollback checks", "final upgrade 005 -> 002", "forecast: upgrade an empty database"};
const std::vector<std::string> kClonePhases = {
    "connect", "clone the database on its server", "current revision", "pre-migration checks",
    "record the schema and the rows", "upgrade 005 -> 002", "count what the upgrade discarded",
    "post-migration checks", "idempotent re-run (stamp 005, upgrade again)", "downgrade 002 -> 005",
    "rollback checks", "final upgrade 005 -> 002", "forecast: upgrade an empty database"};

struct Outcome {
  int exit_code = -1;
  std::string out;
  nlohmann::json report;
};

Outcome Verify(const std::string& url, const std::string& phase, const std::string& signal) {
  const std::string json = ::testing::TempDir() + pg::UniqueDatabaseName("interrupt") + ".json";
  std::map<std::string, std::string> env;
  if (!phase.empty()) env = {{"HARNESS_TEST_INTERRUPT_PHASE", phase}, {"HARNESS_TEST_INTERRUPT_SIGNAL", signal}};
  std::vector<std::string> args = {"verify", "--report-json", json};
  if (url.empty()) args.insert(args.end(), {"--repositories", "3", "--chunks-per-repo", "3"});
  auto r = RunCli(args, url, env);
  Outcome o{r.exit_code, r.out + r.err, {}};
  std::ifstream in(json);
  if (in) o.report = nlohmann::json::parse(in, nullptr, false);
  std::remove(json.c_str());
  return o;
}

std::vector<std::string> PhaseNames(const nlohmann::json& report) {
  std::vector<std::string> out;
  for (const auto& p : report["phases"]) out.push_back(p["name"]);
  return out;
}

void ExpectInterruptedIn(const Outcome& o, const std::string& phase, const std::string& signal) {
  EXPECT_EQ(o.exit_code, 130) << o.out;
  ASSERT_TRUE(o.report.is_object()) << "no report written: " << o.out;
  const std::string verdict = o.report["verdict"];
  EXPECT_EQ(verdict.rfind("INTERRUPTED: interrupted by SIG" + signal, 0), 0u) << verdict;
  ASSERT_FALSE(o.report["phases"].empty());
  const auto& last = o.report["phases"].back();
  EXPECT_EQ(last["name"], phase) << o.out;
  EXPECT_FALSE(last["ok"].get<bool>());
  EXPECT_EQ(o.out.find("\nREADY"), std::string::npos) << o.out;
}

// The lists above are the phases a rehearsal has: a new phase must join them.
TEST(SlowVerifyInterruptPhases, TheListsNameEveryPhase) {
  EXPECT_EQ(PhaseNames(Verify("", "", "").report), kEmbeddedPhases);
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  EXPECT_EQ(PhaseNames(Verify(db.url().text(), "", "").report), kClonePhases);
}

// A signal while the forecast upgrades its empty database was once logged
// as a forecast warning, and the run ended READY with exit 0.
TEST(VerifyInterrupt, DuringTheForecastItIsInterruptedNotReady) {
  ExpectInterruptedIn(Verify("", "forecast: upgrade an empty database", "INT"),
                      "forecast: upgrade an empty database", "INT");
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  const DatabaseState before = CaptureState(db);
  ExpectInterruptedIn(Verify(db.url().text(), "forecast: upgrade an empty database", "TERM"),
                      "forecast: upgrade an empty database", "TERM");
  ExpectUnchanged(db, before);
}

struct Case {
  bool clone;
  std::string phase;
  std::string signal;
};

class SlowVerifyInterrupt : public ::testing::TestWithParam<Case> {};

TEST_P(SlowVerifyInterrupt, EndsInterruptedInThatPhase) {
  const Case& c = GetParam();
  if (!c.clone) {
    ExpectInterruptedIn(Verify("", c.phase, c.signal), c.phase, c.signal);
    return;
  }
  TestDatabase db("005");
  db.Exec(codesearch::kQuickstartSampleSql);
  const DatabaseState before = CaptureState(db);
  const Outcome o = Verify(db.url().text(), c.phase, c.signal);
  ExpectInterruptedIn(o, c.phase, c.signal);
  ExpectUnchanged(db, before);
  // The scratch clone, once made, is gone.
  std::smatch m;
  const std::string target = o.report["target"];
  if (std::regex_search(target, m, std::regex("cloned into (mh_verify_\\w+)"))) {
    pqxx::connection admin(TestServer().AdminUrl().text());
    pqxx::nontransaction tx(admin);
    EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM pg_database WHERE datname = $1", m[1].str())[0].as<int>(), 0)
        << m[1].str();
  }
}

std::vector<Case> EveryPhase() {
  std::vector<Case> out;
  int i = 0;
  for (const auto& p : kEmbeddedPhases) out.push_back({false, p, i++ % 2 ? "TERM" : "INT"});
  for (const auto& p : kClonePhases) out.push_back({true, p, i++ % 2 ? "TERM" : "INT"});
  return out;
}

INSTANTIATE_TEST_SUITE_P(EveryPhase, SlowVerifyInterrupt, ::testing::ValuesIn(EveryPhase()),
                         [](const ::testing::TestParamInfo<Case>& p) {
                           std::string name = (p.param.clone ? "Clone_" : "Embedded_") + p.param.phase + "_SIG" +
                                              p.param.signal;
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

}  // namespace
}  // namespace harness::testing
