#include "harness/checks/suites.h"

#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "harness/error.h"
#include "harness/inspect/catalog.h"
#include "harness/inspect/shape.h"
#include "harness/pg/files.h"

namespace harness::checks {

namespace {

// Foreign keys from the dropped tables to the two tables that stay.
constexpr const char* kBlockingForeignKeys = R"SQL(
SELECT src.relname AS source, k.conname, dst.relname AS target,
       format('ALTER TABLE public.%I DROP CONSTRAINT %I;', src.relname, k.conname) AS fix
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class src ON src.oid = k.conrelid
JOIN pg_catalog.pg_class dst ON dst.oid = k.confrelid
WHERE k.contype = 'f'
  AND src.relnamespace = 'public'::regnamespace
  AND dst.oid IN (to_regclass('public.repositories'), to_regclass('public.code_files'),
                  to_regclass('public.code_chunks'))
  AND src.relname = ANY ($1)
ORDER BY src.relname, k.conname
)SQL";

// Everything outside the nine tables that depends on them (002's step 2
// runs the same query): what DROP TABLE would drop with them, followed
// through automatic and internal dependencies, then every normal
// dependency on one of those from an object that is not among them.
// `restored` marks production's four task links into tasks (002 drops
// them by name, its rollback restores them; $2 is the shape, $3 and $4
// their tables and names, kRestoredByRollback); anything
// else is refused, `remove` being the statement that removes it, names
// schema-qualified. Foreign keys cloned onto partitions follow their parent.
constexpr const char* kDependents = R"SQL(
WITH RECURSIVE dropped(classid, objid) AS (
    SELECT 'pg_catalog.pg_class'::regclass, c.oid
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
       AND c.relname = ANY ($1)
    UNION
    SELECT d.classid, d.objid
      FROM pg_catalog.pg_depend d
      JOIN dropped x ON d.refclassid = x.classid AND d.refobjid = x.objid
     WHERE d.deptype IN ('a', 'i')
), dependent AS (
    SELECT DISTINCT d.classid, d.objid, d.objsubid
      FROM pg_catalog.pg_depend d
      JOIN dropped x ON d.refclassid = x.classid AND d.refobjid = x.objid
     WHERE d.deptype = 'n'
       AND NOT EXISTS (SELECT 1 FROM dropped y WHERE y.classid = d.classid AND y.objid = d.objid)
)
SELECT coalesce((SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::regclass,
                                                     rw.ev_class, 0)
                   FROM pg_catalog.pg_rewrite rw
                  WHERE dep.classid = 'pg_catalog.pg_rewrite'::regclass AND rw.oid = dep.objid
                    AND rw.rulename = '_RETURN'),
                pg_catalog.pg_describe_object(dep.classid, dep.objid, dep.objsubid)) AS what,
       coalesce(k.contype = 'f' AND k.conparentid = 0 AND $2 = 'production'
                AND (k.conrelid, k.conname::text) IN (
                      SELECT to_regclass('public.' || v.tab), v.con
                        FROM ROWS FROM (pg_catalog.unnest($3::text[]),
                                       pg_catalog.unnest($4::text[])) AS v(tab, con))
                -- NOT VALID after a rollback, until the rows are back.
                AND pg_catalog.regexp_replace(pg_catalog.pg_get_constraintdef(k.oid),
                                              ' NOT VALID$', '') =
                    'FOREIGN KEY (task_id) REFERENCES tasks(id)', false) AS restored,
       coalesce(k.contype = 'f' AND k.conparentid <> 0, false) AS clone,
       coalesce((SELECT format('%I.%I -> %I.%I', sn.nspname, src.relname, dn.nspname, dst.relname)
                   FROM pg_catalog.pg_class src
                   JOIN pg_catalog.pg_namespace sn ON sn.oid = src.relnamespace
                   JOIN pg_catalog.pg_class dst ON dst.oid = k.confrelid
                   JOIN pg_catalog.pg_namespace dn ON dn.oid = dst.relnamespace
                  WHERE src.oid = k.conrelid), '') AS link,
       coalesce(quote_ident(k.conname::text), '') AS conname,
       CASE
         WHEN dep.classid = 'pg_catalog.pg_rewrite'::regclass THEN
           (SELECT CASE WHEN rw.rulename = '_RETURN' AND v.relkind = 'm'
                          THEN format('DROP MATERIALIZED VIEW %I.%I;', vn.nspname, v.relname)
                        WHEN rw.rulename = '_RETURN'
                          THEN format('DROP VIEW %I.%I;', vn.nspname, v.relname)
                        ELSE format('DROP RULE %I ON %I.%I;', rw.rulename, vn.nspname, v.relname) END
              FROM pg_catalog.pg_rewrite rw JOIN pg_catalog.pg_class v ON v.oid = rw.ev_class
              JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
             WHERE rw.oid = dep.objid)
         WHEN dep.classid = 'pg_catalog.pg_proc'::regclass THEN
           (SELECT format('DROP %s %I.%I(%s);', CASE p.prokind WHEN 'p' THEN 'PROCEDURE'
                          WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
                          pn.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid))
              FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
             WHERE p.oid = dep.objid)
         WHEN dep.classid = 'pg_catalog.pg_class'::regclass AND dep.objsubid > 0 THEN
           (SELECT format(CASE WHEN c.relkind = 'c' THEN 'ALTER TYPE %I.%I DROP ATTRIBUTE %I;'
                               ELSE 'ALTER TABLE %I.%I DROP COLUMN %I;' END,
                          cn.nspname, c.relname, a.attname)
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
              JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = dep.objsubid
             WHERE c.oid = dep.objid)
         WHEN dep.classid = 'pg_catalog.pg_attrdef'::regclass THEN
           (SELECT format('ALTER TABLE %I.%I ALTER COLUMN %I DROP DEFAULT;', cn.nspname, c.relname,
                          a.attname)
              FROM pg_catalog.pg_attrdef ad
              JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
              JOIN pg_catalog.pg_class c ON c.oid = ad.adrelid
              JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
             WHERE ad.oid = dep.objid)
         WHEN dep.classid = 'pg_catalog.pg_constraint'::regclass THEN
           (SELECT format('ALTER TABLE %I.%I DROP CONSTRAINT %I;', cn.nspname, c.relname, k.conname)
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
             WHERE c.oid = k.conrelid)
         WHEN dep.classid = 'pg_catalog.pg_trigger'::regclass THEN
           (SELECT format('DROP TRIGGER %I ON %I.%I;', tg.tgname, cn.nspname, c.relname)
              FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
              JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace WHERE tg.oid = dep.objid)
         WHEN dep.classid = 'pg_catalog.pg_policy'::regclass THEN
           (SELECT format('DROP POLICY %I ON %I.%I;', p.polname, cn.nspname, c.relname)
              FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
              JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace WHERE p.oid = dep.objid)
         ELSE format('remove or change %s',
                     pg_catalog.pg_describe_object(dep.classid, dep.objid, dep.objsubid))
       END AS remove
  FROM dependent dep
  LEFT JOIN pg_catalog.pg_constraint k
         ON dep.classid = 'pg_catalog.pg_constraint'::regclass AND k.oid = dep.objid
 ORDER BY 1
)SQL";

