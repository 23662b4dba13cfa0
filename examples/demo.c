/* taskmgr-demo: open a store, register a task name, trigger, list and read
 * tasks, printing each JSON document the library returns.
 * Usage: taskmgr-demo STORE_DIR */
#include <stdio.h>
#include <stdlib.h>

#include "taskmgr.h"

static int check(int err, const char *what)
{
	if (err)
		fprintf(stderr, "%s: %s (%s)\n", what, tm_error_name(err), tm_last_error());
	return err;
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
	tm_options_init(&opts);
	opts.path = argv[1];
	if (check(tm_open(&opts, &tm), "tm_open"))
		return 1;

	tm_job_def_init(&def);
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
	printf("GET    /tasks/private/data_import/%s/\n%s\n", id, out);
	tm_free(out);
	tm_close(tm);
	return 0;
fail:
	tm_close(tm);
	return 1;
}
