/* SPDX-License-Identifier: MIT */
/* qb-quantize-device.cl — plain rounding to Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
 * Q2_K…Q6_K, IQ4_NL, IQ4_XS, NF4, MXFP4, FP8 and every INTn, and the error
 * metrics and histograms, on an OpenCL device, with the CPU's bytes.  The
 * format table (core/formats/qb-format.c) names each format's kernel.
 *
 * With an importance matrix: Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K
 * have kernels of their own (*_imatrix: llama.cpp's imatrix paths);
 * Q8_0 ignores importance on the CPU, so its plain kernel serves.
 *
 * The same IEEE operations as core/ggml/qb-ggml-quants-legacy.c,
 * qb-ggml-quants-k.c and qb-ggml-quants-iq4.c, core/formats/qb-format-int.c,
 * qb-format-nf.c, qb-format-mx.c, qb-format-fp8.c and
 * core/quantize/qb-measure.c, in the same order: no contraction (the
 * pragma, and the host builds without -cl-mad-enable), division correctly
 * rounded (-cl-fp32-correctly-rounded-divide-sqrt; the host requires a
 * device that supports it and denormals).  Float to int conversions are
 * written out to behave as x86's truncating conversion, which the CPU
 * kernels rely on for blocks so small that 1/d overflows.  Blocks holding
 * NaN or infinities raise a flag instead: the host then quantizes the
 * tensor on the CPU, whose kernels define what happens to them.
 */
#pragma OPENCL FP_CONTRACT OFF

#ifdef QB_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double acc_t;
#else
typedef float acc_t;
#endif

#define QK 32

/* The arguments of every importance kernel: the plain kernel's, then a
 * row's n_cols importance weights and each row's mean square (the legacy
 * formats' σ²; the K-quants take σ² from their super-block). */
#define IMATRIX_ARGS                                                          \
  __global const float *x, __global uchar *q, __global float *y,              \
  const long nb, const int want_y, __global int *nonfinite,                   \
  __global const float *imp, const int n_cols, __global const float *row_sigma2


/* cvttps2dq: truncation toward zero; NaN and values beyond int: INT_MIN. */
static int
cvtt (float v)
{
  return (v >= -2147483648.0f && v < 2147483648.0f) ? convert_int_rtz (v) : INT_MIN;
}

/* roundf (v) as lanes_round_half_away: INT_MIN stays INT_MIN. */
static int
round_half_away (float v)
{
  int t = cvtt (v);
  float f = v - convert_float (t);

  if (t == INT_MIN)
    return t;
  if (f >= 0.5f)
    t += 1;
  if (f <= -0.5f)
    t -= 1;
  return t;
}

/* qb_fp32_to_fp16: round to nearest even, NaN quiet, overflow infinity. */
static uint
f32_to_f16 (float f)
{
  uint x = as_uint (f);
  uint sign = (x >> 16) & 0x8000u;
  uint a = x & 0x7fffffffu;

  if (a > 0x7f800000u)
    return sign | 0x7e00u;
  if (a >= 0x477ff000u)
    return sign | 0x7c00u;
  if (a < 0x38800000u)
    return sign | ((as_uint (as_float (a) + 0.5f) - 0x3f000000u) & 0xffffu);
  a += 0xc8000fffu + ((a >> 13) & 1u);
  return sign | ((a >> 13) & 0xffffu);
}

/* qb_fp16_to_fp32. */
static float
f16_to_f32 (uint h)
{
  uint sign = (h & 0x8000u) << 16;
  uint e = (h >> 10) & 0x1fu;
  uint m = h & 0x3ffu;

  if (e == 0x1fu)
    return as_float (sign | 0x7f800000u | (m << 13));
  if (e == 0)
    {
      float v = convert_float (m) * (1.0f / 16777216.0f);
      return sign ? -v : v;
    }
  return as_float (sign | ((e + 112u) << 23) | (m << 13));
}

static void
put_f16 (__global uchar *p, uint h)
{
  p[0] = (uchar) (h & 0xffu);
  p[1] = (uchar) ((h >> 8) & 0xffu);
}

static float
max_f (float a, float b)
{
  return a > b ? a : b;
}

static float
min_f (float a, float b)
{
  return a < b ? a : b;
}

/* Loads a block; FALSE (and the flag raised) when it holds NaN or inf. */
static bool
load_block (__global const float *x, float *v, __global int *nonfinite)
{
  bool finite = true;

  for (int j = 0; j < QK; j++)
    {
      v[j] = x[j];
      finite = finite && isfinite (v[j]);
    }
  if (!finite)
    atomic_or (nonfinite, 1);
  return finite;
}

static float
inverse (float d)
{
  return d != 0.0f ? 1.0f / d : 0.0f;
}

/* The value of largest magnitude, the first on ties; 0 for a zero block. */
static float
signed_max (const float *v)
{
  float amax = 0.0f;

  for (int j = 0; j < QK; j++)
    amax = max_f (amax, fabs (v[j]));
  if (amax == 0.0f)
    return 0.0f;
  for (int j = 0; j < QK; j++)
    if (fabs (v[j]) == amax)
      return v[j];
  return 0.0f;
}

static float
first_zero (const float *v)
{
  for (int j = 0; j < QK; j++)
    if (v[j] == 0.0f)
      return v[j];
  return 0.0f;
}

/* Truncation of v cut at top, as lanes_code. */
static int
code (float v, int top)
{
  int c = cvtt (v);
  return c > top ? top : c;
}

/* Codes c (32 of them) two to a byte: value j low, j + 16 high. */
static void
pack_4bit (const int *c, __global uchar *qs)
{
  for (int j = 0; j < 16; j++)
    qs[j] = (uchar) (((uint) c[j] | ((uint) c[j + 16] << 4)) & 0xffu);
}

static void
pack_5bit (const int *c, __global uchar *qs, __global uchar *qh)
{
  int low[QK];
  uint h = 0;

  for (int j = 0; j < QK; j++)
    {
      h |= (uint) ((c[j] >> 4) & 1) << j;
      low[j] = c[j] & 0x0f;
    }
  pack_4bit (low, qs);
  for (int k = 0; k < 4; k++)
    qh[k] = (uchar) ((h >> (8 * k)) & 0xffu);
}

/* ---- quantize (and dequantize) one block per work-item ------------------
 *
 * Arguments: x (blocks of 32 floats), q (the blocks' bytes), y (the
 * dequantized values, or unused when want_y is 0), the number of blocks,
 * and the non-finite flag. */

__kernel void
quantize_q8_0 (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  float v[QK], amax = 0.0f, d, id, dd;
  __global uchar *b;

  if (i >= nb || !load_block (x + i * QK, v, nonfinite))
    return;
  b = q + i * 34;
  for (int j = 0; j < QK; j++)
    amax = max_f (amax, fabs (v[j]));
  d = amax / 127.0f;
  id = inverse (d);
  put_f16 (b, f32_to_f16 (d));
  dd = f16_to_f32 (f32_to_f16 (d));
  for (int j = 0; j < QK; j++)
    {
      char c = (char) (round_half_away (v[j] * id) & 0xff);
      b[2 + j] = (uchar) c;
      if (want_y)
        y[i * QK + j] = convert_float ((int) c) * dd;
    }
}

/* Q4_0 and Q5_0: d = max / -mid, codes trunc (x/d + mid + 0.5) cut at
 * 2 mid - 1; returns the f16 d. */
static uint
symmetric (const float *v, int mid, int *c)
{
  float d = signed_max (v) / convert_float (-mid);
  float id = inverse (d);

  for (int j = 0; j < QK; j++)
    c[j] = code (v[j] * id + (convert_float (mid) + 0.5f), 2 * mid - 1);
  return f32_to_f16 (d);
}

/* Q4_1 and Q5_1: d = (max - min) / nmax, m = min. */
static uint2
asymmetric (const float *v, int nmax, int *c)
{
  float mn = v[0], mx = v[0], d, id;

  for (int j = 1; j < QK; j++)
    {
      mn = min_f (mn, v[j]);
      mx = max_f (mx, v[j]);
    }
  if (mn == 0.0f)
    mn = first_zero (v);
  if (mx == 0.0f)
    mx = first_zero (v);
  d = (mx - mn) / convert_float (nmax);
  id = inverse (d);
  for (int j = 0; j < QK; j++)
    c[j] = code ((v[j] - mn) * id + 0.5f, nmax);
  return (uint2) (f32_to_f16 (d), f32_to_f16 (mn));
}

/* The dequantized values of a Q4_0, Q5_0, Q4_1 or Q5_1 block b into y. */
static void
dequant_q4_0 (__global const uchar *b, __global float *y)
{
  float d = f16_to_f32 ((uint) b[0] | (uint) b[1] << 8);

  for (int j = 0; j < 16; j++)
    {
      y[j] = convert_float ((int) (b[2 + j] & 0x0f) - 8) * d;
      y[j + 16] = convert_float ((int) (b[2 + j] >> 4) - 8) * d;
    }
}

