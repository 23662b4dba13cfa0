/* The router without sockets: (method, path, query, body, role) in,
 * (status, JSON) out, against a real store. */
#include <stdint.h>

#include "common.h"
#include "router.h"

static char *dir;
static tm_manager *tm;

static void setup(void)
{
	tm = tt_open_tmp(&dir, 0);
	tt_register(tm, "pub", TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE);
	tt_register(tm, "priv", 0);
}

static void teardown(void)
{
	tt_close_tmp(tm, dir);
}

/* Route one request; returns the parsed body, status in *status. */
static cJSON *route(const char *method, const char *path, const char *query,
                    const char *body, const char *role, int *status)
{
	srv_request rq = { method, path, query, body, body ? strlen(body) : 0, 0,
	                   role };
	srv_response rs;
	cJSON *j;

	srv_route(tm, &rq, &rs);
	ck_assert_ptr_nonnull(rs.body);
	j = cJSON_Parse(rs.body);
	ck_assert_msg(j != NULL, "not JSON: %s", rs.body);
	*status = rs.status;
	srv_response_free(&rs);
	return j;
}

/* Expect an error body of the seed's shape. */
static void expect_error(const char *method, const char *path, const char *query,
                         const char *body, const char *role, int status,
                         int code, const char *cls, const char *name)
{
	int st;
	cJSON *j = route(method, path, query, body, role, &st);
	cJSON *data = cJSON_GetObjectItem(j, "error_data");

	ck_assert_msg(st == status, "%s %s: status %d, expected %d", method, path,
	              st, status);
	ck_assert_int_eq(cJSON_GetObjectItem(j, "error_code")->valueint, code);
	ck_assert_str_eq(cJSON_GetObjectItem(j, "error_name")->valuestring, cls);
	ck_assert(cJSON_IsString(cJSON_GetObjectItem(j, "message")));
	ck_assert_str_eq(cJSON_GetObjectItem(data, "name")->valuestring, name);
	cJSON_Delete(j);
}

static void expect_wrong(const char *method, const char *path, const char *query,
                         const char *body)
{
	expect_error(method, path, query, body, "root", 400, 40, "WrongData",
	             "WRONG_DATA_TYPE");
}

static cJSON *ok(const char *method, const char *path, const char *query,
                 const char *body)
{
	int st;
	cJSON *j = route(method, path, query, body, "backend", &st);

	ck_assert_msg(st == 200, "%s %s: status %d", method, path, st);
	return j;
}

static void new_task(const char *path, char id[21])
{
	cJSON *j = ok("POST", path, NULL, NULL);

	snprintf(id, 21, "%s", cJSON_GetObjectItem(j, "task_id")->valuestring);
	cJSON_Delete(j);
}

START_TEST(missing_or_unknown_token_is_401)
{
	expect_error("GET", "/tasks/pub/recents/", NULL, NULL, NULL, 401, 21,
	             "AuthError", "UNAUTHORIZED");
	/* before anything else: even an unknown path */
	expect_error("GET", "/nowhere", NULL, NULL, NULL, 401, 21, "AuthError",
	             "UNAUTHORIZED");
}
END_TEST

START_TEST(other_roles_are_403)
{
	const char *roles[] = { "frontend", "", "Root", "admin" };

	for (size_t i = 0; i < 4; i++)
		expect_error("POST", "/tasks/pub/", NULL, NULL, roles[i], 403, 50,
		             "ForbiddenError", "FORBIDDEN");
	ck_assert(srv_role_allowed("root"));
	ck_assert(srv_role_allowed("manager"));
	ck_assert(srv_role_allowed("backend"));
	ck_assert(!srv_role_allowed(NULL));
}
END_TEST

