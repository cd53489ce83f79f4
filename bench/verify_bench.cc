// verify end to end beside the work it cannot do without, on the same data
// in one run: how much the rehearsal costs over the physical limit.
//
//   BM_Verify/<mode>/<shape>/<chunks>      `migration-harness verify`, the CLI
//                                          as a user runs it
//   BM_VerifyWork/<mode>/<shape>/<chunks>  its work: the data's making, one
//                                          read of every table that hashes
//                                          every row as the tool's fingerprint
//                                          does, the upgrade, the downgrade and
//                                          the final upgrade
//
// Modes: embedded (verify starts its own cluster and generates the data; the
// work generates it into a database at 005) and clone (verify clones a
// database at 005 with the data; the work clones it as verify does). Sizes:
// HARNESS_VERIFY_BENCH_SIZES (default 100000,1000000); the embedded cluster
// lives where HARNESS_CLUSTER_PARENT says (tmpfs when it has room).
//
// Run with interleaved repetitions (bench/verify-ratio): the fastest of each
// benchmark's repetitions, verify over its work, is the ratio the table at
// the end shows; exit 1 when one at HARNESS_VERIFY_RATIO_FROM chunks or more
// (default 1000000) is over HARNESS_VERIFY_RATIO_LIMIT (default 1.25).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "bench/bench_env.h"
#include "harness/codesearch/generator.h"
#include "harness/codesearch/shape.h"
#include "harness/codesearch/shapes.h"
#include "harness/engine/migrator.h"
#include "harness/engine/revision_graph.h"
#include "harness/inspect/table_reading.h"
#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"
#include "harness/sys/process.h"

namespace harness::bench {
namespace {

using codesearch::Shape;

std::unique_ptr<pg::EmbeddedCluster> g_cluster;
std::unique_ptr<engine::RevisionGraph> g_graph;

double EnvNumber(const char* name, double fallback) {
  const char* env = std::getenv(name);
  return env && *env ? std::stod(env) : fallback;
}

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Exec(const pg::Url& url, const std::string& sql) {
  pg::Connection conn(url);
  pqxx::nontransaction tx(conn.raw());
  tx.exec(sql);
}

// A database at 005 of `shape`, empty or with the data of `chunks`, made
// once (kept as a template for the run).
std::string At005(Shape shape, long long chunks) {
  static std::map<std::pair<Shape, long long>, std::string> made;
  if (auto it = made.find({shape, chunks}); it != made.end()) return it->second;
  const std::string name = fmt::format("vbench_{}_{}", codesearch::ShapeName(shape), chunks);
  pg::DropDatabase(g_cluster->AdminUrl(), name);
  Exec(g_cluster->AdminUrl(), "CREATE DATABASE " + name + " TEMPLATE template0");
  codesearch::BuildAt005(g_cluster->UrlFor(name), shape, *g_graph);
  if (chunks > 0) {
    pg::Connection conn(g_cluster->UrlFor(name));
    codesearch::Generate(conn, Layout(chunks));
    pqxx::nontransaction tx(conn.raw());
    tx.exec("VACUUM ANALYZE");
  }
  made[{shape, chunks}] = name;
  return name;
}

// One read of every table, every row hashed as the tool's fingerprint does.
void ReadEveryTable(const pg::Url& url) {
  pg::Connection conn(url);
  pqxx::read_transaction tx(conn.raw());
  for (const auto& [id, oid] : inspect::UserTables(tx)) inspect::TakeFingerprint(tx, id);
}

void UpDownUp(const pg::Url& url) {
  pg::Connection conn(url);
  engine::MigratorOptions mo;
  mo.log_steps = false;
  engine::Migrator(conn, *g_graph, mo).Upgrade("head");
  engine::Migrator(conn, *g_graph, mo).Downgrade(g_graph->Name(g_graph->head_position() - 1));
  engine::Migrator(conn, *g_graph, mo).Upgrade("head");
}

void Checkpoint() { Exec(g_cluster->AdminUrl(), "CHECKPOINT"); }

void BM_VerifyWork(benchmark::State& state, bool clone, Shape shape) {
  const long long chunks = state.range(0);
  const std::string source = At005(shape, clone ? chunks : 0);
  for (auto _ : state) {
    Checkpoint();
    const auto t0 = std::chrono::steady_clock::now();
    pg::DisposableDatabase db(g_cluster->AdminUrl(), source, "vbench_work");
    if (!clone) {
      pg::Connection conn(db.url());
      codesearch::Generate(conn, Layout(chunks));
    }
    ReadEveryTable(db.url());
    UpDownUp(db.url());
    state.SetIterationTime(Since(t0));
  }
}

void BM_Verify(benchmark::State& state, bool clone, Shape shape) {
  const long long chunks = state.range(0);
  const std::string source = clone ? At005(shape, chunks) : std::string();
  const auto layout = Layout(chunks);
  std::vector<std::string> argv = {HARNESS_CLI_PATH, "verify"};
  if (!clone)
    argv.insert(argv.end(), {"--shape", codesearch::ShapeName(shape), "--repositories",
                             std::to_string(layout.repositories), "--chunks-per-repo",
                             std::to_string(layout.chunks_per_repo)});
  sys::ProcessOptions po;
  po.unset_env = {"DATABASE_URL"};
  if (clone) po.env["DATABASE_URL"] = g_cluster->UrlFor(source).text();
  for (auto _ : state) {
    Checkpoint();
    const auto t0 = std::chrono::steady_clock::now();
    const sys::ProcessResult r = sys::RunProcess(argv, po);
    const double seconds = Since(t0);
    if (r.exit_code != 0) {
      state.SkipWithError(fmt::format("verify exited {}: {}", r.exit_code,
                                      r.err.substr(r.err.size() > 2000 ? r.err.size() - 2000 : 0))
                              .c_str());
      break;
    }
    state.SetIterationTime(seconds);
  }
}

// Collects each benchmark's fastest repetition beside the console's output.
class Collector : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration || run.error_occurred || run.iterations == 0) continue;
      const double s = run.real_accumulated_time / static_cast<double>(run.iterations);
      auto [it, fresh] = fastest.emplace(run.run_name.function_name + "/" + run.run_name.args, s);
      if (!fresh) it->second = std::min(it->second, s);
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> fastest;  // "BM_Verify/clone/quickstart/1000000" ->
};

