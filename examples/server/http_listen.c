/* The listening socket: the --listen address parsed and resolved, the
 * refusal of plain HTTP beyond loopback, the TLS files read (the key only
 * if others cannot read it), and the address really bound reported. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_listen.h"

/* "HOST:PORT" or "[HOST]:PORT" into host and port. */
static int split_listen(const char *s, char *host, size_t hlen, char *port,
                        size_t plen)
{
	const char *colon;
	size_t n;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		n = (size_t)(end - s - 1);
		s++;
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= hlen || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= plen || strspn(colon + 1, "0123456789") !=
	    strlen(colon + 1))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

int srv_listen_resolve(const char *listen, struct addrinfo **ai, char *err,
                       size_t errlen)
{
	struct addrinfo hints;
	char host[256], port[8];
	int rc;

	*ai = NULL;
	if (split_listen(listen, host, sizeof(host), port, sizeof(port)) < 0 ||
	    atoi(port) > 65535) {
		snprintf(err, errlen, "--listen wants HOST:PORT, not '%s'", listen);
		return -1;
	}
	memset(&hints, 0, sizeof(hints)); /* ai_family 0: IPv4 or IPv6 */
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, ai);
	if (rc != 0) {
		snprintf(err, errlen, "--listen %s: %s", listen, gai_strerror(rc));
		return -1;
	}
	return 0;
}

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return 0;
}

/* Read a PEM file into a NUL-terminated string.  A key (@p secret) must
 * not be readable by others. */
static char *read_pem(const char *path, int secret, size_t *len, char *err,
                      size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > SRV_HTTP_PEM_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most 1 MiB", path);
		goto fail;
	}
	if (secret && (st.st_mode & S_IRWXO)) {
		snprintf(err, errlen, "TLS key file %s is accessible by others "
		         "(mode %04o); chmod 600 it", path,
		         (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	while (n < (size_t)st.st_size) {
		ssize_t got = read(fd, buf + n, (size_t)st.st_size - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			e = got < 0 ? errno : 0;
			break;
		}
		n += (size_t)got;
	}
	if (e) {
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		goto fail;
	}
	buf[n] = '\0';
	close(fd);
	*len = n;
	return buf;
fail:
	if (buf)
		explicit_bzero(buf, (size_t)st.st_size);
	free(buf);
	if (fd >= 0)
		close(fd);
	return NULL;
}

int srv_listen_tls(const srv_http_config *cfg, const struct sockaddr *sa,
                   srv_tls *tls, char *err, size_t errlen)
{
	size_t n;

	if (cfg->tls_cert == NULL) {
		if (cfg->insecure_http || is_loopback(sa))
			return 0;
		snprintf(err, errlen, "--listen %s is not a loopback address: over "
		         "plain HTTP the bearer tokens would cross the network in "
		         "clear; give --tls-cert and --tls-key, or --insecure-http "
		         "(e.g. behind a proxy that terminates TLS)", cfg->listen);
		return -1;
	}
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		snprintf(err, errlen, "--tls-cert: this libmicrohttpd was built "
		         "without TLS (GnuTLS) support");
		return -1;
	}
	tls->cert = read_pem(cfg->tls_cert, 0, &n, err, errlen);
	if (tls->cert)
		tls->key = read_pem(cfg->tls_key, 1, &tls->key_len, err, errlen);
	return tls->key ? 0 : -1;
}

void srv_listen_tls_free(srv_tls *tls)
{
	if (tls->key)
		explicit_bzero(tls->key, tls->key_len);
	free(tls->key);
	free(tls->cert);
	tls->cert = tls->key = NULL;
}

void srv_listen_bound(struct MHD_Daemon *d, char *out, size_t len)
{
	const union MHD_DaemonInfo *fdi = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	unsigned port;

	out[0] = '\0';
	if (fdi == NULL || getsockname(fdi->listen_fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(out, len, "[%s]:%u", host, port);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(out, len, "%s:%u", host, port);
	}
}
