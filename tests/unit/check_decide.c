/* check_decide.c - the rules of DESIGN.md section 6, one row each, on the
 * pure decision module: no database, no network */
#include "audsync/decide.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUD "{\"k\": true}"
#define OUT "{\"k\": false}"

/* One row: a sync, a profile's ledger row and identifiers, and the calls
 * expected, "did[ $email=E]: key=value@ms ..." one a line, in order. */
typedef struct row {
	const char *rule;
	int track, trait, id_sync;
	int member, full;
	const char *value;
	const char *old_value; /* NULL: no ledger row */
	int old_member;
	const char *old_lines;
	const char *ids; /* "type value created;..." */
	const char *calls;
	const char *lines_have; /* a substring of the new lines, or NULL */
} row;

/* Lines of a ledger written by a run at 1000 ms. */
#define L(type, value, did, created, flag, told)                               \
	type "\t" value "\t" did "\t" #created "\t" flag "\t" told

static const row rows[] = {
	{ "first sync: every target is sent", 0, 0, 0, 1, 0, AUD, NULL, 0, "",
	  "user_id u1 10;email a@x 20",
	  "u1: " AUD "@2000\nu1 $email=a@x: " AUD "@2000\n", NULL },
	{ "two user_ids: the newest is every target's distinct_id", 0, 0, 0, 1,
	  0, AUD, NULL, 0, "", "user_id u2 20;user_id u1 10",
	  "u2: " AUD "@2000\nu2: " AUD "@2000\n", "user_id\tu1\tu2\t" },
	{ "entered: sent to every current target (after an exit)", 0, 0, 0, 1,
	  0, AUD, OUT, 0, L("user_id", "u1", "u1", 10, "c", ""),
	  "user_id u1 10", "u1: k=true@2000\n", "\tc\t" },
	{ "value changed: sent to every current target", 0, 1, 0, 1, 0,
	  "{\"k\": 2}", "{\"k\": 1}", 1,
	  L("user_id", "u1", "u1", 10, "c", "") "\n" L("email", "a@x", "u1", 20,
						       "c", ""),
	  "user_id u1 10;email a@x 20",
	  "u1: k=2@2000\nu1 $email=a@x: k=2@2000\n", NULL },
	{ "unchanged: nothing", 0, 0, 0, 1, 0, AUD, AUD, 1,
	  L("user_id", "u1", "u1", 10, "c", ""), "user_id u1 10", "", NULL },
	{ "a new identifier: sent the current value", 0, 0, 0, 1, 0, AUD, AUD,
	  1, L("user_id", "u1", "u1", 10, "c", ""),
	  "user_id u1 10;email b@x 30", "u1 $email=b@x: k=true@1000\n", NULL },
	{ "track: a new target whose distinct_id was told: nothing", 1, 0, 0, 1,
	  0, AUD, AUD, 1, L("user_id", "u1", "u1", 10, "c", ""),
	  "user_id u1 10;email b@x 30", "", "email\tb@x\tu1" },
	{ "track: targets of one distinct_id make one event", 1, 0, 0, 1, 0,
	  AUD, NULL, 0, "", "user_id u1 10;email a@x 20;email b@x 30",
	  "u1: " AUD "@2000\n", "email\tb@x\tu1\t30\tc\t" },
	{ "exited: the exit value to every distinct_id told (issue 1)", 1, 0, 0,
	  0, 0, NULL, AUD, 1,
	  L("anonymous_id", "a1", "a1", 10, "ca",
	    "") "\n" L("anonymous_id", "a2", "a2", 20, "ca",
		       "") "\n" L("email", "e@x", "a2", 30, "ca", ""),
	  "anonymous_id a1 10;anonymous_id a2 20;email e@x 30",
	  "a1: k=false@2000\na2: k=false@2000\n", "\th" },
	{ "exited: a distinct_id told false already gets nothing", 0, 0, 0, 0,
	  0, NULL, AUD, 1,
	  L("user_id", "u1", "u1", 10, "c",
	    "") "\n" L("user_id", "u0", "u0", 5, "h", "{\"k\":[false,1500]}"),
	  "user_id u1 10", "u1: k=false@2000\n", NULL },
	{ "exited whatever id_sync chooses now", 0, 0, 2, 0, 0, NULL, AUD, 1,
	  L("anonymous_id", "a1", "a1", 10, "ha",
	    "") "\n" L("anonymous_id", "a2", "a2", 20, "ca", ""),
	  "anonymous_id a1 10;anonymous_id a2 20",
	  "a1: k=false@2000\na2: k=false@2000\n", NULL },
	{ "id_sync last: the id no longer chosen gets the exit (issue 2)", 1, 0,
	  2, 1, 0, AUD, AUD, 1, L("anonymous_id", "a1", "a1", 10, "ca", ""),
	  "anonymous_id a1 10;anonymous_id a2 20",
	  "a2: k=true@2000\na1: k=false@2000\n", NULL },
	{ "an identifier removed: its distinct_id gets the exit", 0, 0, 0, 1, 0,
	  AUD, AUD, 1,
	  L("user_id", "u1", "u2", 10, "c", "") "\n" L("user_id", "u2", "u2",
						       20, "c", ""),
	  "user_id u1 10", "u1: k=true@2000\nu2: k=false@2000\n", NULL },
	{ "anonymous -> known: no exit to the anonymous id, kept", 0, 0, 0, 1,
	  0, AUD, AUD, 1, L("anonymous_id", "a1", "a1", 10, "ca", ""),
	  "anonymous_id a1 10;user_id u1 20",
	  "u1: k=true@2000\nu1: k=true@2000\n", "a1\ta1\t10\tha" },
	{ "anonymous kept, then exit reaches it", 0, 0, 0, 0, 0, NULL, AUD, 1,
	  L("anonymous_id", "a1", "u1", 10, "c",
	    "") "\n" L("user_id", "u1", "u1", 20, "c",
		       "") "\n" L("anonymous_id", "a1", "a1", 10, "ha", ""),
	  "anonymous_id a1 10;user_id u1 20",
	  "u1: k=false@2000\na1: k=false@2000\n", NULL },
	{ "a backfilled email is sent without $email (issue 4)", 0, 0, 0, 1, 0,
	  AUD, AUD, 1,
	  L("user_id", "u1", "u1", 10, "c", "") "\n" L("email", "new@x", "u1",
						       50, "c", ""),
	  "user_id u1 10;email new@x 50;email old@x 5", "u1: k=true@1000\n",
	  NULL },
	{ "the newest email stays the address after it is removed", 0, 1, 0, 1,
	  0, "{\"k\": 2}", "{\"k\": 1}", 1,
	  L("user_id", "u1", "u1", 10, "c", "") "\n" L("email", "new@x", "u1",
						       50, "c", ""),
	  "user_id u1 10;email old@x 5", "u1: k=2@2000\nu1: k=2@2000\n", NULL },
	{ "resync, track: a re-sent key keeps its time (issue 7)", 1, 1, 0, 1,
	  1, "{\"a\": 1, \"b\": 2}", "{\"a\": 1, \"b\": 2}", 1,
	  L("user_id", "u1", "u1", 10, "c", "{\"a\":[1,500],\"b\":[2,1000]}"),
	  "user_id u1 10", "u1: a=1@500 b=2@1000\n", NULL },
	{ "resync: a former member is told its exit value again", 0, 0, 0, 0, 1,
	  NULL, OUT, 0, L("user_id", "u3", "u3", 10, "h", ""), "",
	  "u3: k=false@1000\n", "user_id\tu3\tu3\t10\th\t" },
	{ "resync, track: a former member's exit keeps its time", 1, 0, 0, 0, 1,
	  NULL, OUT, 0, L("user_id", "u3", "u3", 10, "h", ""), "",
	  "u3: k=false@1000\n", NULL },
	{ "resync: a distinct_id no longer a target gets its exit again", 0, 0,
	  0, 1, 1, AUD, AUD, 1,
	  L("user_id", "u1", "u1", 10, "c",
	    "") "\n" L("user_id", "u0", "u0", 5, "h", "{\"k\":[false,1500]}"),
	  "user_id u1 10", "u1: k=true@1000\nu0: k=false@1500\n", NULL },
	{ "resync: a trait key told null is sent null again", 1, 1, 0, 1, 1,
	  "{\"a\": 1}", "{\"a\": 1}", 1,
	  L("user_id", "u1", "u1", 10, "c",
	    "{\"a\":[1,1000],\"b\":[null,1500]}"),
	  "user_id u1 10", "u1: a=1@1000 b=null@1500\n", NULL },
	{ "resync: a former trait member's nulls again", 1, 1, 0, 0, 1, NULL,
	  "{\"a\": null, \"b\": null}", 0,
	  L("user_id", "u1", "u1", 10, "h", ""), "",
	  "u1: a=null@1000 b=null@1000\n", NULL },
	{ "a trait key gone is sent as null", 0, 1, 0, 1, 0, "{\"a\": 1}",
	  "{\"a\": 1, \"b\": 2}", 1, L("user_id", "u1", "u1", 10, "c", ""),
	  "user_id u1 10", "u1: b=null@2000\n", NULL },
	{ "a trait key told null is not sent again", 0, 1, 0, 1, 0,
	  "{\"a\": 1}", "{\"a\": 1}", 1,
	  L("user_id", "u1", "u1", 10, "c",
	    "{\"a\":[1,1000],\"b\":[null,2000]}"),
	  "user_id u1 10", "", NULL },
	{ "a trait gone: null to every key told", 1, 1, 0, 0, 0, NULL,
	  "{\"a\": 1, \"b\": 2}", 1, L("user_id", "u1", "u1", 10, "c", ""),
	  "user_id u1 10", "u1: a=null@2000 b=null@2000\n", NULL },
	{ "invalid ids never become a distinct_id", 0, 0, 0, 1, 0, AUD, NULL, 0,
	  "", "user_id null 10;user_id 0 20;email a@x 30", "", NULL },
	{ "without a user_id, anonymous ids stand for the rest", 0, 0, 0, 1, 0,
	  AUD, NULL, 0, "",
	  "anonymous_id a1 10;anonymous_id a2 20;email e@x 30",
	  "a1: " AUD "@2000\na2: " AUD "@2000\na2 $email=e@x: " AUD "@2000\n",
	  NULL },
	{ "a ledger of three fields (before 010) sends nothing new", 1, 0, 0, 1,
	  0, AUD, AUD, 1, "user_id\tu1\tu1\nemail\ta@x\tu1",
	  "user_id u1 10;email a@x 20", "", NULL },
};

