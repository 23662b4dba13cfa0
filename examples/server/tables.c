/* LOCAL tables: names, connections, the directory, atomic output files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "tables.h"

struct srv_out {
	int dirfd;         /* borrowed */
	int fd;            /* kept open for fsync */
	gzFile gz;
	char tmp[SRV_TABLE_NAME_MAX + 32];
	char name[SRV_TABLE_NAME_MAX + 1];
	int failed;
};

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

int srv_table_name_check(const char *name, const char *what)
{
	size_t n = strlen(name);

	if (n == 0)
		return tm_errorf(TM_EWRONG_DATA, "%s: the table name is empty", what);
	if (n > SRV_TABLE_NAME_MAX)
		return tm_errorf(TM_EWRONG_DATA, "%s: the table name is longer than "
		                 "%d bytes", what, SRV_TABLE_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c >= 0x7f || c == '/' || c == '\\')
			return tm_errorf(TM_EWRONG_DATA, "%s: a table name is a plain "
			                 "file name (printable ASCII, no '/' or '\\')", what);
	}
	if (name[0] == '.' || strstr(name, ".."))
		return tm_errorf(TM_EWRONG_DATA, "%s: a table name may not start "
		                 "with '.' nor contain '..'", what);
	return TM_OK;
}

int srv_table_connection_check(const cJSON *c, const char *what)
{
	if (c == NULL)
		return TM_OK;
	if (!cJSON_IsString(c))
		return tm_errorf(TM_EWRONG_DATA, "%s: connection must be a string", what);
	if (strcmp(c->valuestring, "LOCAL") == 0)
		return TM_OK;
	if (strcmp(c->valuestring, "GCS") == 0 || strcmp(c->valuestring, "S3") == 0)
		return tm_errorf(TM_EWRONG_DATA, "%s: connection %s has no driver in "
		                 "the example server (only LOCAL)", what, c->valuestring);
	return tm_errorf(TM_EWRONG_DATA, "%s: unknown connection (LOCAL, GCS or S3)",
	                 what);
}

int srv_table_parse(const cJSON *obj, const char *what, int need_csv,
                    srv_table *out)
{
	const cJSON *name = NULL, *conn = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(obj))
		return tm_errorf(TM_EWRONG_DATA, "%s must be an object with "
		                 "connection and name", what);
	for (const cJSON *f = obj->child; f; f = f->next) {
		if (strcmp(f->string, "name") == 0)
			name = f;
		else if (strcmp(f->string, "connection") == 0)
			conn = f;
		else
			return tm_errorf(TM_EWRONG_DATA, "%s: unknown field '%.64s'",
			                 what, f->string);
	}
	err = srv_table_connection_check(conn, what);
	if (err)
		return err;
	if (!cJSON_IsString(name))
		return tm_errorf(TM_EWRONG_DATA, "%s: name must be a string", what);
	return srv_table_set(out, name->valuestring, what, need_csv);
}

int srv_table_set(srv_table *t, const char *name, const char *what, int need_csv)
{
	int err = srv_table_name_check(name, what);

	memset(t, 0, sizeof(*t));
	if (err)
		return err;
	strcpy(t->name, name);
	t->gzip = ends_with(t->name, ".gz");
	t->csv = ends_with(t->name, ".csv") || ends_with(t->name, ".csv.gz");
	if (need_csv && !t->csv)
		return tm_errorf(TM_EWRONG_DATA, "%s: the example server reads and "
		                 "writes .csv and .csv.gz tables only", what);
	return TM_OK;
}

int srv_tables_dir_open(const char *dir, int *dirfd)
{
	*dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd >= 0)
		return TM_OK;
	if (errno == ENOENT || errno == ENOTDIR)
		return tm_errorf(TM_ERESOURCE_NOT_FOUND, "the LOCAL tables "
		                 "directory does not exist");
	return tm_errorf(TM_ESTORAGE, "cannot open the tables directory: %s",
	                 strerror(errno));
}

