/* Task ids, randomness and the wall clock (id.c). */
#ifndef TM_ID_H
#define TM_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "taskmgr.h"

/* Fill id[0..19] with [A-Za-z0-9] from getrandom() (through a pool of
 * the thread's: id.c); id[20] = '\0'. */
int tm__id_new(char id[TM_TASK_ID_LEN + 1]);
bool tm__id_valid(const char *id);
/* Fill buf with bytes from getrandom(). */
int tm__random_bytes(void *buf, size_t len);
/* A random 64-bit value, never 0 (claim tokens), from the same pool. */
uint64_t tm__random64(void);
/* FNV-1a over len bytes, continuing from h (start with TM__HASH64_INIT):
 * cheap, for hash tables and change checks, not against an adversary. */
#define TM__HASH64_INIT 1469598103934665603ull
uint64_t tm__hash64_more(uint64_t h, const void *p, size_t len);
#define tm__hash64(p, len) tm__hash64_more(TM__HASH64_INIT, (p), (len))
/* Wall-clock time in microseconds since the epoch. */
int64_t tm__now_us(void);
/* The monotonic clock in microseconds: for intervals and deadlines. */
int64_t tm__mono_us(void);

#endif