static void
dequant_q5_0 (__global const uchar *b, __global float *y)
{
  float d = f16_to_f32 ((uint) b[0] | (uint) b[1] << 8);
  uint qh = (uint) b[2] | (uint) b[3] << 8 | (uint) b[4] << 16 | (uint) b[5] << 24;

  for (int j = 0; j < 16; j++)
    {
      int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
      y[j] = convert_float ((((int) b[6 + j] & 0x0f) | h0) - 16) * d;
      y[j + 16] = convert_float ((((int) b[6 + j] >> 4) | h1) - 16) * d;
    }
}

static void
dequant_q4_1 (__global const uchar *b, __global float *y)
{
  float d = f16_to_f32 ((uint) b[0] | (uint) b[1] << 8);
  float m = f16_to_f32 ((uint) b[2] | (uint) b[3] << 8);

  for (int j = 0; j < 16; j++)
    {
      y[j] = convert_float ((int) (b[4 + j] & 0x0f)) * d + m;
      y[j + 16] = convert_float ((int) (b[4 + j] >> 4)) * d + m;
    }
}

static void
dequant_q5_1 (__global const uchar *b, __global float *y)
{
  float d = f16_to_f32 ((uint) b[0] | (uint) b[1] << 8);
  float m = f16_to_f32 ((uint) b[2] | (uint) b[3] << 8);
  uint qh = (uint) b[4] | (uint) b[5] << 8 | (uint) b[6] << 16 | (uint) b[7] << 24;

  for (int j = 0; j < 16; j++)
    {
      int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
      y[j] = convert_float (((int) b[8 + j] & 0x0f) | h0) * d + m;
      y[j + 16] = convert_float (((int) b[8 + j] >> 4) | h1) * d + m;
    }
}

__kernel void
quantize_q4_0 (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  float v[QK];
  int c[QK];
  uint h;
  __global uchar *b;

  if (i >= nb || !load_block (x + i * QK, v, nonfinite))
    return;
  b = q + i * 18;
  h = symmetric (v, 8, c);
  put_f16 (b, h);
  pack_4bit (c, b + 2);
  if (want_y)
    dequant_q4_0 (b, y + i * QK);
}

__kernel void
quantize_q5_0 (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  float v[QK];
  int c[QK];
  uint h;
  __global uchar *b;

  if (i >= nb || !load_block (x + i * QK, v, nonfinite))
    return;
  b = q + i * 22;
  h = symmetric (v, 16, c);
  put_f16 (b, h);
  pack_5bit (c, b + 6, b + 2);
  if (want_y)
    dequant_q5_0 (b, y + i * QK);
}

__kernel void
quantize_q4_1 (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  float v[QK];
  int c[QK];
  uint2 h;
  __global uchar *b;

  if (i >= nb || !load_block (x + i * QK, v, nonfinite))
    return;
  b = q + i * 20;
  h = asymmetric (v, 15, c);
  put_f16 (b, h.x);
  put_f16 (b + 2, h.y);
  pack_4bit (c, b + 4);
  if (want_y)
    dequant_q4_1 (b, y + i * QK);
}

__kernel void
quantize_q5_1 (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  float v[QK];
  int c[QK];
  uint2 h;
  __global uchar *b;

  if (i >= nb || !load_block (x + i * QK, v, nonfinite))
    return;
  b = q + i * 24;
  h = asymmetric (v, 31, c);
  put_f16 (b, h.x);
  put_f16 (b + 2, h.y);
  pack_5bit (c, b + 8, b + 4);
  if (want_y)
    dequant_q5_1 (b, y + i * QK);
}

/* ---- INTn: one group (INTn_Gg) or one row (INTn_CH, INTn_T) per work-item ---
 *
 * As qb-format-int.c's plain rounding (a row is one group with its header;
 * INTn_T rows have no header and the tensor's step): symmetric d = f16 (absmax /
 * (2^(n-1) - 1)), z = 2^(n-1); asymmetric over [min (x, 0), max (x, 0)],
 * d = f16 ((hi - lo) / (2^n - 1)), z = round (-lo / d).  Codes
 * clamp (nearest (clamp (x / d)) + z, 0, 2^n - 1), packed LSB first after
 * the f16 d and the u8 z. */

/* qb_nearest_int: the float adder rounds to nearest even. */
static int
nearest_int (float f)
{
  float v = f + 12582912.0f;
  return (int) (as_uint (v) & 0x007fffffu) - 0x00400000;
}

static int
clampi (int v, int lo, int hi)
{
  return v < lo ? lo : v > hi ? hi : v;
}

static float
round_f16 (float v)
{
  return f16_to_f32 (f32_to_f16 (v));
}

__kernel void
quantize_int (__global const float *x, __global uchar *q, __global float *y,
              const long n_groups, const int want_y, __global int *nonfinite,
              const int group, const int bits, const int asym, const int block_bytes,
              const int tensor_scope, const float tensor_d)
{
  long i = get_global_id (0);
  __global const float *xg;
  __global uchar *b, *out;
  int top = (1 << bits) - 1, mid = 1 << (bits - 1), z = mid;
  int hdr = tensor_scope ? 0 : asym ? 3 : 2;
  float d, id, lo_c, hi_c;
  bool finite = true;
  ulong acc = 0;
  int fill = 0;

  if (i >= n_groups)
    return;
  xg = x + i * group;
  b = q + i * block_bytes;
  if (tensor_scope)
    {
      /* INTn_T: the tensor's step, computed by the host as the CPU does. */
      for (int j = 0; j < group; j++)
        finite = finite && isfinite (xg[j]);
      d = tensor_d;
    }
  else if (!asym)
    {
      float amax = 0.0f;
      for (int j = 0; j < group; j++)
        {
          float a = fabs (xg[j]);
          finite = finite && isfinite (xg[j]);
          amax = a > amax ? a : amax;
        }
      d = round_f16 (amax / convert_float (mid - 1 > 0 ? mid - 1 : 1));
    }
  else
    {
      float mn = 0.0f, mx = 0.0f;
      for (int j = 0; j < group; j++)
        {
          float v = xg[j];
          finite = finite && isfinite (v);
          mn = v < mn ? v : mn;
          mx = v > mx ? v : mx;
        }
      d = round_f16 ((mx - mn) / convert_float (top));
      z = d != 0.0f ? clampi (nearest_int (-mn / d), 0, top) : 0;
    }
  if (!finite)
    {
      atomic_or (nonfinite, 1);
      return;
    }
  if (!tensor_scope)
    put_f16 (b, f32_to_f16 (d));
  if (asym)
    b[2] = (uchar) z;
  id = d != 0.0f ? 1.0f / d : 0.0f;
  lo_c = convert_float (-z - 1);
  hi_c = convert_float (top - z + 1);
  out = b + hdr;
  for (int j = 0; j < group; j++)
    {
      float v = xg[j] * id;
      int c;
      v = v < lo_c ? lo_c : v > hi_c ? hi_c : v;
      c = clampi (nearest_int (v) + z, 0, top);
      if (want_y)
        y[i * group + j] = d * convert_float (c - z);
      acc |= (ulong) c << fill;
      fill += bits;
      while (fill >= 8)
        {
          *out++ = (uchar) (acc & 0xffu);
          acc >>= 8;
          fill -= 8;
        }
    }
  if (fill > 0)   /* a whole row (INTn_CH, INTn_T): padded to a byte */
    *out = (uchar) (acc & 0xffu);
}

/* ---- K-quants: Q4_K, Q5_K, Q6_K, one super-block of 256 per work-item -----
 *
 * As core/ggml/qb-ggml-quants-k.c without importance: each group is
 * fitted by ggml's scale search (make_qkx2_quants for the 8 groups of 32
 * of Q4_K and Q5_K, make_qx_quants for the 16 groups of 16 of Q6_K),
 * the candidates tried in the same order with the same strict
 * comparisons; then the group scales are quantized against the
 * super-block's and the values requantized against the scales as
 * stored.  The CPU runs eight groups in vector lanes and selects where
 * ggml branches; a lane is this scalar code operation for operation. */

#define QK_K 256

/* nearest_int where a NaN may come in: x86 makes every invalid operation's
 * NaN 0xffc00000, which the CPU's trick turns into 0; other devices make
 * other NaNs, so the CPU's answer is given outright. */
static int
nearest_int_nan (float f)
{
  return isnan (f) ? 0 : nearest_int (f);
}

/* make_qkx2_quants without importance (the weights given), one group of
 * n, on squared or (use_mad, Q2_K) absolute differences: codes in L,
 * returns the scale, *the_min the (negated) minimum. */