int srv_table_exists(int dirfd, const srv_table *t, const char *what)
{
	struct stat st;

	if (fstatat(dirfd, t->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return tm_errorf(TM_ETABLE_NOT_FOUND, "%s: table %s does not "
			                 "exist", what, t->name);
		return tm_errorf(TM_ESTORAGE, "%s: %s", what, strerror(errno));
	}
	if (!S_ISREG(st.st_mode))
		return tm_errorf(TM_EWRONG_DATA, "%s: table %s is not a regular file",
		                 what, t->name);
	return TM_OK;
}

/* ---- output -------------------------------------------------------------- */

int srv_out_create(int dirfd, const srv_table *t, srv_out **out)
{
	unsigned char rnd[4];
	srv_out *o;
	int fd2;

	*out = NULL;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return tm_errorf(TM_ENOMEM, "out of memory");
	o->dirfd = dirfd;
	o->fd = -1;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		free(o);
		return tm_errorf(TM_ESTORAGE, "getrandom: %s", strerror(errno));
	}
	/* A leading '.' is never a valid table name: the temporary file
	 * cannot be mistaken for a table. */
	snprintf(o->tmp, sizeof(o->tmp), ".%s.%02x%02x%02x%02x.tmp", t->name,
	         rnd[0], rnd[1], rnd[2], rnd[3]);
	strcpy(o->name, t->name);
	o->fd = openat(dirfd, o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	               O_CLOEXEC, 0644);
	if (o->fd < 0) {
		int e = errno;
		free(o);
		return tm_errorf(TM_ESTORAGE, "cannot create table %s: %s", t->name,
		                 strerror(e));
	}
	fd2 = dup(o->fd);
	/* "T": transparent, i.e. plain bytes, when the name has no ".gz". */
	o->gz = fd2 < 0 ? NULL : gzdopen(fd2, t->gzip ? "wb6" : "wbT");
	if (o->gz == NULL) {
		if (fd2 >= 0)
			close(fd2);
		srv_out_abort(o);
		return tm_errorf(TM_ENOMEM, "cannot start writing table %s", t->name);
	}
	*out = o;
	return TM_OK;
}

int srv_out_write(srv_out *o, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0 && !o->failed) {
		unsigned chunk = len > 65536 ? 65536u : (unsigned)len;
		if (gzwrite(o->gz, p, chunk) != (int)chunk)
			o->failed = 1;
		p += chunk;
		len -= chunk;
	}
	if (o->failed)
		return tm_errorf(TM_ESTORAGE, "cannot write table %s", o->name);
	return TM_OK;
}

int srv_out_printf(srv_out *o, const char *fmt, ...)
{
	char small[256], *big = NULL;
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return tm_errorf(TM_ENOMEM, "cannot format output");
	if ((size_t)n < sizeof(small))
		return srv_out_write(o, small, (size_t)n);
	big = malloc((size_t)n + 1);
	if (big == NULL)
		return tm_errorf(TM_ENOMEM, "out of memory");
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	err = srv_out_write(o, big, (size_t)n);
	free(big);
	return err;
}

int srv_out_commit(srv_out *o)
{
	int zerr = gzclose(o->gz);

	o->gz = NULL;
	if (o->failed || zerr != Z_OK || fsync(o->fd) < 0 ||
	    renameat(o->dirfd, o->tmp, o->dirfd, o->name) < 0) {
		char name[SRV_TABLE_NAME_MAX + 1];

		strcpy(name, o->name);
		srv_out_abort(o);
		return tm_errorf(TM_ESTORAGE, "cannot write table %s", name);
	}
	/* The rename itself must survive a crash too. */
	fsync(o->dirfd);
	close(o->fd);
	free(o);
	return TM_OK;
}

void srv_out_abort(srv_out *o)
{
	if (o == NULL)
		return;
	if (o->gz)
		gzclose(o->gz);
	if (o->fd >= 0) {
		close(o->fd);
		unlinkat(o->dirfd, o->tmp, 0);
	}
	free(o);
}

/* ---- leftovers of a crash ------------------------------------------------ */

int srv_out_is_temp(const char *name)
{
	char table[SRV_TABLE_NAME_MAX + 1];
	size_t n = strlen(name), t;
	const char *x;

	/* "." + TABLE + "." + 8 hex digits + ".tmp" */
	if (n < 1 + 1 + 1 + 8 + 4 || name[0] != '.' || strcmp(name + n - 4, ".tmp"))
		return 0;
	x = name + n - 4 - 8;
	if (x[-1] != '.' || strspn(x, "0123456789abcdef") != 8)
		return 0;
	t = (size_t)(x - 1 - (name + 1));
	if (t > SRV_TABLE_NAME_MAX)
		return 0;
	memcpy(table, name + 1, t);
	table[t] = '\0';
	return srv_table_name_check(table, "temporary file") == TM_OK;
}

int srv_out_sweep(int dirfd)
{
	int fd = dup(dirfd), removed = 0;
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (srv_out_is_temp(e->d_name) &&
		    fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && unlinkat(dirfd, e->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	if (removed)
		fsync(dirfd);
	return removed;
}
