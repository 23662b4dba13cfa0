/* Fill a store for the cli suite's test that taskmgr prunes nothing: N
 * final (cancelled) tasks of NAME and one more waiting, made by a manager
 * that keeps them all (keep_count at its most).  Prints the waiting
 * task as tm_trigger answers it ({"task_id": ...}).
 *
 *   cli-fill STORE NAME N */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "taskmgr.h"

static int fail(const char *what, int err)
{
	fprintf(stderr, "cli-fill: %s: %s: %s\n", what, tm_error_name(err), tm_last_error());
	return 1;
}

int main(int argc, char **argv)
{
	tm_options o;
	tm_job_def d;
	tm_manager *tm;
	char *out;
	int err, n = argc == 4 ? atoi(argv[3]) : 0;

	if (n <= 0) {
		fprintf(stderr, "usage: cli-fill STORE NAME N\n");
		return 2;
	}
	tm_options_init(&o, TM_OPTIONS_VERSION);
	o.path = argv[1];
	o.workers = 0;
	o.flags = TM_OPEN_NOSYNC;
	o.keep_count = UINT_MAX;
	o.keep_age_s = 1e18;
	if ((err = tm_open(&o, &tm)) != TM_OK)
		return fail("tm_open", err);
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = argv[2];
	if ((err = tm_register(tm, &d)) != TM_OK)
		return fail("tm_register", err);
	for (int made = 0; made < n;) {
		int k = n - made < TM_TRIGGER_MANY_MAX ? n - made : TM_TRIGGER_MANY_MAX;
		char *bodies = malloc((size_t)k * 3 + 2);
		cJSON *doc, *id;

		strcpy(bodies, "[");
		for (int i = 0; i < k; i++)
			strcat(bodies, i ? ",{}" : "{}");
		strcat(bodies, "]");
		err = tm_trigger_many(tm, argv[2], bodies, 0, &out);
		free(bodies);
		if (err)
			return fail("tm_trigger_many", err);
		doc = cJSON_Parse(out);
		tm_free(out);
		cJSON_ArrayForEach(id, cJSON_GetObjectItem(doc, "task_ids"))
			if ((err = tm_cancel(tm, argv[2], id->valuestring, NULL)) != TM_OK)
				return fail("tm_cancel", err);
		cJSON_Delete(doc);
		made += k;
	}
	if ((err = tm_trigger(tm, argv[2], NULL, 0, &out)) != TM_OK)
		return fail("tm_trigger", err);
	puts(out);
	tm_free(out);
	tm_close(tm);
	return 0;
}
