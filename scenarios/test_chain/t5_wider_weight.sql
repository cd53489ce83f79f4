--! revision: t5
--! down_revision: t4
--! message: events.weight becomes bigint (a type change: every row is rewritten)

--! upgrade
--! step: Widen events.weight
ALTER TABLE public.events ALTER COLUMN weight TYPE bigint;

--! downgrade
--! step: Narrow events.weight
ALTER TABLE public.events ALTER COLUMN weight TYPE integer;
