/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), self-contained: the
 * server signs download URLs with them and links no crypto library.
 * Checked against the FIPS and RFC 4231 vectors (tests/http/test_sha256.c). */
#ifndef SRV_SHA256_H
#define SRV_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SRV_SHA256_LEN 32
#define SRV_SHA256_BLOCK 64

typedef struct srv_sha256 {
	uint32_t h[8];
	uint64_t bytes;                      /* hashed so far */
	unsigned char buf[SRV_SHA256_BLOCK]; /* a partial block */
	size_t fill;
} srv_sha256;

void srv_sha256_init(srv_sha256 *c);
void srv_sha256_update(srv_sha256 *c, const void *data, size_t n);
/* Write the digest and wipe @p c. */
void srv_sha256_final(srv_sha256 *c, unsigned char out[SRV_SHA256_LEN]);

/* HMAC-SHA256 of msg[0..n) under key[0..keylen) (any length). */
void srv_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t n,
                     unsigned char out[SRV_SHA256_LEN]);

#endif
