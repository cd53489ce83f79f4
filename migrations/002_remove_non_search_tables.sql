--! revision: 002
--! down_revision: 005
--! message: Remove non-search tables and add project_id columns
--! idempotent
--! writes: repositories, code_files, code_chunks
--! restore_hint: migration-harness restore-dropped --from BACKUP.dump --baseline FILE
--! define NINE_TABLES: 'tasks', 'vendor_extractors', 'deployment_events', 'project_configuration', 'future_enhancements', 'work_item_dependencies', 'vendor_deployment_links', 'work_item_deployment_links', 'archived_work_items'
--! define PROJECT_ID_PATTERN: ^[a-z0-9]+(-[a-z0-9]+)*$
--! prebuilt: column repositories.project_id, column code_chunks.project_id, constraint repositories.check_repositories_project_id, constraint code_chunks.check_code_chunks_project_id, index repositories.idx_project_repository

-- Every statement is idempotent: after `stamp 005` on a migrated database,
-- the upgrade runs again, succeeds and changes nothing (FR-016).

--! upgrade
--! step: Checking prerequisites
-- Step 9 reports the time of steps 1 to 8 from this mark.
SELECT set_config('migration_harness.started_002', clock_timestamp()::text, true);
DO $$
DECLARE
    version_num integer := current_setting('server_version_num')::integer;
    nine constant text[] := ARRAY(SELECT u.t FROM unnest(ARRAY[{{NINE_TABLES}}]) WITH ORDINALITY u(t, o) ORDER BY u.o DESC);
    t text;
    kind "char";
    shape text;
BEGIN
    IF version_num < 140000 THEN
        RAISE EXCEPTION 'PostgreSQL 14 or later is required; this server runs %',
            current_setting('server_version')
            USING ERRCODE = 'MHP01', HINT = 'upgrade the server before migrating';
    END IF;
    -- The locks up front, in a fixed order, before the schema is read: no
    -- lock upgrade half way through, nothing changes between a look and
    -- its use, and lock_timeout applies here, before anything has changed.
    -- Tables only (a view is not locked here: the guard core_tables, next,
    -- refuses it, and refuses a core table that is missing).
    FOREACH t IN ARRAY ARRAY['repositories', 'code_chunks'] LOOP
        SELECT relkind INTO kind FROM pg_class WHERE oid = to_regclass('public.' || t);
        IF kind IN ('r', 'p') THEN
            EXECUTE format('LOCK TABLE public.%I IN ACCESS EXCLUSIVE MODE', t);
        END IF;
    END LOOP;
    -- Two shapes (docs/migrations.md#supported-schemas): a chunk reaches its
    -- repository through code_chunks.repository_id (the quickstart's), or
    -- through code_chunks.code_file_id -> code_files.repository_id (the
    -- service's own chain), read under the lock on code_chunks. Anything
    -- else the guard core_tables refuses before any change.
    SELECT CASE pg_catalog.array_agg(a.attname::text ORDER BY a.attname)
                WHEN ARRAY['code_file_id'] THEN 'production'
                WHEN ARRAY['repository_id'] THEN 'quickstart' ELSE 'unknown' END
      INTO shape
      FROM pg_attribute a
     WHERE a.attrelid = to_regclass('public.code_chunks') AND a.attname IN ('repository_id', 'code_file_id')
       AND a.attnum > 0 AND NOT a.attisdropped;
    IF shape = 'production'
       AND (SELECT relkind FROM pg_class WHERE oid = to_regclass('public.code_files')) IN ('r', 'p') THEN
        -- Only read, but a file moved to another repository meanwhile
        -- would leave its chunks with the old project_id.
        LOCK TABLE public.code_files IN SHARE MODE;
    END IF;
    -- The later steps read it (a transaction-local setting).
    PERFORM set_config('migration_harness.shape_002', shape, true);
    IF shape <> 'unknown' THEN
        RAISE NOTICE 'Schema shape: % (%)', shape,
            CASE shape WHEN 'production' THEN 'code_chunks -> code_files -> repositories'
                       ELSE 'code_chunks -> repositories' END;
    END IF;
    -- The nine tables step 7 drops, then the tables whose foreign keys
    -- into them it drops: locked now, so that no view or key on them can
    -- appear between step 2's look and step 7.
    FOR t IN SELECT format('public.%I', n.name)
               FROM unnest(nine) WITH ORDINALITY AS n(name, ord)
              WHERE to_regclass('public.' || quote_ident(n.name)) IS NOT NULL
              ORDER BY n.ord
    LOOP
        EXECUTE 'LOCK TABLE ' || t || ' IN ACCESS EXCLUSIVE MODE';
    END LOOP;
    FOR t IN SELECT DISTINCT format('%I.%I', sn.nspname, src.relname)
               FROM pg_constraint c
               JOIN pg_class dst ON dst.oid = c.confrelid
               JOIN pg_class src ON src.oid = c.conrelid
               JOIN pg_namespace sn ON sn.oid = src.relnamespace
              WHERE c.contype = 'f'
                AND dst.relnamespace = 'public'::regnamespace AND dst.relname = ANY (nine)
                AND NOT (src.relnamespace = 'public'::regnamespace AND src.relname = ANY (nine))
              ORDER BY 1
    LOOP
        EXECUTE 'LOCK TABLE ' || t || ' IN ACCESS EXCLUSIVE MODE';
    END LOOP;
END
$$;

--! guard_step: Verifying foreign key constraints
-- The guards, the pre checks below marked `guard` (core_tables,
-- project_id_definitions, no_blocking_foreign_keys, dependent_objects,
-- no_orphaned_chunks, project_id_values), run as `check pre` runs them,
-- under step 1's locks: nothing can change between this look and its use.

--! step: Adding project_id to repositories table
-- A constant default on a new NOT NULL column is stored in the catalog:
-- no table rewrite (PostgreSQL 11+).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = 'repositories'::regclass AND attname = 'project_id'
                  AND NOT attisdropped) THEN
        RAISE NOTICE 'Column repositories.project_id already exists: kept';
    ELSE
        ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default';
        -- Step 4 reads it: every repository has 'default', known without a scan.
        PERFORM set_config('migration_harness.repositories_added_002', 'on', true);
        RAISE NOTICE 'Column added with default ''default''';
    END IF;
END
$$;

--! step: Adding project_id to code_chunks table
DO $$
DECLARE
    production constant boolean := current_setting('migration_harness.shape_002') = 'production';
    distinct_ids bigint;
    only_id text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = 'code_chunks'::regclass AND attname = 'project_id'
                  AND NOT attisdropped) THEN
        RAISE NOTICE 'Column code_chunks.project_id already exists: kept';
        RETURN;
    END IF;

    IF coalesce(current_setting('migration_harness.repositories_added_002', true), '') = 'on' THEN
        -- Step 3 has just added repositories.project_id: every repository
        -- has 'default', and no scan of repositories under the lock says so.
        distinct_ids := 1;
        only_id := 'default';
    ELSE
        SELECT pg_catalog.count(DISTINCT project_id), pg_catalog.min(project_id) INTO distinct_ids, only_id
          FROM repositories;
    END IF;
    IF distinct_ids <= 1
       AND coalesce(current_setting('migration_harness.force_update_path', true), '') <> 'on' THEN
        -- Every chunk gets the same value: a constant default is
        -- metadata-only, then the default is dropped again.
        EXECUTE format('ALTER TABLE code_chunks ADD COLUMN project_id varchar(50) NOT NULL DEFAULT %L',
                       coalesce(only_id, 'default'));
        ALTER TABLE code_chunks ALTER COLUMN project_id DROP DEFAULT;
        RAISE NOTICE 'Column added, populated from parent repositories (fast path: constant default %, no table rewrite)',
            quote_literal(coalesce(only_id, 'default'));
    ELSIF coalesce(current_setting('migration_harness.online', true), '') = 'on' THEN
        -- upgrade --online: catalog-only here; the online step "Backfilling
        -- code_chunks.project_id in batches" fills the rows, a trigger the
        -- rows written meanwhile, and step 8 sets NOT NULL through the
        -- validated CHECK (no scan under ACCESS EXCLUSIVE). Step 8 drops
        -- both; so does the downgrade.
        ALTER TABLE code_chunks ADD COLUMN project_id varchar(50);
        ALTER TABLE code_chunks ADD CONSTRAINT check_code_chunks_project_id_not_null
            CHECK (project_id IS NOT NULL) NOT VALID;
        EXECUTE format($fn$CREATE FUNCTION public.migration_harness_002_fill_project_id() RETURNS trigger
            LANGUAGE plpgsql SET search_path = pg_catalog AS $body$
            BEGIN
                %s
                RETURN NEW;
            END
            $body$
            $fn$,
            CASE WHEN production
                 THEN 'SELECT r.project_id INTO NEW.project_id FROM public.code_files f JOIN public.repositories r '
                      'ON r.id OPERATOR(pg_catalog.=) f.repository_id WHERE f.id OPERATOR(pg_catalog.=) NEW.code_file_id;'
                 ELSE 'SELECT r.project_id INTO NEW.project_id FROM public.repositories r '
                      'WHERE r.id OPERATOR(pg_catalog.=) NEW.repository_id;' END);
        CREATE TRIGGER migration_harness_002_fill_project_id BEFORE INSERT OR UPDATE ON code_chunks
            FOR EACH ROW WHEN (NEW.project_id IS NULL)
            EXECUTE FUNCTION public.migration_harness_002_fill_project_id();
        RAISE NOTICE 'Column added empty (online: % distinct project ids; filled by the backfill in batches, rows written meanwhile by a trigger)',
            distinct_ids;
    ELSE
        ALTER TABLE code_chunks ADD COLUMN project_id varchar(50);
        IF production THEN
            UPDATE public.code_chunks c SET project_id = r.project_id
              FROM public.code_files f JOIN public.repositories r ON r.id = f.repository_id
             WHERE f.id = c.code_file_id;
        ELSE
            UPDATE public.code_chunks c SET project_id = r.project_id
              FROM public.repositories r WHERE r.id = c.repository_id;
        END IF;
        ALTER TABLE code_chunks ALTER COLUMN project_id SET NOT NULL;
        RAISE NOTICE 'Column added, populated from parent repositories by UPDATE (% distinct project ids)',
            distinct_ids;
    END IF;
END
$$;

--! step: Adding validation constraints
-- NOT VALID here, validated in step 8: lowercase letters, digits and single
-- inner hyphens, 1 to 50 characters. One of the same name that says
-- anything else (the quickstart's weaker pattern, say) the guard
-- project_id_definitions has refused: one that exists is kept.
DO $$
DECLARE
    t record;
    added integer := 0;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('repositories', 'check_repositories_project_id'),
                                   ('code_chunks', 'check_code_chunks_project_id')) v(tab, con)
    LOOP
        IF EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = t.tab::regclass AND k.conname = t.con) THEN
            RAISE NOTICE 'Constraint % already exists: kept', t.con;
        ELSE
            -- Qualified: the constraint binds pg_catalog's operator and
            -- function whatever else a search path might offer.
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (project_id OPERATOR(pg_catalog.~) %L '
                           'AND pg_catalog.char_length(project_id) <= 50) NOT VALID',
                           t.tab, t.con, '{{PROJECT_ID_PATTERN}}');
            added := added + 1;
        END IF;
    END LOOP;
    RAISE NOTICE '% CHECK constraint(s) added', added;
