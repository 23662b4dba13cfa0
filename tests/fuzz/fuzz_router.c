/* Fuzz the HTTP router (examples/server/router.c) on a real no-sync store
 * holding the eight seed names, registered as the server registers them
 * (with their validate hooks, no handlers: nothing runs).
 *
 * Input: one flags byte, then "ROLE\nMETHOD\nPATH\nQUERY\nBODY".
 *   flags bit 0: the transport dropped an oversize body (body_too_large);
 *   flags bit 1: no body at all (body NULL), whatever follows.
 *   ROLE ""  : no or unknown token (role NULL).
 *   QUERY "" : no query.
 *   "@ID" in PATH stands for the id of the newest task still active, or a
 *   well-formed id of no task, so GET, PATCH and DELETE reach real tasks.
 * Missing fields are empty; BODY absent means no body.
 *
 * Beyond no crash, no leak and no undefined behaviour, every answer must
 * hold the contract of the server (doc/http.md, "Errors" and "The
 * endpoints"):
 * - the status is 200, 400, 401, 403, 404 or 405 (a 500 on a healthy store
 *   is a bug), the body is JSON, Allow comes with 405 and only then;
 * - an error body has exactly the seed's four keys, the error_code and
 *   class of its status, a printable ASCII message;
 * - 401 exactly when there is no role; 200 only for root, manager, backend
 *   and never for a body the transport dropped as too large;
 * - a refused request and every GET commit no write transaction;
 * - an accepted trigger stored a REQUEST_SENT task whose private view does
 *   not hold the refresh token; PATCH and DELETE never lower a status;
 * - every task document has the fields of a task (doc/contract.md, "The
 *   task"). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_store.h"
#include "jobs.h"
#include "router.h"

#define NO_TASK "AAAAAAAAAAAAAAAAAAAA"

static tm_manager *tm;
static srv_jobs jobs;
static unsigned long n_inputs;

/* The active task "@ID" names. */
static struct {
	char name[TM_NAME_MAX + 1];
	char id[TM_TASK_ID_LEN + 1];
} cur;

/* The eight seed names, registered as the server does, without handlers. */
static const struct {
	const char *name;
	unsigned flags;
	int (*validate)(const char *, void *);
} names[] = {
	{ "ml_model_retrain", TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE, NULL },
	{ "item_popularity_score_recalibrate", TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE, NULL },
	{ "ml_new_users", TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE, NULL },
	{ "ml_new_items", TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE, NULL },
	{ "data_import", 0, srv_validate_import },
	{ "reco_export", 0, srv_validate_reco },
	{ "user_id_whitelist_export", 0, srv_validate_whitelist },
	{ "analytics_report_export", 0, srv_validate_report },
};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

#define fail fz_fail

static void write_table(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		fail("cannot write %s", path);
}

static void setup(void)
{
	tm_options o = fz_options("router");
	const char *tables = fz_tmpdir("tables");

	write_table(tables, "users.csv", "user_id,age\n1,20\n2,30\n");
	write_table(tables, "items.csv", "item_id,price\n1,10\n");
	tm = fz_open(&o);
	jobs.tm = tm;
	jobs.tables_dir = tables;
	jobs.simulate_s = 0;
	for (size_t i = 0; i < N_NAMES; i++)
		fz_register(tm, names[i].name, names[i].flags, names[i].validate, &jobs);
}

static int rank(const char *status)
{
	return fz_rank(status);
}

static const char *str(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static int is_task_id(const char *s)
{
	if (s == NULL || strlen(s) != TM_TASK_ID_LEN)
		return 0;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) || (unsigned char)*p > 0x7f)
			return 0;
	return 1;
}

