--! revision: 003a
--! down_revision: 003
--! message: Add missing work item columns

--! upgrade
--! step: Add branch, commit, pull request, metadata and author columns to tasks
ALTER TABLE tasks
    ADD COLUMN branch_name varchar(100),
    ADD COLUMN commit_hash varchar(40),
    ADD COLUMN pr_number integer,
    ADD COLUMN metadata jsonb,
    ADD COLUMN created_by varchar(100) NOT NULL DEFAULT 'system';

--! downgrade
--! step: Drop the columns added by 003a
ALTER TABLE tasks
    DROP COLUMN created_by,
    DROP COLUMN metadata,
    DROP COLUMN pr_number,
    DROP COLUMN commit_hash,
    DROP COLUMN branch_name;
