/* The store: the only module that talks to LMDB (store.c, store_txn.c and
 * store_scan.c, sharing store.h; no other file includes lmdb.h).  One
 * environment per store directory, its sub-databases opened once, every
 * transaction run through tm__store_read() or tm__store_write()
 * (store_txn.c), and every index kept in step with the task records by
 * tm__store_put() and tm__store_delete() (here).  doc/design.md describes
 * the layout. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "store.h"

/* LMDB forbids opening one environment twice in a process, and a second
 * open silently breaks its locking.  This list of open stores (by device
 * and inode) is the library's only process-wide state, for that reason. */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static tm__store *open_list;

/* ---- open and close ---------------------------------------------------- */

static int make_dirs(const char *path)
{
	char *p = strdup(path);
	int err = TM_OK;

	if (p == NULL)
		return tm_errorf(TM_ENOMEM, "out of memory");
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			err = tm__error_sys(errno, p);
		*s = '/';
		if (err)
			break;
	}
	if (!err && mkdir(p, 0755) != 0 && errno != EEXIST)
		err = tm__error_sys(errno, p);
	free(p);
	return err;
}

/* LMDB maps its lock file and writes into it: on a full file system a hole
 * in that file would be SIGBUS.  Allocating it first turns that into
 * ENOSPC.  (LMDB only ever grows the file, to less than this.) */
static int reserve_lock_file(const char *dir)
{
	char path[4096];
	int fd, rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/lock.mdb", dir) >= sizeof(path))
		return tm_errorf(TM_EINVAL, "store path is too long");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return tm__error_sys(errno, path);
	rc = posix_fallocate(fd, 0, LOCK_FILE_BYTES);
	close(fd);
	return rc ? store_error(rc, path) : TM_OK;
}

static int open_dbis(tm__store *s)
{
	static const struct { const char *name; size_t off; } dbs[] = {
		{ "tasks", offsetof(tm__store, tasks) },
		{ "recent", offsetof(tm__store, recent) },
		{ "active", offsetof(tm__store, active) },
		{ "queue", offsetof(tm__store, queue) },
		{ "secrets", offsetof(tm__store, secrets) },
		{ "slots", offsetof(tm__store, slots) },
		{ "names", offsetof(tm__store, names) },
		{ "meta", offsetof(tm__store, meta) },
	};
	MDB_txn *txn;
	MDB_val k = val("schema", 6), v;
	uint32_t schema = SCHEMA_VERSION;
	int rc;

	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return store_error(rc, "opening the store");
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE,
		                  (MDB_dbi *)((char *)s + dbs[i].off));
		if (rc)
			goto fail;
	}
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == 0) {
		if (v.mv_size != sizeof(schema)) {
			mdb_txn_abort(txn);
			return tm_errorf(TM_ESTORAGE, "store meta record is corrupt");
		}
		memcpy(&schema, v.mv_data, sizeof(schema));
		if (schema > SCHEMA_VERSION) {
			mdb_txn_abort(txn);
			return tm_errorf(TM_ESTORAGE,
			                 "store was written by schema %u; this library "
			                 "(%s) reads up to schema %u", schema,
			                 TM_VERSION_STRING, SCHEMA_VERSION);
		}
	} else if (rc == MDB_NOTFOUND) {
		v = val(&schema, sizeof(schema));
		rc = mdb_put(txn, s->meta, &k, &v, 0);
		if (rc)
			goto fail;
	} else {
		goto fail;
	}
	rc = mdb_txn_commit(txn);
	return rc ? store_error(rc, "opening the store") : TM_OK;
fail:
	mdb_txn_abort(txn);
	return store_error(rc, "opening the store");
}

