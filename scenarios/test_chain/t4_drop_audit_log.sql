--! revision: t4
--! down_revision: t3
--! message: Drop the audit log (its rows are discarded)

--! upgrade
--! step: Drop audit_log
-- CASCADE: the view audit_summary goes with it (verify names it).
DROP TABLE public.audit_log CASCADE;

--! downgrade
--! step: Recreate audit_log (empty)
CREATE TABLE public.audit_log (
    id serial PRIMARY KEY,
    note text
);
CREATE VIEW public.audit_summary AS SELECT count(*) AS notes FROM public.audit_log;
