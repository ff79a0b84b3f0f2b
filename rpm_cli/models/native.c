/* rpm's CPU kernels for the background-skipping pass (sparse.py): its 3x3 convolutions (float32, NCHW, no
 * padding, stride 1) and the elementwise stages of fused.py. The encoder's convolutions have 3 -> 6 and 6 -> 3
 * channels, where oneDNN reaches ~5 GFLOP/s; these loops keep a row's outputs of every output channel in vector
 * registers instead (measured 2-6x faster on a training step's crops), and each elementwise stage is one or two
 * passes. native.py compiles this file once per machine and calls it through ctypes.
 * Exported functions return 0, or 1 when out of memory. Threads: OpenMP, whose runtime is torch's own (the same libgomp.so.1, already loaded), so these loops share
 * torch's thread pool and thread count instead of competing with its spinning workers. Each output is summed
 * in a fixed order that does not depend on the thread count, so a call gives the same floats every time. */
#include <stdlib.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));  /* a comparison's lanes: -1 or 0 */

static inline v8 load8(const float* p) { v8 v; memcpy(&v, p, sizeof v); return v; }
static inline void store8(float* p, v8 v) { memcpy(p, &v, sizeof v); }

#define MAX_OUT 8
#define CHUNK 16  /* crops per partial sum of the weight gradient */

/* y (O, H - 2, W - 2) = the valid 3x3 correlation of one crop x (C, H, W) with w (O, C, 3, 3); O <= MAX_OUT,
 * W - 2 >= 8.
 * Inlined per channel count, so that the accumulators of O outputs by 8 columns stay in registers. */
static inline __attribute__((always_inline)) void forward_crop(const float* xb, const float* w, float* yb,
                                                               const int C, const int O, int H, int W) {
  const int Ho = H - 2, Wo = W - 2;
  for (int i = 0; i < Ho; ++i) {
    /* With few outputs, 16 columns at a time (each weight broadcast once for two vectors; with more, the
     * accumulators would not fit in registers); then 8, the last 8 overlapping the previous ones where Wo is
     * not a multiple of 8. Each column's sum is the same in either loop and wherever its vector starts: the
     * same products added in the same order. */
    int j0 = 0;
    for (; O <= 4 && j0 + 16 <= Wo; j0 += 16) {
      v8 acc[MAX_OUT][2];
      for (int o = 0; o < O; ++o) acc[o][0] = acc[o][1] = (v8){0};
      for (int c = 0; c < C; ++c)
        for (int kh = 0; kh < 3; ++kh) {
          const float* row = xb + (c * H + i + kh) * W + j0;
          for (int kw = 0; kw < 3; ++kw) {
            v8 v0 = load8(row + kw), v1 = load8(row + kw + 8);
            for (int o = 0; o < O; ++o) {
              const float wk = w[((o * C + c) * 3 + kh) * 3 + kw];
              acc[o][0] += wk * v0;
              acc[o][1] += wk * v1;
            }
          }
        }
      for (int o = 0; o < O; ++o) {
        store8(yb + (o * Ho + i) * Wo + j0, acc[o][0]);
        store8(yb + (o * Ho + i) * Wo + j0 + 8, acc[o][1]);
      }
    }
    for (; j0 < Wo; j0 += 8) {
      const int j = j0 + 8 <= Wo ? j0 : Wo - 8;
      v8 acc[MAX_OUT];
      for (int o = 0; o < O; ++o) acc[o] = (v8){0};
      for (int c = 0; c < C; ++c)
        for (int kh = 0; kh < 3; ++kh) {
          const float* row = xb + (c * H + i + kh) * W + j;
          for (int kw = 0; kw < 3; ++kw) {
            v8 v = load8(row + kw);
            for (int o = 0; o < O; ++o) acc[o] += w[((o * C + c) * 3 + kh) * 3 + kw] * v;
          }
        }
      for (int o = 0; o < O; ++o) store8(yb + (o * Ho + i) * Wo + j, acc[o]);
    }
  }
}