// Triggers on tables outside the nine whose function's body names one of
// them as a word ($1); a PL/pgSQL body is text, not a dependency.
constexpr const char* kTriggerFunctionsNamingTheNine = R"SQL(
SELECT format('trigger %I on %I.%I runs %I.%I()', tg.tgname, n.nspname, c.relname,
              pn.nspname, p.proname) AS what,
       pg_catalog.array_to_string(ARRAY(
         SELECT t FROM pg_catalog.unnest($1::text[]) t
          WHERE p.prosrc OPERATOR(pg_catalog.~*) ('\m' || t || '\M') ORDER BY 1), ', ') AS names
  FROM pg_catalog.pg_trigger tg
  JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid
  JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
 WHERE NOT tg.tgisinternal
   AND NOT (c.relnamespace = 'public'::regnamespace AND c.relname = ANY ($1))
   AND EXISTS (SELECT 1 FROM pg_catalog.unnest($1::text[]) t
                WHERE p.prosrc OPERATOR(pg_catalog.~*) ('\m' || t || '\M'))
 ORDER BY 1
)SQL";

// The foreign keys from kept tables into tasks that the production schema
// has at 005: 002 drops them and its rollback restores them (NOT VALID
// when their rows reference tasks that are gone).
struct RestoredForeignKey {
  const char* table;
  const char* name;
};
constexpr RestoredForeignKey kRestoredByRollback[] = {
    {"task_branch_links", "fk_task_branch_links_task_id_tasks"},
    {"task_commit_links", "fk_task_commit_links_task_id_tasks"},
    {"task_planning_references", "fk_task_planning_references_task_id_tasks"},
    {"task_status_history", "fk_task_status_history_task_id_tasks"}};

// The CHECK of both project_id columns, as pg_get_constraintdef prints it.
const std::string kProjectIdCheck =
    fmt::format("CHECK ((((project_id)::text ~ '{}'::text) AND "
                "(char_length((project_id)::text) <= 50)))",
                kProjectIdPattern);

// Rows whose project_id the CHECK rejects, qualified like the constraint.
std::string ProjectIdRejected() {
  return fmt::format(
      "NOT (project_id OPERATOR(pg_catalog.~) '{}' AND pg_catalog.char_length(project_id) <= 50)",
      kProjectIdPattern);
}

// Autovacuum workers on the tables 002's step 1 locks (code_files on the
// production shape), now. The table is read from the progress views, or,
// where they hide it from a role without pg_read_all_stats, from the
// worker's locks (pg_locks shows every session's). Databases cloned from one
// template share table OIDs: only this database's locks count.
constexpr const char* kAutovacuumOnLockedTables = R"SQL(
SELECT a.pid, c.relname,
       CASE WHEN pa.pid IS NOT NULL THEN 'analyzing' ELSE 'vacuuming' END AS doing,
       coalesce(pv.phase, pa.phase) AS phase,
       coalesce(a.query LIKE '%(to prevent wraparound)%', false) AS wraparound
FROM pg_catalog.pg_stat_activity a
LEFT JOIN pg_catalog.pg_stat_progress_vacuum pv ON pv.pid = a.pid
LEFT JOIN pg_catalog.pg_stat_progress_analyze pa ON pa.pid = a.pid
JOIN pg_catalog.pg_class c
  ON c.oid = coalesce(pv.relid, pa.relid)
  OR (pv.relid IS NULL AND pa.relid IS NULL AND c.oid IN (
        SELECT l.relation FROM pg_catalog.pg_locks l
        WHERE l.pid = a.pid AND l.locktype = 'relation' AND l.granted
          AND l.database = (SELECT oid FROM pg_catalog.pg_database
                            WHERE datname = pg_catalog.current_database())))
WHERE a.backend_type = 'autovacuum worker'
  AND a.datname = pg_catalog.current_database()
  AND c.relnamespace = 'public'::pg_catalog.regnamespace
  AND c.relname IN ('repositories', 'code_files', 'code_chunks')
  AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.pid
)SQL";

CheckResult Pass(std::string id, std::string detail) {
  return {std::move(id), Status::kPass, std::move(detail)};
}
CheckResult Fail(std::string id, std::string detail) {
  return {std::move(id), Status::kFail, std::move(detail)};
}
CheckResult Check(bool ok, std::string id, std::string detail_ok, std::string detail_fail) {
  return ok ? Pass(std::move(id), std::move(detail_ok)) : Fail(std::move(id), std::move(detail_fail));
}

std::string ArrayLiteral(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out + "}";
}

bool TableExists(pqxx::transaction_base& tx, const std::string& name) {
  return !tx.exec_params("SELECT to_regclass($1)", name)[0][0].is_null();
}

