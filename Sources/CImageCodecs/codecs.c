// libpng and libjpeg behind setjmp: both libraries report fatal errors by calling an
// error function that must not return. Ours longjmp back here, so no corrupt file can
// make them call exit() or abort(), and no longjmp ever crosses a Swift frame.

#include "CImageCodecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

static void set_message(char *message, size_t size, const char *text) {
    if (message && size > 0) snprintf(message, size, "%s", text);
}

// MARK: - PNG

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
    char *message;
    size_t message_size;
} png_source;

static void png_read_memory(png_structp png, png_bytep out, png_size_t count) {
    png_source *source = (png_source *)png_get_io_ptr(png);
    if (source->size - source->offset < count) png_error(png, "truncated PNG data");
    memcpy(out, source->data + source->offset, count);
    source->offset += count;
}

static void png_fail(png_structp png, png_const_charp text) {
    png_source *source = (png_source *)png_get_error_ptr(png);
    if (source) set_message(source->message, source->message_size, text);
    png_longjmp(png, 1);
}

static void png_ignore_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

/// Sets up the transforms every decode uses: palettes and low-bit gray expand to 8 bits,
/// 16-bit samples stay 16-bit (the caller reduces them as Pillow does), interlacing is
/// undone. Returns the number of passes.
static void png_configure(png_structp png, png_infop info) {
    png_byte color_type = png_get_color_type(png, info);
    png_byte bit_depth = png_get_bit_depth(png, info);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

static int png_begin(png_source *source, png_structp *png_out, png_infop *info_out) {
    if (source->size < 8 || png_sig_cmp(source->data, 0, 8) != 0) {
        set_message(source->message, source->message_size, "not a PNG file");
        return 1;
    }
    // libpng allocates a chunk's declared length before reading it: a chunk longer than
    // what is left of the file (a few hundred bytes claiming 1.8 GB, found by fuzzing) is
    // refused first.
    for (size_t at = 8; at + 8 <= source->size;) {
        const uint8_t *p = source->data + at;
        size_t length = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (length > source->size - at - 8) {
            snprintf(source->message, source->message_size,
                     "truncated PNG data (a chunk declares %zu bytes, %zu are left)", length,
                     source->size - at - 8);
            return 1;
        }
        if (memcmp(p + 4, "IEND", 4) == 0) break;
        at += 12 + length;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, source, png_fail,
                                             png_ignore_warning);
    if (!png) {
        set_message(source->message, source->message_size, "out of memory");
        return 1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_message(source->message, source->message_size, "out of memory");
        return 1;
    }
    // Width and height are limited by the caller's pixel budget, not libpng's defaults.
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    // An ancillary chunk once inflated (zTXt, iCCP) takes at most 16 MB.
    png_set_chunk_malloc_max(png, 16 << 20);
    png_set_read_fn(png, source, png_read_memory);
    *png_out = png;
    *info_out = info;
    return 0;
}

static void png_fill_info(png_structp png, png_infop info, cic_info *out) {
    out->width = (int)png_get_image_width(png, info);
    out->height = (int)png_get_image_height(png, info);
    out->channels = png_get_channels(png, info);
    out->bit_depth = png_get_bit_depth(png, info);
    out->interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
}

int cic_png_read_info(const uint8_t *data, size_t size, cic_info *info, char *message,
                      size_t message_size) {
    png_source source = {data, size, 0, message, message_size};
    png_structp png = NULL;
    png_infop png_info = NULL;
    if (png_begin(&source, &png, &png_info)) return 1;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &png_info, NULL);
        return 1;
    }
    png_read_info(png, png_info);
    int color_type = png_get_color_type(png, png_info);
    int source_bit_depth = png_get_bit_depth(png, png_info);
    png_configure(png, png_info);
    png_fill_info(png, png_info, info);
    info->color_type = color_type;
    info->source_bit_depth = source_bit_depth;
    png_destroy_read_struct(&png, &png_info, NULL);
    return 0;
}

