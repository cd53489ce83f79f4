--! revision: 002
--! down_revision: 005
--! message: Remove non-search tables and add project_id columns

-- Every statement is idempotent: after `stamp 005` on a migrated database,
-- the upgrade runs again, succeeds and changes nothing (FR-016).

--! upgrade
--! step: Checking prerequisites
-- Step 9 reports the time of steps 1 to 8 from this mark.
SELECT set_config('migration_harness.started_002', clock_timestamp()::text, true);
DO $$
DECLARE
    version_num integer := current_setting('server_version_num')::integer;
BEGIN
    IF version_num < 140000 THEN
        RAISE EXCEPTION 'PostgreSQL 14 or later is required; this server runs %',
            current_setting('server_version')
            USING ERRCODE = 'MHP01', HINT = 'upgrade the server before migrating';
    END IF;
    IF to_regclass('repositories') IS NULL THEN
        RAISE EXCEPTION 'core table repositories does not exist'
            USING ERRCODE = 'MHP02', HINT = 'is this the codebase-search database at revision 005?';
    END IF;
    IF to_regclass('code_chunks') IS NULL THEN
        RAISE EXCEPTION 'core table code_chunks does not exist'
            USING ERRCODE = 'MHP02', HINT = 'is this the codebase-search database at revision 005?';
    END IF;
END
$$;
-- Both locks up front, in a fixed order: no lock upgrade half way through,
-- and lock_timeout applies here, before anything has changed.
LOCK TABLE repositories, code_chunks IN ACCESS EXCLUSIVE MODE;

--! step: Verifying foreign key constraints
DO $$
DECLARE
    found text;
    fix text;
BEGIN
    SELECT string_agg(format('%s.%s -> %s', src.relname, k.conname, dst.relname), ', '
                      ORDER BY src.relname, k.conname),
           string_agg(format('ALTER TABLE %I DROP CONSTRAINT %I;', src.relname, k.conname), ' '
                      ORDER BY src.relname, k.conname)
      INTO found, fix
      FROM pg_constraint k
      JOIN pg_class src ON src.oid = k.conrelid
      JOIN pg_class dst ON dst.oid = k.confrelid
     WHERE k.contype = 'f'
       AND dst.oid IN ('repositories'::regclass, 'code_chunks'::regclass)
       AND src.relnamespace = 'public'::regnamespace
       AND src.relname IN ('tasks', 'vendor_extractors', 'deployment_events',
                           'project_configuration', 'future_enhancements',
                           'work_item_dependencies', 'vendor_deployment_links',
                           'work_item_deployment_links', 'archived_work_items');
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'foreign keys from tables that 002 drops reference repositories/code_chunks: %', found
            USING ERRCODE = 'MHR01', HINT = 'drop them first: ' || fix;
    END IF;
    RAISE NOTICE 'No blocking foreign keys found';
END
$$;

--! step: Adding project_id to repositories table
-- A constant default on a new NOT NULL column is stored in the catalog:
-- no table rewrite (PostgreSQL 11+).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = 'repositories'::regclass AND attname = 'project_id'
                  AND NOT attisdropped) THEN
        RAISE NOTICE 'repositories.project_id already present';
    ELSE
        ALTER TABLE repositories ADD COLUMN project_id varchar(50) NOT NULL DEFAULT 'default';
        RAISE NOTICE 'Column added with default ''default''';
    END IF;
END
$$;

--! step: Adding project_id to code_chunks table
DO $$
DECLARE
    orphans bigint;
    sample text;
    distinct_ids bigint;
    only_id text;
