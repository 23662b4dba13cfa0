/* Wake-ups across the processes that share a store: a futex in a small
 * file beside it (wake.c). */
#ifndef TM_WAKE_H
#define TM_WAKE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct tm__wake tm__wake;

int tm__wake_open(const char *dir, tm__wake **out);
void tm__wake_close(tm__wake *w);
uint32_t tm__wake_seq(tm__wake *w);
/* Wake every process sleeping in tm__wake_wait on this store; this
 * process's own sleeper only if self_too. */
void tm__wake_signal(tm__wake *w, bool self_too);
/* Sleep until a signal after `seen` (from tm__wake_seq), or ms elapse. */
void tm__wake_wait(tm__wake *w, uint32_t seen, unsigned ms);

#endif