int tm__store_open(const char *path, const tm__store_opts *o, tm__store **out)
{
	tm__store *s;
	struct stat st;
	pthread_rwlockattr_t ra;
	int rc, err;

	*out = NULL;
	err = make_dirs(path);
	if (err)
		return err;
	if (stat(path, &st) != 0)
		return tm__error_sys(errno, path);
	if (!S_ISDIR(st.st_mode))
		return tm_errorf(TM_ESTORAGE, "%s is not a directory", path);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return tm_errorf(TM_ENOMEM, "out of memory");
	s->dev = st.st_dev;
	s->keys_fd = -1;
	s->ino = st.st_ino;
	s->map_max = o->map_size_max;
	s->dir = strdup(path);
	if (s->dir == NULL) {
		free(s);
		return tm_errorf(TM_ENOMEM, "out of memory");
	}

	pthread_mutex_lock(&open_mu);
	for (tm__store *p = open_list; p; p = p->next_open) {
		if (p->dev == s->dev && p->ino == s->ino) {
			pthread_mutex_unlock(&open_mu);
			free(s->dir);
			free(s);
			return tm_errorf(TM_EINVAL, "store %s is already open in this "
			                 "process; share that tm_manager", path);
		}
	}
	s->next_open = open_list;
	open_list = s;
	pthread_mutex_unlock(&open_mu);

	pthread_rwlockattr_init(&ra);
	/* Writers (map growth) must not starve behind a stream of readers. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->resize, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&s->gc_mu, NULL);
	pthread_mutex_init(&s->pool_mu, NULL);
	pthread_cond_init(&s->gc_done, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s->gc_more, &ca);
		pthread_condattr_destroy(&ca);
	}
	s->gc_tail = &s->gc_head;

	rc = mdb_env_create(&s->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(s->env, 16);
	if (!rc)
		rc = mdb_env_set_maxreaders(s->env, MAX_READERS);
	if (!rc)
		rc = mdb_env_set_mapsize(s->env, o->map_size);
	if (rc) {
		err = store_error(rc, "creating the LMDB environment");
		goto fail;
	}
	err = reserve_lock_file(path);
	if (!err)
		err = tm__keys_open(path, &s->keys_fd);
	if (err)
		goto fail;
	/* MDB_NOTLS: read transactions are not tied to threads, because the
	 * host's threads, not ours, call in. */
	rc = mdb_env_open(s->env, path,
	                  MDB_NOTLS | (o->nosync ? MDB_NOSYNC : 0), 0644);
	if (rc) {
		err = store_error(rc, path);
		goto fail;
	}
	mdb_reader_check(s->env, NULL); /* slots of processes that died */
	err = open_dbis(s);
	if (err)
		goto fail;
	*out = s;
	return TM_OK;
fail:
	tm__store_close(s);
	return err;
}

void tm__store_close(tm__store *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&open_mu);
	for (tm__store **pp = &open_list; *pp; pp = &(*pp)->next_open) {
		if (*pp == s) {
			*pp = s->next_open;
			break;
		}
	}
	pthread_mutex_unlock(&open_mu);
	while (s->n_pool > 0)
		mdb_txn_abort(s->pool[--s->n_pool]);
	if (s->env)
		mdb_env_close(s->env);
	if (s->keys_fd >= 0)
		close(s->keys_fd);
	free(s->dir);
	pthread_rwlock_destroy(&s->resize);
	pthread_mutex_destroy(&s->gc_mu);
	pthread_mutex_destroy(&s->pool_mu);
	pthread_cond_destroy(&s->gc_done);
	pthread_cond_destroy(&s->gc_more);
	free(s);
}

void tm__store_size(tm__txn *t, uint64_t *used, uint64_t *free_bytes,
                    uint64_t *map)
{
	MDB_envinfo info;
	MDB_stat st;
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t pages = 0;

	mdb_env_info(t->s->env, &info);
	mdb_env_stat(t->s->env, &st);
	*used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	*map = info.me_mapsize;
	/* Pages below the high-water mark that LMDB will reuse: each record
	 * of its free list (sub-database 0) is a count then page numbers. */
	if (mdb_cursor_open(t->txn, 0, &c) == 0) {
		while (mdb_cursor_get(c, &k, &v, pages ? MDB_NEXT : MDB_FIRST) == 0) {
			size_t n = 0;

			if (v.mv_size >= sizeof(size_t))
				memcpy(&n, v.mv_data, sizeof(n));
			pages += n ? n : 1;
		}
		mdb_cursor_close(c);
	}
	*free_bytes = pages * st.ms_psize;
}

/* ---- tasks ------------------------------------------------------------- */

static int get(tm__txn *t, const char *id, tm__task *out, bool head_only)
{
	MDB_val k = val(id, TM_TASK_ID_LEN), v;
	int rc = mdb_get(t->txn, t->s->tasks, &k, &v);

	if (rc == MDB_NOTFOUND)
		return tm_errorf(TM_ETASK_NOT_FOUND, "task %s not found", id);
	if (rc)
		return fail(t, rc, "reading a task");
	return head_only ? tm__task_decode_head(id, v.mv_data, v.mv_size, out)
	                 : tm__task_decode(id, v.mv_data, v.mv_size, out);
}