BEGIN
    -- A validated foreign key already guarantees every chunk has its
    -- repository; only without one is the scan needed.
    IF NOT EXISTS (
        SELECT 1
          FROM pg_constraint k
          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
         WHERE k.conrelid = 'code_chunks'::regclass
           AND k.confrelid = 'repositories'::regclass
           AND k.contype = 'f' AND k.convalidated
           AND array_length(k.conkey, 1) = 1 AND a.attname = 'repository_id')
    THEN
        SELECT count(*), string_agg(id::text, ', ') FILTER (WHERE rn <= 5)
          INTO orphans, sample
          FROM (SELECT c.id, row_number() OVER (ORDER BY c.id) AS rn
                  FROM code_chunks c
                 WHERE NOT EXISTS (SELECT 1 FROM repositories r WHERE r.id = c.repository_id)) o;
        IF orphans > 0 THEN
            RAISE EXCEPTION '% orphaned code_chunks have no repository (e.g. %)', orphans, sample
                USING ERRCODE = 'MHR02',
                      HINT = 'delete them, or restore their repositories: DELETE FROM code_chunks c '
                             'WHERE NOT EXISTS (SELECT 1 FROM repositories r WHERE r.id = c.repository_id);';
        END IF;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = 'code_chunks'::regclass AND attname = 'project_id'
                  AND NOT attisdropped) THEN
        RAISE NOTICE 'code_chunks.project_id already present';
        RETURN;
    END IF;

    SELECT pg_catalog.count(DISTINCT project_id), pg_catalog.min(project_id) INTO distinct_ids, only_id FROM repositories;
    IF distinct_ids <= 1
       AND coalesce(current_setting('migration_harness.force_update_path', true), '') <> 'on' THEN
        -- Every chunk gets the same value: a constant default is
        -- metadata-only, then the default is dropped again.
        EXECUTE format('ALTER TABLE code_chunks ADD COLUMN project_id varchar(50) NOT NULL DEFAULT %L',
                       coalesce(only_id, 'default'));
        ALTER TABLE code_chunks ALTER COLUMN project_id DROP DEFAULT;
        RAISE NOTICE 'Column added, populated from parent repositories (fast path: constant default %, no table rewrite)',
            quote_literal(coalesce(only_id, 'default'));
    ELSE
        ALTER TABLE code_chunks ADD COLUMN project_id varchar(50);
        UPDATE code_chunks c SET project_id = r.project_id
          FROM repositories r WHERE r.id = c.repository_id;
        ALTER TABLE code_chunks ALTER COLUMN project_id SET NOT NULL;
        RAISE NOTICE 'Column added, populated from parent repositories by UPDATE (% distinct project ids)',
            distinct_ids;
    END IF;
END
$$;

--! step: Adding validation constraints
-- NOT VALID here, validated in step 8: lowercase letters, digits and single
-- inner hyphens, 1 to 50 characters. A constraint of the same name that
-- says anything else (the quickstart's weaker pattern, say) is refused,
-- not kept.
DO $$
DECLARE
    expected constant text := 'CHECK ((((project_id)::text ~ ''^[a-z0-9]+(-[a-z0-9]+)*$''::text) '
                              'AND (char_length((project_id)::text) <= 50)))';
    t record;
    found text;
    added integer := 0;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('repositories', 'check_repositories_project_id'),
                                   ('code_chunks', 'check_code_chunks_project_id')) v(tab, con)
    LOOP
        SELECT pg_get_constraintdef(k.oid) INTO found FROM pg_constraint k
         WHERE k.conrelid = t.tab::regclass AND k.conname = t.con;
        IF found IS NULL THEN
            -- Qualified: the constraint binds pg_catalog's operator and
            -- function whatever else a search path might offer.
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (project_id OPERATOR(pg_catalog.~) %L '
                           'AND pg_catalog.char_length(project_id) <= 50) NOT VALID',
                           t.tab, t.con, '^[a-z0-9]+(-[a-z0-9]+)*$');
            added := added + 1;
        ELSIF regexp_replace(found, ' NOT VALID$', '') <> expected THEN
            RAISE EXCEPTION 'constraint % on % exists with another definition: %', t.con, t.tab, found
                USING ERRCODE = 'MHP03',
                      HINT = format('drop it (ALTER TABLE %I DROP CONSTRAINT %I;) and run again',
                                    t.tab, t.con);
        ELSE
            RAISE NOTICE 'Constraint % already exists: kept', t.con;
        END IF;
    END LOOP;
    RAISE NOTICE '% CHECK constraint(s) added', added;
END
$$;

--! step: Creating performance index
DO $$
DECLARE
    existing oid := to_regclass('idx_project_repository');
BEGIN
    IF existing IS NULL THEN
        CREATE INDEX idx_project_repository ON repositories (project_id, id);
        RAISE NOTICE 'Index idx_project_repository created';
    ELSIF EXISTS (SELECT 1 FROM pg_index x
                   WHERE x.indexrelid = existing AND x.indisvalid
                     AND x.indrelid = 'repositories'::regclass
                     AND pg_get_indexdef(x.indexrelid) LIKE '%USING btree (project_id, id)') THEN
        RAISE NOTICE 'Index idx_project_repository already exists: kept (built beforehand, or a re-run)';
    ELSE
        RAISE EXCEPTION 'an index named idx_project_repository exists but is invalid or not on repositories (project_id, id): %',
            pg_get_indexdef(existing)
            USING ERRCODE = 'MHP03',
                  HINT = 'drop it (DROP INDEX CONCURRENTLY idx_project_repository) and run again';
    END IF;
