// zlib behind one function: gzip streams inflated into a buffer of bounded size.

#include "CZlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int cz_gunzip(const uint8_t *data, size_t size, size_t max_size, uint8_t **out, size_t *out_size,
              char *message, size_t message_size) {
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
        snprintf(message, message_size, "zlib could not start");
        return 1;
    }
    size_t capacity = size * 4 + 1024, length = 0;
    if (capacity > max_size + 1) capacity = max_size + 1;
    uint8_t *buffer = malloc(capacity);
    if (!buffer) {
        inflateEnd(&stream);
        snprintf(message, message_size, "out of memory");
        return 1;
    }
    stream.next_in = (Bytef *)data;
    stream.avail_in = (uInt)size;
    int status = Z_OK;
    while (status != Z_STREAM_END) {
        if (length > max_size) {
            free(buffer);
            inflateEnd(&stream);
            snprintf(message, message_size, "gzip data inflates to more than %zu bytes", max_size);
            return 1;
        }
        if (length == capacity) {
            capacity = capacity > max_size / 2 ? max_size + 1 : capacity * 2;
            uint8_t *larger = realloc(buffer, capacity);
            if (!larger) {
                free(buffer);
                inflateEnd(&stream);
                snprintf(message, message_size, "out of memory");
                return 1;
            }
            buffer = larger;
        }
        stream.next_out = buffer + length;
        stream.avail_out = (uInt)(capacity - length);
        status = inflate(&stream, Z_NO_FLUSH);
        length = capacity - stream.avail_out;
        if (status == Z_STREAM_END) break;
        if (length > max_size) continue;  // reported at the top of the loop
        if (status != Z_OK || (stream.avail_in == 0 && stream.avail_out != 0)) {
            free(buffer);
            inflateEnd(&stream);
            snprintf(message, message_size, "corrupt or truncated gzip data");
            return 1;
        }
    }
    inflateEnd(&stream);
    if (length > max_size) {
        free(buffer);
        snprintf(message, message_size, "gzip data inflates to more than %zu bytes", max_size);
        return 1;
    }
    *out = buffer;
    *out_size = length;
    return 0;
}

void cz_free(void *pointer) { free(pointer); }