int tm__store_render(tm__txn *t, const char *id, const char *name,
                     bool with_details, tm__buf *out)
{
	MDB_val k = val(id, TM_TASK_ID_LEN), v;
	tm__task head;
	int rc = mdb_get(t->txn, t->s->tasks, &k, &v), err;

	if (rc == MDB_NOTFOUND)
		return tm_errorf(TM_ETASK_NOT_FOUND, "task %s not found", id);
	if (rc)
		return fail(t, rc, "reading a task");
	if (name != NULL) {
		err = tm__task_decode_head(id, v.mv_data, v.mv_size, &head);
		if (err)
			return err;
		if (strcmp(head.name, name) != 0)
			return tm_errorf(TM_ETASK_NOT_FOUND, "task %s not found in %s",
			                 id, name);
	}
	return tm__task_render(id, v.mv_data, v.mv_size, with_details, out);
}

int tm__store_get(tm__txn *t, const char *id, tm__task *out)
{
	return get(t, id, out, false);
}

int tm__store_get_head(tm__txn *t, const char *id, tm__task *out)
{
	return get(t, id, out, true);
}

static int name_get(tm__txn *t, const char *name, struct name_rec *r)
{
	MDB_val k = val(name, strlen(name)), v;
	int rc = mdb_get(t->txn, t->s->names, &k, &v);

	memset(r, 0, sizeof(*r));
	if (rc == MDB_NOTFOUND) {
		r->since_us = tm__now_us();
		return TM_OK;
	}
	if (rc)
		return fail(t, rc, "reading name figures");
	if (v.mv_size != sizeof(*r))
		return tm_errorf(TM_ESTORAGE, "figures of %s are corrupt", name);
	memcpy(r, v.mv_data, sizeof(*r));
	return TM_OK;
}

static int name_put(tm__txn *t, const char *name, const struct name_rec *r)
{
	return put(t, t->s->names, val(name, strlen(name)), val(r, sizeof(*r)),
	           "writing name figures");
}

static int count_status(tm__txn *t, const char *name, int from, int to)
{
	struct name_rec r;
	int err = name_get(t, name, &r);

	if (err)
		return err;
	if (from >= 0 && r.by_status[from] > 0)
		r.by_status[from]--;
	if (to >= 0)
		r.by_status[to]++;
	return name_put(t, name, &r);
}

int tm__store_put(tm__txn *t, const tm__task *old, const tm__task *task)
{
	tm__store *s = t->s;
	unsigned char k[KEY_MAX];
	void *buf;
	size_t len;
	bool was_active = old && tm__status_active(old->status);
	bool is_active = tm__status_active(task->status);
	int err;

	err = tm__task_encode(task, &buf, &len);
	if (err)
		return err;
	err = put(t, s->tasks, val(task->id, TM_TASK_ID_LEN), val(buf, len),
	          "writing a task");
	free(buf);
	if (err)
		return err;
	if (old == NULL) {
		err = put(t, s->recent, val(k, recent_key(k, task)), val("", 0),
		          "indexing a task");
		if (err)
			return err;
	}
	if (is_active && !was_active)
		err = put(t, s->active, val(k, active_key(k, task)), val("", 0),
		          "indexing an active task");
	else if (was_active && !is_active)
		err = del(t, s->active, val(k, active_key(k, task)),
		          "unindexing an active task");
	if (err)
		return err;
	if (old && old->queued &&
	    (!task->queued || old->ready_us != task->ready_us)) {
		err = del(t, s->queue, val(k, queue_key(k, old->ready_us, old->id)),
		          "dequeuing a task");
		if (err)
			return err;
	}
	if (task->queued &&
	    (old == NULL || !old->queued || old->ready_us != task->ready_us)) {
		err = put(t, s->queue, val(k, queue_key(k, task->ready_us, task->id)),
		          val(task->name, strlen(task->name)), "queuing a task");
		if (err)
			return err;
	}
	if (old == NULL || old->status != task->status)
		err = count_status(t, task->name, old ? (int)old->status : -1,
		                   (int)task->status);
	return err;
}

int tm__store_delete(tm__txn *t, const tm__task *task)
{
	tm__store *s = t->s;
	unsigned char k[KEY_MAX];
	int err;

	err = del(t, s->tasks, val(task->id, TM_TASK_ID_LEN), "deleting a task");
	if (!err)
		err = del(t, s->recent, val(k, recent_key(k, task)), "unindexing a task");
	if (!err && tm__status_active(task->status))
		err = del(t, s->active, val(k, active_key(k, task)), "unindexing a task");
	if (!err && task->queued)
		err = del(t, s->queue, val(k, queue_key(k, task->ready_us, task->id)),
		          "dequeuing a task");
	if (!err)
		err = tm__store_secret_del(t, task->id);
	if (!err)
		err = count_status(t, task->name, (int)task->status, -1);
	return err;
}

