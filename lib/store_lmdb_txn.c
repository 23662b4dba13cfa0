/* The store's transactions: reads on pooled read transactions, and the one
 * write path, where concurrent writers share a commit (group commit), the
 * map grows when full, and a map grown by another process is adopted. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "secret.h"
#include "store_lmdb.h"

/* ---- transactions ------------------------------------------------------ */

/* LMDB reports a write that ran out of space as EIO; say what happened
 * when the file system is in fact full. */
static int commit_error(tm__lmdb *s, int rc)
{
	struct statvfs fs;

	if (rc == EIO && statvfs(s->dir, &fs) == 0 &&
	    (uint64_t)fs.f_bavail * fs.f_bsize < 1024 * 1024)
		return tm_errorf(TM_ESTORAGE, "committing: no space left on the file "
		                 "system of %s", s->dir);
	return tm__lmdb_error(rc, "committing");
}

/* Another process grew the map: adopt its size. */
static void adopt_size(tm__lmdb *s)
{
	pthread_rwlock_wrlock(&s->resize);
	mdb_env_set_mapsize(s->env, 0);
	pthread_rwlock_unlock(&s->resize);
}

/* Double the map, up to the cap.  `seen` is the size the failed write ran
 * on: when several writers of one batch hit the cap, the map grows once. */
static int grow(tm__lmdb *s, size_t seen)
{
	MDB_envinfo info;
	int rc = 0;
	int err = TM_OK;

	pthread_rwlock_wrlock(&s->resize);
	mdb_env_info(s->env, &info);
	if (info.me_mapsize > seen) {
		/* another writer grew it already */
	} else if (info.me_mapsize >= s->map_max) {
		err = tm_errorf(TM_ESTORAGE, "the store is full: it reached its "
		                "cap of %llu bytes (map_size_max)",
		                (unsigned long long)s->map_max);
	} else {
		uint64_t next = (uint64_t)info.me_mapsize * 2;
		if (next > s->map_max)
			next = s->map_max;
		rc = mdb_env_set_mapsize(s->env, next);
		if (rc)
			err = tm__lmdb_error(rc, "growing the store");
	}
	pthread_rwlock_unlock(&s->resize);
	return err;
}

/* Begin a top-level transaction with the resize lock held shared. */
static int begin(tm__lmdb *s, bool write, MDB_txn **txn)
{
	for (;;) {
		int rc;

		pthread_rwlock_rdlock(&s->resize);
		rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, txn);
		if (rc == 0)
			return TM_OK;
		pthread_rwlock_unlock(&s->resize);
		if (rc != MDB_MAP_RESIZED)
			return tm__lmdb_error(rc, "beginning a transaction");
		adopt_size(s);
	}
}

static size_t map_size(tm__lmdb *s)
{
	MDB_envinfo info;

	mdb_env_info(s->env, &info);
	return info.me_mapsize;
}

static MDB_txn *pool_get(tm__lmdb *s)
{
	MDB_txn *txn = NULL;

	pthread_mutex_lock(&s->pool_mu);
	if (s->n_pool > 0)
		txn = s->pool[--s->n_pool];
	pthread_mutex_unlock(&s->pool_mu);
	return txn;
}

static void pool_put(tm__lmdb *s, MDB_txn *txn)
{
	mdb_txn_reset(txn);
	pthread_mutex_lock(&s->pool_mu);
	if (s->n_pool < sizeof(s->pool) / sizeof(s->pool[0])) {
		s->pool[s->n_pool++] = txn;
		txn = NULL;
	}
	pthread_mutex_unlock(&s->pool_mu);
	if (txn)
		mdb_txn_abort(txn);
}

int tm__lmdb_read(tm__store *store, tm__txn_fn fn, void *ctx)
{
	tm__lmdb *s = tm__lmdb_of(store);
	tm__lmdb_txn t = { .base = { .store = &s->base }, .s = s };
	int err;

	/* The resize lock is held for the whole read: growing the map moves
	 * it, and every pointer a read transaction holds into it. */
	pthread_rwlock_rdlock(&s->resize);
	t.txn = pool_get(s);
	if (t.txn && mdb_txn_renew(t.txn) != 0) {
		mdb_txn_abort(t.txn); /* e.g. the map grew elsewhere: start anew */
		t.txn = NULL;
	}
	if (t.txn == NULL) {
		pthread_rwlock_unlock(&s->resize);
		err = begin(s, false, &t.txn);
		if (err)
			return err;
	}
	err = fn(&t.base, ctx);
	pool_put(s, t.txn);
	pthread_rwlock_unlock(&s->resize);
	return err;
}

