/* Fuzz tm_trigger's body on a real (no-sync) store: any input is either
 * refused with WRONG_DATA_TYPE and changes nothing, or stored and read back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "taskmgr.h"

static tm_manager *tm;

static void setup(void)
{
	char dir[] = "/tmp/tmfuzz-XXXXXX";
	tm_options o;
	tm_job_def d;

	tm_options_init(&o, TM_OPTIONS_VERSION);
	o.path = mkdtemp(dir);
	o.workers = 0;
	o.flags = TM_OPEN_NOSYNC;
	if (o.path == NULL || tm_open(&o, &tm) != TM_OK)
		abort();
	tm_job_def_init(&d, TM_JOB_DEF_VERSION);
	d.name = "job";
	if (tm_register(tm, &d) != TM_OK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size + 1), *out = NULL;
	int err;

	if (tm == NULL)
		setup();
	memcpy(body, data, size);
	body[size] = '\0';
	err = tm_trigger(tm, "job", body, 0, &out);
	if (err == TM_OK) {
		char id[TM_TASK_ID_LEN + 1];
		char *task = NULL;

		memcpy(id, out + strlen("{\"task_id\":\""), TM_TASK_ID_LEN);
		id[TM_TASK_ID_LEN] = '\0';
		if (tm_get(tm, "job", id, 0, &task) != TM_OK)
			abort();
		tm_free(task);
		tm_cancel(tm, "job", id, NULL); /* keeps the queue short */
	} else if (err != TM_EWRONG_DATA || out != NULL) {
		abort();
	}
	tm_free(out);
	free(body);
	return 0;
}
