/* rules_catalogue.h - wrong rule definitions and the error each must give:
 * shared by the compiler's unit test and the end-to-end test */
#ifndef AUDSYNC_TESTS_RULES_CATALOGUE_H
#define AUDSYNC_TESTS_RULES_CATALOGUE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bad_rule {
	const char *key;
	int is_trait;
	const char *definition; /* NULL: conditions nested 40 deep */
	const char *error;	/* what the one-line error must contain */
} bad_rule;

#define EV "\"event\": \"Order Completed\""
/* 50 characters, for a value too long to quote whole */
#define X50 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
/* ten two-byte characters (U+00E9), for a value cut between characters */
#define E10 "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"

static const bad_rule bad_rules[] = {
	{ "bad_unknown_condition", 0, "{\"performd\": {" EV "}}",
	  "definition.performd: unknown condition" },
	{ "bad_unknown_key", 0, "{\"performed\": {" EV ", \"evnt\": 1}}",
	  "definition.performed.evnt: unknown key" },
	{ "bad_event_type", 0, "{\"performed\": {\"event\": 5}}",
	  "definition.performed.event: must be a non-empty string" },
	{ "bad_event_empty", 0, "{\"performed\": {\"event\": \"\"}}",
	  "definition.performed.event: must be a non-empty string" },
	{ "bad_event_missing", 0, "{\"performed\": {}}",
	  "definition.performed: \"event\" is missing" },
	{ "bad_performed_type", 0, "{\"performed\": \"Order Completed\"}",
	  "definition.performed: must be an object" },
	{ "bad_count_operator", 0,
	  "{\"and\": [{\"performed\": {" EV "}}, {\"performed\": {" EV
	  ", \"count\": {\"op\": \"=>\", \"value\": 1}}}]}",
	  "definition.and[1].performed.count.op: unknown operator \"=>\"" },
	{ "bad_count_negative", 0,
	  "{\"performed\": {" EV
	  ", \"count\": {\"op\": \">\", \"value\": -1}}}",
	  "definition.performed.count.value: must be a whole number from 0 "
	  "to 1000000000, not -1" },
	{ "bad_count_too_large", 0,
	  "{\"performed\": {" EV
	  ", \"count\": {\"op\": \">\", \"value\": 1000000001}}}",
	  "definition.performed.count.value: must be a whole number from 0 "
	  "to 1000000000, not 1000000001" },
	{ "bad_count_huge", 0,
	  "{\"performed\": {" EV ", \"count\": {\"op\": \">=\","
	  " \"value\": 100000000000000000000}}}",
	  "definition.performed.count.value: must be a whole number from 0 "
	  "to 1000000000, not a number too large to read" },
	{ "bad_count_fraction", 0,
	  "{\"performed\": {" EV
	  ", \"count\": {\"op\": \">=\", \"value\": 1.5}}}",
	  "definition.performed.count.value: must be a whole number from 0 "
	  "to 1000000000, not 1.5" },
	{ "bad_count_fraction_exponent", 0,
	  "{\"performed\": {" EV
	  ", \"count\": {\"op\": \">=\", \"value\": 2.50}}}",
	  "definition.performed.count.value: must be a whole number from 0 "
	  "to 1000000000, not 2.50" },
	{ "bad_count_too_large_point", 0,
	  "{\"performed\": {" EV
	  ", \"count\": {\"op\": \">=\", \"value\": 1000000001.0}}}",
	  "definition.performed.count.value: must be a whole number from 0 "
	  "to 1000000000, not 1000000001.0" },
	{ "bad_count_string", 0,
	  "{\"performed\": {" EV
	  ", \"count\": {\"op\": \">\", \"value\": \"2\"}}}",
	  "definition.performed.count.value: must be a whole number from 0 "
	  "to 1000000000, not \"2\"" },
	{ "bad_count_no_op", 0,
	  "{\"performed\": {" EV ", \"count\": {\"value\": 2}}}",
	  "definition.performed.count: \"op\" is missing" },
	{ "bad_and_empty", 0, "{\"and\": []}",
	  "definition.and: must be a non-empty list of conditions" },
	{ "bad_or_object", 0, "{\"or\": {}}",
	  "definition.or: must be a non-empty list of conditions" },
	{ "bad_not_list", 0, "{\"not\": []}",
	  "definition.not: a condition is an object with one key" },
	{ "bad_empty_object", 0, "{}",
	  "definition: a condition is an object with one key" },
	{ "bad_two_keys", 0,
	  "{\"performed\": {" EV "}, \"not\": {\"performed\": {" EV "}}}",
	  "definition: a condition is an object with one key" },
	{ "bad_list", 0, "[1]",
	  "definition: a condition is an object with one key" },
	{ "bad_where_object", 0, "{\"performed\": {" EV ", \"where\": {}}}",
	  "definition.performed.where: must be a list of filters" },
	{ "bad_where_operator", 0,
	  "{\"performed\": {" EV ", \"where\": [{\"property\": \"total\","
	  " \"op\": \"~\", \"value\": 1}]}}",
	  "definition.performed.where[0].op: unknown operator \"~\" (use = "
	  "!= > >= < <= contains not_contains starts_with ends_with exists "
	  "not_exists one_of none_of before_date after_date)" },
	{ "bad_where_no_property", 0,
	  "{\"performed\": {" EV
	  ", \"where\": [{\"op\": \"=\", \"value\": 1}]}}",
	  "definition.performed.where[0]: \"property\" is missing" },
	{ "bad_order_boolean", 0,
	  "{\"performed\": {" EV ", \"where\": [{\"property\": \"total\","
	  " \"op\": \">\", \"value\": true}]}}",
	  "definition.performed.where[0].value: operator > needs a number" },
	{ "bad_contains_number", 0,
	  "{\"performed\": {" EV ", \"where\": [{\"property\": \"sku\","
	  " \"op\": \"contains\", \"value\": 1}]}}",
	  "definition.performed.where[0].value: operator contains needs a "
	  "string" },
	{ "bad_exists_value", 0,
	  "{\"performed\": {" EV ", \"where\": [{\"property\": \"sku\","
	  " \"op\": \"exists\", \"value\": 1}]}}",
	  "definition.performed.where[0].value: operator exists takes no "
	  "value" },
	{ "bad_equal_no_value", 0,
	  "{\"performed\": {" EV ", \"where\": [{\"property\": \"sku\","
	  " \"op\": \"=\"}]}}",
	  "definition.performed.where[0]: \"value\" is missing" },
	{ "bad_one_of_empty", 0,
	  "{\"performed\": {" EV ", \"where\": [{\"property\": \"sku\","
	  " \"op\": \"one_of\", \"value\": []}]}}",
	  "definition.performed.where[0].value: operator one_of needs a "
	  "non-empty list" },
	{ "bad_one_of_null", 0,
	  "{\"performed\": {" EV ", \"where\": [{\"property\": \"sku\","
	  " \"op\": \"none_of\", \"value\": [\"a\", null]}]}}",
	  "definition.performed.where[0].value[1]: must be a string, a "
	  "number or a boolean" },
	{ "bad_number_huge", 0,
	  "{\"performed\": {" EV ", \"where\": [{\"property\": \"big\","
	  " \"op\": \"=\", \"value\": 100000000000000000000}]}}",
	  "definition.performed.where[0].value: a whole number beyond 64 "
	  "bits is not read exactly; write it with a decimal point" },
	{ "bad_number_huge_negative", 0,
	  "{\"trait\": {\"name\": \"score\", \"op\": \"none_of\","
	  " \"value\": [1, -9223372036854775809]}}",
	  "definition.trait.value[1]: a whole number beyond 64 bits" },
	{ "bad_date_value", 0,
	  "{\"trait\": {\"name\": \"signed_up\", \"op\": \"before_date\","
	  " \"value\": \"2026-02-30\"}}",
	  "definition.trait.value: operator before_date needs an ISO-8601 "
	  "time (\"2026-01-31\" or \"2026-01-31T12:00:00Z\"), not "
	  "\"2026-02-30\"" },
	{ "bad_within_unit", 0,
	  "{\"performed\": {" EV ", \"within\": \"30 parsecs\"}}",
	  "definition.performed.within: must be a positive interval of at "
	  "most 1000 years such as \"30 days\" or \"12 hours\", not "
	  "\"30 parsecs\"" },
	{ "bad_within_negative", 0,
	  "{\"performed\": {" EV ", \"within\": \"-5 days\"}}",
	  "definition.performed.within: must be a positive interval" },
	{ "bad_within_huge", 0,
	  "{\"performed\": {" EV ", \"within\": \"1000000 years\"}}",
	  "definition.performed.within: must be a positive interval" },
	{ "bad_within_hour_twice", 0,
	  "{\"performed\": {" EV ", \"within\": \"1 hour 1 hour\"}}",
	  "definition.performed.within: must be a positive interval of at "
	  "most 1000 years such as \"30 days\" or \"12 hours\", not "
	  "\"1 hour 1 hour\"" },
	{ "bad_within_day_twice", 0,
	  "{\"performed\": {" EV ", \"within\": \"1 day 1 day\"}}",
	  "definition.performed.within: must be a positive interval" },
	{ "bad_within_second_twice", 1,
	  "{\"event_counter\": {" EV ", \"within\": \"1 sec 30 seconds\"}}",
	  "definition.event_counter.within: must be a positive interval" },
	{ "bad_within_months", 0,
	  "{\"performed\": {" EV ", \"within\": \"12001 months\"}}",
	  "definition.performed.within: must be a positive interval of at "
	  "most 1000 years such as \"30 days\" or \"12 hours\", not "
	  "\"12001 months\"" },
	{ "bad_within_years_months", 0,
	  "{\"performed\": {" EV ", \"within\": \"999 years 13 months\"}}",
	  "definition.performed.within: must be a positive interval" },
	{ "bad_within_number", 0, "{\"performed\": {" EV ", \"within\": 30}}",
	  "definition.performed.within: must be a positive interval of at "
	  "most 1000 years such as \"30 days\" or \"12 hours\", not 30" },
	{ "bad_between_reversed", 0,
	  "{\"performed\": {" EV
	  ", \"between\": [\"2026-02-01\", \"2026-01-01\"]}}",
	  "definition.performed.between: the start must lie before the end" },
	{ "bad_between_one", 0,
	  "{\"performed\": {" EV ", \"between\": [\"2026-02-01\"]}}",
	  "definition.performed.between: must be a list of two times" },
	{ "bad_between_time", 0,
	  "{\"performed\": {" EV
	  ", \"between\": [\"2026-01-01\", \"next week\"]}}",
	  "definition.performed.between[1]: must be an ISO-8601 time "
	  "(\"2026-01-31\" or \"2026-01-31T12:00:00Z\"), not \"next week\"" },
	{ "bad_between_newline", 0,
	  "{\"performed\": {" EV
	  ", \"between\": [\"2026-01-01\", \"next\\nweek\"]}}",
	  "definition.performed.between[1]: must be an ISO-8601 time "
	  "(\"2026-01-31\" or \"2026-01-31T12:00:00Z\"), not "
	  "\"next\\nweek\"" },
	{ "bad_within_long", 0,
	  "{\"performed\": {" EV ", \"within\": \"" X50 X50 "\"}}",
	  "definition.performed.within: must be a positive interval of at "
	  "most 1000 years such as \"30 days\" or \"12 hours\", not \"" X50
	  "xxxxxxxxx..." },
	{ "bad_within_long_utf8", 0,
	  "{\"performed\": {" EV ", \"within\": \"" E10 E10 E10 E10 E10 E10 E10
	  "\"}}",
	  "definition.performed.within: must be a positive interval of at "
	  "most 1000 years such as \"30 days\" or \"12 hours\", not \"" E10 E10
	  "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9..." },
	{ "bad_within_and_between", 0,
	  "{\"performed\": {" EV ", \"within\": \"3 days\","
	  " \"between\": [\"2026-01-01\", \"2026-02-01\"]}}",
	  "definition.performed: within and between exclude each other" },
	{ "bad_trait_operator", 0,
	  "{\"trait\": {\"name\": \"plan\", \"op\": \"is\", \"value\": \"pro\"}}",
	  "definition.trait.op: unknown operator \"is\"" },
	{ "bad_trait_key", 0,
	  "{\"trait\": {\"name\": \"plan\", \"op\": \"=\", \"value\": \"pro\","
	  " \"x\": 1}}",
	  "definition.trait.x: unknown key" },
	{ "bad_member_missing", 0, "{\"member_of\": \"nobody\"}",
	  "definition.member_of: no computation has the key \"nobody\"" },
	{ "bad_member_trait", 0, "{\"member_of\": \"rules_trait\"}",
	  "definition.member_of: computation rules_trait is a trait" },
	{ "bad_member_cycle", 0, "{\"member_of\": \"cyc_a\"}",
	  "definition.member_of: computation cyc_a: definition.member_of: "
	  "computation cyc_b: definition.member_of: member_of makes a cycle: "
	  "cyc_a -> cyc_b -> cyc_a" },
	{ "bad_member_self", 0,
	  "{\"or\": [{\"performed\": {" EV "}}, {\"member_of\": "
	  "\"bad_member_self\"}]}",
	  "definition.or[1].member_of: member_of makes a cycle: "
	  "bad_member_self -> bad_member_self" },
	{ "bad_member_type", 0, "{\"member_of\": 7}",
	  "definition.member_of: must be an audience's key" },
	{ "bad_member_empty", 0, "{\"member_of\": \"\"}",
	  "definition.member_of: must be an audience's key (a string), not "
	  "an empty one" },
	{ "bad_null", 0, "null",
	  "definition: a condition is an object with one key (performed, not, "
	  "and, or, trait or member_of), not null" },
	{ "bad_number", 0, "5",
	  "definition: a condition is an object with one key (performed, not, "
	  "and, or, trait or member_of), not a number" },
	{ "bad_trait_null", 1, "null",
	  "definition: a computed trait is an object with one key" },
	{ "bad_member_sql_param", 0, "{\"member_of\": \"sql_dollar3\"}",
	  "definition.member_of: computation sql_dollar3: its definition_sql "
	  "uses $3" },
	{ "bad_deep", 0, NULL, "conditions nest deeper than 32 levels" },
	{ "bad_trait_kind", 1, "{\"counter\": {" EV "}}",
	  "definition.counter: unknown computed trait" },
	{ "bad_trait_fn", 1,
	  "{\"aggregation\": {\"fn\": \"median\", " EV
	  ", \"property\": \"total\"}}",
	  "definition.aggregation.fn: unknown function \"median\"" },
	{ "bad_trait_no_property", 1, "{\"most_frequent\": {" EV "}}",
	  "definition.most_frequent: \"property\" is missing" },
	{ "bad_trait_extra_key", 1,
	  "{\"event_counter\": {" EV ", \"property\": \"total\"}}",
	  "definition.event_counter.property: unknown key" },
	{ "bad_trait_condition", 1, "{\"performed\": {" EV "}}",
	  "definition.performed: unknown computed trait" },
	{ "bad_audience_trait_kind", 0, "{\"event_counter\": {" EV "}}",
	  "definition.event_counter: unknown condition" },
	{ "bad_trait_between", 1,
	  "{\"last\": {" EV ", \"property\": \"sku\","
	  " \"between\": [\"2026-01-01\", \"2026-01-01\"]}}",
	  "definition.last.between: the start must lie before the end" },
};
#define N_BAD_RULES ((int)(sizeof(bad_rules) / sizeof(bad_rules[0])))

