/* taskmgr-demo: open a store, register task names, trigger, list and read
 * tasks, watch a job report progress, cancel another, printing each JSON
 * document the library returns.
 * Usage: taskmgr-demo STORE_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "taskmgr.h"

static int check(int err, const char *what)
{
	if (err)
		fprintf(stderr, "%s: %s (%s)\n", what, tm_error_name(err), tm_last_error());
	return err;
}

static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A handler: ten steps of simulated training of one model, stopping early
 * on cancel.  The model is named after the task, so it stays the same. */
static tm_status retrain(tm_job *job, void *user)
{
	const char *model = tm_job_task_id(job);

	(void)user;
	for (int step = 1; step <= 10; step++) {
		if (tm_job_cancelled(job)) {
			tm_job_message(job, "cancelled at step %d", step);
			return TM_CANCELLED;
		}
		nap(100);
		tm_job_message(job, "training model %.8s (step %d of 10)", model, step);
	}
	tm_job_message(job, "trained model %.8s", model);
	return TM_COMPLETED;
}

/* Print a task until pred says stop (polls: this is a demo, not a test). */
static void watch(tm_manager *tm, const char *name, const char *id, const char *until)
{
	char *out = NULL;

	for (int i = 0; i < 100; i++) {
		free(out);
		out = NULL;
		if (tm_get(tm, name, id, 0, &out) != TM_OK)
			return;
		if (strstr(out, until))
			break;
		nap(50);
	}
	printf("GET    /tasks/private/%s/%s/\n%s\n\n", name, id, out);
	tm_free(out);
}

int main(int argc, char **argv)
{
	tm_options opts;
	tm_job_def def;
	tm_manager *tm;
	char *out, id[TM_TASK_ID_LEN + 1];

	if (argc != 2) {
		fprintf(stderr, "usage: %s STORE_DIR\n", argv[0]);
		return 2;
	}
	tm_options_init(&opts, TM_OPTIONS_VERSION);
	opts.path = argv[1];
	if (check(tm_open(&opts, &tm), "tm_open"))
		return 1;

	tm_job_def_init(&def, TM_JOB_DEF_VERSION);
	def.name = "data_import";
	if (check(tm_register(tm, &def), "tm_register"))
		goto fail;

	if (check(tm_trigger(tm, "data_import",
	                     "{\"context_task\": {\"connection\": \"LOCAL\", "
	                     "\"table_name\": \"input-myfile.csv\"}, "
	                     "\"refresh_token\": \"mW+k/K...\"}", 0, &out),
	          "tm_trigger"))
		goto fail;
	printf("POST   /tasks/private/data_import/\n%s\n\n", out);
	sscanf(out, "{\"task_id\":\"%20[A-Za-z0-9]", id);
	tm_free(out);

	if (check(tm_list_recent(tm, "data_import", 1, 5, 0, &out), "tm_list_recent"))
		goto fail;
	printf("GET    /tasks/private/data_import/recents/?amt=5\n%s\n\n", out);
	tm_free(out);

	if (check(tm_patch(tm, "data_import", id,
	                   "{\"status\": \"RUNNING\", \"details\": {\"progress\": "
	                   "{\"message\": \"40 rows uploaded\", \"rows\": 40}}}", &out),
	          "tm_patch"))
		goto fail;
	printf("PATCH  /tasks/private/data_import/%s/\n%s\n\n", id, out);
	tm_free(out);

	if (check(tm_patch(tm, "data_import", id, "{\"completed\": true}", &out),
	          "tm_patch"))
		goto fail;
	printf("PATCH  /tasks/private/data_import/%s/ {\"completed\": true}\n%s\n\n", id, out);
	tm_free(out);

	if (check(tm_get(tm, "data_import", id, 0, &out), "tm_get"))
		goto fail;
	printf("GET    /tasks/private/data_import/%s/\n%s\n\n", id, out);
	tm_free(out);

	/* A job run by this process's workers: progress, then completion. */
	tm_job_def_init(&def, TM_JOB_DEF_VERSION);
	def.name = "ml_model_retrain";
	def.flags = TM_JOB_PUBLIC | TM_JOB_EXCLUSIVE;
	def.run = retrain;
	if (check(tm_register(tm, &def), "tm_register") ||
	    check(tm_trigger(tm, "ml_model_retrain", NULL, TM_PUBLIC, &out), "tm_trigger"))
		goto fail;
	printf("POST   /tasks/ml_model_retrain/\n%s\n\n", out);
	sscanf(out, "{\"task_id\":\"%20[A-Za-z0-9]", id);
	tm_free(out);
	watch(tm, "ml_model_retrain", id, "(step ");
	watch(tm, "ml_model_retrain", id, "COMPLETED");

	/* Another run, cancelled while it works. */
	if (check(tm_trigger(tm, "ml_model_retrain", NULL, TM_PUBLIC, &out), "tm_trigger"))
		goto fail;
	sscanf(out, "{\"task_id\":\"%20[A-Za-z0-9]", id);
	tm_free(out);
	watch(tm, "ml_model_retrain", id, "(step ");
	if (check(tm_cancel(tm, "ml_model_retrain", id, &out), "tm_cancel"))
		goto fail;
	printf("DELETE /tasks/private/ml_model_retrain/%s/\n%s\n\n", id, out);
	tm_free(out);
	watch(tm, "ml_model_retrain", id, "\"CANCELLED\"");

	if (check(tm_list_recent(tm, "ml_model_retrain", 1, 10, TM_PUBLIC, &out), "tm_list_recent"))
		goto fail;
	printf("GET    /tasks/ml_model_retrain/recents/\n%s\n", out);
	tm_free(out);
	tm_close(tm);
	return 0;
fail:
	tm_close(tm);
	return 1;
}
