/* The LMDB store's secrets: refresh tokens, encrypted under per-task keys
 * that live in a separate file (secret.c) so that erasing a key erases the
 * token for good, whatever stays behind in LMDB's freed pages. */
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "secret.h"
#include "store_lmdb.h"

/* ---- secrets -----------------------------------------------------------
 *
 * A secret is stored as its key slot and its ciphertext; the key is in the
 * keys file (secret.c).  New secrets take slots from the 'R' list, whose
 * keys were made ahead (below).  Erasing moves the slot to the 'S' list; scrubbing
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
static int slot_take(tm__lmdb_txn *t, uint64_t *slot)
{
	MDB_cursor *c;
	MDB_val kv = tm__lmdb_val("F", 1), v;
	uint64_t next;
	int rc, err = tm__lmdb_cursor(t, t->s->slots, &c);

	if (err)
		return err;
	rc = mdb_cursor_get(c, &kv, &v, MDB_SET_RANGE);
	if (rc == 0 && kv.mv_size == 9 && ((unsigned char *)kv.mv_data)[0] == 'F') {
		*slot = slot_of(kv.mv_data);
		t->on_row = false; /* as every write does (store_lmdb.h) */
		rc = mdb_cursor_del(c, 0);
		mdb_cursor_close(c);
		return rc ? tm__lmdb_fail(t, rc, "taking a key slot") : TM_OK;
	}
	mdb_cursor_close(c);
	kv = tm__lmdb_val("next_slot", 9);
	rc = mdb_get(t->txn, t->s->meta, &kv, &v);
	if (rc && rc != MDB_NOTFOUND)
		return tm__lmdb_fail(t, rc, "taking a key slot");
	*slot = 0;
	if (rc == 0 && v.mv_size == sizeof(*slot))
		memcpy(slot, v.mv_data, sizeof(*slot));
	next = *slot + 1;
	return tm__lmdb_put(t, t->s->meta, kv, tm__lmdb_val(&next, sizeof(next)), "taking a key slot");
}

/* ---- keys made ahead -----------------------------------------------------------
 *
 * A secret's key must be on disk before the commit that refers to it, and
 * a sync of the keys file in that commit would be a third sync beside
 * LMDB's two.  So keys are made ahead: when a secret finds no ready key,
 * its write makes READY_AHEAD more, lists their slots as 'R' (ready), and
 * the commit syncs the keys file once before LMDB's syncs, as it does for
 * any key written (keys_dirty).  The next secrets take ready slots, whose
 * keys are durable since the commit that listed them: no sync.  A ready
 * slot holds a random key no secret uses, which needs no erasing. */
#define READY_AHEAD 256

/* Write a fresh random key into slot (synced before this write commits). */
static int key_new(tm__lmdb_txn *t, uint64_t slot, unsigned char key[TM__KEY_LEN])
{
	int err = tm__random_bytes(key, TM__KEY_LEN);

	if (!err)
		err = tm__keys_write(t->s->keys_fd, slot, key);
	if (!err)
		atomic_store(&t->s->keys_dirty, true); /* synced before the commit */
	return err;
}

/* A ready slot, taken off the list, and its key; *found false when none. */
static int ready_take(tm__lmdb_txn *t, uint64_t *slot, unsigned char key[TM__KEY_LEN],
                      bool *found)
{
	MDB_cursor *c;
	MDB_val kv = tm__lmdb_val("R", 1), v;
	int rc, err = tm__lmdb_cursor(t, t->s->slots, &c);

	*found = false;
	if (err)
		return err;
	rc = mdb_cursor_get(c, &kv, &v, MDB_SET_RANGE);
	if (rc == 0 && kv.mv_size == 9 && ((unsigned char *)kv.mv_data)[0] == 'R') {
		*slot = slot_of(kv.mv_data);
		t->on_row = false;
		rc = mdb_cursor_del(c, 0);
		mdb_cursor_close(c);
		if (rc)
			return tm__lmdb_fail(t, rc, "taking a ready key");
		*found = true;
		err = tm__keys_read(t->s->keys_fd, *slot, key);
		/* A copy (tm_backup) lists ready slots without their keys: a
		 * zero key is made anew, and synced like any new key. */
		if (!err && memcmp(key, (const unsigned char[TM__KEY_LEN]){ 0 }, TM__KEY_LEN) == 0)
			err = key_new(t, *slot, key);
		return err;
	}
	mdb_cursor_close(c);
	return rc == 0 || rc == MDB_NOTFOUND ? TM_OK : tm__lmdb_fail(t, rc, "taking a ready key");
}

