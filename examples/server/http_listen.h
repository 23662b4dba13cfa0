/* Where and how the server listens: the --listen address, whether plain
 * HTTP may listen there, the TLS certificate and key, and the address
 * really bound. */
#ifndef SRV_HTTP_LISTEN_H
#define SRV_HTTP_LISTEN_H

#include <stddef.h>
#include <netdb.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "http.h"

/* The PEM text of --tls-cert and --tls-key; NULL: plain HTTP. */
typedef struct srv_tls {
	char *cert, *key;
	size_t key_len;
} srv_tls;

/* Resolve @p listen ("HOST:PORT", "[HOST]:PORT", numeric port) for a
 * listening socket.  Returns 0 with *ai to freeaddrinfo(), or -1 with a
 * message in err. */
int srv_listen_resolve(const char *listen, struct addrinfo **ai, char *err,
                       size_t errlen);

/* Read the TLS files of @p cfg into @p tls, or, without them, check that
 * plain HTTP may listen at @p sa: loopback, or cfg->insecure_http.
 * Returns 0, or -1 with a message in err (@p tls may then hold the
 * certificate: srv_listen_tls_free() it). */
int srv_listen_tls(const srv_http_config *cfg, const struct sockaddr *sa,
                   srv_tls *tls, char *err, size_t errlen);

/* Free @p tls, the key wiped first. */
void srv_listen_tls_free(srv_tls *tls);

/* The address the listening socket of @p d really has, as "HOST:PORT" or
 * "[HOST]:PORT"; "" when unknown. */
void srv_listen_bound(struct MHD_Daemon *d, char *out, size_t len);

#endif
