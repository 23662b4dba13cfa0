/* The task document: the stored record of a task and the task JSON that
 * every call returns (doc/api.md, "The task").  The only module that
 * builds either. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "id.h"
#include "json.h"
#include "task.h"

/* Record layout (native byte order; an LMDB store is never moved between
 * machines of different architectures), format 3:
 *   head      fixed fields below
 *   view      the task JSON of the private view, as tm_get answers it:
 *             {"task_id":…,"name":…,"start_time":…,"status":…,
 *              "progress":…,"warnings":[…],"details":{…}}
 * The head gives where the warnings and details lie inside the view, and
 * where the public view ends (before ,"details").  Fields the runtime reads
 * in its scans are fixed, so a scan never parses JSON; a read of a task, or
 * a page of a listing, is one or two copies of bytes (tm__task_render).
 *
 * Format 2 (the parts apart: name, warnings, details, the message; the
 * answer assembled on each read) is still read, so stores written before
 * format 3 need no conversion: a task moves to format 3 at its next write. */
#define FORMAT_PARTS 2
#define FORMAT_VIEW 3
#define FLAG_QUEUED 0x1
/* The task's priority, -10..10, in the flags' five bits above FLAG_QUEUED
 * (two's complement): records written before priorities read as 0. */
#define PRIORITY_SHIFT 1
#define PRIORITY_MASK 0x1f

static uint8_t priority_bits(int priority)
{
	return (uint8_t)(((unsigned)priority & PRIORITY_MASK) << PRIORITY_SHIFT);
}

static int priority_of(uint8_t flags)
{
	int p = (flags >> PRIORITY_SHIFT) & PRIORITY_MASK;

	return p & 0x10 ? p - 0x20 : p;
}