/* Make READY_AHEAD keys and list their slots as ready. */
static int ready_make(tm__lmdb_txn *t)
{
	unsigned char key[TM__KEY_LEN], sk[9];
	uint64_t slot;
	int err = TM_OK;

	for (int i = 0; !err && i < READY_AHEAD; i++) {
		err = slot_take(t, &slot);
		if (!err)
			err = key_new(t, slot, key);
		if (!err)
			err = tm__lmdb_put(t, t->s->slots, tm__lmdb_val(sk, slot_key(sk, 'R', slot)),
			                   tm__lmdb_val("", 0), "making keys ahead");
	}
	memset(key, 0, sizeof(key));
	return err;
}

/* A slot and its key for a new secret: a ready one, else one made now,
 * with more made ahead in the same write. */
static int key_for_secret(tm__lmdb_txn *t, uint64_t *slot, unsigned char key[TM__KEY_LEN])
{
	bool found;
	int err = ready_take(t, slot, key, &found);

	if (err || found)
		return err;
	err = slot_take(t, slot);
	if (!err)
		err = key_new(t, *slot, key);
	return err ? err : ready_make(t);
}

int tm__lmdb_secret_put(tm__txn *txn, const char *id, const char *secret)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	size_t n = strlen(secret);
	unsigned char key[TM__KEY_LEN], *rec = malloc(8 + n);
	uint64_t slot = 0;
	int err;

	if (rec == NULL)
		return tm__error_oom();
	err = key_for_secret(t, &slot, key);
	if (!err) {
		memcpy(rec, &slot, 8);
		memcpy(rec + 8, secret, n);
		tm__chacha20(key, rec + 8, n);
		err = tm__lmdb_put(t, t->s->secrets, tm__lmdb_val(id, TM_TASK_ID_LEN), tm__lmdb_val(rec, 8 + n),
		          "storing a secret");
	}
	memset(key, 0, sizeof(key));
	free(rec);
	return err;
}

/* The stored record of id's secret (key slot, then ciphertext) in *v, and
 * its slot; *found is false when the task has none. */
static int secret_find(tm__lmdb_txn *t, const char *id, const char *what,
                       MDB_val *v, uint64_t *slot, bool *found)
{
	MDB_val k = tm__lmdb_val(id, TM_TASK_ID_LEN);
	int rc = mdb_get(t->txn, t->s->secrets, &k, v);

	*found = false;
	if (rc == MDB_NOTFOUND)
		return TM_OK;
	if (rc)
		return tm__lmdb_fail(t, rc, what);
	if (v->mv_size < 8)
		return tm_errorf(TM_ESTORAGE, "secret of %s is corrupt", id);
	memcpy(slot, v->mv_data, 8);
	*found = true;
	return TM_OK;
}

int tm__lmdb_secret_get(tm__txn *txn, const char *id, char **out)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	unsigned char key[TM__KEY_LEN], zero[TM__KEY_LEN] = { 0 };
	MDB_val v;
	uint64_t slot;
	bool found;
	size_t n;
	int err = secret_find(t, id, "reading a secret", &v, &slot, &found);

	*out = NULL;
	if (err || !found)
		return err;
	err = tm__keys_read(t->s->keys_fd, slot, key);
	if (err || memcmp(key, zero, sizeof(key)) == 0)
		return err; /* erased */
	n = v.mv_size - 8;
	*out = malloc(n + 1);
	if (*out == NULL)
		err = tm__error_oom();
	else {
		memcpy(*out, (char *)v.mv_data + 8, n);
		tm__chacha20(key, (unsigned char *)*out, n);
		(*out)[n] = '\0';
	}
	memset(key, 0, sizeof(key));
	return err;
}

