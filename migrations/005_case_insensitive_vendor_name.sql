--! revision: 005
--! down_revision: 003b
--! message: Case insensitive vendor name

--! upgrade
--! step: Replace the unique vendor name index by a case-insensitive one
DROP INDEX idx_vendor_name;
CREATE UNIQUE INDEX idx_vendor_name_lower ON vendor_extractors (pg_catalog.lower(name));

--! downgrade
--! step: Restore the case-sensitive unique vendor name index
DROP INDEX idx_vendor_name_lower;
CREATE UNIQUE INDEX idx_vendor_name ON vendor_extractors (name);
