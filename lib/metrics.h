/* The counters behind tm_metrics() (metrics.c): what this process's
 * committed writes did, by name. */
#ifndef TM_METRICS_H
#define TM_METRICS_H

#include "buf.h"
#include "store.h"

typedef struct tm__metrics tm__metrics;

int tm__metrics_new(tm__metrics **out);
void tm__metrics_free(tm__metrics *m);
/* The store's events hook (tm__store_on_events); ctx is the tm__metrics. */
void tm__metrics_events(const tm__event *ev, size_t n, void *ctx);
/* Append the counters and the duration histogram, as Prometheus text. */
void tm__metrics_render(tm__metrics *m, tm__buf *b);

/* Prometheus text: a line, and a family's HELP and TYPE lines. */
void tm__prom_line(tm__buf *b, const char *fmt, ...) TM_PRINTF(2, 3);
void tm__prom_family(tm__buf *b, const char *name, const char *type, const char *help);

#endif