struct head {                   /* format 2 */
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

struct view_head {              /* format 3 */
	uint8_t format;
	uint8_t status;
	uint8_t flags;
	uint8_t name_len;
	uint32_t public_len;    /* the view up to ,"details": */
	uint32_t warnings_off, warnings_len;
	uint32_t details_off, details_len;
	int64_t start_us;
	int64_t timeout_us;
	int64_t ready_us;
	int64_t lease_us;
	uint64_t owner;
};

/* The view's opening, up to the name: names are [A-Za-z0-9_.-] and ids
 * alphanumeric, so neither needs escaping and the name lies here. */
#define VIEW_ID_OFF 12          /* strlen("{\"task_id\":\"") */
#define VIEW_NAME_OFF (VIEW_ID_OFF + TM_TASK_ID_LEN + 10) /* + "\",\"name\":\"" */

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

/* The task JSON up to its warnings, into out: the same whether it is
 * stored (format 3) or assembled on a read (format 2). */
static void view_opening(tm__buf *out, const char *id, const char *name,
                         size_t name_len, int64_t start_us, tm_status st,
                         const char *message, size_t message_len)
{
	char time[32];

	tm__buf_add(out, "{\"task_id\":\"", VIEW_ID_OFF);
	tm__buf_add(out, id, TM_TASK_ID_LEN);
	tm__buf_add(out, "\",\"name\":\"", 10);
	tm__buf_add(out, name, name_len);
	tm__buf_add(out, "\",\"start_time\":", 15);
	tm__buf_add(out, time, tm__time_format(time, start_us));
	tm__buf_add(out, ",\"status\":\"", 11);
	tm__buf_str(out, tm_status_name(st));
	tm__buf_add(out, "\",\"progress\":", 13);
	tm__buf_add(out, message, message_len);
	tm__buf_add(out, ",\"warnings\":", 12);
}

int tm__task_encode(const tm__task *t, void **buf, size_t *len)
{
	struct view_head h = {
		.format = FORMAT_VIEW,
		.status = (uint8_t)t->status,
		.flags = (uint8_t)((t->queued ? FLAG_QUEUED : 0) | priority_bits(t->priority)),
		.name_len = (uint8_t)strlen(t->name),
		.start_us = t->start_us,
		.timeout_us = t->timeout_us,
		.ready_us = t->ready_us,
		.lease_us = t->lease_us,
		.owner = t->owner,
	};
	tm__buf b = { 0 };
	cJSON *msg;
	char *w, *d, *m = NULL;
	size_t wn, dn, mn;

	settle_times(t->details);
	msg = cJSON_CreateString(progress_message(t));
	w = tm__json_print(t->warnings);
	d = tm__json_print(t->details);
	m = msg ? tm__json_print(msg) : NULL;
	cJSON_Delete(msg);
	if (w == NULL || d == NULL || m == NULL)
		goto oom;
	wn = strlen(w);
	dn = strlen(d);
	mn = strlen(m);
	/* The head goes in front once the offsets are known. */
	tm__buf_reserve(&b, sizeof(h) + 160 + h.name_len + wn + dn + mn);
	tm__buf_add(&b, (const char *)&h, sizeof(h));
	view_opening(&b, t->id, t->name, h.name_len, t->start_us, t->status, m, mn);
	h.warnings_off = (uint32_t)(b.len - sizeof(h));
	h.warnings_len = (uint32_t)wn;
	tm__buf_add(&b, w, wn);
	h.public_len = (uint32_t)(b.len - sizeof(h));
	tm__buf_add(&b, ",\"details\":", 11);
	h.details_off = (uint32_t)(b.len - sizeof(h));
	h.details_len = (uint32_t)dn;
	tm__buf_add(&b, d, dn);
	tm__buf_add(&b, "}", 1);
	if (b.oom)
		goto oom;
	memcpy(b.p, &h, sizeof(h));
	*len = b.len;
	*buf = b.p;
	free(w);
	free(d);
	free(m);
	return TM_OK;
oom:
	tm__buf_take(&b, NULL);
	free(w);
	free(d);
	free(m);
	return tm_errorf(TM_ENOMEM, "out of memory encoding task %s", t->id);
}

/* A stored record of either format, checked and taken apart (pointing into
 * its bytes). */
struct record {
	tm_status status;
	bool queued;
	int priority;
	int64_t start_us, timeout_us, ready_us, lease_us;
	uint64_t owner;
	const char *name, *warnings, *details;
	size_t name_len, warnings_len, details_len;
	const char *view;            /* format 3: the private view */
	size_t view_len, public_len;
	const char *message;         /* format 2: the progress message's JSON */
	size_t message_len;
};

static bool read_parts(const void *buf, size_t len, struct record *r)
{
	struct head h;
	const char *p = (const char *)buf + sizeof(h);

	memcpy(&h, buf, sizeof(h));
	if (h.status > TM_COMPLETED || h.name_len > TM_NAME_MAX ||
	    (uint64_t)sizeof(h) + h.name_len + h.warnings_len + h.details_len +
	    h.message_len != len)
		return false;
	*r = (struct record){
		.status = (tm_status)h.status, .queued = (h.flags & FLAG_QUEUED) != 0,
		.priority = priority_of(h.flags),
		.start_us = h.start_us, .timeout_us = h.timeout_us,
		.ready_us = h.ready_us, .lease_us = h.lease_us, .owner = h.owner,
		.name = p, .name_len = h.name_len,
		.warnings = p + h.name_len, .warnings_len = h.warnings_len,
		.details = p + h.name_len + h.warnings_len, .details_len = h.details_len,
		.message = p + h.name_len + h.warnings_len + h.details_len,
		.message_len = h.message_len,
	};
	return true;
}

static bool read_view(const void *buf, size_t len, struct record *r)
{
	struct view_head h;
	const char *v = (const char *)buf + sizeof(h);
	size_t n = len - sizeof(h);

	memcpy(&h, buf, sizeof(h));
	if (h.status > TM_COMPLETED || h.name_len > TM_NAME_MAX ||
	    VIEW_NAME_OFF + (size_t)h.name_len > h.warnings_off ||
	    (uint64_t)h.warnings_off + h.warnings_len != h.public_len ||
	    (uint64_t)h.public_len + 11 != h.details_off ||
	    (uint64_t)h.details_off + h.details_len + 1 != n)
		return false;
	*r = (struct record){
		.status = (tm_status)h.status, .queued = (h.flags & FLAG_QUEUED) != 0,
		.priority = priority_of(h.flags),
		.start_us = h.start_us, .timeout_us = h.timeout_us,
		.ready_us = h.ready_us, .lease_us = h.lease_us, .owner = h.owner,
		.name = v + VIEW_NAME_OFF, .name_len = h.name_len,
		.warnings = v + h.warnings_off, .warnings_len = h.warnings_len,
		.details = v + h.details_off, .details_len = h.details_len,
		.view = v, .view_len = n, .public_len = h.public_len,
	};
	return true;
}

/* False when the record of task id is corrupt. */
static bool read_record(const char *id, const void *buf, size_t len,
                        struct record *r)
{
	uint8_t format = len > 0 ? *(const uint8_t *)buf : 0;

