/* Secrets that can really be erased.  LMDB never overwrites a page in
 * place: a deleted value stays in the freed page until the page is reused,
 * so a refresh token deleted from the store could still be read from
 * data.mdb.  Each secret is therefore stored in LMDB encrypted (ChaCha20,
 * RFC 8439) under a key of its own, and the 32-byte keys live in slots of a
 * small file beside the store, `keys`, which is overwritten in place: once
 * a slot is zeroed and synced, the ciphertext left in LMDB's pages is
 * noise.  Which slots are in use, waiting to be zeroed, or free is kept in
 * LMDB (store.c); this file only does the I/O and the cipher. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "id.h"
#include "secret.h"

#define ROTL(v, n) ((uint32_t)((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d) \
	a += b; d ^= a; d = ROTL(d, 16); \
	c += d; b ^= c; b = ROTL(b, 12); \
	a += b; d ^= a; d = ROTL(d, 8); \
	c += d; b ^= c; b = ROTL(b, 7)

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void chacha20_block(const uint32_t in[16], unsigned char out[64])
{
	uint32_t x[16];

	memcpy(x, in, sizeof(x));
	for (int i = 0; i < 10; i++) {
		QR(x[0], x[4], x[8], x[12]);
		QR(x[1], x[5], x[9], x[13]);
		QR(x[2], x[6], x[10], x[14]);
		QR(x[3], x[7], x[11], x[15]);
		QR(x[0], x[5], x[10], x[15]);
		QR(x[1], x[6], x[11], x[12]);
		QR(x[2], x[7], x[8], x[13]);
		QR(x[3], x[4], x[9], x[14]);
	}
	for (int i = 0; i < 16; i++) {
		uint32_t v = x[i] + in[i];

		out[4 * i] = (unsigned char)v;
		out[4 * i + 1] = (unsigned char)(v >> 8);
		out[4 * i + 2] = (unsigned char)(v >> 16);
		out[4 * i + 3] = (unsigned char)(v >> 24);
	}
}

/* XOR buf with the keystream of key (nonce zero: every key is used for one
 * secret only).  Encrypts and decrypts alike. */
void tm__chacha20(const unsigned char key[TM__KEY_LEN], unsigned char *buf, size_t n)
{
	uint32_t state[16] = { 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574 };
	unsigned char stream[64];

	for (int i = 0; i < 8; i++)
		state[4 + i] = le32(key + 4 * i);
	for (size_t off = 0; off < n; off += 64) {
		size_t k = n - off < 64 ? n - off : 64;

		chacha20_block(state, stream);
		for (size_t i = 0; i < k; i++)
			buf[off + i] ^= stream[i];
		state[12]++;
	}
	memset(stream, 0, sizeof(stream));
}

int tm__keys_open(const char *dir, int *fd)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/keys", dir) >= sizeof(path))
		return tm_errorf(TM_EINVAL, "store path is too long");
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	return *fd < 0 ? tm__error_sys(errno, path) : TM_OK;
}

/* Keys are written into blocks allocated ahead, in chunks: an overwrite
 * inside the file's size makes fdatasync flush the data alone, without a
 * journal commit for a new size or new blocks. */
#define KEYS_CHUNK (64 * 1024)

int tm__keys_write(int fd, uint64_t slot, const unsigned char key[TM__KEY_LEN])
{
	off_t at = (off_t)(slot * TM__KEY_LEN);
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) == 0 && at + TM__KEY_LEN > st.st_size) {
		off_t to = (at / KEYS_CHUNK + 1) * KEYS_CHUNK;
		int rc = posix_fallocate(fd, st.st_size, to - st.st_size);

		if (rc)
			return tm__error_sys(rc, "growing the keys file");
	}
	n = pwrite(fd, key, TM__KEY_LEN, at);

	if (n != TM__KEY_LEN)
		return tm__error_sys(n < 0 ? errno : ENOSPC, "writing a secret's key");
	return TM_OK;
}

int tm__keys_read(int fd, uint64_t slot, unsigned char key[TM__KEY_LEN])
{
	ssize_t n = pread(fd, key, TM__KEY_LEN, (off_t)(slot * TM__KEY_LEN));

	if (n < 0)
		return tm__error_sys(errno, "reading a secret's key");
	if (n != TM__KEY_LEN)
		memset(key, 0, TM__KEY_LEN); /* never written: no key */
	return TM_OK;
}

int tm__keys_sync(int fd)
{
	return fdatasync(fd) == 0 ? TM_OK : tm__error_sys(errno, "syncing secret keys");
}
