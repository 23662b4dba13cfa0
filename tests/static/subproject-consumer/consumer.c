/* A program outside the project that uses libtaskmgr as an installed
 * library (pkg-config) or as a Meson subproject: open a store, register a
 * name, trigger a task and read it back.
 * Usage: consumer STORE_DIR; prints the task and exits 0 on success. */
#include <stdio.h>
#include <string.h>

#include <taskmgr.h>

static int fail(const char *what, int err)
{
	fprintf(stderr, "consumer: %s: %s: %s\n", what, tm_error_name(err),
	        tm_last_error());
	return 1;
}

int main(int argc, char **argv)
{
	tm_options opts;
	tm_job_def def;
	tm_manager *tm;
	char *out = NULL, id[TM_TASK_ID_LEN + 1];
	int err, rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s STORE_DIR\n", argv[0]);
		return 2;
	}
	if (strcmp(tm_version(), TM_VERSION_STRING) != 0) {
		fprintf(stderr, "consumer: header %s, library %s\n",
		        TM_VERSION_STRING, tm_version());
		return 1;
	}
	tm_options_init(&opts, TM_OPTIONS_VERSION);
	opts.path = argv[1];
	opts.flags = TM_OPEN_NOSYNC;
	err = tm_open(&opts, &tm);
	if (err)
		return fail("tm_open", err);

	tm_job_def_init(&def, TM_JOB_DEF_VERSION);
	def.name = "consumer_job";  /* no handler: driven through tm_patch */
	err = tm_register(tm, &def);
	if (err) {
		fail("tm_register", err);
		goto out;
	}
	err = tm_trigger(tm, "consumer_job",
	                 "{\"context_task\": {\"from\": \"consumer\"}}", 0, &out);
	if (err) {
		fail("tm_trigger", err);
		goto out;
	}
	if (sscanf(out, "{\"task_id\":\"%20[A-Za-z0-9]\"}", id) != 1 ||
	    strlen(id) != TM_TASK_ID_LEN) {
		fprintf(stderr, "consumer: unexpected trigger output %s\n", out);
		goto out;
	}
	tm_free(out);
	out = NULL;
	err = tm_get(tm, "consumer_job", id, 0, &out);
	if (err) {
		fail("tm_get", err);
		goto out;
	}
	if (strstr(out, id) == NULL || strstr(out, "\"consumer\"") == NULL) {
		fprintf(stderr, "consumer: unexpected task %s\n", out);
		goto out;
	}
	printf("%s\n", out);
	rc = 0;
out:
	tm_free(out);
	tm_close(tm);
	return rc;
}
