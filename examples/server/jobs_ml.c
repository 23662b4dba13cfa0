/* The four ML task names of the public API.  The example has no models to
 * train: each job simulates its work in steps spread over --simulate-seconds,
 * reports progress after every step, and stops within a few milliseconds of
 * a cancel request (or of the server shutting down).  ml_new_items also
 * follows every data_import (jobs_tables.c), and has nothing to do after
 * an import of anything but items. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "jobs.h"

#define STEPS 10
#define SLICE_NS 10000000L   /* cancel is polled every 10 ms */

struct ml_job {
	const char *name;
	const char *doing;   /* progress while running, "%s" = model id */
	const char *done;    /* final message */
};

static const struct ml_job ml_jobs[] = {
	{ "ml_model_retrain", "training model %s", "trained model %s" },
	{ "item_popularity_score_recalibrate", "recalibrating popularity scores %s",
	  "recalibrated popularity scores %s" },
	{ "ml_new_users", "fitting new users into model %s",
	  "fitted new users into model %s" },
	{ "ml_new_items", "fitting new items into model %s",
	  "fitted new items into model %s" },
};

#define N_ML (sizeof(ml_jobs) / sizeof(ml_jobs[0]))

static const struct ml_job *find(const char *name)
{
	for (size_t i = 0; i < N_ML; i++)
		if (strcmp(ml_jobs[i].name, name) == 0)
			return &ml_jobs[i];
	return &ml_jobs[0];
}

/* A model id such as "38c6744c", stable for a task. */
static void model_id(const char *task_id, char out[9])
{
	uint32_t h = 2166136261u;

	for (const char *p = task_id; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(out, 9, "%08x", h);
}

/* Sleep @p seconds in slices; 1 when the job must stop. */
static int nap(tm_job *job, double seconds)
{
	struct timespec start, now, slice = { 0, SLICE_NS };

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		double left;

		if (tm_job_cancelled(job))
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = seconds - ((double)(now.tv_sec - start.tv_sec) +
		                  (double)(now.tv_nsec - start.tv_nsec) / 1e9);
		if (left <= 0)
			return 0;
		if (left < (double)SLICE_NS / 1e9)
			slice.tv_nsec = (long)(left * 1e9);
		nanosleep(&slice, NULL);
	}
}

/* ml_new_items after a data_import (the pipeline of doc/http.md): its
 * context_task is the import's output.  An import of anything but items
 * brings no new items: 1, with the message set, when there is nothing to
 * fit. */
static int no_new_items(tm_job *job)
{
	cJSON *p = cJSON_Parse(tm_job_payload(job));
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(p, "resource");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(p, "input_table"), "name");
	int none = cJSON_IsString(res) && strcmp(res->valuestring, "ITEM") != 0;

	if (none)
		tm_job_message(job, "no new items to fit: table %.200s holds %.32s rows",
		               cJSON_IsString(t) ? t->valuestring : "?", res->valuestring);
	cJSON_Delete(p);
	return none;
}

static tm_status run_ml(tm_job *job, void *user)
{
	const srv_jobs *jobs = user;
	const struct ml_job *def = find(tm_job_name(job));
	char id[9], msg[128], progress[256];

	if (strcmp(def->name, "ml_new_items") == 0 && no_new_items(job))
		return TM_COMPLETED;
	model_id(tm_job_task_id(job), id);
	for (int step = 0; step < STEPS; step++) {
		snprintf(msg, sizeof(msg), def->doing, id);
		snprintf(progress, sizeof(progress),
		         "{\"message\": \"%s, step %d of %d\", \"step\": %d, "
		         "\"steps\": %d, \"model\": \"%s\"}",
		         msg, step + 1, STEPS, step + 1, STEPS, id);
		tm_job_progress(job, progress);
		if (nap(job, jobs->simulate_s / STEPS)) {
			tm_job_message(job, "cancelled at step %d of %d", step + 1, STEPS);
			return TM_CANCELLED;
		}
	}
	snprintf(msg, sizeof(msg), def->done, id);
	tm_job_message(job, "%s", msg);
	return TM_COMPLETED;
}

int srv_jobs_register_ml(srv_jobs *jobs)
{
	for (size_t i = 0; i < N_ML; i++) {
		tm_job_def d;
		int err;

		tm_job_def_init(&d, TM_JOB_DEF_VERSION);
		d.name = ml_jobs[i].name;
		d.flags = TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE;
		d.run = run_ml;
		d.user = jobs;
		/* Generous: a simulated run takes simulate_s. */
		d.timeout_s = 3600 + 2 * jobs->simulate_s;
		err = tm_register(jobs->tm, &d);
		if (err)
			return err;
	}
	return TM_OK;
}