static float
qkx_quants (const float *x, const float *w, int n, int nmax, float rmin, float rdelta,
            int nstep, bool use_mad, uchar *L, float *the_min)
{
  float min = x[0], max = x[0], sum_w = w[0], sum_x = w[0] * x[0];
  float scale, best_mad, best_iscale, best_origin;

  for (int i = 1; i < n; i++)
    {
      min = x[i] < min ? x[i] : min;
      max = x[i] > max ? x[i] : max;
      sum_w += w[i];
      sum_x += w[i] * x[i];
    }
  if (min > 0.0f)
    min = 0.0f;
  if (max == min)
    {
      for (int i = 0; i < n; i++)
        L[i] = 0;
      *the_min = -min;
      return 0.0f;
    }

  best_iscale = convert_float (nmax) / (max - min);
  best_origin = min;
  scale = 1.0f / best_iscale;
  best_mad = 0.0f;
  for (int i = 0; i < n; i++)
    {
      float l = convert_float (clampi (nearest_int_nan (best_iscale * (x[i] - min)), 0, nmax));
      float diff = scale * l + min - x[i];
      best_mad += w[i] * (use_mad ? fabs (diff) : diff * diff);
    }

  for (int is = 0; is <= nstep; is++)
    {
      float iscale = (rmin + rdelta * convert_float (is) + convert_float (nmax)) / (max - min);
      float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f, D, this_scale, this_min, mad = 0.0f;

      for (int i = 0; i < n; i++)
        {
          float l = convert_float (clampi (nearest_int_nan (iscale * (x[i] - min)), 0, nmax));
          float wl = w[i] * l;
          sum_l += wl;
          sum_l2 += wl * l;
          sum_xl += wl * x[i];
        }
      D = sum_w * sum_l2 - sum_l * sum_l;
      this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0.0f)
        {
          this_scale = sum_xl / sum_l2;
          this_min = 0.0f;
        }
      for (int i = 0; i < n; i++)
        {
          float l = convert_float (clampi (nearest_int_nan (iscale * (x[i] - min)), 0, nmax));
          float diff = this_scale * l + this_min - x[i];
          mad += w[i] * (use_mad ? fabs (diff) : diff * diff);
        }
      if (D > 0.0f && mad < best_mad)
        {
          best_mad = mad;
          best_iscale = iscale;
          best_origin = min;
          scale = this_scale;
          min = this_min;
        }
    }
  for (int i = 0; i < n; i++)
    L[i] = (uchar) clampi (nearest_int_nan (best_iscale * (x[i] - best_origin)), 0, nmax);
  *the_min = -min;
  return scale;
}

static void
put_scale_min_k4 (int j, uint ls, uint lm, __global uchar *q)
{
  if (j < 4)
    {
      q[j] = (uchar) ls;
      q[j + 4] = (uchar) lm;
    }
  else
    {
      q[j + 4] = (uchar) ((ls & 0xfu) | ((lm & 0xfu) << 4));
      q[j - 4] |= (uchar) ((ls >> 4) << 6);
      q[j] |= (uchar) ((lm >> 4) << 6);
    }
}

static void
get_scale_min_k4 (int j, __global const uchar *q, uint *d, uint *m)
{
  if (j < 4)
    {
      *d = q[j] & 63u;
      *m = q[j + 4] & 63u;
    }
  else
    {
      *d = (q[j + 4] & 0xfu) | ((uint) (q[j - 4] >> 6) << 4);
      *m = (uint) (q[j + 4] >> 4) | ((uint) (q[j] >> 6) << 4);
    }
}

static uint
get_f16 (__global const uchar *p)
{
  return (uint) p[0] | (uint) p[1] << 8;
}

/* make_qp_quants: non-negative codes 0..nmax for n (8) group scales or
 * minimums x with weights w; returns their scale.  iscale = (nmax + 0.1 k)
 * / max for k = -4..4, then up to five rounds of single-code moves. */
static float
qp_quants (int n, int nmax, const float *x, uchar *L, const float *w)
{
  float max = 0.0f, iscale, scale, best_mse = 0.0f, sumlx = 0.0f, suml2 = 0.0f;

  for (int i = 0; i < n; i++)
    max = max > x[i] ? max : x[i];
  if (max == 0.0f)
    {
      for (int i = 0; i < n; i++)
        L[i] = 0;
      return 0.0f;
    }
  iscale = convert_float (nmax) / max;
  for (int i = 0; i < n; i++)
    L[i] = (uchar) (nearest_int_nan (iscale * x[i]) & 0xff);
  scale = 1.0f / iscale;
  for (int i = 0; i < n; i++)
    {
      float diff = x[i] - scale * convert_float (L[i]);
      best_mse += w[i] * diff * diff;
    }
  for (int is = -4; is <= 4; is++)
    {
      float iscale_is, scale_is, mse = 0.0f;
      if (is == 0)
        continue;
      iscale_is = (0.1f * convert_float (is) + convert_float (nmax)) / max;
      scale_is = 1.0f / iscale_is;
      for (int i = 0; i < n; i++)
        {
          int l = min (nmax, nearest_int_nan (iscale_is * x[i]));
          float diff = x[i] - scale_is * convert_float (l);
          mse += w[i] * diff * diff;
        }
      if (mse < best_mse)
        {
          best_mse = mse;
          iscale = iscale_is;
        }
    }
  for (int i = 0; i < n; i++)
    {
      int l = min (nmax, nearest_int_nan (iscale * x[i]));
      L[i] = (uchar) (l & 0xff);
      sumlx += w[i] * x[i] * convert_float (l);
      suml2 += w[i] * convert_float (l) * convert_float (l);
    }
  for (int itry = 0; itry < 5; itry++)
    {
      int n_changed = 0;
      for (int i = 0; i < n; i++)
        {
          float li = convert_float (L[i]);
          float slx = sumlx - w[i] * x[i] * li;
          float sl2 = suml2 - w[i] * li * li;
          if (slx > 0.0f && sl2 > 0.0f)
            {
              int new_l = min (nmax, nearest_int_nan (x[i] * sl2 / slx));
              if (new_l != (int) L[i])
                {
                  slx += w[i] * x[i] * convert_float (new_l);
                  sl2 += w[i] * convert_float (new_l) * convert_float (new_l);
                  if (slx * slx * suml2 > sumlx * sumlx * sl2)
                    {
                      L[i] = (uchar) (new_l & 0xff);
                      sumlx = slx;
                      suml2 = sl2;
                      n_changed++;
                    }
                }
            }
        }
      if (n_changed == 0)
        break;
    }
  return sumlx / suml2;
}

/* Q4_K (nmax 15) and Q5_K (nmax 31): d, dmin, 12 bytes of scales at b;
 * the codes in L.  With importance qw (the super-block's 256 weights):
 * weights qw · sqrt (σ² + x²), σ² twice the super-block's mean square,
 * make_qkx3_quants per group, scales and minimums fitted by qp_quants. */
