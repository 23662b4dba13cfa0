/* See ordering_load.h. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "ordering_load.h"

int64_t ol_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ol_real_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A new last element of `size` bytes in the array *v of *n, grown as
 * needed (*cap elements allocated). */
static void *append(void **v, size_t *cap, size_t *n, size_t size)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		*v = realloc(*v, *cap * size);
		if (*v == NULL)
			abort();
	}
	return (char *)*v + (*n)++ * size;
}

static void error(struct ol_log *log, const char *fmt, ...)
{
	va_list ap;

	if (log->errors++ == 0) {
		va_start(ap, fmt);
		vsnprintf(log->first_error, sizeof(log->first_error), fmt, ap);
		va_end(ap);
	}
}

int ol_status_of(const char *s)
{
	for (int st = TM_REQUEST_SENT; s && st <= TM_COMPLETED; st++)
		if (strcmp(s, tm_status_name((tm_status)st)) == 0)
			return st;
	return -1;
}

static void add_trig(struct ol_log *log, const char *id, int64_t before, int64_t after,
                     int64_t after_rt_us, unsigned proc, unsigned thread)
{
	struct ol_trig *t = append((void **)&log->trig, &log->cap_trig, &log->n_trig,
	                           sizeof(*t));

	*t = (struct ol_trig){ .before = before, .after = after, .after_rt_us = after_rt_us,
	                       .proc = proc, .thread = thread };
	snprintf(t->id, sizeof(t->id), "%s", id);
}

static void observe(struct ol_log *log, const char *id, int status, int64_t before,
                    int64_t after, unsigned proc, unsigned thread, unsigned seq)
{
	struct ol_obs *o = append((void **)&log->obs, &log->cap_obs, &log->n_obs, sizeof(*o));

	*o = (struct ol_obs){ .status = status, .before = before, .after = after,
	                      .proc = proc, .thread = thread, .seq = seq };
	snprintf(o->id, sizeof(o->id), "%s", id);
}

/* Log the status of one task document; returns its id (in the document). */
static const char *observe_doc(struct ol_log *log, const cJSON *t, int64_t before,
                               int64_t after, unsigned proc, unsigned thread,
                               unsigned seq)
{
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(t, "task_id"));
	int st = ol_status_of(cJSON_GetStringValue(cJSON_GetObjectItem(t, "status")));

	if (id == NULL || strlen(id) != TM_TASK_ID_LEN || st < 0) {
		error(log, "a task document without id or status");
		return NULL;
	}
	observe(log, id, st, before, after, proc, thread, seq);
	return id;
}

static unsigned next(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) & 0x7fff;
}

void ol_run(tm_manager *tm, const char *name, unsigned proc, unsigned thread,
            unsigned ops, unsigned seed, struct ol_log *log)
{
	/* Mostly moves that keep a task alive a while, so that many calls
	 * meet it at every status; now and then one that ends it. */
	static const char *const patches[] = {
		"{\"status\":\"RUNNING\"}",
		"{\"status\":\"RUNNING\",\"details\":{\"progress\":{\"message\":\"x\"}}}",
		"{\"status\":\"CANCELLED_REQUESTED\"}",
		"{\"details\":{\"host\":1}}",
		"{\"status\":\"RUNNING\"}",
		"{\"completed\":true}",
		"{\"failed\":true}",
		"{\"status\":\"CANCELLED\"}",
		"{\"status\":\"COMPLETED\"}",
		"{\"status\":\"REQUEST_SENT\"}",   /* last: WRONG_DATA_TYPE */
	};
#define N_PATCHES (sizeof(patches) / sizeof(patches[0]))
	unsigned s = seed, seq = 0;

	for (unsigned i = 0; i < ops; i++) {
		char *out = NULL, id[TM_TASK_ID_LEN + 1];
		int64_t b, a;
		cJSON *j, *tasks, *t;
		int rc, n, op, pidx = -1;

		if (next(&s) % 100 < 25) {
			b = ol_mono_ns();
			rc = tm_trigger(tm, name, NULL, 0, &out);
			a = ol_mono_ns();
			log->calls++;
			seq++;
			if (rc == TM_OK) {
				int64_t rt = ol_real_us();
				const char *tid;

				j = cJSON_Parse(out);
				tid = cJSON_GetStringValue(cJSON_GetObjectItem(j, "task_id"));
				snprintf(id, sizeof(id), "%s", tid ? tid : "");
				cJSON_Delete(j);
				add_trig(log, id, b, a, rt, proc, thread);
				observe(log, id, TM_REQUEST_SENT, b, a, proc, thread, seq);
			} else if (rc == TM_EALREADY_RUNNING) {
				log->busy++;
			} else {
				error(log, "tm_trigger: %s (%s)", tm_error_name(rc), tm_last_error());
			}
			tm_free(out);
			continue;
		}

		/* The newest tasks: every one listed is an observation. */
		b = ol_mono_ns();
		rc = tm_list_recent(tm, name, 1, 3, 0, &out);
		a = ol_mono_ns();
		log->calls++;
		seq++;
		if (rc != TM_OK) {
			error(log, "tm_list_recent: %s (%s)", tm_error_name(rc), tm_last_error());
			continue;
		}
		j = cJSON_Parse(out);
		tm_free(out);
		tasks = cJSON_GetObjectItem(j, "tasks");
		n = cJSON_GetArraySize(tasks);
		id[0] = '\0';
		if (n > 0) {
			int pick = (int)(next(&s) % (unsigned)n), k = 0;

			cJSON_ArrayForEach(t, tasks) {
				const char *tid = observe_doc(log, t, b, a, proc, thread, seq);
				if (tid && k++ == pick)
					snprintf(id, sizeof(id), "%s", tid);
			}
		}
		cJSON_Delete(j);
		if (id[0] == '\0')
			continue;

		/* One call on one of them. */
		op = (int)(next(&s) % 10);
		out = NULL;
		b = ol_mono_ns();
		if (op < 2)
			rc = tm_get(tm, name, id, 0, &out);
		else if (op < 8) {
			pidx = (int)(next(&s) % N_PATCHES);
			rc = tm_patch(tm, name, id, patches[pidx], &out);
		}
		else
			rc = tm_cancel(tm, name, id, &out);
		a = ol_mono_ns();
		log->calls++;
		seq++;
		if (rc == TM_OK) {
			j = cJSON_Parse(out);
			observe_doc(log, j, b, a, proc, thread, seq);
			cJSON_Delete(j);
		} else if (rc == TM_ELOWER_STATUS) {
			log->lower++;
		} else if (!(rc == TM_EWRONG_DATA && pidx == (int)N_PATCHES - 1)) {
			error(log, "op %d on %s: %s (%s)", op, id, tm_error_name(rc),
			      tm_last_error());
		}
		tm_free(out);
	}
}

