// zlib behind one function: gzip streams inflated into a buffer of bounded size.

#include "CZlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

// Releases what inflating held; the caller has written the message.
static int fail(z_stream *stream, uint8_t *buffer) {
    free(buffer);
    inflateEnd(stream);
    return 1;
}

int cz_gunzip(const uint8_t *data, size_t size, size_t max_size, int prefix_only, uint8_t **out,
              size_t *out_size, char *message, size_t message_size) {
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
        snprintf(message, message_size, "zlib could not start");
        return 1;
    }
    // One byte beyond the limit tells "exactly max_size" from "more than max_size".
    size_t limit = prefix_only ? max_size : max_size + 1;
    size_t guess = size < (SIZE_MAX - 1024) / 4 ? size * 4 + 1024 : SIZE_MAX;
    size_t capacity = guess < limit ? guess : limit, length = 0;
    if (capacity == 0) capacity = 1;
    uint8_t *buffer = malloc(capacity);
    if (!buffer) {
        snprintf(message, message_size, "out of memory (%zu bytes)", capacity);
        return fail(&stream, NULL);
    }
    stream.next_in = (Bytef *)data;
    stream.avail_in = (uInt)size;
    for (;;) {
        if (length == capacity) {
            if (capacity >= limit) break;  // the limit is reached
            capacity = capacity > limit / 2 ? limit : capacity * 2;
            uint8_t *larger = realloc(buffer, capacity);
            if (!larger) {
                snprintf(message, message_size, "out of memory (%zu bytes)", capacity);
                return fail(&stream, buffer);
            }
            buffer = larger;
        }
        stream.next_out = buffer + length;
        stream.avail_out = (uInt)(capacity - length);
        int status = inflate(&stream, Z_NO_FLUSH);
        length = capacity - stream.avail_out;
        if (status == Z_STREAM_END) break;
        if (status != Z_OK || (stream.avail_in == 0 && stream.avail_out != 0)) {
            // A prefix of a truncated stream is still a prefix; the caller checks its length.
            if (prefix_only && (status == Z_OK || status == Z_BUF_ERROR)) break;
            snprintf(message, message_size, "corrupt or truncated gzip data");
            return fail(&stream, buffer);
        }
    }
    if (!prefix_only && length > max_size) {
        snprintf(message, message_size, "gzip data inflates to more than %zu bytes", max_size);
        return fail(&stream, buffer);
    }
    inflateEnd(&stream);
    *out = buffer;
    *out_size = length;
    return 0;
}

void cz_free(void *pointer) { free(pointer); }