static void
k4_superblock (__global const float *xb, __global const float *qw, int nmax, __global uchar *b,
               uchar *L)
{
  float scales[8], mins[8], sw[8], max_scale = 0.0f, max_min = 0.0f, inv_scale, inv_min, d_all, m_all;
  float sigma2 = 0.0f;
  __global uchar *packed = b + 4;

  if (qw)
    {
      for (int i = 0; i < QK_K; i++)
        sigma2 += xb[i] * xb[i];
      sigma2 = 2.0f * sigma2 / 256.0f;
    }
  for (int j = 0; j < 8; j++)
    {
      float x[32], w[32], sum_x2 = 0.0f, av_x;
      for (int i = 0; i < 32; i++)
        x[i] = xb[32 * j + i];
      if (qw)
        {
          sw[j] = 0.0f;
          for (int i = 0; i < 32; i++)
            {
              w[i] = qw[32 * j + i] * sqrt (sigma2 + x[i] * x[i]);
              sw[j] += w[i];
            }
          scales[j] = qkx_quants (x, w, 32, nmax, -0.9f, 0.05f, 36, false, L + 32 * j, &mins[j]);
          continue;
        }
      for (int i = 0; i < 32; i++)
        sum_x2 += x[i] * x[i];
      sum_x2 = sum_x2 / 32.0f;
      av_x = sqrt (sum_x2);
      for (int i = 0; i < 32; i++)
        w[i] = av_x + fabs (x[i]);
      if (nmax == 15)
        scales[j] = qkx_quants (x, w, 32, 15, -1.0f, 0.1f, 20, false, L + 32 * j, &mins[j]);
      else
        scales[j] = qkx_quants (x, w, 32, 31, -0.5f, 0.1f, 15, false, L + 32 * j, &mins[j]);
    }

  for (int j = 0; j < 12; j++)
    packed[j] = 0;
  if (qw)
    {
      /* Q5_K cuts the fitted codes at 63, Q4_K does not. */
      uchar Ls[8], Lm[8];
      float d_block = qp_quants (8, 63, scales, Ls, sw);
      float m_block = qp_quants (8, 63, mins, Lm, sw);
      for (int j = 0; j < 8; j++)
        put_scale_min_k4 (j, nmax == 31 ? min (63u, (uint) Ls[j]) : (uint) Ls[j],
                          nmax == 31 ? min (63u, (uint) Lm[j]) : (uint) Lm[j], packed);
      put_f16 (b, f32_to_f16 (d_block));
      put_f16 (b + 2, f32_to_f16 (m_block));
    }
  else
    {
      for (int j = 0; j < 8; j++)
        {
          max_scale = scales[j] > max_scale ? scales[j] : max_scale;
          max_min = mins[j] > max_min ? mins[j] : max_min;
        }
      inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
      inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
      for (int j = 0; j < 8; j++)
        {
          uint ls = (uint) nearest_int_nan (inv_scale * scales[j]) & 0xffu;
          uint lm = (uint) nearest_int_nan (inv_min * mins[j]) & 0xffu;
          put_scale_min_k4 (j, min (63u, ls), min (63u, lm), packed);
        }
      put_f16 (b, f32_to_f16 (max_scale / 63.0f));
      put_f16 (b + 2, f32_to_f16 (max_min / 63.0f));
    }

  d_all = f16_to_f32 (get_f16 (b));
  m_all = f16_to_f32 (get_f16 (b + 2));
  for (int j = 0; j < 8; j++)
    {
      uint sc, m;
      float d, dm;
      get_scale_min_k4 (j, packed, &sc, &m);
      d = d_all * convert_float (sc);
      if (d == 0.0f)
        continue;
      dm = m_all * convert_float (m);
      for (int i = 0; i < 32; i++)
        L[32 * j + i] = (uchar) clampi (nearest_int_nan ((xb[32 * j + i] + dm) / d), 0, nmax);
    }
}

/* Scale and minimum of group j of a Q4_K/Q5_K block b as dequantized. */
static float2
k4_group (__global const uchar *b, int j)
{
  uint sc, m;

  get_scale_min_k4 (j, b + 4, &sc, &m);
  return (float2) (f16_to_f32 (get_f16 (b)) * convert_float (sc),
                   f16_to_f32 (get_f16 (b + 2)) * convert_float (m));
}

/* Loads a super-block's finiteness; FALSE (and the flag raised) when it
 * holds NaN or inf. */
static bool
superblock_finite (__global const float *xb, __global int *nonfinite)
{
  bool finite = true;

  for (int i = 0; i < QK_K; i++)
    finite = finite && isfinite (xb[i]);
  if (!finite)
    atomic_or (nonfinite, 1);
  return finite;
}

/* The plain and the importance kernel of a K-quant: one super-block per
 * work-item through name##_superblock (its importance, or 0). */
#define SUPERBLOCK_KERNELS(name)                                              \
__kernel void                                                                 \
quantize_##name (__global const float *x, __global uchar *q, __global float *y, \
                 const long nb, const int want_y, __global int *nonfinite)   \
{                                                                             \
  long i = get_global_id (0);                                                 \
                                                                              \
  if (i < nb && superblock_finite (x + i * QK_K, nonfinite))                  \
    name##_superblock (x, 0, q, y, i, want_y);                                \
}                                                                             \
                                                                              \
__kernel void                                                                 \
quantize_##name##_imatrix (IMATRIX_ARGS)                                      \
{                                                                             \
  long i = get_global_id (0);                                                 \
                                                                              \
  if (i < nb && superblock_finite (x + i * QK_K, nonfinite))                  \
    name##_superblock (x, imp + (i * QK_K) % n_cols, q, y, i, want_y);        \
}

/* Super-block i of Q4_K (importance qw, or 0 without) into q, and its
 * dequantized values into y when want_y. */
static void
q4_k_superblock (__global const float *x, __global const float *qw, __global uchar *q,
                 __global float *y, long i, int want_y)
{
  __global const float *xb = x + i * QK_K;
  __global uchar *b = q + i * 144, *qs = b + 16;
  uchar L[QK_K];

  k4_superblock (xb, qw, 15, b, L);
  for (int j = 0; j < QK_K; j += 64, qs += 32)
    for (int l = 0; l < 32; l++)
      qs[l] = (uchar) (L[j + l] | L[j + l + 32] << 4);
  if (!want_y)
    return;
  qs = b + 16;
  for (int is = 0; is < 8; is += 2, qs += 32)
    {
      __global float *yb = y + i * QK_K + 32 * is;
      float2 g1 = k4_group (b, is), g2 = k4_group (b, is + 1);
      for (int l = 0; l < 32; l++)
        yb[l] = g1.x * convert_float (qs[l] & 0xf) - g1.y;
      for (int l = 0; l < 32; l++)
        yb[32 + l] = g2.x * convert_float (qs[l] >> 4) - g2.y;
    }
}

SUPERBLOCK_KERNELS (q4_k)

/* The same for Q5_K. */
static void
q5_k_superblock (__global const float *x, __global const float *qw, __global uchar *q,
                 __global float *y, long i, int want_y)
{
  __global const float *xb = x + i * QK_K;
  __global uchar *b = q + i * 176, *qh = b + 16, *ql = b + 48;
  uchar L[QK_K];

  k4_superblock (xb, qw, 31, b, L);
  for (int j = 0; j < 32; j++)
    qh[j] = 0;
  for (int n = 0, s = 0; n < QK_K; n += 64, s += 2, ql += 32)
    for (int j = 0; j < 32; j++)
      {
        int l1 = L[n + j], l2 = L[n + j + 32];
        if (l1 > 15)
          {
            l1 -= 16;
            qh[j] |= (uchar) (1 << s);
          }
        if (l2 > 15)
          {
            l2 -= 16;
            qh[j] |= (uchar) (2 << s);
          }
        ql[j] = (uchar) (l1 | l2 << 4);
      }
  if (!want_y)
    return;
  ql = b + 48;
  for (int is = 0; is < 8; is += 2, ql += 32)
    {
      __global float *yb = y + i * QK_K + 32 * is;
      float2 g1 = k4_group (b, is), g2 = k4_group (b, is + 1);
      for (int l = 0; l < 32; l++)
        yb[l] = g1.x * convert_float ((ql[l] & 0xf) + ((qh[l] >> is) & 1 ? 16 : 0)) - g1.y;
      for (int l = 0; l < 32; l++)
        yb[32 + l] = g2.x * convert_float ((ql[l] >> 4) + ((qh[l] >> (is + 1)) & 1 ? 16 : 0)) - g2.y;
    }
}

SUPERBLOCK_KERNELS (q5_k)

/* make_qx_quants (rmse_type 1) on a group of n <= 32 with weights w:
 * codes l + nmax in L (0 for a group under 1e-15), returns the scale. */
static float
qx_quants (const float *x, const float *w, int n, int nmax, uchar *L)
{
  float amax = 0.0f, max = 0.0f, iscale, sumlx, suml2, scale, best, best_iscale;

  for (int i = 0; i < n; i++)
    {
      float a = fabs (x[i]);
      if (a > amax)
        {
          amax = a;
          max = x[i];
        }
    }
  if (amax < 1e-15f)
    {
      for (int i = 0; i < n; i++)
        L[i] = 0;
      return 0.0f;
    }
  iscale = convert_float (-nmax) / max;
  sumlx = suml2 = 0.0f;
  for (int i = 0; i < n; i++)
    {
      float l = convert_float (clampi (nearest_int_nan (iscale * x[i]), -nmax, nmax - 1));
      sumlx += w[i] * x[i] * l;
      suml2 += w[i] * l * l;
    }
  scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  best = scale * sumlx;
  best_iscale = iscale;
  for (int is = -9; is <= 9; is++)
    {
      float s;
      if (is == 0)
        continue;
      iscale = -(convert_float (nmax) + 0.1f * convert_float (is)) / max;
      sumlx = suml2 = 0.0f;
      for (int i = 0; i < n; i++)
        {
          float l = convert_float (clampi (nearest_int_nan (iscale * x[i]), -nmax, nmax - 1));
          sumlx += w[i] * x[i] * l;
          suml2 += w[i] * l * l;
        }
      s = sumlx / suml2;
      if (suml2 > 0.0f && sumlx * sumlx > best * suml2)
        {
          scale = s;
          best = s * sumlx;
          best_iscale = iscale;
        }
    }
  for (int i = 0; i < n; i++)
    L[i] = (uchar) (clampi (nearest_int_nan (best_iscale * x[i]), -nmax, nmax - 1) + nmax);
  return scale;
}

/* Q6_K's super-block xb into b (and dequantized into yb): groups of 16
 * fitted with weights x², or the importance qw itself (ggml's Q6_K does
 * not mix in σ²). */
