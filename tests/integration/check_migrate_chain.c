/* check_migrate_chain.c - a database filled at migration 001 and upgraded
 * through every migration, one at a time, ends as a fresh one: the same
 * schema, the same data, and the same calls to Mixpanel */
#include "mixpanel_ctl.h"
#include "testlib.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static mpctl *fake;
static const char *const env[] = { "MIXPANEL_MP_SECRET=test-secret",
				   "AUDSYNC_RETRY_BASE_MS=20",
				   "AUDSYNC_RETRY_JITTER_MS=5",
				   "AUDSYNC_MAX_ATTEMPTS=2", NULL };

#define AS_OF "2026-06-01 12:00:00+00"

/* The migration files, sorted: sql/NNN_name.sql (AUDSYNC_SQL_DIR). */
static int migration_files(char names[][256], int max)
{
	const char *dir = getenv("AUDSYNC_SQL_DIR");
	struct dirent **list;
	int n, i, count = 0;

	if (!dir)
		dir = "sql";
	n = scandir(dir, &list, NULL, alphasort);
	ck_assert_msg(n > 0, "no migrations in %s", dir);
	for (i = 0; i < n; i++) {
		const char *d = list[i]->d_name;
		size_t len = strlen(d);

		if (len > 8 && d[0] >= '0' && d[0] <= '9' &&
		    strcmp(d + len - 4, ".sql") == 0) {
			ck_assert_int_lt(count, max);
			snprintf(names[count++], 256, "%s/%s", dir, d);
		}
		free(list[i]);
	}
	free(list);
	return count;
}

/* Applies one migration file as `audsync migrate` does: the file and its
 * ledger row in one transaction. */
static void apply(const char *db, const char *path)
{
	const char *base = strrchr(path, '/') + 1;
	char *sql = tl_read_file(path), *all, name[128];
	size_t len;

	snprintf(name, sizeof(name), "%.*s", (int)(strlen(base) - 4), base);
	len = strlen(sql) + 512;
	all = malloc(len);
	ck_assert_ptr_nonnull(all);
	snprintf(all, len,
		 "BEGIN;\n%s\n;INSERT INTO audsync.schema_migrations"
		 " (version, name) VALUES (%d, '%s'); COMMIT;",
		 sql, (int)strtol(base, NULL, 10), name);
	tl_sql(db, all);
	free(all);
	free(sql);
}

/* A new empty database (no migration applied). */
static const char *empty_db(void)
{
	static char conninfo[64];
	static int counter;
	char sql[96];

	snprintf(sql, sizeof(sql), "CREATE DATABASE chain%d_%d", (int)getpid(),
		 ++counter);
	tl_sql("dbname=postgres", sql);
	snprintf(conninfo, sizeof(conninfo), "dbname=chain%d_%d", (int)getpid(),
		 counter);
	return conninfo;
}

/* People, events, traits, one destination and two syncs, written with the
 * columns migration 001 has. */