END
$$;

--! step: Dropping unused tables
DO $$
DECLARE
    present text;
    n integer;
BEGIN
    SELECT string_agg(quote_ident(t.name), ', ' ORDER BY t.ord), count(*)
      INTO present, n
      FROM unnest(ARRAY['work_item_deployment_links', 'vendor_deployment_links',
                        'work_item_dependencies', 'archived_work_items', 'future_enhancements',
                        'project_configuration', 'deployment_events', 'vendor_extractors',
                        'tasks']) WITH ORDINALITY AS t(name, ord)
     WHERE to_regclass(t.name) IS NOT NULL;
    -- One statement, so the tables' references to each other need no
    -- CASCADE; any other dependent object (a view, say) stops the
    -- migration with the server naming it. Only the tables still there: a
    -- re-run has nothing to drop and says so once.
    IF n > 0 THEN
        EXECUTE 'DROP TABLE ' || present;
    END IF;
    RAISE NOTICE '% tables dropped', n;
END
$$;

--! step: Running validation checks
-- Values that break the CHECK can only come from a project_id column that
-- existed before 002 (built beforehand, or by hand): refused with their
-- count, a sample and the query that lists them, not a bare 23514.
DO $$
DECLARE
    t record;
    bad bigint;
    sample text;
    list text;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('repositories', 'check_repositories_project_id'),
                                   ('code_chunks', 'check_code_chunks_project_id')) v(tab, con)
    LOOP
        BEGIN
            EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', t.tab, t.con);
        EXCEPTION WHEN check_violation THEN
            list := format('SELECT id, project_id FROM %I WHERE NOT (project_id OPERATOR(pg_catalog.~) %L '
                           'AND pg_catalog.char_length(project_id) <= 50);',
                           t.tab, '^[a-z0-9]+(-[a-z0-9]+)*$');
            EXECUTE format('SELECT pg_catalog.count(*) FROM %I WHERE NOT (project_id OPERATOR(pg_catalog.~) %L '
                           'AND pg_catalog.char_length(project_id) <= 50)', t.tab, '^[a-z0-9]+(-[a-z0-9]+)*$')
              INTO bad;
            EXECUTE format('SELECT pg_catalog.string_agg(pg_catalog.quote_nullable(v), '', '') FROM ('
                           'SELECT DISTINCT project_id AS v FROM %I WHERE NOT (project_id OPERATOR(pg_catalog.~) %L '
                           'AND pg_catalog.char_length(project_id) <= 50) ORDER BY 1 LIMIT 5) s',
                           t.tab, '^[a-z0-9]+(-[a-z0-9]+)*$')
              INTO sample;
            RAISE EXCEPTION '% row(s) of % have a project_id that % rejects (e.g. %)',
                bad, t.tab, t.con, sample
                USING ERRCODE = 'MHR03',
                      HINT = 'project ids are lowercase letters, digits and single inner hyphens, '
                             '1 to 50 characters; correct them, then upgrade again. List them with: ' || list;
        END;
    END LOOP;
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
    IF EXISTS (SELECT 1 FROM unnest(ARRAY['tasks', 'vendor_extractors', 'deployment_events',
                        'project_configuration', 'future_enhancements',
                        'work_item_dependencies', 'vendor_deployment_links',
                        'work_item_deployment_links', 'archived_work_items']) AS t(name)
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
    RAISE NOTICE 'Migration 002 steps 1-8 took % s on the server',
        round(extract(epoch FROM clock_timestamp()
              - current_setting('migration_harness.started_002')::timestamptz)::numeric, 3);
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
ALTER TABLE code_chunks DROP COLUMN IF EXISTS project_id;

--! step: Dropping project_id from repositories
ALTER TABLE repositories DROP COLUMN IF EXISTS project_id;

--! step: Restoring dropped tables (schema only)
-- Exactly as at 005: 001 + 003 + 003a + 003b + 005, column order included.
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

DO $$ BEGIN RAISE WARNING 'Data in dropped tables NOT restored. Restore from backup if needed.'; END $$;

--! step: Running validation
DO $$
DECLARE
    missing text;
BEGIN
    SELECT string_agg(t.name, ', ') INTO missing
      FROM unnest(ARRAY['tasks', 'vendor_extractors', 'deployment_events',
                        'project_configuration', 'future_enhancements',
                        'work_item_dependencies', 'vendor_deployment_links',
                        'work_item_deployment_links', 'archived_work_items']) AS t(name)
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
    RAISE NOTICE '9 tables restored; project_id columns removed';
END
$$;