/* Parses "type value created;..." into ids (strings point into buf). */
static int parse_ids(decide_id *ids, char *buf)
{
	char *save = NULL, *s;
	int n = 0;

	for (s = strtok_r(buf, ";", &save); s; s = strtok_r(NULL, ";", &save)) {
		char *sp1 = strchr(s, ' '),
		     *sp2 = sp1 ? strchr(sp1 + 1, ' ') : 0;

		ck_assert_ptr_nonnull(sp2);
		*sp1 = *sp2 = '\0';
		ids[n].type = s;
		ids[n].value = sp1 + 1;
		ids[n++].created = atoll(sp2 + 1);
	}
	return n;
}

static void render(char *out, size_t len, const decision *d)
{
	size_t n = 0;
	int i, j;

	out[0] = '\0';
	for (i = 0; i < d->ncalls; i++) {
		const decide_call *c = &d->calls[i];

		n += (size_t)snprintf(out + n, len - n, "%s%s%s:", c->did,
				      c->email ? " $email=" : "",
				      c->email ? c->email : "");
		if (c->raw) /* the whole value, at the as-of */
			n += (size_t)snprintf(out + n, len - n, " %s@2000",
					      c->raw);
		for (j = 0; j < c->nkeys; j++) {
			const decide_key *k = &d->keys[c->first_key + j];

			n += (size_t)snprintf(
				out + n, len - n, " %s=%s@%lld", k->key,
				k->value ? json_object_to_json_string_ext(
						   k->value,
						   JSON_C_TO_STRING_PLAIN)
					 : "null",
				k->time_ms);
		}
		n += (size_t)snprintf(out + n, len - n, "\n");
	}
}

