--! revision: t3
--! down_revision: t2
--! message: Index events by kind
--! idempotent

--! upgrade
--! step: Create idx_events_kind
CREATE INDEX IF NOT EXISTS idx_events_kind ON public.events (kind);

--! downgrade
--! step: Drop idx_events_kind
DROP INDEX public.idx_events_kind;

--! gate pre: events is a table
-- The verdict form (columns passed, detail): no row, no line.
SELECT false AS passed, 'public.events is not a table: t3 indexes a table' AS detail
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class
                    WHERE oid = to_regclass('public.events') AND relkind IN ('r', 'p'));

--! check post: kind index
SELECT i.indisvalid AS passed,
       'idx_events_kind is ' || CASE WHEN i.indisvalid THEN 'valid' ELSE 'INVALID' END AS detail
  FROM pg_catalog.pg_index i WHERE i.indexrelid = to_regclass('public.idx_events_kind')
UNION ALL
SELECT false, 'idx_events_kind is missing' WHERE to_regclass('public.idx_events_kind') IS NULL;
