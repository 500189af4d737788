/* check_mp_answer.c - what an answer means: only Mixpanel's own answer
 * accepts or rejects records */
#include "audsync/mp_answer.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT_OK(n)                                                           \
	"{\"code\":200,\"num_records_imported\":" #n ",\"status\":\"OK\"}"
#define IMPORT_400(failed, imported)                                           \
	"{\"code\":400,\"error\":\"some data points in the request failed "    \
	"validation\",\"failed_records\":[" failed                             \
	"],\"num_records_imported\":" #imported ",\"status\":\"Bad Request\"}"
#define FAILED(index)                                                          \
	"{\"index\":" index ",\"$insert_id\":\"aa\",\"field\":"                \
	"\"properties.time\",\"message\":\"too old\"}"

/* One answer and the action it must lead to. */
typedef struct row {
	mp_endpoint ep;
	long status;
	const char *body;
	size_t nrecords;
	mp_action want;
} row;

static const row rows[] = {
	/* /import: Mixpanel's success, and answers that only look like it */
	{ MP_EP_IMPORT, 200, IMPORT_OK(3), 3, MP_ACT_DELIVERED },
	{ MP_EP_IMPORT, 200, IMPORT_OK(3) "\n", 3, MP_ACT_DELIVERED },
	{ MP_EP_IMPORT, 200, IMPORT_OK(0), 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 200, IMPORT_OK(2), 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 200, IMPORT_OK(4), 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 200, "{\"code\":200,\"status\":\"OK\"}", 3,
	  MP_ACT_RETRY },
	{ MP_EP_IMPORT, 200, "{\"num_records_imported\":3}", 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 200, "{\"code\":200,\"num_records_imported\":\"3\"}", 3,
	  MP_ACT_RETRY },
	{ MP_EP_IMPORT, 200, IMPORT_OK(3) "<html>", 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 200, "<html><body>proxy</body></html>", 3,
	  MP_ACT_RETRY },
	{ MP_EP_IMPORT, 200, "", 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 200, NULL, 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 200, "1", 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 204, NULL, 3, MP_ACT_RETRY },
	/* /import 400: Mixpanel's own, with failed_records in range */
	{ MP_EP_IMPORT, 400, IMPORT_400(FAILED("0") "," FAILED("2"), 1), 3,
	  MP_ACT_PARTIAL },
	{ MP_EP_IMPORT, 400, IMPORT_400(FAILED("1") "," FAILED("1"), 2), 3,
	  MP_ACT_PARTIAL },
	{ MP_EP_IMPORT, 400,
	  "{\"code\":400,\"error\":\"x\",\"failed_records\":[" FAILED("0") "]}",
	  3, MP_ACT_PARTIAL },
	/* ... whose indexes name no record: nothing to trust */
	{ MP_EP_IMPORT, 400, IMPORT_400(FAILED("5000"), 2), 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400, IMPORT_400(FAILED("3"), 2), 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400, IMPORT_400(FAILED("-1"), 2), 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400, IMPORT_400(FAILED("\"0\""), 2), 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400, IMPORT_400(FAILED("0.0"), 2), 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400, IMPORT_400(FAILED("null"), 2), 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400,
	  IMPORT_400("{\"insert_id\":\"dd\",\"message\":\"no index\"}", 2), 3,
	  MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400, IMPORT_400(FAILED("0") ",7", 2), 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400, IMPORT_400(FAILED("0") "," FAILED("9"), 2), 3,
	  MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400, "{\"code\":400,\"failed_records\":{\"index\":0}}",
	  3, MP_ACT_RETRY },
	/* ... or whose count does not add up */
	{ MP_EP_IMPORT, 400, IMPORT_400(FAILED("0"), 0), 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400, IMPORT_400(FAILED("0"), 3), 3, MP_ACT_RETRY },
	/* Mixpanel's 400 about the whole request */
	{ MP_EP_IMPORT, 400,
	  "{\"code\":400,\"error\":\"some data points in the request failed"
	  " validation\",\"status\":\"Bad Request\"}",
	  3, MP_ACT_REJECTED },
	/* a proxy's 400: not Mixpanel speaking */
	{ MP_EP_IMPORT, 400, "<html><title>400 Bad Request</title></html>", 3,
	  MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400, "bad", 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400, "", 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400, "{\"error\":\"bad\"}", 3, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 400, "{\"code\":200,\"num_records_imported\":3}", 3,
	  MP_ACT_RETRY },
	/* statuses that decide alone */
	{ MP_EP_IMPORT, 429, "{\"error\":\"Project exceeded rate limits\"}", 10,
	  MP_ACT_RETRY },
	{ MP_EP_IMPORT, 500, NULL, 10, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 502, "<html>", 10, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 503, NULL, 10, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 504, NULL, 10, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 408, NULL, 10, MP_ACT_RETRY },
	{ MP_EP_IMPORT, 413, "{\"error\":\"request exceeds max limit\"}", 10,
	  MP_ACT_SPLIT },
	{ MP_EP_IMPORT, 413, "", 1, MP_ACT_REJECTED },
	{ MP_EP_IMPORT, 401, "{\"error\":\"Invalid credentials\"}", 3,
	  MP_ACT_STOP_DEST },
	{ MP_EP_GROUPS, 403, "", 3, MP_ACT_STOP_DEST },
	{ MP_EP_IMPORT, 404, "Not Found", 3, MP_ACT_STOP_DEST },
	{ MP_EP_IMPORT, 301, "", 3, MP_ACT_STOP_DEST },
	/* /engage and /groups: status 1 only */
	{ MP_EP_ENGAGE, 200, "{\"status\":1,\"error\":null}", 5,
	  MP_ACT_DELIVERED },
	{ MP_EP_GROUPS, 200, "{\"status\":\"1\",\"error\":null}", 5,
	  MP_ACT_DELIVERED },
	{ MP_EP_ENGAGE, 200, "{\"status\":0,\"error\":\"bad $set\"}", 5,
	  MP_ACT_SPLIT },
	{ MP_EP_GROUPS, 200, "{\"status\":0,\"error\":\"bad $set\"}", 1,
	  MP_ACT_REJECTED },
	{ MP_EP_ENGAGE, 400, "{\"status\":0,\"error\":\"x\"}", 2,
	  MP_ACT_SPLIT },
	{ MP_EP_ENGAGE, 200, "{\"status\":0,\"error\":\"cut at the cap", 2,
	  MP_ACT_SPLIT },
	{ MP_EP_ENGAGE, 400, "{\"status\":1}", 2, MP_ACT_RETRY },
	{ MP_EP_ENGAGE, 200, "{\"status\":2}", 2, MP_ACT_RETRY },
	{ MP_EP_ENGAGE, 200, "{\"status\":true}", 2, MP_ACT_RETRY },
	{ MP_EP_ENGAGE, 200, "{\"status\":\"x\"}", 2, MP_ACT_RETRY },
	{ MP_EP_ENGAGE, 200, "{\"error\":null}", 2, MP_ACT_RETRY },
	{ MP_EP_ENGAGE, 200, "1", 2, MP_ACT_RETRY },
	{ MP_EP_ENGAGE, 200, "<html>", 1, MP_ACT_RETRY },
	{ MP_EP_ENGAGE, 200, "", 1, MP_ACT_RETRY },
	{ MP_EP_ENGAGE, 200, NULL, 1, MP_ACT_RETRY },
	{ MP_EP_ENGAGE, 201, "{\"status\":1}", 1, MP_ACT_RETRY },
	{ MP_EP_ENGAGE, 400, "<html>400 Bad Request</html>", 3, MP_ACT_RETRY },
	{ MP_EP_GROUPS, 400, "", 1, MP_ACT_RETRY },
	{ MP_EP_ENGAGE, 404, "", 1, MP_ACT_STOP_DEST },
	{ MP_EP_ENGAGE, 429, NULL, 1, MP_ACT_RETRY },
};

