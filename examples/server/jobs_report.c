/* analytics_report_export: a JSON document of the task store's own figures,
 * tm_stats() plus the run times of the most recent finished tasks of each
 * name, written to a LOCAL output table. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "jobs.h"

#define SAMPLE_PAGES 4   /* of 64 tasks: the newest 256 tasks per name */

struct durations {
	unsigned n;
	double sum, min, max;
};

static void sample(const cJSON *tasks, struct durations *d)
{
	const cJSON *t;

	cJSON_ArrayForEach(t, tasks) {
		const cJSON *start = cJSON_GetObjectItem(t, "start_time");
		const cJSON *det = cJSON_GetObjectItem(t, "details");
		const cJSON *end = cJSON_GetObjectItem(det, "end_time");
		double x;

		if (!cJSON_IsNumber(start) || !cJSON_IsNumber(end))
			continue;
		x = end->valuedouble - start->valuedouble;
		if (!(x >= 0))
			continue;
		d->min = d->n ? fmin(d->min, x) : x;
		d->max = d->n ? fmax(d->max, x) : x;
		d->sum += x;
		d->n++;
	}
}

/* {"finished": n, "mean_s": x, "min_s": x, "max_s": x} over recent tasks. */
static cJSON *durations_of(tm_manager *tm, const char *name)
{
	struct durations d = { 0, 0, 0, 0 };
	cJSON *o;

	for (int page = 1; page <= SAMPLE_PAGES; page++) {
		char *json = NULL;
		cJSON *j;
		int more;

		if (tm_list_recent(tm, name, page, 64, 0, &json) != TM_OK)
			break;
		j = cJSON_Parse(json);
		tm_free(json);
		sample(cJSON_GetObjectItem(j, "tasks"), &d);
		more = cJSON_IsTrue(cJSON_GetObjectItem(j, "has_next"));
		cJSON_Delete(j);
		if (!more)
			break;
	}
	o = cJSON_CreateObject();
	if (o && (!cJSON_AddNumberToObject(o, "finished", d.n) ||
	          (d.n && (!cJSON_AddNumberToObject(o, "mean_s", d.sum / d.n) ||
	                   !cJSON_AddNumberToObject(o, "min_s", d.min) ||
	                   !cJSON_AddNumberToObject(o, "max_s", d.max))))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *build_report(tm_job *job, tm_manager *tm)
{
	struct timeval now;
	cJSON *r = cJSON_CreateObject(), *stats = NULL, *durs, *name;
	char *json = NULL;

	if (r == NULL || tm_stats(tm, &json) != TM_OK ||
	    (stats = cJSON_Parse(json)) == NULL)
		goto fail;
	tm_free(json);
	json = NULL;
	gettimeofday(&now, NULL);
	if (!cJSON_AddStringToObject(r, "report", "analytics") ||
	    !cJSON_AddNumberToObject(r, "generated_at",
	                             (double)now.tv_sec + now.tv_usec / 1e6) ||
	    !cJSON_AddStringToObject(r, "task_id", tm_job_task_id(job)) ||
	    !cJSON_AddItemToObject(r, "stats", stats))
		goto fail;
	durs = cJSON_AddObjectToObject(r, "durations");
	if (durs == NULL)
		goto fail_r;
	cJSON_ArrayForEach(name, cJSON_GetObjectItem(stats, "names"))
		if (!cJSON_AddItemToObject(durs, name->string,
		                           durations_of(tm, name->string)))
			goto fail_r;
	return r;
fail:
	cJSON_Delete(stats);
fail_r:
	tm_free(json);
	cJSON_Delete(r);
	return NULL;
}

tm_status srv_run_report(tm_job *job, void *user)
{
	const srv_jobs *jobs = user;
	srv_output_ctx c;
	srv_out *o = NULL;
	cJSON *report = NULL;
	char *text = NULL, msg[300];
	int dirfd = -1, rc;

	rc = srv_ctx_output(tm_job_payload(job), 0, &c);
	if (!rc)
		rc = srv_tables_dir_open(jobs->tables_dir, &dirfd);
	if (!rc) {
		report = build_report(job, jobs->tm);
		text = report ? cJSON_Print(report) : NULL;
		if (text == NULL)
			rc = tm_errorf(TM_ENOMEM, "cannot build the report");
	}
	if (!rc)
		rc = srv_out_create(dirfd, &c.out, &o);
	if (!rc)
		rc = srv_out_write(o, text, strlen(text));
	if (!rc)
		rc = srv_out_write(o, "\n", 1);
	if (!rc) {
		rc = srv_out_commit(o);
		o = NULL;
	}
	srv_out_abort(o);
	cJSON_free(text);
	cJSON_Delete(report);
	if (dirfd >= 0)
		close(dirfd);
	if (rc)
		return srv_job_fail_last(job, "analytics_report_export");
	snprintf(msg, sizeof(msg), "report written to %s", c.out.name);
	tm_job_message(job, "%s", msg);
	return TM_COMPLETED;
}
