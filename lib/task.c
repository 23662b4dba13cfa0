/* The task document: the stored record of a task and the task JSON that
 * every call returns (doc/api.md, "The task").  The only module that
 * builds either. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "id.h"
#include "json.h"
#include "task.h"

/* Record layout (native byte order; an LMDB store is never moved between
 * machines of different architectures):
 *   head      fixed fields below
 *   name      head.name_len bytes
 *   warnings  JSON array, head.warnings_len bytes
 *   details   JSON object, head.details_len bytes
 *   message   details.progress.message as a JSON string ("" if none)
 * Fields the runtime reads in its scans are fixed, so a scan never parses
 * JSON; the JSON parts are stored as they are printed, so tm_get and
 * tm_list_recent copy bytes into the answer instead of parsing and
 * printing a document (tm__task_render). */
#define RECORD_FORMAT 2
#define FLAG_QUEUED 0x1

struct head {
	uint8_t format;
	uint8_t status;
	uint8_t flags;
	uint8_t name_len;
	uint32_t warnings_len;
	uint32_t details_len;
	uint32_t message_len;
	int64_t start_us;
	int64_t timeout_us;
	int64_t ready_us;
	int64_t lease_us;
	uint64_t owner;
};

void tm__task_free(tm__task *t)
{
	if (t == NULL)
		return;
	cJSON_Delete(t->warnings);
	cJSON_Delete(t->details);
	t->warnings = NULL;
	t->details = NULL;
}

/* ---- times as JSON ---------------------------------------------------------- */

size_t tm__time_format(char out[32], int64_t us)
{
	uint64_t u = us < 0 ? (uint64_t)0 - (uint64_t)us : (uint64_t)us;
	uint64_t sec = u / 1000000, frac = u % 1000000;
	char digits[24];
	size_t n = 0, k = 0;

	/* By hand: this runs for every task of every answer, and printf's
	 * machinery costs more than the rest of the rendering. */
	if (us < 0)
		out[n++] = '-';
	do {
		digits[k++] = (char)('0' + sec % 10);
		sec /= 10;
	} while (sec);
	while (k)
		out[n++] = digits[--k];
	if (frac) {
		int width = 6;

		while (frac % 10 == 0) { /* exact microseconds, no trailing zeros */
			frac /= 10;
			width--;
		}
		out[n++] = '.';
		for (int i = width - 1; i >= 0; i--, frac /= 10)
			out[n + (size_t)i] = (char)('0' + frac % 10);
		n += (size_t)width;
	}
	out[n] = '\0';
	return n;
}

cJSON *tm__json_time(int64_t us)
{
	char text[32];

	tm__time_format(text, us);
	return cJSON_CreateRaw(text);
}

/* Times in details are printed as exact microseconds, not as cJSON's
 * 17-digit rendering of the double they were parsed into. */
static void settle_times(cJSON *details)
{
	static const char *const keys[] = { "timeout_at", "end_time" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(details, keys[i]);
		cJSON *raw;

		if (!cJSON_IsNumber(v))
			continue;
		raw = tm__json_time((int64_t)(v->valuedouble * 1e6 +
		                              (v->valuedouble < 0 ? -0.5 : 0.5)));
		if (raw && !cJSON_ReplaceItemInObjectCaseSensitive(details, keys[i], raw))
			cJSON_Delete(raw);
	}
}

static const char *progress_message(const tm__task *t)
{
	const cJSON *pr = cJSON_GetObjectItemCaseSensitive(t->details, "progress");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(pr, "message");

	return cJSON_IsString(m) ? m->valuestring : "";
}

/* ---- records ----------------------------------------------------------------- */

int tm__task_encode(const tm__task *t, void **buf, size_t *len)
{
	struct head h = {
		.format = RECORD_FORMAT,
		.status = (uint8_t)t->status,
		.flags = t->queued ? FLAG_QUEUED : 0,
		.name_len = (uint8_t)strlen(t->name),
		.start_us = t->start_us,
		.timeout_us = t->timeout_us,
		.ready_us = t->ready_us,
		.lease_us = t->lease_us,
		.owner = t->owner,
	};
	cJSON *msg = NULL;
	char *w = NULL, *d = NULL, *m = NULL, *out;

	settle_times(t->details);
	msg = cJSON_CreateString(progress_message(t));
	w = tm__json_print(t->warnings);
	d = tm__json_print(t->details);
	m = msg ? tm__json_print(msg) : NULL;
	cJSON_Delete(msg);
	if (w == NULL || d == NULL || m == NULL)
		goto oom;
	h.warnings_len = (uint32_t)strlen(w);
	h.details_len = (uint32_t)strlen(d);
	h.message_len = (uint32_t)strlen(m);
	*len = sizeof(h) + h.name_len + h.warnings_len + h.details_len + h.message_len;
	out = malloc(*len);
	if (out == NULL)
		goto oom;
	*buf = out;
	memcpy(out, &h, sizeof(h));
	out += sizeof(h);
	memcpy(out, t->name, h.name_len);
	out += h.name_len;
	memcpy(out, w, h.warnings_len);
	out += h.warnings_len;
	memcpy(out, d, h.details_len);
	out += h.details_len;
	memcpy(out, m, h.message_len);
	free(w);
	free(d);
	free(m);
	return TM_OK;
oom:
	free(w);
	free(d);
	free(m);
	return tm_errorf(TM_ENOMEM, "out of memory encoding task %s", t->id);
}