int cic_png_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t pixels_size,
                   char *message, size_t message_size) {
    png_source source = {data, size, 0, message, message_size};
    png_structp png = NULL;
    png_infop png_info = NULL;
    png_bytep *volatile rows = NULL;
    if (png_begin(&source, &png, &png_info)) return 1;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        png_destroy_read_struct(&png, &png_info, NULL);
        return 1;
    }
    png_read_info(png, png_info);
    png_configure(png, png_info);
    cic_info info;
    png_fill_info(png, png_info, &info);
    size_t row_bytes = (size_t)info.width * info.channels * (info.bit_depth / 8);
    if (png_get_rowbytes(png, png_info) != row_bytes || row_bytes * info.height > pixels_size) {
        set_message(message, message_size, "decoded PNG size does not match its header");
        png_destroy_read_struct(&png, &png_info, NULL);
        return 1;
    }
    rows = malloc(sizeof(png_bytep) * (size_t)info.height);
    if (!rows) png_error(png, "out of memory");
    for (int y = 0; y < info.height; y++) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    // Like Pillow, stop after the image data: a missing IEND is not an error.
    free(rows);
    png_destroy_read_struct(&png, &png_info, NULL);
    return 0;
}

// MARK: - PNG writing

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
} png_sink;

static void png_write_memory(png_structp png, png_bytep bytes, png_size_t count) {
    png_sink *sink = (png_sink *)png_get_io_ptr(png);
    if (sink->size + count > sink->capacity) {
        size_t capacity = sink->capacity ? sink->capacity : 4096;
        while (capacity < sink->size + count) capacity *= 2;
        uint8_t *grown = realloc(sink->data, capacity);
        if (!grown) png_error(png, "out of memory");
        sink->data = grown;
        sink->capacity = capacity;
    }
    memcpy(sink->data + sink->size, bytes, count);
    sink->size += count;
}

static void png_flush_memory(png_structp png) { (void)png; }

int cic_png_encode(const uint8_t *pixels, int width, int height, int channels,
                   const char *const *text_keys, const char *const *text_values, int text_count,
                   uint8_t **out, size_t *out_size, char *message, size_t message_size) {
    static const int color_types[5] = {-1, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                       PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    if (channels < 1 || channels > 4 || width <= 0 || height <= 0) {
        set_message(message, message_size, "PNG needs 1 to 4 channels and a non-empty size");
        return 1;
    }
    png_source errors = {NULL, 0, 0, message, message_size};
    png_sink sink = {NULL, 0, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &errors, png_fail,
                                              png_ignore_warning);
    if (!png) {
        set_message(message, message_size, "out of memory");
        return 1;
    }
    png_infop info = png_create_info_struct(png);
    png_textp volatile texts = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        if (!info) set_message(message, message_size, "out of memory");
        free(texts);
        free(rows);
        free(sink.data);
        png_destroy_write_struct(&png, &info);
        return 1;
    }
    png_set_write_fn(png, &sink, png_write_memory, png_flush_memory);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, color_types[channels],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (text_count > 0) {
        texts = calloc((size_t)text_count, sizeof(png_text));
        if (!texts) png_error(png, "out of memory");
        for (int i = 0; i < text_count; i++) {
            /* tEXt holds Latin-1: a value with any byte above 127 (UTF-8 beyond ASCII) goes
               into an uncompressed iTXt chunk, which holds UTF-8. */
            int ascii = 1;
            for (const unsigned char *c = (const unsigned char *)text_values[i]; *c; c++)
                if (*c > 127) { ascii = 0; break; }
            texts[i].compression = ascii ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
            texts[i].key = (png_charp)text_keys[i];
            texts[i].text = (png_charp)text_values[i];
            texts[i].lang = ascii ? NULL : (png_charp)"";
            texts[i].lang_key = ascii ? NULL : (png_charp)"";
        }
        png_set_text(png, info, texts, text_count);
    }
    rows = malloc(sizeof(png_bytep) * (size_t)height);
    if (!rows) png_error(png, "out of memory");
    for (int y = 0; y < height; y++)
        rows[y] = (png_bytep)pixels + (size_t)y * (size_t)width * (size_t)channels;
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    free(texts);
    free(rows);
    png_destroy_write_struct(&png, &info);
    *out = sink.data;
    *out_size = sink.size;
    return 0;
}

