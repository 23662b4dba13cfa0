/* The supervisor thread (supervisor.c): leases, progress flushes, outside
 * changes, timeouts, lost workers, automatic triggers and retention. */
#ifndef TM_SUPERVISOR_H
#define TM_SUPERVISOR_H

/* The body of the supervisor thread; arg is the tm_manager. */
void *tm__supervisor_main(void *arg);

#endif