CheckResult OrphanCheck(pqxx::transaction_base& tx, const std::string& id, inspect::Shape shape) {
  const inspect::ShapeSql sql = inspect::SqlFor(shape);
  pqxx::row r = tx.exec1(fmt::format(
      "SELECT count(*) AS orphans, coalesce(string_agg(id::text, ', ') FILTER (WHERE rn <= 5), "
      "'') AS sample FROM (SELECT c.id, row_number() OVER (ORDER BY c.id) AS rn FROM "
      "public.code_chunks c WHERE {}) o",
      sql.orphaned));
  long long n = r["orphans"].as<long long>();
  const bool production = shape == inspect::Shape::kProduction;
  return Check(n == 0, id, "No orphaned code_chunks",
               fmt::format("No orphaned code_chunks: found {} chunk(s) whose {} does not exist "
                           "(e.g. {}); delete them or restore their {}: {}",
                           n, production ? "code file, or whose file's repository," : "repository",
                           r["sample"].c_str(), production ? "files and repositories" : "repositories",
                           sql.delete_orphans));
}

// Chunks whose project_id is not their repository's.
long long MismatchedChunks(pqxx::transaction_base& tx, inspect::Shape shape) {
  return tx.exec1(fmt::format("SELECT count(*) FROM {} WHERE c.project_id IS DISTINCT FROM "
                              "r.project_id",
                              inspect::SqlFor(shape).chunk_to_repository))[0]
      .as<long long>();
}

// What 002 does with each object outside the nine tables that depends on
// them; listed only when there is one (the production shape's task links).
std::optional<CheckResult> DependentsCheck(pqxx::transaction_base& tx, inspect::Shape shape) {
  std::vector<std::string> restored, refused, remove;
  std::vector<std::string> tables, names;
  for (const auto& k : kRestoredByRollback) {
    tables.emplace_back(k.table);
    names.emplace_back(k.name);
  }
  for (const auto& r : tx.exec_params(kDependents, ArrayLiteral(TablesDroppedBy002()),
                                      inspect::ShapeName(shape), ArrayLiteral(tables),
                                      ArrayLiteral(names))) {
    if (r["clone"].as<bool>()) continue;
    if (r["restored"].as<bool>()) {
      restored.push_back(fmt::format("{}.{}", r["link"].c_str(), r["conname"].c_str()));
    } else {
      refused.push_back(r["what"].as<std::string>());
      remove.push_back(r["remove"].as<std::string>());
    }
  }
  if (restored.empty() && refused.empty()) return std::nullopt;
  auto join = [](const std::vector<std::string>& items, const char* sep) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
    return out;
  };
  std::string keys;
  if (!restored.empty())
    keys = fmt::format("{} foreign key(s) from kept tables that 002 drops by name and its "
                       "rollback restores (NOT VALID where their rows then reference nothing): {}",
                       restored.size(), join(restored, ", "));
  return Check(refused.empty(), "pre.dependent_objects",
               "Objects that depend on the 9 tables: " + keys,
               fmt::format("Objects outside the 9 tables depend on them and block 002: {}; remove "
                           "them first (save their definitions if they are still wanted; the "
                           "rollback cannot bring them back): {}{}",
                           join(refused, ", "), join(remove, " "),
                           keys.empty() ? "" : "; also found " + keys));
}

std::vector<std::string> PresentDroppedTables(pqxx::transaction_base& tx) {
  std::vector<std::string> present;
  for (const auto& t : TablesDroppedBy002())
    if (TableExists(tx, t)) present.push_back(t);
  return present;
}

std::string ColumnShape(const inspect::Column& c) {
  return fmt::format("{}{}{}", c.type, c.not_null ? ", NOT NULL" : ", NULL",
                     c.default_expr.empty() ? ", no default" : ", DEFAULT " + c.default_expr);
}

// 002 keeps a project_id column, CHECK or index that exists before it runs
// (built beforehand, or by hand) when it is what 002 would build, and
// refuses it otherwise: the same rules, run here on the data as it is, so
// that `check pre` fails where the upgrade would. Only listed when one of
// those objects exists.
std::optional<CheckResult> ExistingProjectIdCheck(pqxx::transaction_base& tx,
                                                  inspect::Shape shape) {
  inspect::CatalogSnapshot cat = inspect::TakeSnapshot(tx);
  const inspect::Table* repos = cat.FindTable("repositories");
  const inspect::Table* chunks = cat.FindTable("code_chunks");
  std::vector<std::string> found, problems;
  for (const inspect::Table* t : {repos, chunks}) {
    const inspect::Column* c = t->FindColumn("project_id");
    if (!c) continue;
    found.push_back(t->name + ".project_id");
    const bool repo = t == repos;
    const bool shape_ok = c->type == "character varying(50)" && c->not_null &&
                          (repo ? c->default_expr == "'default'::character varying"
                                : c->default_expr.empty());
    if (!shape_ok)
      problems.push_back(fmt::format(
          "{}.project_id is {}, not {}", t->name, ColumnShape(*c),
          repo ? "character varying(50), NOT NULL, DEFAULT 'default'::character varying"
               : "character varying(50), NOT NULL, no default"));
    pqxx::row bad = tx.exec1(fmt::format(
        "SELECT count(*), coalesce((SELECT string_agg(quote_nullable(v), ', ') FROM "
        "(SELECT DISTINCT project_id AS v FROM {0} WHERE {1} ORDER BY 1 LIMIT 5) s), '') "
        "FROM {0} WHERE {1}",
        tx.quote_name(t->name), ProjectIdRejected()));
    if (long long n = bad[0].as<long long>(); n > 0)
      problems.push_back(fmt::format(
          "{} row(s) of {} have a project_id that the CHECK rejects (e.g. {}); list them with: "
          "SELECT id, project_id FROM public.{} WHERE {};",
          n, t->name, bad[1].c_str(), t->name, ProjectIdRejected()));
  }
  for (auto [t, name] : {std::pair{repos, "check_repositories_project_id"},
                         std::pair{chunks, "check_code_chunks_project_id"}}) {
    const inspect::Constraint* k = t->FindConstraint(name);
    if (!k) continue;
    found.push_back(name);
    std::string definition = k->definition;
    if (definition.ends_with(" NOT VALID")) definition.resize(definition.size() - 10);
    if (definition != kProjectIdCheck)
      problems.push_back(fmt::format("constraint {} on {} exists with another definition: {}; "
                                     "drop it: ALTER TABLE public.{} DROP CONSTRAINT {};",
                                     name, t->name, k->definition, t->name, name));
  }
  if (const inspect::Index* idx = repos->FindIndex("idx_project_repository")) {
    found.push_back("idx_project_repository");
    if (!idx->valid || !idx->definition.ends_with("USING btree (project_id, id)"))
      problems.push_back(fmt::format("index idx_project_repository is {}{}; drop it: DROP INDEX "
                                     "CONCURRENTLY public.idx_project_repository;",
                                     idx->definition, idx->valid ? "" : " (INVALID)"));
  }
  // A chunk whose project_id differs from its repository's is kept as it
  // is, and `check post` then fails its data integrity check.
  if (repos->FindColumn("project_id") && chunks->FindColumn("project_id")) {
    if (long long differ = MismatchedChunks(tx, shape); differ > 0)
      problems.push_back(fmt::format(
          "{} code_chunks have a project_id other than their repository's (check post would "
          "fail); align them: {}",
          differ,
          shape == inspect::Shape::kProduction
              ? "UPDATE public.code_chunks c SET project_id = r.project_id FROM "
                "public.code_files f JOIN public.repositories r ON r.id = f.repository_id WHERE "
                "f.id = c.code_file_id AND c.project_id IS DISTINCT FROM r.project_id;"
              : "UPDATE public.code_chunks c SET project_id = r.project_id FROM "
                "public.repositories r WHERE r.id = c.repository_id AND c.project_id IS DISTINCT "
                "FROM r.project_id;"));
  }
  if (found.empty()) return std::nullopt;
  std::string names;
  for (const auto& f : found) names += (names.empty() ? "" : ", ") + f;
  std::string why;
  for (const auto& p : problems) why += (why.empty() ? "" : "; ") + p;
  return Check(problems.empty(), "pre.existing_project_id",
               "Objects of 002 built beforehand are what 002 builds (" + names + ": kept)",
               "Objects of 002 built beforehand would make the upgrade refuse: " + why);
}