void cic_free(void *pointer) { free(pointer); }

// MARK: - JPEG

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char *message;
    size_t message_size;
    int over_memory_limit;
} jpeg_errors;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_errors *errors = (jpeg_errors *)cinfo->err;
    if (cinfo->err->msg_code == JERR_NO_BACKING_STORE || cinfo->err->msg_code == JERR_OUT_OF_MEMORY) {
        // libjpeg reaches for a temporary file only when its arrays exceed max_memory_to_use.
        errors->over_memory_limit = 1;
        set_message(errors->message, errors->message_size, "more working memory than the limit");
    } else {
        char text[JMSG_LENGTH_MAX];
        (*cinfo->err->format_message)(cinfo, text);
        set_message(errors->message, errors->message_size, text);
    }
    longjmp(errors->jump, 1);
}

/// Warnings are recoverable corruption, which Pillow tolerates too, except running out of
/// data: libjpeg would pad a truncated file with gray, Pillow refuses it, and so do we.
static void jpeg_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_errors *errors = (jpeg_errors *)cinfo->err;
        set_message(errors->message, errors->message_size, "truncated JPEG data");
        longjmp(errors->jump, 1);
    }
}

static int jpeg_output_channels(struct jpeg_decompress_struct *cinfo) {
    switch (cinfo->num_components) {
    case 1: cinfo->out_color_space = JCS_GRAYSCALE; return 1;
    case 3: cinfo->out_color_space = JCS_RGB; return 3;
    // libjpeg turns YCCK into CMYK; the caller undoes the Adobe inversion.
    case 4: cinfo->out_color_space = JCS_CMYK; return 4;
    default: return 0;
    }
}

static int jpeg_run(const uint8_t *data, size_t size, cic_info *info, uint8_t *pixels,
                    size_t pixels_size, long max_memory, char *message, size_t message_size) {
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
        set_message(message, message_size, "not a JPEG file");
        return 1;
    }
    struct jpeg_decompress_struct cinfo;
    jpeg_errors errors;
    cinfo.err = jpeg_std_error(&errors.base);
    errors.base.error_exit = jpeg_fail;
    errors.base.emit_message = jpeg_message;
    errors.message = message;
    errors.message_size = message_size;
    errors.over_memory_limit = 0;
    if (setjmp(errors.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return errors.over_memory_limit ? 2 : 1;
    }
    jpeg_create_decompress(&cinfo);
    cinfo.mem->max_memory_to_use = max_memory;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    int channels = jpeg_output_channels(&cinfo);
    if (channels == 0) {
        set_message(message, message_size, "unsupported number of JPEG components");
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    info->width = (int)cinfo.image_width;
    info->height = (int)cinfo.image_height;
    info->channels = channels;
    info->bit_depth = 8;
    info->color_type = (int)cinfo.jpeg_color_space;
    info->source_bit_depth = cinfo.data_precision;
    info->interlaced = jpeg_has_multiple_scans(&cinfo);
    if (cinfo.data_precision != 8) {
        set_message(message, message_size, "only 8-bit JPEG is supported");
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    if (!pixels) {
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    jpeg_start_decompress(&cinfo);
    size_t row_bytes = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    if (cinfo.output_components != channels || row_bytes * cinfo.output_height > pixels_size) {
        set_message(message, message_size, "decoded JPEG size does not match its header");
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[1] = {pixels + (size_t)cinfo.output_scanline * row_bytes};
        jpeg_read_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

int cic_jpeg_read_info(const uint8_t *data, size_t size, cic_info *info, char *message,
                       size_t message_size) {
    return jpeg_run(data, size, info, NULL, 0, 0, message, message_size);
}

int cic_jpeg_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t pixels_size,
                    long max_memory, char *message, size_t message_size) {
    cic_info info;
    return jpeg_run(data, size, &info, pixels, pixels_size, max_memory, message, message_size);
}
