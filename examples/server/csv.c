/* A streaming CSV reader over zlib (which reads plain files transparently)
 * and the matching row writer. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "csv.h"

#define BUF_SIZE 65536

struct srv_csv {
	gzFile gz;
	char name[SRV_TABLE_NAME_MAX + 1];
	unsigned char buf[BUF_SIZE];
	size_t pos, len;
	int eof;
	int peeked;              /* one byte pushed back, or -1 */
	char *row;               /* fields, each NUL-terminated */
	size_t rlen, rcap;
	size_t *offs;            /* start of each field in row */
	const char **ptrs;
	size_t nf, fcap, pcap;
	uint64_t line, row_line;
	int started;             /* past the byte-order mark check */
};

enum { C_EOF = -1, C_ERR = -2 };

static int refill(srv_csv *r)
{
	int n;

	if (r->eof)
		return C_EOF;
	n = gzread(r->gz, r->buf, BUF_SIZE);
	if (n < 0)
		return C_ERR;
	if (n == 0) {
		int zerr;
		gzerror(r->gz, &zerr);
		r->eof = 1;
		/* A truncated gzip stream ends without an error from gzread. */
		return zerr == Z_OK || zerr == Z_STREAM_END ? C_EOF : C_ERR;
	}
	r->pos = 0;
	r->len = (size_t)n;
	return 0;
}

static int next_byte(srv_csv *r)
{
	int c;

	if (r->peeked >= 0) {
		c = r->peeked;
		r->peeked = -1;
		return c;
	}
	if (r->pos == r->len && (c = refill(r)) < 0)
		return c;
	return r->buf[r->pos++];
}

static void csv_free(srv_csv *r)
{
	free(r->row);
	free(r->offs);
	free(r->ptrs);
	free(r);
}

int srv_csv_open(int dirfd, const srv_table *t, srv_csv **out)
{
	struct stat st;
	srv_csv *r;
	int fd, e;

	*out = NULL;
	fd = openat(dirfd, t->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		e = errno;
		if (e == ENOENT)
			return tm_errorf(TM_ETABLE_NOT_FOUND, "table %s does not exist",
			                 t->name);
		if (e == ELOOP)
			return tm_errorf(TM_EWRONG_DATA, "table %s is a symbolic link",
			                 t->name);
		return tm_errorf(TM_ESTORAGE, "cannot open table %s: %s", t->name,
		                 strerror(e));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return tm_errorf(TM_EWRONG_DATA, "table %s is not a regular file",
		                 t->name);
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		close(fd);
		return tm_errorf(TM_ENOMEM, "out of memory");
	}
	strcpy(r->name, t->name);
	r->peeked = -1;
	r->fcap = 16;
	r->offs = malloc(r->fcap * sizeof(*r->offs));
	if (r->offs == NULL) {
		close(fd);
		csv_free(r);
		return tm_errorf(TM_ENOMEM, "out of memory");
	}
	r->gz = gzdopen(fd, "rb");
	if (r->gz == NULL) {
		close(fd);
		csv_free(r);
		return tm_errorf(TM_ENOMEM, "cannot read table %s", t->name);
	}
	gzbuffer(r->gz, BUF_SIZE);
	if (t->gzip && st.st_size > 0 && gzdirect(r->gz)) {
		srv_csv_close(r);
		return tm_errorf(TM_EWRONG_DATA, "table %s is not gzip-compressed",
		                 t->name);
	}
	*out = r;
	return TM_OK;
}

void srv_csv_close(srv_csv *r)
{
	if (r == NULL)
		return;
	gzclose(r->gz);
	csv_free(r);
}

uint64_t srv_csv_line(const srv_csv *r)
{
	return r->row_line;
}

static int push_char(srv_csv *r, char c)
{
	if (r->rlen + 1 >= r->rcap) {
		size_t cap = r->rcap ? r->rcap * 2 : 256;
		char *p;

		if (r->rlen + 1 >= SRV_CSV_ROW_MAX)
			return tm_errorf(TM_EWRONG_DATA, "table %s, line %llu: row "
			                 "longer than 1 MiB", r->name,
			                 (unsigned long long)r->row_line);
		p = realloc(r->row, cap);
		if (p == NULL)
			return tm_errorf(TM_ENOMEM, "out of memory");
		r->row = p;
		r->rcap = cap;
	}
	r->row[r->rlen++] = c;
	return TM_OK;
}

/* End the current field: terminate it and record where the next starts. */
static int end_field(srv_csv *r)
{
	int err = push_char(r, '\0');

	if (err)
		return err;
	if (r->nf + 2 > r->fcap) {
		size_t cap = r->fcap * 2;
		size_t *o;

		if (r->nf + 1 > SRV_CSV_FIELDS_MAX)
			return tm_errorf(TM_EWRONG_DATA, "table %s, line %llu: more "
			                 "than %u fields", r->name,
			                 (unsigned long long)r->row_line,
			                 SRV_CSV_FIELDS_MAX);
		o = realloc(r->offs, cap * sizeof(*o));
		if (o == NULL)
			return tm_errorf(TM_ENOMEM, "out of memory");
		r->offs = o;
		r->fcap = cap;
	}
	r->offs[++r->nf] = r->rlen;
	return TM_OK;
}