/* y (n, O, H - 2, W - 2) from x (n, C, H, W): forward_crop on each crop, in parallel. */
int conv3x3_forward(const float* x, const float* w, float* y, long n, int C, int O, int H, int W) {
  const long in = (long)C * H * W, out = (long)O * (H - 2) * (W - 2);
#pragma omp parallel for schedule(static)
  for (long b = 0; b < n; ++b) {
    if (C == 3 && O == 6) forward_crop(x + b * in, w, y + b * out, 3, 6, H, W);
    else if (C == 6 && O == 3) forward_crop(x + b * in, w, y + b * out, 6, 3, H, W);
    else forward_crop(x + b * in, w, y + b * out, C, O, H, W);
  }
  return 0;
}

/* gw (O, C, 3, 3) = the sum over n, i, j of gy[n, o, i, j] * x[n, c, i + kh, j + kw], for gy (n, O, H - 2,
 * W - 2), over n crops; W - 2 >= 8. Each of the 8 lanes sums its own columns over the crops, then the lanes
 * are added. */
static void weight_grad_chunk(const float* gy, const float* x, float* gw, long n, int C, int O, int H, int W) {
  const int Ho = H - 2, Wo = W - 2, K = O * C * 9;
  v8 acc[K];
  for (int k = 0; k < K; ++k) acc[k] = (v8){0};
  for (long b = 0; b < n; ++b) {
    const float* xb = x + b * C * H * W;
    const float* gb = gy + b * O * Ho * Wo;
    for (int o = 0; o < O; ++o)
      for (int c = 0; c < C; ++c) {
        v8* a = acc + (o * C + c) * 9;
        for (int j0 = 0; j0 < Wo; j0 += 8) {
          /* the last 8 columns overlap the previous vector where Wo is not a multiple of 8: its lanes
           * already counted are masked out */
          const int j = j0 + 8 <= Wo ? j0 : Wo - 8;
          v8i keep;
          for (int l = 0; l < 8; ++l) keep[l] = j + l >= j0 ? -1 : 0;  /* bits, not a product: inf * 0 is NaN */
          v8 a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], a4 = a[4], a5 = a[5], a6 = a[6], a7 = a[7], a8 = a[8];
          for (int i = 0; i < Ho; ++i) {
            v8 g = (v8)((v8i)load8(gb + (o * Ho + i) * Wo + j) & keep);
            const float* r0 = xb + (c * H + i) * W + j;
            const float* r1 = r0 + W;
            const float* r2 = r1 + W;
            a0 += g * load8(r0); a1 += g * load8(r0 + 1); a2 += g * load8(r0 + 2);
            a3 += g * load8(r1); a4 += g * load8(r1 + 1); a5 += g * load8(r1 + 2);
            a6 += g * load8(r2); a7 += g * load8(r2 + 1); a8 += g * load8(r2 + 2);
          }
          a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3; a[4] = a4; a[5] = a5; a[6] = a6; a[7] = a7; a[8] = a8;
        }
      }
  }
  for (int k = 0; k < K; ++k) {
    float s = 0.f;
    for (int l = 0; l < 8; ++l) s += acc[k][l];
    gw[k] = s;
  }
}

/* The weights' gradient over all n crops: weight_grad_chunk's sums over CHUNK crops at a time, in parallel,
 * then added in chunk order. */
int conv3x3_weight_grad(const float* gy, const float* x, float* gw, long n, int C, int O, int H, int W) {
  const long K = (long)O * C * 9, chunks = (n + CHUNK - 1) / CHUNK;
  float* parts = calloc(chunks > 0 ? chunks * K : 1, sizeof(float));
  if (!parts) return 1;
#pragma omp parallel for schedule(static)
  for (long k = 0; k < chunks; ++k) {
    long first = k * CHUNK, count = n - first < CHUNK ? n - first : CHUNK;
    weight_grad_chunk(gy + first * O * (H - 2) * (W - 2), x + first * C * H * W, parts + k * K, count, C, O, H, W);
  }
  for (long i = 0; i < K; ++i) {
    float s = 0.f;
    for (long k = 0; k < chunks; ++k) s += parts[k * K + i];
    gw[i] = s;
  }
  free(parts);
  return 0;
}

