/* Tokens file, generated root token and constant-time token lookup. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"

#define FILE_MAX (1024 * 1024)
#define TOKENS_MAX 10000

struct entry {
	char *role;
	char *token;
	size_t len;
};

struct srv_tokens {
	struct entry *v;
	size_t n, cap;
};

void srv_tokens_free(srv_tokens *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].role);
		/* Tokens are secrets: do not leave them in freed memory. */
		explicit_bzero(t->v[i].token, t->v[i].len);
		free(t->v[i].token);
	}
	free(t->v);
	free(t);
}

size_t srv_tokens_count(const srv_tokens *t)
{
	return t ? t->n : 0;
}

int srv_ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = (unsigned char)(alen != blen);

	for (size_t i = 0; i < blen; i++) {
		unsigned char x = i < alen ? (unsigned char)a[i] : 0;
		diff |= (unsigned char)(x ^ (unsigned char)b[i]);
	}
	return diff == 0;
}

static int add(srv_tokens *t, const char *role, size_t rlen,
               const char *token, size_t tlen)
{
	struct entry *e;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct entry *v = realloc(t->v, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		t->v = v;
		t->cap = cap;
	}
	e = &t->v[t->n];
	e->role = strndup(role, rlen);
	e->token = strndup(token, tlen);
	e->len = tlen;
	if (e->role == NULL || e->token == NULL) {
		free(e->role);
		free(e->token);
		return -1;
	}
	t->n++;
	return 0;
}

static int fail(char *err, size_t errlen, const char *origin, size_t line,
                const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err && errlen) {
		if (line)
			snprintf(err, errlen, "%s:%zu: %s", origin, line, msg);
		else
			snprintf(err, errlen, "%s: %s", origin, msg);
	}
	return -1;
}

static int role_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int token_char(char c)
{
	return c > 0x20 && c < 0x7f && c != '#';
}

/* Fields of one line [p, end): at most 3 (to detect a third). */
static size_t fields(const char *p, const char *end, const char *f[3], size_t len[3])
{
	size_t n = 0;

	while (p < end && n < 3) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		if (p == end || *p == '#')
			break;
		f[n] = p;
		while (p < end && *p != ' ' && *p != '\t' && *p != '\r')
			p++;
		len[n] = (size_t)(p - f[n]);
		n++;
	}
	return n;
}

static int check_pair(const srv_tokens *t, const char *const f[3],
                      const size_t len[3], const char **why)
{
	if (len[0] > SRV_ROLE_MAX) {
		*why = "role is longer than 32 characters";
		return -1;
	}
	for (size_t i = 0; i < len[0]; i++)
		if (!role_char(f[0][i])) {
			*why = "role may only have the characters [a-z0-9_-]";
			return -1;
		}
	if (len[1] < SRV_TOKEN_MIN || len[1] > SRV_TOKEN_MAX) {
		*why = "token must have 16 to 512 characters";
		return -1;
	}
	for (size_t i = 0; i < len[1]; i++)
		if (!token_char(f[1][i])) {
			*why = "token may only have printable ASCII characters other than '#'";
			return -1;
		}
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].len == len[1] && memcmp(t->v[i].token, f[1], len[1]) == 0) {
			*why = "this token is already listed";
			return -1;
		}
	return 0;
}