static void fill(const char *db, const char *base_url)
{
	char sql[512];

	tl_sql(db, "INSERT INTO audsync.external_ids VALUES"
		   " ('p1', 'user_id', 'u1', '2026-01-01'),"
		   " ('p1', 'email', 'a@example.com', '2026-01-02'),"
		   " ('p2', 'user_id', 'u2', '2026-01-01'),"
		   " ('p3', 'anonymous_id', 'an3', '2026-01-01'),"
		   " ('p4', 'user_id', 'null', '2026-01-01');"
		   "INSERT INTO audsync.events VALUES"
		   " ('p1', 'Buy', '{\"sku\": 1}', '2026-05-30'),"
		   " ('p2', 'Buy', '{\"sku\": 2}', '2026-05-31'),"
		   " ('p3', 'Buy', '{}', '2026-05-31'),"
		   " ('p4', 'Buy', '{}', '2026-05-31'),"
		   " ('p2', 'Buy', '{}', '2026-07-01');"
		   "INSERT INTO audsync.profile_traits VALUES"
		   " ('p1', '{\"plan\": \"pro\"}', '2026-01-01'),"
		   " ('p2', '{\"plan\": \"free\"}', '2026-01-01');");
	snprintf(sql, sizeof(sql),
		 "INSERT INTO audsync.destinations (name, api_base,"
		 " project_token, secret_env, use_people) VALUES ('mp', '%s',"
		 " 'test-token', 'MIXPANEL_MP_SECRET', true)",
		 base_url);
	tl_sql(db, sql);
	tl_sql(db,
	       "INSERT INTO audsync.computations (name, kind, definition_sql,"
	       " lookback) VALUES ('Buyers', 'audience', 'SELECT DISTINCT"
	       " profile_id FROM audsync.events WHERE event = ''Buy''"
	       " AND ts <= $1 AND ts > $2', '30 days'),"
	       " ('Plan', 'trait', 'SELECT profile_id, traits->>''plan'' AS"
	       " value FROM audsync.profile_traits', NULL);"
	       "INSERT INTO audsync.syncs (computation_id, destination_id,"
	       " mode) SELECT c.id, d.id, CASE c.key WHEN 'buyers' THEN"
	       " 'identify' ELSE 'track' END FROM audsync.computations c,"
	       " audsync.destinations d");
}

/* Rows that later migrations refuse: written before them, each must fail
 * only its own sync. */
static void fill_refused(const char *db)
{
	tl_sql(db, "INSERT INTO audsync.computations (name, key, kind,"
		   " definition_sql, lookback) VALUES"
		   " ('Time', 'time', 'audience',"
		   "  'SELECT profile_id FROM audsync.external_ids', NULL),"
		   " ('Forever', 'forever', 'audience',"
		   "  'SELECT profile_id FROM audsync.external_ids',"
		   "  '1000000 years');"
		   "INSERT INTO audsync.syncs (computation_id, destination_id,"
		   " mode) SELECT c.id, d.id, 'identify' FROM"
		   " audsync.computations c, audsync.destinations d"
		   " WHERE c.key IN ('time', 'forever')");
}

/* The audsync schema as text: columns, constraints, indexes, triggers and
 * functions, each in a canonical order (column order is left out: an
 * added column comes last, whatever the fresh schema's order). */
static char *schema_of(const char *db)
{
	return tl_sql_value(
		db,
		"SELECT string_agg(x, E'\\n' ORDER BY x) FROM ("
		" SELECT format('column %s.%s %s %s %s', table_name,"
		"  column_name, data_type, is_nullable, column_default) AS x"
		"  FROM information_schema.columns"
		"  WHERE table_schema = 'audsync'"
		" UNION ALL SELECT format('constraint %s %s %s',"
		"  conrelid::regclass, conname, pg_get_constraintdef(oid))"
		"  FROM pg_constraint"
		"  WHERE connamespace = 'audsync'::regnamespace"
		" UNION ALL SELECT 'index ' || indexdef FROM pg_indexes"
		"  WHERE schemaname = 'audsync'"
		" UNION ALL SELECT 'trigger ' || pg_get_triggerdef(t.oid)"
		"  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
		"  WHERE c.relnamespace = 'audsync'::regnamespace"
		"  AND NOT t.tgisinternal"
		" UNION ALL SELECT 'function ' || pg_get_functiondef(p.oid)"
		"  FROM pg_proc p WHERE p.pronamespace = 'audsync'::regnamespace"
		") s");
}

