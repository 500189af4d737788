-- 017_former_members.sql: an entering profile's former-member row is
-- found by index (engine/diff.c, chg_sql).
--
-- A profile that exits keeps its ledger row with member false (012), and
-- one that enters again takes what that row says Mixpanel was told. The
-- diff looked those rows up with a scan of the whole ledger, on every
-- run where anyone entered: a tenth of a second at half a million
-- members, for usually none found. The former members are a small part
-- of the ledger; their own index finds them, or finds there are none, at
-- once.
CREATE INDEX snapshot_members_former
    ON audsync.snapshot_members (sync_id, profile_id) WHERE NOT member;
