/* Worker threads (worker.c): claim a batch of tasks, run their handlers
 * with no transaction held, write the outcomes. */
#ifndef TM_WORKER_H
#define TM_WORKER_H

#include <stddef.h>

#include "job.h"
#include "manager.h"

/* The body of a worker thread; arg is the tm_manager. */
void *tm__worker_main(void *arg);
/* At tm_close(): write what the abandoned runs came to, in one write
 * transaction (a handler that returned: its answer; one still running or
 * never started: back to the queue, uncounted). */
int tm__worker_write_abandoned(tm_manager *tm, tm_job **jobs, size_t n);

#endif