static int read_error(srv_csv *r)
{
	int zerr;
	const char *msg = gzerror(r->gz, &zerr);

	if (zerr == Z_MEM_ERROR)
		return tm_errorf(TM_ENOMEM, "out of memory");
	return tm_errorf(TM_EWRONG_DATA, "table %s: %s", r->name,
	                 zerr == Z_ERRNO ? strerror(errno) :
	                 msg && *msg ? msg : "unexpected end of compressed data");
}

/* Read one row into r->row: 1, 0 at the end of the data, or an error. */
static int read_row(srv_csv *r)
{
	int c, d, quoted = 0, in_field = 0, err;

	r->rlen = 0;
	r->nf = 0;
	r->offs[0] = 0;
	r->row_line = ++r->line;
	for (;;) {
		c = next_byte(r);
		if (c == C_ERR)
			return read_error(r);
		if (quoted) {
			if (c == C_EOF)
				return tm_errorf(TM_EWRONG_DATA, "table %s, line %llu: "
				                 "unterminated quoted field", r->name,
				                 (unsigned long long)r->row_line);
			if (c == '"') {
				d = next_byte(r);
				if (d == C_ERR)
					return read_error(r);
				if (d != '"') {
					/* The closing quote; an end of data here is
					 * seen again by the next next_byte(). */
					quoted = 0;
					if (d >= 0)
						r->peeked = d;
					continue;
				}
			} else if (c == '\n') {
				r->line++;
			}
			if ((err = push_char(r, (char)c)) != TM_OK)
				return err;
			continue;
		}
		if (c == C_EOF) {
			if (!in_field && r->nf == 0)
				return 0;
			return (err = end_field(r)) != TM_OK ? err : 1;
		}
		if (c == '\r') {
			d = next_byte(r);
			if (d == C_ERR)
				return read_error(r);
			if (d >= 0 && d != '\n')
				r->peeked = d;
			c = '\n';
		}
		if (c == '\n')
			return (err = end_field(r)) != TM_OK ? err : 1;
		if (c == ',') {
			if ((err = end_field(r)) != TM_OK)
				return err;
			in_field = 0;
			continue;
		}
		if (c == '"' && !in_field) {
			quoted = 1;
			in_field = 1;
			continue;
		}
		in_field = 1;
		if ((err = push_char(r, (char)c)) != TM_OK)
			return err;
	}
}

int srv_csv_next(srv_csv *r, const char *const **fields, size_t *n)
{
	int rc;

	do {
		rc = read_row(r);
		if (rc <= 0)
			return rc;
		/* A blank line reads as one empty field: skip it. */
	} while (r->nf == 1 && r->row[0] == '\0');
	if (!r->started) {
		r->started = 1;
		if (r->rlen >= 3 && memcmp(r->row, "\xef\xbb\xbf", 3) == 0)
			r->offs[0] = 3;
	}
	if (r->pcap < r->fcap) {
		const char **p = realloc(r->ptrs, r->fcap * sizeof(*p));
		if (p == NULL)
			return tm_errorf(TM_ENOMEM, "out of memory");
		r->ptrs = p;
		r->pcap = r->fcap;
	}
	for (size_t i = 0; i < r->nf; i++)
		r->ptrs[i] = r->row + r->offs[i];
	*fields = r->ptrs;
	*n = r->nf;
	return 1;
}

long srv_csv_column(const char *const *fields, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(fields[i], name) == 0)
			return (long)i;
	return -1;
}

int srv_csv_write_row(srv_out *o, const char *const *fields, size_t n)
{
	int err = TM_OK;

	for (size_t i = 0; i < n && !err; i++) {
		const char *f = fields[i];
		size_t len = strlen(f), q = 0;
		char *buf;

		if (i && (err = srv_out_write(o, ",", 1)) != TM_OK)
			break;
		if (strpbrk(f, ",\"\r\n") == NULL) {
			err = srv_out_write(o, f, len);
			continue;
		}
		buf = malloc(2 * len + 2);
		if (buf == NULL)
			return tm_errorf(TM_ENOMEM, "out of memory");
		buf[q++] = '"';
		for (const char *p = f; *p; p++) {
			if (*p == '"')
				buf[q++] = '"';
			buf[q++] = *p;
		}
		buf[q++] = '"';
		err = srv_out_write(o, buf, q);
		free(buf);
	}
	return err ? err : srv_out_write(o, "\n", 1);
}