END
$$;

--! step: Creating performance index
-- One that exists is kept: the guard project_id_definitions has refused
-- any other definition, and an invalid one.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('idx_project_repository')) THEN
        RAISE NOTICE 'Index idx_project_repository already exists: kept (built beforehand, or a re-run)';
    ELSIF coalesce(current_setting('migration_harness.online', true), '') = 'on' THEN
        -- upgrade --online builds it CONCURRENTLY in the first online step:
        -- SHARE here would block writes to repositories until phase 1 commits.
        RAISE NOTICE 'Index idx_project_repository: built concurrently after this phase';
    ELSE
        CREATE INDEX idx_project_repository ON repositories (project_id, id);
        RAISE NOTICE 'Index idx_project_repository created';
    END IF;
END
$$;

--! step: Dropping unused tables
DO $$
DECLARE
    nine constant text[] := ARRAY(SELECT u.t FROM unnest(ARRAY[{{NINE_TABLES}}]) WITH ORDINALITY u(t, o) ORDER BY u.o DESC);
    k record;
    present text;
    n integer;
BEGIN
    -- Foreign keys from kept tables into the nine: after step 2, only
    -- production's four task links into tasks, which the rollback
    -- restores. Dropped by name and logged with the statement that
    -- recreates them, never silently by CASCADE.
    FOR k IN
        SELECT c.conname, format('%I.%I', sn.nspname, src.relname) AS src,
               format('%I.%I', dn.nspname, dst.relname) AS dst,
               pg_get_constraintdef(c.oid) AS definition
          FROM pg_constraint c
          JOIN pg_class dst ON dst.oid = c.confrelid
          JOIN pg_namespace dn ON dn.oid = dst.relnamespace
          JOIN pg_class src ON src.oid = c.conrelid
          JOIN pg_namespace sn ON sn.oid = src.relnamespace
         WHERE c.contype = 'f' AND c.conparentid = 0
           AND dst.relnamespace = 'public'::regnamespace AND dst.relname = ANY (nine)
           AND NOT (src.relnamespace = 'public'::regnamespace AND src.relname = ANY (nine))
         ORDER BY src.relname, c.conname
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', k.src, k.conname);
        RAISE NOTICE 'Dropped foreign key % of % into %; it was: ALTER TABLE % ADD CONSTRAINT % %;',
            k.conname, k.src, k.dst, k.src, quote_ident(k.conname), k.definition;
    END LOOP;

    SELECT string_agg(format('public.%I', t.name), ', ' ORDER BY t.ord), count(*)
      INTO present, n
      FROM unnest(nine) WITH ORDINALITY AS t(name, ord)
     WHERE to_regclass('public.' || quote_ident(t.name)) IS NOT NULL;
    -- One statement, so the tables' references to each other need no
    -- CASCADE; step 2 refused any other dependent object (one created
    -- since would stop the migration here, with the server naming it).
    -- Only the tables still there: a re-run has nothing to drop and says
    -- so once.
    IF n > 0 THEN
        EXECUTE 'DROP TABLE ' || present;
    END IF;
    RAISE NOTICE '% tables dropped', n;
END
$$;

--! online_step: Creating performance index concurrently
-- upgrade --online only: writes to repositories go on while it builds. An
-- invalid index of the same name (a build stopped by a crash or Ctrl-C) is
-- dropped first: a catalog-only moment under ACCESS EXCLUSIVE.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_index x WHERE x.indexrelid = to_regclass('public.idx_project_repository')
                  AND NOT x.indisvalid AND x.indrelid = 'public.repositories'::regclass) THEN
        DROP INDEX public.idx_project_repository;
        RAISE NOTICE 'Dropped the invalid index idx_project_repository left by a stopped build';
    END IF;
END
$$;
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_project_repository ON repositories (project_id, id);

--! online_step: Backfilling code_chunks.project_id in batches
-- upgrade --online only, outside a transaction: batches of
-- migration_harness.backfill_batch chunks (default 10000) in key order,
-- each committed, so that no row stays locked for long; rows already
-- filled are passed over, so a run stopped half way resumes here.
DO $$
DECLARE
    batch constant bigint := coalesce(nullif(current_setting('migration_harness.backfill_batch', true), ''), '10000')::bigint;
    production constant boolean := EXISTS (
        SELECT 1 FROM pg_attribute WHERE attrelid = 'public.code_chunks'::regclass
           AND attname = 'code_file_id' AND attnum > 0 AND NOT attisdropped);
    lo public.code_chunks.id%TYPE;
    upto public.code_chunks.id%TYPE;
    n bigint;
    total bigint := 0;
    batches bigint := 0;
    started constant timestamptz := clock_timestamp();
    said timestamptz := clock_timestamp();
BEGIN
    IF to_regprocedure('public.migration_harness_002_fill_project_id()') IS NULL THEN
        RAISE NOTICE 'Nothing to backfill: code_chunks.project_id was added with its value';
        RETURN;
    END IF;
    -- In key order (uuid has no min() before PostgreSQL 16: ORDER BY).
    SELECT c.id INTO lo FROM public.code_chunks c ORDER BY c.id LIMIT 1;
    WHILE lo IS NOT NULL LOOP
        SELECT s.id INTO upto
          FROM (SELECT c.id FROM public.code_chunks c WHERE c.id >= lo ORDER BY c.id LIMIT batch) s
         ORDER BY s.id DESC LIMIT 1;
        IF production THEN
            UPDATE public.code_chunks c SET project_id = r.project_id
              FROM public.code_files f JOIN public.repositories r ON r.id = f.repository_id
             WHERE f.id = c.code_file_id AND c.id >= lo AND c.id <= upto AND c.project_id IS NULL;
        ELSE
            UPDATE public.code_chunks c SET project_id = r.project_id
              FROM public.repositories r
             WHERE r.id = c.repository_id AND c.id >= lo AND c.id <= upto AND c.project_id IS NULL;
        END IF;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
        batches := batches + 1;
        COMMIT;
        IF clock_timestamp() - said > interval '5 seconds' THEN
            RAISE NOTICE 'Backfilled % chunks so far (% batches)', total, batches;
            said := clock_timestamp();
        END IF;
        SELECT c.id INTO lo FROM public.code_chunks c WHERE c.id > upto ORDER BY c.id LIMIT 1;
    END LOOP;
    RAISE NOTICE 'Backfilled % chunks in % batches of at most % (% s)', total, batches, batch,
        round(extract(epoch FROM clock_timestamp() - started)::numeric, 3);
END
$$;

--! online_step: Validating check_code_chunks_project_id_not_null
-- Under SHARE UPDATE EXCLUSIVE: reads and writes go on.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'public.code_chunks'::regclass
                  AND conname = 'check_code_chunks_project_id_not_null') THEN
        ALTER TABLE code_chunks VALIDATE CONSTRAINT check_code_chunks_project_id_not_null;
    ELSE
        RAISE NOTICE 'Nothing to validate: code_chunks.project_id is NOT NULL already';
    END IF;
END
$$;

--! online_step: Validating check_repositories_project_id
ALTER TABLE repositories VALIDATE CONSTRAINT check_repositories_project_id;

--! online_step: Validating check_code_chunks_project_id
ALTER TABLE code_chunks VALIDATE CONSTRAINT check_code_chunks_project_id;

--! step: Running validation checks
-- Values that break the CHECK could only come from a project_id column
-- that existed before 002: the guard project_id_values has refused them
-- with their count, a sample and the query that lists them.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('repositories', 'check_repositories_project_id'),
                                   ('code_chunks', 'check_code_chunks_project_id')) v(tab, con)
    LOOP
        EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', t.tab, t.con);
    END LOOP;
END
$$;
-- upgrade --online: the backfill's NOT NULL, through its validated CHECK
-- (no scan), and its trigger gone, in this last transaction. After the
-- VALIDATE above, which stays in the step's first 1024 characters (what
-- pg_stat_activity shows of it).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'public.code_chunks'::regclass
                  AND conname = 'check_code_chunks_project_id_not_null') THEN
        ALTER TABLE public.code_chunks ALTER COLUMN project_id SET NOT NULL;
        ALTER TABLE public.code_chunks DROP CONSTRAINT check_code_chunks_project_id_not_null;
        RAISE NOTICE 'code_chunks.project_id set NOT NULL (proven by its validated CHECK, no scan)';
    END IF;
    IF to_regprocedure('public.migration_harness_002_fill_project_id()') IS NOT NULL THEN
        DROP TRIGGER IF EXISTS migration_harness_002_fill_project_id ON public.code_chunks;
        DROP FUNCTION public.migration_harness_002_fill_project_id();
    END IF;
END
$$;
DO $$
DECLARE
    problems text[] := '{}';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a LEFT JOIN pg_attrdef d
                          ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                    WHERE a.attrelid = 'repositories'::regclass AND a.attname = 'project_id'
                      AND format_type(a.atttypid, a.atttypmod) = 'character varying(50)'
                      AND a.attnotnull
                      AND pg_get_expr(d.adbin, d.adrelid) = '''default''::character varying') THEN
        problems := array_append(problems, 'repositories.project_id is not varchar(50) NOT NULL DEFAULT ''default''');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a
                    WHERE a.attrelid = 'code_chunks'::regclass AND a.attname = 'project_id'
                      AND format_type(a.atttypid, a.atttypmod) = 'character varying(50)'
                      AND a.attnotnull AND NOT a.atthasdef) THEN
        problems := array_append(problems, 'code_chunks.project_id is not varchar(50) NOT NULL without default');
    END IF;
    IF (SELECT count(*) FROM pg_constraint
         WHERE (conrelid, conname) IN (('repositories'::regclass, 'check_repositories_project_id'),
                                       ('code_chunks'::regclass, 'check_code_chunks_project_id'))
           AND convalidated) <> 2 THEN
        -- Their definitions were checked in step 5.
        problems := array_append(problems, 'the project_id CHECK constraints are missing or not validated');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('idx_project_repository')
                      AND indisvalid) THEN
        problems := array_append(problems, 'idx_project_repository is missing or invalid');
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(ARRAY[{{NINE_TABLES}}]) AS t(name)
                WHERE to_regclass(t.name) IS NOT NULL) THEN
        problems := array_append(problems, 'some of the 9 tables still exist');
    END IF;
    IF cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'validation failed: %', array_to_string(problems, '; ')
            USING ERRCODE = 'MHV01';
    END IF;
    RAISE NOTICE 'All validations passed';
END
$$;

--! step: Logging total time
DO $$
BEGIN
    -- upgrade --online: the mark was step 1's, in phase 1's transaction.
    IF coalesce(current_setting('migration_harness.online', true), '') = 'on' THEN
        RAISE NOTICE 'Migration 002 ran online, in phases: each step''s time is its own';
    ELSE
        RAISE NOTICE 'Migration 002 steps 1-8 took % s on the server',
            round(extract(epoch FROM clock_timestamp()
                  - current_setting('migration_harness.started_002')::timestamptz)::numeric, 3);
    END IF;