/* ---- group commit -----------------------------------------------------------
 *
 * A writer queues its request and waits.  When no leader is at work, the
 * writer becomes the leader: it takes every queued request, runs them all
 * in one write transaction, commits once — one sync for all — and releases
 * them.  Requests that arrive during that commit form the next batch.  A
 * lone writer runs its function directly in the top-level transaction: no
 * nested transaction, no waiting, no added latency.
 *
 * A batch runs flat: each request straight in the top-level transaction.
 * Should one fail (or fill the map), that run is rolled back and the batch
 * runs again with each request in a nested transaction of its own, so that
 * the failure is undone alone.  Nested is not the default because an LMDB
 * nested transaction allocates page lists of its own and copies each page
 * it touches that the batch already dirtied: for a trigger, most of its
 * pages, at a cost above the request's own.  A request may so run twice
 * (its function is re-runnable: see tm__lmdb_write); after a failure the
 * next batches run nested for a while, so that a stream of refusals does
 * not pay twice. */

#define GATHER_NS 200000L       /* at most 0.2 ms: well under one sync */
#define NESTED_AFTER_FAILURE 16 /* batches run nested after a flat run failed */

struct tm__wreq {
	tm__txn_fn fn;
	void *ctx;
	int err;
	bool done;
	bool map_full;
	size_t seen;            /* map size the request ran on */
	char msg[256];          /* the leader's error message, for the caller */
	struct tm__wreq *next;
};

static void settle(struct tm__wreq *r, int err, bool map_full, size_t seen)
{
	r->err = err;
	r->map_full = map_full;
	r->seen = seen;
	if (err && !map_full)
		snprintf(r->msg, sizeof(r->msg), "%s", tm_last_error());
}

/* Every request of the batch in top itself: true when each succeeded. */
static bool run_flat(tm__lmdb *s, MDB_txn *top, struct tm__wreq *batch, size_t seen)
{
	for (struct tm__wreq *r = batch; r; r = r->next) {
		tm__lmdb_txn t = { .base = { .store = &s->base }, .s = s, .txn = top };

		if (r->fn(&t.base, r->ctx) != TM_OK || t.map_full)
			return false;
	}
	for (struct tm__wreq *r = batch; r; r = r->next)
		settle(r, TM_OK, false, seen);
	return true;
}

/* Every request of the batch in a nested transaction of top. */
static void run_nested(tm__lmdb *s, MDB_txn *top, struct tm__wreq *batch, size_t seen)
{
	for (struct tm__wreq *r = batch; r; r = r->next) {
		tm__lmdb_txn child = { .base = { .store = &s->base }, .s = s };
		int err, rc = mdb_txn_begin(s->env, top, 0, &child.txn);

		if (rc) {
			settle(r, tm__lmdb_error(rc, "beginning a transaction"),
			       rc == MDB_MAP_FULL, seen);
			continue;
		}
		err = r->fn(&child.base, r->ctx);
		if (err || child.map_full) {
			mdb_txn_abort(child.txn);
		} else if ((rc = mdb_txn_commit(child.txn)) != 0) {
			child.map_full = rc == MDB_MAP_FULL;
			err = commit_error(s, rc);
		}
		settle(r, err, child.map_full, seen);
	}
}

/* Run and commit one batch.  False when its flat run failed: rolled back,
 * nothing settled, to be run again nested. */
