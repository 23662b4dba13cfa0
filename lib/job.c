/* What a handler sees: the tm_job_* calls.  Progress and warnings are kept
 * in the job and written by the runtime's supervisor at most once per
 * coalescing window, and once more with the final status, so a handler may
 * report in a tight loop without a disk sync per call. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "id.h"
#include "job.h"
#include "json.h"
#include "status.h"

static void job_free(tm_job *job);

void tm__job_renewed(tm_job *job, int64_t began_mono_us)
{
	atomic_store(&job->fence_us, began_mono_us + job->lease_us * 2 / 3);
}

int tm__job_new(const tm__jobreg *reg, const tm__task *t, const char *secret,
                unsigned lease_ms, const tm__limits *lim,
                int64_t claimed_mono_us, tm_job **out)
{
	tm_job *job = calloc(1, sizeof(*job));
	const cJSON *pr = cJSON_GetObjectItemCaseSensitive(t->details, "progress");
	const cJSON *pl = cJSON_GetObjectItemCaseSensitive(t->details, "payload");

	*out = NULL;
	if (job == NULL)
		return tm__error_oom();
	atomic_init(&job->refs, 1);
	job->reg = reg;
	memcpy(job->id, t->id, sizeof(job->id));
	memcpy(job->name, t->name, sizeof(job->name));
	job->attempt = tm__task_attempts(t);
	job->owner = t->owner;
	job->lease_us = (int64_t)lease_ms * 1000;
	job->lim = lim;
	tm__job_renewed(job, claimed_mono_us);
	pthread_mutex_init(&job->mu, NULL);
	job->payload = pl ? tm__json_print(pl) : strdup("{}");
	job->secret = secret ? strdup(secret) : NULL;
	job->progress = cJSON_IsObject(pr) ? cJSON_Duplicate(pr, 1) : cJSON_CreateObject();
	job->warnings = cJSON_CreateArray();
	job->base_warnings = cJSON_Duplicate(t->warnings, 1);
	if (job->payload == NULL || (secret && job->secret == NULL) ||
	    job->progress == NULL || job->warnings == NULL ||
	    job->base_warnings == NULL) {
		job_free(job);
		return tm__error_oom();
	}
	*out = job;
	return TM_OK;
}

static void job_free(tm_job *job)
{
	if (job == NULL)
		return;
	free(job->payload);
	if (job->secret) {
		/* The refresh token should not linger in freed memory. */
		memset(job->secret, 0, strlen(job->secret));
		free(job->secret);
	}
	cJSON_Delete(job->progress);
	cJSON_Delete(job->warnings);
	cJSON_Delete(job->base_warnings);
	cJSON_Delete(job->output);
	free(job->error);
	pthread_mutex_destroy(&job->mu);
	free(job);
}

void tm__job_ref(tm_job *job)
{
	atomic_fetch_add(&job->refs, 1);
}

void tm__job_unref(tm_job *job)
{
	if (job && atomic_fetch_sub(&job->refs, 1) == 1)
		job_free(job);
}

int tm__job_apply(tm_job *job, tm__task *t, tm__job_mark *mark, bool *ours)
{
	cJSON *w, *item;
	int err;

	mark->gen = job->gen;
	*ours = t->owner == job->owner && !tm__status_final(t->status);
	if (!*ours || (job->gen == job->written_gen && job->error == NULL))
		return TM_OK;
	/* Whole values, not appends: two writes of one job may be in flight
	 * (the supervisor's flush and the outcome), and applying twice must
	 * store the same thing.  Copies: the transaction may run again. */
	err = tm__task_set_detail(t, "progress", cJSON_Duplicate(job->progress, 1));
	if (err)
		return err;
	w = cJSON_Duplicate(job->base_warnings, 1);
	if (w == NULL)
		return tm__error_oom();
	cJSON_ArrayForEach(item, job->warnings) {
		if (!cJSON_AddItemToArray(w, cJSON_Duplicate(item, 1))) {
			cJSON_Delete(w);
			return tm__error_oom();
		}
	}
	cJSON_Delete(t->warnings);
	t->warnings = w;
	if (job->output &&
	    (err = tm__task_set_detail(t, "output", cJSON_Duplicate(job->output, 1))) != TM_OK)
		return err;
	return job->error ? tm__task_set_text(t, "error", job->error) : TM_OK;
}

