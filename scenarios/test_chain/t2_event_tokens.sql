--! revision: t2
--! down_revision: t1
--! message: A token per event (a volatile default: every row is rewritten)

--! upgrade
--! step: Add events.token
ALTER TABLE public.events ADD COLUMN token uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid();

--! downgrade
--! step: Drop events.token
ALTER TABLE public.events DROP COLUMN token;