void ol_append(struct ol_log *to, struct ol_log *from)
{
	for (size_t i = 0; i < from->n_obs; i++)
		*(struct ol_obs *)append((void **)&to->obs, &to->cap_obs, &to->n_obs,
		                         sizeof(*to->obs)) = from->obs[i];
	for (size_t i = 0; i < from->n_trig; i++)
		*(struct ol_trig *)append((void **)&to->trig, &to->cap_trig, &to->n_trig,
		                          sizeof(*to->trig)) = from->trig[i];
	to->calls += from->calls;
	to->busy += from->busy;
	to->lower += from->lower;
	if (from->errors && to->errors == 0)
		memcpy(to->first_error, from->first_error, sizeof(to->first_error));
	to->errors += from->errors;
}

void ol_free(struct ol_log *log)
{
	free(log->obs);
	free(log->trig);
	memset(log, 0, sizeof(*log));
}

int ol_write(FILE *f, const struct ol_log *log)
{
	for (size_t i = 0; i < log->n_obs; i++) {
		const struct ol_obs *o = &log->obs[i];
		fprintf(f, "O %s %d %lld %lld %u %u %u\n", o->id, o->status,
		        (long long)o->before, (long long)o->after, o->proc, o->thread,
		        o->seq);
	}
	for (size_t i = 0; i < log->n_trig; i++) {
		const struct ol_trig *t = &log->trig[i];
		fprintf(f, "T %s %lld %lld %lld %u %u\n", t->id, (long long)t->before,
		        (long long)t->after, (long long)t->after_rt_us, t->proc, t->thread);
	}
	fprintf(f, "S %lu %lu %lu %u %s\n", log->calls, log->busy, log->lower,
	        log->errors, log->errors ? log->first_error : "-");
	return ferror(f) ? -1 : 0;
}

int ol_read(FILE *f, struct ol_log *log)
{
	char line[512];

	while (fgets(line, sizeof(line), f)) {
		long long b, a, rt;
		unsigned p, th, sq, e;
		unsigned long c, bu, lo;
		char id[32], msg[256];
		int st, n;

		if (line[0] == 'O' &&
		    sscanf(line, "O %31s %d %lld %lld %u %u %u", id, &st, &b, &a, &p,
		           &th, &sq) == 7 && strlen(id) == TM_TASK_ID_LEN) {
			observe(log, id, st, b, a, p, th, sq);
		} else if (line[0] == 'T' &&
		           sscanf(line, "T %31s %lld %lld %lld %u %u", id, &b, &a, &rt,
		                  &p, &th) == 6 && strlen(id) == TM_TASK_ID_LEN) {
			add_trig(log, id, b, a, rt, p, th);
		} else if (line[0] == 'S' &&
		           sscanf(line, "S %lu %lu %lu %u %n", &c, &bu, &lo, &e, &n) == 4) {
			snprintf(msg, sizeof(msg), "%s", line + n);
			msg[strcspn(msg, "\n")] = '\0';
			log->calls += c;
			log->busy += bu;
			log->lower += lo;
			if (e && log->errors == 0)
				snprintf(log->first_error, sizeof(log->first_error), "%s", msg);
			log->errors += e;
		} else {
			return -1;
		}
	}
	return 0;
}