/* ---- secrets -----------------------------------------------------------
 *
 * A secret is stored as its key slot and its ciphertext; the key is in the
 * keys file (secret.c).  Erasing moves the slot to the 'S' list; scrubbing
 * zeroes and syncs those keys outside any transaction, then frees the
 * slots.  A crash between the two leaves the slot listed: the next scrub
 * zeroes it.  Slots are handed out in write transactions, so two writers
 * (threads or processes) never share one. */

static size_t slot_key(unsigned char k[9], char list, uint64_t slot)
{
	k[0] = (unsigned char)list;
	for (int i = 8; i >= 1; i--, slot >>= 8)
		k[i] = (unsigned char)slot;
	return 9;
}

static uint64_t slot_of(const unsigned char *k)
{
	uint64_t slot = 0;

	for (int i = 1; i <= 8; i++)
		slot = slot << 8 | k[i];
	return slot;
}

/* A free slot, or a new one past the last. */
static int slot_take(tm__txn *t, uint64_t *slot)
{
	MDB_cursor *c;
	MDB_val kv = val("F", 1), v;
	uint64_t next;
	int rc, err = cursor(t, t->s->slots, &c);

	if (err)
		return err;
	rc = mdb_cursor_get(c, &kv, &v, MDB_SET_RANGE);
	if (rc == 0 && kv.mv_size == 9 && ((unsigned char *)kv.mv_data)[0] == 'F') {
		*slot = slot_of(kv.mv_data);
		rc = mdb_cursor_del(c, 0);
		mdb_cursor_close(c);
		return rc ? fail(t, rc, "taking a key slot") : TM_OK;
	}
	mdb_cursor_close(c);
	kv = val("next_slot", 9);
	rc = mdb_get(t->txn, t->s->meta, &kv, &v);
	if (rc && rc != MDB_NOTFOUND)
		return fail(t, rc, "taking a key slot");
	*slot = 0;
	if (rc == 0 && v.mv_size == sizeof(*slot))
		memcpy(slot, v.mv_data, sizeof(*slot));
	next = *slot + 1;
	return put(t, t->s->meta, kv, val(&next, sizeof(next)), "taking a key slot");
}

int tm__store_secret_put(tm__txn *t, const char *id, const char *secret)
{
	size_t n = strlen(secret);
	unsigned char key[TM__KEY_LEN], *rec = malloc(8 + n);
	uint64_t slot = 0;
	int err;

	if (rec == NULL)
		return tm_errorf(TM_ENOMEM, "out of memory");
	err = slot_take(t, &slot);
	if (!err)
		err = tm__random_bytes(key, sizeof(key));
	if (!err)
		err = tm__keys_write(t->s->keys_fd, slot, key);
	if (!err) {
		atomic_store(&t->s->keys_dirty, true); /* synced before the commit */
		memcpy(rec, &slot, 8);
		memcpy(rec + 8, secret, n);
		tm__chacha20(key, rec + 8, n);
		err = put(t, t->s->secrets, val(id, TM_TASK_ID_LEN), val(rec, 8 + n),
		          "storing a secret");
	}
	memset(key, 0, sizeof(key));
	free(rec);
	return err;
}

int tm__store_secret_get(tm__txn *t, const char *id, char **out)
{
	MDB_val k = val(id, TM_TASK_ID_LEN), v;
	unsigned char key[TM__KEY_LEN], zero[TM__KEY_LEN] = { 0 };
	uint64_t slot;
	int rc = mdb_get(t->txn, t->s->secrets, &k, &v), err;

	*out = NULL;
	if (rc == MDB_NOTFOUND)
		return TM_OK;
	if (rc)
		return fail(t, rc, "reading a secret");
	if (v.mv_size < 8)
		return tm_errorf(TM_ESTORAGE, "secret of %s is corrupt", id);
	memcpy(&slot, v.mv_data, 8);
	err = tm__keys_read(t->s->keys_fd, slot, key);
	if (err || memcmp(key, zero, sizeof(key)) == 0)
		return err; /* erased */
	*out = malloc(v.mv_size - 8 + 1);
	if (*out == NULL)
		return tm_errorf(TM_ENOMEM, "out of memory");
	memcpy(*out, (char *)v.mv_data + 8, v.mv_size - 8);
	tm__chacha20(key, (unsigned char *)*out, v.mv_size - 8);
	(*out)[v.mv_size - 8] = '\0';
	memset(key, 0, sizeof(key));
	return TM_OK;
}