START_TEST(unknown_paths_are_404)
{
	const char *paths[] = { "", "/", "tasks/pub/", "/tasks", "/tasks/",
	                        "/tasks/pub/x/", "/tasks/pub/recents/x",
	                        "/tasks//", "/tasks/private/pub/recents/x/",
	                        "/tasks/pub//", "/tasks/p%ub/", "/tasks/p%0/",
	                        "/tasks/p%00b/", "/x/pub/" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		expect_error("POST", paths[i], NULL, NULL, "root", 404, 60,
		             "NotFoundError", "NOT_FOUND");
}
END_TEST

START_TEST(wrong_method_is_405_with_allow)
{
	srv_request rq = { "GET", "/tasks/pub/", NULL, NULL, 0, 0, "root" };
	srv_response rs;

	srv_route(tm, &rq, &rs);
	ck_assert_int_eq(rs.status, 405);
	ck_assert_str_eq(rs.allow, "POST");
	srv_response_free(&rs);
	rq.method = "PUT";
	rq.path = "/tasks/private/priv/AAAAAAAAAAAAAAAAAAAA";
	srv_route(tm, &rq, &rs);
	ck_assert_int_eq(rs.status, 405);
	ck_assert_str_eq(rs.allow, "GET, PATCH, DELETE");
	srv_response_free(&rs);
	expect_error("get", "/tasks/pub/recents/", NULL, NULL, "root", 405, 70,
	             "MethodNotAllowed", "HTTP_METHOD_NOT_ALLOWED");
}
END_TEST

START_TEST(endpoints_reach_the_five_calls)
{
	char id[21];
	cJSON *j;

	new_task("/tasks/pub/", id);
	j = ok("GET", "/tasks/pub/recents", "amt=5", NULL);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "tasks")), 1);
	ck_assert(!cJSON_HasObjectItem(cJSON_GetArrayItem(
		cJSON_GetObjectItem(j, "tasks"), 0), "details"));
	cJSON_Delete(j);
	j = ok("GET", "/tasks/private/pub/recents/", NULL, NULL);
	ck_assert(cJSON_HasObjectItem(cJSON_GetArrayItem(
		cJSON_GetObjectItem(j, "tasks"), 0), "details"));
	cJSON_Delete(j);

	new_task("/tasks/private/priv", id);
	{
		char path[64];

		snprintf(path, sizeof(path), "/tasks/private/priv/%s/", id);
		cJSON_Delete(ok("GET", path, NULL, NULL));
		j = ok("PATCH", path, NULL, "{\"status\": \"RUNNING\"}");
		ck_assert_str_eq(cJSON_GetObjectItem(j, "status")->valuestring, "RUNNING");
		cJSON_Delete(j);
		j = ok("DELETE", path, NULL, NULL);
		ck_assert_str_eq(cJSON_GetObjectItem(j, "status")->valuestring,
		                 "CANCELLED_REQUESTED");
		cJSON_Delete(j);
		/* percent-encoded segments are decoded */
		snprintf(path, sizeof(path), "/tasks/private/%%70riv/%s", id);
		cJSON_Delete(ok("GET", path, NULL, NULL));
	}
}
END_TEST

/* GET /stats/ answers tm_stats(), behind the same checks as the task
 * endpoints. */
START_TEST(stats_answers_the_figures)
{
	const char *names[] = { "pub", "priv" };
	char id[21];
	srv_request rq = { "POST", "/stats/", NULL, NULL, 0, 0, "root" };
	srv_response rs;
	cJSON *j, *n;

	new_task("/tasks/private/priv/", id);
	j = ok("GET", "/stats/", NULL, NULL);
	n = cJSON_GetObjectItem(j, "names");
	for (size_t i = 0; i < 2; i++)
		ck_assert_msg(cJSON_IsObject(cJSON_GetObjectItem(n, names[i])),
		              "no figures for %s", names[i]);
	ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(n, "priv"),
	                                     "total")->valueint, 1);
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "queue_depth")));
	cJSON_Delete(j);
	cJSON_Delete(ok("GET", "/stats", "ignored=1", NULL));
	srv_route(tm, &rq, &rs);
	ck_assert_int_eq(rs.status, 405);
	ck_assert_str_eq(rs.allow, "GET");
	srv_response_free(&rs);
	expect_error("GET", "/stats/", NULL, NULL, NULL, 401, 21, "AuthError",
	             "UNAUTHORIZED");
	expect_error("GET", "/stats/", NULL, NULL, "frontend", 403, 50,
	             "ForbiddenError", "FORBIDDEN");
	expect_error("GET", "/stats/x/", NULL, NULL, "root", 404, 60,
	             "NotFoundError", "NOT_FOUND");
	expect_error("GET", "/tasks/stats/", NULL, NULL, "root", 405, 70,
	             "MethodNotAllowed", "HTTP_METHOD_NOT_ALLOWED");
}
END_TEST

