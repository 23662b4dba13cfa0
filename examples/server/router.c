/* The seven endpoints of the Background Tasks REST API (doc/http.md) over
 * the five library calls; and the server's own: GET /metrics (tm_metrics),
 * GET /stats/ (tm_stats) for the dashboard, POST .../<id>/retry/
 * (tm_retry), POST .../<name>/pause/ and .../resume/ (tm_pause,
 * tm_resume).  Checks run in this order, each one's error
 * first: 401 (no or unknown token), 404 (unknown path), 405 (wrong method),
 * 403 (role), 400 (body or query), then whatever the library answers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "router.h"

enum route { R_NONE, R_TRIGGER, R_LIST, R_GET, R_PATCH, R_CANCEL, R_METRICS, R_STATS,
             R_RETRY, R_PAUSE, R_RESUME };

enum { M_GET = 1, M_POST = 2, M_PATCH = 4, M_DELETE = 8 };

#define SEGS_MAX 5

struct match {
	enum route route;
	unsigned flags;     /* TM_PUBLIC or 0 */
	const char *name;
	const char *id;
	unsigned allowed;   /* methods the path admits */
};

/* Returned by the checks below when memory ran out: a 500, not a 400. */
static const char oom[] = "out of memory";

static void wrong_data(srv_response *out, const char *message)
{
	srv_error(out, 400, 40, "WrongData", "WRONG_DATA_TYPE", message);
}

/* ---- the path ------------------------------------------------------------ */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long srv_pct_decode(const char *s, size_t n, char *out, int plus_space)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+' && plus_space) {
			c = ' ';
		}
		if (c == '\0')
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return (long)o;
}

int srv_path_split(const char *path, char *buf, const char **seg, int max)
{
	const char *p = path;
	int n = 0;

	if (path == NULL || path[0] != '/')
		return -1;
	p++;
	while (*p) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		long dl;

		if (len == 0 || n == max)
			return -1;
		dl = srv_pct_decode(p, len, buf, 0);
		if (dl < 0)
			return -1;
		seg[n++] = buf;
		buf += dl + 1;
		p += len;
		if (*p == '/')
			p++;
	}
	return n;
}

static unsigned method_bit(const char *m)
{
	if (m == NULL)
		return 0;
	if (strcmp(m, "GET") == 0)
		return M_GET;
	if (strcmp(m, "POST") == 0)
		return M_POST;
	if (strcmp(m, "PATCH") == 0)
		return M_PATCH;
	if (strcmp(m, "DELETE") == 0)
		return M_DELETE;
	return 0;
}

static void add(struct match *m, unsigned mbit, unsigned bit, enum route r,
                unsigned flags, const char *name, const char *id)
{
	m->allowed |= bit;
	if (bit == mbit && m->route == R_NONE) {
		m->route = r;
		m->flags = flags;
		m->name = name;
		m->id = id;
	}
}

/* The endpoint table of doc/http.md.  Earlier rows win when two match one
 * request: GET /tasks/private/x/recents lists, it does not read a task
 * "recents". */
static void match(const char *const *s, int n, unsigned mbit, struct match *m)
{
	memset(m, 0, sizeof(*m));
	if (n == 1 && strcmp(s[0], "metrics") == 0)
		add(m, mbit, M_GET, R_METRICS, 0, NULL, NULL);
	if (n == 1 && strcmp(s[0], "stats") == 0)
		add(m, mbit, M_GET, R_STATS, 0, NULL, NULL);
	if (n < 2 || strcmp(s[0], "tasks") != 0)
		return;
	if (n == 2)
		add(m, mbit, M_POST, R_TRIGGER, TM_PUBLIC, s[1], NULL);
	if (n == 3 && strcmp(s[2], "recents") == 0)
		add(m, mbit, M_GET, R_LIST, TM_PUBLIC, s[1], NULL);
	if (strcmp(s[1], "private") != 0)
		return;
	if (n == 3)
		add(m, mbit, M_POST, R_TRIGGER, 0, s[2], NULL);
	if (n == 4 && strcmp(s[3], "recents") == 0)
		add(m, mbit, M_GET, R_LIST, 0, s[2], NULL);
	if (n == 4 && strcmp(s[3], "pause") == 0)
		add(m, mbit, M_POST, R_PAUSE, 0, s[2], NULL);
	if (n == 4 && strcmp(s[3], "resume") == 0)
		add(m, mbit, M_POST, R_RESUME, 0, s[2], NULL);
	if (n == 4) {
		add(m, mbit, M_GET, R_GET, 0, s[2], s[3]);
		add(m, mbit, M_PATCH, R_PATCH, 0, s[2], s[3]);
		add(m, mbit, M_DELETE, R_CANCEL, 0, s[2], s[3]);
	}
	if (n == 5 && strcmp(s[4], "retry") == 0)
		add(m, mbit, M_POST, R_RETRY, 0, s[2], s[3]);
}

