-- 007_outbox_lz4.sql: outbox pages are compressed with lz4 where the
-- server has it (PostgreSQL 14 and later, built with lz4, as Debian's and
-- the PGDG packages are). With pglz, the default, compressing them cost
-- more than it saved (002_engine_state.sql); lz4 writes a first sync's
-- million records (about 150 MB of JSON) in 0.6-0.7 s instead of
-- 1.0-1.4 s, and delivery reads them back no slower. Without lz4 the
-- pages stay uncompressed, as before.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE audsync.outbox'
        ' ALTER COLUMN records SET COMPRESSION lz4,'
        ' ALTER COLUMN records SET STORAGE EXTENDED';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    RAISE NOTICE 'outbox pages stay uncompressed: %', SQLERRM;
END
$$;
