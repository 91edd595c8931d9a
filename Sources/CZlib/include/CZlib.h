#ifndef CZLIB_H
#define CZLIB_H

#include <stddef.h>
#include <stdint.h>

/// Inflates a gzip stream (zlib) of at most max_size bytes of output; more is an error
/// ("inflates to more than"), unless prefix_only is nonzero: then the first max_size bytes
/// (or fewer, if the stream ends or breaks off after some output) are the result. On
/// success *out holds a malloc'ed buffer of *out_size bytes that the caller releases with
/// cz_free. Returns 0 on success; otherwise message holds one line.
int cz_gunzip(const uint8_t *data, size_t size, size_t max_size, int prefix_only, uint8_t **out,
              size_t *out_size, char *message, size_t message_size);

void cz_free(void *pointer);

#endif
