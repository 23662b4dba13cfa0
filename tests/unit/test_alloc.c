/* One allocator for what the library hands out: a host may install its own
 * cJSON hooks, and every string the library returns is still released by
 * tm_free().  The hooks here put a tag before each block: a library string
 * from the hooked allocator would make tm_free() (free) abort, and a
 * malloc'd block given to the hooks' free would miss its tag. */
#include <pthread.h>
#include <stdatomic.h>

#include "common.h"

#define TAG 0x746d686f6f6bULL /* "tmhook" */

static atomic_long live, bad_frees;

static void *hooked_malloc(size_t n)
{
	unsigned long long *p = malloc(n + 16);

	if (p == NULL)
		return NULL;
	p[0] = TAG;
	atomic_fetch_add(&live, 1);
	return p + 2;
}

static void hooked_free(void *q)
{
	unsigned long long *p;

	if (q == NULL)
		return;
	p = (unsigned long long *)q - 2;
	if (p[0] != TAG) {
		atomic_fetch_add(&bad_frees, 1); /* not ours: leak it, count it */
		return;
	}
	p[0] = 0;
	atomic_fetch_sub(&live, 1);
	free(p);
}

static char payload_seen[128];

static tm_status echo(tm_job *job, void *user)
{
	(void)user;
	snprintf(payload_seen, sizeof(payload_seen), "%s", tm_job_payload(job));
	tm_job_message(job, "done");
	return TM_COMPLETED;
}

struct echo_task {
	tm_manager *tm;
	char id[21];
};

static int completed(void *p)
{
	struct echo_task *e = p;
	char st[32];

	return strcmp(tt_status(e->tm, "echo", e->id, st), "COMPLETED") == 0;
}

START_TEST(strings_are_freed_with_tm_free_under_host_cjson_hooks)
{
	cJSON_Hooks hooks = { hooked_malloc, hooked_free };
	char *dir = tt_tmpdir(), *out = NULL;
	char id[21], *outs[8];
	size_t n = 0;
	tm_job_def d = TM_JOB_DEF_INIT;
	struct echo_task e;
	tm_manager *tm;

	cJSON_InitHooks(&hooks);
	tm = tt_open(dir, 1);
	d.name = "echo";
	d.run = echo;
	ck_assert_ok(tm_register(tm, &d));
	tt_register(tm, "ext", 0);
	ck_assert_ok(tm_trigger(tm, "echo", "{\"context_task\":{\"k\":[1,2]}}", 0, &out));
	outs[n++] = out;
	ck_assert_int_eq(sscanf(out, "{\"task_id\":\"%20[A-Za-z0-9]\"}", e.id), 1);
	e.tm = tm;
	ck_assert_int_eq(tt_wait(completed, &e, 30), 1);
	ck_assert_str_eq(payload_seen, "{\"k\":[1,2]}");
	tt_trigger(tm, "ext", NULL, id);
	ck_assert_ok(tm_get(tm, "ext", id, 0, &outs[n++]));
	ck_assert_ok(tm_list_recent(tm, "ext", 1, 10, 0, &outs[n++]));
	ck_assert_ok(tm_patch(tm, "ext", id, "{\"status\":\"RUNNING\",\"details\":{\"a\":1}}",
	                      &outs[n++]));
	ck_assert_ok(tm_cancel(tm, "ext", id, &outs[n++]));
	ck_assert_ok(tm_stats(tm, &outs[n++]));
	ck_assert_ok(tm_check(tm, &outs[n++]));
	for (size_t i = 0; i < n; i++) {
		ck_assert_ptr_nonnull(outs[i]);
		ck_assert_int_eq(outs[i][0], '{');
		tm_free(outs[i]);
	}
	tm_close(tm);
	tt_rmdir(dir);
	free(dir);
	cJSON_InitHooks(NULL);
	ck_assert_int_eq(atomic_load(&bad_frees), 0);
	/* Everything the hooks gave the library came back to them. */
	ck_assert_int_eq(atomic_load(&live), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("alloc");

	tt_add(s, strings_are_freed_with_tm_free_under_host_cjson_hooks);
	return tt_run(s);
}
