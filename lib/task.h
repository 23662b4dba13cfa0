/* The task document (task.c): the stored record of a task, and the task
 * JSON that every call answers with.  The only module that builds either;
 * doc/api.md describes the JSON. */
#ifndef TM_TASK_H
#define TM_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "taskmgr.h"

#define TM__PRIORITY_MIN (-10)
#define TM__PRIORITY_MAX 10

/* A task as held in memory between decode and encode.  Status, times and
 * runtime bookkeeping are fixed fields; everything that is JSON (warnings,
 * details) is kept as a cJSON document. */
typedef struct tm__task {
	char id[TM_TASK_ID_LEN + 1];
	char name[TM_NAME_MAX + 1];
	tm_status status;
	bool queued;            /* in the waiting queue (new or retrying) */
	int priority;           /* TM__PRIORITY_MIN..MAX: higher starts first
	                         * among the name's waiting tasks */
	int64_t start_us;       /* trigger time */
	int64_t timeout_us;     /* start + timeout_s */
	int64_t ready_us;       /* queued: not run before this; running (not
	                         * queued): the run's start, for its duration */
	int64_t lease_us;       /* lease expiry of the claiming run */
	uint64_t owner;         /* claim token of the run; 0 = none */
	cJSON *warnings;        /* array of strings */
	cJSON *details;         /* object */
	uint64_t details_hash;  /* of the stored details' bytes (set by decode):
	                         * tells whether they changed since a read */
} tm__task;

/* The caps on what callers may store and ask for (tm_options, version 2). */
typedef struct tm__limits {
	uint64_t task_bytes;     /* a task document: its record's JSON parts */
	uint64_t details_bytes;  /* its details, printed */
	uint64_t list_bytes;     /* one tm_list_recent() answer */
	size_t keys;             /* object keys in its details, at every depth */
} tm__limits;

/* Check t against the limits after a caller's change: its details' keys
 * and printed size, and the whole document, whose size (or a bound of it,
 * when that is under the limits already) goes to *size (when not NULL).  TM_EWRONG_DATA naming the limit and `what` (the call's
 * input, for the message); TM_ENOMEM. */
int tm__task_check_limits(const tm__task *t, const tm__limits *l,
                          const char *what, size_t *size);
/* The size of t's record's JSON parts as stored; its details' printed size
 * to *details (when not NULL).  0 on out of memory. */
size_t tm__task_size(const tm__task *t, size_t *details);

void tm__task_free(tm__task *t);
/* Encode to one malloc'd buffer. */
int tm__task_encode(const tm__task *t, void **buf, size_t *len);
/* Decode a stored record (bytes are copied; nothing points into them).
 * tm__task_decode_head decodes the fixed fields only (warnings and details
 * stay NULL): the runtime's scans never parse JSON. */
int tm__task_decode(const char *id, const void *buf, size_t len, tm__task *t);
int tm__task_decode_head(const char *id, const void *buf, size_t len, tm__task *t);
/* Append the task JSON to out straight from a stored record's bytes;
 * with_details selects the private view. */
int tm__task_render(const char *id, const void *buf, size_t len,
                    bool with_details, tm__buf *out);
/* A time in microseconds as a JSON number of seconds ("1626057538.123456");
 * returns the length. */
size_t tm__time_format(char out[32], int64_t us);
/* The same as a cJSON raw number. */
cJSON *tm__json_time(int64_t us);

/* details.attempts, or 0. */
unsigned tm__task_attempts(const tm__task *t);
int tm__task_set_attempts(tm__task *t, unsigned n);
/* Set details[key] to item (taken, even on failure), replacing any value;
 * item NULL is out of memory. */
int tm__task_set_detail(tm__task *t, const char *key, cJSON *item);
/* details[key] = a string. */
int tm__task_set_text(tm__task *t, const char *key, const char *text);
/* Set details.progress.message. */
int tm__task_set_message(tm__task *t, const char *msg);
int tm__task_add_warning(tm__task *t, const char *msg);
/* Enter a final status: end_time, status, no lease, not queued. */
int tm__task_finish(tm__task *t, tm_status st, int64_t now_us);

#endif