// The production shape's foreign keys into tasks after a rollback: each
// must be back. One restored NOT VALID (its rows reference tasks that came
// back empty) is named with that count and the way to finish; its catalog
// key goes into `not_valid`. nullopt on the quickstart's shape, which has
// none of those tables.
std::vector<CheckResult> ForeignKeysCheck(pqxx::transaction_base& tx,
                                          const inspect::CatalogSnapshot& cat,
                                          std::set<std::string>& not_valid) {
  std::vector<CheckResult> out;
  std::vector<std::string> missing;
  int restored = 0, expected = 0;
  for (const auto& fk : kRestoredByRollback) {
    const inspect::Table* t = cat.FindTable(fk.table);
    if (!t) continue;
    ++expected;
    const inspect::Constraint* k = t->FindConstraint(fk.name);
    if (!k) {
      missing.push_back(fmt::format("{}.{}", fk.table, fk.name));
      continue;
    }
    ++restored;
    if (k->validated) continue;
    not_valid.insert(fmt::format("constraint {}.{}", fk.table, fk.name));
    long long dangling =
        tx.exec1(fmt::format("SELECT count(*) FROM public.{} s WHERE s.task_id IS NOT NULL AND NOT "
                             "EXISTS (SELECT 1 FROM public.tasks t WHERE t.id = s.task_id)",
                             tx.quote_name(fk.table)))[0]
            .as<long long>();
    out.push_back({std::string(kNotValidPrefix) + fk.name, Status::kInfo,
                   fmt::format("Restored NOT VALID: {}.{} ({} row(s) reference tasks that are gone; "
                               "`migration-harness restore-dropped` reloads tasks from the "
                               "backup and validates it; by hand: ALTER TABLE {} VALIDATE "
                               "CONSTRAINT {};)",
                               fk.table, fk.name, dangling, fk.table, fk.name)});
  }
  if (expected == 0) return out;
  std::string names;
  for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
  out.insert(out.begin(),
             Check(missing.empty(), "rollback.foreign_keys_restored",
                   fmt::format("Foreign keys into tasks that 002 dropped are restored ({} of {}{})",
                               restored, expected,
                               not_valid.empty()
                                   ? ", all validated"
                                   : fmt::format(", {} NOT VALID: the 9 tables come back empty",
                                                 not_valid.size())),
                   fmt::format("Foreign keys into tasks that 002 dropped are restored: {} missing "
                               "({})",
                               missing.size(), names)));
  return out;
}

// Step 1 of 002 locks repositories and code_chunks (and code_files) first
// thing; an autovacuum worker on one of them holds a lock that conflicts,
// so step 1 waits until deadlock_timeout, when PostgreSQL cancels the
// worker (one that prevents wraparound is never cancelled: step 1 then
// waits for it to finish, or for --lock-timeout). Said only when it is so.
std::optional<CheckResult> AutovacuumNote(pqxx::transaction_base& tx, inspect::Shape shape) {
  pqxx::result r = tx.exec(kAutovacuumOnLockedTables, "looking for autovacuum workers");
  if (r.empty()) return std::nullopt;
  std::string workers;
  bool wraparound = false;
  for (const auto& row : r) {
    workers += fmt::format("{}{} {} (pid {}, phase {})", workers.empty() ? "" : "; ",
                           row["doing"].c_str(), row["relname"].c_str(), row["pid"].c_str(),
                           row["phase"].is_null() ? "not visible to this role"
                                                  : row["phase"].c_str());
    wraparound |= row["wraparound"].as<bool>();
  }
  const std::string deadlock_timeout =
      tx.exec1("SELECT pg_catalog.current_setting('deadlock_timeout')")[0].as<std::string>();
  return CheckResult{
      "pre.autovacuum", Status::kInfo,
      fmt::format("Autovacuum is at work on a table 002 locks: {}. Step 1 will wait for it {}; "
                  "run `{}` before the window",
                  workers,
                  wraparound ? "to finish (a vacuum to prevent wraparound is never cancelled), "
                               "or until --lock-timeout"
                             : fmt::format("until deadlock_timeout ({}), after which PostgreSQL "
                                           "cancels it",
                                           deadlock_timeout),
                  shape == inspect::Shape::kProduction
                      ? "VACUUM ANALYZE repositories, code_files, code_chunks;"
                      : "VACUUM ANALYZE repositories, code_chunks;")};
}

}  // namespace

