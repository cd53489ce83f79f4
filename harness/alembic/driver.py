# migration-harness's driver of an Alembic project: run by the project's own
# Python (the one that imports its alembic) in the folder of its
# alembic.ini, so that prepend_sys_path and script_location resolve as they
# do for its users. Compiled into migration-harness and passed with -c.
#
# It reads one JSON request a line on stdin and answers each with one JSON
# line on the stdout it was given; the project's own prints and Alembic's
# log go to stderr. Requests:
#   {"cmd": "inspect"}: the revisions (id, parents, message, file, what the
#       downgrade's code is: "body", "pass", "raises" or "missing"), heads,
#       and the ini's own sqlalchemy.url (for the driver it names).
#   {"cmd": "import", "module": "asyncpg"}: whether that module imports.
#   {"cmd": "run", "op": "upgrade"|"downgrade"|"stamp"|"current",
#    "rev": "...", "url": "...", "url_env": "NAME", "probe": "SQL"}: runs
#       the command against "url", set as sqlalchemy.url and as the
#       environment variable "url_env" (DATABASE_URL) for the run;
#       reports each session's backend pid as it begins a transaction
#       ("session" lines), then how long the command took, the heads after
#       it, the options env.py gave context.configure(), the rows of "probe"
#       and the connection's lock_timeout read in the migration's
#       transaction just before its commit, or what
#       failed and where (before any revision ran: env.py, the driver, the
#       connection; or in a revision).
import ast
import json
import os
import sys
import time
import traceback

PROBE_MARK = "/* migration-harness probe */ "


