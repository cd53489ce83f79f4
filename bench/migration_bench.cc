// Migration 002 under Google Benchmark, on an embedded PostgreSQL, on both
// schema shapes (harness/codesearch/shape.h): our upgrade and rollback; beside
// them in one run, on the quickstart shape the quickstart's approach
// (nullable column, UPDATE from the parent, SET NOT NULL) and on the
// production shape the service's own 002 (bench/service_002.h); per-step
// times with what each step did to the tables (rewrite, update, scan or
// catalog only). On the quickstart shape also: the upgrade under live
// traffic (lock-hold per step, how long a reader and a writer were held
// up, how long the upgrade waited for their locks), template clone time and
// generator rate; and cluster start time. Step times are work time: a
// step's wait for a lock is left out (engine/lock_wait_monitor.h).
//
// Names carry the shape: BM_Upgrade002/production/1000000. Every measured
// run works on a fresh clone of a prepared template, so the data load is
// never timed. Sizes: HARNESS_BENCH_SIZES (comma-separated chunk counts),
// default 10000,100000,1000000.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "bench/bench_env.h"
#include "bench/service_002.h"
#include "fixtures/any_schema.h"
#include "harness/codesearch/generator.h"
#include "harness/codesearch/live_traffic.h"
#include "harness/codesearch/shapes.h"
#include "harness/engine/migrator.h"
#include "harness/inspect/step_probe.h"
#include "harness/codesearch/shape.h"
#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"

namespace harness::bench {
namespace {

using codesearch::Shape;

std::unique_ptr<pg::EmbeddedCluster> g_cluster;
std::unique_ptr<engine::RevisionGraph> g_graph;

std::vector<long long> Sizes() { return NumbersFromEnv("HARNESS_BENCH_SIZES", "10000,100000,1000000"); }

// "BM_Upgrade002/production": the shape is in every name, and bench-report
// reads it from there.
std::string Name(const char* family, Shape shape) {
  return fmt::format("{}/{}", family, codesearch::ShapeName(shape));
}

// A database of that name (replacing one left by an earlier run), a copy of
// `from`; copied file by file, as pg::DisposableDatabase does.
std::string CloneDatabase(const std::string& from, const std::string& name) {
  pg::DropDatabase(g_cluster->AdminUrl(), name);
  pg::Connection admin(g_cluster->AdminUrl());
  pqxx::nontransaction tx(admin.raw());
  std::string sql = "CREATE DATABASE " + tx.quote_name(name) + " TEMPLATE " + tx.quote_name(from);
  if (admin.raw().server_version() >= 150000) sql += " STRATEGY = FILE_COPY";
  tx.exec(sql);
  return name;
}

// An empty database at 005 of that shape, made once.
std::string MakeEmpty005(Shape shape) {
  static std::map<Shape, std::string> made;
  if (auto it = made.find(shape); it != made.end()) return it->second;
  std::string name =
      CloneDatabase("template0", fmt::format("bench_{}_empty_005", codesearch::ShapeName(shape)));
  codesearch::BuildAt005(g_cluster->UrlFor(name), shape, *g_graph);
  made[shape] = name;
  return name;
}

// The data at 005 of that shape, made once per size; upgraded, the same
// data at head: a clone of that one, upgraded (the data is generated once).
std::string MakeTemplate(Shape shape, long long chunks, bool upgraded) {
  static std::map<std::tuple<Shape, long long, bool>, std::string> made;
  auto key = std::make_tuple(shape, chunks, upgraded);
  if (auto it = made.find(key); it != made.end()) return it->second;
  std::string name = CloneDatabase(
      upgraded ? MakeTemplate(shape, chunks, false) : MakeEmpty005(shape),
      fmt::format("bench_{}_{}_{}", codesearch::ShapeName(shape), upgraded ? "head" : "005", chunks));
  pg::Connection conn(g_cluster->UrlFor(name));
  if (upgraded) {
    engine::Migrator(conn, *g_graph).Upgrade("head");
  } else {
    codesearch::Generate(conn, Layout(chunks));
    pqxx::nontransaction tx(conn.raw());
    tx.exec("VACUUM ANALYZE");
  }
  made[key] = name;
  return name;
}

// What a step did, as verify classifies it (inspect/step_probe.h): the
// label ("rewrite-code_chunks", "index-repositories", "update-code_chunks",
// "scan-code_chunks", "catalog") chooses the forecast's model of the step.
// Per-step seconds and what each step did, over a benchmark's iterations:
// counters step<N>_s (mean seconds), step<N>_min_s (the fastest iteration's:
// the least disturbed by other work on the machine, which the forecast
// fits) and the label "1:catalog 2:scan-...".
class StepLog {
 public:
  void Before(pqxx::transaction_base& tx) { before_ = inspect::ReadProbe(tx, inspect::ProbeScope::kThisTransaction); }
  void After(int step, pqxx::transaction_base& tx) {
    kinds_[step] =
        inspect::Compare(before_, inspect::ReadProbe(tx, inspect::ProbeScope::kThisTransaction)).Label();
  }
  void Add(int step, double seconds) {
    seconds_[step] += seconds;
    auto [it, first] = min_.emplace(step, seconds);
    if (!first) it->second = std::min(it->second, seconds);
  }

