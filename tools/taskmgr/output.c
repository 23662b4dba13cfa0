/* What taskmgr prints: aligned tables, relative times, sizes, a task as
 * "key  value" lines, status colours (only on a terminal, and only when
 * NO_COLOR is not set), and the library's JSON as it came. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

double out_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void out_init(struct out *o)
{
	o->tty = isatty(STDOUT_FILENO) == 1;
	o->color = o->tty && getenv("NO_COLOR") == NULL;
	o->now = out_clock();
}

void out_json(const char *text)
{
	fputs(text, stdout);
	fputc('\n', stdout);
}

cJSON *out_parse(const char *text, int *err)
{
	cJSON *doc = cJSON_Parse(text);

	*err = TM_OK;
	if (doc == NULL)
		*err = tm_errorf(TM_EINVAL, "the library answered a document that is "
		                 "not JSON");
	return doc;
}

const char *out_status_color(const struct out *o, const char *status)
{
	static const struct { const char *status, *code; } colors[] = {
		{ "REQUEST_SENT", "\x1b[2m" },          /* dim: waiting */
		{ "RUNNING", "\x1b[36m" },              /* cyan */
		{ "CANCELLED_REQUESTED", "\x1b[33m" },  /* yellow */
		{ "FAILED", "\x1b[31m" },               /* red */
		{ "CANCELLED", "\x1b[35m" },            /* magenta */
		{ "COMPLETED", "\x1b[32m" },            /* green */
	};

	if (!o->color)
		return "";
	for (size_t i = 0; i < sizeof(colors) / sizeof(colors[0]); i++)
		if (strcmp(colors[i].status, status) == 0)
			return colors[i].code;
	return "";
}

const char *out_reset(const struct out *o)
{
	return o->color ? "\x1b[0m" : "";
}

void out_duration(double s, char *buf, size_t n)
{
	if (s < 1)
		snprintf(buf, n, "%.0f ms", s * 1000);
	else if (s < 60)
		snprintf(buf, n, "%.0f s", floor(s));
	else if (s < 3600)
		snprintf(buf, n, "%.0f min %.0f s", floor(s / 60), fmod(floor(s), 60));
	else if (s < 86400)
		snprintf(buf, n, "%.0f h %.0f min", floor(s / 3600), floor(fmod(s, 3600) / 60));
	else
		snprintf(buf, n, "%.0f days", floor(s / 86400));
}

void out_ago(const struct out *o, double t, char *buf, size_t n)
{
	double d = o->now - t;
	char span[32];

	if (fabs(d) < 1) {
		snprintf(buf, n, "just now");
		return;
	}
	/* Relative times round down to their largest unit only. */
	if (fabs(d) < 60)
		snprintf(span, sizeof(span), "%.0f s", floor(fabs(d)));
	else if (fabs(d) < 3600)
		snprintf(span, sizeof(span), "%.0f min", floor(fabs(d) / 60));
	else if (fabs(d) < 86400)
		snprintf(span, sizeof(span), "%.0f h", floor(fabs(d) / 3600));
	else
		snprintf(span, sizeof(span), "%.0f days", floor(fabs(d) / 86400));
	snprintf(buf, n, d > 0 ? "%s ago" : "in %s", span);
}

void out_bytes(double b, char *buf, size_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	int u = -1;

	while (b >= 1024 && u < 3) {
		b /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, n, "%.0f B", b);
	else
		snprintf(buf, n, "%.1f %s", b, units[u]);
}

/* Text from a task (a progress message, an error, a warning) is the
 * handler's or a client's, and goes to a person's terminal: control
 * characters (C0, DEL, and C1 as UTF-8) become '?', so that it can
 * neither break a line or a table nor send the terminal a command. */
void out_clean(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			p[0] = p[1] = '?';
	}
}

static void put_clean(FILE *f, const char *s)
{
	char *copy = strdup(s);

	if (copy == NULL)
		return;
	out_clean(copy);
	fputs(copy, f);
	free(copy);
}

/* ---- tables -------------------------------------------------------------------- */

struct table {
	int n_cols, status_col;
	size_t n_rows, cap;
	char **cells;        /* (1 + n_rows) * n_cols: the head first */
};

struct table *table_new(int n_cols, const char *const *head, int status_col)
{
	struct table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->n_cols = n_cols;
	t->status_col = status_col;
	if (table_add(t, head) != TM_OK) { /* the head: row 0 */
		table_free(t);
		return NULL;
	}
	return t;
}