END
$$;

--! record_step: Committing and writing alembic_version

--! downgrade
--! step: Dropping performance index
DROP INDEX IF EXISTS idx_project_repository;

--! step: Dropping validation constraints
ALTER TABLE code_chunks DROP CONSTRAINT IF EXISTS check_code_chunks_project_id;
ALTER TABLE repositories DROP CONSTRAINT IF EXISTS check_repositories_project_id;

--! step: Dropping project_id from code_chunks
-- And what upgrade --online left while in progress: the backfill's trigger
-- (its CHECK goes with the column).
DO $$
BEGIN
    IF to_regprocedure('public.migration_harness_002_fill_project_id()') IS NOT NULL THEN
        DROP TRIGGER IF EXISTS migration_harness_002_fill_project_id ON public.code_chunks;
        DROP FUNCTION public.migration_harness_002_fill_project_id();
    END IF;
END
$$;
ALTER TABLE code_chunks DROP COLUMN IF EXISTS project_id;

--! step: Dropping project_id from repositories
ALTER TABLE repositories DROP COLUMN IF EXISTS project_id;

--! step: Restoring dropped tables (schema only)
-- Exactly as the shape had them at 005: the quickstart's (001 + 003 + 003a
-- + 003b + 005) or production's (the service's chain: harness/codesearch/shapes/),
-- column order, names, defaults, indexes and constraints included.
SELECT set_config('migration_harness.shape_002',
    CASE WHEN to_regclass('public.code_files') IS NOT NULL
              AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('public.code_chunks')
                             AND attname = 'code_file_id' AND NOT attisdropped)
         THEN 'production' ELSE 'quickstart' END, true);
DO $$
BEGIN
    IF current_setting('migration_harness.shape_002') <> 'quickstart' THEN
        RETURN;
    END IF;
        CREATE TABLE IF NOT EXISTS public.tasks (
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            title varchar(200) NOT NULL,
            description text,
            notes text,
            status varchar(50) NOT NULL DEFAULT 'need to be done',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            version integer NOT NULL,
            item_type varchar(20) NOT NULL DEFAULT 'task',
            parent_id uuid,
            path varchar(500) NOT NULL DEFAULT '/',
            depth integer NOT NULL DEFAULT 0,
            deleted_at timestamptz,
            branch_name varchar(100),
            commit_hash varchar(40),
            pr_number integer,
            metadata jsonb,
            created_by varchar(100) NOT NULL DEFAULT 'system',
            CONSTRAINT tasks_pkey PRIMARY KEY (id),
            CONSTRAINT tasks_status_check CHECK (status IN ('need to be done', 'in-progress', 'complete')),
            CONSTRAINT tasks_item_type_check CHECK (item_type IN ('project', 'session', 'task', 'research')),
            CONSTRAINT tasks_depth_check CHECK (depth >= 0 AND depth <= 5),
            CONSTRAINT tasks_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES tasks (id) ON DELETE SET NULL
        );
        CREATE INDEX IF NOT EXISTS idx_tasks_status ON tasks (status);
        CREATE INDEX IF NOT EXISTS idx_tasks_parent_id ON tasks (parent_id);
        CREATE INDEX IF NOT EXISTS idx_tasks_path ON tasks (path);
        CREATE INDEX IF NOT EXISTS idx_tasks_item_type ON tasks (item_type);
        CREATE INDEX IF NOT EXISTS idx_tasks_active ON tasks (deleted_at) WHERE deleted_at IS NULL;

        CREATE TABLE IF NOT EXISTS public.vendor_extractors (
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            version integer NOT NULL,
            name varchar(100) NOT NULL,
            status varchar(20) NOT NULL,
            extractor_version varchar(50) NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            created_by varchar(100) NOT NULL DEFAULT 'system',
            CONSTRAINT vendor_extractors_pkey PRIMARY KEY (id),
            CONSTRAINT vendor_extractors_status_check CHECK (status IN ('operational', 'broken'))
        );
        CREATE UNIQUE INDEX IF NOT EXISTS idx_vendor_name_lower ON vendor_extractors (pg_catalog.lower(name));
        CREATE INDEX IF NOT EXISTS idx_vendor_status ON vendor_extractors (status);

        CREATE TABLE IF NOT EXISTS public.deployment_events (
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            deployed_at timestamptz NOT NULL,
            commit_hash varchar(40) NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            created_by varchar(100) NOT NULL DEFAULT 'system',
            CONSTRAINT deployment_events_pkey PRIMARY KEY (id),
            CONSTRAINT deployment_events_commit_hash_check CHECK (commit_hash OPERATOR(pg_catalog.~) '^[a-f0-9]{40}$')
        );
        CREATE INDEX IF NOT EXISTS idx_deployment_deployed_at ON deployment_events (deployed_at DESC);
        CREATE INDEX IF NOT EXISTS idx_deployment_commit_hash ON deployment_events (commit_hash);

        CREATE TABLE IF NOT EXISTS public.project_configuration (
            id integer NOT NULL DEFAULT 1,
            active_context_type varchar(50) NOT NULL DEFAULT 'feature',
            current_session_id uuid,
            git_branch varchar(100),
            git_head_commit varchar(40),
            default_token_budget integer NOT NULL DEFAULT 200000,
            database_healthy boolean NOT NULL DEFAULT true,
            last_health_check_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now(),
            updated_by varchar(100) NOT NULL DEFAULT 'system',
            CONSTRAINT project_configuration_pkey PRIMARY KEY (id),
            CONSTRAINT project_configuration_singleton CHECK (id = 1),
            CONSTRAINT project_configuration_current_session_id_fkey FOREIGN KEY (current_session_id)
                REFERENCES tasks (id) ON DELETE SET NULL
        );

        CREATE TABLE IF NOT EXISTS public.future_enhancements (
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            title varchar(200) NOT NULL,
            description text NOT NULL,
            priority integer NOT NULL,
            status varchar(20) NOT NULL DEFAULT 'planned',
            target_quarter varchar(10),
            requires_constitutional_principles jsonb NOT NULL DEFAULT '[]'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            created_by varchar(100) NOT NULL DEFAULT 'system',
            CONSTRAINT future_enhancements_pkey PRIMARY KEY (id),
            CONSTRAINT future_enhancements_priority_check CHECK (priority >= 1 AND priority <= 5),
            CONSTRAINT future_enhancements_status_check
                CHECK (status IN ('planned', 'approved', 'implementing', 'completed'))
        );
        CREATE INDEX IF NOT EXISTS idx_enhancement_priority ON future_enhancements (priority);
        CREATE INDEX IF NOT EXISTS idx_enhancement_status ON future_enhancements (status);

        CREATE TABLE IF NOT EXISTS public.work_item_dependencies (
            source_id uuid NOT NULL,
            target_id uuid NOT NULL,
            dependency_type varchar(20) NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            created_by varchar(100) NOT NULL DEFAULT 'system',
            CONSTRAINT work_item_dependencies_pkey PRIMARY KEY (source_id, target_id),
            CONSTRAINT work_item_dependencies_source_id_fkey FOREIGN KEY (source_id)
                REFERENCES tasks (id) ON DELETE CASCADE,
            CONSTRAINT work_item_dependencies_target_id_fkey FOREIGN KEY (target_id)
                REFERENCES tasks (id) ON DELETE CASCADE,
            CONSTRAINT work_item_dependencies_type_check CHECK (dependency_type IN ('blocks', 'depends_on')),
            CONSTRAINT work_item_dependencies_no_self_check CHECK (source_id <> target_id)
        );
        CREATE INDEX IF NOT EXISTS idx_dependency_source ON work_item_dependencies (source_id);
        CREATE INDEX IF NOT EXISTS idx_dependency_target ON work_item_dependencies (target_id);

        CREATE TABLE IF NOT EXISTS public.vendor_deployment_links (
            deployment_id uuid NOT NULL,
            vendor_id uuid NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT vendor_deployment_links_pkey PRIMARY KEY (deployment_id, vendor_id),
            CONSTRAINT vendor_deployment_links_deployment_id_fkey FOREIGN KEY (deployment_id)
                REFERENCES deployment_events (id) ON DELETE CASCADE,
            CONSTRAINT vendor_deployment_links_vendor_id_fkey FOREIGN KEY (vendor_id)
                REFERENCES vendor_extractors (id) ON DELETE CASCADE
        );
        CREATE INDEX IF NOT EXISTS idx_vendor_deployment_deployment ON vendor_deployment_links (deployment_id);
        CREATE INDEX IF NOT EXISTS idx_vendor_deployment_vendor ON vendor_deployment_links (vendor_id);

        CREATE TABLE IF NOT EXISTS public.work_item_deployment_links (
            deployment_id uuid NOT NULL,
            work_item_id uuid NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT work_item_deployment_links_pkey PRIMARY KEY (deployment_id, work_item_id),
            CONSTRAINT work_item_deployment_links_deployment_id_fkey FOREIGN KEY (deployment_id)
                REFERENCES deployment_events (id) ON DELETE CASCADE,
            CONSTRAINT work_item_deployment_links_work_item_id_fkey FOREIGN KEY (work_item_id)
                REFERENCES tasks (id) ON DELETE CASCADE
        );
        CREATE INDEX IF NOT EXISTS idx_work_item_deployment_deployment ON work_item_deployment_links (deployment_id);
        CREATE INDEX IF NOT EXISTS idx_work_item_deployment_work_item ON work_item_deployment_links (work_item_id);

        CREATE TABLE IF NOT EXISTS public.archived_work_items (
            id uuid NOT NULL,
            title varchar(200) NOT NULL,
            description text,
            notes text,
            status varchar(50) NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            version integer NOT NULL,
            item_type varchar(20) NOT NULL,
            parent_id uuid,
            path varchar(500) NOT NULL,
            depth integer NOT NULL,
            deleted_at timestamptz,
            archived_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT archived_work_items_pkey PRIMARY KEY (id)
        );
        CREATE INDEX IF NOT EXISTS idx_archived_created_at ON archived_work_items (created_at);
        CREATE INDEX IF NOT EXISTS idx_archived_item_type ON archived_work_items (item_type);
