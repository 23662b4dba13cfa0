/* tm_backup copies the keys of the refresh tokens after its snapshot.  A
 * task that ends between the two, and a newer task that is given the
 * freed key slot meanwhile, must leave the copy with no token for the old
 * task (it had ended: its token was erased), not the newer key applied to
 * the old ciphertext.  The store's test hook runs that history exactly in
 * the window.  Linked against the internal static library for the hook. */
#include <string.h>
#include <time.h>

#include "common.h"
#include "manager.h"
#include "store_lmdb.h"

static char ended[21], newer[21];

/* Between the snapshot and the keys' copy: end the task, zero and free
 * its key slot, and give the slot to a newer task's token. */
static void between(void *ctx)
{
	tm_manager *tm = ctx;
	size_t n;

	ck_assert_ok(tm_patch(tm, "ext", ended, "{\"completed\": true}", NULL));
	ck_assert_ok(tm__store_scrub(tm->store, &n)); /* or the supervisor did */
	tt_trigger(tm, "ext", "{\"refresh_token\": \"tok-newer\"}", newer);
}

static struct {
	int runs;
	char secret[2][64];
	char id[2][21];
} h;

static tm_status record(tm_job *job, void *user)
{
	const char *s = tm_job_secret(job);

	(void)user;
	if (h.runs < 2) {
		snprintf(h.secret[h.runs], sizeof(h.secret[0]), "%s", s ? s : "(null)");
		snprintf(h.id[h.runs], sizeof(h.id[0]), "%s", tm_job_task_id(job));
	}
	__atomic_add_fetch(&h.runs, 1, __ATOMIC_SEQ_CST);
	return TM_COMPLETED;
}

static int ran_once(void *p)
{
	(void)p;
	return __atomic_load_n(&h.runs, __ATOMIC_SEQ_CST) >= 1;
}

START_TEST(task_ended_during_the_backup_has_no_token_in_the_copy)
{
	char *dir, *out = tt_tmpdir(), *dest, status[32];
	tm_manager *tm = tt_open_tmp(&dir, 0), *copy;
	tm_options o;
	tm_job_def d = TM_JOB_DEF_INIT;

	ck_assert_int_ge(asprintf(&dest, "%s/copy", out), 0);
	tt_register(tm, "ext", 0);
	tt_trigger(tm, "ext", "{\"refresh_token\": \"tok-ended\"}", ended);
	((tm__lmdb *)tm->store)->backup_pause = between;
	((tm__lmdb *)tm->store)->backup_pause_ctx = tm;
	ck_assert_ok(tm_backup(tm, dest));
	ck_assert_str_eq(tt_status(tm, "ext", ended, status), "COMPLETED");
	tm_close(tm);

	/* The copy is the snapshot: the old task waits there, alone; run
	 * it, and see what its handler is given. */
	o = tt_options(dest);
	o.workers = 1;
	ck_assert_ok(tm_open(&o, &copy));
	d.name = "ext";
	d.run = record;
	ck_assert_ok(tm_register(copy, &d));
	ck_assert_msg(tt_wait(ran_once, NULL, 20), "the copy never ran its task");
	ck_assert_str_eq(h.id[0], ended);
	ck_assert_str_eq(h.secret[0], "(null)");
	ck_assert_int_eq(tt_count(copy, "ext"), 1);
	tt_assert_check(copy, 1);
	tm_close(copy);

	tt_rmdir(out);
	free(out);
	free(dest);
	tt_rmdir(dir);
	free(dir);
}
END_TEST

TT_MAIN("backup_keys",
	tt_lmdb_only(task_ended_during_the_backup_has_no_token_in_the_copy,
	             "the keys file and its slots are the LMDB store's"))
