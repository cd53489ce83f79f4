#include "harness/engine/sql_statements.h"

#include <pg_query.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <utility>
#include <string_view>

#include <nlohmann/json.hpp>

namespace harness::engine {

namespace {

// Whether the parse tree below `node` holds a statement that writes rows,
// or a SELECT ... INTO.
void Scan(const nlohmann::json& node, SqlStatement& s) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if (key == "InsertStmt" || key == "UpdateStmt" || key == "DeleteStmt" || key == "MergeStmt") s.writes = true;
      if (key == "intoClause") s.into = true;
      Scan(value, s);
    }
  } else if (node.is_array()) {
    for (const auto& value : node) Scan(value, s);
  }
}

std::string Named(const SqlStatement& s) {
  if (s.kind == "TransactionStmt") {
    static const std::pair<const char*, const char*> kNames[] = {
        {"TRANS_STMT_BEGIN", "a BEGIN"},
        {"TRANS_STMT_START", "a START TRANSACTION"},
        {"TRANS_STMT_COMMIT", "a COMMIT"},
        {"TRANS_STMT_ROLLBACK", "a ROLLBACK"},
        {"TRANS_STMT_PREPARE", "a PREPARE TRANSACTION"},
        {"TRANS_STMT_COMMIT_PREPARED", "a COMMIT PREPARED"},
        {"TRANS_STMT_ROLLBACK_PREPARED", "a ROLLBACK PREPARED"},
        {"TRANS_STMT_SAVEPOINT", "a SAVEPOINT"},
        {"TRANS_STMT_RELEASE", "a RELEASE SAVEPOINT"},
        {"TRANS_STMT_ROLLBACK_TO", "a ROLLBACK TO SAVEPOINT"}};
    for (const auto& [kind, name] : kNames)
      if (s.subkind == kind) return name;
    return "a transaction statement";
  }
  if (s.kind == "VariableSetStmt") {
    std::string name = s.subkind;
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return "a SET " + name;
  }
  if (s.kind == "CopyStmt") return "a COPY";
  std::string name = s.kind;
  if (name.size() > 4 && name.substr(name.size() - 4) == "Stmt") name.resize(name.size() - 4);
  return "a statement of kind " + name;
}

}  // namespace

SqlParse ParseSql(const std::string& sql) {
  SqlParse out;
  PgQueryParseResult r = pg_query_parse(sql.c_str());
  if (r.error) {
    out.error = r.error->message ? r.error->message : "a parse error";
    pg_query_free_parse_result(r);
    return out;
  }
  const auto tree = nlohmann::json::parse(r.parse_tree ? r.parse_tree : "{}", nullptr, false);
  pg_query_free_parse_result(r);
  if (!tree.is_object()) {
    out.error = "the parser's answer could not be read";
    return out;
  }
  out.ok = true;
  if (!tree.contains("stmts")) return out;  // comments only
  for (const auto& entry : tree["stmts"]) {
    if (!entry.contains("stmt") || !entry["stmt"].is_object() || entry["stmt"].empty()) continue;
    SqlStatement s;
    const auto first = entry["stmt"].begin();
    const std::string kind = first.key();
    const nlohmann::json& body = first.value();
    s.kind = kind;
    if (kind == "TransactionStmt") s.subkind = body.value("kind", "");
    if (kind == "VariableSetStmt") s.subkind = body.value("name", "");
    Scan(body, s);
    out.statements.push_back(std::move(s));
  }
  return out;
}

namespace {

// The answers for texts seen before in this process: a suite reads the same
// checks and steps again and again (the parser takes milliseconds).
std::string Remembered(const char* which, const std::string& sql, std::string (*answer)(const std::string&)) {
  static std::mutex mu;
  static std::map<std::pair<std::string, std::string>, std::string> seen;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = seen.find({which, sql}); it != seen.end()) return it->second;
  }
  std::string result = answer(sql);
  std::lock_guard<std::mutex> lock(mu);
  if (sql.size() <= 1 << 20) seen[{which, sql}] = result;  // a huge step is not kept
  return result;
}