END
$$;
DO $$
BEGIN
    IF current_setting('migration_harness.shape_002') <> 'production' THEN
        RETURN;
    END IF;
    IF to_regclass('public.tasks') IS NULL THEN
        CREATE TABLE public.tasks (
            id uuid NOT NULL,
            title character varying NOT NULL,
            description text,
            notes text,
            status character varying DEFAULT 'need to be done'::character varying NOT NULL,
            created_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
            updated_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
            version integer NOT NULL,
            item_type character varying(20) DEFAULT 'task'::character varying NOT NULL,
            parent_id uuid,
            path character varying(500) DEFAULT '/'::character varying NOT NULL,
            depth integer DEFAULT 0 NOT NULL,
            deleted_at timestamp with time zone,
            branch_name character varying(100),
            commit_hash character varying(40),
            pr_number integer,
            metadata jsonb,
            created_by character varying(100) DEFAULT 'system'::character varying NOT NULL,
            CONSTRAINT ck_tasks_valid_status CHECK (((status)::text = ANY ((ARRAY['need to be done'::character varying, 'in-progress'::character varying, 'complete'::character varying])::text[]))),
            CONSTRAINT ck_work_item_depth CHECK (((depth >= 0) AND (depth <= 5))),
            CONSTRAINT ck_work_item_type CHECK (((item_type)::text = ANY ((ARRAY['project'::character varying, 'session'::character varying, 'task'::character varying, 'research'::character varying])::text[]))),
            CONSTRAINT pk_tasks PRIMARY KEY (id),
            CONSTRAINT fk_work_item_parent FOREIGN KEY (parent_id) REFERENCES public.tasks(id) ON DELETE SET NULL
        );
        CREATE INDEX idx_work_item_deleted_at ON public.tasks USING btree (deleted_at) WHERE (deleted_at IS NULL);
        CREATE INDEX idx_work_item_parent_id ON public.tasks USING btree (parent_id);
        CREATE INDEX idx_work_item_path ON public.tasks USING btree (path);
        CREATE INDEX idx_work_item_type ON public.tasks USING btree (item_type);
        CREATE INDEX ix_tasks_status ON public.tasks USING btree (status);
    END IF;
    IF to_regclass('public.vendor_extractors') IS NULL THEN
        CREATE TABLE public.vendor_extractors (
            id uuid NOT NULL,
            version integer NOT NULL,
            name character varying(100) NOT NULL,
            status character varying(20) NOT NULL,
            extractor_version character varying(50) NOT NULL,
            metadata jsonb NOT NULL,
            created_at timestamp with time zone NOT NULL,
            updated_at timestamp with time zone NOT NULL,
            created_by character varying(100) NOT NULL,
            CONSTRAINT ck_vendor_status CHECK (((status)::text = ANY ((ARRAY['operational'::character varying, 'broken'::character varying])::text[]))),
            CONSTRAINT vendor_extractors_pkey PRIMARY KEY (id)
        );
        CREATE UNIQUE INDEX idx_vendor_name_lower ON public.vendor_extractors USING btree (pg_catalog.lower((name)::text));
        CREATE INDEX idx_vendor_status ON public.vendor_extractors USING btree (status);
    END IF;
    IF to_regclass('public.deployment_events') IS NULL THEN
        CREATE TABLE public.deployment_events (
            id uuid NOT NULL,
            deployed_at timestamp with time zone NOT NULL,
            commit_hash character varying(40) NOT NULL,
            metadata jsonb NOT NULL,
            created_at timestamp with time zone NOT NULL,
            created_by character varying(100) NOT NULL,
            CONSTRAINT ck_commit_hash_format CHECK (((commit_hash)::text OPERATOR(pg_catalog.~) '^[a-f0-9]{40}$'::text)),
            CONSTRAINT deployment_events_pkey PRIMARY KEY (id)
        );
        CREATE INDEX idx_deployment_commit_hash ON public.deployment_events USING btree (commit_hash);
        CREATE INDEX idx_deployment_deployed_at ON public.deployment_events USING btree (deployed_at DESC);
    END IF;
    IF to_regclass('public.project_configuration') IS NULL THEN
        CREATE TABLE public.project_configuration (
            id integer NOT NULL,
            active_context_type character varying(50) NOT NULL,
            current_session_id uuid,
            git_branch character varying(100),
            git_head_commit character varying(40),
            default_token_budget integer DEFAULT 200000 NOT NULL,
            database_healthy boolean DEFAULT true NOT NULL,
            last_health_check_at timestamp with time zone,
            updated_at timestamp with time zone NOT NULL,
            updated_by character varying(100) NOT NULL,
            CONSTRAINT ck_singleton CHECK ((id = 1)),
            CONSTRAINT project_configuration_pkey PRIMARY KEY (id),
            CONSTRAINT fk_current_session FOREIGN KEY (current_session_id) REFERENCES public.tasks(id) ON DELETE SET NULL
        );
        CREATE SEQUENCE public.project_configuration_id_seq
            AS integer START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
        ALTER SEQUENCE public.project_configuration_id_seq OWNED BY public.project_configuration.id;
        ALTER TABLE ONLY public.project_configuration
            ALTER COLUMN id SET DEFAULT pg_catalog.nextval('public.project_configuration_id_seq'::regclass);
    END IF;
    IF to_regclass('public.future_enhancements') IS NULL THEN
        CREATE TABLE public.future_enhancements (
            id uuid NOT NULL,
            title character varying(200) NOT NULL,
            description text NOT NULL,
            priority integer NOT NULL,
            status character varying(20) DEFAULT 'planned'::character varying NOT NULL,
            target_quarter character varying(10),
            requires_constitutional_principles jsonb DEFAULT '[]'::jsonb NOT NULL,
            created_at timestamp with time zone NOT NULL,
            updated_at timestamp with time zone NOT NULL,
            created_by character varying(100) NOT NULL,
            CONSTRAINT ck_enhancement_status CHECK (((status)::text = ANY ((ARRAY['planned'::character varying, 'approved'::character varying, 'implementing'::character varying, 'completed'::character varying])::text[]))),
            CONSTRAINT ck_priority_range CHECK (((priority >= 1) AND (priority <= 5))),
            CONSTRAINT future_enhancements_pkey PRIMARY KEY (id)
        );
        CREATE INDEX idx_enhancement_priority ON public.future_enhancements USING btree (priority);
        CREATE INDEX idx_enhancement_status ON public.future_enhancements USING btree (status);
    END IF;
    IF to_regclass('public.work_item_dependencies') IS NULL THEN
        CREATE TABLE public.work_item_dependencies (
            source_id uuid NOT NULL,
            target_id uuid NOT NULL,
            dependency_type character varying(20) NOT NULL,
            created_at timestamp with time zone NOT NULL,
            created_by character varying(100) NOT NULL,
            CONSTRAINT ck_dependency_type CHECK (((dependency_type)::text = ANY ((ARRAY['blocks'::character varying, 'depends_on'::character varying])::text[]))),
            CONSTRAINT ck_no_self_dependency CHECK ((source_id <> target_id)),
            CONSTRAINT work_item_dependencies_pkey PRIMARY KEY (source_id, target_id),
            CONSTRAINT work_item_dependencies_source_id_fkey FOREIGN KEY (source_id) REFERENCES public.tasks(id) ON DELETE CASCADE,
            CONSTRAINT work_item_dependencies_target_id_fkey FOREIGN KEY (target_id) REFERENCES public.tasks(id) ON DELETE CASCADE
        );
        CREATE INDEX idx_dependency_source_id ON public.work_item_dependencies USING btree (source_id);
        CREATE INDEX idx_dependency_target_id ON public.work_item_dependencies USING btree (target_id);
    END IF;
    IF to_regclass('public.vendor_deployment_links') IS NULL THEN
        CREATE TABLE public.vendor_deployment_links (
            deployment_id uuid NOT NULL,
            vendor_id uuid NOT NULL,
            created_at timestamp with time zone NOT NULL,
            CONSTRAINT vendor_deployment_links_pkey PRIMARY KEY (deployment_id, vendor_id),
            CONSTRAINT vendor_deployment_links_deployment_id_fkey FOREIGN KEY (deployment_id) REFERENCES public.deployment_events(id) ON DELETE CASCADE,
            CONSTRAINT vendor_deployment_links_vendor_id_fkey FOREIGN KEY (vendor_id) REFERENCES public.vendor_extractors(id) ON DELETE CASCADE
        );
        CREATE INDEX idx_vendor_deployment_deployment_id ON public.vendor_deployment_links USING btree (deployment_id);
        CREATE INDEX idx_vendor_deployment_vendor_id ON public.vendor_deployment_links USING btree (vendor_id);
    END IF;
    IF to_regclass('public.work_item_deployment_links') IS NULL THEN
        CREATE TABLE public.work_item_deployment_links (
            deployment_id uuid NOT NULL,
            work_item_id uuid NOT NULL,
            created_at timestamp with time zone NOT NULL,
            CONSTRAINT work_item_deployment_links_pkey PRIMARY KEY (deployment_id, work_item_id),
            CONSTRAINT work_item_deployment_links_deployment_id_fkey FOREIGN KEY (deployment_id) REFERENCES public.deployment_events(id) ON DELETE CASCADE,
            CONSTRAINT work_item_deployment_links_work_item_id_fkey FOREIGN KEY (work_item_id) REFERENCES public.tasks(id) ON DELETE CASCADE
        );
        CREATE INDEX idx_work_item_deployment_deployment_id ON public.work_item_deployment_links USING btree (deployment_id);
        CREATE INDEX idx_work_item_deployment_work_item_id ON public.work_item_deployment_links USING btree (work_item_id);
    END IF;
    IF to_regclass('public.archived_work_items') IS NULL THEN
        CREATE TABLE public.archived_work_items (
            id uuid NOT NULL,
            item_type character varying(20) NOT NULL,
            title character varying(200) NOT NULL,
            status character varying(20) NOT NULL,
            parent_id uuid,
            path character varying(500) NOT NULL,
            depth integer NOT NULL,
            branch_name character varying(100),
            commit_hash character varying(40),
            pr_number integer,
            metadata jsonb NOT NULL,
            deleted_at timestamp with time zone,
            created_at timestamp with time zone NOT NULL,
            updated_at timestamp with time zone NOT NULL,
            created_by character varying(100) NOT NULL,
            archived_at timestamp with time zone NOT NULL,
            CONSTRAINT archived_work_items_pkey PRIMARY KEY (id)
        );
        CREATE INDEX idx_archived_work_item_archived_at ON public.archived_work_items USING btree (archived_at);
        CREATE INDEX idx_archived_work_item_created_at ON public.archived_work_items USING btree (created_at);
        CREATE INDEX idx_archived_work_item_type ON public.archived_work_items USING btree (item_type);
    END IF;