int table_add(struct table *t, const char *const *cells)
{
	size_t row = t->cells ? t->n_rows + 1 : 0;

	if (row + 1 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **p = realloc(t->cells, cap * (size_t)t->n_cols * sizeof(*p));

		if (p == NULL)
			return tm_errorf(TM_ENOMEM, "out of memory");
		memset(p + t->cap * (size_t)t->n_cols, 0,
		       (cap - t->cap) * (size_t)t->n_cols * sizeof(*p));
		t->cells = p;
		t->cap = cap;
	}
	for (int c = 0; c < t->n_cols; c++) {
		char *cell = strdup(cells[c] ? cells[c] : "");

		if (cell == NULL)
			return tm_errorf(TM_ENOMEM, "out of memory");
		out_clean(cell);
		t->cells[row * (size_t)t->n_cols + (size_t)c] = cell;
	}
	if (row > 0)
		t->n_rows++;
	return TM_OK;
}

/* Columns a string takes on a terminal: one per character of UTF-8. */
static int columns(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

void table_print(const struct table *t, const struct out *o, FILE *f)
{
	int width[16] = { 0 };

	for (size_t r = 0; r <= t->n_rows; r++)
		for (int c = 0; c < t->n_cols && c < 16; c++) {
			int w = columns(t->cells[r * (size_t)t->n_cols + (size_t)c]);

			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r <= t->n_rows; r++) {
		const char *const *row = (const char *const *)&t->cells[r * (size_t)t->n_cols];
		int last = t->n_cols - 1;

		while (last > 0 && row[last][0] == '\0')
			last--; /* no padding before empty cells at the end */
		for (int c = 0; c <= last; c++) {
			const char *color = r > 0 && c == t->status_col ? out_status_color(o, row[c]) : "";

			fprintf(f, "%s%s%s", color, row[c], *color ? out_reset(o) : "");
			if (c < last)
				fprintf(f, "%*s", width[c < 16 ? c : 15] - columns(row[c]) + 2, "");
		}
		fputc('\n', f);
	}
}

void table_free(struct table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->cap * (size_t)t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

/* ---- tasks ---------------------------------------------------------------------- */

const char *task_str(const cJSON *task, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(task, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

double task_num(const cJSON *task, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(task, key);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

const cJSON *task_detail(const cJSON *task, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(task, "details"), key);
}

bool status_final(const char *status)
{
	return strcmp(status, "FAILED") == 0 || strcmp(status, "CANCELLED") == 0 ||
	       strcmp(status, "COMPLETED") == 0;
}

/* part of whole, when both are numbers and whole is above 0. */
static double ratio(const cJSON *p, const char *part, const char *whole)
{
	double a = task_num(p, part), b = task_num(p, whole);

	return cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(p, part)) && b > 0 ? a / b : -1;
}

double task_fraction(const cJSON *task)
{
	const cJSON *p = task_detail(task, "progress");
	double f = -1;

	if (strcmp(task_str(task, "status"), "COMPLETED") == 0)
		return 1;
	if (!cJSON_IsObject(p))
		return -1;
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(p, "percent")))
		f = task_num(p, "percent") / 100;
	else if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(p, "fraction")))
		f = task_num(p, "fraction");
	else if ((f = ratio(p, "step", "steps")) < 0 &&
	         (f = ratio(p, "n_processed", "n_total")) < 0)
		f = ratio(p, "done", "total");
	if (f < 0 || !isfinite(f))
		return -1;
	return f > 1 ? 1 : f;
}

/* A JSON value on one line (malloc'd), or NULL. */
static char *compact(const cJSON *v)
{
	return v ? cJSON_PrintUnformatted(v) : NULL;
}

static void line(FILE *f, const char *key, const char *value)
{
	fprintf(f, "%-16s ", key);
	put_clean(f, value);
	fputc('\n', f);
}

