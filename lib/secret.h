/* Keys that can be erased for good, and the cipher of stored refresh
 * tokens (secret.c). */
#ifndef TM_SECRET_H
#define TM_SECRET_H

#include <stddef.h>
#include <stdint.h>

#define TM__KEY_LEN 32

void tm__chacha20(const unsigned char key[TM__KEY_LEN], unsigned char *buf, size_t n);
int tm__keys_open(const char *dir, int *fd);
int tm__keys_write(int fd, uint64_t slot, const unsigned char key[TM__KEY_LEN]);
/* A slot never written reads as a zero key. */
int tm__keys_read(int fd, uint64_t slot, unsigned char key[TM__KEY_LEN]);
int tm__keys_sync(int fd);

#endif