  void Report(benchmark::State& state, long long chunks) const {
    std::string label;
    for (const auto& [i, seconds] : seconds_) {
      state.counters[fmt::format("step{}_s", i)] = seconds / static_cast<double>(state.iterations());
      state.counters[fmt::format("step{}_min_s", i)] = min_.at(i);
      label += fmt::format("{}{}:{}", label.empty() ? "" : " ", i, kinds_.at(i));
    }
    state.counters["rows"] = static_cast<double>(chunks);
    state.counters["rows_per_s"] = benchmark::Counter(
        static_cast<double>(chunks) * static_cast<double>(state.iterations()),
        benchmark::Counter::kIsRate);
    state.SetLabel(label);
  }

 private:
  inspect::ServerProbe before_;
  std::map<int, double> seconds_;
  std::map<int, double> min_;
  std::map<int, std::string> kinds_;
};

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The service's 002 in one transaction, timed as the Migrator times ours:
// each step's SQL, the commit in the last one, never the probes' queries.
double RunServiceUpgrade(pg::Connection& conn, StepLog& log) {
  pqxx::work tx(conn.raw());
  double total = 0;
  int step = 0;
  for (const ServiceStep& s : kServiceUpgrade002) {
    ++step;
    log.Before(tx);
    auto start = std::chrono::steady_clock::now();
    tx.exec(s.sql);
    double seconds = Since(start);
    log.After(step, tx);
    if (step == static_cast<int>(kServiceUpgrade002.size())) {
      auto commit = std::chrono::steady_clock::now();
      tx.commit();
      seconds += Since(commit);
    }
    log.Add(step, seconds);
    total += seconds;
  }
  return total;
}

// CREATE DATABASE ... STRATEGY FILE_COPY starts with a checkpoint: without
// one first, the clone would also pay for what earlier benchmarks left dirty.
void Checkpoint() {
  pg::Connection admin(g_cluster->AdminUrl());
  pqxx::nontransaction tx(admin.raw());
  tx.exec("CHECKPOINT");
}

// Ours is 002 as it is; the quickstart's approach is 002 forced onto its
// UPDATE path (nullable column, UPDATE from the parent, SET NOT NULL); the
// service's is its own 002 (bench/service_002.h, production shape only).
enum class Approach { kOurs, kQuickstart, kService };

struct MigrationCase {
  const char* family;
  Shape shape;
  Approach approach;
  bool downgrade;
};

void RunMigration(benchmark::State& state, MigrationCase c) {
  const long long chunks = state.range(0);
  const std::string tpl = MakeTemplate(c.shape, chunks, c.downgrade);
  StepLog log;
  double fastest = 0;
  for (auto _ : state) {
    pg::DisposableDatabase db(g_cluster->AdminUrl(), tpl, "bench_run");
    pg::Connection conn(db.url());
    double total = 0;
    if (c.approach == Approach::kService) {
      total = RunServiceUpgrade(conn, log);
    } else {
      engine::MigratorOptions o;
      // HARNESS_BENCH_SLOW_002=1: our 002 forced onto the quickstart's
      // UPDATE path, a deliberately slowed 002 the gate must catch.
      const char* slowed = std::getenv("HARNESS_BENCH_SLOW_002");
      if (c.approach == Approach::kQuickstart || (slowed && std::string(slowed) == "1"))
        o.settings["migration_harness.force_update_path"] = "on";
      o.before_step = [&](const engine::StepTiming&, pqxx::transaction_base& tx) { log.Before(tx); };
      o.after_step = [&](const engine::StepTiming& s, pqxx::transaction_base& tx) {
        log.After(s.index, tx);
      };
      engine::Migrator m(conn, *g_graph, o);
      engine::RunReport r = c.downgrade ? m.Downgrade("005") : m.Upgrade("head");
      // The probes run between steps, outside the steps' own timings: the
      // iteration time is the sum of the steps. Their work time: a wait for
      // a lock (an autovacuum the template left behind, say) is not the
      // migration's cost, and bench-report fits and forecasts these times.
      for (const auto& s : r.steps) {
        log.Add(s.index, s.work_seconds());
        total += s.work_seconds();
      }
    }
    state.SetIterationTime(total);
    fastest = fastest > 0 ? std::min(fastest, total) : total;
  }
  log.Report(state, chunks);
  state.counters["min_s"] = fastest;  // the fastest iteration (the forecast's error is measured on it)
}

// Each shape's approaches side by side, in this order, at every size.
constexpr MigrationCase kMigrationCases[] = {
    {"BM_Upgrade002", Shape::kQuickstart, Approach::kOurs, false},
    {"BM_Upgrade002QuickstartApproach", Shape::kQuickstart, Approach::kQuickstart, false},
    {"BM_Downgrade002", Shape::kQuickstart, Approach::kOurs, true},
    {"BM_Upgrade002", Shape::kProduction, Approach::kOurs, false},
    {"BM_Upgrade002ServiceApproach", Shape::kProduction, Approach::kService, false},
    {"BM_Downgrade002", Shape::kProduction, Approach::kOurs, true},
};

// The upgrade with a reader and a writer on both tables all through: how
// long 002 holds the tables' locks in each step (every step from step 1 to
// the commit holds both), and how long live operations were held up.
// `online`: upgrade --online, the same clients; the single-transaction
// figures beside it in the same run are the comparison (the bound:
// the longest single statement of either client at most 100 ms online).
// The step during which the longest operation of `log` began (its index,
// 1-based; 0: between steps, a commit), so that a long wait is laid at the
// step that caused it.
struct LongestOp {
  double seconds = 0;
  int step = 0;
};
LongestOp LongestAt(const codesearch::TrafficLog& log, const codesearch::UpgradeUnderTraffic& u) {
  LongestOp out;
  for (const auto& op : log.ops) {
    if (op.end < u.start || op.start > u.end || op.seconds() <= out.seconds) continue;
    out = {op.seconds(), 0};
    for (const auto& w : u.steps)
      if (op.start >= w.start && op.start < w.end) out.step = w.step.index;
  }
  return out;
}

void BM_UpgradeUnderTraffic(benchmark::State& state, Shape shape, bool online) {
  const long long chunks = state.range(0);
  const std::string tpl = MakeTemplate(shape, chunks, false);
  std::map<int, double> lock_seconds;
  double locked = 0, waited = 0, reader_longest = 0, writer_longest = 0, reader_held = 0,
         writer_held = 0;
  LongestOp reader_at, writer_at;
  for (auto _ : state) {
    pg::DisposableDatabase db(g_cluster->AdminUrl(), tpl, "bench_traffic");
    // The clone just wrote the whole database (gigabytes at 10M chunks),
    // which the operating system then writes back to disk while the
    // upgrade runs, stalling the server's own writes: a production server
    // is not in the middle of such a copy. Written back first, untimed.
    Checkpoint();
    ::sync();
    engine::MigratorOptions o;
    o.online = online;
    codesearch::UpgradeUnderTraffic u = codesearch::RunUpgradeUnderTraffic(db.url(), *g_graph, o);
    double total = 0;
    for (const auto& w : u.steps) {
      // The iteration is the upgrade as traffic saw it, waits included;
      // the tables are held only once the locks are granted: work time.
      total += w.step.seconds;
      waited += w.step.lock_wait_seconds;
      if (!w.tables_locked) continue;
      lock_seconds[w.step.index] += w.step.work_seconds();
      locked += w.step.work_seconds();
    }
    auto r = codesearch::Window(u.reader, u.start, u.end);
    auto wr = codesearch::Window(u.writer, u.start, u.end);
    reader_longest = std::max(reader_longest, r.longest_seconds);
    writer_longest = std::max(writer_longest, wr.longest_seconds);
    if (LongestOp l = LongestAt(u.reader, u); l.seconds > reader_at.seconds) reader_at = l;
    if (LongestOp l = LongestAt(u.writer, u); l.seconds > writer_at.seconds) writer_at = l;
    reader_held += r.held_seconds;
    writer_held += wr.held_seconds;
    state.SetIterationTime(total);
  }
  const double n = static_cast<double>(state.iterations());
  for (const auto& [i, seconds] : lock_seconds)
    state.counters[fmt::format("lock{}_s", i)] = seconds / n;
  state.counters["lock_hold_s"] = locked / n;
  state.counters["lock_wait_s"] = waited / n;  // the upgrade waiting for the traffic's locks
  state.counters["reader_longest_s"] = reader_longest;
  state.counters["writer_longest_s"] = writer_longest;
  // The step the longest began in (0: between steps, a commit).
  state.counters["reader_longest_step"] = reader_at.step;
  state.counters["writer_longest_step"] = writer_at.step;
  state.counters["reader_held_s"] = reader_held / n;
  state.counters["writer_held_s"] = writer_held / n;
  state.counters["rows"] = static_cast<double>(chunks);
}

void BM_CloneTemplate(benchmark::State& state) {
  const std::string tpl = MakeTemplate(Shape::kQuickstart, state.range(0), false);
  for (auto _ : state) {
    Checkpoint();  // untimed: the time is what CREATE DATABASE took
    pg::DisposableDatabase db(g_cluster->AdminUrl(), tpl, "bench_clone");
    state.SetIterationTime(db.clone_seconds());
  }
  state.counters["rows"] = static_cast<double>(state.range(0));
}

void BM_Generate(benchmark::State& state) {
  const long long chunks = state.range(0);
  const std::string empty = MakeEmpty005(Shape::kQuickstart);
  for (auto _ : state) {
    pg::DisposableDatabase db(g_cluster->AdminUrl(), empty, "bench_gen");
    Checkpoint();  // start from the same state as on a fresh cluster
    pg::Connection conn(db.url());
    state.SetIterationTime(codesearch::Generate(conn, Layout(chunks)).seconds);
  }
  state.counters["rows"] = static_cast<double>(chunks);
  state.counters["rows_per_s"] = benchmark::Counter(
      static_cast<double>(chunks) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// The calibration probe: a fixed piece of work on the embedded server (a
// hash of 200K generated values), the reference bench-report divides the
// other times by, so that a baseline from another machine, or this one
// under load, still compares.
void BM_Calibrate(benchmark::State& state) {
  pg::Connection conn(g_cluster->AdminUrl());
  pqxx::nontransaction tx(conn.raw());
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    tx.exec("SELECT sum(hashtextextended(i::text, 0)::numeric) FROM generate_series(1, 200000) i");
    state.SetIterationTime(Since(t0));
  }
}

void BM_ClusterStart(benchmark::State& state) {
  for (auto _ : state) {
    auto c = pg::EmbeddedCluster::Start();
    state.SetIterationTime(c->start_seconds());
  }
}

// BM_ClusterStart's reference, of its own kind: initdb alone (processes
// started one after another, a few thousand small files written), timed
// within a cluster start of its own. A busy machine slows process start-up
// and file writes far more than the SQL probe; the cluster's own part (the
// private directory, the launch, waiting until it accepts connections) is
// what the ratio leaves to judge.
void BM_InitDb(benchmark::State& state) {
  for (auto _ : state) {
    auto c = pg::EmbeddedCluster::Start();
    state.SetIterationTime(c->initdb_seconds());
  }
}

// ---- every revision of the chain ------------------------------------------

// Rows per table for the revision benchmarks: HARNESS_BENCH_REVISION_ROWS
// (comma-separated), default 1000 and 10000; iterations of each:
// HARNESS_BENCH_REVISION_ITERATIONS, default 3.
std::vector<long long> RevisionRows() { return NumbersFromEnv("HARNESS_BENCH_REVISION_ROWS", "1000,10000"); }

// The database at `position` of the chain (base: 0) with `rows` per table
// generated from its catalog, made once: the start of the upgrade to the
// next revision and of the downgrade of this one.
std::string MakeRevisionTemplate(engine::Position position, long long rows) {
  const std::string name = fmt::format("bench_rev_{}_{}", position == 0 ? "base" : g_graph->Name(position), rows);
  static std::map<std::string, bool> made;
  if (made[name]) return name;
  const std::string tpl = CloneDatabase("template0", name);
  pg::Connection conn(g_cluster->UrlFor(tpl));
  engine::MigratorOptions quiet;
  quiet.log_steps = false;
  if (position > 0) engine::Migrator(conn, *g_graph, quiet).Upgrade(g_graph->Name(position));
  fixtures::AnySchemaOptions ao;
  ao.rows_per_table = rows;
  fixtures::GenerateAnySchema(conn, ao);
  made[name] = true;
  return tpl;
}

// One revision of the chain up (from its parent) or down (to it), on data
// generated from the catalog: the benchmarks follow the parsed chain, so a
// revision added later is measured without a line of C++.
void BM_Revision(benchmark::State& state, engine::Position position, bool down) {
  const long long rows = state.range(0);
  const engine::Position parent = position - 1;
  const std::string tpl = MakeRevisionTemplate(down ? position : parent, rows);
  for (auto _ : state) {
    pg::DisposableDatabase db(g_cluster->AdminUrl(), tpl, "bench_run");
    pg::Connection conn(db.url());
    engine::MigratorOptions o;
    o.log_steps = false;
    engine::Migrator m(conn, *g_graph, o);
    engine::RunReport r = down ? m.Downgrade(parent == 0 ? std::string("base") : g_graph->Name(parent))
                               : m.Upgrade(g_graph->Name(position));
    double total = 0;
    for (const auto& s : r.steps) total += s.work_seconds();
    state.SetIterationTime(total);
  }
  state.counters["rows_per_table"] = static_cast<double>(rows);
}

void Register() {
  auto sizes = Sizes();
  auto with_sizes = [&](benchmark::internal::Benchmark* b, int iterations) {
    for (long long s : sizes) b->Arg(s);
    b->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(iterations);
  };
  // The generator and the cluster start first, on a fresh cluster: that is
  // how they are used (verify's embedded run), and later benchmarks leave
  // the server busier (templates of every size, WAL of the UPDATE approach).
  with_sizes(benchmark::RegisterBenchmark(Name("BM_Generate", Shape::kQuickstart).c_str(), BM_Generate),
             1);
  benchmark::RegisterBenchmark("BM_Calibrate", BM_Calibrate)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->Iterations(5);
  benchmark::RegisterBenchmark("BM_ClusterStart", BM_ClusterStart)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->Iterations(3);
  benchmark::RegisterBenchmark("BM_InitDb", BM_InitDb)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->Iterations(3);
  // Iterations of each migration benchmark (HARNESS_BENCH_ITERATIONS,
  // default 3). The forecast's error test runs 1 per repetition, with its
  // repetitions interleaved at random (forecast_error.cmake).
  const int migration_iterations =
      static_cast<int>(NumbersFromEnv("HARNESS_BENCH_ITERATIONS", "3").at(0));
  if (migration_iterations < 1)
    throw std::runtime_error(fmt::format("HARNESS_BENCH_ITERATIONS={}: give 1 or more", migration_iterations));
  // The quickstart shape's benchmarks before the production shape's, in
  // the order of their baseline.
  for (const MigrationCase& c : kMigrationCases) {
    if (c.shape != Shape::kQuickstart) continue;
    with_sizes(benchmark::RegisterBenchmark(Name(c.family, c.shape).c_str(), RunMigration, c),
               migration_iterations);
  }
  for (Shape shape : {Shape::kQuickstart, Shape::kProduction})
    for (bool online : {false, true})
      with_sizes(benchmark::RegisterBenchmark(
                     Name(online ? "BM_UpgradeOnlineUnderTraffic" : "BM_UpgradeUnderTraffic", shape).c_str(),
                     BM_UpgradeUnderTraffic, shape, online),
                 3);
  with_sizes(benchmark::RegisterBenchmark(Name("BM_CloneTemplate", Shape::kQuickstart).c_str(),
                                          BM_CloneTemplate),
             5);
  for (const MigrationCase& c : kMigrationCases) {
    if (c.shape != Shape::kProduction) continue;
    with_sizes(benchmark::RegisterBenchmark(Name(c.family, c.shape).c_str(), RunMigration, c),
               migration_iterations);
  }
  // Every revision of the chain, up and down: "BM_RevisionUp/003a/1000"
  // (rows per table).
  for (engine::Position p = 1; p <= g_graph->head_position(); ++p)
    for (bool down : {false, true}) {
      auto* b = benchmark::RegisterBenchmark(
          fmt::format("{}/{}", down ? "BM_RevisionDown" : "BM_RevisionUp", g_graph->Name(p)).c_str(),
          BM_Revision, p, down);
      for (long long rows : RevisionRows()) b->Arg(rows);
      b->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(
          NumbersFromEnv("HARNESS_BENCH_REVISION_ITERATIONS", "3").at(0));
    }
}

}  // namespace
}  // namespace harness::bench

int main(int argc, char** argv) {
  using namespace harness;
  spdlog::set_level(spdlog::level::err);  // the rollback WARNING is expected here
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  try {
    bench::g_graph = std::make_unique<engine::RevisionGraph>(
        engine::RevisionGraph::LoadDirectory(engine::DefaultMigrationsDir({})));
    bench::g_cluster = pg::EmbeddedCluster::Start();
    bench::Register();
    benchmark::RunSpecifiedBenchmarks();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    bench::g_cluster.reset();
    return 3;
  }
  benchmark::Shutdown();
  bench::g_cluster.reset();
  return 0;
}