int srv_tokens_parse(const char *text, size_t len, const char *origin,
                     srv_tokens **out, char *err, size_t errlen)
{
	srv_tokens *t = calloc(1, sizeof(*t));
	const char *p = text, *end = text + len;
	size_t line = 0;

	*out = NULL;
	if (t == NULL)
		return fail(err, errlen, origin, 0, "out of memory");
	if (memchr(text, '\0', len)) {
		srv_tokens_free(t);
		return fail(err, errlen, origin, 0, "contains a NUL byte");
	}
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *f[3], *why;
		size_t flen[3], n;

		if (eol == NULL)
			eol = end;
		line++;
		n = fields(p, eol, f, flen);
		if (n == 1 || n == 3) {
			srv_tokens_free(t);
			return fail(err, errlen, origin, line,
			            "expected 'ROLE TOKEN', found %s field%s",
			            n == 1 ? "one" : "more than two", n == 1 ? "" : "s");
		}
		if (n == 2) {
			if (check_pair(t, f, flen, &why) < 0) {
				srv_tokens_free(t);
				return fail(err, errlen, origin, line, "%s", why);
			}
			if (t->n == TOKENS_MAX) {
				srv_tokens_free(t);
				return fail(err, errlen, origin, line, "more than %d tokens",
				            TOKENS_MAX);
			}
			if (add(t, f[0], flen[0], f[1], flen[1]) < 0) {
				srv_tokens_free(t);
				return fail(err, errlen, origin, line, "out of memory");
			}
		}
		p = eol < end ? eol + 1 : end;
	}
	if (t->n == 0) {
		srv_tokens_free(t);
		return fail(err, errlen, origin, 0, "no 'ROLE TOKEN' line");
	}
	*out = t;
	return 0;
}

int srv_tokens_load(const char *path, srv_tokens **out, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	ssize_t got;
	size_t len = 0;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, path, 0, "%s", strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
		close(fd);
		return fail(err, errlen, path, 0, "not a regular file of at most 1 MiB");
	}
	/* As ssh treats a private key: secrets others can read are refused. */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		if (err && errlen)
			snprintf(err, errlen, "tokens file %s is accessible by others "
			         "(mode %04o); chmod 600 it", path,
			         (unsigned)(st.st_mode & 07777));
		return -1;
	}
	buf = malloc(FILE_MAX + 1);
	if (buf == NULL) {
		close(fd);
		return fail(err, errlen, path, 0, "out of memory");
	}
	while (len <= FILE_MAX &&
	       (got = read(fd, buf + len, FILE_MAX + 1 - len)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = fail(err, errlen, path, 0, "%s", strerror(errno));
			goto out;
		}
		len += (size_t)got;
	}
	if (len > FILE_MAX)
		rc = fail(err, errlen, path, 0, "larger than 1 MiB");
	else
		rc = srv_tokens_parse(buf, len, path, out, err, errlen);
out:
	explicit_bzero(buf, len);
	free(buf);
	close(fd);
	return rc;
}

int srv_tokens_generate(srv_tokens **out, char token[SRV_TOKEN_GEN_LEN + 1])
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[33] = { 0 };
	size_t got = 0, o = 0;
	srv_tokens *t;

	*out = NULL;
	while (got < 32) {
		ssize_t r = getrandom(raw + got, 32 - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		got += (size_t)r;
	}
	/* 32 bytes = 10 groups of 3 and 2 left: 40 + 3 characters. */
	for (size_t i = 0; i < 33; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
		for (int k = 3; k >= 0 && o < SRV_TOKEN_GEN_LEN; k--)
			token[o++] = b64[(v >> (6 * k)) & 63];
	}
	token[SRV_TOKEN_GEN_LEN] = '\0';
	explicit_bzero(raw, sizeof(raw));
	t = calloc(1, sizeof(*t));
	if (t == NULL || add(t, "root", 4, token, SRV_TOKEN_GEN_LEN) < 0) {
		srv_tokens_free(t);
		return -1;
	}
	*out = t;
	return 0;
}

const char *srv_tokens_role(const srv_tokens *t, const char *authorization)
{
	const char *tok, *role = NULL;
	size_t len;

	if (t == NULL || authorization == NULL ||
	    strncasecmp(authorization, "Bearer", 6) != 0 ||
	    (authorization[6] != ' ' && authorization[6] != '\t'))
		return NULL;
	tok = authorization + 6;
	while (*tok == ' ' || *tok == '\t')
		tok++;
	len = strlen(tok);
	while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
		len--;
	if (len == 0 || len > SRV_TOKEN_MAX)
		return NULL;
	/* No early exit: every entry is compared whatever matched. */
	for (size_t i = 0; i < t->n; i++)
		if (srv_ct_equal(tok, len, t->v[i].token, t->v[i].len))
			role = t->v[i].role;
	return role;
}