static const char *allow_header(unsigned allowed)
{
	/* Indexed by the mask of M_GET, M_POST, M_PATCH, M_DELETE. */
	static const char *const table[16] = {
		"",
		"GET",
		"POST",
		"GET, POST",
		"PATCH",
		"GET, PATCH",
		"POST, PATCH",
		"GET, POST, PATCH",
		"DELETE",
		"GET, DELETE",
		"POST, DELETE",
		"GET, POST, DELETE",
		"PATCH, DELETE",
		"GET, PATCH, DELETE",
		"POST, PATCH, DELETE",
		"GET, POST, PATCH, DELETE",
	};

	return table[allowed & 15u];
}

/* ---- query and body ------------------------------------------------------ */

/* A decimal integer in [lo, hi], digits only. */
static int parse_int(const char *v, int lo, int hi, int *out)
{
	long x = 0;

	if (*v == '\0' || strlen(v) > 9)
		return -1;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		x = x * 10 + (*p - '0');
	}
	if (x < lo || x > hi)
		return -1;
	*out = (int)x;
	return 0;
}

/* page and amt of the recents endpoints; other parameters are ignored.
 * Returns NULL, or a static message for a WRONG_DATA_TYPE answer. */
static const char *parse_list_query(const char *q, int *page, int *amt)
{
	int seen_page = 0, seen_amt = 0;
	const char *problem = NULL;
	char *buf;

	*page = 1;
	*amt = 50;
	if (q == NULL || *q == '\0')
		return NULL;
	buf = malloc(strlen(q) + 1);
	if (buf == NULL)
		return oom;
	while (*q && problem == NULL) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;
		long kl = srv_pct_decode(q, klen, buf, 1);
		int is_page, is_amt;

		if (kl < 0) {
			problem = "the query string has a bad percent escape";
			break;
		}
		is_page = strcmp(buf, "page") == 0;
		is_amt = strcmp(buf, "amt") == 0;
		if (is_page || is_amt) {
			const char *v = eq ? eq + 1 : q + len;
			size_t vlen = (size_t)(q + len - v);

			if ((is_page && seen_page++) || (is_amt && seen_amt++))
				problem = is_page ? "page is given more than once"
				                  : "amt is given more than once";
			else if (srv_pct_decode(v, vlen, buf, 1) < 0 ||
			         (is_page && parse_int(buf, 1, 999999999, page) < 0))
				problem = is_page ? "page must be an integer of at least 1"
				                  : "amt must be an integer from 1 to 64";
			else if (is_amt && parse_int(buf, 1, 64, amt) < 0)
				problem = "amt must be an integer from 1 to 64";
		}
		q += len;
		if (*q == '&')
			q++;
	}
	free(buf);
	return problem;
}