void tm__job_written(tm_job *job, const tm__job_mark *mark)
{
	job->written_gen = mark->gen;
}

bool tm__job_dirty(tm_job *job)
{
	return job->gen != job->written_gen;
}

const char *tm_job_task_id(const tm_job *job)
{
	return job ? job->id : NULL;
}

const char *tm_job_name(const tm_job *job)
{
	return job ? job->name : NULL;
}

const char *tm_job_payload(const tm_job *job)
{
	return job ? job->payload : NULL;
}

const char *tm_job_secret(const tm_job *job)
{
	return job ? job->secret : NULL;
}

unsigned tm_job_attempt(const tm_job *job)
{
	return job ? job->attempt : 0;
}

int tm_job_cancelled(const tm_job *job)
{
	tm_job *j = (tm_job *)job;

	if (job == NULL || atomic_load(&j->stop) != 0)
		return 1;
	if (tm__mono_us() > atomic_load(&j->fence_us)) {
		/* The lease could not be renewed in time (the store is out of
		 * reach): stop before another process may take the task. */
		atomic_fetch_or(&j->stop, TM__STOP_LOST);
		return 1;
	}
	return 0;
}

/* A handler's share of a task's limits: its progress (the message
 * included) half of max_details_bytes, its warnings a quarter of
 * max_task_bytes; the rest is the payload's and the runtime's. */
static int progress_fits(const tm_job *job, const cJSON *progress)
{
	size_t keys = tm__json_keys(progress), n;
	char *s;

	if (keys > job->lim->keys)
		return tm_errorf(TM_EWRONG_DATA, "progress would have %zu keys; the "
		                 "limit is %zu (max_keys)", keys, job->lim->keys);
	s = tm__json_print(progress);
	if (s == NULL)
		return tm__error_oom();
	n = strlen(s);
	free(s);
	if (n > job->lim->details_bytes / 2)
		return tm_errorf(TM_EWRONG_DATA, "progress would be %zu bytes; the limit "
		                 "is %llu (half of max_details_bytes)", n,
		                 (unsigned long long)job->lim->details_bytes / 2);
	return TM_OK;
}

/* Replace the job's progress with what change() makes of a copy, if the
 * result fits. */
static int change_progress(tm_job *job, int (*change)(cJSON **p, void *arg),
                           void *arg)
{
	cJSON *p;
	int err;

	pthread_mutex_lock(&job->mu);
	p = cJSON_Duplicate(job->progress, 1);
	err = p ? change(&p, arg) : tm__error_oom();
	if (!err)
		err = progress_fits(job, p);
	if (!err) {
		cJSON_Delete(job->progress);
		job->progress = p;
		p = NULL;
		job->gen++;
	}
	pthread_mutex_unlock(&job->mu);
	cJSON_Delete(p);
	return err;
}

static int merge_progress(cJSON **p, void *patch)
{
	*p = tm__json_merge(*p, patch);
	return *p ? TM_OK : tm__error_oom();
}

int tm_job_progress(tm_job *job, const char *progress_json)
{
	cJSON *patch;
	int err;

	if (job == NULL || progress_json == NULL)
		return tm_errorf(TM_EINVAL, "tm_job_progress needs a job and a JSON object");
	patch = tm__json_parse(progress_json, "progress", &err);
	if (patch == NULL)
		return err;
	if (!cJSON_IsObject(patch))
		err = tm_errorf(TM_EWRONG_DATA, "progress must be a JSON object");
	else
		err = change_progress(job, merge_progress, patch);
	cJSON_Delete(patch);
	return err;
}

/* A handler's output: details.output, handed to the next task of a
 * pipeline.  Its share of the limits: a quarter of max_details_bytes and
 * of max_keys. */