START_TEST(every_answer_leads_to_its_action)
{
	const row *r = &rows[_i];
	mp_answer a;

	mp_answer_classify(&a, r->ep, NULL, r->status, r->body,
			   r->body ? strlen(r->body) : 0, r->nrecords);
	ck_assert_msg(a.action == r->want,
		      "row %d: HTTP %ld %s on %d records: action %d, want %d"
		      " (%s)",
		      _i, r->status, r->body ? r->body : "(none)",
		      (int)r->nrecords, (int)a.action, (int)r->want, a.error);
	ck_assert_int_eq(a.status, r->status);
	if (a.action != MP_ACT_DELIVERED)
		ck_assert_msg(a.error[0] != '\0', "row %d: no error text", _i);
	if (a.action != MP_ACT_PARTIAL)
		ck_assert_uint_eq(a.nfailures, 0);
	mp_answer_free(&a);
}
END_TEST

START_TEST(failed_records_keep_mixpanels_reasons)
{
	const char *body = IMPORT_400(FAILED("0") ",{\"index\":2,\"insert_id\":"
						  "\"cc\",\"field\":\"event\","
						  "\"message\":\"too long\"}",
				      2);
	mp_answer a;

	mp_answer_classify(&a, MP_EP_IMPORT, NULL, 400, body, strlen(body), 4);
	ck_assert_int_eq(a.action, MP_ACT_PARTIAL);
	ck_assert_uint_eq(a.nfailures, 2);
	ck_assert_uint_eq(a.failures[0].index, 0);
	ck_assert_str_eq(a.failures[0].message, "properties.time: too old");
	ck_assert_uint_eq(a.failures[1].index, 2);
	ck_assert_str_eq(a.failures[1].message, "event: too long");
	ck_assert_ptr_nonnull(strstr(a.error, "HTTP 400"));
	ck_assert_ptr_nonnull(strstr(a.error, "failed validation"));
	mp_answer_free(&a);
}
END_TEST

