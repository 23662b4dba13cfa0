/* The LMDB store's online backup (tm_backup): a compacted copy of the
 * environment, and of the keys its refresh tokens are encrypted under,
 * written into a temporary sibling of the destination, synced, and renamed
 * to the destination once whole, so that a failure (or a crash) leaves no
 * half backup under that name.
 *
 * The environment is copied from one read snapshot while the store stays
 * in use: mdb_env_copyfd2(MDB_CP_COMPACT), which is mdb_env_copy2 on a
 * file made here, 0600, and synced.  The keys live outside LMDB
 * (secret.c) and are copied after the snapshot: for each secret of the
 * copy, its key is taken only if the store still holds that secret under
 * the same slot.  The check and the copy run inside a write transaction,
 * since keys are written, zeroed and their slots handed out again only
 * under LMDB's one writer lock, which holds every process.  So a task
 * that ended between the snapshot and the copy of the keys (its key
 * zeroed, its slot perhaps already reused by a newer task's secret) has no
 * key in the backup: its token reads as erased, as it is in the store,
 * rather than as a newer token's key applied to the old ciphertext. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"
#include "store_lmdb.h"

/* ---- the destination --------------------------------------------------- */

/* A destination that does not exist, or an empty directory (rename(2)
 * replaces an empty directory). */
static int check_dest(const char *dest)
{
	struct stat st;
	struct dirent *e;
	bool empty = true;
	DIR *d;

	if (lstat(dest, &st) != 0)
		return errno == ENOENT ? TM_OK : tm__error_sys(errno, dest);
	if (!S_ISDIR(st.st_mode))
		return tm_errorf(TM_EINVAL, "backup destination %s exists and is not "
		                 "a directory", dest);
	d = opendir(dest);
	if (d == NULL)
		return tm__error_sys(errno, dest);
	while (empty && (e = readdir(d)) != NULL)
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	return empty ? TM_OK : tm_errorf(TM_EINVAL, "backup destination %s exists "
	                                 "and is not an empty directory", dest);
}

/* dest without trailing slashes, and the directory that holds it. */
static int split_dest(const char *dest, char name[PATH_MAX], char parent[PATH_MAX])
{
	size_t n = strlen(dest);
	char *slash;

	while (n > 1 && dest[n - 1] == '/')
		n--;
	if (n + sizeof(".tmp-XXXXXX/data.mdb") > PATH_MAX)
		return tm_errorf(TM_EINVAL, "backup destination is too long");
	memcpy(name, dest, n);
	name[n] = '\0';
	slash = strrchr(name, '/');
	if (slash == NULL)
		strcpy(parent, ".");
	else if (slash == name)
		strcpy(parent, "/");
	else
		snprintf(parent, PATH_MAX, "%.*s", (int)(slash - name), name);
	return TM_OK;
}

static int sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = TM_OK;

	if (fd < 0)
		return tm__error_sys(errno, path);
	if (fsync(fd) != 0)
		err = tm__error_sys(errno, path);
	close(fd);
	return err;
}

/* The temporary directory and what may have been written into it. */
static void remove_tmp(const char *tmp)
{
	static const char *const files[] = { "data.mdb", "keys" };
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", tmp, files[i]) < sizeof(path))
			unlink(path);
	rmdir(tmp);
}

/* ---- the environment ------------------------------------------------------ */

static int copy_env(tm__lmdb *s, const char *dir)
{
	char path[PATH_MAX];
	int fd, rc, err;

	if ((size_t)snprintf(path, sizeof(path), "%s/data.mdb", dir) >= sizeof(path))
		return tm_errorf(TM_EINVAL, "backup destination is too long");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return tm__error_sys(errno, path);
	for (;;) {
		/* The copy's read transaction holds pointers into the map:
		 * this process must not grow it meanwhile (store_lmdb_txn.c). */
		pthread_rwlock_rdlock(&s->resize);
		rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
		pthread_rwlock_unlock(&s->resize);
		if (rc != MDB_MAP_RESIZED)
			break;
		/* Another process grew the map: adopt its size, start again. */
		pthread_rwlock_wrlock(&s->resize);
		mdb_env_set_mapsize(s->env, 0);
		pthread_rwlock_unlock(&s->resize);
		if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
			rc = errno;
			break;
		}
	}
	err = rc ? tm__lmdb_error(rc, "copying the store") : TM_OK;
	if (!err && fsync(fd) != 0)
		err = tm__error_sys(errno, path);
	if (close(fd) != 0 && !err)
		err = tm__error_sys(errno, path);
	return err;
}

/* ---- the keys -------------------------------------------------------------- */

struct held {
	char id[TM_TASK_ID_LEN];
	uint64_t slot;
};

struct keys_copy {
	struct held *v;   /* the secrets of the copy */
	size_t n, cap;
	int fd;           /* the copy's keys file */
};

