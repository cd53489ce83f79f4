#include "harness/codesearch/restore_dropped.h"

#include <pqxx/tablewriter>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "harness/codesearch/shapes.h"
#include "harness/error.h"
#include "harness/pg/cluster.h"
#include "harness/pg/interrupt.h"
#include "harness/sys/process.h"

namespace harness::codesearch {

using pg::CopyBlock;
using pg::DataScript;
using pg::ParseDataScript;
using pg::SequenceValue;
using pg::SplitCopyLine;

namespace fs = std::filesystem;

namespace {

std::string ArrayLiteral(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    out += i ? ",\"" : "\"";
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

// One identifier of pg_dump's output at `pos`: "quoted" (with "" inside)
// or bare (pg_dump quotes every name that needs it). Advances pos.
struct Sequence {
  std::string qualified;  // quote_ident(schema).quote_ident(name), as pg_dump writes it
  std::string name;
};

// The sequences owned by a column of `tables` (serial and identity columns).
std::vector<Sequence> OwnedSequences(pqxx::transaction_base& tx,
                                     const std::vector<std::string>& tables) {
  std::vector<Sequence> out;
  for (const auto& r : tx.exec_params(
           "SELECT pg_catalog.quote_ident(sn.nspname) || '.' || pg_catalog.quote_ident(s.relname), "
           "s.relname FROM pg_catalog.pg_depend d "
           "JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
           "JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace "
           "JOIN pg_catalog.pg_class t ON t.oid = d.refobjid "
           "JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace "
           "WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
           "AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
           "AND d.deptype IN ('a', 'i') AND tn.nspname = 'public' AND t.relname = ANY ($1::text[]) "
           "ORDER BY 1",
           ArrayLiteral(tables)))
    out.push_back({r[0].as<std::string>(), r[1].as<std::string>()});
  return out;
}

// Runs pg_restore on the backup (it only reads the file) for the tables'
// and sequences' data, as a plain script on stdout.
std::string ReadBackup(const RestoreOptions& o, const std::vector<std::string>& tables,
                       const std::vector<Sequence>& sequences) {
  std::error_code ec;
  if (!fs::is_regular_file(o.backup, ec))
    throw UsageError("cannot read the backup " + o.backup + ": not a file",
                     "--from takes the file `pg_dump -Fc` wrote before the upgrade");
  fs::path bin = o.bin_dir.empty() ? pg::FindClientBinDir() : fs::path(o.bin_dir);
  std::vector<std::string> argv = {(bin / "pg_restore").string(), "--data-only", "--file=-"};
  for (const auto& t : tables) argv.push_back("--table=" + t);
  for (const auto& s : sequences) argv.push_back("--table=" + s.name);
  argv.push_back("--table=alembic_version");  // which database, at which revision, it was taken of
  argv.push_back(fs::absolute(o.backup).string());  // never read as an option
  sys::ProcessOptions po;
  po.env["LC_MESSAGES"] = "C";
  po.unset_env = {"LC_ALL"};
  po.stop_on_interrupt = true;
  auto r = sys::RunProcess(argv, po);
  sys::ThrowIfInterrupted("reading the backup with pg_restore");
  if (r.exit_code != 0) {
    std::string err = r.err.substr(0, 600);
    while (!err.empty() && err.back() == '\n') err.pop_back();
    throw UsageError("pg_restore cannot read the backup " + o.backup + ": " + err,
                     "--from takes a custom-format backup (pg_dump -Fc) made by a pg_dump no "
                     "newer than " + argv[0] + "; set HARNESS_PG_BINDIR to a newer PostgreSQL's "
                     "bin directory for a newer one");
  }
  return r.out;
}

// The columns COPY may write (generated columns are computed, and not in a dump).
std::set<std::string> WritableColumns(pqxx::transaction_base& tx, const std::string& table) {
  std::set<std::string> out;
  for (const auto& r : tx.exec_params(
           "SELECT a.attname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = "
           "a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = "
           "'public' AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated "
           "= ''",
           table))
    out.insert(r[0].as<std::string>());
  return out;
}

long long LoadTable(pqxx::transaction_base& tx, const CopyBlock& block) {
  auto writable = WritableColumns(tx, block.table);
  std::set<std::string> seen;
  std::vector<std::string> quoted;
  for (const auto& c : block.columns) {
    if (!writable.count(c) || !seen.insert(c).second)
      throw UsageError(fmt::format("the backup's {} has a column {} that the table here has not "
                                   "(or twice)",
                                   block.table, c),
                       "restore-dropped loads into the tables as the rollback recreated them: "
                       "a backup taken at 005, before the upgrade");
    quoted.push_back(tx.quote_name(c));
  }
  // The backup's lines are COPY text already: they go to the server as
  // they are (no unescaping and escaping again), through the one libpqxx
  // writer of this version that takes a raw line (stream_to keeps its
  // private). Names quoted here: this libpqxx puts them in the COPY as given.
  pqxx::tablewriter writer(tx, "public." + tx.quote_name(block.table), quoted.begin(),
                           quoted.end());
  long long rows = 0;
  for (const auto& line : block.lines) {
    // A line of another width would be refused by the server anyway; say
    // which table, before sending it.
    if (size_t fields = SplitCopyLine(line).size(); fields != block.columns.size())
      throw UsageError(fmt::format("the backup's {} has a row of {} fields for {} columns",
                                   block.table, fields, block.columns.size()));
    writer.write_raw_line(line);
    if (++rows % 100000 == 0) sys::ThrowIfInterrupted("restoring " + block.table);
  }
  writer.complete();
  return rows;
}

}  // namespace

long long RestoreReport::Rows() const {
  long long n = 0;
  for (const auto& t : tables) n += t.rows;
  return n;
}

std::vector<std::string> DependencyOrder(pqxx::transaction_base& tx,
                                         const std::vector<std::string>& tables) {
  std::map<std::string, std::set<std::string>> needs;  // table -> tables it references
  for (const auto& t : tables) needs[t];
  for (const auto& r : tx.exec_params(
           "SELECT c.relname, f.relname FROM pg_catalog.pg_constraint k "
           "JOIN pg_catalog.pg_class c ON c.oid = k.conrelid "
           "JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace "
           "JOIN pg_catalog.pg_class f ON f.oid = k.confrelid "
           "JOIN pg_catalog.pg_namespace fn ON fn.oid = f.relnamespace "
           "WHERE k.contype = 'f' AND cn.nspname = 'public' AND fn.nspname = 'public' "
           "AND c.relname = ANY ($1::text[]) AND f.relname = ANY ($1::text[]) AND c.oid <> f.oid",
           ArrayLiteral(tables)))
    needs[r[0].as<std::string>()].insert(r[1].as<std::string>());
  std::vector<std::string> order;
  std::set<std::string> done;
  while (order.size() < tables.size()) {
    bool progressed = false;
    for (const auto& t : tables) {
      if (done.count(t)) continue;
      if (std::all_of(needs[t].begin(), needs[t].end(), [&](const auto& n) { return done.count(n) > 0; })) {
        order.push_back(t);
        done.insert(t);
        progressed = true;
      }
    }
    if (!progressed)
      throw UsageError("the foreign keys between the dropped tables form a cycle: no order loads "
                       "them one after another");
  }
  return order;
}

const std::vector<std::string>& TablesDroppedBy002() {
  static const std::vector<std::string> tables = {
      "tasks",           "vendor_extractors",     "deployment_events",
      "project_configuration", "future_enhancements", "work_item_dependencies",
      "vendor_deployment_links", "work_item_deployment_links", "archived_work_items"};
  return tables;
}

RestoreReport RestoreDropped(pg::Connection& conn, const RestoreOptions& o) {
  const std::vector<std::string>& nine = TablesDroppedBy002();
  RestoreReport report;
  pqxx::work tx(conn.raw());
  if (o.lock_timeout_seconds > 0)
    tx.exec(fmt::format("SET LOCAL lock_timeout = '{}'", pg::PgDuration(o.lock_timeout_seconds)));

  std::vector<std::string> missing;
  for (const auto& t : nine)
    if (tx.exec_params("SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid "
                       "= c.relnamespace WHERE n.nspname = 'public' AND c.relname = $1 AND "
                       "c.relkind IN ('r', 'p')",
                       t)
            .empty())
      missing.push_back(t);
  if (!missing.empty()) {
    std::string names;
    for (const auto& t : missing) names += (names.empty() ? "" : ", ") + t;
    throw UsageError(fmt::format("{} of the 9 tables 002 drops are not here ({}): nothing to "
                                 "restore into",
                                 missing.size(), names),
                     missing.size() == nine.size()
                         ? "the database is still at 002: roll back first (`migration-harness "
                           "downgrade 005`), then restore"
                         : "restore-dropped fills the tables the rollback of 002 recreated");
  }
  // The backup first: a file pg_restore cannot read is said before anything else.
  auto sequences = OwnedSequences(tx, nine);
  spdlog::info("Reading {} with pg_restore", o.backup);
  DataScript script = ParseDataScript(ReadBackup(o, nine, sequences));
  // Without --baseline nothing else says the backup is the one taken just
  // before the upgrade: it must at least be of a database at 005.
  auto version = std::find_if(script.tables.begin(), script.tables.end(), [](const CopyBlock& b) {
    return b.schema == "public" && b.table == "alembic_version";
  });
  if (version == script.tables.end() || version->lines != std::vector<std::string>{kCodeSearchRevision}) {
    std::string at = "no alembic_version";
    if (version != script.tables.end()) {
      at = "alembic_version";
      for (const auto& l : version->lines) at += " " + l;
      if (version->lines.empty()) at += " empty";
    }
    throw UsageError(fmt::format("the backup {} is not of this service's database at {} ({}): nothing was "
                                 "restored",
                                 o.backup, kCodeSearchRevision, at),
                     "pass the pg_dump -Fc backup taken just before the upgrade (at " +
                         std::string(kCodeSearchRevision) + "), and --baseline with the baseline recorded then");
  }
  if (std::none_of(script.tables.begin(), script.tables.end(), [&](const CopyBlock& b) {
        return b.schema == "public" && std::find(nine.begin(), nine.end(), b.table) != nine.end();
      }))
    throw UsageError(fmt::format("the backup {} holds none of the 9 tables 002 drops: nothing to restore "
                                 "(a backup of another database, or one taken after the upgrade?)",
                                 o.backup),
                     "pass the pg_dump -Fc backup taken just before the upgrade, and --baseline with the "
                     "baseline recorded then");
  // Nobody writes into them while they are filled and compared: the lock
  // that keeps other writers out needs UPDATE, DELETE or TRUNCATE on a
  // table; with INSERT alone, ROW EXCLUSIVE is the lock that may be taken
  // (other sessions could still write, as in no maintenance window).
  std::string exclusive, shared, shared_names;
  for (const auto& t : nine) {
    const std::string name = "public." + tx.quote_name(t);
    const bool may_exclude =
        tx.exec_params1("SELECT pg_catalog.has_table_privilege($1::pg_catalog.regclass, 'UPDATE, DELETE, TRUNCATE')",
                        name)[0]
            .as<bool>();
    std::string& list = may_exclude ? exclusive : shared;
    list += (list.empty() ? "" : ", ") + name;
    if (!may_exclude) shared_names += (shared_names.empty() ? "public." : ", public.") + t;
  }
  if (!exclusive.empty()) tx.exec("LOCK TABLE " + exclusive + " IN SHARE ROW EXCLUSIVE MODE");
  if (!shared.empty()) {
    tx.exec("LOCK TABLE " + shared + " IN ROW EXCLUSIVE MODE");
    spdlog::warn("no UPDATE, DELETE or TRUNCATE right on {}: other sessions are not kept from writing into "
                 "them while they are filled",
                 shared_names);
  }
  // Code that runs when they are written (a trigger, a CHECK or default
  // calling a function) must not be another role's, run with our rights.
  pg::RefuseUntrustedTableCode(tx, conn.url(), nine);

  std::vector<std::string> not_empty;
  for (const auto& t : nine)
    if (tx.exec("SELECT EXISTS (SELECT 1 FROM public." + tx.quote_name(t) + ")")[0][0].as<bool>())
      not_empty.push_back(t);
  if (!not_empty.empty()) {
    if (o.baseline) {
      auto d = checks::CompareDroppedRows(tx, *o.baseline, &nine);
      if (d.differing.empty() && d.only_in_backup.empty()) report.already_restored = true;
    }
    if (!report.already_restored) {
      std::string names, deletes;
      for (const auto& t : not_empty) names += (names.empty() ? "" : ", ") + t;
      auto order = DependencyOrder(tx, nine);
      for (auto it = order.rbegin(); it != order.rend(); ++it)
        if (std::find(not_empty.begin(), not_empty.end(), *it) != not_empty.end())
          deletes += "DELETE FROM public." + tx.quote_name(*it) + "; ";
      deletes.pop_back();
      throw UsageError(
          fmt::format("{} of the dropped tables already hold rows ({}){}: restore-dropped fills "
                      "empty tables only (it would mix or duplicate rows)",
                      not_empty.size(), names,
                      o.baseline ? " that differ from the baseline" : ""),
          "if a partial restore left them, empty them (" + deletes + ") and run it again");
    }
  }

  if (!report.already_restored) {
    if (!script.client_encoding.empty())
      tx.exec("SET LOCAL client_encoding = " + tx.quote(script.client_encoding));
    auto order = DependencyOrder(tx, nine);
    std::string names;
    for (const auto& t : order) names += (names.empty() ? "" : ", ") + t;
    spdlog::info("Loading the 9 tables in foreign-key order: {}", names);
    for (const auto& t : order) {
      sys::ThrowIfInterrupted("restoring the dropped tables");
      auto block = std::find_if(script.tables.begin(), script.tables.end(), [&](const CopyBlock& b) {
        return b.schema == "public" && b.table == t;
      });
      RestoreReport::Table row{t, 0, block != script.tables.end()};
      if (row.in_backup) row.rows = LoadTable(tx, *block);
      spdlog::debug("  {:<28} {}", t,
                   row.in_backup ? fmt::format("{} rows", row.rows) : std::string("not in the backup"));
      report.tables.push_back(row);
    }
    for (const auto& s : script.sequences) {
      bool ours = std::any_of(sequences.begin(), sequences.end(),
                              [&](const Sequence& q) { return q.qualified == s.name; });
      if (!ours) continue;  // pg_restore was asked for these only; a same-named one elsewhere
      tx.exec_params("SELECT pg_catalog.setval($1::pg_catalog.regclass, $2, $3)", s.name, s.value,
                     s.is_called);
      report.sequences.push_back(fmt::format("{} = {}", s.name, s.value));
    }
    if (o.baseline) {
      auto d = checks::CompareDroppedRows(tx, *o.baseline, &nine);
      if (!d.differing.empty() || !d.only_in_backup.empty()) {
        std::string what = d.DifferingText("the backup");
        for (const auto& [t, rows] : d.only_in_backup)
          what += fmt::format("{}{}: baseline {} rows; none in the backup", what.empty() ? "" : "; ",
                              t, rows);
        throw RefusedError("the backup's rows differ from the baseline: " + what +
                               "; nothing was restored (the transaction was rolled back)",
                           "check that --from is the backup taken just before the upgrade, when "
                           "the baseline was recorded; to load it as it is, run without --baseline");
      }
    }
  }
  if (o.baseline) report.compared = true;

  // The foreign keys into the nine that the rollback restored NOT VALID
  // (their rows referenced rows only the backup had): each validated on its
  // own, so one whose rows still dangle stays NOT VALID and is named.
  for (const auto& r : tx.exec_params(
           "SELECT n.nspname, c.relname, k.conname FROM pg_catalog.pg_constraint k "
           "JOIN pg_catalog.pg_class c ON c.oid = k.conrelid "
           "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
           "JOIN pg_catalog.pg_class f ON f.oid = k.confrelid "
           "JOIN pg_catalog.pg_namespace fn ON fn.oid = f.relnamespace "
           "WHERE k.contype = 'f' AND NOT k.convalidated AND fn.nspname = 'public' "
           "AND f.relname = ANY ($1::text[]) AND c.relkind IN ('r', 'p') ORDER BY 2, 3",
           ArrayLiteral(nine))) {
    const std::string name = r[1].as<std::string>() + "." + r[2].as<std::string>();
    try {
      pqxx::subtransaction sub(tx, "validate");
      sub.exec("ALTER TABLE " + sub.quote_name(r[0].as<std::string>()) + "." +
               sub.quote_name(r[1].as<std::string>()) + " VALIDATE CONSTRAINT " +
               sub.quote_name(r[2].as<std::string>()));
      sub.commit();
      report.validated.push_back(name);
    } catch (const pqxx::sql_error& e) {
      std::string why = e.what();
      if (auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
      report.not_validated.push_back(name + ": " + why);
    }
  }
  tx.commit();
  return report;
}

}  // namespace harness::codesearch