const std::vector<std::string>& TablesDroppedBy002() {
  static const std::vector<std::string> tables = {
      "tasks",           "vendor_extractors",     "deployment_events",
      "project_configuration", "future_enhancements", "work_item_dependencies",
      "vendor_deployment_links", "work_item_deployment_links", "archived_work_items"};
  return tables;
}

SuiteResult RunPreChecks(pqxx::transaction_base& tx, const PreCheckOptions& options) {
  SuiteResult s{"pre", {}};
  std::vector<std::string> missing;
  for (const char* t : {"repositories", "code_chunks"})
    if (!TableExists(tx, t)) missing.push_back(t);
  if (!missing.empty()) {
    s.checks.push_back(Fail("pre.core_tables", "Core tables exist: missing " + ArrayLiteral(missing)));
    return s;
  }
  // Neither shape: exit 2 before anything else is read.
  const inspect::Shape shape = *inspect::DetectShape(tx);
  s.checks.push_back(Pass("pre.core_tables",
                          shape == inspect::Shape::kProduction
                              ? "Core tables exist (repositories, code_files, code_chunks: the "
                                "production shape)"
                              : "Core tables exist (repositories, code_chunks)"));

  std::string blocking, fix;
  for (const auto& r : tx.exec_params(kBlockingForeignKeys, ArrayLiteral(TablesDroppedBy002()))) {
    blocking += fmt::format("{}{}.{} -> {}", blocking.empty() ? "" : ", ", r["source"].c_str(),
                            r["conname"].c_str(), r["target"].c_str());
    fix += fmt::format("{}{}", fix.empty() ? "" : " ", r["fix"].c_str());
  }
  s.checks.push_back(Check(blocking.empty(), "pre.no_blocking_foreign_keys",
                           shape == inspect::Shape::kProduction
                               ? "No foreign keys found from dropped tables to "
                                 "repositories/code_files/code_chunks"
                               : "No foreign keys found from dropped tables to "
                                 "repositories/code_chunks",
                           "Foreign keys from dropped tables block 002: " + blocking +
                               " (drop them first: " + fix + ")"));
  if (auto dependents = DependentsCheck(tx, shape)) s.checks.push_back(std::move(*dependents));
  // pg_depend does not see into function bodies: a trigger on a kept table
  // whose function names one of the nine fails once they are gone.
  std::string naming;
  for (const auto& r : tx.exec_params(kTriggerFunctionsNamingTheNine,
                                      ArrayLiteral(TablesDroppedBy002())))
    naming += fmt::format("{}{} (names {})", naming.empty() ? "" : "; ", r["what"].c_str(),
                          r["names"].c_str());
  if (!naming.empty())
    s.checks.push_back({"pre.functions_naming_dropped_tables", Status::kInfo,
                        "Trigger functions on kept tables that name a table 002 drops (their "
                        "bodies are not in the catalog's dependencies: read them, they fail once "
                        "the tables are gone): " + naming});
  s.checks.push_back(OrphanCheck(tx, "pre.no_orphaned_chunks", shape));

  std::string revision = "<none>";
  if (TableExists(tx, "public.alembic_version")) {
    pqxx::result r = tx.exec("SELECT version_num FROM public.alembic_version");
    for (const auto& row : r)
      if (row[0].is_null())  // the engine refuses it alike (exit 2)
        throw UsageError("alembic_version holds a NULL version_num, which no tool writes",
                         "find the real state of the schema, then record it with: "
                         "migration-harness stamp REVISION");
    if (r.size() == 1) revision = r[0][0].as<std::string>();
    else if (r.size() > 1) revision = std::to_string(r.size()) + " rows";
  }
  bool acceptable = false;
  for (const auto& a : options.acceptable_revisions) acceptable |= a == revision;
  s.checks.push_back(Check(acceptable, "pre.revision", "Current revision is " + revision +
                                                          " (005 or earlier)",
                           "Current revision is 005 or earlier: found " + revision));

  if (auto existing = ExistingProjectIdCheck(tx, shape)) s.checks.push_back(std::move(*existing));

  long long total = 0;
  std::string per_table;
  for (const auto& t : PresentDroppedTables(tx)) {
    long long n = tx.exec("SELECT count(*) FROM " + tx.quote_name(t))[0][0].as<long long>();
    total += n;
    if (n > 0) per_table += fmt::format("{}{} {}", per_table.empty() ? "" : ", ", t, n);
  }
  s.checks.push_back({"pre.rows_to_discard", Status::kInfo,
                      fmt::format("Rows that 002 discards with the 9 tables: {}{}; only a backup "
                                  "keeps them",
                                  total, per_table.empty() ? "" : " (" + per_table + ")")});
  if (auto autovacuum = AutovacuumNote(tx, shape)) s.checks.push_back(std::move(*autovacuum));
  return s;
}

