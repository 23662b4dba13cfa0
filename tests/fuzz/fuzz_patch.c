/* Fuzz tm_patch's body: a refused patch must leave the task byte for byte
 * as it was, give no output and be WRONG_DATA_TYPE or
 * LOWER_STATUS_NOT_ALLOWED; an accepted one must keep the status ordering
 * and answer the task as it is then stored. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_store.h"

static tm_manager *tm;
static char id[TM_TASK_ID_LEN + 1];
static unsigned uses;

static void fresh_task(void)
{
	fz_trigger(tm, "job", "{\"context_task\": {\"a\": 1}}", id);
}

static void setup(void)
{
	tm_options o = fz_options("patch");

	tm = fz_open(&o);
	fz_register(tm, "job", 0, NULL, NULL);
	fresh_task();
}

static char *get(void)
{
	char *task = NULL;

	if (tm_get(tm, "job", id, 0, &task) != TM_OK)
		fz_fail("the task cannot be read: %s", tm_last_error());
	return task;
}

static int rank_of(const char *task)
{
	cJSON *j = cJSON_Parse(task);
	int r = fz_rank(fz_status(j));

	cJSON_Delete(j);
	if (r < 0)
		fz_fail("a task without a status: %s", task);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size + 1), *before, *after, *out = NULL;
	int err;

	if (tm == NULL)
		setup();
	if (++uses % 64 == 0)
		fresh_task(); /* do not let every input meet a final task */
	memcpy(body, data, size);
	body[size] = '\0';
	before = get();
	err = tm_patch(tm, "job", id, body, &out);
	after = get();
	if (err != TM_OK && (out != NULL || strcmp(before, after) != 0))
		fz_fail("a refused patch changed the task: %s", body);
	if (err != TM_OK && err != TM_EWRONG_DATA && err != TM_ELOWER_STATUS)
		fz_fail("tm_patch gave %s for %s", tm_error_name(err), body);
	if (err == TM_OK && (out == NULL || strcmp(out, after) != 0))
		fz_fail("tm_patch answered %s, the store holds %s", out ? out : "nothing",
		        after);
	if (err == TM_OK && rank_of(after) < rank_of(before))
		fz_fail("the ordering rule was broken: %s then %s", before, after);
	tm_free(before);
	tm_free(after);
	tm_free(out);
	free(body);
	return 0;
}