END
$$;
-- Recreated by the tool's user, usually a superuser: they go back to the
-- role that owns repositories, as the service's chain made all its tables
-- with one role (their grants to other roles are not known here; the
-- docs/deployment.md#deployment-checklist-migration-002 says to run them again).
DO $$
DECLARE
    owner_oid constant oid := (SELECT relowner FROM pg_class WHERE oid = 'public.repositories'::regclass);
    t text;
    n integer := 0;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c
              WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
                AND c.relowner <> owner_oid
                AND c.relname = ANY (ARRAY[{{NINE_TABLES}}])
              ORDER BY 1
    LOOP
        EXECUTE format('ALTER TABLE public.%I OWNER TO %I', t, pg_get_userbyid(owner_oid));
        n := n + 1;
    END LOOP;
    IF n > 0 THEN
        RAISE NOTICE '% restored table(s) given to %, the owner of repositories; grants to other roles are not restored',
            n, pg_get_userbyid(owner_oid);
    END IF;
END
$$;
-- The foreign keys from kept tables that step 7 of the upgrade dropped
-- (production's task links into tasks). The nine tables come back empty:
-- a key whose rows all still find their target is restored as it was;
-- one with rows that reference nothing is restored NOT VALID, named with
-- that count, for the operator to reload the rows from the backup and
-- VALIDATE it (docs/deployment.md#deployment-checklist-migration-002).
DO $$
DECLARE
    k record;
    dangling bigint;
BEGIN
    IF current_setting('migration_harness.shape_002') <> 'production' THEN
        RETURN;
    END IF;
    FOR k IN SELECT * FROM (VALUES
            ('task_branch_links', 'fk_task_branch_links_task_id_tasks'),
            ('task_commit_links', 'fk_task_commit_links_task_id_tasks'),
            ('task_planning_references', 'fk_task_planning_references_task_id_tasks'),
            ('task_status_history', 'fk_task_status_history_task_id_tasks')) v(tab, con)
    LOOP
        -- A table, not a view of that name (reading a view would run its
        -- owner's code with the tool's rights).
        IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass('public.' || k.tab)
                          AND relkind IN ('r', 'p'))
           OR NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('public.' || k.tab)
                             AND attname = 'task_id' AND NOT attisdropped) THEN
            RAISE WARNING 'foreign key % not restored: public.% is no table with a task_id column', k.con, k.tab;
            CONTINUE;
        END IF;
        IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass('public.' || k.tab)
                      AND conname = k.con) THEN
            CONTINUE;
        END IF;
        -- ADD FOREIGN KEY takes this lock anyway; taken before the count,
        -- no row can arrive between the count and the constraint.
        EXECUTE format('LOCK TABLE public.%I IN SHARE ROW EXCLUSIVE MODE', k.tab);
        EXECUTE format('SELECT pg_catalog.count(*) FROM public.%I s WHERE s.task_id IS NOT NULL '
                       'AND NOT EXISTS (SELECT 1 FROM public.tasks t WHERE t.id = s.task_id)', k.tab)
          INTO dangling;
        EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I FOREIGN KEY (task_id) '
                       'REFERENCES public.tasks(id)%s', k.tab, k.con,
                       CASE WHEN dangling > 0 THEN ' NOT VALID' ELSE '' END);
        IF dangling > 0 THEN
            RAISE WARNING 'Foreign key % of % restored NOT VALID: % row(s) reference tasks that are gone. Reload tasks from the backup, then: ALTER TABLE % VALIDATE CONSTRAINT %;',
                k.con, k.tab, dangling, k.tab, k.con;
        ELSE
            RAISE NOTICE 'Foreign key % of % restored', k.con, k.tab;
        END IF;
    END LOOP;
END
$$;


--! step: Running validation
DO $$
DECLARE
    missing text;
BEGIN
    SELECT string_agg(t.name, ', ') INTO missing
      FROM unnest(ARRAY[{{NINE_TABLES}}]) AS t(name)
     WHERE to_regclass(t.name) IS NULL;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'rollback validation failed: tables not restored: %', missing
            USING ERRCODE = 'MHV01';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid IN ('repositories'::regclass, 'code_chunks'::regclass)
                  AND attname = 'project_id' AND NOT attisdropped) THEN
        RAISE EXCEPTION 'rollback validation failed: a project_id column remains'
            USING ERRCODE = 'MHV01';
    END IF;
    IF current_setting('migration_harness.shape_002') = 'production' THEN
        SELECT string_agg(v.tab || '.' || v.con, ', ') INTO missing
          FROM (VALUES ('task_branch_links', 'fk_task_branch_links_task_id_tasks'),
                       ('task_commit_links', 'fk_task_commit_links_task_id_tasks'),
                       ('task_planning_references', 'fk_task_planning_references_task_id_tasks'),
                       ('task_status_history', 'fk_task_status_history_task_id_tasks')) v(tab, con)
         WHERE EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass('public.' || v.tab)
                          AND relkind IN ('r', 'p'))
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                            WHERE k.conrelid = to_regclass('public.' || v.tab) AND k.conname = v.con);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'rollback validation failed: foreign keys not restored: %', missing
                USING ERRCODE = 'MHV01';
        END IF;
    END IF;
    RAISE NOTICE '9 tables restored; project_id columns removed';
END
$$;
-- Last, where an operator reading the log looks.
DO $$ BEGIN RAISE WARNING 'Data in dropped tables NOT restored. Restore from backup if needed.'; END $$;

-- ---------------------------------------------------------------------------
-- The quickstart's validation tests (migrations/README.md, "Checks"): run by
-- `check pre|post|rollback` and `verify`, read-only. Each query gives the
-- lines of its check: `passed` (true, false; NULL for an information) and
-- `detail`, the words the quickstart prints. Parts that depend on the
-- schema's shape or on a column that may not exist are run through
-- query_to_xml, so that the query itself always compiles.

