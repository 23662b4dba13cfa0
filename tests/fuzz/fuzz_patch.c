/* Fuzz tm_patch's body: a refused patch must leave the task byte for byte
 * as it was; an accepted one must keep the status ordering. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "taskmgr.h"

static tm_manager *tm;
static char id[TM_TASK_ID_LEN + 1];
static unsigned uses;

static void fresh_task(void)
{
	char *out = NULL;

	if (tm_trigger(tm, "job", "{\"context_task\": {\"a\": 1}}", 0, &out) != TM_OK)
		abort();
	memcpy(id, out + strlen("{\"task_id\":\""), TM_TASK_ID_LEN);
	id[TM_TASK_ID_LEN] = '\0';
	tm_free(out);
}

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
	fresh_task();
}

static int rank(const char *task)
{
	static const char *const names[] = { "\"REQUEST_SENT\"", "\"RUNNING\"",
		"\"CANCELLED_REQUESTED\"" };
	const char *s = strstr(task, "\"status\":");

	for (int i = 0; s && i < 3; i++)
		if (strncmp(s + 9, names[i], strlen(names[i])) == 0)
			return i;
	return 3;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size + 1), *before = NULL, *after = NULL, *out = NULL;
	int err;

	if (tm == NULL)
		setup();
	if (++uses % 64 == 0)
		fresh_task(); /* do not let every input meet a final task */
	memcpy(body, data, size);
	body[size] = '\0';
	if (tm_get(tm, "job", id, 0, &before) != TM_OK)
		abort();
	err = tm_patch(tm, "job", id, body, &out);
	if (tm_get(tm, "job", id, 0, &after) != TM_OK)
		abort();
	if (err != TM_OK && (out != NULL || strcmp(before, after) != 0))
		abort(); /* a refused patch changed the task */
	if (err == TM_OK && rank(after) < rank(before))
		abort(); /* the ordering rule was broken */
	if (err != TM_OK && err != TM_EWRONG_DATA && err != TM_ELOWER_STATUS)
		abort();
	tm_free(before);
	tm_free(after);
	tm_free(out);
	free(body);
	return 0;
}