SuiteResult RunPostChecks(pqxx::transaction_base& tx) {
  SuiteResult s{"post", {}};
  inspect::CatalogSnapshot cat = inspect::TakeSnapshot(tx);
  const inspect::Table* repos = cat.FindTable("repositories");
  const inspect::Table* chunks = cat.FindTable("code_chunks");
  if (!repos || !chunks) {
    s.checks.push_back(Fail("post.core_tables", std::string("Core tables exist: missing ") +
                                                    (repos ? "code_chunks" : "repositories")));
    return s;
  }
  const inspect::Shape shape = *inspect::DetectShape(tx);
  const inspect::Column* rc = repos ? repos->FindColumn("project_id") : nullptr;
  const inspect::Column* cc = chunks ? chunks->FindColumn("project_id") : nullptr;

  s.checks.push_back(Check(
      rc && rc->type == "character varying(50)" && rc->not_null &&
          rc->default_expr == "'default'::character varying",
      "post.repositories_project_id",
      "project_id column exists in repositories (VARCHAR(50), NOT NULL, DEFAULT 'default')",
      "project_id column exists in repositories (VARCHAR(50), NOT NULL, DEFAULT 'default'): " +
          (rc ? "found " + ColumnShape(*rc) : std::string("no such column"))));
  s.checks.push_back(Check(
      cc && cc->type == "character varying(50)" && cc->not_null && cc->default_expr.empty(),
      "post.code_chunks_project_id", "project_id column exists in code_chunks (VARCHAR(50), NOT NULL)",
      "project_id column exists in code_chunks (VARCHAR(50), NOT NULL): " +
          (cc ? "found " + ColumnShape(*cc) : std::string("no such column"))));

  int found = 0, validated = 0;
  std::string problems;
  for (auto [table, name] : {std::pair{repos, "check_repositories_project_id"},
                             std::pair{chunks, "check_code_chunks_project_id"}}) {
    const inspect::Constraint* k = table ? table->FindConstraint(name) : nullptr;
    if (!k) {
      problems += std::string(problems.empty() ? "" : "; ") + name + " missing";
      continue;
    }
    ++found;
    std::string definition = k->definition;
    if (definition.ends_with(" NOT VALID")) definition.resize(definition.size() - 10);
    if (definition != kProjectIdCheck)
      problems += std::string(problems.empty() ? "" : "; ") + name + " is " + k->definition;
    else if (!k->validated)
      problems += std::string(problems.empty() ? "" : "; ") + name + " not validated";
    else
      ++validated;
  }
  s.checks.push_back(Check(found == 2 && validated == 2, "post.check_constraints",
                           "CHECK constraints exist and are validated (2 found)",
                           fmt::format("CHECK constraints exist and are validated: {} found ({})",
                                       found, problems)));

  const inspect::Index* idx = repos ? repos->FindIndex("idx_project_repository") : nullptr;
  bool idx_ok = idx && idx->valid &&
                idx->definition.find("(project_id, id)") != std::string::npos;
  s.checks.push_back(Check(idx_ok, "post.performance_index",
                           "Performance index exists (idx_project_repository)",
                           "Performance index exists (idx_project_repository): " +
                               (idx ? "found " + idx->definition + (idx->valid ? "" : " (INVALID)")
                                    : std::string("not found"))));

  auto present = PresentDroppedTables(tx);
  s.checks.push_back(Check(present.empty(), "post.unused_tables_dropped",
                           "Unused tables dropped (0 of 9 tables found)",
                           fmt::format("Unused tables dropped: {} of 9 tables still exist ({})",
                                       present.size(), ArrayLiteral(present))));

  if (rc && cc) {
    long long mismatched = MismatchedChunks(tx, shape);
    s.checks.push_back(Check(
        mismatched == 0, "post.data_integrity",
        "Data integrity check (all code_chunks have matching repository project_id)",
        fmt::format("Data integrity check: {} code_chunks differ from their repository's project_id",
                    mismatched)));
    pqxx::row bad = tx.exec1(fmt::format(
        "SELECT (SELECT count(*) FROM repositories WHERE {0}), "
        "(SELECT count(*) FROM code_chunks WHERE {0})",
        ProjectIdRejected()));
    long long bad_r = bad[0].as<long long>(), bad_c = bad[1].as<long long>();
    s.checks.push_back(Check(
        bad_r + bad_c == 0, "post.pattern_validation",
        fmt::format("Pattern validation (all project_id values match {}, 1-50 characters)",
                    kProjectIdPattern),
        fmt::format("Pattern validation: {} repositories and {} code_chunks have a project_id "
                    "outside {}",
                    bad_r, bad_c, kProjectIdPattern)));
  } else {
    s.checks.push_back(Fail("post.data_integrity",
                            "Data integrity check: cannot run without both project_id columns"));
    s.checks.push_back(Fail("post.pattern_validation",
                            "Pattern validation: cannot run without both project_id columns"));
  }
  s.checks.push_back(OrphanCheck(tx, "post.no_orphaned_chunks", shape));
  return s;
}

