--! revision: t3
--! down_revision: t2
--! message: Index events by kind

--! upgrade
--! step: Create idx_events_kind
CREATE INDEX idx_events_kind ON public.events (kind);

--! downgrade
--! step: Drop idx_events_kind
DROP INDEX public.idx_events_kind;
