/* tm_backup: a consistent copy of the store while it is in use.  The copy
 * is the engine's (store.h): LMDB writes one, PostgreSQL leaves it to
 * pg_dump. */
#include "open.h"
#include "error.h"

int tm_backup(tm_manager *tm, const char *dest_dir)
{
	int err = tm__enter(tm, NULL);

	if (err)
		return err;
	if (dest_dir == NULL || dest_dir[0] == '\0')
		return tm_errorf(TM_EINVAL, "tm_backup needs a destination directory");
	return tm__store_backup(tm->store, dest_dir);
}