SuiteResult RunRollbackChecks(pqxx::transaction_base& tx, const std::optional<Baseline>& baseline) {
  SuiteResult s{"rollback", {}};
  inspect::CatalogSnapshot cat = inspect::TakeSnapshot(tx);
  const inspect::Table* repos = cat.FindTable("repositories");
  const inspect::Table* chunks = cat.FindTable("code_chunks");
  int columns = (repos && repos->FindColumn("project_id")) + (chunks && chunks->FindColumn("project_id"));
  s.checks.push_back(Check(columns == 0, "rollback.columns_removed",
                           "project_id columns removed (0 columns found)",
                           fmt::format("project_id columns removed: {} still present", columns)));
  int constraints = (repos && repos->FindConstraint("check_repositories_project_id")) +
                    (chunks && chunks->FindConstraint("check_code_chunks_project_id"));
  s.checks.push_back(Check(constraints == 0, "rollback.constraints_removed",
                           "CHECK constraints removed (0 constraints found)",
                           fmt::format("CHECK constraints removed: {} still present", constraints)));
  bool index = repos && repos->FindIndex("idx_project_repository");
  s.checks.push_back(Check(!index, "rollback.index_removed",
                           "Performance index removed (idx_project_repository not found)",
                           "Performance index removed: idx_project_repository still exists"));
  auto present = PresentDroppedTables(tx);
  s.checks.push_back(Check(present.size() == 9, "rollback.tables_restored",
                           "Dropped tables restored (9 tables found)",
                           fmt::format("Dropped tables restored: {} of 9 found", present.size())));
  // Foreign keys restored NOT VALID: the catalog diff's known differences.
  std::set<std::string> not_valid;
  for (auto& c : ForeignKeysCheck(tx, cat, not_valid)) s.checks.push_back(std::move(c));

  // The nine tables' rows come back only from a backup: rows missing there
  // are a named, counted difference (info), not a failure of the rollback;
  // rows that are there but differ from the baseline are a failure.
  if (baseline && baseline->recorded_tables) {
    DroppedRows d = CompareDroppedRows(tx, *baseline);
    if (!d.differing.empty()) {
      std::string what = d.DifferingText();
      s.checks.push_back(Fail(kDroppedRowsId,
                              fmt::format("Dropped tables' rows differ from the baseline: {}{}", what,
                                          d.only_in_backup.empty()
                                              ? ""
                                              : "; and " + d.OnlyInBackupText())));
    } else if (!d.only_in_backup.empty()) {
      s.checks.push_back({kDroppedRowsId, Status::kInfo,
                          fmt::format("Dropped tables' rows: {} (restore them with `migration-harness "
                                      "restore-dropped --from BACKUP.dump --baseline FILE`)",
                                      d.OnlyInBackupText())});
    } else {
      s.checks.push_back(Pass(kDroppedRowsId,
                              fmt::format("Dropped tables' rows match the baseline ({} tables, {} "
                                          "rows)",
                                          d.matched_tables, d.matched_rows)));
    }
    if (!baseline->kept.empty()) {
      std::vector<std::string> differing;
      long long rows = 0;
      for (const auto& [table, want] : baseline->kept) {
        if (!TableExists(tx, table)) {
          differing.push_back(table + ": the table is gone");
          continue;
        }
        inspect::Fingerprint got = inspect::TakeFingerprint(tx, table, want.columns);
        rows += got.rows;
        if (got != want.fingerprint)
          differing.push_back(fmt::format("{}: baseline {}, now {}", table,
                                          want.fingerprint.ToString(), got.ToString()));
      }
      std::string what;
      for (const auto& x : differing) what += (what.empty() ? "" : "; ") + x;
      s.checks.push_back(Check(differing.empty(), "rollback.kept_tables_data",
                               fmt::format("Other tables' data preserved ({} tables, {} rows, "
                                           "fingerprints match baseline)",
                                           baseline->kept.size(), rows),
                               "Other tables' data preserved: " + what));
    }
  } else if (baseline) {
    s.checks.push_back({kDroppedRowsId, Status::kSkipped,
                        "Dropped and other tables' rows: not in this baseline file (recorded by an "
                        "older version; record a new one with `check pre --save-baseline FILE`)"});
  }

  for (const auto& [table, id] : {std::pair<std::string, std::string>{"repositories", "rollback.repositories_data"},
                                  {"code_chunks", "rollback.code_chunks_data"}}) {
    if (!baseline) {
      s.checks.push_back({id, Status::kSkipped,
                          table + " data preserved: no baseline (record one before the upgrade "
                                  "with `check pre --save-baseline FILE`, then pass --baseline FILE)"});
      continue;
    }
    bool repo = table == "repositories";
    const auto& cols = repo ? baseline->repository_columns : baseline->chunk_columns;
    const auto& want = repo ? baseline->repositories : baseline->code_chunks;
    if (!TableExists(tx, table)) {
      s.checks.push_back(Fail(id, table + " data preserved: the table is gone"));
      continue;
    }
    inspect::Fingerprint got = inspect::TakeFingerprint(tx, table, cols);
    s.checks.push_back(Check(got == want, id,
                             fmt::format("{} data preserved ({} rows, fingerprint matches baseline)",
                                         table, got.rows),
                             fmt::format("{} data preserved: baseline {}, now {}", table,
                                         want.ToString(), got.ToString())));
  }
  if (baseline && !baseline->prebuilt.empty()) {
    std::string names;
    for (const auto& n : baseline->prebuilt) names += (names.empty() ? "" : ", ") + n;
    s.checks.push_back({"rollback.prebuilt_removed", Status::kInfo,
                        "Built before the upgrade and removed by the rollback (not compared): " +
                            names + "; build them again if they are wanted at 005"});
  }
  if (!baseline) {
    s.checks.push_back({"rollback.catalog_diff", Status::kSkipped,
                        "Schema equals the pre-upgrade catalog: no baseline to compare with"});
  } else {
    // A foreign key the rollback restored NOT VALID differs from the
    // baseline by exactly that: a known difference, named, not a failure.
    auto now = cat.Entries();
    std::vector<std::string> known;
    for (const auto& key : not_valid) {
      auto was = baseline->catalog.find(key);
      auto is = now.find(key);
      if (was == baseline->catalog.end() || is == now.end()) continue;
      std::string restored = is->second;
      if (restored.ends_with(" NOT VALID (not validated)"))
        restored.resize(restored.size() - std::string_view(" NOT VALID (not validated)").size());
      if (restored != was->second) continue;
      is->second = was->second;
      known.push_back(key.substr(std::string_view("constraint ").size()));
    }
    auto diff = inspect::DiffEntries(baseline->catalog, now);
    std::string shown;
    for (size_t i = 0; i < diff.size() && i < 5; ++i) shown += (i ? "; " : "") + diff[i];
    if (diff.size() > 5) shown += fmt::format("; and {} more", diff.size() - 5);
    std::string except;
    for (const auto& k : known) except += (except.empty() ? "" : ", ") + k;
    if (!except.empty())
      except = fmt::format("; known: {} foreign key(s) restored NOT VALID ({})", known.size(), except);
    s.checks.push_back(Check(diff.empty(), "rollback.catalog_diff",
                             "Schema equals the pre-upgrade catalog (empty diff" + except + ")",
                             fmt::format("Schema equals the pre-upgrade catalog: {} difference(s): "
                                         "{}{}",
                                         diff.size(), shown, except)));
  }
  return s;
}

Baseline TakeBaseline(pqxx::transaction_base& tx) {
  Baseline b;
  b.catalog = inspect::TakeSnapshot(tx).Entries();
  // Objects of 002 that exist before it runs (the index built CONCURRENTLY
  // beforehand needs repositories.project_id): the rollback removes them,
  // so the baseline is the schema without them, and says so.
  for (const auto& [kind, table, name] :
       {std::tuple{"column", "repositories", "project_id"},
        std::tuple{"column", "code_chunks", "project_id"},
        std::tuple{"constraint", "repositories", "check_repositories_project_id"},
        std::tuple{"constraint", "code_chunks", "check_code_chunks_project_id"},
        std::tuple{"index", "repositories", "idx_project_repository"}}) {
    if (b.catalog.erase(fmt::format("{} {}.{}", kind, table, name)) == 0) continue;
    b.prebuilt.push_back(fmt::format("{}.{}", table, name));
    if (std::string_view(kind) == "column") {  // and one column fewer
      std::string& count = b.catalog[fmt::format("table {}", table)];
      count = fmt::format("{} columns", std::stoi(count) - 1);
    }
  }
  b.repository_columns = inspect::ColumnsOf(tx, "repositories");
  b.chunk_columns = inspect::ColumnsOf(tx, "code_chunks");
  for (auto* cols : {&b.repository_columns, &b.chunk_columns})
    std::erase(*cols, std::string("project_id"));
  b.repositories = inspect::TakeFingerprint(tx, "repositories", b.repository_columns);
  b.code_chunks = inspect::TakeFingerprint(tx, "code_chunks", b.chunk_columns);
  auto record = [&](const std::string& table) {
    TableData d;
    d.columns = inspect::ColumnsOf(tx, table);
    d.fingerprint = inspect::TakeFingerprint(tx, table, d.columns);
    return d;
  };
  for (const auto& t : PresentDroppedTables(tx)) b.dropped[t] = record(t);
  for (const auto& t : KeptTables(tx)) b.kept[t] = record(t);
  return b;
}

