/* image.c — see image.h. Decoding: PNG with libpng, JPEG with libjpeg-turbo (both fuzzed hard
 * upstream; fuzzing Debian's stb_image 2.27 found memory errors in its JPEG decoder: TESTING.md),
 * BMP with stb_image, chosen by the file's magic bytes, never by guessing. Encoding (our own
 * pixels) is stb_image_write. Dimensions are checked from the header before any pixel is decoded,
 * so a hostile file cannot make a huge allocation. */
#include "base/image.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <png.h>
#include <turbojpeg.h>

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>

#include "base/fs.h"

/* Compressed images larger than this are refused before reading (a 16k x 16k PNG fits). */
enum { SD_IMAGE_MAX_FILE = 512 << 20 };

static sd_status check_size(int w, int h, const char *name) {
    if (w < 1 || h < 1) return sd_fail(SD_ERR_FORMAT, "%s: image has no pixels (%d x %d)", name, w, h);
    if (w > SD_IMAGE_MAX_SIDE || h > SD_IMAGE_MAX_SIDE || (int64_t)w * h > SD_IMAGE_MAX_PIXELS)
        return sd_fail(SD_ERR_LIMIT, "%s: image is %d x %d; the limit is %d pixels a side and %d pixels", name, w, h,
                       SD_IMAGE_MAX_SIDE, SD_IMAGE_MAX_PIXELS);
    return SD_OK;
}

/* stb_image refuses PNGs over 2^30 pixel bytes itself and then says only "unknown image type";
 * reading the IHDR first gives such a file the limit error it deserves. */
static sd_status check_png_header(const uint8_t *b, size_t size, const char *name) {
    if (size < 24 || memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0 || memcmp(b + 12, "IHDR", 4) != 0) return SD_OK;
    int64_t w = (int64_t)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
    int64_t h = (int64_t)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
    if (w > SD_IMAGE_MAX_SIDE || h > SD_IMAGE_MAX_SIDE || w * h > SD_IMAGE_MAX_PIXELS)
        return sd_fail(SD_ERR_LIMIT, "%s: image is %lld x %lld; the limit is %d pixels a side and %d pixels", name,
                       (long long)w, (long long)h, SD_IMAGE_MAX_SIDE, SD_IMAGE_MAX_PIXELS);
    return SD_OK;
}

static sd_status load_png(sd_image *out, const uint8_t *bytes, size_t size, const char *name) {
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&png, bytes, size))
        return sd_fail(SD_ERR_FORMAT, "%s: not a readable PNG: %s", name, png.message);
    /* the IHDR was checked by check_png_header, so the sizes fit in int */
    sd_status st = check_size((int)png.width, (int)png.height, name);
    /* read RGBA and drop the alpha, as PIL's convert("RGB") does (no compositing) */
    png.format = PNG_FORMAT_RGBA;
    uint8_t *rgba = st == SD_OK ? malloc(PNG_IMAGE_SIZE(png)) : NULL;
    if (st == SD_OK && !rgba) st = sd_fail(SD_ERR_NOMEM, "%s: out of memory", name);
    if (st == SD_OK && !png_image_finish_read(&png, NULL, rgba, 0, NULL))
        st = sd_fail(SD_ERR_FORMAT, "%s: cannot decode PNG: %s", name, png.message);
    if (st == SD_OK) st = sd_image_alloc(out, (int)png.width, (int)png.height);
    if (st == SD_OK)
        for (size_t i = 0; i < (size_t)png.width * png.height; i++) memcpy(out->pixels + 3 * i, rgba + 4 * i, 3);
    png_image_free(&png);
    free(rgba);
    return st;
}

static sd_status load_jpeg(sd_image *out, const uint8_t *bytes, size_t size, const char *name) {
    tjhandle tj = tjInitDecompress();
    if (!tj) return sd_fail(SD_ERR_NOMEM, "%s: cannot start the JPEG decoder", name);
    int w = 0, h = 0, subsamp = 0, colorspace = 0;
    sd_status st = SD_OK;
    if (tjDecompressHeader3(tj, bytes, (unsigned long)size, &w, &h, &subsamp, &colorspace) != 0)
        st = sd_fail(SD_ERR_FORMAT, "%s: not a readable JPEG: %s", name, tjGetErrorStr2(tj));
    if (st == SD_OK) st = check_size(w, h, name);
    if (st == SD_OK) st = sd_image_alloc(out, w, h);
    /* corrupt-data warnings still give an image (as libjpeg-based readers do); errors do not */
    if (st == SD_OK && tjDecompress2(tj, bytes, (unsigned long)size, out->pixels, w, 0, h, TJPF_RGB, 0) != 0 &&
        tjGetErrorCode(tj) == TJERR_FATAL) {
        st = sd_fail(SD_ERR_FORMAT, "%s: cannot decode JPEG: %s", name, tjGetErrorStr2(tj));
        sd_image_free(out);
    }
    tjDestroy(tj);
    return st;
}

