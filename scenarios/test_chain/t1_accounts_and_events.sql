--! revision: t1
--! down_revision:
--! message: Accounts, their events and an audit log

--! upgrade
--! step: Create the tables
CREATE TABLE public.accounts (
    id serial PRIMARY KEY,
    name text NOT NULL,
    balance numeric(12,4) NOT NULL DEFAULT 0
);
CREATE TABLE public.events (
    id bigserial PRIMARY KEY,
    account_id integer NOT NULL REFERENCES public.accounts (id),
    kind text NOT NULL,
    weight integer,
    at timestamptz NOT NULL
);
CREATE TABLE public.audit_log (
    id serial PRIMARY KEY,
    note text
);
CREATE VIEW public.audit_summary AS SELECT count(*) AS notes FROM public.audit_log;

--! downgrade
--! step: Drop the tables
DROP VIEW public.audit_summary;
DROP TABLE public.audit_log;
DROP TABLE public.events;
DROP TABLE public.accounts;