int tm__store_secret_del(tm__txn *t, const char *id)
{
	MDB_val k = val(id, TM_TASK_ID_LEN), v;
	unsigned char sk[9];
	uint64_t slot;
	int rc = mdb_get(t->txn, t->s->secrets, &k, &v);

	if (rc == MDB_NOTFOUND)
		return TM_OK;
	if (rc)
		return fail(t, rc, "erasing a secret");
	if (v.mv_size < 8)
		return tm_errorf(TM_ESTORAGE, "secret of %s is corrupt", id);
	memcpy(&slot, v.mv_data, 8);
	rc = mdb_del(t->txn, t->s->secrets, &k, NULL);
	if (rc)
		return fail(t, rc, "erasing a secret");
	/* Its key is zeroed by the next scrub, after this commits. */
	return put(t, t->s->slots, val(sk, slot_key(sk, 'S', slot)), val("", 0),
	           "erasing a secret");
}

struct scrub {
	uint64_t slots[256];
	size_t n;
};

static int scrub_list(tm__txn *t, void *p)
{
	struct scrub *c = p;
	MDB_cursor *cur;
	MDB_val k = val("S", 1), v;
	int rc, err = cursor(t, t->s->slots, &cur);

	c->n = 0;
	if (err)
		return err;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && c->n < 256 && k.mv_size == 9 && ((unsigned char *)k.mv_data)[0] == 'S';
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		c->slots[c->n++] = slot_of(k.mv_data);
	mdb_cursor_close(cur);
	return TM_OK;
}

/* Zero the listed keys and free their slots in one write transaction: the
 * store's writer lock keeps any process from handing a slot out between
 * its zeroing and its freeing, and the zeros are synced before the commit
 * that frees the slots. */
static int scrub_txn(tm__txn *t, void *p)
{
	static const unsigned char zero[TM__KEY_LEN];
	struct scrub *c = p;
	unsigned char k[9];
	int err = scrub_list(t, c);

	for (size_t i = 0; !err && i < c->n; i++)
		err = tm__keys_write(t->s->keys_fd, c->slots[i], zero);
	if (!err && c->n > 0)
		err = tm__keys_sync(t->s->keys_fd);
	for (size_t i = 0; !err && i < c->n; i++) {
		MDB_val kv = val(k, slot_key(k, 'S', c->slots[i]));
		int rc = mdb_del(t->txn, t->s->slots, &kv, NULL);

		if (rc)
			return fail(t, rc, "freeing a key slot");
		err = put(t, t->s->slots, val(k, slot_key(k, 'F', c->slots[i])),
		          val("", 0), "freeing a key slot");
	}
	return err;
}

int tm__store_scrub(tm__store *s)
{
	struct scrub *c = malloc(sizeof(*c));
	int err;

	if (c == NULL)
		return tm_errorf(TM_ENOMEM, "out of memory");
	err = tm__store_read(s, scrub_list, c); /* a write only when needed */
	if (!err && c->n > 0)
		err = tm__store_write(s, scrub_txn, c);
	err = err ? err : (int)c->n;
	free(c);
	return err;
}

/* ---- per-name figures ---------------------------------------------------- */

int tm__store_name_stats(tm__txn *t, const char *name, tm__name_stats *out)
{
	struct name_rec r;
	int err = name_get(t, name, &r);

	if (err)
		return err;
	memcpy(out->by_status, r.by_status, sizeof(r.by_status));
	out->changes = r.changes;
	out->since_us = r.since_us;
	return TM_OK;
}

int tm__store_add_changes(tm__txn *t, const char *name, uint64_t n)
{
	struct name_rec r;
	int err = name_get(t, name, &r);

	if (err)
		return err;
	r.changes = r.changes + n < r.changes ? UINT64_MAX : r.changes + n;
	return name_put(t, name, &r);
}

int tm__store_name_touch(tm__txn *t, const char *name)
{
	MDB_val k = val(name, strlen(name)), v;
	struct name_rec r;
	int rc = mdb_get(t->txn, t->s->names, &k, &v), err;

	if (rc != MDB_NOTFOUND)
		return rc ? fail(t, rc, "reading name figures") : TM_OK;
	err = name_get(t, name, &r);
	return err ? err : name_put(t, name, &r);
}

int tm__store_reset_changes(tm__txn *t, const char *name)
{
	struct name_rec r;
	int err = name_get(t, name, &r);

	if (err || r.changes == 0)
		return err; /* nothing to write: the common case of every trigger */
	r.changes = 0;
	return name_put(t, name, &r);
}