/* ---- The elementwise stages of fused.py, over tensors (n, C, P): n crops, C channels, P pixels a crop.
 * Masks are (n, P): own (float, 1 or 0) and outside (float, 1 where a pixel lies outside the image). Sums per
 * channel are taken in double over CHUNK crops at a time, then added in chunk order. */

/* Two sums per channel of per-pixel terms, over n crops: `plane` gives a crop's two sums over one channel's P
 * pixels (8 float lanes, added in double); crops are added in double CHUNK at a time, then chunks in order. */
typedef struct {
  const float *y, *own, *shift, *grad_a, *a, *grad_cols, *grad_rows, *maps, *scale;
  float* grad_y;
  long P;
  int C, side;
} Planes;
typedef void (*PlaneSums)(const Planes* t, long b, int c, double out[2]);

static int channel_sums(PlaneSums plane, const Planes* t, long n, double* first, double* second) {
  const int C = t->C;
  const long chunks = (n + CHUNK - 1) / CHUNK;
  double* parts = calloc(chunks > 0 ? chunks * C * 2 : 1, sizeof(double));
  if (!parts) return 1;
#pragma omp parallel for schedule(static)
  for (long k = 0; k < chunks; ++k)
    for (long b = k * CHUNK; b < n && b < (k + 1) * CHUNK; ++b)
      for (int c = 0; c < C; ++c) {
        double out[2];
        plane(t, b, c, out);
        parts[(k * C + c) * 2] += out[0];
        parts[(k * C + c) * 2 + 1] += out[1];
      }
  for (int c = 0; c < C; ++c) {
    double s0 = 0.0, s1 = 0.0;
    for (long k = 0; k < chunks; ++k) { s0 += parts[(k * C + c) * 2]; s1 += parts[(k * C + c) * 2 + 1]; }
    first[c] = s0;
    second[c] = s1;
  }
  free(parts);
  return 0;
}

static double lanes(v8 v) {
  double s = 0.0;
  for (int l = 0; l < 8; ++l) s += v[l];
  return s;
}

/* d = own * (y - shift): the sums of d and d^2. */
static void moments_plane(const Planes* t, long b, int c, double out[2]) {
  const long P = t->P;
  const float* y = t->y + (b * t->C + c) * P;
  const float* own = t->own + b * P;
  const float shift = t->shift[c];
  v8 s = {0}, q = {0};
  long p = 0;
  for (; p + 8 <= P; p += 8) {
    v8 d = load8(own + p) * (load8(y + p) - shift);
    s += d;
    q += d * d;
  }
  double st = lanes(s), qt = lanes(q);
  for (; p < P; ++p) { double d = own[p] * (y[p] - shift); st += d; qt += d * d; }
  out[0] = st;
  out[1] = qt;
}

/* g = grad_a where a > 0, else 0: the sums of g and g * y. */
static void relu_grad_plane(const Planes* t, long b, int c, double out[2]) {
  const long at = (b * t->C + c) * t->P, P = t->P;
  const float *g = t->grad_a + at, *a = t->a + at, *y = t->y + at;
  v8 s = {0}, q = {0};
  const v8 zero = {0};
  long p = 0;
  for (; p + 8 <= P; p += 8) {
    v8 gv = load8(g + p);
    gv = (v8)((v8i)gv & (load8(a + p) > zero));  /* 0 where a <= 0 */
    s += gv;
    q += gv * load8(y + p);
  }
  double st = lanes(s), qt = lanes(q);
  for (; p < P; ++p) if (a[p] > 0.f) { st += g[p]; qt += (double)g[p] * y[p]; }
  out[0] = st;
  out[1] = qt;
}

/* total[c] = the sum of own * (y - shift[c]), squares[c] = that of its squares. */
int masked_moments(const float* y, const float* own, const float* shift, double* total, double* squares, long n,
                    int C, long P) {
  Planes t = {.y = y, .own = own, .shift = shift, .P = P, .C = C};
  return channel_sums(moments_plane, &t, n, total, squares);
}