	if (format == FORMAT_VIEW && len > sizeof(struct view_head))
		return read_view(buf, len, r) &&
		       memcmp(r->view + VIEW_ID_OFF, id, TM_TASK_ID_LEN) == 0;
	if (format == FORMAT_PARTS && len >= sizeof(struct head))
		return read_parts(buf, len, r);
	return false;
}

static int corrupt(const char *id)
{
	return tm_errorf(TM_ESTORAGE, "task %.20s: stored record is corrupt", id);
}

static int decode(const char *id, const void *buf, size_t len, tm__task *t,
                  bool head_only)
{
	struct record r;

	memset(t, 0, sizeof(*t));
	if (!read_record(id, buf, len, &r))
		return corrupt(id);
	memcpy(t->id, id, TM_TASK_ID_LEN);
	memcpy(t->name, r.name, r.name_len);
	t->name[r.name_len] = '\0';
	t->status = r.status;
	t->queued = r.queued;
	t->priority = r.priority;
	t->start_us = r.start_us;
	t->timeout_us = r.timeout_us;
	t->ready_us = r.ready_us;
	t->lease_us = r.lease_us;
	t->owner = r.owner;
	if (head_only)
		return TM_OK;
	t->details_hash = tm__hash64(r.details, r.details_len);
	t->warnings = cJSON_ParseWithLength(r.warnings, r.warnings_len);
	t->details = cJSON_ParseWithLength(r.details, r.details_len);
	if (!cJSON_IsArray(t->warnings) || !cJSON_IsObject(t->details)) {
		tm__task_free(t);
		return corrupt(id);
	}
	return TM_OK;
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
	const char *view = (const char *)buf + sizeof(struct view_head);
	size_t n = len - sizeof(struct view_head);
	struct record r;
	uint32_t public_len;

	/* Format 3, the path of every read: the bounds it copies and the id
	 * are checked; the rest of the head is not read (decode and tm_check
	 * check it all). */
	if (len > sizeof(struct view_head) && *(const uint8_t *)buf == FORMAT_VIEW) {
		memcpy(&public_len, (const char *)buf + offsetof(struct view_head, public_len),
		       sizeof(public_len));
		if (n <= VIEW_NAME_OFF || public_len >= n || view[n - 1] != '}' ||
		    memcmp(view + VIEW_ID_OFF, id, TM_TASK_ID_LEN) != 0)
			return corrupt(id);
		if (with_details) {
			tm__buf_add(out, view, n);
		} else {
			tm__buf_add(out, view, public_len);
			tm__buf_add(out, "}", 1);
		}
	} else if (!read_record(id, buf, len, &r)) {
		return corrupt(id);
	} else {
		view_opening(out, id, r.name, r.name_len, r.start_us, r.status,
		             r.message, r.message_len);
		tm__buf_add(out, r.warnings, r.warnings_len);
		if (with_details) {
			tm__buf_add(out, ",\"details\":", 11);
			tm__buf_add(out, r.details, r.details_len);
		}
		tm__buf_add(out, "}", 1);
	}
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