/* The fields every view of a task has; `details` only when private. */
static void check_task(const cJSON *t, int private_view, const char *body)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(t, "start_time");
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "warnings");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(t, "details");

	if (!cJSON_IsObject(t) || !is_task_id(str(t, "task_id")) ||
	    str(t, "name") == NULL || rank(str(t, "status")) < 0 ||
	    str(t, "progress") == NULL || !cJSON_IsArray(w) ||
	    !cJSON_IsNumber(st) || st->valuedouble < -150000000000.0 ||
	    st->valuedouble > 3500000000.0)
		fail("a task without the fields of a task: %s", body);
	if (private_view >= 0 && (d != NULL) != private_view)
		fail("details %s in a %s view: %s", d ? "present" : "absent",
		     private_view ? "private" : "public", body);
	if (d && (!cJSON_IsObject(d) ||
	          !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(d, "payload")) ||
	          !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(d, "progress"))))
		fail("details without payload and progress objects: %s", body);
}

/* The seed's error body, its class and code by status (doc/http.md,
 * "Errors"). */
static void check_error(const srv_response *rs, const cJSON *j)
{
	static const struct {
		int status, code;
		const char *cls, *names;
	} table[] = {
		{ 400, 40, "WrongData", " WRONG_DATA_TYPE LOWER_STATUS_NOT_ALLOWED " },
		{ 400, 42, "DuplicatedError", " TASK_ALREADY_RUNNING " },
		{ 401, 21, "AuthError", " UNAUTHORIZED " },
		{ 403, 50, "ForbiddenError", " FORBIDDEN " },
		{ 404, 60, "NotFoundError",
		  " NOT_FOUND TASK_NOT_FOUND TABLE_NOT_FOUND RESOURCE_NOT_FOUND " },
		{ 405, 70, "MethodNotAllowed", " HTTP_METHOD_NOT_ALLOWED " },
	};
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "error_code");
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "error_data");
	const char *cls = str(j, "error_name"), *msg = str(j, "message");
	const char *name = str(data, "name");
	char word[80];

	if (cJSON_GetArraySize(j) != 4 || !cJSON_IsNumber(code) || cls == NULL ||
	    msg == NULL || !cJSON_IsObject(data) || name == NULL)
		fail("not the seed's error shape: %s", rs->body);
	for (const char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			fail("a message that is not printable ASCII: %s", rs->body);
	snprintf(word, sizeof(word), " %s ", name);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].status == rs->status && table[i].code == code->valueint &&
		    strcmp(table[i].cls, cls) == 0 && strstr(table[i].names, word))
			return;
	fail("status %d with error %d %s %s", rs->status, code->valueint, cls, name);
}

/* The refresh token of a trigger body, when it can be told apart from
 * everything else the task holds: at least 20 printable ASCII characters
 * without quote or backslash (longer than any status, key or number of a
 * task document), found nowhere else in the body. */
static char *secret_of(const char *body)
{
	cJSON *j = body ? cJSON_Parse(body) : NULL;
	const char *rt = str(j, "refresh_token");
	char *secret = rt && strlen(rt) >= 20 ? strdup(rt) : NULL, *rest;
	const char *at;

	for (const char *p = secret; p && *p; p++)
		if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\') {
			free(secret);
			secret = NULL;
			break;
		}
	if (secret == NULL) {
		cJSON_Delete(j);
		return NULL;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(j, "refresh_token");
	rest = cJSON_PrintUnformatted(j);
	at = strstr(body, secret);
	if (rest == NULL || strstr(rest, secret) || at == NULL ||
	    strstr(at + 1, secret)) {
		free(secret);
		secret = NULL;
	}
	cJSON_free(rest);
	cJSON_Delete(j);
	return secret;
}

