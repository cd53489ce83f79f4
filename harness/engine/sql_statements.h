// The statements of a piece of SQL as PostgreSQL's own grammar reads them
// (libpg_query: the parser of PostgreSQL 15 as a library). What a revision
// file's steps and checks may hold is decided from them when the file is
// read, before anything runs:
//   - a check is one query: one SELECT, WITH ... SELECT or VALUES, with no
//     data-modifying WITH and no SELECT INTO;
//   - a step never ends or replaces the transaction the engine runs it in
//     (COMMIT, ROLLBACK, BEGIN, START TRANSACTION, PREPARE TRANSACTION, SET
//     TRANSACTION and the like).
#pragma once

#include <string>
#include <vector>

namespace harness::engine {

struct SqlStatement {
  std::string kind;     // the parse node: "SelectStmt", "TransactionStmt", "CopyStmt", ...
  std::string subkind;  // a TransactionStmt's kind, a VariableSetStmt's name
  bool writes = false;  // holds an INSERT, UPDATE, DELETE or MERGE (a data-modifying WITH)
  bool into = false;    // SELECT ... INTO
};

struct SqlParse {
  bool ok = false;
  std::string error;  // when not ok: the parser's message
  std::vector<SqlStatement> statements;
};

SqlParse ParseSql(const std::string& sql);

// What a statement does that decides the locks it takes and how long it
// holds them, as written (verify's lock findings name the cause and the
// safer form from it; what it did is measured on the server):
//   "type-change"          ALTER TABLE ... ALTER COLUMN ... TYPE
//   "add-column-default"   ADD COLUMN with a DEFAULT (volatile or not: the
//                          server's rewrite, measured, tells)
//   "add-column-generated" ADD COLUMN ... GENERATED ALWAYS AS (...) STORED
//   "add-check", "add-foreign-key"       added validated (no NOT VALID)
//   "add-unique", "add-primary-key"      built in place (no USING INDEX)
//   "set-not-null"         ALTER COLUMN ... SET NOT NULL
//   "create-index"         CREATE INDEX without CONCURRENTLY
//   "create-index-concurrently"  CREATE INDEX CONCURRENTLY (the safe form)
//   "lock-timeout"         SET [LOCAL] lock_timeout; `value` as written
// `table`: the relation as written ("events", "public.events"). Text the
// parser cannot read (a DO block's body is not read) gives none.
struct SchemaChange {
  std::string form;
  std::string table;
  std::string column;  // for the column forms
  std::string value;   // lock-timeout's
};
std::vector<SchemaChange> SchemaChanges(const std::string& sql);

// Why the query of a check is not one read-only query ("2 statements", "a
// COPY", "a WITH that writes rows"); empty when it is one. Text the parser
// cannot read is refused too, saying why.
std::string WhyNotOneQuery(const std::string& sql);

// Why the SQL of a step would end or replace the transaction it runs in ("a
// COMMIT"): each of its statements, as PostgreSQL's lexer splits them
// (comments, strings and dollar-quoted bodies are one with their
// statement), read from its first words. Empty when none would. Cheap on a
// step of any size (no parse tree); text the lexer cannot read is let
// through: the engine also checks, after every step, that its transaction
// is still the one it began.
std::string WhyLeavesTheTransaction(const std::string& sql);

// The statements of `sql` as the lexer splits them (each with the comments
// before it), for SQL that must be sent one statement at a time: an online
// step's CREATE INDEX CONCURRENTLY or committing DO block cannot share a
// query string. Text the lexer cannot read comes back whole.
std::vector<std::string> SplitStatements(const std::string& sql);

}  // namespace harness::engine
