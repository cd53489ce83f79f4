--! revision: b1
--! down_revision:
--! message: A table of items

--! upgrade
--! step: Create items
CREATE TABLE public.items (id serial PRIMARY KEY, n integer NOT NULL DEFAULT 0);

--! downgrade
--! step: Drop items
DROP TABLE public.items;