/* The computations the catalogue's member_of rows name: kind, rule or
 * SQL. */
typedef struct helper_computation {
	const char *key;
	int is_trait;
	const char *definition;
	const char *definition_sql;
} helper_computation;

static const helper_computation helper_computations[] = {
	{ "cyc_a", 0, "{\"member_of\": \"cyc_b\"}", NULL },
	{ "cyc_b", 0, "{\"member_of\": \"cyc_a\"}", NULL },
	{ "rules_trait", 1, NULL,
	  "SELECT profile_id, 1 AS value FROM audsync.external_ids" },
	{ "sql_dollar3", 0, NULL,
	  "SELECT profile_id FROM audsync.events WHERE ts < $3" },
};
#define N_HELPERS                                                              \
	((int)(sizeof(helper_computations) / sizeof(helper_computations[0])))

/* Row i's definition (caller frees): the text, or 40 nested "not". */
static inline char *bad_rule_definition(int i)
{
	const char *inner = "{\"performed\": {" EV "}}";
	char *s;
	size_t n;
	int k, depth = 40;

	if (bad_rules[i].definition)
		return strdup(bad_rules[i].definition);
	n = strlen(inner) + (size_t)depth * 10 + 1;
	s = malloc(n);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (k = 0; k < depth; k++)
		strcat(s, "{\"not\": ");
	strcat(s, inner);
	for (k = 0; k < depth; k++)
		strcat(s, "}");
	return s;
}

#endif
