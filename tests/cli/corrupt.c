/* Damage an LMDB store for the cli suite's test of `taskmgr check`: delete
 * the first entry of its id index, as a bug or a bad disk might.
 *
 *   cli-corrupt STORE_DIR */
#include <stdio.h>

#include <lmdb.h>

int main(int argc, char **argv)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_dbi ids;
	MDB_val k, v;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: cli-corrupt STORE_DIR\n");
		return 2;
	}
	rc = mdb_env_create(&env);
	if (!rc)
		rc = mdb_env_set_maxdbs(env, 16);
	if (!rc)
		rc = mdb_env_open(env, argv[1], 0, 0600);
	if (!rc)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (!rc)
		rc = mdb_dbi_open(txn, "ids", 0, &ids);
	if (!rc)
		rc = mdb_cursor_open(txn, ids, &cur);
	if (!rc)
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	if (!rc)
		rc = mdb_cursor_del(cur, 0);
	if (!rc)
		rc = mdb_txn_commit(txn);
	if (rc) {
		fprintf(stderr, "cli-corrupt: %s\n", mdb_strerror(rc));
		return 1;
	}
	mdb_env_close(env);
	return 0;
}