std::vector<std::string> KeptTables(pqxx::transaction_base& tx) {
  std::vector<std::string> skip = TablesDroppedBy002();
  for (const char* t : {"repositories", "code_chunks", "alembic_version"}) skip.emplace_back(t);
  std::vector<std::string> out;
  for (const auto& r : tx.exec_params(
           "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
           "c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT "
           "c.relispartition AND c.relname <> ALL ($1::text[]) ORDER BY c.relname",
           ArrayLiteral(skip)))
    out.push_back(r[0].as<std::string>());
  return out;
}

long long DroppedRows::OnlyInBackupRows() const {
  long long n = 0;
  for (const auto& [t, rows] : only_in_backup) n += rows;
  return n;
}

std::string DroppedRows::OnlyInBackupText() const {
  std::string out;
  for (const auto& [t, rows] : only_in_backup) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", t, rows);
  return fmt::format("{}: {} rows only in the backup", out, OnlyInBackupRows());
}

std::string DroppedRows::DifferingText(const std::string& now) const {
  std::string out;
  for (const auto& d : differing)
    out += fmt::format("{}{}: baseline {} rows; {} {}", out.empty() ? "" : "; ", d.table,
                       d.baseline.rows, now,
                       d.baseline.rows == d.now.rows
                           ? fmt::format("{} rows of other content (fingerprint {} not {})",
                                         d.now.rows, d.now.hash_sum, d.baseline.hash_sum)
                           : fmt::format("{} rows", d.now.rows));
  return out;
}

DroppedRows CompareDroppedRows(pqxx::transaction_base& tx, const Baseline& baseline) {
  DroppedRows d;
  for (const auto& table : TablesDroppedBy002()) {  // the quickstart's order
    auto want = baseline.dropped.find(table);
    if (want == baseline.dropped.end()) continue;
    const inspect::Fingerprint& was = want->second.fingerprint;
    if (!TableExists(tx, table)) {
      if (was.rows > 0) d.only_in_backup.emplace_back(table, was.rows);
      continue;  // rollback.tables_restored says it is missing
    }
    inspect::Fingerprint now = inspect::TakeFingerprint(tx, table, want->second.columns);
    if (now == was) {
      ++d.matched_tables;
      d.matched_rows += now.rows;
    } else if (now.rows == 0) {
      d.only_in_backup.emplace_back(table, was.rows);
    } else {
      d.differing.push_back({table, was, now});
    }
  }
  return d;
}

nlohmann::json BaselineToJson(const Baseline& b) {
  auto fp = [](const inspect::Fingerprint& f) {
    return nlohmann::json{{"rows", f.rows}, {"hash_sum", f.hash_sum}};
  };
  auto tables = [&](const std::map<std::string, TableData>& m) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [name, d] : m) {
      out[name] = fp(d.fingerprint);
      out[name]["columns"] = d.columns;
    }
    return out;
  };
  return {{"format", "migration-harness baseline 1"},
          {"catalog", b.catalog},
          {"repository_columns", b.repository_columns},
          {"chunk_columns", b.chunk_columns},
          {"repositories", fp(b.repositories)},
          {"code_chunks", fp(b.code_chunks)},
          {"prebuilt", b.prebuilt},
          {"dropped", tables(b.dropped)},
          {"kept", tables(b.kept)}};
}

Baseline BaselineFromJson(const nlohmann::json& j) {
  try {
    if (j.at("format") != "migration-harness baseline 1") throw std::runtime_error("unknown format");
    Baseline b;
    b.catalog = j.at("catalog").get<std::map<std::string, std::string>>();
    b.repository_columns = j.at("repository_columns").get<std::vector<std::string>>();
    b.chunk_columns = j.at("chunk_columns").get<std::vector<std::string>>();
    b.repositories = {j.at("repositories").at("rows").get<long long>(),
                      j.at("repositories").at("hash_sum").get<std::string>()};
    b.code_chunks = {j.at("code_chunks").at("rows").get<long long>(),
                     j.at("code_chunks").at("hash_sum").get<std::string>()};
    b.prebuilt = j.value("prebuilt", std::vector<std::string>{});
    b.recorded_tables = j.contains("dropped") && j.contains("kept");
    if (b.recorded_tables) {
      for (const auto& [key, into] : {std::pair{"dropped", &b.dropped}, std::pair{"kept", &b.kept}})
        for (const auto& [name, t] : j.at(key).items())
          (*into)[name] = {t.at("columns").get<std::vector<std::string>>(),
                           {t.at("rows").get<long long>(), t.at("hash_sum").get<std::string>()}};
    }
    return b;
  } catch (const std::exception& e) {
    throw UsageError(std::string("not a baseline file: ") + e.what(),
                     "record one with `migration-harness check pre --save-baseline FILE`");
  }
}

// Atomically (pg/files.h): a failed write keeps the previous file; throws
// Error(kDatabase) "cannot write PATH: REASON".
void SaveBaseline(const Baseline& b, const std::string& path) {
  pg::WriteFileAtomically(path, BaselineToJson(b).dump(1) + "\n");
}

Baseline LoadBaseline(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError("cannot read baseline file " + path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw UsageError("baseline file " + path + " is not JSON: " + e.what());
  }
  return BaselineFromJson(j);
}

}  // namespace harness::checks
