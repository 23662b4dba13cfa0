/* Fuzz the tokens-file parser (srv_tokens_parse, examples/server/auth.c)
 * against a reference written from its contract in auth.h, and the lookup
 * of an Authorization header (srv_tokens_role) against the parsed pairs.
 *
 * Input: the file text.  The bytes after a "\n\f" separator, when there is
 * one, are also tried as an Authorization header value.
 *
 * Beyond no crash, no leak and no read past the text (it is handed over in
 * a buffer of exactly its size): the parser accepts exactly the files the
 * reference accepts, with the same pairs in the same number; on refusal
 * it gives no set and an "ORIGIN:..." message; every listed token maps to
 * its role through "Bearer TOKEN" (in any case of the scheme, with spaces
 * or tabs around), and a header maps to a role only when its token is one
 * of the listed ones. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"

#define ORIGIN "fuzz"

#define fail(...) do { \
	fprintf(stderr, "fuzz-tokens: " __VA_ARGS__); \
	fputc('\n', stderr); \
	abort(); \
} while (0)

struct pair {
	const char *role, *token;
	size_t rlen, tlen;
};

static int sep(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* The contract of auth.h, line by line.  Returns the number of pairs
 * (filling v, at most max), or -1 when the text must be refused. */
static long reference(const char *text, size_t len, struct pair *v, size_t max)
{
	size_t n = 0, i = 0;

	if (memchr(text, '\0', len))
		return -1;
	while (i < len) {
		const char *f[3];
		size_t fl[3], nf = 0;

		/* One line: fields separated by spaces, tabs (and CR); '#' at
		 * the start of a field comments out the rest of the line. */
		while (i < len && text[i] != '\n') {
			size_t s;

			if (sep(text[i])) {
				i++;
				continue;
			}
			if (text[i] == '#') {
				while (i < len && text[i] != '\n')
					i++;
				break;
			}
			s = i;
			while (i < len && text[i] != '\n' && !sep(text[i]))
				i++;
			if (nf < 3) {
				f[nf] = text + s;
				fl[nf] = i - s;
			}
			nf++;
		}
		i++; /* past the newline */
		if (nf == 0)
			continue;
		if (nf != 2)
			return -1;
		if (fl[0] < 1 || fl[0] > SRV_ROLE_MAX)
			return -1;
		for (size_t k = 0; k < fl[0]; k++) {
			char c = f[0][k];
			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			      c == '_' || c == '-'))
				return -1;
		}
		if (fl[1] < SRV_TOKEN_MIN || fl[1] > SRV_TOKEN_MAX)
			return -1;
		for (size_t k = 0; k < fl[1]; k++) {
			unsigned char c = (unsigned char)f[1][k];
			if (c <= 0x20 || c >= 0x7f || c == '#')
				return -1;
		}
		for (size_t k = 0; k < n; k++)
			if (v[k].tlen == fl[1] && memcmp(v[k].token, f[1], fl[1]) == 0)
				return -1; /* a token may appear once */
		if (n == max)
			return -1;
		v[n++] = (struct pair){ f[0], f[1], fl[0], fl[1] };
	}
	return n ? (long)n : -1;
}

static void expect_role(const srv_tokens *t, const char *header,
                        const struct pair *want)
{
	const char *got = srv_tokens_role(t, header);

	if (want == NULL && got != NULL)
		fail("'%s' gave role %s", header, got);
	if (want && (got == NULL || strlen(got) != want->rlen ||
	             memcmp(got, want->role, want->rlen) != 0))
		fail("'%s' gave role %s, expected %.*s", header, got ? got : "(none)",
		     (int)want->rlen, want->role);
}

/* The role of token tok[0..len) among the pairs, or NULL. */
static const struct pair *lookup(const struct pair *v, size_t n,
                                 const char *tok, size_t len)
{
	for (size_t k = 0; k < n; k++)
		if (v[k].tlen == len && memcmp(v[k].token, tok, len) == 0)
			return &v[k];
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pair v[10000];
	static char sentinel;
	const char *text = (const char *)data;
	const char *cut = memmem(data, size, "\n\f", 2);
	size_t len = cut ? (size_t)(cut - text) : size;
	char *buf = malloc(len ? len : 1), err[256], header[SRV_TOKEN_MAX + 64];
	srv_tokens *t = (srv_tokens *)&sentinel; /* the parser must reset it */
	long want;
	int rc;

	memcpy(buf, text, len);
	memset(err, 0, sizeof(err));
	want = reference(text, len, v, sizeof(v) / sizeof(v[0]));
	rc = srv_tokens_parse(buf, len, ORIGIN, &t, err, sizeof(err));
	if (rc != 0 && rc != -1)
		fail("srv_tokens_parse returned %d", rc);
	if ((rc == 0) != (want > 0))
		fail("srv_tokens_parse %s what the contract %s (%s)",
		     rc == 0 ? "accepted" : "refused", want > 0 ? "accepts" : "refuses",
		     err);
	if (rc < 0) {
		if (t != NULL)
			fail("a refused file gave a set");
		if (strncmp(err, ORIGIN ":", strlen(ORIGIN ":")) != 0 ||
		    memchr(err, '\0', sizeof(err)) == NULL)
			fail("message '%s' does not start with the origin", err);
	} else {
		if (t == NULL || srv_tokens_count(t) != (size_t)want)
			fail("%zu tokens, the contract says %ld", srv_tokens_count(t), want);
		for (long k = 0; k < want; k++) {
			snprintf(header, sizeof(header), "%s %.*s", k % 2 ? "bearer" : "Bearer",
			         (int)v[k].tlen, v[k].token);
			expect_role(t, header, &v[k]);
			snprintf(header, sizeof(header), "BEARER\t %.*s \t",
			         (int)v[k].tlen, v[k].token);
			expect_role(t, header, &v[k]);
			/* One character short or one more: another token. */
			snprintf(header, sizeof(header), "Bearer %.*s", (int)v[k].tlen - 1,
			         v[k].token);
			expect_role(t, header, lookup(v, (size_t)want, v[k].token,
			                              v[k].tlen - 1));
			snprintf(header, sizeof(header), "Bearer %.*sx", (int)v[k].tlen,
			         v[k].token);
			expect_role(t, header, lookup(v, (size_t)want, header + 7,
			                              v[k].tlen + 1));
			/* No scheme, or another one: no role. */
			snprintf(header, sizeof(header), "%.*s", (int)v[k].tlen, v[k].token);
			expect_role(t, header, NULL);
			snprintf(header, sizeof(header), "Basic %.*s", (int)v[k].tlen,
			         v[k].token);
			expect_role(t, header, NULL);
		}
		expect_role(t, NULL, NULL);
		expect_role(t, "Bearer", NULL);
		expect_role(t, "Bearer ", NULL);
		if (cut) {
			/* An arbitrary header: a role only for a listed token. */
			size_t hl = size - len - 2;
			char *h = malloc(hl + 1);
			const char *got, *tok;
			size_t tl;

			memcpy(h, cut + 2, hl);
			h[hl] = '\0';
			got = srv_tokens_role(t, h);
			if (got) {
				tok = h + 6;
				while (*tok == ' ' || *tok == '\t')
					tok++;
				tl = strlen(tok);
				while (tl && (tok[tl - 1] == ' ' || tok[tl - 1] == '\t'))
					tl--;
				if (strncasecmp(h, "Bearer", 6) != 0 ||
				    lookup(v, (size_t)want, tok, tl) == NULL)
					fail("header '%s' gave role %s", h, got);
			}
			free(h);
		}
	}
	srv_tokens_free(t);
	free(buf);
	return 0;
}