int srv_query_get(const char *q, const char *key, char *out, size_t outlen)
{
	int found = 0, rc = 0;
	char *buf;

	if (q == NULL || *q == '\0')
		return 0;
	buf = malloc(strlen(q) + 1);
	if (buf == NULL)
		return -2;
	while (*q && rc == 0) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;

		if (srv_pct_decode(q, klen, buf, 1) < 0) {
			rc = -1;   /* a key badly escaped could be this one */
		} else if (strcmp(buf, key) == 0) {
			const char *v = eq ? eq + 1 : q + len;
			long vl = srv_pct_decode(v, (size_t)(q + len - v), buf, 1);

			if (found++ || vl < 0 || (size_t)vl >= outlen)
				rc = -1;
			else
				memcpy(out, buf, (size_t)vl + 1);
		}
		q += len;
		if (*q == '&')
			q++;
	}
	free(buf);
	return rc ? rc : found;
}

/* Length of a valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp, min;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2; cp = s[0] & 0x1fu; min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3; cp = s[0] & 0x0fu; min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4; cp = s[0] & 0x07u; min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

const char *srv_body_problem(const char *body, size_t len)
{
	const unsigned char *s = (const unsigned char *)body;
	int depth = 0, in_string = 0, escaped = 0;

	if (len > SRV_BODY_MAX)
		return "the request body is larger than 1 MiB";
	for (size_t i = 0; i < len;) {
		size_t l;

		if (s[i] == 0)
			return "the request body contains a NUL byte";
		l = utf8_len(s + i, len - i);
		if (l == 0)
			return "the request body is not valid UTF-8";
		if (escaped)
			escaped = 0;
		else if (in_string && s[i] == '\\')
			escaped = 1;
		else if (s[i] == '"')
			in_string = !in_string;
		else if (in_string) {
			/* braces inside strings do not nest */
		} else if (s[i] == '{' || s[i] == '[') {
			if (++depth > SRV_JSON_DEPTH_MAX)
				return "the request body is nested too deeply (at most 32 levels)";
		} else if (s[i] == '}' || s[i] == ']') {
			depth--;
		}
		i += l;
	}
	return NULL;
}

int srv_role_allowed(const char *role)
{
	return role && (strcmp(role, "root") == 0 || strcmp(role, "manager") == 0 ||
	                strcmp(role, "backend") == 0);
}

/* ---- dispatch ------------------------------------------------------------ */

/* The body as a C string for the library; *text NULL for an empty body.
 * Returns NULL, or a message for a WRONG_DATA_TYPE answer. */
static const char *take_body(const srv_request *rq, char **text)
{
	const char *problem;

	*text = NULL;
	if (rq->body == NULL || rq->body_len == 0)
		return NULL;
	problem = srv_body_problem(rq->body, rq->body_len);
	if (problem)
		return problem;
	*text = malloc(rq->body_len + 1);
	if (*text == NULL)
		return oom;
	memcpy(*text, rq->body, rq->body_len);
	(*text)[rq->body_len] = '\0';
	return NULL;
}

/* {"name": ..., "paused": b}: the answer of pause and resume. */
static int paused_answer(const char *name, int paused, char **json)
{
	cJSON *o = cJSON_CreateObject();

	if (o && cJSON_AddStringToObject(o, "name", name) &&
	    cJSON_AddBoolToObject(o, "paused", paused))
		*json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return *json ? TM_OK : tm_errorf(TM_ENOMEM, "out of memory");
}