static void
q6_k_superblock (__global const float *x, __global const float *qw, __global uchar *q,
                 __global float *y, long i, int want_y)
{
  __global const float *xb = x + i * QK_K;
  __global float *yb = y + i * QK_K;
  __global uchar *b = q + i * 210, *ql = b, *qh = b + 128, *dh = b + 208;
  __global char *sc = (__global char *) (b + 192);
  uchar L[QK_K];
  float scales[16], max_scale = 0.0f, max_abs_scale = 0.0f, iscale, d_all;

  for (int ib = 0; ib < 16; ib++)
    {
      float v[16], w[16];
      for (int k = 0; k < 16; k++)
        {
          v[k] = xb[16 * ib + k];
          w[k] = qw ? qw[16 * ib + k] : v[k] * v[k];
        }
      scales[ib] = qx_quants (v, w, 16, 32, L + 16 * ib);
    }
  for (int ib = 0; ib < 16; ib++)
    if (fabs (scales[ib]) > max_abs_scale)
      {
        max_abs_scale = fabs (scales[ib]);
        max_scale = scales[ib];
      }
  if (max_abs_scale < 1e-15f)
    {
      for (int k = 0; k < 210; k++)
        b[k] = 0;
    }
  else
    {
      iscale = -128.0f / max_scale;
      put_f16 (dh, f32_to_f16 (1.0f / iscale));
      for (int ib = 0; ib < 16; ib++)
        sc[ib] = (char) min (127, nearest_int_nan (iscale * scales[ib]));
      d_all = f16_to_f32 (get_f16 (dh));
      for (int j = 0; j < 16; j++)
        {
          float d = d_all * convert_float ((int) sc[j]);
          if (d == 0.0f)
            continue;
          for (int k = 0; k < 16; k++)
            L[16 * j + k] = (uchar) (clampi (nearest_int_nan (xb[16 * j + k] / d), -32, 31) + 32);
        }
      for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; l++)
          {
            ql[l] = (uchar) ((L[j + l] & 0xf) | (L[j + l + 64] & 0xf) << 4);
            ql[l + 32] = (uchar) ((L[j + l + 32] & 0xf) | (L[j + l + 96] & 0xf) << 4);
            qh[l] = (uchar) ((L[j + l] >> 4) | (L[j + l + 32] >> 4) << 2
                             | (L[j + l + 64] >> 4) << 4 | (L[j + l + 96] >> 4) << 6);
          }
    }
  if (!want_y)
    return;
  {
    float d = f16_to_f32 (get_f16 (dh));
    ql = b;
    qh = b + 128;
    for (int k = 0; k < QK_K; k += 128, yb += 128, ql += 64, qh += 32, sc += 8)
      for (int l = 0; l < 32; l++)
        {
          int is = l / 16;
          int q1 = ((ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4) - 32;
          int q2 = ((ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4) - 32;
          int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
          int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
          yb[l] = d * convert_float ((int) sc[is]) * convert_float (q1);
          yb[l + 32] = d * convert_float ((int) sc[is + 2]) * convert_float (q2);
          yb[l + 64] = d * convert_float ((int) sc[is + 4]) * convert_float (q3);
          yb[l + 96] = d * convert_float ((int) sc[is + 6]) * convert_float (q4);
        }
  }
}

SUPERBLOCK_KERNELS (q6_k)

/* ---- Q4_0, Q4_1, Q5_0, Q5_1 with importance: one block per work-item ------
 *
 * As legacy_row_weighted in core/ggml/qb-ggml-quants-legacy.c: weights
 * imp · sqrt (σ² + x²), σ² the mean square of the whole row (row_sigma2,
 * summed in order by one work-item per row); symmetric formats fit with
 * make_qx_quants (nmax 8 or 16), asymmetric ones with make_qkx3_quants
 * (nmax 15 or 31, 37 candidates from -0.9 in steps of 0.05).  The codes
 * are the fit's. */

__kernel void
row_sigma2 (__global const float *x, const long n_rows, const int n_cols,
            __global float *sigma2)
{
  long r = get_global_id (0);
  float s = 0.0f;

  if (r >= n_rows)
    return;
  for (int j = 0; j < n_cols; j++)
    s += x[r * n_cols + j] * x[r * n_cols + j];
  sigma2[r] = s / convert_float (n_cols);
}

/* Block i's values in v and weights in w; FALSE when it is not finite. */
static bool
load_weighted_block (__global const float *x, long i, __global const float *imp, int n_cols,
                     __global const float *row_sigma2, float *v, float *w,
                     __global int *nonfinite)
{
  float sigma2;
  int col = (int) ((i * QK) % n_cols);

  if (!load_block (x + i * QK, v, nonfinite))
    return false;
  sigma2 = row_sigma2[(i * QK) / n_cols];
  for (int j = 0; j < QK; j++)
    w[j] = imp[col + j] * sqrt (sigma2 + v[j] * v[j]);
  return true;
}

/* The fit's codes and scale (and minimum) of block i; FALSE when it is
 * not finite. */
static bool
legacy_weighted (__global const float *x, long i, __global const float *imp, int n_cols,
                 __global const float *row_sigma2, __global int *nonfinite, int nmax,
                 bool asymmetric, int *c, float *d, float *m)
{
  float v[QK], w[QK], the_min = 0.0f;
  uchar L[QK];

  if (!load_weighted_block (x, i, imp, n_cols, row_sigma2, v, w, nonfinite))
    return false;
  if (asymmetric)
    *d = qkx_quants (v, w, QK, nmax, -0.9f, 0.05f, 36, false, L, &the_min);
  else
    *d = qx_quants (v, w, QK, nmax, L);
  *m = -the_min;
  for (int j = 0; j < QK; j++)
    c[j] = L[j];
  return true;
}

__kernel void
quantize_q4_0_imatrix (IMATRIX_ARGS)
{
  long i = get_global_id (0);
  __global uchar *b = q + i * 18;
  int c[QK];
  float d, m;

  if (i >= nb || !legacy_weighted (x, i, imp, n_cols, row_sigma2, nonfinite, 8, false, c, &d, &m))
    return;
  put_f16 (b, f32_to_f16 (d));
  pack_4bit (c, b + 2);
  if (want_y)
    dequant_q4_0 (b, y + i * QK);
}

__kernel void
quantize_q5_0_imatrix (IMATRIX_ARGS)
{
  long i = get_global_id (0);
  __global uchar *b = q + i * 22;
  int c[QK];
  float d, m;

  if (i >= nb || !legacy_weighted (x, i, imp, n_cols, row_sigma2, nonfinite, 16, false, c, &d, &m))
    return;
  put_f16 (b, f32_to_f16 (d));
  pack_5bit (c, b + 6, b + 2);
  if (want_y)
    dequant_q5_0 (b, y + i * QK);
}

__kernel void
quantize_q4_1_imatrix (IMATRIX_ARGS)
{
  long i = get_global_id (0);
  __global uchar *b = q + i * 20;
  int c[QK];
  float d, m;

  if (i >= nb || !legacy_weighted (x, i, imp, n_cols, row_sigma2, nonfinite, 15, true, c, &d, &m))
    return;
  put_f16 (b, f32_to_f16 (d));
  put_f16 (b + 2, f32_to_f16 (m));
  pack_4bit (c, b + 4);
  if (want_y)
    dequant_q4_1 (b, y + i * QK);
}

__kernel void
quantize_q5_1_imatrix (IMATRIX_ARGS)
{
  long i = get_global_id (0);
  __global uchar *b = q + i * 24;
  int c[QK];
  float d, m;

  if (i >= nb || !legacy_weighted (x, i, imp, n_cols, row_sigma2, nonfinite, 31, true, c, &d, &m))
    return;
  put_f16 (b, f32_to_f16 (d));
  put_f16 (b + 2, f32_to_f16 (m));
  pack_5bit (c, b + 8, b + 4);
  if (want_y)
    dequant_q5_1 (b, y + i * QK);
}

/* ---- NF4: blocks of 64, plain rounding against absmax ----------------------
 *
 * As core/formats/qb-format-nf.c: the f32 absmax, then indices into the
 * 16 levels, a value going to the level above a midpoint only when
 * strictly greater; first of each pair in the high nibble. */

__constant float nf4_levels[16] = {
  -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
  -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
  0.07958029955625534f, 0.16093020141124725f, 0.24611230790615082f, 0.33791524171829224f,
  0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

static int
nf4_index (float v, const float *mid)
{
  int idx = 0;
  for (int k = 0; k < 15; k++)
    idx += v > mid[k];
  return idx;
}

__kernel void
quantize_nf4 (__global const float *x, __global uchar *q, __global float *y,
              const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  __global const float *xb = x + i * 64;
  __global uchar *b = q + i * 36;
  float mid[15], absmax = 0.0f, inv, s;
  bool finite = true;
  uint bits;

  if (i >= nb)
    return;
  for (int j = 0; j < 64; j++)
    {
      float a = fabs (xb[j]);
      finite = finite && isfinite (xb[j]);
      absmax = a > absmax ? a : absmax;
    }
  if (!finite)
    {
      atomic_or (nonfinite, 1);
      return;
    }
  for (int k = 0; k < 15; k++)
    mid[k] = (nf4_levels[k] + nf4_levels[k + 1]) / 2.0f;
  bits = as_uint (absmax);
  for (int k = 0; k < 4; k++)
    b[k] = (uchar) ((bits >> (8 * k)) & 0xffu);
  inv = absmax != 0.0f ? 1.0f / absmax : 0.0f;
  for (int j = 0; j < 32; j++)
    b[4 + j] = (uchar) (nf4_index (xb[2 * j] * inv, mid) << 4 | nf4_index (xb[2 * j + 1] * inv, mid));
  if (!want_y)
    return;
  s = absmax;
  for (int j = 0; j < 32; j++)
    {
      y[i * 64 + 2 * j] = nf4_levels[b[4 + j] >> 4] * s;
      y[i * 64 + 2 * j + 1] = nf4_levels[b[4 + j] & 0xf] * s;
    }
}

/* ---- Q2_K and Q3_K: one super-block of 256 per work-item --------------------
 *
 * As core/ggml/qb-ggml-quants-k.c without importance.  Q2_K: each group of
 * 16 fitted by make_qkx2_quants on absolute differences (weights |x|, nmax 3,
 * rmin -0.5, rdelta 0.1, 15 steps), scales and minimums to 4 bits against
 * their maximum.  Q3_K: make_q3_quants (codes -4..3 from -4 / max with
 * weights x², then up to five rounds moving single codes while the fit
 * improves; a group stops after a round that changes nothing in it), the
 * scales to signed 6 bits against the largest in magnitude.  Both then
 * requantize the values against the scales as stored. */

/* Codes 0..3 of 256 values, four to a byte. */
static void
pack_2bit (const uchar *L, __global uchar *qs)
{
  for (int j = 0; j < QK_K; j += 128)
    for (int l = 0; l < 32; l++)
      qs[j / 4 + l] = (uchar) (L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6);
}

__kernel void
quantize_q2_k (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  __global const float *xb = x + i * QK_K;
  __global uchar *b = q + i * 84, *sc = b, *qs = b + 16;
  float scales[16], mins[16], max_scale = 0.0f, max_min = 0.0f, d_all, m_all;
  uchar L[QK_K];

  if (i >= nb || !superblock_finite (xb, nonfinite))
    return;
  for (int j = 0; j < 16; j++)
    {
      float v[16], w[16];
      for (int k = 0; k < 16; k++)
        {
          v[k] = xb[16 * j + k];
          w[k] = fabs (v[k]);
        }
      scales[j] = qkx_quants (v, w, 16, 3, -0.5f, 0.1f, 15, true, L + 16 * j, &mins[j]);
    }
  for (int j = 0; j < 16; j++)
    {
      max_scale = scales[j] > max_scale ? scales[j] : max_scale;
      max_min = mins[j] > max_min ? mins[j] : max_min;
    }
  if (max_scale > 0.0f)
    {
      float iscale = 15.0f / max_scale;
      for (int j = 0; j < 16; j++)
        sc[j] = (uchar) (nearest_int_nan (iscale * scales[j]) & 0xff);
      put_f16 (b + 80, f32_to_f16 (max_scale / 15.0f));
    }
  else
    {
      for (int j = 0; j < 16; j++)
        sc[j] = 0;
      put_f16 (b + 80, f32_to_f16 (0.0f));
    }
  if (max_min > 0.0f)
    {
      float iscale = 15.0f / max_min;
      for (int j = 0; j < 16; j++)
        sc[j] |= (uchar) ((nearest_int_nan (iscale * mins[j]) << 4) & 0xff);
      put_f16 (b + 82, f32_to_f16 (max_min / 15.0f));
    }
  else
    put_f16 (b + 82, f32_to_f16 (0.0f));

  d_all = f16_to_f32 (get_f16 (b + 80));
  m_all = f16_to_f32 (get_f16 (b + 82));
  for (int j = 0; j < 16; j++)
    {
      float d = d_all * convert_float (sc[j] & 0xf), m;
      if (d == 0.0f)
        continue;
      m = m_all * convert_float (sc[j] >> 4);
      for (int k = 0; k < 16; k++)
        L[16 * j + k] = (uchar) clampi (nearest_int_nan ((xb[16 * j + k] + m) / d), 0, 3);
    }
  pack_2bit (L, qs);
  if (!want_y)
    return;
  {
    __global float *yb = y + i * QK_K;
    int is = 0;
    for (int k = 0; k < QK_K; k += 128, qs += 32)
      for (int shift = 0; shift < 8; shift += 2)
        for (int hf = 0; hf < 2; hf++)
          {
            uint s = sc[is++];
            float dl = d_all * convert_float (s & 0xfu), ml = m_all * convert_float (s >> 4);
            for (int l = 0; l < 16; l++)
              *yb++ = dl * convert_float ((qs[l + 16 * hf] >> shift) & 3) - ml;
          }
  }
}

/* make_q3_quants (rmse on) on a group of 16: codes l + 4 in L (0 for a
 * group whose largest magnitude is below 1e-15), returns the scale. */
static float
q3_quants16 (const float *x, uchar *L)
{
  const int nmax = 4;
  float amax = 0.0f, max = 0.0f, iscale, sumlx = 0.0f, suml2 = 0.0f;
  int l[16];

  for (int i = 0; i < 16; i++)
    {
      float a = fabs (x[i]);
      if (a > amax)
        {
          amax = a;
          max = x[i];
        }
    }
  iscale = convert_float (-nmax) / max;
  for (int i = 0; i < 16; i++)
    {
      float w = x[i] * x[i], lf;
      l[i] = clampi (nearest_int_nan (iscale * x[i]), -nmax, nmax - 1);
      lf = convert_float (l[i]);
      sumlx += w * x[i] * lf;
      suml2 += w * lf * lf;
    }
  for (int itry = 0; itry < 5; itry++)
    {
      int n_changed = 0;
      for (int i = 0; i < 16; i++)
        {
          float w = x[i] * x[i], lf = convert_float (l[i]);
          float slx = sumlx - w * x[i] * lf;
          float sl2 = suml2 - w * lf * lf;
          int new_l = clampi (nearest_int_nan (x[i] * sl2 / slx), -nmax, nmax - 1);
          float nl = convert_float (new_l);
          float slx2 = slx + w * x[i] * nl;
          float sl22 = sl2 + w * nl * nl;
          if (slx > 0.0f && new_l != l[i] && sl22 > 0.0f
              && slx2 * slx2 * suml2 > sumlx * sumlx * sl22)
            {
              l[i] = new_l;
              sumlx = slx2;
              suml2 = sl22;
              n_changed++;
            }
        }
      if (n_changed == 0)
        break;
    }
  if (amax < 1e-15f)
    {
      for (int i = 0; i < 16; i++)
        L[i] = 0;
      return 0.0f;
    }
  for (int i = 0; i < 16; i++)
    L[i] = (uchar) (l[i] + nmax);
  return sumlx / suml2;
}

static int
get_scale_q3 (__global const uchar *scales, int j)
{
  int sc = j < 8 ? scales[j] & 0xf : scales[j - 8] >> 4;
  return (sc | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

__kernel void
quantize_q3_k (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  __global const float *xb = x + i * QK_K;
  __global uchar *b = q + i * 110, *hmask = b, *qs = b + 32, *scales = b + 96;
  float sc[16], max_scale = 0.0f, amax = 0.0f, d_all;
  uchar L[QK_K];

  if (i >= nb || !superblock_finite (xb, nonfinite))
    return;
  for (int j = 0; j < 16; j++)
    {
      float v[16];
      for (int k = 0; k < 16; k++)
        v[k] = xb[16 * j + k];
      sc[j] = q3_quants16 (v, L + 16 * j);
    }
  for (int j = 0; j < 16; j++)
    if (fabs (sc[j]) > amax)
      {
        amax = fabs (sc[j]);
        max_scale = sc[j];
      }
  for (int j = 0; j < 12; j++)
    scales[j] = 0;
  if (max_scale != 0.0f)
    {
      float iscale = -32.0f / max_scale;
      for (int j = 0; j < 16; j++)
        {
          int l = (int) (char) (nearest_int_nan (iscale * sc[j]) & 0xff);
          l = clampi (l, -32, 31) + 32;
          if (j < 8)
            scales[j] = (uchar) (l & 0xf);
          else
            scales[j - 8] |= (uchar) ((l & 0xf) << 4);
          scales[j % 4 + 8] |= (uchar) ((l >> 4) << (2 * (j / 4)));
        }
      put_f16 (b + 108, f32_to_f16 (1.0f / iscale));
    }
  else
    put_f16 (b + 108, f32_to_f16 (0.0f));

  d_all = f16_to_f32 (get_f16 (b + 108));
  for (int j = 0; j < 16; j++)
    {
      float d = d_all * convert_float (get_scale_q3 (scales, j));
      if (d == 0.0f)
        continue;
      for (int k = 0; k < 16; k++)
        L[16 * j + k] = (uchar) (clampi (nearest_int_nan (xb[16 * j + k] / d), -4, 3) + 4);
    }
  for (int m = 0; m < 32; m++)
    hmask[m] = 0;
  for (int bit = 0; bit < 8; bit++)
    for (int m = 0; m < 32; m++)
      {
        int high = L[32 * bit + m] > 3;
        hmask[m] |= (uchar) (high << bit);
        L[32 * bit + m] -= (uchar) (4 * high);
      }
  pack_2bit (L, qs);
  if (!want_y)
    return;
  {
    __global float *yb = y + i * QK_K;
    int is = 0;
    for (int k = 0, bit = 0; k < QK_K; k += 128, qs += 32)
      for (int shift = 0; shift < 8; shift += 2, bit++)
        for (int hf = 0; hf < 2; hf++)
          {
            float dl = d_all * convert_float (get_scale_q3 (scales, is++));
            for (int l = 0; l < 16; l++)
              {
                int hi = (hmask[l + 16 * hf] >> bit) & 1;
                *yb++ = dl * convert_float (((qs[l + 16 * hf] >> shift) & 3) - (hi ? 0 : 4));
              }
          }
  }
}

/* ---- IQ4_NL (blocks of 32) and IQ4_XS (super-blocks of 256) ----------------
 *
 * As core/ggml/qb-ggml-quants-iq4.c without importance: the 16 levels,
 * weights x², the scale -max / -127 refined by weighted least squares and
 * 15 candidates (k - 127) / max, k = -7..7, taken on a strictly better
 * fit; IQ4_XS then puts the 8 group scales on 6 bits against
 * -max_scale / 32 and rounds each group against its scale as stored. */

__constant float iq4_levels[16] = {
  -127.0f, -104.0f, -83.0f, -65.0f, -49.0f, -35.0f, -22.0f, -10.0f,
  1.0f, 13.0f, 25.0f, 38.0f, 53.0f, 69.0f, 89.0f, 113.0f,
};
__constant float iq4_midpoints[15] = {
  -115.5f, -93.5f, -74.0f, -57.0f, -42.0f, -28.5f, -16.0f, -4.5f,
  7.0f, 19.0f, 31.5f, 45.5f, 61.0f, 79.0f, 101.0f,
};
__constant float iq4_gaps[15] = {
  23.0f, 21.0f, 18.0f, 16.0f, 14.0f, 13.0f, 12.0f, 11.0f,
  12.0f, 12.0f, 13.0f, 15.0f, 16.0f, 20.0f, 24.0f,
};

/* The index of the nearest level: the midpoints <= v (NaN: 15). */
static int
iq4_index (float v)
{
  int idx = 15;
  for (int k = 0; k < 15; k++)
    idx -= v < iq4_midpoints[k];
  return idx;
}

/* The nearest level, 113 less the gaps above v, every step exact. */
static float
iq4_level (float v)
{
  float q = 113.0f;
  for (int k = 0; k < 15; k++)
    if (v < iq4_midpoints[k])
      q -= iq4_gaps[k];
  return q;
}

static void
iq4_sums (__global const float *x, float id, float *sumqx, float *sumq2)
{
  float sqx = 0.0f, sq2 = 0.0f;
  for (int j = 0; j < 32; j++)
    {
      float w = x[j] * x[j], q = iq4_level (id * x[j]);
      sqx += w * q * x[j];
      sq2 += w * q * q;
    }
  *sumqx = sqx;
  *sumq2 = sq2;
}

/* The scale of a group of 32 (0 for an all-but-zero group). */
static float
iq4_scale (__global const float *x)
{
  float amax = 0.0f, max = 0.0f, sumqx, sumq2, scale, best;

  for (int j = 0; j < 32; j++)
    {
      float a = fabs (x[j]);
      if (a > amax)
        {
          amax = a;
          max = x[j];
        }
    }
  iq4_sums (x, 1.0f / (-max / -127.0f), &sumqx, &sumq2);
  scale = sumqx / sumq2;
  best = scale * sumqx;
  for (int itry = -7; itry <= 7; itry++)
    {
      float d;
      iq4_sums (x, convert_float (itry - 127) / max, &sumqx, &sumq2);
      d = sumqx / sumq2;
      if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2)
        {
          scale = d;
          best = d * sumqx;
        }
    }
  return amax < 1e-15f ? 0.0f : scale;
}

static void
iq4_pack (__global const float *x, float id, __global uchar *qs)
{
  for (int j = 0; j < 16; j++)
    qs[j] = (uchar) (iq4_index (id * x[j]) | iq4_index (id * x[j + 16]) << 4);
}

static void
iq4_unpack (__global const uchar *qs, float d, __global float *y)
{
  for (int j = 0; j < 16; j++)
    {
      y[j] = d * iq4_levels[qs[j] & 0xf];
      y[j + 16] = d * iq4_levels[qs[j] >> 4];
    }
}

__kernel void
quantize_iq4_nl (__global const float *x, __global uchar *q, __global float *y,
                 const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  __global const float *xb = x + i * QK;
  __global uchar *b = q + i * 18;
  float v[QK], scale;

  if (i >= nb || !load_block (xb, v, nonfinite))
    return;
  scale = iq4_scale (xb);
  put_f16 (b, f32_to_f16 (scale));
  iq4_pack (xb, scale != 0.0f ? 1.0f / scale : 0.0f, b + 2);
  if (want_y)
    iq4_unpack (b + 2, f16_to_f32 (get_f16 (b)), y + i * QK);
}

__kernel void
quantize_iq4_xs (__global const float *x, __global uchar *q, __global float *y,
                 const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  __global const float *xb = x + i * QK_K;
  __global uchar *b = q + i * 136, *scales_l = b + 4, *qs = b + 8;
  float scale[8], max_scale = 0.0f, amax_scale = 0.0f, d, id, dd;
  uint scales_h = 0;

  if (i >= nb || !superblock_finite (xb, nonfinite))
    return;
  for (int g = 0; g < 8; g++)
    {
      scale[g] = iq4_scale (xb + 32 * g);
      if (fabs (scale[g]) > amax_scale)
        {
          amax_scale = fabs (scale[g]);
          max_scale = scale[g];
        }
    }
  d = -max_scale / 32.0f;
  id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16 (b, f32_to_f16 (d));
  for (int k = 0; k < 4; k++)
    scales_l[k] = 0;
  for (int g = 0; g < 8; g++)
    {
      int l = clampi (nearest_int_nan (id * scale[g]), -32, 31);
      float dl = d * convert_float (l);
      l += 32;
      scales_l[g / 2] |= (uchar) ((l & 0xf) << (4 * (g % 2)));
      scales_h |= (uint) ((l >> 4) << (2 * g));
      iq4_pack (xb + 32 * g, dl != 0.0f ? 1.0f / dl : 0.0f, qs + 16 * g);
    }
  b[2] = (uchar) (scales_h & 0xffu);
  b[3] = (uchar) (scales_h >> 8);
  if (!want_y)
    return;
  dd = f16_to_f32 (get_f16 (b));
  for (int g = 0; g < 8; g++)
    {
      int ls = ((scales_l[g / 2] >> (4 * (g % 2))) & 0xf) | ((scales_h >> (2 * g)) & 3) << 4;
      iq4_unpack (qs + 16 * g, dd * convert_float (ls - 32), y + i * QK_K + 32 * g);
    }
}

/* ---- MXFP4: blocks of 32, plain rounding ----------------------------------
 *
 * As core/formats/qb-format-mx.c: the shared exponent floor (log2 absmax)
 * - 2 (frexp's, read from the bits), clamped to [-127, 127], stored +127;
 * elements |x| / 2^e rounded to the nearest E2M1 magnitude, ties to the
 * even one, the sign bit kept (−0 too), value 2j in the low nibble. */

__constant float e2m1_signed[16] = {
  0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
  -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f,
};

/* 2^e exactly for e in [-149, 127]. */
static float
pow2 (int e)
{
  return e >= -126 ? as_float ((uint) (e + 127) << 23) : as_float (1u << (e + 149));
}

/* frexp's exponent of a finite non-zero a: a = m·2^e, m in [0.5, 1). */
static int
frexp_exponent (float a)
{
  uint bits = as_uint (a) & 0x7fffffffu;
  int e = (int) (bits >> 23);
  return e != 0 ? e - 126 : -149 + (32 - (int) clz (bits));
}

static int
e2m1_code (float v, float inv)
{
  float a = fabs (v) * inv;
  int idx = (a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f)
            + (a > 2.5f) + (a >= 3.5f) + (a > 5.0f);
  return (signbit (v) ? 8 : 0) | idx;
}

__kernel void
quantize_mxfp4 (__global const float *x, __global uchar *q, __global float *y,
                const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  __global uchar *b = q + i * 17;
  float v[QK], amax = 0.0f, inv, scale;
  int e;

  if (i >= nb || !load_block (x + i * QK, v, nonfinite))
    return;
  for (int j = 0; j < QK; j++)
    amax = fabs (v[j]) > amax ? fabs (v[j]) : amax;
  e = amax == 0.0f ? -127 : clampi (frexp_exponent (amax) - 1 - 2, -127, 127);
  b[0] = (uchar) (e + 127);
  inv = pow2 (-e);
  for (int j = 0; j < QK / 2; j++)
    b[1 + j] = (uchar) (e2m1_code (v[2 * j], inv) | e2m1_code (v[2 * j + 1], inv) << 4);
  if (!want_y)
    return;
  scale = pow2 (e);
  for (int j = 0; j < QK / 2; j++)
    {
      y[i * QK + 2 * j] = e2m1_signed[b[1 + j] & 0xf] * scale;
      y[i * QK + 2 * j + 1] = e2m1_signed[b[1 + j] >> 4] * scale;
    }
}

/* ---- FP8 E4M3 / E5M2: one row per work-item --------------------------------
 *
 * As core/formats/qb-format-fp8.c's plain rounding: the scale absmax / max
 * finite (1 for a zero row), the row's own ahead of it as f32 (…_CH) or
 * the tensor's from the host (…_T); x · (1 / s) rounded to nearest even,
 * saturating at the largest finite value: the normal case on the bits,
 * the subnormal one a multiple of 2^(1 - bias - mbits). */

static uint
fp8_encode (float v, int mbits, int bias, float max, uint max_code, uint nan_code)
{
  uint bits = as_uint (v), a = bits & 0x7fffffffu, max_bits = as_uint (max);
  uint min_normal = (uint) (128 - bias) << 23;
  int shift = 23 - mbits;
  uint normal = ((a + (1u << (shift - 1)) - 1u + ((a >> shift) & 1u)) >> shift)
                - ((uint) (127 - bias) << mbits);
  float sub_scale = convert_float (1 << (bias - 1 + mbits));
  uint code = a < min_normal ? (uint) nearest_int (fabs (v) * sub_scale) & 0xffu : normal & 0xffu;

  code = a >= max_bits ? max_code : code;
  code = a > 0x7f800000u ? nan_code : code;
  return ((bits >> 24) & 0x80u) | code;
}

/* qb_fp8_e4m3_to_fp32 / qb_fp8_e5m2_to_fp32 of a finite code. */
static float
fp8_decode (uint c, int mbits)
{
  uint sign = c >> 7, e = (c >> 3) & 0xfu, m = c & 7u;
  float r;

  if (mbits == 2)
    return f16_to_f32 (c << 8);
  r = e == 0 ? convert_float (m) * pow2 (-9) : (1.0f + convert_float (m) / 8.0f) * pow2 ((int) e - 7);
  return sign ? -r : r;
}

__kernel void
quantize_fp8 (__global const float *x, __global uchar *q, __global float *y,
              const long n_rows, const int want_y, __global int *nonfinite,
              const int n, const int mbits, const int bias, const float max_finite,
              const int max_code, const int nan_code, const int row_bytes,
              const int tensor_scope, const float tensor_scale)
{
  long i = get_global_id (0);
  __global const float *xr = x + i * n;
  __global uchar *b = q + i * row_bytes, *codes = tensor_scope ? b : b + 4;
  float amax = 0.0f, s, inv;
  bool finite = true;

  if (i >= n_rows)
    return;
  for (int j = 0; j < n; j++)
    {
      float a = fabs (xr[j]);
      finite = finite && isfinite (xr[j]);
      amax = a > amax ? a : amax;
    }
  if (!finite)
    {
      atomic_or (nonfinite, 1);
      return;
    }
  s = tensor_scope ? tensor_scale : amax > 0.0f ? amax / max_finite : 1.0f;
  if (!tensor_scope)
    {
      uint bits = as_uint (s);
      for (int k = 0; k < 4; k++)
        b[k] = (uchar) ((bits >> (8 * k)) & 0xffu);
    }
  inv = 1.0f / s;
  for (int j = 0; j < n; j++)
    {
      float t = xr[j] * inv;
      uint c;
      /* 0 · inf where a row's scale underflowed: x86's NaN is 0xffc00000. */
      if (isnan (t))
        t = as_float (0xffc00000u);
      c = fp8_encode (t, mbits, bias, max_finite, (uint) max_code, (uint) nan_code);
      codes[j] = (uchar) c;
      if (want_y)
        y[i * n + j] = fp8_decode (c, mbits) * s;
    }
}

/* ---- metrics and histograms ------------------------------------------------
 *
 * One work-item per stripe of STRIPE values of a row, as
 * qb_measure_error_row: 16 float lanes (value i + l into lane l, the tail
 * into lane 0), summed into acc_t lane by lane.  Per stripe: the sums of
 * x², y², xy, e², and max |e|, min x, max x, the count outside
 * [out_lo, out_hi].  The histograms of x, y and x - y are binned as
 * qb-measure.c's bin_of and counted in local memory, then added to the
 * global counts. */

#define LANES  16
#define STRIPE 256

typedef struct {
  acc_t s_xx, s_yy, s_xy, s_ee;
  float max_err, min, max;
  int   n_out;
} Stripe;

static int
bin_of (float v, float lo, float scale, float last)
{
  float p = (v - lo) * scale;
  p = p > 0.0f ? p : 0.0f;
  p = p < last ? p : last;
  return (int) p;
}

__kernel void
measure (__global const float *x, __global const float *y, const long n_rows,
         const int n_cols, const float out_lo, const float out_hi,
         const float lo0, const float lo1, const float lo2,
         const float s0, const float s1, const float s2, const int n_bins,
         __global Stripe *stripes, __global uint *counts, __local uint *local_counts)
{
  long g = get_global_id (0);
  int per_row = (n_cols + STRIPE - 1) / STRIPE;
  float last = convert_float (n_bins - 1);

  for (int k = get_local_id (0); k < 3 * n_bins; k += get_local_size (0))
    local_counts[k] = 0;
  barrier (CLK_LOCAL_MEM_FENCE);

  if (g < n_rows * per_row)
    {
      long row = g / per_row;
      int i0 = (int) (g % per_row) * STRIPE;
      int len = min (STRIPE, n_cols - i0);
      __global const float *px = x + row * n_cols + i0, *py = y + row * n_cols + i0;
      float xx[LANES], yy[LANES], xy[LANES], ee[LANES];
      float me = 0.0f, mn = INFINITY, mx = -INFINITY;
      int no = 0, i = 0;
      Stripe s;

      for (int l = 0; l < LANES; l++)
        xx[l] = yy[l] = xy[l] = ee[l] = 0.0f;
      for (; i < len; i++)
        {
          int l = i < (len / LANES) * LANES ? i % LANES : 0;
          float a = px[i], b = py[i], e = a - b;
          xx[l] += a * a;
          yy[l] += b * b;
          xy[l] += a * b;
          ee[l] += e * e;
          me = fabs (e) > me ? fabs (e) : me;
          mn = a < mn ? a : mn;
          mx = a > mx ? a : mx;
          no += (a < out_lo) | (a > out_hi);
          atomic_inc (&local_counts[bin_of (a, lo0, s0, last)]);
          atomic_inc (&local_counts[n_bins + bin_of (b, lo1, s1, last)]);
          atomic_inc (&local_counts[2 * n_bins + bin_of (e, lo2, s2, last)]);
        }
      s.s_xx = s.s_yy = s.s_xy = s.s_ee = 0;
      for (int l = 0; l < LANES; l++)
        {
          s.s_xx += (acc_t) xx[l];
          s.s_yy += (acc_t) yy[l];
          s.s_xy += (acc_t) xy[l];
          s.s_ee += (acc_t) ee[l];
        }
      s.max_err = me;
      s.min = mn;
      s.max = mx;
      s.n_out = no;
      stripes[g] = s;
    }

  barrier (CLK_LOCAL_MEM_FENCE);
  for (int k = get_local_id (0); k < 3 * n_bins; k += get_local_size (0))
    if (local_counts[k] != 0)
      atomic_add (&counts[k], local_counts[k]);
}