START_TEST(library_errors_keep_their_class_and_code)
{
	char id[21], path[64];

	new_task("/tasks/pub/", id);
	expect_error("POST", "/tasks/pub/", NULL, NULL, "root", 400, 42,
	             "DuplicatedError", "TASK_ALREADY_RUNNING");
	expect_wrong("POST", "/tasks/priv/", NULL, NULL);      /* private name */
	expect_wrong("POST", "/tasks/nope/", NULL, NULL);
	expect_wrong("POST", "/tasks/a%2Fb/", NULL, NULL);     /* name "a/b" */
	expect_wrong("GET", "/tasks/private/priv/short/", NULL, NULL);
	expect_error("GET", "/tasks/private/priv/AAAAAAAAAAAAAAAAAAAA/", NULL, NULL,
	             "root", 404, 60, "NotFoundError", "TASK_NOT_FOUND");
	snprintf(path, sizeof(path), "/tasks/private/priv/%s/", id);
	expect_error("GET", path, NULL, NULL, "root", 404, 60, "NotFoundError",
	             "TASK_NOT_FOUND");
	snprintf(path, sizeof(path), "/tasks/private/pub/%s/", id);
	cJSON_Delete(ok("PATCH", path, NULL, "{\"completed\": true}"));
	expect_error("PATCH", path, NULL, "{\"status\": \"RUNNING\"}", "root", 400,
	             40, "WrongData", "LOWER_STATUS_NOT_ALLOWED");
	expect_wrong("PATCH", path, NULL, NULL);
	expect_wrong("PATCH", path, NULL, "{\"status\": \"REQUEST_SENT\"}");
}
END_TEST

START_TEST(list_query_is_checked)
{
	const char *bad[] = { "page=0", "page=-1", "page=x", "page=", "page",
	                      "amt=0", "amt=65", "amt=1.0", "amt=%zz", "page=1&page=1",
	                      "amt=9999999999", "page=%2B1", "amt=+1" };
	cJSON *j;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_wrong("GET", "/tasks/pub/recents/", bad[i], NULL);
	j = ok("GET", "/tasks/pub/recents/", "page=2&amt=64&x=%zz&&=", NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(j, "next_page")->valueint, 3);
	cJSON_Delete(j);
	j = ok("GET", "/tasks/pub/recents/", "page=%33", NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(j, "next_page")->valueint, 4);
	cJSON_Delete(j);
	j = ok("GET", "/tasks/pub/recents/", "", NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(j, "next_page")->valueint, 2);
	cJSON_Delete(j);
}
END_TEST

START_TEST(bodies_are_checked_before_the_library)
{
	char deep[200] = "";
	srv_request rq = { "POST", "/tasks/priv/", NULL, "{\"a\":\0}", 7, 0, "root" };
	srv_response rs;

	ck_assert_ptr_null(srv_body_problem("{\"a\": \"\\\"{[\"}", 13));
	ck_assert_ptr_nonnull(srv_body_problem("\xff", 1));
	ck_assert_ptr_nonnull(srv_body_problem("\"\xc0\x80\"", 4));     /* overlong */
	ck_assert_ptr_nonnull(srv_body_problem("\"\xed\xa0\x80\"", 5)); /* surrogate */
	ck_assert_ptr_null(srv_body_problem("\"\xe2\x82\xac\"", 5));
	for (int i = 0; i < SRV_JSON_DEPTH_MAX; i++)
		strcat(deep, "[");
	ck_assert_ptr_null(srv_body_problem(deep, strlen(deep)));
	strcat(deep, "[");
	ck_assert_ptr_nonnull(srv_body_problem(deep, strlen(deep)));

	rq.path = "/tasks/private/priv/";
	srv_route(tm, &rq, &rs);   /* a NUL inside the body */
	ck_assert_int_eq(rs.status, 400);
	srv_response_free(&rs);
	expect_wrong("POST", "/tasks/private/priv/", NULL, deep);
	expect_wrong("POST", "/tasks/private/priv/", NULL, "{");
	expect_wrong("POST", "/tasks/private/priv/", NULL, "[]");
	expect_wrong("POST", "/tasks/private/priv/", NULL, "{\"x\": 1}");
	rq.body = "{}";
	rq.body_len = 2;
	rq.body_too_large = 1;
	srv_route(tm, &rq, &rs);
	ck_assert_int_eq(rs.status, 400);
	ck_assert_ptr_nonnull(strstr(rs.body, "1 MiB"));
	srv_response_free(&rs);
}
END_TEST