START_TEST(one_rule_of_section_6)
{
	const row *r = &rows[_i];
	decide_sync s = { r->track, r->trait, (decide_id_sync)r->id_sync };
	decide_id ids[16];
	char idbuf[512], got[2048], err[256];
	decide_in in;
	decision d;

	memset(&in, 0, sizeof(in));
	snprintf(idbuf, sizeof(idbuf), "%s", r->ids);
	in.member = r->member;
	in.full = r->full;
	in.value = r->value;
	in.as_of_ms = 2000;
	in.old_value = r->old_value;
	in.old_since_ms = 1000;
	in.old_member = r->old_member;
	in.old_lines = r->old_lines;
	in.ids = ids;
	in.nids = parse_ids(ids, idbuf);
	decision_init(&d);
	ck_assert_msg(decide_profile(&d, &s, &in, err, sizeof(err)) == 0,
		      "%s: %s", r->rule, err);
	render(got, sizeof(got), &d);
	ck_assert_msg(strcmp(got, r->calls) == 0,
		      "%s:\n calls:\n%s expected:\n%s", r->rule, got, r->calls);
	if (r->lines_have)
		ck_assert_msg(d.lines.data &&
				      strstr(d.lines.data, r->lines_have),
			      "%s: ledger lines\n%s\nlack %s", r->rule,
			      d.lines.data ? d.lines.data : "", r->lines_have);
	decision_free(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("decide");
	TCase *tc = tcase_create("section 6");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, one_rule_of_section_6, 0,
			    (int)(sizeof(rows) / sizeof(rows[0])));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
