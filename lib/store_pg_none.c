/* The PostgreSQL engine of a build without libpq: every URI is refused. */
#include "error.h"
#include "store_engine.h"

int tm__pg_open(const char *uri, const tm__store_opts *o, tm__store **out)
{
	(void)o;
	*out = NULL;
	return tm_errorf(TM_EINVAL, "%.11s... is a PostgreSQL URI, and this build "
	                 "of libtaskmgr has no PostgreSQL store (built without "
	                 "libpq); give an LMDB store directory", uri);
}