START_TEST(refresh_token_is_never_answered)
{
	const char *secret = "s3cr3t-refresh-token-value";
	char body[128], id[21], path[64];
	int st;
	cJSON *j;
	char *text;

	snprintf(body, sizeof(body), "{\"refresh_token\": \"%s\"}", secret);
	j = route("POST", "/tasks/private/priv/", NULL, body, "root", &st);
	ck_assert_int_eq(st, 200);
	snprintf(id, sizeof(id), "%s", cJSON_GetObjectItem(j, "task_id")->valuestring);
	cJSON_Delete(j);
	snprintf(path, sizeof(path), "/tasks/private/priv/%s/", id);
	for (int i = 0; i < 3; i++) {
		static const char *const m[] = { "GET", "PATCH", "DELETE" };
		j = route(m[i], path, NULL, i == 1 ? "{\"details\": {}}" : NULL, "root", &st);
		ck_assert_int_eq(st, 200);
		text = cJSON_PrintUnformatted(j);
		ck_assert_ptr_null(strstr(text, secret));
		cJSON_free(text);
		cJSON_Delete(j);
	}
}
END_TEST

START_TEST(error_messages_are_printable_ascii)
{
	srv_response rs;

	srv_error(&rs, 400, 40, "WrongData", "WRONG_DATA_TYPE", "bad \xff\x01 name\n");
	ck_assert_ptr_nonnull(rs.body);
	ck_assert_ptr_nonnull(strstr(rs.body, "\"bad ?? name?\""));
	srv_response_free(&rs);
}
END_TEST

/* A small fuzz: random methods, paths, queries and bodies.  Every answer
 * is JSON with a known status: 401 exactly without a role, 200 only for a
 * role that may call, Allow exactly with 405, an error body with the code
 * of its status; and the store stays consistent. */