/* Check the head and find the parts; false when the record is corrupt. */
static bool parts(const void *buf, size_t len, struct head *h, const char **p)
{
	if (len < sizeof(*h))
		return false;
	memcpy(h, buf, sizeof(*h));
	*p = (const char *)buf + sizeof(*h);
	return h->format == RECORD_FORMAT && h->status <= TM_COMPLETED &&
	       h->name_len <= TM_NAME_MAX &&
	       (uint64_t)sizeof(*h) + h->name_len + h->warnings_len +
	       h->details_len + h->message_len == len;
}

static int decode(const char *id, const void *buf, size_t len, tm__task *t,
                  bool head_only)
{
	struct head h;
	const char *p;

	memset(t, 0, sizeof(*t));
	if (!parts(buf, len, &h, &p))
		goto corrupt;
	memcpy(t->id, id, TM_TASK_ID_LEN);
	memcpy(t->name, p, h.name_len);
	t->name[h.name_len] = '\0';
	t->status = (tm_status)h.status;
	t->queued = (h.flags & FLAG_QUEUED) != 0;
	t->start_us = h.start_us;
	t->timeout_us = h.timeout_us;
	t->ready_us = h.ready_us;
	t->lease_us = h.lease_us;
	t->owner = h.owner;
	if (head_only)
		return TM_OK;
	p += h.name_len;
	t->details_hash = tm__hash64(p + h.warnings_len, h.details_len);
	t->warnings = cJSON_ParseWithLength(p, h.warnings_len);
	t->details = cJSON_ParseWithLength(p + h.warnings_len, h.details_len);
	if (!cJSON_IsArray(t->warnings) || !cJSON_IsObject(t->details)) {
		tm__task_free(t);
		goto corrupt;
	}
	return TM_OK;
corrupt:
	return tm_errorf(TM_ESTORAGE, "task %.20s: stored record is corrupt", id);
}

int tm__task_decode(const char *id, const void *buf, size_t len, tm__task *t)
{
	return decode(id, buf, len, t, false);
}

int tm__task_decode_head(const char *id, const void *buf, size_t len, tm__task *t)
{
	return decode(id, buf, len, t, true);
}

/* ---- limits ------------------------------------------------------------------ */

/* The printed size of j, or 0 on out of memory. */
static size_t printed_size(const cJSON *j)
{
	char *s = tm__json_print(j);
	size_t n = s ? strlen(s) : 0;

	free(s);
	return n;
}

size_t tm__task_size(const tm__task *t, size_t *details)
{
	const cJSON *pr = cJSON_GetObjectItemCaseSensitive(t->details, "progress");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(pr, "message");
	size_t dn = printed_size(t->details), wn = printed_size(t->warnings);

	if (details)
		*details = dn;
	if (dn == 0 || wn == 0)
		return 0;
	/* The message is stored twice: in details.progress, and apart for
	 * the top-level "progress". */
	return dn + wn + strlen(t->name) + (cJSON_IsString(m) ? printed_size(m) : 2);
}

int tm__task_check_limits(const tm__task *t, const tm__limits *l,
                          const char *what, size_t *size)
{
	size_t keys = tm__json_keys(t->details), dn, n;

	if (keys > l->keys)
		return tm_errorf(TM_EWRONG_DATA, "%s would give the task's details %zu "
		                 "keys; the limit is %zu (max_keys)", what, keys, l->keys);
	/* Most tasks are far under the limits: a bound found by walking the
	 * tree spares printing them (the message is inside details). */
	dn = tm__json_bound(t->details);
	n = 2 * dn + tm__json_bound(t->warnings) + strlen(t->name);
	if (dn <= l->details_bytes && n <= l->task_bytes) {
		if (size)
			*size = n;
		return TM_OK;
	}
	n = tm__task_size(t, &dn);
	if (n == 0)
		return tm_errorf(TM_ENOMEM, "out of memory checking task %s", t->id);
	if (dn > l->details_bytes)
		return tm_errorf(TM_EWRONG_DATA, "%s would make the task's details %zu "
		                 "bytes; the limit is %llu (max_details_bytes)", what, dn,
		                 (unsigned long long)l->details_bytes);
	if (size)
		*size = n;
	if (n > l->task_bytes)
		return tm_errorf(TM_EWRONG_DATA, "%s would make the task document "
		                 "%zu bytes; the limit is %llu (max_task_bytes)", what,
		                 n, (unsigned long long)l->task_bytes);
	return TM_OK;
}