--! gate pre, post, guard: core_tables
-- The schema 002 knows (docs/migrations.md#supported-schemas), by the rules of its
-- step 1: the core tables exist and are tables (a view would run its
-- owner's code when a check reads it), and a chunk reaches its repository
-- either through code_chunks.repository_id (the quickstart's shape) or
-- through code_chunks.code_file_id -> code_files.repository_id (the
-- production shape), with an id column on each table. After the upgrade,
-- no line when they hold: the quickstart's eight post checks. Also the
-- upgrade's first guard (exit 2), under step 1's locks.
WITH col AS (
    SELECT c.relname || '.' || a.attname AS name
      FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
     WHERE c.relnamespace = 'public'::regnamespace
       AND c.relname IN ('repositories', 'code_chunks', 'code_files')
       AND a.attname IN ('id', 'repository_id', 'code_file_id') AND a.attnum > 0 AND NOT a.attisdropped
), core AS (
    SELECT ARRAY(SELECT t FROM pg_catalog.unnest(ARRAY['repositories', 'code_chunks']) t
                  WHERE to_regclass('public.' || t) IS NULL) AS missing_tables,
           pg_catalog.array_to_string(ARRAY(
             SELECT format('public.%s is not a table (relkind %s)', c.relname, c.relkind)
               FROM pg_catalog.pg_class c
              WHERE c.relnamespace = 'public'::regnamespace
                AND c.relname IN ('repositories', 'code_files', 'code_chunks')
                AND c.relkind NOT IN ('r', 'p') ORDER BY 1), ', ') AS not_tables,
           EXISTS (SELECT 1 FROM col WHERE name = 'code_chunks.repository_id') AS direct,
           EXISTS (SELECT 1 FROM col WHERE name = 'code_chunks.code_file_id') AS via_file,
           to_regclass('public.code_files') IS NOT NULL AS files
), judged AS (
    SELECT *,
           ARRAY(SELECT m FROM pg_catalog.unnest(
                   ARRAY['repositories.id', 'code_chunks.id']
                   || CASE WHEN via_file AND NOT direct AND NOT files THEN ARRAY['table code_files']
                           WHEN via_file AND NOT direct THEN ARRAY['code_files.id', 'code_files.repository_id']
                           ELSE ARRAY[]::text[] END) m
                  WHERE m LIKE 'table %' OR m NOT IN (SELECT name FROM col)) AS missing
      FROM core
), verdict AS (
    SELECT *,
           CASE WHEN cardinality(missing_tables) > 0 AND pg_catalog.current_setting('migration_harness.check_when') = 'pre'
                  THEN 'missing {' || pg_catalog.array_to_string(missing_tables, ',') || '}'
                WHEN cardinality(missing_tables) > 0
                  THEN 'missing ' || pg_catalog.array_to_string(missing_tables, ', ')
                WHEN not_tables <> '' THEN not_tables
                WHEN direct AND via_file
                  THEN 'code_chunks has both repository_id and code_file_id, so 002 cannot tell which one '
                       'leads to a chunk''s repository'
                WHEN NOT direct AND NOT via_file THEN 'code_chunks has neither repository_id nor code_file_id'
                WHEN cardinality(missing) > 0 THEN 'missing: ' || pg_catalog.array_to_string(missing, ', ')
           END AS problem
      FROM judged
)
SELECT problem IS NULL AS passed,
       CASE WHEN problem IS NOT NULL THEN 'Core tables exist: ' || problem
            WHEN via_file THEN 'Core tables exist (repositories, code_files, code_chunks: the production shape)'
            ELSE 'Core tables exist (repositories, code_chunks)' END AS detail
  FROM verdict
 WHERE pg_catalog.current_setting('migration_harness.check_when') = 'pre' OR problem IS NOT NULL;

--! check pre, guard: no_blocking_foreign_keys
-- Also the upgrade's guard, at step 2.
WITH shape AS (
    -- The production shape: a chunk reaches its repository through
    -- code_files (the gate has made sure the rest of that shape is there).
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                    WHERE attrelid = to_regclass('public.code_chunks') AND attname = 'code_file_id'
                      AND attnum > 0 AND NOT attisdropped) AS production
),
fk AS (
    SELECT src.relname AS source, k.conname, dst.relname AS target,
           format('ALTER TABLE public.%I DROP CONSTRAINT %I;', src.relname, k.conname) AS fix
      FROM pg_catalog.pg_constraint k
      JOIN pg_catalog.pg_class src ON src.oid = k.conrelid
      JOIN pg_catalog.pg_class dst ON dst.oid = k.confrelid
     WHERE k.contype = 'f'
       AND src.relnamespace = 'public'::regnamespace
       AND dst.oid IN (to_regclass('public.repositories'), to_regclass('public.code_files'),
                       to_regclass('public.code_chunks'))
       AND src.relname = ANY (ARRAY[{{NINE_TABLES}}])
)
SELECT n = 0 AS passed,
       CASE WHEN n = 0 AND production
              THEN 'No foreign keys found from dropped tables to repositories/code_files/code_chunks'
            WHEN n = 0 THEN 'No foreign keys found from dropped tables to repositories/code_chunks'
            ELSE 'Foreign keys from dropped tables block 002: ' || what || ' (drop them first: ' || fixes || ')'
       END AS detail
  FROM shape,
       (SELECT count(*) AS n,
               string_agg(format('%s.%s -> %s', source, conname, target), ', ' ORDER BY source, conname) AS what,
               string_agg(fix, ' ' ORDER BY source, conname) AS fixes
          FROM fk) a;

--! check pre, guard: dependent_objects
-- Everything outside the nine tables that depends on them (also the
-- upgrade's guard, at step 2): what DROP TABLE would drop with them,
-- followed through automatic and internal dependencies, then every normal
-- dependency on one of those from an object that is not among them.
-- `restored` marks the production shape's four task links into tasks
-- (step 7 drops them by name, the rollback restores them); anything else
-- is refused, `remove` being the statement that removes it. Foreign keys
-- cloned onto partitions follow their parent. No line when there is none.
WITH RECURSIVE shape AS (
    -- The production shape: a chunk reaches its repository through
    -- code_files (the gate has made sure the rest of that shape is there).
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                    WHERE attrelid = to_regclass('public.code_chunks') AND attname = 'code_file_id'
                      AND attnum > 0 AND NOT attisdropped) AS production
),
dropped(classid, objid) AS (
    SELECT 'pg_catalog.pg_class'::regclass, c.oid
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
       AND c.relname = ANY (ARRAY[{{NINE_TABLES}}])
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
), found AS (
SELECT coalesce((SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::regclass, rw.ev_class, 0)
                   FROM pg_catalog.pg_rewrite rw
                  WHERE dep.classid = 'pg_catalog.pg_rewrite'::regclass AND rw.oid = dep.objid
                    AND rw.rulename = '_RETURN'),
                pg_catalog.pg_describe_object(dep.classid, dep.objid, dep.objsubid)) AS what,
       coalesce(k.contype = 'f' AND k.conparentid = 0 AND (SELECT production FROM shape)
                AND (k.conrelid, k.conname::text) IN (
                      SELECT to_regclass('public.' || v.tab), v.con
                        FROM (VALUES ('task_branch_links', 'fk_task_branch_links_task_id_tasks'),
                                     ('task_commit_links', 'fk_task_commit_links_task_id_tasks'),
                                     ('task_planning_references', 'fk_task_planning_references_task_id_tasks'),
                                     ('task_status_history', 'fk_task_status_history_task_id_tasks')) v(tab, con))
                -- NOT VALID after a rollback, until the rows are back.
                AND pg_catalog.regexp_replace(pg_catalog.pg_get_constraintdef(k.oid), ' NOT VALID$', '') =
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
           (SELECT format('ALTER TABLE %I.%I ALTER COLUMN %I DROP DEFAULT;', cn.nspname, c.relname, a.attname)
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
         ELSE format('remove or change %s', pg_catalog.pg_describe_object(dep.classid, dep.objid, dep.objsubid))
       END AS remove
  FROM dependent dep
  LEFT JOIN pg_catalog.pg_constraint k
         ON dep.classid = 'pg_catalog.pg_constraint'::regclass AND k.oid = dep.objid
), summary AS (
    SELECT count(*) FILTER (WHERE NOT restored) AS refused_count,
           count(*) FILTER (WHERE restored) AS restored_count,
           string_agg(what, ', ' ORDER BY what) FILTER (WHERE NOT restored) AS refused,
           string_agg(remove, ' ' ORDER BY what) FILTER (WHERE NOT restored) AS removes,
           CASE WHEN count(*) FILTER (WHERE restored) = 0 THEN ''
                ELSE format('%s foreign key(s) from kept tables that 002 drops by name and its rollback '
                            'restores (NOT VALID where their rows then reference nothing): %s',
                            count(*) FILTER (WHERE restored),
                            string_agg(link || '.' || conname, ', ' ORDER BY what) FILTER (WHERE restored))
           END AS keys
      FROM found WHERE NOT clone
)
SELECT refused_count = 0 AS passed,
       CASE WHEN refused_count = 0 THEN 'Objects that depend on the 9 tables: ' || keys
            ELSE format('Objects outside the 9 tables depend on them and block 002: %s; remove them first '
                        '(save their definitions if they are still wanted; the rollback cannot bring them '
                        'back): %s%s', refused, removes,
                        CASE WHEN keys = '' THEN '' ELSE '; also found ' || keys END)
       END AS detail
  FROM summary
 WHERE refused_count + restored_count > 0;

--! check pre: functions_naming_dropped_tables
-- pg_depend does not see into function bodies: a trigger on a kept table
-- whose function names one of the nine fails once they are gone. Said
-- only when there is one.
WITH nine(t) AS (SELECT pg_catalog.unnest(ARRAY[{{NINE_TABLES}}])),
hit AS (
    SELECT format('trigger %I on %I.%I runs %I.%I()', tg.tgname, n.nspname, c.relname,
                  pn.nspname, p.proname) AS what,
           pg_catalog.array_to_string(ARRAY(
             SELECT t FROM nine WHERE p.prosrc OPERATOR(pg_catalog.~*) ('\m' || t || '\M') ORDER BY 1), ', ') AS names
      FROM pg_catalog.pg_trigger tg
      JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid
      JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
     WHERE NOT tg.tgisinternal
       AND NOT (c.relnamespace = 'public'::regnamespace AND c.relname IN (SELECT t FROM nine))
       AND EXISTS (SELECT 1 FROM nine WHERE p.prosrc OPERATOR(pg_catalog.~*) ('\m' || t || '\M'))
)
SELECT NULL::boolean AS passed,
       'Trigger functions on kept tables that name a table 002 drops (their bodies are not in the '
       'catalog''s dependencies: read them, they fail once the tables are gone): '
       || string_agg(what || ' (names ' || names || ')', '; ' ORDER BY what) AS detail
  FROM hit
HAVING count(*) > 0;

--! check pre, post, guard: no_orphaned_chunks
-- A chunk whose repository (production: whose file, or whose file's
-- repository) does not exist would get no project_id. `check pre` and
-- `check post` scan code_chunks (read-only: nothing waits on them). As the
-- upgrade's guard it runs under ACCESS EXCLUSIVE, where a scan would stop
-- every reader: it is skipped where validated foreign keys on NOT NULL
-- columns along the whole path prove there is none.
WITH shape AS (
    -- The production shape: a chunk reaches its repository through
    -- code_files (the gate has made sure the rest of that shape is there).
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                    WHERE attrelid = to_regclass('public.code_chunks') AND attname = 'code_file_id'
                      AND attnum > 0 AND NOT attisdropped) AS production
), unproven AS (
    SELECT need.tab, need.col
      FROM shape,
           (VALUES ('code_chunks', 'repository_id', 'repositories', false),
                   ('code_chunks', 'code_file_id', 'code_files', true),
                   ('code_files', 'repository_id', 'repositories', true)) AS need(tab, col, ref, on_production)
     WHERE need.on_production = shape.production
       AND NOT EXISTS (
           SELECT 1
             FROM pg_catalog.pg_constraint k
             JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
             JOIN pg_catalog.pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = k.confkey[1]
            WHERE k.conrelid = to_regclass('public.' || need.tab)
              AND k.confrelid = to_regclass('public.' || need.ref)
              AND k.contype = 'f' AND k.convalidated
              AND pg_catalog.array_length(k.conkey, 1) = 1
              AND a.attname = need.col AND a.attnotnull AND ra.attname = 'id')
), orphans AS (
    SELECT production, orphaned,
           CASE WHEN pg_catalog.current_setting('migration_harness.guard', true) = 'on'
                     AND NOT EXISTS (SELECT 1 FROM unproven) THEN NULL
                ELSE query_to_xml('SELECT count(*) AS n, string_agg(id::text, '', '') FILTER (WHERE rn <= 5) AS sample '
                                  'FROM (SELECT c.id, row_number() OVER (ORDER BY c.id) AS rn FROM public.code_chunks c '
                                  'WHERE ' || orphaned || ') o', false, true, '') END AS x
      FROM (SELECT production,
                   CASE WHEN production
                        THEN 'NOT EXISTS (SELECT 1 FROM public.code_files f JOIN public.repositories r '
                             'ON r.id = f.repository_id WHERE f.id = c.code_file_id)'
                        ELSE 'NOT EXISTS (SELECT 1 FROM public.repositories r WHERE r.id = c.repository_id)'
                   END AS orphaned
              FROM shape) s
), counted AS (
    SELECT production, orphaned, x IS NULL AS proven, (xpath('/row/n/text()', x))[1]::text::bigint AS n,
           coalesce((xpath('/row/sample/text()', x))[1]::text, '') AS sample
      FROM orphans
)
SELECT proven OR n = 0 AS passed,
       CASE WHEN proven THEN 'No orphaned code_chunks (validated foreign keys along the path prove it; not scanned)'
            WHEN n = 0 THEN 'No orphaned code_chunks'
            ELSE format('No orphaned code_chunks: found %s chunk(s) whose %s does not exist (e.g. %s); '
                        'delete them or restore their %s: DELETE FROM public.code_chunks c WHERE %s;',
                        n, CASE WHEN production THEN 'code file, or whose file''s repository,' ELSE 'repository' END,
                        sample, CASE WHEN production THEN 'files and repositories' ELSE 'repositories' END,
                        orphaned)
       END AS detail
  FROM counted;

--! gate pre, guard: project_id_definitions
-- 002 keeps a project_id column, CHECK or index that exists before it runs
-- (built beforehand, or by hand) when it is what 002 would build, and
-- refuses anything else (exit 2): an invalid index, a CHECK of the
-- quickstart's weaker pattern. Catalog only; also the upgrade's guard.
-- Only listed when one of those objects exists.
WITH col AS (
    SELECT w.ord, w.tab, w.want, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
           coalesce(pg_get_expr(d.adbin, d.adrelid), '') AS default_expr
      FROM (VALUES (1, 'repositories', '''default''::character varying'), (2, 'code_chunks', '')) w(ord, tab, want)
      JOIN pg_catalog.pg_attribute a
        ON a.attrelid = to_regclass('public.' || w.tab) AND a.attname = 'project_id'
       AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
), con AS (
    SELECT w.ord, w.tab, w.name, pg_get_constraintdef(k.oid) AS def
      FROM (VALUES (3, 'repositories', 'check_repositories_project_id'),
                   (4, 'code_chunks', 'check_code_chunks_project_id')) w(ord, tab, name)
      JOIN pg_catalog.pg_constraint k ON k.conrelid = to_regclass('public.' || w.tab) AND k.conname = w.name
), idx AS (
    SELECT pg_get_indexdef(i.indexrelid) AS def, i.indisvalid AS valid,
           i.indrelid = to_regclass('public.repositories') AS on_repositories
      FROM pg_catalog.pg_index i
     WHERE i.indexrelid = to_regclass('public.idx_project_repository')
), found AS (
    SELECT ord, tab || '.project_id' AS name FROM col
    UNION ALL SELECT ord, name FROM con
    UNION ALL SELECT 5, 'idx_project_repository' FROM idx
), problem AS (
    SELECT ord * 10 + 1 AS ord,
           format('%s.project_id is %s, not %s', tab,
                  type || CASE WHEN not_null THEN ', NOT NULL' ELSE ', NULL' END
                       || CASE WHEN default_expr = '' THEN ', no default' ELSE ', DEFAULT ' || default_expr END,
                  CASE WHEN tab = 'repositories'
                       THEN 'character varying(50), NOT NULL, DEFAULT ''default''::character varying'
                       ELSE 'character varying(50), NOT NULL, no default' END) AS text
      FROM col WHERE NOT (type = 'character varying(50)' AND not_null AND default_expr = want)
    UNION ALL
    SELECT ord * 10,
           format('constraint %s on %s exists with another definition: %s; drop it: '
                  'ALTER TABLE public.%s DROP CONSTRAINT %s;', name, tab, def, tab, name)
      FROM con WHERE pg_catalog.regexp_replace(def, ' NOT VALID$', '') <> 'CHECK ((((project_id)::text ~ ''{{PROJECT_ID_PATTERN}}''::text) AND (char_length((project_id)::text) <= 50)))'
    UNION ALL
    SELECT 50, format('index idx_project_repository is %s%s; drop it: DROP INDEX CONCURRENTLY '
                      'public.idx_project_repository;', def, CASE WHEN valid THEN '' ELSE ' (INVALID)' END)
      FROM idx WHERE NOT valid OR NOT on_repositories OR NOT def LIKE '%USING btree (project_id, id)'
)
SELECT NOT EXISTS (SELECT 1 FROM problem) AS passed,
       CASE WHEN NOT EXISTS (SELECT 1 FROM problem)
            THEN 'Objects of 002 built beforehand are what 002 builds ('
                 || (SELECT string_agg(name, ', ' ORDER BY ord) FROM found) || ': kept)'
            ELSE 'Objects of 002 built beforehand are not what 002 builds: '
                 || (SELECT string_agg(text, '; ' ORDER BY ord) FROM problem)
       END AS detail
 WHERE EXISTS (SELECT 1 FROM found);

--! check pre, guard: project_id_values
-- The values of a project_id column built beforehand that 002's CHECK
-- rejects (project ids are lowercase letters, digits and single inner
-- hyphens, 1 to 50 characters), counted with a sample and the query that
-- lists them. Also the upgrade's guard, which skips the scan of a table
-- whose CHECK is validated already (it admits no such row). Only listed
-- when such a column exists.
WITH col AS (
    SELECT w.ord, w.tab
      FROM (VALUES (1, 'repositories', 'check_repositories_project_id'),
                   (2, 'code_chunks', 'check_code_chunks_project_id')) w(ord, tab, con)
      JOIN pg_catalog.pg_attribute a
        ON a.attrelid = to_regclass('public.' || w.tab) AND a.attname = 'project_id'
       AND a.attnum > 0 AND NOT a.attisdropped
     WHERE NOT (pg_catalog.current_setting('migration_harness.guard', true) = 'on'
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                             WHERE k.conrelid = a.attrelid AND k.conname = w.con AND k.convalidated))
), rejected AS (
    SELECT ord, tab, (xpath('/row/n/text()', x))[1]::text::bigint AS n,
           coalesce(convert_from(decode((xpath('/row/sample/text()', x))[1]::text, 'base64'), 'UTF8'), '') AS sample
      FROM (SELECT ord, tab,
                   -- The sample goes through XML as base64: a value is any text.
                   query_to_xml(format('SELECT count(*) AS n, (SELECT encode(convert_to(string_agg(quote_nullable(v), '', ''), ''UTF8''), ''base64'') '
                                       'FROM (SELECT DISTINCT project_id AS v FROM public.%1$I WHERE NOT (project_id OPERATOR(pg_catalog.~) ''{{PROJECT_ID_PATTERN}}'' AND pg_catalog.char_length(project_id) <= 50) '
                                       'ORDER BY 1 LIMIT 5) s) AS sample FROM public.%1$I WHERE NOT (project_id OPERATOR(pg_catalog.~) ''{{PROJECT_ID_PATTERN}}'' AND pg_catalog.char_length(project_id) <= 50)',
                                       tab), false, true, '') AS x
              FROM col) r
)
SELECT NOT EXISTS (SELECT 1 FROM rejected WHERE n > 0) AS passed,
       CASE WHEN NOT EXISTS (SELECT 1 FROM rejected WHERE n > 0)
            THEN 'project_id values built beforehand pass the CHECK ('
                 || (SELECT string_agg(tab, ', ' ORDER BY ord) FROM rejected) || ')'
            ELSE (SELECT string_agg(format('%s row(s) of %s have a project_id that the CHECK rejects (e.g. %s); '
                                           'correct them (lowercase letters, digits and single inner hyphens, '
                                           '1 to 50 characters); list them with: SELECT id, project_id FROM '
                                           'public.%s WHERE %s;', n, tab, sample, tab,
                                           'NOT (project_id OPERATOR(pg_catalog.~) ''{{PROJECT_ID_PATTERN}}'' AND '
                                           'pg_catalog.char_length(project_id) <= 50)'), '; ' ORDER BY ord)
                    FROM rejected WHERE n > 0)
       END AS detail
 WHERE EXISTS (SELECT 1 FROM col);

--! check pre: project_id_alignment
-- Chunks whose project_id (a column built beforehand on both tables)
-- differs from their repository's: 002 keeps them as they are, and
-- `check post` then fails its data integrity check. Only listed when
-- both columns exist.
WITH shape AS (
    -- The production shape: a chunk reaches its repository through
    -- code_files (the gate has made sure the rest of that shape is there).
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                    WHERE attrelid = to_regclass('public.code_chunks') AND attname = 'code_file_id'
                      AND attnum > 0 AND NOT attisdropped) AS production
), both_columns AS (
    SELECT count(*) = 2 AS present
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid IN (to_regclass('public.repositories'), to_regclass('public.code_chunks'))
       AND a.attname = 'project_id' AND a.attnum > 0 AND NOT a.attisdropped
), mismatched AS (
    SELECT production,
           (xpath('/row/n/text()', query_to_xml(
              'SELECT count(*) AS n FROM '
              || CASE WHEN production THEN 'public.code_chunks c JOIN public.code_files f ON f.id = c.code_file_id JOIN public.repositories r ON r.id = f.repository_id' ELSE 'public.code_chunks c JOIN public.repositories r ON r.id = c.repository_id' END
              || ' WHERE c.project_id IS DISTINCT FROM r.project_id', false, true, '')))[1]::text::bigint AS n
      FROM shape, both_columns WHERE both_columns.present
)
SELECT n = 0 AS passed,
       CASE WHEN n = 0 THEN 'code_chunks built beforehand have their repository''s project_id'
            ELSE format('%s code_chunks have a project_id other than their repository''s (check post would '
                        'fail); align them: %s', n,
                        CASE WHEN production
                             THEN 'UPDATE public.code_chunks c SET project_id = r.project_id FROM '
                                  'public.code_files f JOIN public.repositories r ON r.id = f.repository_id '
                                  'WHERE f.id = c.code_file_id AND c.project_id IS DISTINCT FROM r.project_id;'
                             ELSE 'UPDATE public.code_chunks c SET project_id = r.project_id FROM '
                                  'public.repositories r WHERE r.id = c.repository_id AND c.project_id IS '
                                  'DISTINCT FROM r.project_id;' END)
       END AS detail
  FROM mismatched;

--! check pre: rows_to_discard
SELECT NULL::boolean AS passed,
       format('Rows that 002 discards with the 9 tables: %s%s; only a backup keeps them',
              coalesce(sum(n), 0),
              coalesce(' (' || string_agg(t || ' ' || n, ', ' ORDER BY ord) FILTER (WHERE n > 0) || ')', '')) AS detail
  FROM (SELECT t, ord,
               (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM public.%I', t),
                                                    false, true, '')))[1]::text::bigint AS n
          FROM pg_catalog.unnest(ARRAY[{{NINE_TABLES}}]) WITH ORDINALITY u(t, ord)
         -- Tables only: counting a view's rows would run its owner's code.
         WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class k
                        WHERE k.oid = to_regclass('public.' || t) AND k.relkind IN ('r', 'p'))) c;

--! check pre: autovacuum
-- Step 1 locks repositories and code_chunks (and code_files) first thing;
-- an autovacuum worker on one of them holds a lock that conflicts, so
-- step 1 waits until deadlock_timeout, when PostgreSQL cancels the worker
-- (one that prevents wraparound is never cancelled: step 1 then waits for
-- it to finish, or for --lock-timeout). Said only when it is so. The table
-- is read from the progress views, or, where they hide it from a role
-- without pg_read_all_stats, from the worker's locks (pg_locks shows every
-- session's). Databases cloned from one template share table OIDs: only
-- this database's locks count.
WITH shape AS (
    -- The production shape: a chunk reaches its repository through
    -- code_files (the gate has made sure the rest of that shape is there).
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                    WHERE attrelid = to_regclass('public.code_chunks') AND attname = 'code_file_id'
                      AND attnum > 0 AND NOT attisdropped) AS production
),
worker AS (
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
)
SELECT NULL::boolean AS passed,
       'Autovacuum is at work on a table 002 locks: '
       || string_agg(format('%s %s (pid %s, phase %s)', doing, relname, pid,
                            coalesce(phase, 'not visible to this role')), '; ' ORDER BY relname, pid)
       || '. Step 1 will wait for it '
       || CASE WHEN bool_or(wraparound)
               THEN 'to finish (a vacuum to prevent wraparound is never cancelled), or until --lock-timeout'
               ELSE format('until deadlock_timeout (%s), after which PostgreSQL cancels it',
                           pg_catalog.current_setting('deadlock_timeout')) END
       || '; run `'
       || CASE WHEN (SELECT production FROM shape) THEN 'VACUUM ANALYZE repositories, code_files, code_chunks;'
               ELSE 'VACUUM ANALYZE repositories, code_chunks;' END
       || '` before the window' AS detail
  FROM worker
HAVING count(*) > 0;

--! check post: repositories_project_id
SELECT coalesce(ok, false) AS passed,
       'project_id column exists in repositories (VARCHAR(50), NOT NULL, DEFAULT ''default'')'
       || CASE WHEN ok THEN '' ELSE ': ' || coalesce('found ' || found, 'no such column') END AS detail
  FROM (SELECT NULL) one
  LEFT JOIN LATERAL (
    SELECT type = 'character varying(50)' AND not_null AND default_expr = '''default''::character varying' AS ok,
           type || CASE WHEN not_null THEN ', NOT NULL' ELSE ', NULL' END
                || CASE WHEN default_expr = '' THEN ', no default' ELSE ', DEFAULT ' || default_expr END AS found
      FROM (SELECT format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
                   coalesce(pg_get_expr(d.adbin, d.adrelid), '') AS default_expr
              FROM pg_catalog.pg_attribute a
              LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = to_regclass('public.repositories') AND a.attname = 'project_id'
               AND a.attnum > 0 AND NOT a.attisdropped) c) x ON true;

--! check post: code_chunks_project_id
SELECT coalesce(ok, false) AS passed,
       'project_id column exists in code_chunks (VARCHAR(50), NOT NULL)'
       || CASE WHEN ok THEN '' ELSE ': ' || coalesce('found ' || found, 'no such column') END AS detail
  FROM (SELECT NULL) one
  LEFT JOIN LATERAL (
    SELECT type = 'character varying(50)' AND not_null AND default_expr = '' AS ok,
           type || CASE WHEN not_null THEN ', NOT NULL' ELSE ', NULL' END
                || CASE WHEN default_expr = '' THEN ', no default' ELSE ', DEFAULT ' || default_expr END AS found
      FROM (SELECT format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
                   coalesce(pg_get_expr(d.adbin, d.adrelid), '') AS default_expr
              FROM pg_catalog.pg_attribute a
              LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = to_regclass('public.code_chunks') AND a.attname = 'project_id'
               AND a.attnum > 0 AND NOT a.attisdropped) c) x ON true;

--! check post: check_constraints
WITH k AS (
    SELECT w.ord, w.name, c.oid IS NOT NULL AS found, pg_get_constraintdef(c.oid) AS def,
           c.convalidated AS validated
      FROM (VALUES (1, 'repositories', 'check_repositories_project_id'),
                   (2, 'code_chunks', 'check_code_chunks_project_id')) w(ord, tab, name)
      LEFT JOIN pg_catalog.pg_constraint c ON c.conrelid = to_regclass('public.' || w.tab) AND c.conname = w.name
), judged AS (
    SELECT ord, found,
           CASE WHEN NOT found THEN name || ' missing'
                WHEN pg_catalog.regexp_replace(def, ' NOT VALID$', '') <> 'CHECK ((((project_id)::text ~ ''{{PROJECT_ID_PATTERN}}''::text) AND (char_length((project_id)::text) <= 50)))' THEN name || ' is ' || def
                WHEN NOT validated THEN name || ' not validated' END AS problem
      FROM k
)
SELECT count(*) FILTER (WHERE problem IS NULL) = 2 AS passed,
       CASE WHEN count(*) FILTER (WHERE problem IS NULL) = 2
            THEN 'CHECK constraints exist and are validated (2 found)'
            ELSE format('CHECK constraints exist and are validated: %s found (%s)', count(*) FILTER (WHERE found),
                        string_agg(problem, '; ' ORDER BY ord)) END AS detail
  FROM judged;

--! check post: performance_index
SELECT coalesce(ok, false) AS passed,
       'Performance index exists (idx_project_repository)'
       || CASE WHEN ok THEN ''
               ELSE ': ' || coalesce('found ' || def || CASE WHEN valid THEN '' ELSE ' (INVALID)' END, 'not found')
          END AS detail
  FROM (SELECT NULL) one
  LEFT JOIN LATERAL (
    SELECT pg_get_indexdef(i.indexrelid) AS def, i.indisvalid AS valid,
           i.indisvalid AND pg_catalog.strpos(pg_get_indexdef(i.indexrelid), '(project_id, id)') > 0 AS ok
      FROM pg_catalog.pg_index i
     WHERE i.indexrelid = to_regclass('public.idx_project_repository')
       AND i.indrelid = to_regclass('public.repositories')) x ON true;

--! check post: unused_tables_dropped
SELECT count(*) = 0 AS passed,
       CASE WHEN count(*) = 0 THEN 'Unused tables dropped (0 of 9 tables found)'
            ELSE format('Unused tables dropped: %s of 9 tables still exist ({%s})', count(*),
                        string_agg(t, ',' ORDER BY ord)) END AS detail
  FROM pg_catalog.unnest(ARRAY[{{NINE_TABLES}}]) WITH ORDINALITY u(t, ord)
 WHERE to_regclass('public.' || t) IS NOT NULL;

--! check post: data_integrity
WITH shape AS (
    -- The production shape: a chunk reaches its repository through
    -- code_files (the gate has made sure the rest of that shape is there).
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                    WHERE attrelid = to_regclass('public.code_chunks') AND attname = 'code_file_id'
                      AND attnum > 0 AND NOT attisdropped) AS production
),
cols AS (
    SELECT count(*) = 2 AS both_present FROM pg_catalog.pg_attribute
     WHERE attrelid IN (to_regclass('public.repositories'), to_regclass('public.code_chunks'))
       AND attname = 'project_id' AND attnum > 0 AND NOT attisdropped
), m AS (
    SELECT both_present,
           CASE WHEN both_present THEN (xpath('/row/n/text()', query_to_xml(
                  'SELECT count(*) AS n FROM '
                  || CASE WHEN production THEN 'public.code_chunks c JOIN public.code_files f ON f.id = c.code_file_id JOIN public.repositories r ON r.id = f.repository_id' ELSE 'public.code_chunks c JOIN public.repositories r ON r.id = c.repository_id' END
                  || ' WHERE c.project_id IS DISTINCT FROM r.project_id', false, true, '')))[1]::text::bigint
           END AS n
      FROM shape, cols
)
SELECT coalesce(n = 0, false) AS passed,
       CASE WHEN NOT both_present THEN 'Data integrity check: cannot run without both project_id columns'
            WHEN n = 0 THEN 'Data integrity check (all code_chunks have matching repository project_id)'
            ELSE format('Data integrity check: %s code_chunks differ from their repository''s project_id', n)
       END AS detail
  FROM m;

--! check post: pattern_validation
WITH cols AS (
    SELECT count(*) = 2 AS both_present FROM pg_catalog.pg_attribute
     WHERE attrelid IN (to_regclass('public.repositories'), to_regclass('public.code_chunks'))
       AND attname = 'project_id' AND attnum > 0 AND NOT attisdropped
), m AS (
    SELECT both_present, (xpath('/row/r/text()', x))[1]::text::bigint AS r,
           (xpath('/row/c/text()', x))[1]::text::bigint AS c
      FROM (SELECT both_present,
                   CASE WHEN both_present THEN query_to_xml(
                     'SELECT (SELECT count(*) FROM public.repositories WHERE NOT (project_id OPERATOR(pg_catalog.~) ''{{PROJECT_ID_PATTERN}}'' AND pg_catalog.char_length(project_id) <= 50)) AS r, '
                     '(SELECT count(*) FROM public.code_chunks WHERE NOT (project_id OPERATOR(pg_catalog.~) ''{{PROJECT_ID_PATTERN}}'' AND pg_catalog.char_length(project_id) <= 50)) AS c', false, true, '') END AS x
              FROM cols) q
)
SELECT coalesce(r + c = 0, false) AS passed,
       CASE WHEN NOT both_present THEN 'Pattern validation: cannot run without both project_id columns'
            WHEN r + c = 0 THEN 'Pattern validation (all project_id values match {{PROJECT_ID_PATTERN}}, 1-50 characters)'
            ELSE format('Pattern validation: %s repositories and %s code_chunks have a project_id outside %s',
                        r, c, '{{PROJECT_ID_PATTERN}}') END AS detail
  FROM m;

--! check rollback: columns_removed
SELECT n = 0 AS passed,
       CASE WHEN n = 0 THEN 'project_id columns removed (0 columns found)'
            ELSE format('project_id columns removed: %s still present', n) END AS detail
  FROM (SELECT count(*) AS n FROM pg_catalog.pg_attribute
         WHERE attrelid IN (to_regclass('public.repositories'), to_regclass('public.code_chunks'))
           AND attname = 'project_id' AND attnum > 0 AND NOT attisdropped) c;

--! check rollback: constraints_removed
SELECT n = 0 AS passed,
       CASE WHEN n = 0 THEN 'CHECK constraints removed (0 constraints found)'
            ELSE format('CHECK constraints removed: %s still present', n) END AS detail
  FROM (SELECT count(*) AS n FROM pg_catalog.pg_constraint
         WHERE (conrelid = to_regclass('public.repositories') AND conname = 'check_repositories_project_id')
            OR (conrelid = to_regclass('public.code_chunks') AND conname = 'check_code_chunks_project_id')) c;

--! check rollback: index_removed
SELECT n = 0 AS passed,
       CASE WHEN n = 0 THEN 'Performance index removed (idx_project_repository not found)'
            ELSE 'Performance index removed: idx_project_repository still exists' END AS detail
  FROM (SELECT count(*) AS n FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
         WHERE i.indrelid = to_regclass('public.repositories') AND c.relname = 'idx_project_repository') c;

--! check rollback: tables_restored
SELECT count(*) = 9 AS passed,
       CASE WHEN count(*) = 9 THEN 'Dropped tables restored (9 tables found)'
            ELSE format('Dropped tables restored: %s of 9 found', count(*)) END AS detail
  FROM pg_catalog.unnest(ARRAY[{{NINE_TABLES}}]) t
 WHERE to_regclass('public.' || t) IS NOT NULL;

--! check rollback: foreign_keys_restored
-- The production shape's foreign keys into tasks: each must be back, NOT
-- VALID where their rows reference tasks that came back empty. No line on
-- the quickstart's shape, which has none of those tables.
WITH k AS (
    SELECT w.ord, w.tab, w.name, c.oid IS NOT NULL AS present, coalesce(c.convalidated, false) AS validated
      FROM (VALUES (1, 'task_branch_links', 'fk_task_branch_links_task_id_tasks'),
                   (2, 'task_commit_links', 'fk_task_commit_links_task_id_tasks'),
                   (3, 'task_planning_references', 'fk_task_planning_references_task_id_tasks'),
                   (4, 'task_status_history', 'fk_task_status_history_task_id_tasks')) w(ord, tab, name)
      LEFT JOIN pg_catalog.pg_constraint c ON c.conrelid = to_regclass('public.' || w.tab) AND c.conname = w.name
     WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class k
                    WHERE k.oid = to_regclass('public.' || w.tab) AND k.relkind IN ('r', 'p'))
)
SELECT count(*) FILTER (WHERE NOT present) = 0 AS passed,
       CASE WHEN count(*) FILTER (WHERE NOT present) = 0
            THEN format('Foreign keys into tasks that 002 dropped are restored (%s of %s%s)',
                        count(*) FILTER (WHERE present), count(*),
                        CASE WHEN count(*) FILTER (WHERE present AND NOT validated) = 0 THEN ', all validated'
                             ELSE format(', %s NOT VALID: the 9 tables come back empty',
                                         count(*) FILTER (WHERE present AND NOT validated)) END)
            ELSE format('Foreign keys into tasks that 002 dropped are restored: %s missing (%s)',
                        count(*) FILTER (WHERE NOT present),
                        string_agg(tab || '.' || name, ', ' ORDER BY ord) FILTER (WHERE NOT present)) END AS detail
  FROM k
HAVING count(*) > 0;

--! check rollback: not_valid
-- One information per foreign key restored NOT VALID, with the way to finish.
SELECT NULL::boolean AS passed, name AS key,
       format('Restored NOT VALID: %s.%s (%s row(s) reference tasks that are gone; `migration-harness '
              'restore-dropped` reloads tasks from the backup and validates it; by hand: ALTER TABLE %s '
              'VALIDATE CONSTRAINT %s;)', tab, name,
              -- Read only where tasks is a table (a view would run its owner's code).
              CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_class k
                                 WHERE k.oid = to_regclass('public.tasks') AND k.relkind IN ('r', 'p'))
                   THEN (xpath('/row/n/text()', query_to_xml(format(
                          'SELECT count(*) AS n FROM public.%I s WHERE s.task_id IS NOT NULL AND NOT EXISTS '
                          '(SELECT 1 FROM public.tasks t WHERE t.id = s.task_id)', tab), false, true, '')))[1]::text
                   ELSE 'an unknown number of (tasks is not a table)' END,
              tab, name) AS detail
  FROM (VALUES (1, 'task_branch_links', 'fk_task_branch_links_task_id_tasks'),
               (2, 'task_commit_links', 'fk_task_commit_links_task_id_tasks'),
               (3, 'task_planning_references', 'fk_task_planning_references_task_id_tasks'),
               (4, 'task_status_history', 'fk_task_status_history_task_id_tasks')) w(ord, tab, name)
  JOIN pg_catalog.pg_constraint c ON c.conrelid = to_regclass('public.' || w.tab) AND c.conname = w.name
 WHERE NOT c.convalidated
 ORDER BY ord;