static int hold(struct keys_copy *c, const MDB_val *k, const MDB_val *v)
{
	if (k->mv_size != TM_TASK_ID_LEN || v->mv_size < 8)
		return tm_errorf(TM_ESTORAGE, "copying the store: a secret's record "
		                 "is corrupt");
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct held *p = realloc(c->v, cap * sizeof(*p));

		if (p == NULL)
			return tm__error_oom();
		c->v = p;
		c->cap = cap;
	}
	memcpy(c->v[c->n].id, k->mv_data, TM_TASK_ID_LEN);
	memcpy(&c->v[c->n].slot, v->mv_data, 8);
	c->n++;
	return TM_OK;
}

/* The secrets of the copy (id and key slot), read from the copy itself:
 * exactly the snapshot's.  Opened read-only without a lock file, so
 * nothing is added to the directory. */
static int list_secrets(const char *dir, struct keys_copy *c)
{
	MDB_env *env;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_dbi dbi;
	MDB_val k, v;
	int err = TM_OK, rc = mdb_env_create(&env);

	if (rc)
		return tm__lmdb_error(rc, "reading the copy");
	rc = mdb_env_set_maxdbs(env, 16);
	if (!rc)
		rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0600);
	if (!rc)
		rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (!rc)
		rc = mdb_dbi_open(txn, "secrets", 0, &dbi);
	if (!rc)
		rc = mdb_cursor_open(txn, dbi, &cur);
	for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !err;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		err = hold(c, &k, &v);
	if (!err && rc != MDB_NOTFOUND)
		err = tm__lmdb_error(rc, "reading the copy");
	if (cur)
		mdb_cursor_close(cur);
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return err;
}

/* Under the writer lock: each secret of the copy that the store still
 * holds under the same slot gets its key in the copy's keys file; the
 * others stay zero (erased).  Writes nothing to the store, and may run
 * again (tm__lmdb_write). */
static int keys_txn(tm__txn *txn, void *p)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	struct keys_copy *c = p;
	int err = TM_OK;

	for (size_t i = 0; i < c->n && !err; i++) {
		MDB_val k = tm__lmdb_val(c->v[i].id, TM_TASK_ID_LEN), v;
		unsigned char key[TM__KEY_LEN];
		uint64_t slot;
		int rc = mdb_get(t->txn, t->s->secrets, &k, &v);

		if (rc == MDB_NOTFOUND)
			continue; /* the task ended since the snapshot */
		if (rc)
			return tm__lmdb_fail(t, rc, "reading a secret");
		if (v.mv_size < 8)
			return tm_errorf(TM_ESTORAGE, "secret of %.20s is corrupt", c->v[i].id);
		memcpy(&slot, v.mv_data, 8);
		if (slot != c->v[i].slot)
			continue;
		err = tm__keys_read(t->s->keys_fd, slot, key);
		if (!err)
			err = tm__keys_write(c->fd, slot, key);
		memset(key, 0, sizeof(key));
	}
	return err;
}

static int copy_keys(tm__lmdb *s, const char *dir)
{
	struct keys_copy c = { .fd = -1 };
	int err = list_secrets(dir, &c);

	if (!err)
		err = tm__keys_open(dir, &c.fd);
	if (!err && c.n > 0)
		err = tm__lmdb_write(&s->base, keys_txn, &c);
	if (!err)
		err = tm__keys_sync(c.fd);
	if (c.fd >= 0 && close(c.fd) != 0 && !err)
		err = tm__error_sys(errno, "closing the copy's keys");
	free(c.v);
	return err;
}

/* ---- the backup ------------------------------------------------------------- */

int tm__lmdb_backup(tm__store *store, const char *dest)
{
	tm__lmdb *s = tm__lmdb_of(store);
	char name[PATH_MAX], parent[PATH_MAX], tmp[PATH_MAX];
	int err = split_dest(dest, name, parent);

	if (!err)
		err = check_dest(name);
	if (err)
		return err;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", name) >= sizeof(tmp))
		return tm_errorf(TM_EINVAL, "backup destination is too long");
	if (mkdtemp(tmp) == NULL) /* mode 0700 */
		return tm_errorf(errno == ENOMEM ? TM_ENOMEM : TM_ESTORAGE,
		                 "cannot create a directory in %s for the backup: %s",
		                 parent, strerror(errno));
	err = copy_env(s, tmp);
	if (!err && s->backup_pause)
		s->backup_pause(s->backup_pause_ctx);
	if (!err)
		err = copy_keys(s, tmp);
	if (!err)
		err = sync_dir(tmp);
	if (!err && rename(tmp, name) != 0) {
		if (errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR)
			err = tm_errorf(TM_EINVAL, "backup destination %s was created "
			                "meanwhile, and is not an empty directory", name);
		else
			err = tm__error_sys(errno, name);
	}
	if (err) {
		remove_tmp(tmp);
		return err;
	}
	return sync_dir(parent); /* the new name, durable */
}