std::string NotOneQuery(const std::string& sql) {
  const SqlParse parse = ParseSql(sql);
  if (!parse.ok) return "the parser of PostgreSQL 15 cannot read it: " + parse.error;
  if (parse.statements.empty()) return "it holds no statement";
  if (parse.statements.size() > 1)
    return std::to_string(parse.statements.size()) + " statements, not one (" + Named(parse.statements[1]) +
           " follows the first)";
  const SqlStatement& s = parse.statements.front();
  if (s.kind != "SelectStmt") return Named(s) + ", not a SELECT, WITH ... SELECT or VALUES";
  if (s.writes) return "a WITH that writes rows (INSERT, UPDATE, DELETE or MERGE)";
  if (s.into) return "a SELECT ... INTO, which creates a table";
  return {};
}

}  // namespace

std::string WhyNotOneQuery(const std::string& sql) { return Remembered("check", sql, NotOneQuery); }

namespace {

// The first `n` words of a statement, upper case, past white space and
// comments ("--" to the end of the line, "/* */" nested).
std::vector<std::string> FirstWords(std::string_view text, size_t n) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < text.size() && words.size() < n) {
    const char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (text.substr(i, 2) == "--") {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (text.substr(i, 2) == "/*") {
      int depth = 0;
      while (i < text.size()) {
        if (text.substr(i, 2) == "/*") {
          ++depth;
          i += 2;
        } else if (text.substr(i, 2) == "*/") {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::string word;
      while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_'))
        word += static_cast<char>(std::toupper(static_cast<unsigned char>(text[i++])));
      words.push_back(word);
    } else {
      break;  // a symbol: no keyword statement starts here
    }
  }
  return words;
}

// What a statement starting with `w` does to the transaction, or "".
std::string TransactionControl(const std::vector<std::string>& w) {
  auto at = [&](size_t k) { return k < w.size() ? w[k] : std::string(); };
  const std::string first = at(0);
  if (first == "COMMIT") return at(1) == "PREPARED" ? "a COMMIT PREPARED" : "a COMMIT";
  if (first == "END") return "an END (a COMMIT)";
  if (first == "ABORT") return "an ABORT (a ROLLBACK)";
  if (first == "ROLLBACK") {
    if (at(1) == "PREPARED") return "a ROLLBACK PREPARED";
    if (at(1) == "TO" || at(2) == "TO") return {};  // to a savepoint: inside the transaction
    return "a ROLLBACK";
  }
  if (first == "BEGIN") return "a BEGIN";
  if (first == "START" && at(1) == "TRANSACTION") return "a START TRANSACTION";
  if (first == "PREPARE" && at(1) == "TRANSACTION") return "a PREPARE TRANSACTION";
  if (first == "SET" && at(1) == "TRANSACTION") return "a SET TRANSACTION";
  if (first == "SET" && at(1) == "SESSION" && at(2) == "CHARACTERISTICS") return "a SET SESSION CHARACTERISTICS";
  return {};
}

}  // namespace

namespace {

std::string LeavesTheTransaction(const std::string& sql) {
  PgQuerySplitResult r = pg_query_split_with_scanner(sql.c_str());
  std::string why;
  if (!r.error)
    for (int i = 0; i < r.n_stmts && why.empty(); ++i) {
      const size_t from = static_cast<size_t>(r.stmts[i]->stmt_location);
      const size_t len = r.stmts[i]->stmt_len > 0 ? static_cast<size_t>(r.stmts[i]->stmt_len) : sql.size() - from;
      const std::string_view stmt(sql.data() + from, std::min(len, sql.size() - from));
      why = TransactionControl(FirstWords(stmt, 3));
    }
  pg_query_free_split_result(r);
  return why;
}

}  // namespace

std::string WhyLeavesTheTransaction(const std::string& sql) {
  return Remembered("step", sql, LeavesTheTransaction);
}

std::vector<std::string> SplitStatements(const std::string& sql) {
  std::vector<std::string> out;
  PgQuerySplitResult r = pg_query_split_with_scanner(sql.c_str());
  if (r.error) {
    pg_query_free_split_result(r);
    return {sql};
  }
  for (int i = 0; i < r.n_stmts; ++i) {
    const size_t from = static_cast<size_t>(r.stmts[i]->stmt_location);
    if (from >= sql.size()) continue;
    const size_t len = r.stmts[i]->stmt_len > 0 ? static_cast<size_t>(r.stmts[i]->stmt_len) : sql.size() - from;
    std::string stmt = sql.substr(from, std::min(len, sql.size() - from));
    if (stmt.find_first_not_of(" \t\r\n") != std::string::npos) out.push_back(std::move(stmt));
  }
  pg_query_free_split_result(r);
  return out;
}

namespace {

std::string RelationName(const nlohmann::json& relation) {
  if (!relation.is_object()) return {};
  const std::string schema = relation.value("schemaname", "");
  const std::string name = relation.value("relname", "");
  return schema.empty() ? name : schema + "." + name;
}

std::string ConstValue(const nlohmann::json& args) {
  if (!args.is_array() || args.empty() || !args[0].contains("A_Const")) return {};
  const auto& c = args[0]["A_Const"];
  if (c.contains("ival")) return std::to_string(c["ival"].value("ival", 0));
  if (c.contains("sval")) return c["sval"].value("sval", "");
  return {};
}

void AlterTableChanges(const nlohmann::json& body, std::vector<SchemaChange>& out) {
  const std::string table = RelationName(body.value("relation", nlohmann::json()));
  if (!body.contains("cmds")) return;
  for (const auto& entry : body["cmds"]) {
    if (!entry.contains("AlterTableCmd")) continue;
    const auto& cmd = entry["AlterTableCmd"];
    const std::string subtype = cmd.value("subtype", "");
    const std::string column = cmd.value("name", "");
    const auto def = cmd.value("def", nlohmann::json());
    if (subtype == "AT_AlterColumnType") {
      out.push_back({"type-change", table, column, {}});
    } else if (subtype == "AT_SetNotNull") {
      out.push_back({"set-not-null", table, column, {}});
    } else if (subtype == "AT_AddColumn" && def.contains("ColumnDef")) {
      const auto& col = def["ColumnDef"];
      for (const auto& c : col.value("constraints", nlohmann::json::array())) {
        const std::string type = c.contains("Constraint") ? c["Constraint"].value("contype", "") : "";
        if (type == "CONSTR_DEFAULT") out.push_back({"add-column-default", table, col.value("colname", ""), {}});
        if (type == "CONSTR_GENERATED")
          out.push_back({"add-column-generated", table, col.value("colname", ""), {}});
      }
    } else if (subtype == "AT_AddConstraint" && def.contains("Constraint")) {
      const auto& c = def["Constraint"];
      const std::string type = c.value("contype", "");
      const bool not_valid = c.value("skip_validation", false);
      const bool using_index = !c.value("indexname", "").empty();
      if (type == "CONSTR_CHECK" && !not_valid) out.push_back({"add-check", table, {}, {}});
      if (type == "CONSTR_FOREIGN" && !not_valid) out.push_back({"add-foreign-key", table, {}, {}});
      if (type == "CONSTR_UNIQUE" && !using_index) out.push_back({"add-unique", table, {}, {}});
      if (type == "CONSTR_PRIMARY" && !using_index) out.push_back({"add-primary-key", table, {}, {}});
    }
  }
}

}  // namespace

std::vector<SchemaChange> SchemaChanges(const std::string& sql) {
  std::vector<SchemaChange> out;
  PgQueryParseResult r = pg_query_parse(sql.c_str());
  if (r.error) {
    pg_query_free_parse_result(r);
    return out;
  }
  const auto tree = nlohmann::json::parse(r.parse_tree ? r.parse_tree : "{}", nullptr, false);
  pg_query_free_parse_result(r);
  if (!tree.is_object() || !tree.contains("stmts")) return out;
  for (const auto& entry : tree["stmts"]) {
    if (!entry.contains("stmt") || !entry["stmt"].is_object() || entry["stmt"].empty()) continue;
    const auto first = entry["stmt"].begin();
    const std::string kind = first.key();
    const nlohmann::json& body = first.value();
    if (kind == "AlterTableStmt" && body.value("objtype", "") == "OBJECT_TABLE") AlterTableChanges(body, out);
    if (kind == "IndexStmt")
      out.push_back({body.value("concurrent", false) ? "create-index-concurrently" : "create-index",
                     RelationName(body.value("relation", nlohmann::json())), {}, {}});
    if (kind == "VariableSetStmt" && body.value("name", "") == "lock_timeout")
      out.push_back({"lock-timeout", {}, {},
                     body.value("kind", "") == "VAR_SET_DEFAULT" ? "DEFAULT" : ConstValue(body.value("args", nlohmann::json()))});
  }
  return out;
}

}  // namespace harness::engine