def main():
    started = time.monotonic()
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # the project's own prints and logs go to stderr

    def send(**fields):
        protocol.write(json.dumps(fields, default=str) + "\n")
        protocol.flush()

    try:
        import alembic
        import sqlalchemy
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.environment import EnvironmentContext
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
    except Exception as e:  # no alembic for this interpreter
        send(event="ready", ok=False, message="%s: %s" % (type(e).__name__, e), python=sys.executable)
        return 3

    ini = os.environ["MIGRATION_HARNESS_ALEMBIC_INI"]
    state = {"pids": [], "probe": None, "probe_error": None, "probe_sql": None, "options": {},
             "migrating": False, "lock_timeout": None}

    def execute(dbapi_connection, sql):
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(sql)
            return cursor.fetchall()
        finally:
            cursor.close()

    @event.listens_for(Engine, "begin")
    def on_begin(conn):
        try:
            pid = execute(conn.connection, PROBE_MARK + "SELECT pg_catalog.pg_backend_pid()")[0][0]
            if pid not in state["pids"]:
                state["pids"].append(pid)
                send(event="session", pid=pid)
        except Exception as e:
            state["probe_error"] = "the backend's pid could not be read: %s" % e

    @event.listens_for(Engine, "commit")
    def on_commit(conn):
        if not state["probe_sql"] or not state["migrating"]:
            return
        try:
            rows = execute(conn.connection, PROBE_MARK + state["probe_sql"])
            state["probe"] = [[None if v is None else str(v) for v in row] for row in rows]
            # The lock_timeout the deploy's connection runs with, as the
            # project set it (env.py, the URL, a SET in the revision).
            state["lock_timeout"] = execute(
                conn.connection, PROBE_MARK + "SELECT pg_catalog.current_setting('lock_timeout')")[0][0]
        except Exception as e:
            state["probe_error"] = "%s: %s" % (type(e).__name__, e)

    configure = EnvironmentContext.configure

    def configure_and_record(self, *args, **kwargs):
        state["options"] = {k: kwargs.get(k) for k in
                            ("transaction_per_migration", "version_table", "version_table_schema")}
        return configure(self, *args, **kwargs)

    EnvironmentContext.configure = configure_and_record
    run_migrations = MigrationContext.run_migrations

    def run_and_mark(self, *args, **kwargs):
        state["migrating"] = True
        return run_migrations(self, *args, **kwargs)

    MigrationContext.run_migrations = run_and_mark

    def config(request=None):
        cfg = Config(ini)
        url = (request or {}).get("url")
        if url:
            # The URL env.py reads, in both places: the option (% doubled, as
            # Config interpolates it) and the environment variable.
            cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
            os.environ[request.get("url_env") or "DATABASE_URL"] = url
        return cfg

    def downgrade_code(path):
        try:
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
        except (OSError, SyntaxError, ValueError):
            return "unreadable"
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "downgrade":
                body = [s for s in node.body
                        if not isinstance(s, ast.Pass)
                        and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
                if not body:
                    return "pass"
                if all(isinstance(s, ast.Raise) for s in body):
                    return "raises"
                return "body"
        return "missing"

    def inspect():
        cfg = config()
        script = ScriptDirectory.from_config(cfg)
        here = os.path.dirname(os.path.abspath(ini))
        revisions = []
        for sc in script.walk_revisions("base", "heads"):
            down = sc.down_revision
            parents = [] if down is None else [down] if isinstance(down, str) else list(down)
            revisions.append({"id": sc.revision, "parents": parents, "message": sc.doc or "",
                              "file": os.path.relpath(sc.path, here), "downgrade": downgrade_code(sc.path),
                              "branch_labels": sorted(sc.branch_labels or [])})
        return {"revisions": list(reversed(revisions)), "heads": list(script.get_heads()),
                "url": cfg.get_main_option("sqlalchemy.url") or ""}

    def current_heads(cfg):
        script = ScriptDirectory.from_config(cfg)
        heads = []

        def read(rev, context):
            heads.extend(context.get_current_heads())
            return []

        with EnvironmentContext(cfg, script, fn=read, dont_mutate=True):
            script.run_env()
        return heads

    def chain(e):
        seen = []
        while e is not None and e not in seen:
            seen.append(e)
            e = getattr(e, "orig", None) or e.__cause__ or e.__context__
        return seen

    def failure(e):
        links = chain(e)
        sqlstate = statement = None
        for x in links:
            for attr in ("pgcode", "sqlstate"):
                v = getattr(x, attr, None)
                if sqlstate is None and isinstance(v, str) and len(v) == 5:
                    sqlstate = v
            if statement is None and isinstance(getattr(x, "statement", None), str):
                statement = x.statement
        names = [type(x).__name__ for x in links]
        if not state["migrating"]:
            if any(isinstance(x, ModuleNotFoundError) for x in links):
                kind = "driver" if any(getattr(x, "name", "") in ("asyncpg", "psycopg2") for x in links) else "env"
            elif sqlstate is not None or any(n in ("OperationalError", "ConnectionRefusedError", "InvalidPasswordError",
                                                   "InvalidCatalogNameError", "gaierror") for n in names):
                kind = "connect"
            else:
                kind = "env"
        else:
            kind = "revision"
        lines = traceback.format_exception(type(e), e, e.__traceback__)
        tail = "".join(lines).rstrip().splitlines()[-12:]
        message = str(e).strip().splitlines()
        return {"kind": kind, "type": type(e).__name__, "message": message[0] if message else type(e).__name__,
                "sqlstate": sqlstate, "statement": statement, "traceback": tail}

    send(event="ready", ok=True, seconds=time.monotonic() - started, python=sys.executable,
         version=sys.version.split()[0], alembic=alembic.__version__, sqlalchemy=sqlalchemy.__version__)
    for line in sys.stdin:
        request = json.loads(line)
        began = time.monotonic()
        state.update(pids=[], probe=None, probe_error=None, probe_sql=request.get("probe"), options={},
                     migrating=False, lock_timeout=None)
        try:
            if request["cmd"] == "inspect":
                send(event="done", ok=True, **inspect())
                continue
            if request["cmd"] == "import":
                __import__(request["module"])
                send(event="done", ok=True)
                continue
            cfg = config(request)
            op, rev = request["op"], request.get("rev")
            heads = None
            if op == "upgrade":
                command.upgrade(cfg, rev)
            elif op == "downgrade":
                command.downgrade(cfg, rev)
            elif op == "stamp":
                command.stamp(cfg, rev, purge=True)
            elif op == "current":
                heads = current_heads(cfg)
            send(event="done", ok=True, seconds=time.monotonic() - began, pids=state["pids"], heads=heads,
                 probe=state["probe"], probe_error=state["probe_error"], options=state["options"],
                 lock_timeout=state["lock_timeout"])
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            send(event="done", ok=False, seconds=time.monotonic() - began, pids=state["pids"],
                 options=state["options"], **failure(e))
    return 0


sys.exit(main())
