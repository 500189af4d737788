/* check_segment_map.c - the seed's Segment-to-Mixpanel mapping, row by row
 *
 * Each row is one Segment-spec message, the destination's settings, and
 * the exact Mixpanel records it must produce (compared as JSON values),
 * for every example and setting of seed/mixpanel-destination.md. JSON is
 * written with ' for " to keep the rows readable; "@iid" stands for the
 * $insert_id derived from the row's messageId and type.
 */
#include "audsync/mp_payload.h"
#include "audsync/segment_map.h"

#include "unit.h"

#include <check.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define MS   "1768471200000"
#define DATE "2026-01-15T10:00:00"
#define HDR  "'messageId':'m1','timestamp':'2026-01-15T10:00:00.000Z',"
/* The head of an /engage update for distinct_id D. */
#define UPD(d) "'$token':'tok','$distinct_id':'" d "','$ip':'0',"
/* The fields every event of user U (no anonymousId) carries. */
#define EV(u)                                                                  \
	"'distinct_id':'" u "','time':" MS ",'$insert_id':'@iid','ip':0,"      \
	"'$user_id':'" u "','mp_lib':'audsync'"

typedef struct row {
	const char *name;
	int use_people;
	const char *settings; /* destination settings, NULL: {} */
	const char *message;
	segment_result result;
	/* "ENDPOINT RECORD" lines, '\n'-separated; for SKIPPED and
	 * INVALID, a piece of the reason instead. */
	const char *expect;
} row;

