--! revision: t4
--! down_revision: t3
--! message: Drop the audit log (its rows are discarded)

--! upgrade
--! step: Drop audit_log
DROP TABLE public.audit_log;

--! downgrade
--! step: Recreate audit_log (empty)
CREATE TABLE public.audit_log (
    id serial PRIMARY KEY,
    note text
);
