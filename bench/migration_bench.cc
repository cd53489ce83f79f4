// Migration 002 under Google Benchmark, on an embedded PostgreSQL: our
// upgrade against the quickstart's approach (nullable column, UPDATE from
// the parent, SET NOT NULL) side by side in one run, the rollback, per-step
// times with what each step did to the tables (rewrite, scan or catalog
// only), the upgrade under live traffic (lock-hold per step, how long a
// reader and a writer were held up), template clone time, generator rate
// and cluster start time.
//
// Every measured run works on a fresh clone of a prepared template, so the
// data load is never timed. Sizes: HARNESS_BENCH_SIZES (comma-separated
// chunk counts), default 10000,100000,1000000.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "fixtures/generator.h"
#include "fixtures/live_traffic.h"
#include "harness/engine/migrator.h"
#include "harness/pg/cluster.h"
#include "harness/pg/connection.h"
#include "harness/pg/disposable_database.h"

namespace harness::bench {
namespace {

std::unique_ptr<pg::EmbeddedCluster> g_cluster;
std::unique_ptr<engine::RevisionGraph> g_graph;

std::vector<long long> Sizes() {
  const char* env = std::getenv("HARNESS_BENCH_SIZES");
  std::string text = env && *env ? env : "10000,100000,1000000";
  std::vector<long long> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::stoll(item));
  return out;
}

// Repositories x chunks per repository for a chunk count.
std::pair<int, int> Shape(long long chunks) {
  int repos = static_cast<int>(std::max<long long>(10, chunks / 1000));
  return {repos, static_cast<int>(chunks / repos)};
}

std::string MakeTemplate(long long chunks, bool upgraded) {
  static std::map<std::pair<long long, bool>, std::string> made;
  auto key = std::make_pair(chunks, upgraded);
  if (auto it = made.find(key); it != made.end()) return it->second;
  std::string name = fmt::format("bench_{}_{}", upgraded ? "head" : "005", chunks);
  pg::DropDatabase(g_cluster->AdminUrl(), name);
  {
    pg::Connection admin(g_cluster->AdminUrl());
    pqxx::nontransaction tx(admin.raw());
    tx.exec("CREATE DATABASE " + tx.quote_name(name) + " TEMPLATE template0");
  }
  pg::Url url = g_cluster->UrlFor(name);
  {
    pg::Connection conn(url);
    engine::Migrator(conn, *g_graph).Upgrade("005");
    auto [repos, per_repo] = Shape(chunks);
    fixtures::GeneratorOptions go;
    go.repositories = repos;
    go.chunks_per_repo = per_repo;
    fixtures::Generate(conn, go);
    {
      pqxx::nontransaction tx(conn.raw());
      tx.exec("VACUUM ANALYZE");
    }
    if (upgraded) engine::Migrator(conn, *g_graph).Upgrade("head");
  }
  made[key] = name;
  return name;
}

// What a step did to each table: a new relfilenode means a rewrite; having
// updated at least half of its rows means an update of every row (a new
// version of each, in place); reading at least half of its blocks (and more
// than a handful) means a scan; otherwise the step touched the catalog only.
// Reported as e.g. "scan-code_chunks" or "update-code_chunks+repositories".
struct TableProbe {
  long long filenode = 0;
  long long blocks_read = 0;
  long long tuples_updated = 0;
};
using Probe = std::map<std::string, TableProbe>;

Probe ReadProbe(pqxx::transaction_base& tx) {
  Probe out;
  for (const auto& r : tx.exec(
           "SELECT relname, pg_relation_filenode(oid), pg_stat_get_xact_blocks_fetched(oid), "
           "pg_stat_get_xact_tuples_updated(oid) "
           "FROM pg_class WHERE relname IN ('repositories', 'code_chunks') AND relkind = 'r'"))
    out[r[0].as<std::string>()] = {r[1].as<long long>(), r[2].as<long long>(),
                                   r[3].as<long long>()};
  return out;
}

std::string Classify(pqxx::transaction_base& tx, const Probe& before) {
  Probe after = ReadProbe(tx);
  std::string rewritten, updated, scanned;
  auto add = [](std::string& list, const std::string& table) {
    list += (list.empty() ? "" : "+") + table;
  };
  for (const auto& [table, b] : before) {
    auto it = after.find(table);
    if (it == after.end()) continue;
    pqxx::row size = tx.exec_params1(
        "SELECT greatest(relpages, 1), greatest(reltuples, 1)::bigint FROM pg_class "
        "WHERE relname = $1 AND relkind = 'r'",
        table);
    long long pages = size[0].as<long long>(), rows = size[1].as<long long>();
    const TableProbe& a = it->second;
    if (a.filenode != b.filenode) add(rewritten, table);
    else if (a.tuples_updated - b.tuples_updated >= std::max<long long>(rows / 2, 1))
      add(updated, table);
    else if (a.blocks_read - b.blocks_read >= std::max<long long>(pages / 2, 8))
      add(scanned, table);
  }
  if (!rewritten.empty()) return "rewrite-" + rewritten;
  if (!updated.empty()) return "update-" + updated;
  if (!scanned.empty()) return "scan-" + scanned;
  return "catalog";
}

void RunMigration(benchmark::State& state, bool quickstart_approach, bool downgrade) {
  const long long chunks = state.range(0);
  const std::string tpl = MakeTemplate(chunks, downgrade);
  std::map<int, double> step_seconds;
  std::map<int, std::string> step_kind;
  std::map<int, std::string> step_name;
  for (auto _ : state) {
    pg::DisposableDatabase db(g_cluster->AdminUrl(), tpl, "bench_run");
    pg::Connection conn(db.url());
    engine::MigratorOptions o;
    if (quickstart_approach) o.settings["migration_harness.force_update_path"] = "on";
    Probe before;
    o.before_step = [&](const engine::StepTiming&, pqxx::transaction_base& tx) {
      before = ReadProbe(tx);
    };
    o.after_step = [&](const engine::StepTiming& s, pqxx::transaction_base& tx) {
      step_kind[s.index] = Classify(tx, before);
      step_name[s.index] = s.name;
    };
    engine::Migrator m(conn, *g_graph, o);
    engine::RunReport r = downgrade ? m.Downgrade("005") : m.Upgrade("head");
    // The probes run between steps, outside the steps' own timings: the
    // iteration time is the sum of the steps.
    double total = 0;
    for (const auto& s : r.steps) {
      step_seconds[s.index] += s.seconds;
      total += s.seconds;
    }
    state.SetIterationTime(total);
  }
  std::string label;
  for (const auto& [i, seconds] : step_seconds) {
    state.counters[fmt::format("step{}_s", i)] = seconds / static_cast<double>(state.iterations());
    label += fmt::format("{}{}:{}", label.empty() ? "" : " ", i, step_kind[i]);
  }
  state.counters["rows"] = static_cast<double>(chunks);
  state.counters["rows_per_s"] = benchmark::Counter(static_cast<double>(chunks) *
                                                        static_cast<double>(state.iterations()),
                                                    benchmark::Counter::kIsRate);
  state.SetLabel(label);
}

void BM_Upgrade002(benchmark::State& state) { RunMigration(state, false, false); }
void BM_Upgrade002QuickstartApproach(benchmark::State& state) { RunMigration(state, true, false); }
void BM_Downgrade002(benchmark::State& state) { RunMigration(state, false, true); }

// The upgrade with a reader and a writer on both tables all through: how
// long 002 holds the tables' locks in each step (every step from step 1 to
// the commit holds both), and how long live operations were held up.
void BM_UpgradeUnderTraffic(benchmark::State& state) {
  const long long chunks = state.range(0);
  const std::string tpl = MakeTemplate(chunks, false);
  std::map<int, double> lock_seconds;
  double locked = 0, reader_longest = 0, writer_longest = 0, reader_held = 0, writer_held = 0;
  for (auto _ : state) {
    pg::DisposableDatabase db(g_cluster->AdminUrl(), tpl, "bench_traffic");
    fixtures::UpgradeUnderTraffic u = fixtures::RunUpgradeUnderTraffic(db.url(), *g_graph);
    double total = 0;
    for (const auto& w : u.steps) {
      total += w.step.seconds;
      if (!w.tables_locked) continue;
      lock_seconds[w.step.index] += w.step.seconds;
      locked += w.step.seconds;
    }
    auto r = fixtures::Window(u.reader, u.start, u.end);
    auto wr = fixtures::Window(u.writer, u.start, u.end);
    reader_longest = std::max(reader_longest, r.longest_seconds);
    writer_longest = std::max(writer_longest, wr.longest_seconds);
    reader_held += r.held_seconds;
    writer_held += wr.held_seconds;
    state.SetIterationTime(total);
  }
  const double n = static_cast<double>(state.iterations());
  for (const auto& [i, seconds] : lock_seconds)
    state.counters[fmt::format("lock{}_s", i)] = seconds / n;
  state.counters["lock_hold_s"] = locked / n;
  state.counters["reader_longest_s"] = reader_longest;
  state.counters["writer_longest_s"] = writer_longest;
  state.counters["reader_held_s"] = reader_held / n;
  state.counters["writer_held_s"] = writer_held / n;
  state.counters["rows"] = static_cast<double>(chunks);
}

// CREATE DATABASE ... STRATEGY FILE_COPY starts with a checkpoint: without
// one first, the clone would also pay for what earlier benchmarks left dirty.
void Checkpoint() {
  pg::Connection admin(g_cluster->AdminUrl());
  pqxx::nontransaction tx(admin.raw());
  tx.exec("CHECKPOINT");
}

void BM_CloneTemplate(benchmark::State& state) {
  const std::string tpl = MakeTemplate(state.range(0), false);
  for (auto _ : state) {
    Checkpoint();  // untimed: the time is what CREATE DATABASE took
    pg::DisposableDatabase db(g_cluster->AdminUrl(), tpl, "bench_clone");
    state.SetIterationTime(db.clone_seconds());
  }
  state.counters["rows"] = static_cast<double>(state.range(0));
}

void BM_Generate(benchmark::State& state) {
  const long long chunks = state.range(0);
  const std::string empty = "bench_empty_005";
  static bool made = false;
  if (!made) {
    pg::DropDatabase(g_cluster->AdminUrl(), empty);
    pg::Connection admin(g_cluster->AdminUrl());
    pqxx::nontransaction tx(admin.raw());
    tx.exec("CREATE DATABASE " + tx.quote_name(empty) + " TEMPLATE template0");
    pg::Connection conn(g_cluster->UrlFor(empty));
    engine::Migrator(conn, *g_graph).Upgrade("005");
    made = true;
  }
  for (auto _ : state) {
    pg::DisposableDatabase db(g_cluster->AdminUrl(), empty, "bench_gen");
    Checkpoint();  // start from the same state as on a fresh cluster
    pg::Connection conn(db.url());
    auto [repos, per_repo] = Shape(chunks);
    fixtures::GeneratorOptions go;
    go.repositories = repos;
    go.chunks_per_repo = per_repo;
    state.SetIterationTime(fixtures::Generate(conn, go).seconds);
  }
  state.counters["rows"] = static_cast<double>(chunks);
  state.counters["rows_per_s"] = benchmark::Counter(
      static_cast<double>(chunks) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_ClusterStart(benchmark::State& state) {
  for (auto _ : state) {
    auto c = pg::EmbeddedCluster::Start();
    state.SetIterationTime(c->start_seconds());
  }
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
  with_sizes(benchmark::RegisterBenchmark("BM_Generate", BM_Generate), 1);
  benchmark::RegisterBenchmark("BM_ClusterStart", BM_ClusterStart)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->Iterations(3);
  with_sizes(benchmark::RegisterBenchmark("BM_Upgrade002", BM_Upgrade002), 3);
  with_sizes(benchmark::RegisterBenchmark("BM_Upgrade002QuickstartApproach",
                                          BM_Upgrade002QuickstartApproach), 3);
  with_sizes(benchmark::RegisterBenchmark("BM_Downgrade002", BM_Downgrade002), 3);
  with_sizes(benchmark::RegisterBenchmark("BM_UpgradeUnderTraffic", BM_UpgradeUnderTraffic), 3);
  with_sizes(benchmark::RegisterBenchmark("BM_CloneTemplate", BM_CloneTemplate), 5);
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
