--! revision: 001
--! down_revision:
--! message: Initial schema

--! upgrade
--! step: Create repositories table
CREATE TABLE public.repositories (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    path text NOT NULL,
    name text,
    indexed_at timestamptz NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT repositories_pkey PRIMARY KEY (id),
    CONSTRAINT repositories_path_key UNIQUE (path)
);

--! step: Create code_chunks table
-- pgvector is not packaged everywhere (not for Debian 12): where the
-- extension is available the embedding is vector(768), elsewhere real[]
-- with a CHECK that keeps the same 768-value shape.
DO $$
DECLARE
    pgvector text;
    embedding_column text;
BEGIN
    SELECT default_version INTO pgvector FROM pg_available_extensions WHERE name = 'vector';
    IF pgvector IS NOT NULL THEN
        CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;
        embedding_column := 'embedding vector(768)';
        RAISE NOTICE 'code_chunks.embedding stored as vector(768) (pgvector %)', pgvector;
    ELSE
        embedding_column := 'embedding real[] CONSTRAINT code_chunks_embedding_check '
                            'CHECK (embedding IS NULL OR cardinality(embedding) = 768)';
        RAISE NOTICE 'pgvector is not available on this server: code_chunks.embedding stored as real[] with a 768-element CHECK';
    END IF;
    EXECUTE format($ddl$
        CREATE TABLE public.code_chunks (
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            repository_id uuid NOT NULL,
            file_path text NOT NULL,
            content text NOT NULL,
            start_line integer NOT NULL,
            end_line integer NOT NULL,
            chunk_type text,
            %s,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT code_chunks_pkey PRIMARY KEY (id),
            CONSTRAINT code_chunks_repository_id_fkey FOREIGN KEY (repository_id)
                REFERENCES repositories (id) ON DELETE CASCADE
        )$ddl$, embedding_column);
END
$$;
CREATE INDEX idx_code_chunks_repository_id ON code_chunks (repository_id);

--! step: Create tasks table
CREATE TABLE public.tasks (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    title varchar(200) NOT NULL,
    description text,
    notes text,
    status varchar(50) NOT NULL DEFAULT 'need to be done',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_pkey PRIMARY KEY (id),
    CONSTRAINT tasks_status_check CHECK (status IN ('need to be done', 'in-progress', 'complete'))
);
CREATE INDEX idx_tasks_status ON tasks (status);

--! downgrade
--! step: Drop the initial tables
-- The vector extension stays: it may have been there before 001.
DROP TABLE tasks;
DROP TABLE code_chunks;
DROP TABLE repositories;
