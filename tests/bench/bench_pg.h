/* tm-bench's section `pg` (bench_pg.c): the PostgreSQL store against raw
 * libpq on the same server, in the same run.  A build without libpq links
 * bench_pg_none.c instead, whose section only says it was skipped. */
#ifndef TM_BENCH_PG_H
#define TM_BENCH_PG_H

/* Run the section against the server at uri (a libpq URI; NULL or "":
 * skipped, with a line saying why).  quick and scale as tm-bench's
 * --quick and BENCH_SCALE; big is the big store's task count (BENCH_BIG).
 * Returns 0, or exits with status 1 when a call fails. */
int bench_pg(const char *uri, int quick, int scale, long big);

/* Stop the node processes the section started and drop the schemas it
 * made, in the process that made them only.  tm-bench calls it when it
 * ends, also on failure and on SIGINT, SIGTERM or SIGHUP; safe to call
 * more than once and from any thread. */
void bench_pg_cleanup(void);

#endif