/* Make the active task final, so that an exclusive name is free again. */
static void retire(void)
{
	if (cur.id[0] == '\0')
		return;
	char *out = NULL;
	cJSON *t;
	int rc;

	if (tm_cancel(tm, cur.name, cur.id, NULL) != TM_OK)
		fail("cancel of the active task: %s", tm_last_error());
	/* CANCELLED_REQUESTED (it was RUNNING) waits for a worker: end it.  A
	 * request may have ended it already, in another final status. */
	rc = tm_patch(tm, cur.name, cur.id, "{\"status\":\"CANCELLED\"}", NULL);
	if (rc != TM_OK && rc != TM_ELOWER_STATUS)
		fail("ending the active task gave %s", tm_error_name(rc));
	if (tm_get(tm, cur.name, cur.id, 0, &out) != TM_OK || (t = cJSON_Parse(out)) == NULL)
		fail("the retired task cannot be read: %s", tm_last_error());
	if (rank(str(t, "status")) != 3)
		fail("a retired task is not final: %s", out);
	cJSON_Delete(t);
	tm_free(out);
	cur.id[0] = '\0';
}

/* A trigger answered 200: the task is stored, waiting, and keeps its
 * refresh token to itself. */
static void check_trigger(const cJSON *j, const char *body, const char *text)
{
	const char *id = str(j, "task_id");
	char *got = NULL, *secret;
	const char *name = NULL;
	cJSON *t;

	if (cJSON_GetArraySize(j) != 1 || !is_task_id(id))
		fail("a trigger answered %s", text);
	/* Which name: ask the store (the path may be percent-encoded). */
	for (size_t i = 0; i < N_NAMES && name == NULL; i++)
		if (tm_get(tm, names[i].name, id, 0, &got) == TM_OK)
			name = names[i].name;
	if (name == NULL)
		fail("triggered task %s cannot be read", id);
	t = cJSON_Parse(got);
	check_task(t, 1, got);
	if (strcmp(str(t, "status"), "REQUEST_SENT") != 0)
		fail("a new task is not REQUEST_SENT: %s", got);
	secret = secret_of(body);
	if (secret && strcmp(name, str(t, "name")) == 0) {
		cJSON *d = cJSON_GetObjectItemCaseSensitive(t, "details");
		char *own = NULL;

		/* What the task holds from its input: payload and reason. */
		own = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(d, "payload"));
		if (own && strstr(own, secret) == NULL && strstr(text, secret))
			fail("the trigger answer holds the refresh token: %s", text);
		if (own && strstr(own, secret) == NULL &&
		    (str(d, "create_reason") == NULL ||
		     strstr(str(d, "create_reason"), secret) == NULL) &&
		    strstr(name, secret) == NULL && strstr(got, secret))
			fail("the task holds the refresh token: %s", got);
		cJSON_free(own);
	}
	free(secret);
	cJSON_Delete(t);
	tm_free(got);
	retire();
	snprintf(cur.name, sizeof(cur.name), "%s", name);
	memcpy(cur.id, id, sizeof(cur.id));
}

static void check_ok(const srv_request *rq, const srv_response *rs,
                     const cJSON *j, const char *body_text, const char *before)
{
	const cJSON *tasks;

	if (!cJSON_IsObject(j))
		fail("a 200 answer that is not an object: %s", rs->body);
	if (strcmp(rq->method, "POST") == 0) {
		check_trigger(j, body_text, rs->body);
		return;
	}
	tasks = cJSON_GetObjectItemCaseSensitive(j, "tasks");
	if (tasks) {
		const cJSON *t;
		int with = -1;

		if (!cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(j, "has_next")) ||
		    !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "next_page")) ||
		    !cJSON_IsArray(tasks) || cJSON_GetArraySize(tasks) > 64)
			fail("not a list answer: %s", rs->body);
		cJSON_ArrayForEach(t, tasks) {
			if (with < 0)
				with = cJSON_GetObjectItemCaseSensitive(t, "details") != NULL;
			check_task(t, with, rs->body);
		}
		return;
	}
	/* GET, PATCH or DELETE of one task: the private view. */
	check_task(j, 1, rs->body);
	if (before) {
		cJSON *b = cJSON_Parse(before);
		int rb = rank(str(b, "status")), ra = rank(str(j, "status"));

		if (strcmp(str(b, "task_id"), str(j, "task_id")) == 0 &&
		    (ra < rb || (rb == 3 && strcmp(str(b, "status"), str(j, "status")))))
			fail("%s went from %s to %s", rq->method, str(b, "status"),
			     str(j, "status"));
		cJSON_Delete(b);
	}
}