/* grad_y = own * (2 * grad_squares[c] * (y - shift[c]) + grad_total[c]): masked_moments' backward. */
int masked_moments_grad(const float* y, const float* own, const float* shift, const float* grad_total,
                         const float* grad_squares, float* grad_y, long n, int C, long P) {
#pragma omp parallel for schedule(static)
  for (long b = 0; b < n; ++b)
    for (int c = 0; c < C; ++c) {
      const float* yp = y + (b * C + c) * P;
      const float* op = own + b * P;
      float* gp = grad_y + (b * C + c) * P;
      const float two_g = 2.f * grad_squares[c], g = grad_total[c], s = shift[c];
      long p = 0;
      for (; p + 8 <= P; p += 8) store8(gp + p, load8(op + p) * (two_g * (load8(yp + p) - s) + g));
      for (; p < P; ++p) gp[p] = op[p] * (two_g * (yp[p] - s) + g);
    }
  return 0;
}

/* a = relu(y * scale[c] + shift[c]), and 0 where outside (1 or 0) is 1. */
int scale_shift_relu(const float* y, const float* scale, const float* shift, const float* outside,
                      float* a, long n, int C, long P) {
#pragma omp parallel for schedule(static)
  for (long b = 0; b < n; ++b)
    for (int c = 0; c < C; ++c) {
      const float* yp = y + (b * C + c) * P;
      const float* out = outside + b * P;
      float* ap = a + (b * C + c) * P;
      const float k = scale[c], s = shift[c];
      const v8 zero = {0};
      long p = 0;
      for (; p + 8 <= P; p += 8) {
        v8 v = load8(yp + p) * k + s;
        v8i keep = (load8(out + p) == zero) & ~(v <= zero);  /* NaN stays NaN, as in torch's relu */
        store8(ap + p, (v8)((v8i)v & keep));
      }
      for (; p < P; ++p) {
        float v = yp[p] * k + s;
        ap[p] = (out[p] != 0.f || v <= 0.f) ? 0.f : v;
      }
    }
  return 0;
}

/* With g = grad_a where a > 0 (else 0): sum_g[c] = the sum of g, sum_gy[c] = that of g * y. */
int relu_grad_sums(const float* grad_a, const float* a, const float* y, double* sum_g, double* sum_gy, long n,
                    int C, long P) {
  Planes t = {.y = y, .grad_a = grad_a, .a = a, .P = P, .C = C};
  return channel_sums(relu_grad_plane, &t, n, sum_g, sum_gy);
}

/* grad_y = own * (y * k_y[c] + k_own[c]) + g * scale[c], g as in relu_grad_sums: BatchNorm + ReLU's backward. */
int batchnorm_relu_grad(const float* grad_a, const float* a, const float* y, const float* own, const float* k_y,
                         const float* k_own, const float* scale, float* grad_y, long n, int C, long P) {
#pragma omp parallel for schedule(static)
  for (long b = 0; b < n; ++b)
    for (int c = 0; c < C; ++c) {
      const long at = (b * C + c) * P;
      const float* op = own + b * P;
      const float ky = k_y[c], ko = k_own[c], sc = scale[c];
      const v8 zero = {0};
      long p = 0;
      for (; p + 8 <= P; p += 8) {
        v8 g = (v8)((v8i)load8(grad_a + at + p) & (load8(a + at + p) > zero));
        store8(grad_y + at + p, load8(op + p) * (load8(y + at + p) * ky + ko) + g * sc);
      }
      for (; p < P; ++p) {
        float g = a[at + p] > 0.f ? grad_a[at + p] : 0.f;
        grad_y[at + p] = op[p] * (y[at + p] * ky + ko) + g * sc;
      }
    }
  return 0;
}

/* out = y * scale[c] + shift[c]. */
int scale_shift(const float* y, const float* scale, const float* shift, float* out, long n, int C, long P) {
#pragma omp parallel for schedule(static)
  for (long b = 0; b < n; ++b)
    for (int c = 0; c < C; ++c) {
      const float* yp = y + (b * C + c) * P;
      float* op = out + (b * C + c) * P;
      const float k = scale[c], s = shift[c];
      for (long p = 0; p < P; ++p) op[p] = yp[p] * k + s;
    }
  return 0;
}

