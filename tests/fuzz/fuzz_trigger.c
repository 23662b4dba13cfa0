/* Fuzz tm_trigger's body on a real (no-sync) store: any input is either
 * refused with WRONG_DATA_TYPE, without output and without a write to the
 * store, or stored as a new REQUEST_SENT task that holds the input's
 * context_task and reads back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_store.h"

static tm_manager *tm;

static void setup(void)
{
	tm_options o = fz_options("trigger");

	tm = fz_open(&o);
	fz_register(tm, "job", 0, NULL, NULL);
}

/* The accepted body's task: REQUEST_SENT, with its context_task. */
static void check_stored(const char *body, const char *id)
{
	char *text = NULL;
	cJSON *task, *sent;
	const cJSON *ctx;

	if (tm_get(tm, "job", id, 0, &text) != TM_OK || (task = cJSON_Parse(text)) == NULL)
		fz_fail("triggered task %s cannot be read: %s", id, tm_last_error());
	if (strcmp(fz_status(task) ? fz_status(task) : "", "REQUEST_SENT") != 0)
		fz_fail("a new task is not REQUEST_SENT: %s", text);
	/* Whatever the library accepts is JSON to any parser. */
	sent = cJSON_Parse(body);
	if (sent == NULL)
		fz_fail("accepted a body that is not JSON: %s", body);
	ctx = cJSON_GetObjectItemCaseSensitive(sent, "context_task");
	if (ctx && !cJSON_Compare(ctx, cJSON_GetObjectItemCaseSensitive(
	                 cJSON_GetObjectItemCaseSensitive(task, "details"), "payload"), 1))
		fz_fail("the task does not hold the context_task of %s: %s", body, text);
	cJSON_Delete(sent);
	cJSON_Delete(task);
	tm_free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size + 1), *out = NULL;
	double c0;
	int err;

	if (tm == NULL)
		setup();
	memcpy(body, data, size);
	body[size] = '\0';
	c0 = fz_commits(tm);
	err = tm_trigger(tm, "job", body, 0, &out);
	if (err == TM_OK) {
		cJSON *j = cJSON_Parse(out);
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "task_id"));

		if (id == NULL || strlen(id) != TM_TASK_ID_LEN)
			fz_fail("a trigger answered %s", out);
		check_stored(body, id);
		/* Keep the queue short: a waiting task is cancelled at once. */
		if (tm_cancel(tm, "job", id, NULL) != TM_OK)
			fz_fail("cancel of %s: %s", id, tm_last_error());
		cJSON_Delete(j);
	} else if (err != TM_EWRONG_DATA || out != NULL) {
		fz_fail("tm_trigger gave %s for %s", tm_error_name(err), body);
	} else if (fz_commits(tm) != c0) {
		fz_fail("a refused trigger wrote to the store: %s", body);
	}
	tm_free(out);
	free(body);
	return 0;
}
