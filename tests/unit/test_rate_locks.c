/* PostgreSQL: a claim takes a rate-limited name's token on the bucket's
 * row, and holds that row until it commits.  Two claims taking the tokens
 * of two names in opposite orders must not wait for each other: a bucket
 * another transaction holds is passed (SKIP LOCKED), where waiting for it
 * would deadlock until PostgreSQL broke one of them and it ran again.
 * Each write counts its runs, so a deadlock shows as a third run, with no
 * clock in the test; neither commits before both asked for their second
 * token, so both buckets are held when they do.  Linked against the internal static library for the
 * store's calls; LMDB has one writer at a time and is not concerned. */
#include <pthread.h>
#include <string.h>

#include "common.h"
#include "manager.h"
#include "store.h"

enum { RATE = 1, BURST = 10 };

struct taker {
	tm__store *store;
	const char *first, *second;
	int *mine, *theirs;          /* flags: took the first name's token */
	int *mine2, *theirs2;        /* flags: asked for the second's */
	int runs;
	bool took_first, took_second;
	int rc;
	char msg[160];
};

static int is_set(void *p)
{
	return __atomic_load_n((int *)p, __ATOMIC_SEQ_CST);
}

static int take_both(tm__txn *txn, void *p)
{
	struct taker *t = p;
	double left;
	int err;

	__atomic_add_fetch(&t->runs, 1, __ATOMIC_SEQ_CST);
	t->took_first = t->took_second = false;
	err = tm__store_rate_take(txn, t->first, RATE, BURST, &t->took_first, &left);
	if (err)
		return err;
	__atomic_store_n(t->mine, 1, __ATOMIC_SEQ_CST);
	/* The other transaction now holds the other bucket. */
	if (!tt_wait(is_set, t->theirs, 60))
		return tm_errorf(TM_EINVAL, "the other take never came");
	err = tm__store_rate_take(txn, t->second, RATE, BURST, &t->took_second, &left);
	if (err)
		return err;
	/* Neither commits (and lets its bucket go) before both asked. */
	__atomic_store_n(t->mine2, 1, __ATOMIC_SEQ_CST);
	if (!tt_wait(is_set, t->theirs2, 60))
		return tm_errorf(TM_EINVAL, "the other second take never came");
	return TM_OK;
}

static void *run(void *p)
{
	struct taker *t = p;

	t->rc = tm__store_write(t->store, take_both, t);
	if (t->rc)
		snprintf(t->msg, sizeof(t->msg), "%s", tm_last_error());
	return NULL;
}

static int take_one(tm__txn *txn, void *p)
{
	bool taken;
	double left;

	return tm__store_rate_take(txn, p, RATE, BURST, &taken, &left);
}

START_TEST(opposite_takes_pass_each_other)
{
	char *dir;
	tm_manager *tm = tt_open_tmp(&dir, 0);
	int a_has = 0, b_has = 0, a_asked = 0, b_asked = 0;
	struct taker a = { tm->store, "rx", "ry", &a_has, &b_has, &a_asked, &b_asked,
	                   0, false, false, 0, "" };
	struct taker b = { tm->store, "ry", "rx", &b_has, &a_has, &b_asked, &a_asked,
	                   0, false, false, 0, "" };
	pthread_t ta, tb;

	/* Both buckets exist and are full. */
	ck_assert_ok(tm__store_write(tm->store, take_one, "rx"));
	ck_assert_ok(tm__store_write(tm->store, take_one, "ry"));
	ck_assert_int_eq(pthread_create(&ta, NULL, run, &a), 0);
	ck_assert_int_eq(pthread_create(&tb, NULL, run, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	ck_assert_msg(a.rc == TM_OK, "%s", a.msg);
	ck_assert_msg(b.rc == TM_OK, "%s", b.msg);
	/* Once each: neither waited for the other's bucket. */
	ck_assert_int_eq(a.runs, 1);
	ck_assert_int_eq(b.runs, 1);
	ck_assert(a.took_first && b.took_first);
	ck_assert(!a.took_second && !b.took_second); /* held: passed */
	tt_close_tmp(tm, dir);
}
END_TEST

int main(void)
{
	if (!tt_backend_pg()) {
		printf("skipped: a PostgreSQL test (LMDB has one writer at a time)\n");
		return 77;
	}
	return tt_run_tests("rate_locks", (const TTest *const[]){ opposite_takes_pass_each_other },
	                    1, NULL, NULL);
}
