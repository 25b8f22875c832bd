/*
 * 2x2, stride-2 max pooling over channels-last (NHWC) float32 or bfloat16 tensors.
 *
 * Why not PyTorch's kernel: on a small CNN its forward stores an int64 index per output and its
 * backward first zero-fills the whole input-sized gradient, then scatters into it; the two
 * passes over the pooled conv output were about a third of an A2 training step in bf16. Here the
 * forward stores a one-byte window position (0..3) and the backward writes every input gradient
 * once (up to 16 channels: zeroes two rows while they are in cache, then scatters; see SPARSE_ROW).
 *
 * Semantics match torch.nn.functional.max_pool2d(kernel 2, stride 2): windows scanned in row-major
 * order, the first maximum wins, NaN propagates, an odd last row or column is dropped (and gets
 * zero gradient). Work is split by output rows over `threads` OpenMP threads.
 */
#include <stdint.h>
#include <string.h>

typedef struct {
    const void *x; void *y; uint8_t *idx;    /* forward */
    const void *gy; void *gx;                /* backward */
    int64_t n, h, w, c, oh, ow, bytes;       /* bytes: 4 (float32) or 2 (bfloat16) */
    int64_t first, last;                     /* this thread's output rows, over n * oh */
} job_t;

static inline float bf16_value(uint16_t bits) {
    uint32_t wide = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &wide, sizeof value);
    return value;
}

/* take `v` over the running maximum `m` the way ATen does: greater, or NaN */
#define TAKE(v, m) (((v) > (m)) | ((v) != (v)))

static inline void window_f32(const float *restrict a0, const float *restrict a1, const float *restrict b0,
                              const float *restrict b1, float *restrict out, uint8_t *restrict at, int64_t c) {
    for (int64_t k = 0; k < c; k++) {
        float m = a0[k], v;
        uint8_t where = 0;
        v = a1[k]; if (TAKE(v, m)) { m = v; where = 1; }
        v = b0[k]; if (TAKE(v, m)) { m = v; where = 2; }
        v = b1[k]; if (TAKE(v, m)) { m = v; where = 3; }
        out[k] = m;
        at[k] = where;
    }
}

static inline void window_bf16(const uint16_t *restrict a0, const uint16_t *restrict a1, const uint16_t *restrict b0,
                               const uint16_t *restrict b1, uint16_t *restrict out, uint8_t *restrict at, int64_t c) {
    for (int64_t k = 0; k < c; k++) {
        float m = bf16_value(a0[k]), v;
        uint16_t bits = a0[k];
        uint8_t where = 0;
        v = bf16_value(a1[k]); if (TAKE(v, m)) { m = v; bits = a1[k]; where = 1; }
        v = bf16_value(b0[k]); if (TAKE(v, m)) { m = v; bits = b0[k]; where = 2; }
        v = bf16_value(b1[k]); if (TAKE(v, m)) { m = v; bits = b1[k]; where = 3; }
        out[k] = bits;
        at[k] = where;
    }
}

/* fp32 windows 4 channels at a time in GCC's vector types, each comparison a lane-wise mask and a
 * blend. For 12 or 24 channels (a stacked group of 3 members of 4 or 8) the compiler vectorized
 * the loop above poorly: 32x12x28x28, one thread, AVX-512, 267 us against 43 us this way. */
typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