// The table of ratios; false when one is over the limit.
bool PrintRatios(const std::map<std::string, double>& fastest) {
  const double limit = EnvNumber("HARNESS_VERIFY_RATIO_LIMIT", 1.25);
  const double from = EnvNumber("HARNESS_VERIFY_RATIO_FROM", 1000000);
  bool ok = true;
  std::printf("\nverify against its work (the fastest repetition of each; limit x%.2f from %.0f chunks)\n", limit,
              from);
  std::printf("  %-9s %-11s %10s %10s %10s %7s\n", "mode", "shape", "chunks", "verify", "work", "ratio");
  for (const auto& [name, verify] : fastest) {
    if (!name.starts_with("BM_Verify/")) continue;
    const std::string rest = name.substr(std::string("BM_Verify/").size());
    auto work = fastest.find("BM_VerifyWork/" + rest);
    if (work == fastest.end()) continue;
    const auto slash = rest.find('/'), last = rest.rfind('/');
    const double chunks = std::stod(rest.substr(last + 1));
    const double ratio = verify / work->second;
    const bool judged = chunks >= from;
    ok &= !judged || ratio <= limit;
    std::printf("  %-9s %-11s %10.0f %9.2fs %9.2fs  x%.2f%s\n", rest.substr(0, slash).c_str(),
                rest.substr(slash + 1, last - slash - 1).c_str(), chunks, verify, work->second, ratio,
                !judged ? "" : ratio <= limit ? "  within" : "  OVER");
  }
  return ok;
}

void Register() {
  for (bool clone : {false, true})
    for (Shape shape : {Shape::kQuickstart, Shape::kProduction})
      for (const char* family : {"BM_Verify", "BM_VerifyWork"}) {
        const std::string name =
            fmt::format("{}/{}/{}", family, clone ? "clone" : "embedded", codesearch::ShapeName(shape));
        auto* b = std::string(family) == "BM_Verify"
                      ? benchmark::RegisterBenchmark(name.c_str(), BM_Verify, clone, shape)
                      : benchmark::RegisterBenchmark(name.c_str(), BM_VerifyWork, clone, shape);
        for (long long chunks : NumbersFromEnv("HARNESS_VERIFY_BENCH_SIZES", "100000,1000000")) b->Arg(chunks);
        b->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
      }
}

}  // namespace
}  // namespace harness::bench

int main(int argc, char** argv) {
  using namespace harness;
  spdlog::set_level(spdlog::level::err);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  bool ok = true;
  try {
    bench::g_graph = std::make_unique<engine::RevisionGraph>(
        engine::RevisionGraph::LoadDirectory(engine::DefaultMigrationsDir({})));
    bench::g_cluster = pg::EmbeddedCluster::Start();
    bench::Register();
    bench::Collector collector;
    benchmark::RunSpecifiedBenchmarks(&collector);
    ok = bench::PrintRatios(collector.fastest);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    bench::g_cluster.reset();
    return 3;
  }
  benchmark::Shutdown();
  bench::g_cluster.reset();
  // A table that could not be written is no result (stdout on a full disk).
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "error: could not write the results to stdout\n");
    return 3;
  }
  return ok ? 0 : 1;
}
