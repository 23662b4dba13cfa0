/* The LMDB store's group commit (store_lmdb_txn.c): writes queued while
 * another commits share the next commit.  A batch runs flat, in one
 * transaction; should one of its writes fail after writing, that run is
 * rolled back and the batch runs again nested, so that the failure is
 * undone alone and every other write commits.  The test lines a batch up
 * for certain: a first write waits, inside its transaction, until the
 * others are queued behind it.  Linked against the internal static
 * library for the store's queue. */
#include <pthread.h>
#include <string.h>

#include "common.h"
#include "manager.h"
#include "store.h"
#include "store_lmdb.h"

enum { BEHIND = 6 };

struct writer {
	tm__store *store;
	int i;
	bool fail;      /* write, then fail */
	bool first;     /* hold the writer's place until the others queue */
	int rc;
	char msg[128];
};

static void name_of(int i, char name[16])
{
	snprintf(name, 16, "gc%d", i);
}

static int all_queued(void *p)
{
	return tm__lmdb_queued(p) >= BEHIND;
}

static bool holding; /* the first write is in its transaction */

static int is_holding(void *p)
{
	(void)p;
	return __atomic_load_n(&holding, __ATOMIC_SEQ_CST);
}

static int write_fn(tm__txn *txn, void *p)
{
	struct writer *w = p;
	char name[16];
	int err;

	if (w->first) {
		__atomic_store_n(&holding, true, __ATOMIC_SEQ_CST);
		return tt_wait(all_queued, tm__lmdb_of(w->store), 60) ? TM_OK
		       : tm_errorf(TM_EINVAL, "the others never queued");
	}
	name_of(w->i, name);
	err = tm__store_pause(txn, name, true);
	if (!err && w->fail)
		return tm_errorf(TM_EINVAL, "writer %d fails after its write", w->i);
	return err;
}

static void *run(void *p)
{
	struct writer *w = p;

	w->rc = tm__store_write(w->store, write_fn, w);
	if (w->rc)
		snprintf(w->msg, sizeof(w->msg), "%s", tm_last_error());
	return NULL;
}

struct query {
	int i;
	bool paused;
};

static int read_paused(tm__txn *txn, void *p)
{
	struct query *q = p;
	char name[16];

	name_of(q->i, name);
	return tm__store_paused(txn, name, &q->paused);
}

static bool is_paused(tm__store *s, int i)
{
	struct query q = { i, false };

	ck_assert_ok(tm__store_read(s, read_paused, &q));
	return q.paused;
}

struct first_ctx {
	pthread_t th;
	struct writer w;
};

/* One batch of BEHIND writes; fails[i]: writer i fails after its write.
 * Returns the commits it took. */
static uint64_t one_batch(tm_manager *tm, int base, const bool *fails, struct writer *w)
{
	tm__lmdb *s = tm__lmdb_of(tm->store);
	struct first_ctx first = { .w = { .store = tm->store, .first = true } };
	pthread_t th[BEHIND];
	uint64_t before = atomic_load(&s->commits);

	__atomic_store_n(&holding, false, __ATOMIC_SEQ_CST);
	ck_assert_int_eq(pthread_create(&first.th, NULL, run, &first.w), 0);
	ck_assert(tt_wait(is_holding, NULL, 60)); /* the leader: the others queue */
	for (int i = 0; i < BEHIND; i++) {
		w[i] = (struct writer){ .store = tm->store, .i = base + i, .fail = fails[i] };
		ck_assert_int_eq(pthread_create(&th[i], NULL, run, &w[i]), 0);
	}
	pthread_join(first.th, NULL);
	for (int i = 0; i < BEHIND; i++)
		pthread_join(th[i], NULL);
	ck_assert_msg(first.w.rc == TM_OK, "first write: %s", first.w.msg);
	return atomic_load(&s->commits) - before;
}

START_TEST(a_batch_of_writes_shares_one_commit)
{
	char *dir;
	tm_manager *tm = tt_open_tmp(&dir, 0);
	bool fails[BEHIND] = { false };
	struct writer w[BEHIND];

	/* The first write's commit, then the batch's (the queued writes are
	 * one batch: the first held the writer's place), and perhaps one of
	 * the supervisor's: fewer commits than writes. */
	ck_assert_uint_le(one_batch(tm, 0, fails, w), 3);
	for (int i = 0; i < BEHIND; i++) {
		ck_assert_msg(w[i].rc == TM_OK, "writer %d: %s", i, w[i].msg);
		ck_assert(is_paused(tm->store, i));
	}
	ck_assert_uint_eq(tm__lmdb_of(tm->store)->gc_nested, 0);
	tt_close_tmp(tm, dir);
}
END_TEST

START_TEST(a_failed_write_is_undone_alone)
{
	char *dir;
	tm_manager *tm = tt_open_tmp(&dir, 0);
	bool fails[BEHIND] = { false, false, true, false, true, false };
	struct writer w[BEHIND];

	ck_assert_uint_le(one_batch(tm, 0, fails, w), 3);
	for (int i = 0; i < BEHIND; i++) {
		if (fails[i]) {
			ck_assert_int_eq(w[i].rc, TM_EINVAL);
			ck_assert_msg(strstr(w[i].msg, "fails after its write") != NULL,
			              "writer %d: %s", i, w[i].msg);
			ck_assert_msg(!is_paused(tm->store, i), "writer %d's write stayed", i);
		} else {
			ck_assert_msg(w[i].rc == TM_OK, "writer %d: %s", i, w[i].msg);
			ck_assert_msg(is_paused(tm->store, i), "writer %d's write is lost", i);
		}
	}
	/* The next batches run nested at once, still in one commit. */
	ck_assert_uint_gt(tm__lmdb_of(tm->store)->gc_nested, 0);
	ck_assert_uint_le(one_batch(tm, BEHIND, fails, w), 3);
	for (int i = 0; i < BEHIND; i++)
		ck_assert(is_paused(tm->store, BEHIND + i) == !fails[i]);
	tt_close_tmp(tm, dir);
}
END_TEST

TT_MAIN("group_commit",
	tt_lmdb_only(a_batch_of_writes_shares_one_commit, "group commit is the LMDB store's"),
	tt_lmdb_only(a_failed_write_is_undone_alone, "group commit is the LMDB store's"))