static const row rows[] = {
	/* ---- Identify ---- */
	{ "identify: the seed's example, special traits renamed", 1, NULL,
	  "{" HDR "'type':'identify','userId':'userId123','traits':{"
	  "'firstName':'James','lastName':'Gibbon'}}",
	  SEGMENT_MAPPED,
	  "/engage {" UPD("userId123") "'$set':{'$first_name':'James',"
				       "'$last_name':'Gibbon'}}" },
	{ "identify: every special trait of the table", 1, NULL,
	  "{" HDR "'type':'identify','userId':'u1','traits':{"
	  "'created':'2020-01-01T00:00:00','email':'a@b.c','firstName':'A',"
	  "'lastName':'B','name':'A B','username':'ab','phone':'+331',"
	  "'plan':'pro'}}",
	  SEGMENT_MAPPED,
	  "/engage {" UPD("u1") "'$set':{'$created':'2020-01-01T00:00:00',"
				"'$email':'a@b.c','$first_name':'A',"
				"'$last_name':'B','$name':'A B',"
				"'$username':'ab','$phone':'+331',"
				"'plan':'pro'}}" },
	{ "identify: People off sends nothing", 0, NULL,
	  "{" HDR "'type':'identify','userId':'u1','traits':{'a':1}}",
	  SEGMENT_SKIPPED, "use_people is off" },
	{ "identify without a userId: people properties on the anonymous id", 1,
	  NULL,
	  "{" HDR "'type':'identify','anonymousId':'anon-7','traits':{"
	  "'email':'hello@example.com','name':'Ian Taylor'}}",
	  SEGMENT_MAPPED,
	  "/engage {" UPD("anon-7") "'$set':{'$email':'hello@example.com',"
				    "'$name':'Ian Taylor'}}" },
	{ "identify without any id", 1, NULL,
	  "{" HDR "'type':'identify','traits':{'a':1}}", SEGMENT_INVALID,
	  "no valid userId or anonymousId" },
	{ "identify: a userId Mixpanel refuses counts as none", 1, NULL,
	  "{" HDR "'type':'identify','userId':'null','traits':{'a':1}}",
	  SEGMENT_INVALID, "no valid userId or anonymousId" },
	{ "identify: arrays are unioned, an empty one clears", 1, NULL,
	  "{" HDR "'type':'identify','userId':'u1','traits':{"
	  "'tags':['a','b'],'old':[],'n':1}}",
	  SEGMENT_MAPPED,
	  "/engage {" UPD("u1") "'$set':{'old':[],'n':1}}\n"
				"/engage {" UPD(
					"u1") "'$union':{'tags':['a','b']}}" },
	{ "identify: explicit people_properties, special traits always go", 1,
	  "{'set_all_traits_by_default':false,'people_properties':['plan']}",
	  "{" HDR "'type':'identify','userId':'u1','traits':{"
	  "'email':'a@b.c','plan':'pro','friends':42}}",
	  SEGMENT_MAPPED,
	  "/engage {" UPD("u1") "'$set':{'$email':'a@b.c','plan':'pro'}}" },
	{ "identify: the device token becomes $ios_devices (seed: push)", 1,
	  NULL,
	  "{" HDR "'type':'identify','userId':'019mr8mf4r','traits':{"
	  "'name':'Michael Bolton','email':'mbolton@example.com',"
	  "'plan':'Enterprise','friends':42},'context':{'device':{'token':"
	  "'ff15bc0c20c4aa6cd50854ff165fd265c838e5405bfeb9571066395b8c9da449'"
	  "}}}",
	  SEGMENT_MAPPED,
	  "/engage {" UPD("019mr8mf4r") "'$set':{'$name':'Michael Bolton',"
					"'$email':'mbolton@example.com',"
					"'plan':'Enterprise','friends':42}}\n"
					"/engage {" UPD(
						"019mr8mf4r") "'$union':{"
							      "'$ios_devices':["
							      "'ff15bc0c20c4aa6"
							      "cd50854ff165fd26"
							      "5c838e5405bfeb95"
							      "71066395b8c9da44"
							      "9']}}" },
	/* Seed: "$ios_devices. This only works on iOS." A token from a
	 * device that says it is something else is not sent so; one that
	 * says nothing goes, as the seed's example and Segment's own
	 * integration (integration-mixpanel, identify) send it. */
	{ "identify: an Android device's token is no $ios_devices", 1, NULL,
	  "{" HDR "'type':'identify','userId':'u1','traits':{'a':1},"
	  "'context':{'device':{'type':'android','token':'fcm1'}}}",
	  SEGMENT_MAPPED, "/engage {" UPD("u1") "'$set':{'a':1}}" },
	{ "identify: nor is a token from an OS other than iOS", 1, NULL,
	  "{" HDR "'type':'identify','userId':'u1','traits':{'a':1},"
	  "'context':{'device':{'token':'fcm1'},'os':{'name':'Android'}}}",
	  SEGMENT_MAPPED, "/engage {" UPD("u1") "'$set':{'a':1}}" },
	{ "identify: device.type ios, in any case, sends the token", 1, NULL,
	  "{" HDR "'type':'identify','userId':'u1','traits':{'a':1},"
	  "'context':{'device':{'type':'iOS','token':'apns1'}}}",
	  SEGMENT_MAPPED,
	  "/engage {" UPD(
		  "u1") "'$set':{'a':1}}\n"
			"/engage {" UPD(
				"u1") "'$union':{'$ios_devices':['apns1']}}" },
	{ "identify: os.name iOS sends the token", 1, NULL,
	  "{" HDR "'type':'identify','userId':'u1','traits':{'a':1},"
	  "'context':{'device':{'token':'apns1'},'os':{'name':'iOS'}}}",
	  SEGMENT_MAPPED,
	  "/engage {" UPD(
		  "u1") "'$set':{'a':1}}\n"
			"/engage {" UPD(
				"u1") "'$union':{'$ios_devices':['apns1']}}" },
	{ "identify: context.active false bypasses Last Seen", 1, NULL,
	  "{" HDR "'type':'identify','userId':'12345','traits':{"
	  "'name':'Frank'},'context':{'active':false}}",
	  SEGMENT_MAPPED,
	  "/engage {'$token':'tok','$distinct_id':'12345','$ignore_time':true,"
	  "'$ip':'0','$set':{'$name':'Frank'}}" },
	{ "identify: context.ip is geolocated", 1, NULL,
	  "{" HDR "'type':'identify','userId':'u1','traits':{'a':1},"
	  "'context':{'ip':'203.0.113.9'}}",
	  SEGMENT_MAPPED,
	  "/engage {'$token':'tok','$distinct_id':'u1','$ip':'203.0.113.9',"
	  "'$set':{'a':1}}" },
	{ "identify: traits that are not an object", 1, NULL,
	  "{" HDR "'type':'identify','userId':'u1','traits':[1]}",
	  SEGMENT_INVALID, "traits is not an object" },

	/* ---- Track ---- */
	{ "track: the seed's example", 0, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'Button Clicked'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Button Clicked','properties':{" EV("u1") "}}" },
	{ "track: context.campaign becomes utm_*, revenue without People", 0,
	  NULL,
	  "{" HDR "'type':'track','userId':'019mr8mf4r','event':"
	  "'Purchased an Item','properties':{'revenue':39.95,"
	  "'shippingMethod':'2-day'},'context':{'campaign':{"
	  "'name':'TPS Innovation Newsletter','source':'Newsletter',"
	  "'medium':'email','term':'tps reports','content':'image link'}}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Purchased an Item','properties':{"
	  "'utm_source':'Newsletter','utm_medium':'email',"
	  "'utm_term':'tps reports','utm_content':'image link',"
	  "'utm_campaign':'TPS Innovation Newsletter','revenue':39.95,"
	  "'shippingMethod':'2-day'," EV("019mr8mf4r") "}}" },
	{ "track: revenue with People is a charge in $transactions", 1, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'Item Purchased',"
	  "'properties':{'revenue':39.95}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Item Purchased','properties':{'revenue':39.95," EV(
		  "u1") "}}\n"
			"/engage {" UPD("u1") "'$append':{'$transactions':{"
					      "'$time':'" DATE "',"
					      "'$amount':39.95}}}" },
	{ "track: a revenue of 0 is no charge", 1, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'Refund Check',"
	  "'properties':{'revenue':0}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Refund Check','properties':{'revenue':0," EV(
		  "u1") "}}" },
	{ "track: revenue as a numeric string", 1, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'Paid',"
	  "'properties':{'revenue':'12.5'}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Paid','properties':{'revenue':'12.5'," EV(
		  "u1") "}}\n"
			"/engage {" UPD("u1") "'$append':{'$transactions':{"
					      "'$time':'" DATE "',"
					      "'$amount':12.5}}}" },
	/* Seed: track maps properties "directly"; revenue only makes the
	 * People charge. A revenue that is no amount is an ordinary
	 * property: the event goes, the charge does not (a warning). */
	{ "track: a revenue that is not a number goes without a charge", 1,
	  NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'Paid',"
	  "'properties':{'revenue':'lots'}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Paid','properties':{'revenue':'lots'," EV(
		  "u1") "}}" },
	{ "track: a revenue beyond a double goes without a charge", 1, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'Paid',"
	  "'properties':{'revenue':1e400}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Paid','properties':{'revenue':1e400," EV(
		  "u1") "}}" },
	{ "track: a revenue that is an object, People off", 0, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'Paid',"
	  "'properties':{'revenue':{'v':1}}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Paid','properties':{'revenue':{'v':1}," EV(
		  "u1") "}}" },
	{ "track: context.ip 0 turns geolocation off (seed)", 0, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'Ignore My IP',"
	  "'context':{'ip':0}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Ignore My IP','properties':{" EV("u1") "}}" },
	{ "track: context.ip \"0\" as text turns geolocation off too", 0, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'E',"
	  "'context':{'ip':'0'}}",
	  SEGMENT_MAPPED, "/import {'event':'E','properties':{" EV("u1") "}}" },
	{ "track: a timestamp's milliseconds are kept", 0, NULL,
	  "{'messageId':'m1','timestamp':'2026-01-15T10:00:00.789Z',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'E','properties':{'distinct_id':'u1','time':"
	  "1768471200789,'$insert_id':'@iid','ip':0,'$user_id':'u1',"
	  "'mp_lib':'audsync'}}" },
	{ "track: context.ip is the event's ip", 0, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'E',"
	  "'context':{'ip':'198.51.100.4'}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'E','properties':{'distinct_id':'u1','time':" MS
	  ",'$insert_id':'@iid','ip':'198.51.100.4','$user_id':'u1',"
	  "'mp_lib':'audsync'}}" },
	{ "track: length and bucket are never sent as they are", 0, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'E','properties':{"
	  "'length':3,'bucket':'b','distinct_id':'x','token':'t'}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'E','properties':{'segment_length':3,"
	  "'segment_bucket':'b'," EV("u1") "}}" },
	{ "track: the context fields Mixpanel's libraries send", 0, NULL,
	  "{" HDR "'type':'track','userId':'u1','anonymousId':'a1',"
	  "'event':'E','context':{'app':{'build':'42','version':'1.2'},"
	  "'page':{'url':'https://x/y','referrer':'https://r'},"
	  "'device':{'name':'iPhone','manufacturer':'Apple',"
	  "'model':'iPhone7,2'},'os':{'name':'iOS','version':'17.1'},"
	  "'screen':{'height':800,'width':400},'network':{'carrier':'T',"
	  "'wifi':true,'bluetooth':false,'cellular':true}}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'E','properties':{'$app_release':'42',"
	  "'$app_version':'1.2','$current_url':'https://x/y',"
	  "'$referrer':'https://r','$device':'iPhone','$manufacturer':'Apple',"
	  "'$model':'iPhone7,2','$os':'iOS','$os_version':'17.1',"
	  "'$screen_height':800,'$screen_width':400,'$carrier':'T',"
	  "'$wifi':true,'$bluetooth_enabled':false,'$has_telephone':true,"
	  "'distinct_id':'u1','time':" MS ",'$insert_id':'@iid','ip':0,"
	  "'$device_id':'a1','$user_id':'u1','mp_lib':'audsync'}}" },
	{ "track: an anonymous event", 0, NULL,
	  "{" HDR "'type':'track','anonymousId':'a1','event':'E'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'E','properties':{'distinct_id':'a1','time':" MS
	  ",'$insert_id':'@iid','ip':0,'$device_id':'a1',"
	  "'mp_lib':'audsync'}}" },
	{ "track: event_increments add one and set Last <event>", 1,
	  "{'event_increments':['logged in']}",
	  "{" HDR "'type':'track','userId':'u1','event':'Logged In'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Logged In','properties':{" EV(
		  "u1") "}}\n"
			"/engage {" UPD(
				"u1") "'$add':{'Logged In':1}}\n"
				      "/engage {" UPD(
					      "u1") "'$set':{'Last Logged In':'" DATE
						    "'}}" },
	{ "track: increments only for known users", 1,
	  "{'event_increments':['Logged In']}",
	  "{" HDR "'type':'track','anonymousId':'a1','event':'Logged In'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Logged In','properties':{'distinct_id':'a1',"
	  "'time':" MS ",'$insert_id':'@iid','ip':0,'$device_id':'a1',"
	  "'mp_lib':'audsync'}}" },
	{ "track: increments need People", 0,
	  "{'event_increments':['Logged In'],"
	  "'prop_increments':['items purchased']}",
	  "{" HDR "'type':'track','userId':'u1','event':'Logged In',"
	  "'properties':{'items purchased':5}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Logged In','properties':{'items purchased':5," EV(
		  "u1") "}}" },
	{ "track: prop_increments add a property's number", 1,
	  "{'prop_increments':['items purchased','missing','text']}",
	  "{" HDR "'type':'track','userId':'u1','event':'Bought',"
	  "'properties':{'items purchased':5,'text':'x'}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Bought','properties':{'items purchased':5,"
	  "'text':'x'," EV(
		  "u1") "}}\n"
			"/engage {" UPD("u1") "'$add':{'items purchased':5}}" },
	{ "track: super_properties from the message's traits", 0,
	  "{'super_properties':['plan','email']}",
	  "{" HDR "'type':'track','userId':'u1','event':'E','context':{"
	  "'traits':{'plan':'pro','email':'a@b.c','age':3}}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'E','properties':{'plan':'pro','$email':'a@b.c'," EV(
		  "u1") "}}" },
	{ "track: the message's properties win over its context", 0, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'E','properties':{"
	  "'utm_source':'mine'},'context':{'campaign':{'source':'ctx'}}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'E','properties':{'utm_source':'mine'," EV(
		  "u1") "}}" },
	{ "track: a time with an offset", 0, NULL,
	  "{'messageId':'m1','timestamp':'2026-01-15T12:00:00+02:00',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_MAPPED, "/import {'event':'E','properties':{" EV("u1") "}}" },
	{ "track: without an event name", 0, NULL,
	  "{" HDR "'type':'track','userId':'u1'}", SEGMENT_INVALID,
	  "no event name" },
	{ "track: without an id", 0, NULL,
	  "{" HDR "'type':'track','event':'E'}", SEGMENT_INVALID,
	  "no valid userId or anonymousId" },

	/* ---- Page and screen ---- */
	{ "page: consolidated by default", 0, NULL,
	  "{" HDR "'type':'page','userId':'u1','name':'Pricing',"
	  "'properties':{'url':'https://x/p'}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Loaded a Page','properties':{'url':'https://x/p',"
	  "'name':'Pricing'," EV("u1") "}}" },
	{ "page: consolidated wins over every other mode", 0,
	  "{'track_all_pages':true,'track_categorized_pages':true,"
	  "'track_named_pages':true}",
	  "{" HDR "'type':'page','userId':'u1','category':'Docs','name':'API'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Loaded a Page','properties':{'name':'API',"
	  "'category':'Docs'," EV("u1") "}}" },
	{ "page: track all pages, one event only", 0,
	  "{'consolidated_page_calls':false,'track_all_pages':true,"
	  "'track_categorized_pages':true,'track_named_pages':true}",
	  "{" HDR "'type':'page','userId':'u1','category':'Docs','name':'API'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Loaded a Page','properties':{'name':'API',"
	  "'category':'Docs'," EV("u1") "}}" },
	{ "page: categorized and named: category first, both in the name", 0,
	  "{'consolidated_page_calls':false,'track_categorized_pages':true,"
	  "'track_named_pages':true}",
	  "{" HDR "'type':'page','userId':'u1','category':'Docs','name':'API'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Viewed Docs API Page','properties':{'name':'API',"
	  "'category':'Docs'," EV("u1") "}}" },
	{ "page: categorized, a category alone", 0,
	  "{'consolidated_page_calls':false,'track_categorized_pages':true,"
	  "'track_named_pages':true}",
	  "{" HDR "'type':'page','userId':'u1','category':'Docs'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Viewed Docs Page','properties':{"
	  "'category':'Docs'," EV("u1") "}}" },
	{ "page: named, and its event incremented", 1,
	  "{'consolidated_page_calls':false,'track_named_pages':true,"
	  "'event_increments':['Viewed Signup Page']}",
	  "{" HDR "'type':'page','userId':'u1','name':'Signup'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Viewed Signup Page','properties':{"
	  "'name':'Signup'," EV(
		  "u1") "}}\n"
			"/engage {" UPD(
				"u1") "'$add':{'Viewed Signup Page':1}}\n"
				      "/engage {" UPD(
					      "u1") "'$set':{'Last Viewed "
						    "Signup Page':'" DATE
						    "'}}" },
	{ "page: named pages only, a page without a name", 0,
	  "{'consolidated_page_calls':false,'track_named_pages':true}",
	  "{" HDR "'type':'page','userId':'u1','category':'Docs'}",
	  SEGMENT_SKIPPED, "no page setting" },
	{ "page: every mode off", 0, "{'consolidated_page_calls':false}",
	  "{" HDR "'type':'page','userId':'u1','name':'A'}", SEGMENT_SKIPPED,
	  "no page setting" },
	{ "screen: consolidated", 0, NULL,
	  "{" HDR "'type':'screen','userId':'u1','name':'Listing'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Loaded a Screen','properties':{'name':'Listing'," EV(
		  "u1") "}}" },
	{ "screen: named", 0,
	  "{'consolidated_page_calls':false,'track_named_pages':true}",
	  "{" HDR "'type':'screen','userId':'u1','name':'Listing'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Viewed Listing Screen','properties':{"
	  "'name':'Listing'," EV("u1") "}}" },

	/* ---- Group ---- */
	{ "group: the seed's example with its identifier trait", 0,
	  "{'group_identifier_traits':['company_id']}",
	  "{" HDR "'type':'group','userId':'u1',"
	  "'groupId':'0e8c78ea9d97a7b8185e8632','traits':{'name':'Initech',"
	  "'company_id':'0e8c78ea9d97a7b8185e8632','industry':'Technology',"
	  "'employees':329,'plan':'enterprise','total billed':830}}",
	  SEGMENT_MAPPED,
	  "/groups {'$token':'tok','$group_key':'company_id',"
	  "'$group_id':'0e8c78ea9d97a7b8185e8632','$set':{'name':'Initech',"
	  "'company_id':'0e8c78ea9d97a7b8185e8632','industry':'Technology',"
	  "'employees':329,'plan':'enterprise','total billed':830}}" },
	{ "group: without a matching trait it is ignored", 0,
	  "{'group_identifier_traits':['org_id']}",
	  "{" HDR "'type':'group','userId':'u1','groupId':'g',"
	  "'traits':{'company_id':'c'}}",
	  SEGMENT_SKIPPED, "group_identifier_traits" },
	{ "group: without the setting it is ignored", 0, NULL,
	  "{" HDR "'type':'group','userId':'u1','groupId':'g',"
	  "'traits':{'company_id':'c'}}",
	  SEGMENT_SKIPPED, "group_identifier_traits" },

	/* ---- Alias ---- */
	{ "alias: the seed's server-side example", 0, NULL,
	  "{" HDR "'type':'alias','previousId':'92fh49fqh9849hf',"
	  "'userId':'12345'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'$create_alias','properties':{"
	  "'distinct_id':'92fh49fqh9849hf','alias':'12345','time':" MS
	  ",'$insert_id':'@iid','ip':0}}" },
	{ "alias: without a previousId", 0, NULL,
	  "{" HDR "'type':'alias','userId':'12345'}", SEGMENT_INVALID,
	  "previousId" },
	{ "alias: an anonymousId is no userId", 0, NULL,
	  "{" HDR "'type':'alias','previousId':'p1','anonymousId':'a1'}",
	  SEGMENT_INVALID, "userId" },

	/* ---- Bad input ---- */
	{ "an unknown type", 1, NULL,
	  "{" HDR "'type':'purchase','userId':'u1'}", SEGMENT_INVALID,
	  "unknown type \"purchase\"" },
	{ "no type", 1, NULL, "{" HDR "'userId':'u1'}", SEGMENT_INVALID,
	  "type is missing" },
	{ "no messageId", 1, NULL,
	  "{'timestamp':'2026-01-15T10:00:00Z','type':'track',"
	  "'userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "messageId is missing" },
	{ "no timestamp", 1, NULL,
	  "{'messageId':'m1','type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "timestamp is missing" },
	{ "a timestamp that is not a time", 1, NULL,
	  "{'messageId':'m1','timestamp':'yesterday','type':'track',"
	  "'userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "not an ISO-8601" },
	/* The offset's hours are cut short: nothing past the text is read
	 * (ASan saw the read beyond it). */
	{ "a timestamp whose offset ends after its sign", 1, NULL,
	  "{'messageId':'m1','timestamp':'2026-01-15T10:00:00.000-Z',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "not an ISO-8601" },
	{ "a timestamp whose offset has one digit", 1, NULL,
	  "{'messageId':'m1','timestamp':'2026-01-15T10:00:00+1',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "not an ISO-8601" },
	/* A day, an hour or an offset that does not exist is refused, not
	 * carried into the next month (RFC 3339 5.6 and 5.7). */
	{ "February 30th", 0, NULL,
	  "{'messageId':'m1','timestamp':'2026-02-30T10:00:00Z',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "timestamp is not an ISO-8601 time that exists" },
	{ "February 29th of a common year", 0, NULL,
	  "{'messageId':'m1','timestamp':'2026-02-29T10:00:00Z',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "timestamp is not an ISO-8601 time that exists" },
	{ "February 29th of 2100 (not a leap year)", 0, NULL,
	  "{'messageId':'m1','timestamp':'2100-02-29T10:00:00Z',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "timestamp is not an ISO-8601 time that exists" },
	{ "April 31st", 0, NULL,
	  "{'messageId':'m1','timestamp':'2026-04-31T10:00:00Z',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "timestamp is not an ISO-8601 time that exists" },
	{ "February 29th of a leap year", 0, NULL,
	  "{'messageId':'m1','timestamp':'2028-02-29T10:00:00Z',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'E','properties':{'distinct_id':'u1','time':"
	  "1835431200000,'$insert_id':'@iid','ip':0,'$user_id':'u1',"
	  "'mp_lib':'audsync'}}" },
	{ "an offset of +99:99", 0, NULL,
	  "{'messageId':'m1','timestamp':'2026-01-15T10:00:00+99:99',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "timestamp is not an ISO-8601 time that exists" },
	{ "an offset of 24 hours", 0, NULL,
	  "{'messageId':'m1','timestamp':'2026-01-15T10:00:00-24:00',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "timestamp is not an ISO-8601 time that exists" },
	{ "an offset of 60 minutes", 0, NULL,
	  "{'messageId':'m1','timestamp':'2026-01-15T10:00:00+0160',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "timestamp is not an ISO-8601 time that exists" },
	{ "an offset of -23:59", 0, NULL,
	  "{'messageId':'m1','timestamp':'2026-01-15T10:00:00-23:59',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_MAPPED,
	  "/import {'event':'E','properties':{'distinct_id':'u1','time':"
	  "1768557540000,'$insert_id':'@iid','ip':0,'$user_id':'u1',"
	  "'mp_lib':'audsync'}}" },
	{ "a leap second", 0, NULL,
	  "{'messageId':'m1','timestamp':'2026-01-15T10:00:60Z',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "timestamp is not an ISO-8601 time that exists" },
	{ "a decimal point without digits", 0, NULL,
	  "{'messageId':'m1','timestamp':'2026-01-15T10:00:00.Z',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "timestamp is not an ISO-8601 time that exists" },
	{ "a timestamp before 1971", 1, NULL,
	  "{'messageId':'m1','timestamp':'1970-06-01T00:00:00Z',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "before 1971" },
	/* A field of the wrong type is named as such, not as missing. */
	{ "a messageId that is a number", 1, NULL,
	  "{'messageId':123,'timestamp':'2026-01-15T10:00:00Z',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "messageId is not a string" },
	{ "a type that is a number", 1, NULL,
	  "{" HDR "'type':5,'userId':'u1','event':'E'}", SEGMENT_INVALID,
	  "type is not a string" },
	{ "an event name that is a number", 1, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':123}", SEGMENT_INVALID,
	  "event is not a string" },
	/* Segment's libraries refuse a userId that is not a string
	 * (analytics-next: "userId/anonymousId/previousId/groupId must be
	 * string"), and a number has no one text form (1e3, 1000.0). */
	{ "a userId that is a number", 1, NULL,
	  "{" HDR "'type':'track','userId':123,'event':'E'}", SEGMENT_INVALID,
	  "userId is not a string" },
	{ "an anonymousId that is an object", 1, NULL,
	  "{" HDR "'type':'track','anonymousId':{'a':1},'event':'E'}",
	  SEGMENT_INVALID, "anonymousId is not a string" },
	{ "a previousId that is a number", 0, NULL,
	  "{" HDR "'type':'alias','previousId':77,'userId':'u77'}",
	  SEGMENT_INVALID, "previousId is not a string" },
	{ "a timestamp that is a number", 1, NULL,
	  "{'messageId':'m1','timestamp':1768471200,'type':'track',"
	  "'userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "timestamp is not a string" },
	/* U+0000 would end the text where a C string, a distinct_id or a
	 * PostgreSQL text is needed: "k\u0000a" and "k\u0000b" would be
	 * one messageId, and the second message dropped as sent. */
	{ "a messageId holding U+0000", 1, NULL,
	  "{'messageId':'k\\u0000a','timestamp':'2026-01-15T10:00:00Z',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "messageId holds U+0000" },
	{ "a type holding U+0000", 1, NULL,
	  "{" HDR "'type':'track\\u0000x','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "type holds U+0000" },
	{ "a userId holding U+0000", 1, NULL,
	  "{" HDR "'type':'track','userId':'u1\\u0000x','event':'E'}",
	  SEGMENT_INVALID, "userId holds U+0000" },
	{ "an anonymousId holding U+0000", 1, NULL,
	  "{" HDR "'type':'track','anonymousId':'a\\u0000','event':'E'}",
	  SEGMENT_INVALID, "anonymousId holds U+0000" },
	{ "a previousId holding U+0000", 0, NULL,
	  "{" HDR "'type':'alias','previousId':'p\\u0000q','userId':'u1'}",
	  SEGMENT_INVALID, "previousId holds U+0000" },
	{ "an event name holding U+0000", 1, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'Paid\\u0000x'}",
	  SEGMENT_INVALID, "event holds U+0000" },
	{ "a timestamp holding U+0000", 1, NULL,
	  "{'messageId':'m1','timestamp':'2026-01-15T10:00:00Z\\u0000x',"
	  "'type':'track','userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "timestamp holds U+0000" },
	{ "a page name holding U+0000", 0, NULL,
	  "{" HDR "'type':'page','userId':'u1','name':'Ho\\u0000me'}",
	  SEGMENT_INVALID, "name holds U+0000" },
	{ "a page name from the properties holding U+0000", 0,
	  "{'consolidated_page_calls':false,'track_named_pages':true}",
	  "{" HDR "'type':'page','userId':'u1','properties':{"
	  "'name':'Ho\\u0000me'}}",
	  SEGMENT_INVALID, "properties.name holds U+0000" },
	{ "a page category holding U+0000", 0, NULL,
	  "{" HDR "'type':'page','userId':'u1','category':'D\\u0000'}",
	  SEGMENT_INVALID, "category holds U+0000" },
	{ "a context.ip holding U+0000", 1, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'E',"
	  "'context':{'ip':'1.2.3.4\\u0000x'}}",
	  SEGMENT_INVALID, "context.ip holds U+0000" },
	{ "a device token holding U+0000", 1, NULL,
	  "{" HDR "'type':'identify','userId':'u1','traits':{'a':1},"
	  "'context':{'device':{'type':'ios','token':'ff\\u0000'}}}",
	  SEGMENT_INVALID, "context.device.token holds U+0000" },
	{ "a group identifier holding U+0000", 0,
	  "{'group_identifier_traits':['company_id']}",
	  "{" HDR "'type':'group','userId':'u1','traits':{"
	  "'company_id':'c\\u0000d'}}",
	  SEGMENT_INVALID, "traits.company_id holds U+0000" },
	/* A property's or a trait's value is JSON all the way: U+0000 is
	 * carried as the escape it came as, never cut. */
	{ "a property value holding U+0000 is sent whole", 0, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'E','properties':{"
	  "'q':'a\\u0000b'}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'E','properties':{'q':'a\\u0000b'," EV("u1") "}}" },
	{ "a trait value holding U+0000 is sent whole", 1, NULL,
	  "{" HDR "'type':'identify','userId':'u1','traits':{'q':'a\\u0000b'}}",
	  SEGMENT_MAPPED, "/engage {" UPD("u1") "'$set':{'q':'a\\u0000b'}}" },
	{ "not JSON", 1, NULL, "{'type':'track',", SEGMENT_INVALID,
	  "not valid JSON" },
	{ "JSON that is not an object", 1, NULL, "['a']", SEGMENT_INVALID,
	  "not a JSON object" },
	{ "two objects on one line", 1, NULL, "{} {}", SEGMENT_INVALID,
	  "not valid JSON" },
	/* What goes out is strict JSON: what is not comes back here, with
	 * its line, instead of failing a whole batch at Mixpanel. */
	{ "a property that is not UTF-8", 0, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'E',"
	  "'properties':{'name':'caf\xe9'}}",
	  SEGMENT_INVALID, "a string is not valid UTF-8" },
	{ "a lone UTF-16 surrogate", 0, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'E\\ud83d'}",
	  SEGMENT_INVALID, "a lone UTF-16 surrogate" },
	{ "a comment (json-c's lenient mode took it)", 0, NULL,
	  "{" HDR "'type':'track',/* c */'userId':'u1','event':'E'}",
	  SEGMENT_INVALID, "not valid JSON" },
	{ "escapes are decoded, and written back as JSON", 0, NULL,
	  "{" HDR "'type':'track','userId':'u1','event':'Caf\\u00e9 \\ud83d"
	  "\\ude00','properties':{'q':'a\\'b\\\\c\\/'}}",
	  SEGMENT_MAPPED,
	  "/import {'event':'Caf\xc3\xa9 \xf0\x9f\x98\x80','properties':{" EV(
		  "u1") ",'q':'a\\'b\\\\c/'}}" },
};
#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

/* text with every ' turned into ". A new string. */
static char *dq(const char *text)
{
	char *s = strdup(text), *p;

	for (p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	return s;
}

/* Replaces "@iid" in s (a new string, freed) by iid. */
static char *with_iid(char *s, const char *iid)
{
	char *at = strstr(s, "@iid"), *out;

	if (!at)
		return s;
	out = malloc(strlen(s) + MP_INSERT_ID_LEN + 1);
	memcpy(out, s, (size_t)(at - s));
	strcpy(out + (at - s), iid);
	strcat(out, at + 4);
	free(s);
	return out;
}

/* len bytes of JSON text as an object (NULL when not JSON). */
static json_object *parse_n(const char *text, size_t len)
{
	char *copy = strndup(text, len);
	json_object *o = json_tokener_parse(copy);

	free(copy);
	return o;
}

static const char *ep_name(mp_endpoint ep)
{
	return ep == MP_EP_ENGAGE   ? "/engage"
	       : ep == MP_EP_GROUPS ? "/groups"
				    : "/import";
}

static void settings_of(segment_settings *out, const row *r)
{
	char *text = dq(r->settings ? r->settings : "{}"), err[300];
	json_object *o = json_tokener_parse(text);

	ck_assert_msg(o != NULL, "%s: settings are not JSON", r->name);
	ck_assert_msg(segment_settings_parse(out, o, "tok", r->use_people, err,
					     sizeof(err)) == 0,
		      "%s: %s", r->name, err);
	json_object_put(o);
	free(text);
}

/* The $insert_id the row's message must carry. */
static void row_iid(char out[MP_INSERT_ID_LEN + 1], const char *message)
{
	json_object *m = json_tokener_parse(message), *v;
	const char *parts[3] = { "segment", "", "" };

	if (m && json_object_object_get_ex(m, "messageId", &v))
		parts[1] = json_object_get_string(v);
	if (m && json_object_object_get_ex(m, "type", &v))
		parts[2] = json_object_get_string(v);
	mp_insert_id(out, parts, 3);
	json_object_put(m);
}

static void check_calls(const row *r, const segment_calls *c, const char *iid)
{
	char *want = with_iid(dq(r->expect), iid), *line, *save = NULL;
	int i = 0;

	for (line = strtok_r(want, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), i++) {
		char *sp = strchr(line, ' ');
		json_object *w, *g;
		const char *rec;
		size_t len;

		ck_assert_msg(i < c->n, "%s: call %d missing", r->name, i);
		*sp = '\0';
		ck_assert_msg(strcmp(ep_name(c->call[i].ep), line) == 0,
			      "%s: call %d goes to %s, not %s", r->name, i,
			      ep_name(c->call[i].ep), line);
		rec = segment_call_record(c, i, &len);
		w = json_tokener_parse(sp + 1);
		ck_assert_msg(w != NULL, "%s: expected record %d not JSON",
			      r->name, i);
		g = parse_n(rec, len);
		ck_assert_msg(g && json_object_equal(w, g),
			      "%s: call %d\n got  %.*s\n want %s", r->name, i,
			      (int)len, rec, sp + 1);
		json_object_put(w);
		json_object_put(g);
	}
	ck_assert_msg(i == c->n, "%s: %d calls, expected %d", r->name, c->n, i);
	free(want);
}

START_TEST(each_seed_example_maps_to_its_exact_records)
{
	const row *r = &rows[_i];
	segment_settings s;
	segment_calls c;
	char *msg = dq(r->message), iid[MP_INSERT_ID_LEN + 1];
	segment_result got;

	settings_of(&s, r);
	segment_calls_init(&c);
	got = segment_map_text(&c, msg, strlen(msg), &s);
	ck_assert_msg(got == r->result, "%s: result %d, expected %d (%s)",
		      r->name, got, r->result, c.reason);
	if (got == SEGMENT_MAPPED) {
		row_iid(iid, msg);
		check_calls(r, &c, iid);
		ck_assert_str_eq(segment_calls_message_id(&c), "m1");
	} else {
		ck_assert_int_eq(c.n, 0);
		ck_assert_msg(strstr(c.reason, r->expect) != NULL,
			      "%s: reason \"%s\" does not say \"%s\"", r->name,
			      c.reason, r->expect);
	}
	segment_calls_free(&c);
	segment_settings_free(&s);
	free(msg);
}
END_TEST

/* What the mapping says beside a mapped message: only the charge that
 * could not be made. */
static const char *warning_of(int use_people, const char *revenue)
{
	static char reason[AUDSYNC_ERR_LEN];
	segment_settings s;
	segment_calls c;
	row r = { "warning", use_people, NULL, NULL, SEGMENT_MAPPED, NULL };
	char msg[256];

	snprintf(msg, sizeof(msg),
		 "{\"messageId\":\"m1\",\"timestamp\":\"2026-01-15T10:00:00Z\","
		 "\"type\":\"track\",\"userId\":\"u1\",\"event\":\"Paid\","
		 "\"properties\":{\"revenue\":%s}}",
		 revenue);
	settings_of(&s, &r);
	segment_calls_init(&c);
	ck_assert_int_eq(segment_map_text(&c, msg, strlen(msg), &s),
			 SEGMENT_MAPPED);
	snprintf(reason, sizeof(reason), "%s", c.reason);
	segment_calls_free(&c);
	segment_settings_free(&s);
	return reason;
}

START_TEST(a_revenue_that_is_no_amount_is_a_warning_with_people_only)
{
	ck_assert_str_eq(warning_of(1, "\"lots\""),
			 "properties.revenue is not a number: the event "
			 "was sent, with no charge to $transactions");
	ck_assert_str_eq(warning_of(0, "\"lots\""), "");
	ck_assert_str_eq(warning_of(1, "12"), "");
}
END_TEST

START_TEST(a_message_over_the_record_limit_is_refused)
{
	/* one byte over the limit */
	size_t n = SEGMENT_MAX_MESSAGE + 1, i;
	char *msg = malloc(n + 1), want[32];
	segment_settings s;
	segment_calls c;
	row r = { "1 MB + 1", 1, NULL, "", SEGMENT_INVALID, "" };
	const char *head = "{\"messageId\":\"m1\",\"timestamp\":"
			   "\"2026-01-15T10:00:00Z\",\"type\":\"track\","
			   "\"userId\":\"u1\",\"event\":\"E\",\"properties\":"
			   "{\"blob\":\"";

	strcpy(msg, head);
	for (i = strlen(head); i < n - 3; i++)
		msg[i] = 'x';
	strcpy(msg + n - 3, "\"}}");
	settings_of(&s, &r);
	segment_calls_init(&c);
	ck_assert_int_eq(segment_map_text(&c, msg, n, &s), SEGMENT_INVALID);
	snprintf(want, sizeof(want), "%zu bytes", n);
	ck_assert_msg(strstr(c.reason, want), "%s", c.reason);
	ck_assert_int_eq(c.n, 0);
	segment_calls_free(&c);
	segment_settings_free(&s);
	free(msg);
}
END_TEST

START_TEST(insert_ids_follow_the_message_id_only)
{
	const char *a = "{\"messageId\":\"a\",\"timestamp\":\"2026-01-15T10:"
			"00:00Z\",\"type\":\"track\",\"userId\":\"u1\","
			"\"event\":\"E\"}";
	const char *a2 = "{\"messageId\":\"a\",\"timestamp\":\"2026-01-15T10:"
			 "00:00Z\",\"type\":\"track\",\"userId\":\"u1\","
			 "\"event\":\"E\",\"properties\":{\"x\":1}}";
	const char *b = "{\"messageId\":\"b\",\"timestamp\":\"2026-01-15T10:"
			"00:00Z\",\"type\":\"track\",\"userId\":\"u1\","
			"\"event\":\"E\"}";
	const char *msgs[3] = { a, a2, b };
	char ids[3][64];
	segment_settings s;
	segment_calls c;
	row r = { "ids", 0, NULL, "", SEGMENT_MAPPED, "" };
	int i;

	settings_of(&s, &r);
	segment_calls_init(&c);
	for (i = 0; i < 3; i++) {
		json_object *e, *p, *v;
		size_t len;
		const char *rec;

		ck_assert_int_eq(
			segment_map_text(&c, msgs[i], strlen(msgs[i]), &s),
			SEGMENT_MAPPED);
		rec = segment_call_record(&c, 0, &len);
		e = parse_n(rec, len);
		json_object_object_get_ex(e, "properties", &p);
		json_object_object_get_ex(p, "$insert_id", &v);
		snprintf(ids[i], sizeof(ids[i]), "%s",
			 json_object_get_string(v));
		ck_assert_uint_eq(strlen(ids[i]), 36);
		ck_assert_uint_eq(strspn(ids[i], "0123456789abcdef-"), 36);
		json_object_put(e);
	}
	ck_assert_str_eq(ids[0], ids[1]);
	ck_assert_str_ne(ids[0], ids[2]);
	segment_calls_free(&c);
	segment_settings_free(&s);
}
END_TEST

/* The distinct_id of a track call sent with a userId of len bytes and the
 * anonymousId "anon-7", in out. */
static void track_distinct_id(char *out, size_t outlen, size_t len)
{
	char *uid = malloc(len + 1), *msg = malloc(len + 256);
	json_object *e, *p, *v;
	segment_settings set;
	segment_calls c;
	row r = { "long userId", 0, NULL, "", SEGMENT_MAPPED, "" };
	const char *rec;
	size_t n;

	memset(uid, 'u', len);
	uid[len] = '\0';
	snprintf(msg, len + 256,
		 "{\"messageId\":\"m1\",\"timestamp\":"
		 "\"2026-01-15T10:00:00Z\",\"type\":\"track\","
		 "\"userId\":\"%s\",\"anonymousId\":\"anon-7\","
		 "\"event\":\"E\"}",
		 uid);
	settings_of(&set, &r);
	segment_calls_init(&c);
	ck_assert_int_eq(segment_map_text(&c, msg, strlen(msg), &set),
			 SEGMENT_MAPPED);
	rec = segment_call_record(&c, 0, &n);
	e = parse_n(rec, n);
	ck_assert(json_object_object_get_ex(e, "properties", &p));
	ck_assert(json_object_object_get_ex(p, "distinct_id", &v));
	snprintf(out, outlen, "%s", json_object_get_string(v));
	json_object_put(e);
	segment_calls_free(&c);
	segment_settings_free(&set);
	free(msg);
	free(uid);
}

/* Mixpanel cuts ids at 255 bytes: a longer userId would merge people
 * there, so the event goes to the anonymousId instead. */
START_TEST(a_user_id_over_255_bytes_gives_way_to_the_anonymous_id)
{
	char got[512];

	track_distinct_id(got, sizeof(got), 255);
	ck_assert_uint_eq(strlen(got), 255);
	track_distinct_id(got, sizeof(got), 256);
	ck_assert_str_eq(got, "anon-7");
}
END_TEST

START_TEST(wrong_settings_are_refused_naming_the_key)
{
	const char *bad[][2] = {
		{ "{\"consolidated_page_calls\":\"yes\"}",
		  "consolidated_page_calls" },
		{ "{\"people_properties\":[1]}", "people_properties" },
		{ "{\"group_identifier_traits\":\"company_id\"}",
		  "group_identifier_traits" },
		{ "{\"event_increments\":[\"\"]}", "event_increments" },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_object *o = json_tokener_parse(bad[i][0]);
		segment_settings s;
		char err[300];

		ck_assert_int_eq(
			segment_settings_parse(&s, o, "t", 1, err, sizeof(err)),
			-1);
		ck_assert_msg(strstr(err, bad[i][1]), "%s", err);
		json_object_put(o);
	}
	ck_assert(segment_is_setting("track_named_pages"));
	ck_assert(!segment_is_setting("enter_event"));
}
END_TEST

/* Each key of the event's properties appears once in its text, whatever
 * tiers name it, and the first tier wins. */
START_TEST(colliding_names_are_sent_once)
{
	const char *msg =
		"{'messageId':'m','timestamp':'2026-01-15T10:00:00Z',"
		"'type':'page','userId':'u1','name':'Home','properties':{"
		"'name':'own','utm_source':'own','length':1,"
		"'segment_length':2,'distinct_id':'x','mp_lib':'x',"
		"'$os':'own','plan':'own'},'context':{'os':{'name':'ctx'},"
		"'campaign':{'source':'ctx','medium':'ctx'},'traits':{"
		"'email':'e','$email':'e2','plan':'trait','utm_medium':'t'}}}";
	row r = { "collide",
		  0,
		  "{'super_properties':['email','$email','plan','utm_medium']}",
		  "",
		  SEGMENT_MAPPED,
		  "" };
	const char *want[][2] = {
		{ "name", "\"Home\"" },	     { "utm_source", "\"own\"" },
		{ "segment_length", "1" },   { "distinct_id", "\"u1\"" },
		{ "mp_lib", "\"audsync\"" }, { "$os", "\"own\"" },
		{ "plan", "\"own\"" },	     { "utm_medium", "\"ctx\"" },
		{ "$email", "\"e\"" },
	};
	segment_settings s;
	segment_calls c;
	char *text = dq(msg), *rec, key[64];
	json_object *e, *props;
	size_t len, i;

	settings_of(&s, &r);
	segment_calls_init(&c);
	ck_assert_int_eq(segment_map_text(&c, text, strlen(text), &s),
			 SEGMENT_MAPPED);
	/* The record first: strndup's arguments have no order, and len is
	 * set by segment_call_record. */
	rec = (char *)segment_call_record(&c, 0, &len);
	rec = strndup(rec, len);
	e = json_tokener_parse(rec);
	ck_assert(json_object_object_get_ex(e, "properties", &props));
	json_object_object_foreach(props, k, v)
	{
		const char *p = rec;
		int n = 0;

		(void)v;
		snprintf(key, sizeof(key), "\"%s\":", k);
		for (p = strstr(p, key); p; p = strstr(p + 1, key))
			n++;
		ck_assert_msg(n == 1, "%s appears %d times in %s", k, n, rec);
	}
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		json_object *v = NULL;

		ck_assert_msg(json_object_object_get_ex(props, want[i][0], &v),
			      "no %s in %s", want[i][0], rec);
		ck_assert_str_eq(json_object_to_json_string_ext(
					 v, JSON_C_TO_STRING_PLAIN),
				 want[i][1]);
	}
	json_object_put(e);
	free(rec);
	free(text);
	segment_calls_free(&c);
	segment_settings_free(&s);
}
END_TEST

static Suite *segment_map_suite(void)
{
	Suite *s = suite_create("segment_map");
	TCase *t = tcase_create("seed");

	tcase_add_loop_test(t, each_seed_example_maps_to_its_exact_records, 0,
			    (int)N_ROWS);
	tcase_add_test(t, a_message_over_the_record_limit_is_refused);
	tcase_add_test(
		t, a_revenue_that_is_no_amount_is_a_warning_with_people_only);
	tcase_add_test(t, insert_ids_follow_the_message_id_only);
	tcase_add_test(t,
		       a_user_id_over_255_bytes_gives_way_to_the_anonymous_id);
	tcase_add_test(t, wrong_settings_are_refused_naming_the_key);
	tcase_add_test(t, colliding_names_are_sent_once);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return ut_run_suite(segment_map_suite());
}
