/* LOCAL tables: files in one directory (--tables).  Table names, the
 * connection field, opening the directory, and writing an output table
 * atomically (gzip-compressed when its name ends in ".gz").
 *
 * Functions returning int give TM_OK or a tm_error with a message set by
 * tm_errorf(), so validate hooks can pass them straight to tm_trigger(). */
#ifndef SRV_TABLES_H
#define SRV_TABLES_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "taskmgr.h"

/* Longest table name: leaves room for the temporary name of an output. */
#define SRV_TABLE_NAME_MAX 200

typedef struct srv_table {
	char name[SRV_TABLE_NAME_MAX + 1];
	int gzip;          /* name ends in ".gz" */
	int csv;           /* name ends in ".csv" or ".csv.gz" */
} srv_table;

/* A plain file name: 1..200 bytes of printable ASCII, no '/', '\\', no
 * "..", no leading '.'.  Otherwise TM_EWRONG_DATA naming @p what. */
int srv_table_name_check(const char *name, const char *what);

/* The "connection" of a table: absent or "LOCAL" is TM_OK; "GCS" and "S3"
 * have no driver here and, like any other value, are TM_EWRONG_DATA. */
int srv_table_connection_check(const cJSON *connection, const char *what);

/* A table object {"connection": "LOCAL", "name": "x.csv"}: no other keys.
 * @p need_csv: the name must end in .csv or .csv.gz. */
int srv_table_parse(const cJSON *obj, const char *what, int need_csv,
                    srv_table *out);

/* Fill @p t from a table name (checked as above). */
int srv_table_set(srv_table *t, const char *name, const char *what, int need_csv);

/* Open the tables directory for reading and writing files in it.
 * TM_ERESOURCE_NOT_FOUND when it does not exist (the LOCAL "bucket" is
 * gone); TM_ESTORAGE for other failures. */
int srv_tables_dir_open(const char *dir, int *dirfd);

/* TM_OK when @p t is a regular file of the directory (symbolic links are
 * not followed); TM_ETABLE_NOT_FOUND when it is missing; TM_EWRONG_DATA
 * when it is something else. */
int srv_table_exists(int dirfd, const srv_table *t, const char *what);

/* An output table being written: a hidden temporary file renamed over the
 * table by srv_out_commit(), so readers never see half a table. */
typedef struct srv_out srv_out;

int srv_out_create(int dirfd, const srv_table *t, srv_out **out);
int srv_out_write(srv_out *o, const void *buf, size_t len);
int srv_out_printf(srv_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Flush, fsync and rename into place; frees @p o in every case. */
int srv_out_commit(srv_out *o);
/* Remove the temporary file; frees @p o.  NULL is a no-op. */
void srv_out_abort(srv_out *o);

/* Whether @p name is the name of an output's temporary file:
 * ".TABLE.xxxxxxxx.tmp", TABLE a valid table name, x lower-case hex. */
int srv_out_is_temp(const char *name);

/* Remove the temporary files that outputs interrupted by a crash left in
 * the tables directory: regular files that srv_out_is_temp() names, and
 * nothing else.  Returns how many were removed.  Only for start-up: a
 * running output's file would go too. */
int srv_out_sweep(int dirfd);

#endif