/* Field i of the input, NUL-terminated (malloc'd); *rest past it. */
static char *field(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	char *s = malloc(n + 1);

	memcpy(s, *p, n);
	s[n] = '\0';
	*p = nl ? nl + 1 : end;
	return s;
}

/* PATH with its first "@ID" replaced by the active task's id. */
static char *with_id(const char *path)
{
	const char *at = strstr(path, "@ID");
	const char *id = cur.id[0] ? cur.id : NO_TASK;
	size_t n = strlen(path);
	char *s;

	if (at == NULL)
		return strdup(path);
	s = malloc(n + TM_TASK_ID_LEN + 1);
	memcpy(s, path, (size_t)(at - path));
	strcpy(s + (at - path), id);
	strcat(s, at + 3);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + (size ? 1 : 0), *end = (const char *)data + size;
	unsigned flags = size ? data[0] : 0;
	char *role, *method, *raw_path, *path, *query, *before = NULL;
	char *body = NULL, *body_text = NULL;
	size_t body_len = 0;
	int has_body;
	srv_request rq;
	srv_response rs;
	double c0, c1;
	cJSON *j;

	if (tm == NULL)
		setup();
	if (++n_inputs % 32 == 0)
		retire(); /* now and then "@ID" names no task */
	role = field(&p, end);
	method = field(&p, end);
	raw_path = field(&p, end);
	query = field(&p, end);
	has_body = p < end && !(flags & 2);
	if (has_body) {
		/* Exactly the body's bytes, not NUL-terminated: the router must
		 * not read past body_len. */
		body_len = (size_t)(end - p);
		body = malloc(body_len);
		memcpy(body, p, body_len);
		body_text = strndup(p, body_len); /* for the checks */
	}
	path = with_id(raw_path);
	if (strstr(raw_path, "@ID") && cur.id[0] &&
	    tm_get(tm, cur.name, cur.id, 0, &before) != TM_OK)
		fail("the active task cannot be read: %s", tm_last_error());

	memset(&rq, 0, sizeof(rq));
	rq.method = method;
	rq.path = path;
	rq.query = query[0] ? query : NULL;
	rq.body = body;
	rq.body_len = body_len;
	rq.body_too_large = flags & 1;
	rq.role = role[0] ? role : NULL;
	c0 = fz_commits(tm);
	srv_route(tm, &rq, &rs);
	c1 = fz_commits(tm);

	if (rs.body == NULL)
		fail("no body (out of memory?) for status %d", rs.status);
	j = cJSON_Parse(rs.body);
	if (j == NULL)
		fail("status %d with a body that is not JSON: %s", rs.status, rs.body);
	if ((rs.allow != NULL) != (rs.status == 405) || (rs.allow && !rs.allow[0]))
		fail("status %d with Allow '%s'", rs.status, rs.allow ? rs.allow : "(none)");
	if ((rs.status == 401) != (rq.role == NULL))
		fail("status %d for role %s", rs.status, rq.role ? rq.role : "(none)");
	if (rs.status == 200 && !srv_role_allowed(rq.role))
		fail("role %s was served", rq.role);
	if (rs.status == 200 && rq.body_too_large)
		fail("a request whose body was dropped as too large was served");
	if ((rs.status != 200 || strcmp(method, "GET") == 0) && c1 != c0)
		fail("%s answered %d yet wrote %.0f transactions", method, rs.status,
		     c1 - c0);
	if (rs.status == 200)
		check_ok(&rq, &rs, j, body_text, before);
	else if (rs.status == 500)
		fail("a server error on a healthy store: %s", rs.body);
	else
		check_error(&rs, j);

	cJSON_Delete(j);
	srv_response_free(&rs);
	tm_free(before);
	free(role);
	free(method);
	free(raw_path);
	free(path);
	free(query);
	free(body);
	free(body_text);
	return 0;
}