/* The user data as text, in a canonical order. */
static char *data_of(const char *db)
{
	return tl_sql_value(
		db,
		"SELECT concat_ws(E'\\n',"
		" (SELECT string_agg(format('%s %s %s %s', profile_id, id_type,"
		"  id_value, created_at), ',' ORDER BY 1)"
		"  FROM audsync.external_ids),"
		" (SELECT string_agg(format('%s %s %s %s', profile_id, event,"
		"  properties, ts), ',' ORDER BY 1) FROM audsync.events),"
		" (SELECT string_agg(format('%s %s', profile_id, traits), ','"
		"  ORDER BY 1) FROM audsync.profile_traits),"
		" (SELECT string_agg(format('%s %s %s %s', key, kind,"
		"  definition_sql, lookback), ',' ORDER BY 1)"
		"  FROM audsync.computations"
		"  WHERE key NOT IN ('time', 'forever')),"
		" (SELECT string_agg(format('%s %s %s', c.key, s.mode,"
		"  s.id_sync), ',' ORDER BY 1) FROM audsync.syncs s"
		"  JOIN audsync.computations c ON c.id = s.computation_id"
		"  WHERE c.key NOT IN ('time', 'forever')))");
}

/* Runs every sync at AS_OF; returns the exit status and keeps stderr. */
static int run_all(const char *db, char **err)
{
	tl_result r =
		tl_audsync(db, env, "run", "--all", "--as-of", AS_OF, NULL);
	int status = r.status;

	*err = r.err;
	r.err = NULL;
	tl_result_free(&r);
	return status;
}

static int by_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* JSON text with object keys and array items in sorted order: the fake's
 * state whatever order its lanes arrived in. */