int tm_job_output(tm_job *job, const char *output_json)
{
	char *text = NULL;
	cJSON *o;
	int err = TM_OK;

	if (job == NULL || output_json == NULL)
		return tm_errorf(TM_EINVAL, "tm_job_output needs a job and a JSON object");
	o = tm__json_parse(output_json, "output", &err);
	if (o == NULL)
		return err;
	if (!cJSON_IsObject(o))
		err = tm_errorf(TM_EWRONG_DATA, "output must be a JSON object");
	else if ((text = tm__json_print(o)) == NULL)
		err = tm__error_oom();
	else if (tm__json_keys(o) > job->lim->keys / 4 ||
	         strlen(text) > job->lim->details_bytes / 4)
		err = tm_errorf(TM_EWRONG_DATA, "output would be %zu bytes with %zu "
		                "keys; the limit is %llu bytes and %zu keys (a quarter "
		                "of max_details_bytes and of max_keys)", strlen(text),
		                tm__json_keys(o),
		                (unsigned long long)job->lim->details_bytes / 4,
		                job->lim->keys / 4);
	free(text);
	if (err) {
		cJSON_Delete(o);
		return err;
	}
	pthread_mutex_lock(&job->mu);
	cJSON_Delete(job->output);
	job->output = o;
	job->gen++;
	pthread_mutex_unlock(&job->mu);
	return TM_OK;
}

/* printf into a malloc'd string. */
static char *vformat(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (fmt == NULL || vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

/* The printf-formatted text of a tm_job_* call as a new cJSON string. */
static int vstring(tm_job *job, const char *call, const char *fmt, va_list ap,
                   cJSON **out)
{
	char *msg;

	if (job == NULL || fmt == NULL)
		return tm_errorf(TM_EINVAL, "%s needs a job and a format", call);
	msg = vformat(fmt, ap);
	*out = msg ? cJSON_CreateString(msg) : NULL;
	free(msg);
	return *out ? TM_OK : tm__error_oom();
}

static int set_message(cJSON **p, void *m)
{
	cJSON *copy = cJSON_Duplicate(m, 1);

	if (copy == NULL)
		return tm__error_oom();
	if (cJSON_GetObjectItemCaseSensitive(*p, "message"))
		cJSON_ReplaceItemInObjectCaseSensitive(*p, "message", copy);
	else
		cJSON_AddItemToObject(*p, "message", copy);
	return TM_OK;
}

int tm_job_message(tm_job *job, const char *fmt, ...)
{
	va_list ap;
	cJSON *m;
	int err;

	va_start(ap, fmt);
	err = vstring(job, "tm_job_message", fmt, ap, &m);
	va_end(ap);
	if (err)
		return err;
	err = change_progress(job, set_message, m);
	cJSON_Delete(m);
	return err;
}

int tm_job_warn(tm_job *job, const char *fmt, ...)
{
	va_list ap;
	cJSON *w;
	size_t n;
	int err;

	va_start(ap, fmt);
	err = vstring(job, "tm_job_warn", fmt, ap, &w);
	va_end(ap);
	if (err)
		return err;
	n = strlen(w->valuestring) + 3; /* quotes and a comma, at least */
	pthread_mutex_lock(&job->mu);
	if (job->warn_bytes + n > job->lim->task_bytes / 4) {
		err = tm_errorf(TM_EWRONG_DATA, "this run's warnings would exceed %llu "
		                "bytes (a quarter of max_task_bytes)",
		                (unsigned long long)job->lim->task_bytes / 4);
	} else {
		cJSON_AddItemToArray(job->warnings, w);
		w = NULL;
		job->warn_bytes += n;
		job->gen++;
	}
	pthread_mutex_unlock(&job->mu);
	cJSON_Delete(w);
	return err;
}

tm_status tm_job_fail(tm_job *job, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (job == NULL)
		return TM_FAILED;
	va_start(ap, fmt);
	msg = vformat(fmt, ap);
	va_end(ap);
	if (msg && strlen(msg) > TM__JOB_ERROR_MAX) {
		size_t cut = TM__JOB_ERROR_MAX;

		while (cut > 0 && ((unsigned char)msg[cut] & 0xC0) == 0x80)
			cut--; /* not inside a UTF-8 sequence */
		msg[cut] = '\0';
	}
	pthread_mutex_lock(&job->mu);
	free(job->error);
	job->error = msg ? msg : strdup("failed");
	pthread_mutex_unlock(&job->mu);
	return TM_FAILED;
}