/* ---- the task JSON ----------------------------------------------------------- */

int tm__task_render(const char *id, const void *buf, size_t len,
                    bool with_details, tm__buf *out)
{
	struct head h;
	const char *p;
	char time[32];

	if (!parts(buf, len, &h, &p))
		return tm_errorf(TM_ESTORAGE, "task %.20s: stored record is corrupt", id);
	/* Names are [A-Za-z0-9_.-] and ids alphanumeric: nothing to escape. */
	tm__buf_add(out, "{\"task_id\":\"", 12);
	tm__buf_add(out, id, TM_TASK_ID_LEN);
	tm__buf_add(out, "\",\"name\":\"", 10);
	tm__buf_add(out, p, h.name_len);
	tm__buf_add(out, "\",\"start_time\":", 15);
	tm__buf_add(out, time, tm__time_format(time, h.start_us));
	tm__buf_add(out, ",\"status\":\"", 11);
	tm__buf_str(out, tm_status_name((tm_status)h.status));
	tm__buf_add(out, "\",\"progress\":", 13);
	tm__buf_add(out, p + h.name_len + h.warnings_len + h.details_len, h.message_len);
	tm__buf_add(out, ",\"warnings\":", 12);
	tm__buf_add(out, p + h.name_len, h.warnings_len);
	if (with_details) {
		tm__buf_add(out, ",\"details\":", 11);
		tm__buf_add(out, p + h.name_len + h.warnings_len, h.details_len);
	}
	tm__buf_add(out, "}", 1);
	return out->oom ? tm__error_oom() : TM_OK;
}

unsigned tm__task_attempts(const tm__task *t)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(t->details, "attempts");

	return cJSON_IsNumber(a) && a->valuedouble > 0 ? (unsigned)a->valuedouble : 0;
}

int tm__task_set_detail(tm__task *t, const char *key, cJSON *item)
{
	if (item == NULL)
		return tm_errorf(TM_ENOMEM, "out of memory updating task %s", t->id);
	if (cJSON_GetObjectItemCaseSensitive(t->details, key) != NULL) {
		if (cJSON_ReplaceItemInObjectCaseSensitive(t->details, key, item))
			return TM_OK;
	} else if (cJSON_AddItemToObject(t->details, key, item)) {
		return TM_OK;
	}
	cJSON_Delete(item);
	return tm_errorf(TM_ENOMEM, "out of memory updating task %s", t->id);
}

int tm__task_set_attempts(tm__task *t, unsigned n)
{
	return tm__task_set_detail(t, "attempts", cJSON_CreateNumber(n));
}

int tm__task_set_text(tm__task *t, const char *key, const char *text)
{
	return tm__task_set_detail(t, key, cJSON_CreateString(text));
}

int tm__task_finish(tm__task *t, tm_status st, int64_t now_us)
{
	t->status = st;
	t->queued = false;
	t->owner = 0;
	t->lease_us = 0;
	return tm__task_set_detail(t, "end_time", tm__json_time(now_us));
}

int tm__task_set_message(tm__task *t, const char *msg)
{
	cJSON *pr = cJSON_GetObjectItemCaseSensitive(t->details, "progress");
	cJSON *m;

	if (!cJSON_IsObject(pr)) {
		int err = tm__task_set_detail(t, "progress", cJSON_CreateObject());
		if (err)
			return err;
		pr = cJSON_GetObjectItemCaseSensitive(t->details, "progress");
	}
	m = cJSON_CreateString(msg);
	if (m == NULL)
		return tm_errorf(TM_ENOMEM, "out of memory updating task %s", t->id);
	if (cJSON_GetObjectItemCaseSensitive(pr, "message") != NULL)
		cJSON_ReplaceItemInObjectCaseSensitive(pr, "message", m);
	else
		cJSON_AddItemToObject(pr, "message", m);
	return TM_OK;
}

int tm__task_add_warning(tm__task *t, const char *msg)
{
	cJSON *s = cJSON_CreateString(msg);

	if (s == NULL || !cJSON_AddItemToArray(t->warnings, s)) {
		cJSON_Delete(s);
		return tm_errorf(TM_ENOMEM, "out of memory updating task %s", t->id);
	}
	return TM_OK;
}