static bool run_batch(tm__lmdb *s, struct tm__wreq *batch, bool flat)
{
	tm__lmdb_txn t = { .base = { .store = &s->base }, .s = s };
	int err = begin(s, true, &t.txn), rc;
	/* Read under the resize lock begin() took: growth remaps the env. */
	size_t seen = err ? 0 : map_size(s);
	MDB_txn *top = t.txn;

	if (err) {
		for (struct tm__wreq *r = batch; r; r = r->next)
			settle(r, err, false, seen);
		return true;
	}
	if (batch->next == NULL) {
		err = batch->fn(&t.base, batch->ctx);
		settle(batch, err, t.map_full, seen);
	} else if (!flat) {
		run_nested(s, top, batch, seen);
	} else if (!run_flat(s, top, batch, seen)) {
		mdb_txn_abort(top);
		pthread_rwlock_unlock(&s->resize);
		return false;
	}
	/* Keys written for new secrets must be on disk before the commit
	 * that refers to them. */
	if (atomic_exchange(&s->keys_dirty, false) &&
	    (err = tm__keys_sync(s->keys_fd)) != TM_OK) {
		for (struct tm__wreq *r = batch; r; r = r->next)
			if (!r->err)
				settle(r, err, false, seen);
		mdb_txn_abort(top);
	} else if (batch->next == NULL && (batch->err || batch->map_full)) {
		mdb_txn_abort(top);
	} else {
		size_t id = mdb_txn_id(top);
		MDB_envinfo info;

		rc = mdb_txn_commit(top);
		if (rc == 0) {
			/* Counted when it wrote: LMDB commits nothing otherwise. */
			mdb_env_info(s->env, &info);
			if (info.me_last_txnid >= id)
				atomic_fetch_add(&s->commits, 1);
		} else {
			/* Nothing of the batch is stored: fail (or retry) them all. */
			err = commit_error(s, rc);
			for (struct tm__wreq *r = batch; r; r = r->next)
				if (!r->err)
					settle(r, err, rc == MDB_MAP_FULL, seen);
		}
	}
	pthread_rwlock_unlock(&s->resize);
	return true;
}

/* The writers released with the previous batch are usually about to queue
 * their next write: the next leader waits a moment for them to come back,
 * so that they share its sync instead of each paying one more.  A lone
 * writer is its own previous batch, so it never waits. */
static void gather(tm__lmdb *s)
{
	struct timespec ts;

	if (s->gc_expect == 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += GATHER_NS;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (s->gc_expect > 0 &&
	       pthread_cond_timedwait(&s->gc_more, &s->gc_mu, &ts) == 0)
		;
	s->gc_expect = 0;
}

static int write_once(tm__lmdb *s, struct tm__wreq *r)
{
	pthread_mutex_lock(&s->gc_mu);
	r->next = NULL;
	*s->gc_tail = r;
	s->gc_tail = &r->next;
	if (s->gc_expect > 0 && --s->gc_expect == 0)
		pthread_cond_signal(&s->gc_more);
	while (!r->done) {
		struct tm__wreq *batch;

		if (s->gc_leader) {
			pthread_cond_wait(&s->gc_done, &s->gc_mu);
			continue;
		}
		s->gc_leader = true;
		gather(s);
		batch = s->gc_head;
		s->gc_head = NULL;
		s->gc_tail = &s->gc_head;
		pthread_mutex_unlock(&s->gc_mu);
		if (!run_batch(s, batch, s->gc_nested == 0)) {
			s->gc_nested = NESTED_AFTER_FAILURE;
			run_batch(s, batch, false);
		} else if (s->gc_nested > 0 && batch->next != NULL) {
			s->gc_nested--;
		}
		pthread_mutex_lock(&s->gc_mu);
		for (struct tm__wreq *q = batch; q; q = q->next) {
			q->done = true;
			s->gc_expect++;
		}
		s->gc_leader = false;
		pthread_cond_broadcast(&s->gc_done);
	}
	pthread_mutex_unlock(&s->gc_mu);
	return r->err;
}

size_t tm__lmdb_queued(tm__lmdb *s)
{
	size_t n = 0;

	pthread_mutex_lock(&s->gc_mu);
	for (const struct tm__wreq *r = s->gc_head; r; r = r->next)
		n++;
	pthread_mutex_unlock(&s->gc_mu);
	return n;
}

int tm__lmdb_write(tm__store *store, tm__txn_fn fn, void *ctx)
{
	tm__lmdb *s = tm__lmdb_of(store);
	for (;;) {
		struct tm__wreq r = { .fn = fn, .ctx = ctx };
		int err = write_once(s, &r);

		if (r.map_full) {
			err = grow(s, r.seen);
			if (err)
				return err;
			continue; /* fn is re-runnable: run it on the larger map */
		}
		/* A leader ran other writers' functions on this thread: leave
		 * this caller its own message, not theirs. */
		if (err)
			tm_errorf(err, "%s", r.msg[0] ? r.msg : tm_error_name(err));
		else
			tm__error_clear();
		return err;
	}
}

uint64_t tm__lmdb_commits(tm__store *store)
{
	tm__lmdb *s = tm__lmdb_of(store);
	return atomic_load(&s->commits);
}
