-- The code-search service's database after the SERVICE's own migration 002
-- (its weaker CHECK '^[a-z0-9-]{1,50}$'; its DROP TABLE ... CASCADE): the
-- `pg_dump --schema-only --no-owner` of the database whose dump at 005 is
-- harness/codesearch/shapes/production_005.sql, made on PostgreSQL 15 without
-- pgvector (code_chunks.embedding is real[]). Copied verbatim, below this
-- header, from the service's hand-over (its production_002.schema.sql).
-- scenarios/catalog_test.cc (ServicesOwn002) loads it into an empty database
-- and diffs its catalog against our 002 on the production shape. Do not edit.
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: alembic_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);


--
-- Name: change_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.change_events (
    id uuid NOT NULL,
    code_file_id uuid NOT NULL,
    event_type character varying NOT NULL,
    detected_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    processed boolean DEFAULT false NOT NULL
);


--
-- Name: code_chunks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.code_chunks (
    id uuid NOT NULL,
    code_file_id uuid NOT NULL,
    content text NOT NULL,
    start_line integer NOT NULL,
    end_line integer NOT NULL,
    chunk_type character varying NOT NULL,
    embedding real[],
    created_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    project_id character varying(50) NOT NULL,
    CONSTRAINT check_code_chunks_project_id CHECK (((project_id)::text ~ '^[a-z0-9-]{1,50}$'::text))
);


--
-- Name: code_files; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.code_files (
    id uuid NOT NULL,
    repository_id uuid NOT NULL,
    path character varying NOT NULL,
    relative_path character varying NOT NULL,
    content_hash character varying(64) NOT NULL,
    size_bytes integer NOT NULL,
    language character varying,
    modified_at timestamp without time zone NOT NULL,
    indexed_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    is_deleted boolean DEFAULT false NOT NULL,
    deleted_at timestamp without time zone,
    created_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL
);


--
-- Name: embedding_metadata; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.embedding_metadata (
    id uuid NOT NULL,
    model_name character varying DEFAULT 'nomic-embed-text'::character varying NOT NULL,
    model_version character varying,
    dimensions integer DEFAULT 768 NOT NULL,
    generation_time_ms integer NOT NULL,
    created_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL
);


--
-- Name: repositories; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.repositories (
    id uuid NOT NULL,
    path character varying NOT NULL,
    name character varying NOT NULL,
    last_indexed_at timestamp without time zone,
    is_active boolean DEFAULT true NOT NULL,
    created_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    project_id character varying(50) DEFAULT 'default'::character varying NOT NULL,
    CONSTRAINT check_repositories_project_id CHECK (((project_id)::text ~ '^[a-z0-9-]{1,50}$'::text))
);


--
-- Name: search_queries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.search_queries (
    id uuid NOT NULL,
    query_text text NOT NULL,
    result_count integer NOT NULL,
    latency_ms integer NOT NULL,
    filters json,
    created_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL
);


--
-- Name: task_branch_links; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_branch_links (
    id uuid NOT NULL,
    task_id uuid NOT NULL,
    branch_name character varying NOT NULL,
    created_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL
);


--
-- Name: task_commit_links; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_commit_links (
    id uuid NOT NULL,
    task_id uuid NOT NULL,
    commit_hash character varying(40) NOT NULL,
    commit_message text,
    created_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL
);


--
-- Name: task_planning_references; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_planning_references (
    id uuid NOT NULL,
    task_id uuid NOT NULL,
    file_path character varying NOT NULL,
    reference_type character varying NOT NULL,
    created_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL
);


--
-- Name: task_status_history; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_status_history (
    id uuid NOT NULL,
    task_id uuid NOT NULL,
    from_status character varying,
    to_status character varying NOT NULL,
    changed_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL
);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: change_events pk_change_events; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.change_events
    ADD CONSTRAINT pk_change_events PRIMARY KEY (id);


--
-- Name: code_chunks pk_code_chunks; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.code_chunks
    ADD CONSTRAINT pk_code_chunks PRIMARY KEY (id);


--
-- Name: code_files pk_code_files; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.code_files
    ADD CONSTRAINT pk_code_files PRIMARY KEY (id);


--
-- Name: embedding_metadata pk_embedding_metadata; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.embedding_metadata
    ADD CONSTRAINT pk_embedding_metadata PRIMARY KEY (id);


--
-- Name: repositories pk_repositories; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.repositories
    ADD CONSTRAINT pk_repositories PRIMARY KEY (id);


--
-- Name: search_queries pk_search_queries; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.search_queries
    ADD CONSTRAINT pk_search_queries PRIMARY KEY (id);


--
-- Name: task_branch_links pk_task_branch_links; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_branch_links
    ADD CONSTRAINT pk_task_branch_links PRIMARY KEY (id);


--
-- Name: task_commit_links pk_task_commit_links; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_commit_links
    ADD CONSTRAINT pk_task_commit_links PRIMARY KEY (id);


--
-- Name: task_planning_references pk_task_planning_references; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_planning_references
    ADD CONSTRAINT pk_task_planning_references PRIMARY KEY (id);


--
-- Name: task_status_history pk_task_status_history; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_status_history
    ADD CONSTRAINT pk_task_status_history PRIMARY KEY (id);


--
-- Name: repositories uq_repositories_path; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.repositories
    ADD CONSTRAINT uq_repositories_path UNIQUE (path);


--
-- Name: idx_project_repository; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_project_repository ON public.repositories USING btree (project_id, id);


--
-- Name: ix_branch_links_task_branch; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_branch_links_task_branch ON public.task_branch_links USING btree (task_id, branch_name);


--
-- Name: ix_change_events_detected_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_change_events_detected_at ON public.change_events USING btree (detected_at);


--
-- Name: ix_code_files_path; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_code_files_path ON public.code_files USING btree (path);


--
-- Name: ix_code_files_repo_path; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_code_files_repo_path ON public.code_files USING btree (repository_id, relative_path);


--
-- Name: ix_commit_links_task_commit; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_commit_links_task_commit ON public.task_commit_links USING btree (task_id, commit_hash);


--
-- Name: ix_repositories_path; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_repositories_path ON public.repositories USING btree (path);


--
-- Name: ix_search_queries_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_search_queries_created_at ON public.search_queries USING btree (created_at);


--
-- Name: ix_task_status_history_changed_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_task_status_history_changed_at ON public.task_status_history USING btree (changed_at);


--
-- Name: change_events fk_change_events_code_file_id_code_files; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.change_events
    ADD CONSTRAINT fk_change_events_code_file_id_code_files FOREIGN KEY (code_file_id) REFERENCES public.code_files(id);


--
-- Name: code_chunks fk_code_chunks_code_file_id_code_files; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.code_chunks
    ADD CONSTRAINT fk_code_chunks_code_file_id_code_files FOREIGN KEY (code_file_id) REFERENCES public.code_files(id);


--
-- Name: code_files fk_code_files_repository_id_repositories; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.code_files
    ADD CONSTRAINT fk_code_files_repository_id_repositories FOREIGN KEY (repository_id) REFERENCES public.repositories(id);


--
-- PostgreSQL database dump complete
--


