/* tm-bench's section `pg` in a build without libpq: skipped, saying why. */
#include <stdio.h>

#include "bench_pg.h"

int bench_pg(const char *uri, int quick, int scale, long big)
{
	(void)uri;
	(void)quick;
	(void)scale;
	(void)big;
	printf("\npg: skipped: this build has no PostgreSQL store (libpq was not found "
	       "when it was configured; meson setup -Dpostgresql=enabled requires it)\n");
	return 0;
}

void bench_pg_cleanup(void)
{
}
