/* CSV tables (RFC 4180: commas, double quotes, CRLF or LF), plain or
 * gzip-compressed, read as a stream of rows through zlib. */
#ifndef SRV_CSV_H
#define SRV_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "tables.h"

/* Longest row and most fields of a row the reader accepts. */
#define SRV_CSV_ROW_MAX (1024u * 1024u)
#define SRV_CSV_FIELDS_MAX 4096u

typedef struct srv_csv srv_csv;

/* Open table @p t of the directory for reading.  TM_ETABLE_NOT_FOUND when it
 * is missing; TM_EWRONG_DATA when it is not a regular file (symbolic links
 * are refused) or a ".gz" name does not hold gzip data. */
int srv_csv_open(int dirfd, const srv_table *t, srv_csv **out);

/* The next non-blank row.  Returns 1 with *fields (valid until the next
 * call) and *n set, 0 at the end, or a negative tm_error (malformed data,
 * a row over the limits, corrupt gzip) with its message set. */
int srv_csv_next(srv_csv *r, const char *const **fields, size_t *n);

/* Line number where the last row returned started (1-based). */
uint64_t srv_csv_line(const srv_csv *r);

void srv_csv_close(srv_csv *r);

/* Index of the column named @p name in a header row, or -1. */
long srv_csv_column(const char *const *fields, size_t n, const char *name);

/* Append one row to an output table, quoting fields that need it. */
int srv_csv_write_row(srv_out *o, const char *const *fields, size_t n);

#endif