/* d = own * (maps - background) over crops (n, C, side, side): cols (n, C, side) its sums over rows, rows
 * (n, C, side) its sums over columns, each added in index order. The background holds one value per channel and
 * border class, values (C, 3, 3): pixel (i, j) of crop b reads values[c][row_class[b, i]][col_class[b, j]]. */
int difference_sums(const float* maps, const float* values, const unsigned char* row_class,
                     const unsigned char* col_class, const float* own, float* cols, float* rows, long n, int C,
                     int side) {
  const long P = (long)side * side;
#pragma omp parallel for schedule(static)
  for (long b = 0; b < n; ++b)
    for (int c = 0; c < C; ++c) {
      const long at = (b * C + c) * P;
      const float* op = own + b * P;
      const unsigned char *rc = row_class + b * side, *cc = col_class + b * side;
      float* col = cols + (b * C + c) * side;
      float* row = rows + (b * C + c) * side;
      float background[3 * side];  /* the crop's background row for each row class */
      for (int r = 0; r < 3; ++r)
        for (int j = 0; j < side; ++j) background[r * side + j] = values[c * 9 + r * 3 + cc[j]];
      for (int j = 0; j < side; ++j) col[j] = 0.f;
      for (int i = 0; i < side; ++i) {
        const float* bg = background + rc[i] * side;
        float r = 0.f;
        for (int j = 0; j < side; ++j) {
          float d = op[i * side + j] * (maps[at + i * side + j] - bg[j]);
          col[j] += d;
          r += d;
        }
        row[i] = r;
      }
    }
  return 0;
}

/* One plane of sigmoid_difference_grad: writes grad_y, sums grad_pre and grad_pre * y. */
static void sigmoid_grad_plane(const Planes* t, long b, int c, double out[2]) {
  const int side = t->side;
  const long P = t->P, at = (b * t->C + c) * P;
  const float* gc = t->grad_cols + (b * t->C + c) * side;
  const float* gr = t->grad_rows + (b * t->C + c) * side;
  const float* own = t->own + b * P;
  const float scale = t->scale[c];
  double s = 0.0, q = 0.0;
  for (int i = 0; i < side; ++i) {
    v8 ls = {0}, lq = {0};
    int j = 0;
    for (; j + 8 <= side; j += 8) {
      const long px = at + i * side + j;
      v8 grad_d = load8(own + i * side + j) * (load8(gc + j) + gr[i]);
      v8 m = load8(t->maps + px);
      v8 grad_pre = grad_d * m * (1.f - m);
      store8(t->grad_y + px, grad_pre * scale);
      ls += grad_pre;
      lq += grad_pre * load8(t->y + px);
    }
    s += lanes(ls);
    q += lanes(lq);
    for (; j < side; ++j) {
      const long px = at + i * side + j;
      float grad_d = own[i * side + j] * (gc[j] + gr[i]);
      float m = t->maps[px];
      float grad_pre = grad_d * m * (1.f - m);
      t->grad_y[px] = grad_pre * scale;
      s += grad_pre;
      q += (double)grad_pre * t->y[px];
    }
  }
  out[0] = s;
  out[1] = q;
}

/* The backward of difference_sums(sigmoid(y * scale + shift), ...) as far as y: with grad_d = own *
 * (grad_cols[j] + grad_rows[i]) and grad_pre = grad_d * maps * (1 - maps): grad_y = grad_pre * scale[c],
 * sum_pre[c] = the sum of grad_pre, sum_pre_y[c] = that of grad_pre * y. (The background's gradient, -grad_d
 * summed per class, is fused.py's: a product of two small matrices.) */
int sigmoid_difference_grad(const float* grad_cols, const float* grad_rows, const float* maps, const float* y,
                             const float* own, const float* scale, float* grad_y, double* sum_pre,
                             double* sum_pre_y, long n, int C, int side) {
  Planes t = {.grad_cols = grad_cols, .grad_rows = grad_rows, .maps = maps, .y = y, .own = own, .scale = scale,
              .grad_y = grad_y, .P = (long)side * side, .C = C, .side = side};
  return channel_sums(sigmoid_grad_plane, &t, n, sum_pre, sum_pre_y);
}
