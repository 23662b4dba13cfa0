/* The access log: the request line and libmicrohttpd's messages, escaped.
 * What a client sent is written only through escape(). */
#include <stdio.h>
#include <string.h>

#include "http_log.h"
#include "router.h"

#define TARGET_LOG 200  /* bytes of the target logged */

/* Copy s[0..n) into out (4 * n + 1 bytes) with every byte but '!'..'~'
 * (and ' ' with @p spaces) and every backslash as \xNN: a client can
 * neither forge a log line nor send terminal escapes. */
static void escape(const char *s, size_t n, int spaces, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c > 0x20 || (c == 0x20 && spaces)) && c < 0x7f && c != '\\') {
			*out++ = (char)c;
			continue;
		}
		*out++ = '\\';
		*out++ = 'x';
		*out++ = hex[c >> 4];
		*out++ = hex[c & 15];
	}
	*out = '\0';
}

/* A signed download URL is a credential until it expires: the value of
 * every query parameter named signature (once decoded) in t[0..*n) is
 * logged as "-".  *n shrinks accordingly. */
static void redact(char *t, size_t *n)
{
	char *q = memchr(t, '?', *n), *end = t + *n, key[16];

	while (q && q < end) {
		char *p = q + 1, *amp = memchr(p, '&', (size_t)(end - p));
		char *stop = amp ? amp : end, *eq = memchr(p, '=', (size_t)(stop - p));

		if (eq && (size_t)(eq - p) < sizeof(key) &&
		    srv_pct_decode(p, (size_t)(eq - p), key, 1) >= 0 &&
		    strcmp(key, "signature") == 0 && stop - eq > 1) {
			memmove(eq + 2, stop, (size_t)(end - stop));
			eq[1] = '-';
			end -= stop - (eq + 2);
			stop = eq + 2;
		}
		q = stop < end ? stop : NULL;
	}
	*n = (size_t)(end - t);
}

/* A request libmicrohttpd refused by itself (headers too large, bad HTTP),
 * that the client abandoned or that the deadline cut has no status of
 * ours: "-" and why it ended. */
void srv_log_request(const char *method, size_t method_len, const char *target,
                     const struct timespec *t0, int status,
                     enum MHD_RequestTerminationCode toe, int cut)
{
	static const char *const why[] = { "completed", "error", "timeout",
	                                   "shutdown", "read error", "client abort" };
	char m[4 * SRV_LOG_METHOD + 4], t[4 * TARGET_LOG + 4], kept[TARGET_LOG];
	size_t mlen = strlen(method), tlen = strlen(target);
	size_t klen = tlen < TARGET_LOG ? tlen : TARGET_LOG;
	struct timespec t1;
	long long us;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (long long)(t1.tv_sec - t0->tv_sec) * 1000000 +
	     (t1.tv_nsec - t0->tv_nsec) / 1000;
	/* The buffer holds SRV_LOG_METHOD bytes escaped, whatever the caller kept. */
	escape(method, mlen < SRV_LOG_METHOD ? mlen : SRV_LOG_METHOD, 0, m);
	if (method_len > SRV_LOG_METHOD)
		strcat(m, "...");
	if (m[0] == '\0')
		strcpy(m, "-");
	memcpy(kept, target, klen);
	redact(kept, &klen);
	escape(kept, klen, 0, t);
	if (tlen > TARGET_LOG)
		strcat(t, "...");
	if (status)
		fprintf(stderr, "%s %s %d %lldus\n", m, t, status, us);
	else
		fprintf(stderr, "%s %s - %lldus (%s)\n", m, t, us,
		        cut ? "deadline" : (unsigned)toe < 6 ? why[toe] : "closed");
}

void srv_log_mhd(void *cls, const char *fmt, va_list ap)
{
	char msg[512], out[4 * sizeof(msg)];
	int n;

	(void)cls;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	while (n > 0 && msg[n - 1] == '\n')
		n--;
	escape(msg, (size_t)n, 1, out);
	fprintf(stderr, "libmicrohttpd: %s\n", out);
}