static void time_line(const struct out *o, FILE *f, const char *key, double t)
{
	char ago[48], buf[128], when[64];
	time_t s = (time_t)t;
	struct tm tm;

	if (t < 0)
		return;
	localtime_r(&s, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	out_ago(o, t, ago, sizeof(ago));
	snprintf(buf, sizeof(buf), "%s (%s)", when, ago);
	line(f, key, buf);
}

void out_task(const struct out *o, const cJSON *task, FILE *f)
{
	static const char *const shown[] = { "payload", "progress", "timeout_at",
	                                     "create_reason", "attempts", "end_time",
	                                     "error" };
	const char *status = task_str(task, "status");
	const cJSON *details = cJSON_GetObjectItemCaseSensitive(task, "details");
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(task, "warnings"), *e;
	char buf[64], *s;

	line(f, "task_id", task_str(task, "task_id"));
	line(f, "name", task_str(task, "name"));
	fprintf(f, "%-16s %s%s%s\n", "status", out_status_color(o, status), status,
	        *out_status_color(o, status) ? out_reset(o) : "");
	time_line(o, f, "started", task_num(task, "start_time"));
	time_line(o, f, "ended", task_num(details, "end_time"));
	if (task_num(details, "end_time") >= 0) {
		out_duration(task_num(details, "end_time") - task_num(task, "start_time"),
		             buf, sizeof(buf));
		line(f, "took", buf);
	}
	time_line(o, f, "timeout_at", task_num(details, "timeout_at"));
	if (task_num(details, "attempts") >= 0) {
		snprintf(buf, sizeof(buf), "%.0f", task_num(details, "attempts"));
		line(f, "attempts", buf);
	}
	if (*task_str(details, "create_reason"))
		line(f, "reason", task_str(details, "create_reason"));
	line(f, "progress", task_str(task, "progress"));
	if (*task_str(details, "error"))
		line(f, "error", task_str(details, "error"));
	cJSON_ArrayForEach(e, w)
		line(f, e == w->child ? "warnings" : "", cJSON_IsString(e) ? e->valuestring : "?");
	if ((s = compact(cJSON_GetObjectItemCaseSensitive(details, "payload"))) != NULL)
		line(f, "payload", s);
	free(s);
	if ((s = compact(cJSON_GetObjectItemCaseSensitive(details, "progress"))) != NULL)
		line(f, "details.progress", s);
	free(s);
	/* The host's own keys of details. */
	cJSON_ArrayForEach(e, details) {
		bool known = false;
		char key[96];

		for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
			known |= strcmp(e->string, shown[i]) == 0;
		if (known || (s = compact(e)) == NULL)
			continue;
		snprintf(key, sizeof(key), "details.%s", e->string);
		out_clean(key);
		line(f, key, s);
		free(s);
	}
}

/* ---- raw spans of library JSON --------------------------------------------------- */

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* Past one JSON value beginning at p (text the library wrote, so valid),
 * or NULL. */
static const char *skip_value(const char *p)
{
	int depth = 0;

	p = skip_ws(p);
	do {
		if (*p == '\0')
			return NULL;
		if (*p == '"') {
			for (p++; *p != '"'; p++) {
				if (*p == '\0')
					return NULL;
				if (*p == '\\' && p[1] != '\0')
					p++;
			}
			p++;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			depth--;
			p++;
		} else if (depth > 0) {
			p++; /* ',', ':', blanks, numbers and literals inside */
		} else {
			while (*p && !strchr(",}] \t\r\n", *p))
				p++; /* a number or a literal on its own */
		}
	} while (depth > 0);
	return depth == 0 ? p : NULL;
}

int out_array_spans(const char *text, const char *key, const char **starts,
                    size_t *lens, int max)
{
	const char *p = skip_ws(text);
	size_t klen = strlen(key);

	if (*p++ != '{')
		return -1;
	for (;;) {
		const char *k = skip_ws(p), *v;
		bool match;

		if (*k != '"')
			return -1;
		match = strncmp(k + 1, key, klen) == 0 && k[klen + 1] == '"';
		p = skip_value(k);
		if (p == NULL)
			return -1;
		p = skip_ws(p);
		if (*p++ != ':')
			return -1;
		v = skip_ws(p);
		if (match && *v == '[') {
			int n = 0;

			for (p = skip_ws(v + 1); *p != ']'; p = skip_ws(p + 1)) {
				const char *end = skip_value(p);

				if (end == NULL || n == max)
					return -1;
				starts[n] = p;
				lens[n++] = (size_t)(end - p);
				p = skip_ws(end);
				if (*p == ']')
					break;
				if (*p != ',')
					return -1;
			}
			return n;
		}
		p = skip_value(v);
		if (p == NULL)
			return -1;
		p = skip_ws(p);
		if (*p == '}')
			return -1;
		if (*p++ != ',')
			return -1;
	}
}
