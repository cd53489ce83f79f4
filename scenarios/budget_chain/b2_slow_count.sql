--! revision: b2
--! down_revision: b1
--! message: A deliberately slow revision: about 0.2 ms of work per row

--! upgrade
--! step: Count slowly, row by row
-- The subquery depends on the row: it runs once per row, so the time grows
-- with the table (a line through the origin the forecast can trust).
ALTER TABLE public.items ADD COLUMN slow_count integer;
UPDATE public.items
   SET slow_count = (SELECT count(*) FROM pg_catalog.generate_series(1, 4000 + items.id % 2))::integer;

--! downgrade
--! step: Drop the counts
ALTER TABLE public.items DROP COLUMN slow_count;