int tm__lmdb_secret_del(tm__txn *txn, const char *id)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	MDB_val k = tm__lmdb_val(id, TM_TASK_ID_LEN), v;
	unsigned char sk[9];
	uint64_t slot;
	bool found;
	int rc, err = secret_find(t, id, "erasing a secret", &v, &slot, &found);

	if (err || !found)
		return err;
	t->on_row = false; /* as every write does (store_lmdb.h) */
	rc = mdb_del(t->txn, t->s->secrets, &k, NULL);
	if (rc)
		return tm__lmdb_fail(t, rc, "erasing a secret");
	/* Its key is zeroed by the next scrub, after this commits. */
	return tm__lmdb_put(t, t->s->slots, tm__lmdb_val(sk, slot_key(sk, 'S', slot)),
	                    tm__lmdb_val("", 0), "erasing a secret");
}

struct scrub {
	uint64_t slots[256];
	size_t n;
};

static int scrub_list(tm__txn *txn, void *p)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	struct scrub *c = p;
	MDB_cursor *cur;
	MDB_val k = tm__lmdb_val("S", 1), v;
	int rc, err = tm__lmdb_cursor(t, t->s->slots, &cur);

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
 * that frees the slots.  Only slots whose erasure is durable are zeroed:
 * the list comes from a read of the committed store (tm__lmdb_scrub), not
 * from this transaction, which a group commit may share with the write
 * that erased a slot; zeroing such a key before that write is on disk
 * would, after a power cut, leave an active task with a token nobody can
 * read.  A slot another process scrubbed meanwhile is no longer listed. */
static int scrub_txn(tm__txn *txn, void *p)
{
	tm__lmdb_txn *t = tm__lmdb_txn_of(txn);
	static const unsigned char zero[TM__KEY_LEN];
	struct scrub *c = p;
	unsigned char k[9];
	size_t n = 0;
	int err = TM_OK;

	for (size_t i = 0; i < c->n; i++) {
		MDB_val kv = tm__lmdb_val(k, slot_key(k, 'S', c->slots[i])), v;
		int rc = mdb_get(t->txn, t->s->slots, &kv, &v);

		if (rc == 0)
			c->slots[n++] = c->slots[i];
		else if (rc != MDB_NOTFOUND)
			return tm__lmdb_fail(t, rc, "reading a key slot");
	}
	c->n = n;
	for (size_t i = 0; !err && i < c->n; i++)
		err = tm__keys_write(t->s->keys_fd, c->slots[i], zero);
	if (!err && c->n > 0)
		err = tm__keys_sync(t->s->keys_fd);
	for (size_t i = 0; !err && i < c->n; i++) {
		MDB_val kv = tm__lmdb_val(k, slot_key(k, 'S', c->slots[i]));
		int rc;

		t->on_row = false;
		rc = mdb_del(t->txn, t->s->slots, &kv, NULL);

		if (rc)
			return tm__lmdb_fail(t, rc, "freeing a key slot");
		err = tm__lmdb_put(t, t->s->slots, tm__lmdb_val(k, slot_key(k, 'F', c->slots[i])),
		          tm__lmdb_val("", 0), "freeing a key slot");
	}
	return err;
}

int tm__lmdb_scrub(tm__store *store, size_t *n)
{
	struct scrub *c = malloc(sizeof(*c));
	int err;

	*n = 0;
	if (c == NULL)
		return tm__error_oom();
	err = tm__lmdb_read(store, scrub_list, c); /* a write only when needed */
	if (!err && c->n > 0)
		err = tm__lmdb_write(store, scrub_txn, c);
	if (!err)
		*n = c->n;
	free(c);
	return err;
}