static inline f32x4 load4(const float *p) {
    f32x4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void take4(f32x4 v, f32x4 *m, i32x4 *where, int32_t position) {
    const i32x4 t = (v > *m) | (v != v);  /* TAKE, lane-wise: -1 where taken */
    *m = (f32x4)(((i32x4)v & t) | ((i32x4)*m & ~t));
    *where = (*where & ~t) | (t & position);
}

static inline void window_f32_by4(const float *a0, const float *a1, const float *b0, const float *b1,
                                  float *out, uint8_t *at, int64_t c) {
    for (int64_t q = 0; q < c; q += 4) {
        f32x4 m = load4(a0 + q);
        i32x4 where = {0, 0, 0, 0};
        take4(load4(a1 + q), &m, &where, 1);
        take4(load4(b0 + q), &m, &where, 2);
        take4(load4(b1 + q), &m, &where, 3);
        memcpy(out + q, &m, sizeof m);
        for (int k = 0; k < 4; k++)  /* not __builtin_convertvector: GCC has it only from 9 */
            at[q + k] = (uint8_t)where[k];
    }
}

/* Few channels (a small net's 4 to 16): with `c` a constant the compiler unrolls a window and
 * vectorizes across it; with `c` a variable, a 4-channel window ran as a scalar remainder loop
 * (32x4x28x28, one thread: 298 us against 26 us). */
#define SMALL_CHANNELS(CALL) \
    switch (c) { case 4: CALL(4); break; case 8: CALL(8); break; case 16: CALL(16); break; default: CALL(c); }

#define FORWARD(NAME, T, WINDOW)                                                                \
static inline __attribute__((always_inline)) void NAME##_row(const T *top, const T *bottom, T *out, \
                                                            uint8_t *pos, int64_t ow_count, int64_t c) { \
    for (int64_t ow = 0; ow < ow_count; ow++) {                                                 \
        const T *a = top + 2 * ow * c, *bb = bottom + 2 * ow * c;                               \
        WINDOW(a, a + c, bb, bb + c, out + ow * c, pos + ow * c, c);                            \
    }                                                                                           \
}                                                                                               \
static void NAME(const job_t *j) {                                                              \
    const int64_t c = j->c, row = j->w * c;                                                     \
    for (int64_t r = j->first; r < j->last; r++) {                                              \
        const int64_t b = r / j->oh, oh = r % j->oh;                                            \
        const T *top = (const T *)j->x + (b * j->h + 2 * oh) * row, *bottom = top + row;        \
        T *out = (T *)j->y + r * j->ow * c;                                                     \
        uint8_t *pos = j->idx + r * j->ow * c;                                                  \
        SMALL_CHANNELS(NAME##_CALL)                                                             \
    }                                                                                           \
}
#define forward_f32_CALL(C) \
    if ((C) == 12 || (C) == 24) forward_by4_row(top, bottom, out, pos, j->ow, C); \
    else forward_f32_row(top, bottom, out, pos, j->ow, C)
#define forward_bf16_CALL(C) forward_bf16_row(top, bottom, out, pos, j->ow, C)
static inline void forward_by4_row(const float *top, const float *bottom, float *out, uint8_t *pos,
                                   int64_t ow_count, int64_t c) {
    for (int64_t ow = 0; ow < ow_count; ow++) {
        const float *a = top + 2 * ow * c, *bb = bottom + 2 * ow * c;
        window_f32_by4(a, a + c, bb, bb + c, out + ow * c, pos + ow * c, c);
    }
}
FORWARD(forward_f32, float, window_f32)
FORWARD(forward_bf16, uint16_t, window_bf16)

/* One window column of the gradient: every input position gets its output's gradient or zero.
 * The gradient only moves values, so one routine per element width serves every dtype. */
#define SCATTER(NAME, T)                                                                        \
static inline void NAME(T *restrict a0, T *restrict a1, T *restrict b0, T *restrict b1,           \
                        const T *restrict g, const uint8_t *restrict at, int64_t c) {             \
    for (int64_t k = 0; k < c; k++) {                                                           \
        const T v = g[k];                                                                       \
        a0[k] = at[k] == 0 ? v : 0;                                                             \
        a1[k] = at[k] == 1 ? v : 0;                                                             \
        b0[k] = at[k] == 2 ? v : 0;                                                             \
        b1[k] = at[k] == 3 ? v : 0;                                                             \
    }                                                                                           \
}
SCATTER(scatter_32, uint32_t)
SCATTER(scatter_16, uint16_t)

/* Few channels: zero the two input rows, then write each gradient to its window's winner.
 * Selecting per window (above) left the compiler short windows to vectorize: 32x4x28x28, one
 * thread, 137 us against 15 us this way; 16 channels 241 against 75. From 32 channels on the
 * selecting loop is the faster (148 against 857 at 32x32x28x28). */
#define SPARSE_ROW(NAME, T)                                                                     \
static inline void NAME(T *top, T *bottom, const T *g, const uint8_t *pos, int64_t ow_count, int64_t c) { \
    memset(top, 0, 2 * ow_count * c * sizeof(T));                                               \
    memset(bottom, 0, 2 * ow_count * c * sizeof(T));                                            \
    for (int64_t ow = 0; ow < ow_count; ow++)                                                   \
        for (int64_t k = 0; k < c; k++) {                                                       \
            const uint8_t at = pos[ow * c + k];                                                 \
            ((at & 2) ? bottom : top)[(2 * ow + (at & 1)) * c + k] = g[ow * c + k];             \
        }                                                                                       \
}
SPARSE_ROW(sparse_row_32, uint32_t)
SPARSE_ROW(sparse_row_16, uint16_t)
#define SPARSE_CHANNELS 16

#define BACKWARD(NAME, T, SCATTER_ONE)                                                          \
static inline __attribute__((always_inline)) void NAME##_row(T *top, T *bottom, const T *g,     \
                                                            const uint8_t *pos, int64_t ow_count, int64_t c) { \
    for (int64_t ow = 0; ow < ow_count; ow++) {                                                 \
        T *a = top + 2 * ow * c, *bb = bottom + 2 * ow * c;                                     \
        SCATTER_ONE(a, a + c, bb, bb + c, g + ow * c, pos + ow * c, c);                         \
    }                                                                                           \
}                                                                                               \
static void NAME(const job_t *j) {                                                              \
    const int64_t c = j->c, row = j->w * c;                                                     \
    for (int64_t r = j->first; r < j->last; r++) {                                              \
        const int64_t b = r / j->oh, oh = r % j->oh;                                            \
        T *top = (T *)j->gx + (b * j->h + 2 * oh) * row, *bottom = top + row;                   \
        const T *g = (const T *)j->gy + r * j->ow * c;                                          \
        const uint8_t *pos = j->idx + r * j->ow * c;                                            \
        if (c <= SPARSE_CHANNELS) {                                                             \
            SMALL_CHANNELS(NAME##_SPARSE)                                                       \
        } else {                                                                                \
            SMALL_CHANNELS(NAME##_CALL)                                                         \
        }                                                                                       \
        if (j->w % 2) { /* the dropped last column */                                           \
            memset(top + 2 * j->ow * c, 0, c * sizeof(T));                                      \
            memset(bottom + 2 * j->ow * c, 0, c * sizeof(T));                                   \
        }                                                                                       \
        if (j->h % 2 && oh == j->oh - 1) /* the dropped last row */                             \
            memset(bottom + row, 0, row * sizeof(T));                                           \
    }                                                                                           \
}
#define backward_32_CALL(C) backward_32_row(top, bottom, g, pos, j->ow, C)
#define backward_16_CALL(C) backward_16_row(top, bottom, g, pos, j->ow, C)
#define backward_32_SPARSE(C) sparse_row_32(top, bottom, g, pos, j->ow, C)
#define backward_16_SPARSE(C) sparse_row_16(top, bottom, g, pos, j->ow, C)
BACKWARD(backward_32, uint32_t, scatter_32)
BACKWARD(backward_16, uint16_t, scatter_16)

/* Runs `work` over the output rows in `threads` parts. Compiled with -fopenmp and loaded after
 * torch, the OpenMP runtime is the one torch already loaded, so these are torch's own threads:
 * separate threads would contend with torch's spinning workers for the same cores. */
static void split(job_t base, int threads, void (*work)(const job_t *)) {
    const int64_t rows = base.n * base.oh;
    if (threads < 1) threads = 1;
    if (threads > rows) threads = rows > 0 ? (int)rows : 1;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; t++) {
        job_t job = base;
        job.first = rows * t / threads;
        job.last = rows * (t + 1) / threads;
        work(&job);
    }
}

static void forward(const job_t *j) {
    if (j->bytes == 4) forward_f32(j); else forward_bf16(j);
}

static void backward(const job_t *j) {
    if (j->bytes == 4) backward_32(j); else backward_16(j);
}

int cnnlab_maxpool2x2_forward(const void *x, void *y, uint8_t *idx, int64_t n, int64_t h, int64_t w,
                              int64_t c, int64_t bytes, int threads) {
    job_t job = {x, y, idx, NULL, NULL, n, h, w, c, h / 2, w / 2, bytes, 0, 0};
    split(job, threads, forward);
    return 0;
}

int cnnlab_maxpool2x2_backward(const void *gy, const uint8_t *idx, void *gx, int64_t n, int64_t h, int64_t w,
                               int64_t c, int64_t bytes, int threads) {
    job_t job = {NULL, NULL, (uint8_t *)idx, gy, gx, n, h, w, c, h / 2, w / 2, bytes, 0, 0};
    split(job, threads, backward);
    return 0;
}