/* A BMP's pixels are stored plainly (or as bit fields): a file too short to hold the rows it
 * declares is truncated, and compressed (RLE) BMPs are refused, so 80 bytes cannot claim a 60
 * Mpixel image (fuzzing found exactly that decompression bomb). */
static sd_status check_bmp_header(const uint8_t *b, size_t size, const char *name) {
    if (size < 34) return sd_fail(SD_ERR_FORMAT, "%s: BMP header truncated (%zu bytes)", name, size);
    uint32_t offset = (uint32_t)b[10] | (uint32_t)b[11] << 8 | (uint32_t)b[12] << 16 | (uint32_t)b[13] << 24;
    int32_t w = (int32_t)((uint32_t)b[18] | (uint32_t)b[19] << 8 | (uint32_t)b[20] << 16 | (uint32_t)b[21] << 24);
    int32_t h = (int32_t)((uint32_t)b[22] | (uint32_t)b[23] << 8 | (uint32_t)b[24] << 16 | (uint32_t)b[25] << 24);
    uint32_t bpp = (uint32_t)b[28] | (uint32_t)b[29] << 8;
    uint32_t compression = (uint32_t)b[30] | (uint32_t)b[31] << 8 | (uint32_t)b[32] << 16 | (uint32_t)b[33] << 24;
    if (compression != 0 && compression != 3)
        return sd_fail(SD_ERR_UNSUPPORTED, "%s: compressed BMP (method %u) is not supported; use PNG", name, compression);
    int64_t rows = h < 0 ? -(int64_t)h : h;
    SD_TRY(check_size(w, (int)(rows > SD_IMAGE_MAX_SIDE ? SD_IMAGE_MAX_SIDE + 1 : rows), name));
    int64_t need = (int64_t)offset + ((((int64_t)bpp * w + 31) / 32) * 4) * rows;
    if ((int64_t)size < need)
        return sd_fail(SD_ERR_FORMAT, "%s: BMP truncated: %d x %lld at %u bits needs %lld bytes, the file has %zu", name, w,
                       (long long)rows, bpp, (long long)need, size);
    return SD_OK;
}

static sd_status load_bmp(sd_image *out, const uint8_t *bytes, size_t size, const char *name) {
    SD_TRY(check_bmp_header(bytes, size, name));
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(bytes, (int)size, &w, &h, &comp))
        return sd_fail(SD_ERR_FORMAT, "%s: not a readable BMP: %s", name, stbi_failure_reason());
    SD_TRY(check_size(w, h, name));
    uint8_t *pixels = stbi_load_from_memory(bytes, (int)size, &w, &h, &comp, 3);
    if (!pixels) return sd_fail(SD_ERR_FORMAT, "%s: cannot decode BMP: %s", name, stbi_failure_reason());
    SD_TRY(sd_image_alloc(out, w, h));
    memcpy(out->pixels, pixels, (size_t)w * (size_t)h * 3);
    stbi_image_free(pixels);
    return SD_OK;
}

sd_status sd_image_load_memory(sd_image *out, const void *data, size_t size, const char *name) {
    const uint8_t *bytes = data;
    if (size > (size_t)SD_IMAGE_MAX_FILE || size > 0x7fffffff)
        return sd_fail(SD_ERR_LIMIT, "%s: image file of %zu bytes is too large", name, size);
    if (size >= 8 && memcmp(bytes, "\x89PNG\r\n\x1a\n", 8) == 0) {
        SD_TRY(check_png_header(bytes, size, name));
        return load_png(out, bytes, size, name);
    }
    if (size >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) return load_jpeg(out, bytes, size, name);
    if (size >= 2 && bytes[0] == 'B' && bytes[1] == 'M') return load_bmp(out, bytes, size, name);
    return sd_fail(SD_ERR_FORMAT, "%s: not a PNG, JPEG or BMP image (unrecognised first bytes)", name);
}

sd_status sd_image_load(sd_image *out, const char *path) {
    char *bytes = NULL;
    size_t size = 0;
    SD_TRY(sd_read_file(path, SD_IMAGE_MAX_FILE, &bytes, &size));
    sd_status st = sd_image_load_memory(out, bytes, size, path);
    free(bytes);
    return st;
}

static bool has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), m = strlen(ext);
    return n >= m && strcasecmp(path + n - m, ext) == 0;
}

static bool writable_type(const char *path) {
    return has_ext(path, ".png") || has_ext(path, ".jpg") || has_ext(path, ".jpeg") || has_ext(path, ".bmp");
}