START_TEST(random_requests_get_json_answers)
{
	static const char *const methods[] = { "GET", "POST", "PATCH", "DELETE", "PUT", "" };
	static const char *const parts[] = { "/", "tasks", "private", "pub", "priv",
	                                     "recents", "%", "%2F", "..", "AAAAAAAAAAAAAAAAAAAA",
	                                     "\xff", "?", "" };
	static const char *const bodies[] = { NULL, "{", "{}", "[[[[", "{\"status\":\"RUNNING\"}",
	                                      "{\"completed\":true}", "\"\\", "{\"details\":{\"x\":null}}" };
	/* The error_code of each error status (400 is also 42, DuplicatedError). */
	static const struct { int status, code; } codes[] = {
		{ 400, 40 }, { 401, 21 }, { 403, 50 }, { 404, 60 }, { 405, 70 },
	};
	uint32_t seed = 12345;
	char path[256];
	cJSON *j;

	for (int i = 0; i < 3000; i++) {
		srv_request rq;
		srv_response rs;
		int n;

		path[0] = '\0';
		seed = seed * 1103515245u + 12345u;
		n = (int)(seed >> 16) % 7;
		for (int k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			strcat(path, parts[(seed >> 16) % (sizeof(parts) / sizeof(parts[0]))]);
			if ((seed >> 8) & 1)
				strcat(path, "/");
		}
		seed = seed * 1103515245u + 12345u;
		memset(&rq, 0, sizeof(rq));
		rq.method = methods[(seed >> 16) % 6];
		rq.path = path;
		rq.query = (seed >> 4) & 1 ? "page=1&amt=2" : (seed >> 5) & 1 ? "amt=%" : NULL;
		rq.body = bodies[(seed >> 20) % 8];
		rq.body_len = rq.body ? strlen(rq.body) : 0;
		rq.role = (seed >> 6) & 3 ? "root" : (seed >> 7) & 1 ? "frontend" : NULL;
		srv_route(tm, &rq, &rs);
		ck_assert_ptr_nonnull(rs.body);
		j = cJSON_Parse(rs.body);
		ck_assert_msg(j != NULL, "not JSON for %s %s: %s", rq.method, path, rs.body);
		ck_assert_msg((rs.status == 401) == (rq.role == NULL), "%s %s as %s: %d",
		              rq.method, path, rq.role ? rq.role : "(none)", rs.status);
		ck_assert_msg(rs.status != 200 || srv_role_allowed(rq.role),
		              "%s %s served to %s", rq.method, path, rq.role);
		ck_assert_msg((rs.allow != NULL) == (rs.status == 405), "%s %s: %d, Allow %s",
		              rq.method, path, rs.status, rs.allow ? rs.allow : "(none)");
		if (rs.status == 200) {
			ck_assert(cJSON_IsObject(j));
		} else {
			const cJSON *code = cJSON_GetObjectItem(j, "error_code");
			int want = 0;

			for (size_t k = 0; k < sizeof(codes) / sizeof(codes[0]); k++)
				if (codes[k].status == rs.status)
					want = codes[k].code;
			ck_assert_msg(want != 0, "%s %s: status %d", rq.method, path, rs.status);
			ck_assert_msg(cJSON_IsNumber(code) && (code->valueint == want ||
			              (rs.status == 400 && code->valueint == 42)),
			              "%s %s: status %d with %s", rq.method, path, rs.status,
			              rs.body);
		}
		cJSON_Delete(j);
		srv_response_free(&rs);
	}
	tt_assert_check(tm, -1);
}
END_TEST

START_TEST(refusals_that_need_no_body_are_known_before_it)
{
	static const struct {
		const char *method, *path, *role;
		int refused;
	} cases[] = {
		{ "POST", "/tasks/pub/", NULL, 1 },           /* 401 */
		{ "POST", "/nowhere/", "root", 1 },           /* 404 */
		{ "POST", "/tasks/pub/recents/", "root", 1 }, /* 405 */
		{ "POST", "/tasks/pub/", "frontend", 1 },     /* 403 */
		{ "POST", "/tasks/pub/", "root", 0 },
		{ "POST", "/tasks/private/nope/", "backend", 0 }, /* 400: the body decides */
		{ "PATCH", "/tasks/private/priv/x/", "manager", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		srv_request rq = { cases[i].method, cases[i].path, NULL, NULL, 0, 0,
		                   cases[i].role };
		srv_response rs;

		ck_assert_msg(srv_route_refuses(&rq) == cases[i].refused, "case %zu", i);
		/* ... and srv_route() agrees. */
		srv_route(tm, &rq, &rs);
		if (cases[i].refused)
			ck_assert_int_ne(rs.status, 200);
		srv_response_free(&rs);
	}
}
END_TEST

TT_MAIN_FIXTURE("router", setup, teardown,
	missing_or_unknown_token_is_401,
	other_roles_are_403,
	unknown_paths_are_404,
	wrong_method_is_405_with_allow,
	endpoints_reach_the_five_calls,
	stats_answers_the_figures,
	library_errors_keep_their_class_and_code,
	list_query_is_checked,
	bodies_are_checked_before_the_library,
	refresh_token_is_never_answered,
	error_messages_are_printable_ascii,
	refusals_that_need_no_body_are_known_before_it,
	random_requests_get_json_answers)
