--! revision: 003
--! down_revision: 001
--! message: Project tracking

--! upgrade
--! step: Extend tasks into work items
ALTER TABLE tasks
    ADD COLUMN version integer NOT NULL DEFAULT 1,
    ADD COLUMN item_type varchar(20) NOT NULL DEFAULT 'task',
    ADD COLUMN parent_id uuid,
    ADD COLUMN path varchar(500) NOT NULL DEFAULT '/',
    ADD COLUMN depth integer NOT NULL DEFAULT 0,
    ADD COLUMN deleted_at timestamptz,
    ADD CONSTRAINT tasks_item_type_check CHECK (item_type IN ('project', 'session', 'task', 'research')),
    ADD CONSTRAINT tasks_depth_check CHECK (depth >= 0 AND depth <= 5),
    ADD CONSTRAINT tasks_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES tasks (id) ON DELETE SET NULL;
CREATE INDEX idx_tasks_parent_id ON tasks (parent_id);
CREATE INDEX idx_tasks_path ON tasks (path);
CREATE INDEX idx_tasks_item_type ON tasks (item_type);
CREATE INDEX idx_tasks_active ON tasks (deleted_at) WHERE deleted_at IS NULL;

--! step: Create vendor_extractors
CREATE TABLE public.vendor_extractors (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    version integer NOT NULL DEFAULT 1,
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
CREATE UNIQUE INDEX idx_vendor_name ON vendor_extractors (name);
CREATE INDEX idx_vendor_status ON vendor_extractors (status);

--! step: Create deployment_events
CREATE TABLE public.deployment_events (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    deployed_at timestamptz NOT NULL,
    commit_hash varchar(40) NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by varchar(100) NOT NULL DEFAULT 'system',
    CONSTRAINT deployment_events_pkey PRIMARY KEY (id),
    CONSTRAINT deployment_events_commit_hash_check CHECK (commit_hash OPERATOR(pg_catalog.~) '^[a-f0-9]{40}$')
);
CREATE INDEX idx_deployment_deployed_at ON deployment_events (deployed_at DESC);
CREATE INDEX idx_deployment_commit_hash ON deployment_events (commit_hash);

--! step: Create project_configuration
CREATE TABLE public.project_configuration (
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

--! step: Create future_enhancements
CREATE TABLE public.future_enhancements (
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
CREATE INDEX idx_enhancement_priority ON future_enhancements (priority);
CREATE INDEX idx_enhancement_status ON future_enhancements (status);

--! step: Create work_item_dependencies
CREATE TABLE public.work_item_dependencies (
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
CREATE INDEX idx_dependency_source ON work_item_dependencies (source_id);
CREATE INDEX idx_dependency_target ON work_item_dependencies (target_id);

--! step: Create the deployment link tables
CREATE TABLE public.vendor_deployment_links (
    deployment_id uuid NOT NULL,
    vendor_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vendor_deployment_links_pkey PRIMARY KEY (deployment_id, vendor_id),
    CONSTRAINT vendor_deployment_links_deployment_id_fkey FOREIGN KEY (deployment_id)
        REFERENCES deployment_events (id) ON DELETE CASCADE,
    CONSTRAINT vendor_deployment_links_vendor_id_fkey FOREIGN KEY (vendor_id)
        REFERENCES vendor_extractors (id) ON DELETE CASCADE
);
CREATE INDEX idx_vendor_deployment_deployment ON vendor_deployment_links (deployment_id);
CREATE INDEX idx_vendor_deployment_vendor ON vendor_deployment_links (vendor_id);
CREATE TABLE public.work_item_deployment_links (
    deployment_id uuid NOT NULL,
    work_item_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT work_item_deployment_links_pkey PRIMARY KEY (deployment_id, work_item_id),
    CONSTRAINT work_item_deployment_links_deployment_id_fkey FOREIGN KEY (deployment_id)
        REFERENCES deployment_events (id) ON DELETE CASCADE,
    CONSTRAINT work_item_deployment_links_work_item_id_fkey FOREIGN KEY (work_item_id)
        REFERENCES tasks (id) ON DELETE CASCADE
);
CREATE INDEX idx_work_item_deployment_deployment ON work_item_deployment_links (deployment_id);
CREATE INDEX idx_work_item_deployment_work_item ON work_item_deployment_links (work_item_id);

--! step: Create archived_work_items
CREATE TABLE public.archived_work_items (
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
CREATE INDEX idx_archived_created_at ON archived_work_items (created_at);
CREATE INDEX idx_archived_item_type ON archived_work_items (item_type);

--! downgrade
--! step: Drop the tracking tables
DROP TABLE archived_work_items, work_item_deployment_links, vendor_deployment_links,
    work_item_dependencies, future_enhancements, project_configuration, deployment_events,
    vendor_extractors;

--! step: Return tasks to its 001 shape
-- Dropping a column drops its constraints and indexes with it.
ALTER TABLE tasks
    DROP COLUMN deleted_at,
    DROP COLUMN depth,
    DROP COLUMN path,
    DROP COLUMN parent_id,
    DROP COLUMN item_type,
    DROP COLUMN version;