static char *canonical(json_object *o)
{
	size_t n, i, len = 3;
	char **parts, *out;

	if (json_object_is_type(o, json_type_object)) {
		n = (size_t)json_object_object_length(o);
		parts = calloc(n + 1, sizeof(*parts));
		i = 0;
		json_object_object_foreach(o, k, v)
		{
			char *val = canonical(v);

			parts[i] = malloc(strlen(k) + strlen(val) + 8);
			sprintf(parts[i++], "\"%s\":%s", k, val);
			free(val);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		n = json_object_array_length(o);
		parts = calloc(n + 1, sizeof(*parts));
		for (i = 0; i < n; i++)
			parts[i] = canonical(json_object_array_get_idx(o, i));
	} else {
		return strdup(json_object_to_json_string_ext(
			o, JSON_C_TO_STRING_PLAIN));
	}
	qsort(parts, n, sizeof(*parts), by_text);
	for (i = 0; i < n; i++)
		len += strlen(parts[i]) + 1;
	out = malloc(len);
	strcpy(out, json_object_is_type(o, json_type_object) ? "{" : "[");
	for (i = 0; i < n; i++) {
		if (i)
			strcat(out, ",");
		strcat(out, parts[i]);
		free(parts[i]);
	}
	strcat(out, json_object_is_type(o, json_type_object) ? "}" : "]");
	free(parts);
	return out;
}

static char *fake_state(void)
{
	json_object *state;
	char *text;

	ck_assert_int_eq(mpctl_state(&state, fake), 0);
	text = canonical(state);
	json_object_put(state);
	return text;
}

START_TEST(chain_equals_fresh)
{
	char files[64][256], *chain_schema, *fresh_schema, *chain_data,
		*fresh_data, *chain_calls, *fresh_calls, *err;
	const char *chain, *fresh;
	int n, i, status;

	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	n = migration_files(files, 64);
	ck_assert_int_ge(n, 12);
	ck_assert_msg(strstr(files[0], "/001_") != NULL, "first is %s",
		      files[0]);

	/* Filled at 001, then every migration on its own. */
	chain = strdup(empty_db());
	tl_sql(chain, "CREATE SCHEMA audsync;"
		      "CREATE TABLE audsync.schema_migrations ("
		      " version integer PRIMARY KEY, name text NOT NULL,"
		      " applied_at timestamptz NOT NULL DEFAULT now())");
	apply(chain, files[0]);
	fill(chain, mpctl_base_url(fake));
	fill_refused(chain);
	for (i = 1; i < n; i++)
		apply(chain, files[i]);
	/* The binary agrees that nothing is left to apply. */
	{
		tl_result r = tl_audsync(chain, env, "migrate", NULL);

		ck_assert_msg(r.status == 0, "migrate: %s", r.err);
		tl_result_free(&r);
	}
	ck_assert_int_eq(tl_sql_int(chain, "SELECT count(*) FROM"
					   " audsync.schema_migrations"),
			 n);

	/* A fresh database, migrated by the binary, with the same rows
	 * except those the migrations now refuse. */
	fresh = strdup(tl_new_db());
	fill(fresh, mpctl_base_url(fake));

	chain_schema = schema_of(chain);
	fresh_schema = schema_of(fresh);
	ck_assert_str_eq(chain_schema, fresh_schema);

	/* The rows written at 001 are all there, unchanged. */
	chain_data = data_of(chain);
	fresh_data = data_of(fresh);
	ck_assert_str_eq(chain_data, fresh_data);

	/* The same calls reach Mixpanel; the refused rows fail only their
	 * own syncs, each named. */
	status = run_all(chain, &err);
	ck_assert_msg(status != 0, "refused rows ran: %s", err);
	ck_assert_msg(tl_contains(err, "time"), "%s", err);
	ck_assert_msg(tl_contains(err, "forever"), "%s", err);
	free(err);
	chain_calls = fake_state();
	ck_assert_msg(tl_contains(chain_calls, "\"buyers\":true"), "%s",
		      chain_calls);
	ck_assert_msg(tl_contains(chain_calls, "\"Trait Computed\""), "%s",
		      chain_calls);
	ck_assert_int_eq(mpctl_reset(fake), 0);
	status = run_all(fresh, &err);
	ck_assert_msg(status == 0, "fresh run: %s", err);
	free(err);
	fresh_calls = fake_state();
	ck_assert_str_eq(chain_calls, fresh_calls);

	free(chain_schema);
	free(fresh_schema);
	free(chain_data);
	free(fresh_data);
	free(chain_calls);
	free(fresh_calls);
	free((char *)chain);
	free((char *)fresh);
	mpctl_stop(fake);
}
END_TEST

/* A loader's identifiers go in as they did at 001: the identity is
 * unique on (profile_id, id_type, id_value) and an upsert names those
 * columns (sql/018_identity_created.sql carries created_at in the index,
 * outside its key). */
START_TEST(loader_upserts_as_before)
{
	const char *db = tl_new_db();
	char *at;

	tl_sql(db, "INSERT INTO audsync.external_ids"
		   " VALUES ('p1', 'email', 'a@example.com', '2026-01-01')");
	tl_sql(db, "INSERT INTO audsync.external_ids"
		   " VALUES ('p1', 'email', 'a@example.com', '2026-02-01')"
		   " ON CONFLICT (profile_id, id_type, id_value)"
		   " DO UPDATE SET created_at = EXCLUDED.created_at");
	ck_assert_int_eq(
		tl_sql_int(db, "SELECT count(*) FROM audsync.external_ids"), 1);
	at = tl_sql_value(db, "SELECT created_at::date::text"
			      " FROM audsync.external_ids");
	ck_assert_str_eq(at, "2026-02-01");
	free(at);
	tl_sql(db, "DO $$ BEGIN INSERT INTO audsync.external_ids"
		   " VALUES ('p1', 'email', 'a@example.com', now());"
		   " RAISE EXCEPTION 'the same identifier was taken twice';"
		   " EXCEPTION WHEN unique_violation THEN NULL; END $$");
}
END_TEST

/*
 * A database that ran before migrations 021 and 022: two identify traits
 * set a column of one name (they overwrote each other) and a sync has no
 * targets_rule. The upgrade gives the column to the trait created first,
 * whichever runs first afterwards, and records the sync's settings, so
 * a setting changed after the upgrade takes effect at the next run.
 */
START_TEST(an_upgrade_gives_a_shared_column_to_the_older_trait)
{
	char files[64][256], *owner, *db;
	tl_result r;
	int n, i;

	ck_assert_int_eq(mpctl_start(&fake, NULL), 0);
	n = migration_files(files, 64);
	db = strdup(empty_db());
	tl_sql(db, "CREATE SCHEMA audsync;"
		   "CREATE TABLE audsync.schema_migrations ("
		   " version integer PRIMARY KEY, name text NOT NULL,"
		   " applied_at timestamptz NOT NULL DEFAULT now())");
	for (i = 0; i < n && strstr(files[i], "/021_") == NULL; i++)
		apply(db, files[i]);
	tl_sqlf(db,
		"INSERT INTO audsync.destinations (name, api_base,"
		" project_token, secret_env, use_people) VALUES ('mp', '%s',"
		" 'test-token', 'MIXPANEL_MP_SECRET', true);"
		"INSERT INTO audsync.external_ids VALUES"
		" ('p1', 'user_id', 'u1', '2026-01-01');"
		"INSERT INTO audsync.computations (name, kind, definition_sql)"
		" VALUES ('Stats', 'trait', 'SELECT profile_id, 1 AS orders,"
		" ''gold'' AS tier FROM audsync.external_ids'),"
		" ('Stats Two', 'trait', 'SELECT profile_id, 5 AS spend,"
		" ''silver'' AS tier FROM audsync.external_ids');"
		"INSERT INTO audsync.syncs (computation_id, destination_id,"
		" mode) SELECT c.id, d.id, 'identify' FROM"
		" audsync.computations c, audsync.destinations d;"
		"INSERT INTO audsync.snapshot_members (sync_id, profile_id,"
		" value, since) SELECT s.id, 'p1', CASE c.key WHEN 'stats'"
		" THEN '{\"orders\": 1, \"tier\": \"gold\"}' ELSE"
		" '{\"spend\": 5, \"tier\": \"silver\"}' END::jsonb,"
		" '2026-06-01' FROM audsync.syncs s JOIN audsync.computations c"
		" ON c.id = s.computation_id;"
		"INSERT INTO audsync.sync_state (sync_id, last_as_of)"
		" SELECT id, '2026-06-01' FROM audsync.syncs",
		mpctl_base_url(fake));
	for (; i < n; i++)
		apply(db, files[i]);
	owner = tl_sql_value(db, "SELECT c.key FROM audsync.computation_keys k"
				 " JOIN audsync.computations c"
				 " ON c.id = k.computation_id"
				 " WHERE k.key = 'tier'");
	ck_assert_msg(owner && strcmp(owner, "stats") == 0,
		      "tier belongs to %s", owner ? owner : "nobody");
	free(owner);
	r = tl_audsync(db, env, "validate", NULL);
	ck_assert_msg(r.status != 0 && tl_contains(r.out, "stats_two") &&
			      tl_contains(r.out, "tier"),
		      "validate exited %d: %s%s", r.status, r.out, r.err);
	tl_result_free(&r);
	/* the younger trait runs first, and fails alone, naming the owner */
	r = tl_audsync(db, env, "run", "--computation", "stats_two", NULL);
	ck_assert_msg(r.status == 1 && tl_contains(r.err, "tier") &&
			      tl_contains(r.err, "computation stats "),
		      "run of stats_two exited %d: %s", r.status, r.err);
	tl_result_free(&r);
	r = tl_audsync(db, env, "run", "--computation", "stats", NULL);
	ck_assert_msg(r.status == 0, "run of stats exited %d: %s", r.status,
		      r.err);
	tl_result_free(&r);
	ck_assert_int_eq(tl_sql_int(db, "SELECT count(*) FROM"
					" audsync.sync_state"
					" WHERE targets_rule IS NULL"),
			 0);
	mpctl_stop(fake);
	fake = NULL;
	free(db);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("migrate_chain");
	TCase *tc = tcase_create("chain");

	tcase_add_test(tc, chain_equals_fresh);
	tcase_add_test(tc, loader_upserts_as_before);
	tcase_add_test(tc, an_upgrade_gives_a_shared_column_to_the_older_trait);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