sd_status sd_image_check_path(const char *path) {
    if (!path) return sd_fail(SD_ERR_ARG, "image path is NULL");
    if (strcmp(path, "-") == 0) return SD_OK; /* PNG on stdout */
    if (!writable_type(path)) return sd_fail(SD_ERR_ARG, "%s: unknown image type (use .png, .jpg or .bmp, or - for PNG on stdout)", path);
    /* the folder must exist and take a new file: found now, not after minutes of work */
    char dir[SD_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path < SD_PATH_MAX - 1 ? slash - path : SD_PATH_MAX - 1), path);
    struct stat st;
    if (stat(dir, &st) != 0) return sd_fail(SD_ERR_IO, "%s: cannot write into the folder %s: %s", path, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return sd_fail(SD_ERR_IO, "%s: %s is not a folder", path, dir);
    if (access(dir, W_OK | X_OK) != 0) return sd_fail(SD_ERR_IO, "%s: cannot write into the folder %s: %s", path, dir, strerror(errno));
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return sd_fail(SD_ERR_IO, "%s: is a folder", path);
    return SD_OK;
}

typedef struct file_writer {
    FILE *file;
    bool failed;
} file_writer;

static void write_bytes(void *ctx, void *data, int size) {
    file_writer *w = ctx;
    if (size > 0 && fwrite(data, 1, (size_t)size, w->file) != (size_t)size) w->failed = true;
}

static int encode(const sd_image *img, const char *type_path, file_writer *w) {
    int stride = img->width * 3;
    if (has_ext(type_path, ".jpg") || has_ext(type_path, ".jpeg"))
        return stbi_write_jpg_to_func(write_bytes, w, img->width, img->height, 3, img->pixels, 95);
    if (has_ext(type_path, ".bmp")) return stbi_write_bmp_to_func(write_bytes, w, img->width, img->height, 3, img->pixels);
    return stbi_write_png_to_func(write_bytes, w, img->width, img->height, 3, img->pixels, stride);
}

/* Written to a temporary name beside the target and renamed: a failed or interrupted save never
 * leaves a 0-byte or half-written image under the real name. "-" writes PNG to stdout. */
sd_status sd_image_save(const sd_image *img, const char *path) {
    if (!img || !img->pixels || !path) return sd_fail(SD_ERR_ARG, "sd_image_save: image and path are required");
    if (strcmp(path, "-") == 0) {
        file_writer w = {stdout, false};
        int ok = stbi_write_png_to_func(write_bytes, &w, img->width, img->height, 3, img->pixels, img->width * 3);
        if (!ok || w.failed || fflush(stdout) != 0) return sd_fail(SD_ERR_IO, "stdout: cannot write the PNG: %s", strerror(errno));
        return SD_OK;
    }
    if (!writable_type(path)) return sd_fail(SD_ERR_ARG, "%s: unknown image type (use .png, .jpg or .bmp)", path);
    char tmp[SD_PATH_MAX];
    file_writer w = {NULL, false};
    SD_TRY(sd_file_begin(path, tmp, &w.file));
    int ok = encode(img, path, &w);
    return sd_file_commit(w.file, tmp, path, ok && !w.failed);
}

sd_status sd_image_alloc(sd_image *out, int width, int height) {
    SD_TRY(check_size(width, height, "image"));
    out->pixels = malloc((size_t)width * (size_t)height * 3);
    if (!out->pixels) return sd_fail(SD_ERR_NOMEM, "cannot allocate a %d x %d image", width, height);
    out->width = width;
    out->height = height;
    return SD_OK;
}

void sd_image_free(sd_image *img) {
    if (!img) return;
    free(img->pixels);
    img->pixels = NULL;
    img->width = img->height = 0;
}

sd_status sd_image_fit(sd_image *out, const sd_image *in, int width, int height) {
    SD_TRY(sd_image_alloc(out, width, height));
    if (in->width == width && in->height == height) {
        memcpy(out->pixels, in->pixels, (size_t)width * (size_t)height * 3);
        return SD_OK;
    }
    /* crop the source to the target's aspect ratio, centred, then resample */
    double want = (double)width / height, have = (double)in->width / in->height;
    int cw = in->width, ch = in->height;
    if (have > want) cw = (int)lround(ch * want);
    else ch = (int)lround(cw / want);
    if (cw < 1) cw = 1;
    if (ch < 1) ch = 1;
    int x0 = (in->width - cw) / 2, y0 = (in->height - ch) / 2;
    const uint8_t *src = in->pixels + ((size_t)y0 * in->width + x0) * 3;
    if (!stbir_resize_uint8(src, cw, ch, in->width * 3, out->pixels, width, height, width * 3, 3)) {
        sd_image_free(out);
        return sd_fail(SD_ERR_NOMEM, "cannot resize a %d x %d image to %d x %d", in->width, in->height, width, height);
    }
    return SD_OK;
}

void sd_image_to_chw(float *out, const sd_image *img) {
    size_t plane = (size_t)img->width * img->height;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) out[c * plane + i] = 2.0f * ((float)img->pixels[3 * i + c] / 255.0f) - 1.0f;
}

void sd_image_from_chw(sd_image *img, const float *chw) {
    size_t plane = (size_t)img->width * img->height;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) {
            float v = chw[c * plane + i] / 2.0f + 0.5f;
            v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
            if (v != v) v = 0.0f; /* NaN -> black, never undefined */
            img->pixels[3 * i + c] = (uint8_t)rintf(v * 255.0f);
        }
}