START_TEST(errors_are_one_line_and_say_whose_answer)
{
	const char *html = "<html>\r\n<body>Welcome\tto the proxy</body>\n";
	mp_answer a;

	mp_answer_classify(&a, MP_EP_IMPORT, NULL, 200, html, strlen(html), 3);
	ck_assert_int_eq(a.action, MP_ACT_RETRY);
	ck_assert_ptr_null(strchr(a.error, '\n'));
	ck_assert_ptr_null(strchr(a.error, '\r'));
	ck_assert_ptr_nonnull(strstr(a.error, "not Mixpanel's answer"));
	ck_assert_ptr_nonnull(strstr(a.error, "Welcome to the proxy"));
	mp_answer_free(&a);
	mp_answer_classify(&a, MP_EP_IMPORT, NULL, 200, IMPORT_OK(1),
			   strlen(IMPORT_OK(1)), 3);
	ck_assert_ptr_nonnull(strstr(a.error, "does not match"));
	mp_answer_free(&a);
	mp_answer_classify(&a, MP_EP_IMPORT, "Operation timed out", 0, NULL, 0,
			   5);
	ck_assert_int_eq(a.action, MP_ACT_RETRY);
	ck_assert_int_eq(a.status, 0);
	ck_assert_str_eq(a.error, "Operation timed out");
	mp_answer_free(&a);
	mp_answer_free(NULL);
}
END_TEST

static Suite *answer_suite(void)
{
	Suite *s = suite_create("mp_answer");
	TCase *tc = tcase_create("pure");

	tcase_add_loop_test(tc, every_answer_leads_to_its_action, 0,
			    (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, failed_records_keep_mixpanels_reasons);
	tcase_add_test(tc, errors_are_one_line_and_say_whose_answer);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(answer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
