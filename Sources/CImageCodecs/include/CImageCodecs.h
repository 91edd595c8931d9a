#ifndef CIMAGECODECS_H
#define CIMAGECODECS_H

#include <stddef.h>
#include <stdint.h>

/// What a decoder will produce, read from the file's header only.
typedef struct {
    int width;
    int height;
    /// Samples per pixel in the decoded buffer: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA or CMYK.
    int channels;
    /// Bits per decoded sample: 8, or 16 (big-endian) for 16-bit PNGs.
    int bit_depth;
    /// PNG: the file's colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA).
    /// JPEG: the libjpeg colour space of the file (1 gray, 2 RGB, 3 YCbCr, 4 CMYK, 5 YCCK).
    int color_type;
    /// PNG: the file's bit depth per sample (1, 2, 4, 8, 16); JPEG: 8.
    int source_bit_depth;
    int interlaced;
} cic_info;

/// Each function returns 0 on success; otherwise 1 with a message in `message`.
int cic_png_read_info(const uint8_t *data, size_t size, cic_info *info,
                      char *message, size_t message_size);
/// Decodes into `pixels`, which holds height * width * channels * bit_depth / 8 bytes.
int cic_png_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t pixels_size,
                   char *message, size_t message_size);

int cic_jpeg_read_info(const uint8_t *data, size_t size, cic_info *info,
                       char *message, size_t message_size);
/// Decodes into `pixels` with at most `max_memory` bytes of libjpeg working memory (the
/// whole-image coefficient arrays of progressive files); returns 2 when that is not enough.
int cic_jpeg_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t pixels_size,
                    long max_memory, char *message, size_t message_size);

/// Encodes 8-bit gray (1), gray+alpha (2), RGB (3) or RGBA (4) pixels as PNG with tEXt
/// chunks. On success *out holds a malloc'ed buffer the caller releases with cic_free.
int cic_png_encode(const uint8_t *pixels, int width, int height, int channels,
                   const char *const *text_keys, const char *const *text_values, int text_count,
                   uint8_t **out, size_t *out_size, char *message, size_t message_size);

void cic_free(void *pointer);

#endif
