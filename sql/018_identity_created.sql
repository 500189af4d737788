-- 018_identity_created.sql: a changed profile's identifiers are read from
-- the identity index alone (engine/diff.c, ids_sql and IDS_SQL).
--
-- Each run looks up the identifiers of the profiles whose calls it
-- decides, created_at included (the address of record is the newest
-- email). The index had every column but created_at, so each lookup read
-- the table's pages as well, one or two per profile, and for a few
-- thousand profiles PostgreSQL scanned the whole table instead. With
-- created_at carried in the index (not part of its key: uniqueness and
-- ON CONFLICT (profile_id, id_type, id_value) are as before) a lookup is
-- one index page per profile.
--
-- The index is built again: about a second per million identifiers,
-- during which writes to external_ids wait.
CREATE UNIQUE INDEX external_ids_identity_created
    ON audsync.external_ids (profile_id, id_type, id_value)
    INCLUDE (created_at);
DROP INDEX audsync.external_ids_identity;
ALTER INDEX audsync.external_ids_identity_created
    RENAME TO external_ids_identity;
