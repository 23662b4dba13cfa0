/* The task document: the stored record of a task and the task JSON that
 * every call returns (SPEC section 2).  The only module that builds it. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Record layout (native byte order; an LMDB store is never moved between
 * machines of different architectures):
 *   head  fixed fields below
 *   name  head.name_len bytes
 *   json  {"warnings": [...], "details": {...}} up to the end
 * Fields the runtime reads in its scans are fixed so a scan never parses
 * JSON; everything the API exposes as JSON stays JSON. */
#define RECORD_FORMAT 1
#define FLAG_QUEUED 0x1

struct head {
	uint8_t format;
	uint8_t status;
	uint8_t flags;
	uint8_t name_len;
	uint32_t reserved;
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
	cJSON *doc = cJSON_CreateObject();
	char *json = NULL;
	size_t jlen;
	char *out;

	if (doc == NULL)
		goto oom;
	/* Borrow the two trees for printing, then give them back. */
	cJSON_AddItemReferenceToObject(doc, "warnings", t->warnings);
	cJSON_AddItemReferenceToObject(doc, "details", t->details);
	json = tm__json_print(doc);
	cJSON_Delete(doc);
	if (json == NULL)
		goto oom;
	jlen = strlen(json);
	out = malloc(sizeof(h) + h.name_len + jlen);
	if (out == NULL)
		goto oom;
	memcpy(out, &h, sizeof(h));
	memcpy(out + sizeof(h), t->name, h.name_len);
	memcpy(out + sizeof(h) + h.name_len, json, jlen);
	cJSON_free(json);
	*buf = out;
	*len = sizeof(h) + h.name_len + jlen;
	return TM_OK;
oom:
	cJSON_free(json);
	return tm_errorf(TM_ENOMEM, "out of memory encoding task %s", t->id);
}

static int decode(const char *id, const void *buf, size_t len, tm__task *t,
                  bool head_only)
{
	struct head h;
	const char *p = buf;
	cJSON *doc;

	memset(t, 0, sizeof(*t));
	if (len < sizeof(h))
		goto corrupt;
	memcpy(&h, p, sizeof(h));
	if (h.format != RECORD_FORMAT || h.status > TM_COMPLETED ||
	    h.name_len > TM_NAME_MAX || sizeof(h) + h.name_len > len)
		goto corrupt;
	memcpy(t->id, id, TM_TASK_ID_LEN);
	memcpy(t->name, p + sizeof(h), h.name_len);
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
	doc = cJSON_ParseWithLength(p + sizeof(h) + h.name_len,
	                            len - sizeof(h) - h.name_len);
	if (doc == NULL)
		goto corrupt;
	t->warnings = cJSON_DetachItemFromObjectCaseSensitive(doc, "warnings");
	t->details = cJSON_DetachItemFromObjectCaseSensitive(doc, "details");
	cJSON_Delete(doc);
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

static const char *progress_message(const tm__task *t)
{
	const cJSON *pr = cJSON_GetObjectItemCaseSensitive(t->details, "progress");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(pr, "message");

	return cJSON_IsString(m) ? m->valuestring : "";
}

cJSON *tm__task_view(const tm__task *t, bool with_details)
{
	cJSON *v = cJSON_CreateObject();
	cJSON *w = cJSON_Duplicate(t->warnings, 1);
	cJSON *d = with_details ? cJSON_Duplicate(t->details, 1) : NULL;

	if (v == NULL || w == NULL || (with_details && d == NULL))
		goto oom;
	if (!cJSON_AddStringToObject(v, "task_id", t->id) ||
	    !cJSON_AddStringToObject(v, "name", t->name) ||
	    !cJSON_AddItemToObject(v, "start_time", tm__json_time(t->start_us)) ||
	    !cJSON_AddStringToObject(v, "status", tm_status_name(t->status)) ||
	    !cJSON_AddStringToObject(v, "progress", progress_message(t)))
		goto oom;
	cJSON_AddItemToObject(v, "warnings", w);
	w = NULL;
	if (with_details) {
		cJSON_AddItemToObject(v, "details", d);
		d = NULL;
	}
	return v;
oom:
	cJSON_Delete(v);
	cJSON_Delete(w);
	cJSON_Delete(d);
	tm_errorf(TM_ENOMEM, "out of memory building task %s", t->id);
	return NULL;
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

void tm__task_set_attempts(tm__task *t, unsigned n)
{
	tm__task_set_detail(t, "attempts", cJSON_CreateNumber(n));
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
