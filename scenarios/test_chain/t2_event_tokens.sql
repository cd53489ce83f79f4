--! revision: t2
--! down_revision: t1
--! message: A token per event (a volatile default: every row is rewritten)

--! upgrade
--! step: Add events.token
ALTER TABLE public.events ADD COLUMN token uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid();

--! downgrade
--! step: Drop events.token
ALTER TABLE public.events DROP COLUMN token;

--! check post: every event has a token
SELECT id FROM public.events WHERE token IS NULL;

--! check rollback: events.token is gone
SELECT attname FROM pg_catalog.pg_attribute
 WHERE attrelid = 'public.events'::pg_catalog.regclass AND attname = 'token' AND NOT attisdropped;
