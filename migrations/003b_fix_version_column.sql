--! revision: 003b
--! down_revision: 003a
--! message: Fix version column for optimistic locking

--! upgrade
--! step: Drop the server default of the version columns
-- Optimistic locking: the application sets version explicitly on every write.
ALTER TABLE tasks ALTER COLUMN version DROP DEFAULT;
ALTER TABLE vendor_extractors ALTER COLUMN version DROP DEFAULT;

--! downgrade
--! step: Restore the server default of the version columns
ALTER TABLE tasks ALTER COLUMN version SET DEFAULT 1;
ALTER TABLE vendor_extractors ALTER COLUMN version SET DEFAULT 1;