static void call(tm_manager *tm, const srv_request *rq, const struct match *m,
                 srv_response *out)
{
	const char *problem = NULL;
	char *body = NULL, *json = NULL;
	int page, amt, err = TM_OK;

	switch (m->route) {
	case R_TRIGGER:
		problem = take_body(rq, &body);
		if (!problem)
			err = tm_trigger(tm, m->name, body, m->flags, &json);
		break;
	case R_LIST:
		problem = parse_list_query(rq->query, &page, &amt);
		if (!problem)
			err = tm_list_recent(tm, m->name, page, amt, m->flags, &json);
		break;
	case R_GET:
		err = tm_get(tm, m->name, m->id, 0, &json);
		break;
	case R_PATCH:
		problem = take_body(rq, &body);
		if (!problem && body == NULL)
			problem = "PATCH needs a JSON object body";
		if (!problem)
			err = tm_patch(tm, m->name, m->id, body, &json);
		break;
	case R_CANCEL:
		err = tm_cancel(tm, m->name, m->id, &json);
		break;
	case R_METRICS:
		err = tm_metrics(tm, &json);
		break;
	case R_STATS:
		err = tm_stats(tm, &json);
		break;
	case R_RETRY:
		err = tm_retry(tm, m->name, m->id, &json);
		break;
	case R_PAUSE:
	case R_RESUME:
		err = m->route == R_PAUSE ? tm_pause(tm, m->name) : tm_resume(tm, m->name);
		if (!err)
			err = paused_answer(m->name, m->route == R_PAUSE, &json);
		break;
	case R_NONE:
		break;
	}
	free(body);
	if (problem == oom)
		srv_lib_error(out, tm_errorf(TM_ENOMEM, "out of memory"));
	else if (problem)
		wrong_data(out, problem);
	else if (err)
		srv_lib_error(out, err);
	else {
		memset(out, 0, sizeof(*out));
		out->status = 200;
		out->body = json;
		if (m->route == R_METRICS)
			out->content_type = "text/plain; version=0.0.4; charset=utf-8";
	}
}

/* The checks that need no body, in their order: 401, 404, 405, 403.
 * Returns 0 when the request passes them, with *m its endpoint (whose
 * strings point into @p buf, strlen(path) + 1 bytes); else the status,
 * with @p out filled. */
static int refuse(const srv_request *rq, char *buf, struct match *m,
                  srv_response *out)
{
	const char *seg[SEGS_MAX];
	int n;

	if (rq->role == NULL) {
		srv_error(out, 401, 21, "AuthError", "UNAUTHORIZED",
		          "a valid 'Authorization: Bearer <token>' header is required");
		return 401;
	}
	n = srv_path_split(rq->path, buf, seg, SEGS_MAX);
	if (n < 0)
		memset(m, 0, sizeof(*m));
	else
		match(seg, n, method_bit(rq->method), m);
	if (m->allowed == 0) {
		srv_error(out, 404, 60, "NotFoundError", "NOT_FOUND",
		          "no endpoint at this path");
		return 404;
	}
	if (m->route == R_NONE) {
		srv_error(out, 405, 70, "MethodNotAllowed", "HTTP_METHOD_NOT_ALLOWED",
		          "this path does not accept this method");
		out->allow = allow_header(m->allowed);
		return 405;
	}
	/* Pausing a name stops work for everyone: root and manager only. */
	if ((m->route == R_PAUSE || m->route == R_RESUME) &&
	    strcmp(rq->role, "root") != 0 && strcmp(rq->role, "manager") != 0) {
		srv_error(out, 403, 50, "ForbiddenError", "FORBIDDEN",
		          "pause and resume admit the roles root and manager");
		return 403;
	}
	/* The metrics admit any role: they hold no task's data. */
	if (m->route != R_METRICS && !srv_role_allowed(rq->role)) {
		srv_error(out, 403, 50, "ForbiddenError", "FORBIDDEN",
		          "this endpoint admits the roles root, manager and backend");
		return 403;
	}
	return 0;
}

int srv_route_refuses(const srv_request *rq)
{
	srv_response out;
	struct match m;
	char *buf = malloc((rq->path ? strlen(rq->path) : 0) + 1);
	int status;

	if (buf == NULL)
		return 0;
	status = refuse(rq, buf, &m, &out);
	if (status)
		srv_response_free(&out);
	free(buf);
	return status != 0;
}

void srv_route(tm_manager *tm, const srv_request *rq, srv_response *out)
{
	struct match m;
	char *buf;

	buf = malloc((rq->path ? strlen(rq->path) : 0) + 1);
	if (buf == NULL) {
		srv_lib_error(out, tm_errorf(TM_ENOMEM, "out of memory"));
		return;
	}
	if (refuse(rq, buf, &m, out)) {
		/* answered */
	} else if (rq->body_too_large) {
		wrong_data(out, "the request body is larger than 1 MiB");
	} else {
		call(tm, rq, &m, out);
	}
	free(buf);
}
