/* SPDX-License-Identifier: MIT */
/* qb-quantize-device.cl — Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, NF4 and
 * INTn_Gg quantization and the error metrics and histograms, on an OpenCL
 * device, with the CPU's bytes.
 *
 * The same IEEE operations as core/ggml/qb-ggml-quants-legacy.c and
 * qb-ggml-quants-k.c, core/formats/qb-format-int.c, qb-format-nf.c and
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

__kernel void
quantize_q4_0 (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  float v[QK], d;
  int c[QK];
  uint h;
  __global uchar *b;

  if (i >= nb || !load_block (x + i * QK, v, nonfinite))
    return;
  b = q + i * 18;
  h = symmetric (v, 8, c);
  put_f16 (b, h);
  pack_4bit (c, b + 2);
  if (!want_y)
    return;
  d = f16_to_f32 (h);
  for (int j = 0; j < 16; j++)
    {
      y[i * QK + j] = convert_float ((int) (b[2 + j] & 0x0f) - 8) * d;
      y[i * QK + j + 16] = convert_float ((int) (b[2 + j] >> 4) - 8) * d;
    }
}

__kernel void
quantize_q5_0 (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  float v[QK], d;
  int c[QK];
  uint h, qh;
  __global uchar *b;

  if (i >= nb || !load_block (x + i * QK, v, nonfinite))
    return;
  b = q + i * 22;
  h = symmetric (v, 16, c);
  put_f16 (b, h);
  pack_5bit (c, b + 6, b + 2);
  if (!want_y)
    return;
  d = f16_to_f32 (h);
  qh = (uint) b[2] | (uint) b[3] << 8 | (uint) b[4] << 16 | (uint) b[5] << 24;
  for (int j = 0; j < 16; j++)
    {
      int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
      y[i * QK + j] = convert_float ((((int) b[6 + j] & 0x0f) | h0) - 16) * d;
      y[i * QK + j + 16] = convert_float ((((int) b[6 + j] >> 4) | h1) - 16) * d;
    }
}

__kernel void
quantize_q4_1 (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  float v[QK], d, m;
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
  if (!want_y)
    return;
  d = f16_to_f32 (h.x);
  m = f16_to_f32 (h.y);
  for (int j = 0; j < 16; j++)
    {
      y[i * QK + j] = convert_float ((int) (b[4 + j] & 0x0f)) * d + m;
      y[i * QK + j + 16] = convert_float ((int) (b[4 + j] >> 4)) * d + m;
    }
}

__kernel void
quantize_q5_1 (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  float v[QK], d, m;
  int c[QK];
  uint2 h;
  uint qh;
  __global uchar *b;

  if (i >= nb || !load_block (x + i * QK, v, nonfinite))
    return;
  b = q + i * 24;
  h = asymmetric (v, 31, c);
  put_f16 (b, h.x);
  put_f16 (b + 2, h.y);
  pack_5bit (c, b + 8, b + 4);
  if (!want_y)
    return;
  d = f16_to_f32 (h.x);
  m = f16_to_f32 (h.y);
  qh = (uint) b[4] | (uint) b[5] << 8 | (uint) b[6] << 16 | (uint) b[7] << 24;
  for (int j = 0; j < 16; j++)
    {
      int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
      y[i * QK + j] = convert_float (((int) b[8 + j] & 0x0f) | h0) * d + m;
      y[i * QK + j + 16] = convert_float (((int) b[8 + j] >> 4) | h1) * d + m;
    }
}

/* ---- INTn_Gg: one group per work-item ----------------------------------------
 *
 * As qb-format-int.c's plain rounding: symmetric d = f16 (absmax /
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
              const int group, const int bits, const int asym, const int block_bytes)
{
  long i = get_global_id (0);
  __global const float *xg;
  __global uchar *b, *out;
  int top = (1 << bits) - 1, mid = 1 << (bits - 1), z = mid, hdr = asym ? 3 : 2;
  float d, id, lo_c, hi_c;
  bool finite = true;
  ulong acc = 0;
  int fill = 0;

  if (i >= n_groups)
    return;
  xg = x + i * group;
  b = q + i * block_bytes;
  if (!asym)
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
 * n: codes in L, returns the scale, *the_min the (negated) minimum. */
static float
qkx_quants (const float *x, const float *w, int n, int nmax, float rmin, float rdelta,
            int nstep, uchar *L, float *the_min)
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
      best_mad += w[i] * (diff * diff);
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
          mad += w[i] * (diff * diff);
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

/* Q4_K (nmax 15) and Q5_K (nmax 31): d, dmin, 12 bytes of scales at b;
 * the codes in L. */
static void
k4_superblock (__global const float *xb, int nmax, __global uchar *b, uchar *L)
{
  float scales[8], mins[8], max_scale = 0.0f, max_min = 0.0f, inv_scale, inv_min, d_all, m_all;
  __global uchar *packed = b + 4;

  for (int j = 0; j < 8; j++)
    {
      float x[32], w[32], sum_x2 = 0.0f, av_x;
      for (int i = 0; i < 32; i++)
        x[i] = xb[32 * j + i];
      for (int i = 0; i < 32; i++)
        sum_x2 += x[i] * x[i];
      sum_x2 = sum_x2 / 32.0f;
      av_x = sqrt (sum_x2);
      for (int i = 0; i < 32; i++)
        w[i] = av_x + fabs (x[i]);
      if (nmax == 15)
        scales[j] = qkx_quants (x, w, 32, 15, -1.0f, 0.1f, 20, L + 32 * j, &mins[j]);
      else
        scales[j] = qkx_quants (x, w, 32, 31, -0.5f, 0.1f, 15, L + 32 * j, &mins[j]);
    }

  for (int j = 0; j < 8; j++)
    {
      max_scale = scales[j] > max_scale ? scales[j] : max_scale;
      max_min = mins[j] > max_min ? mins[j] : max_min;
    }
  inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
  inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < 12; j++)
    packed[j] = 0;
  for (int j = 0; j < 8; j++)
    {
      uint ls = (uint) nearest_int_nan (inv_scale * scales[j]) & 0xffu;
      uint lm = (uint) nearest_int_nan (inv_min * mins[j]) & 0xffu;
      put_scale_min_k4 (j, min (63u, ls), min (63u, lm), packed);
    }
  put_f16 (b, f32_to_f16 (max_scale / 63.0f));
  put_f16 (b + 2, f32_to_f16 (max_min / 63.0f));

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

__kernel void
quantize_q4_k (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  __global const float *xb = x + i * QK_K;
  __global uchar *b = q + i * 144, *qs = b + 16;
  uchar L[QK_K];

  if (i >= nb || !superblock_finite (xb, nonfinite))
    return;
  k4_superblock (xb, 15, b, L);
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

__kernel void
quantize_q5_k (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  __global const float *xb = x + i * QK_K;
  __global uchar *b = q + i * 176, *qh = b + 16, *ql = b + 48;
  uchar L[QK_K];

  if (i >= nb || !superblock_finite (xb, nonfinite))
    return;
  k4_superblock (xb, 31, b, L);
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

/* make_qx_quants (rmse_type 1) on a group of 16 with weights x², nmax 32:
 * codes l + 32 in L, returns the scale. */
static float
qx_quants16 (const float *x, uchar *L)
{
  const int nmax = 32;
  float w[16], amax = 0.0f, max = 0.0f, iscale, sumlx, suml2, scale, best, best_iscale;

  for (int i = 0; i < 16; i++)
    {
      float a = fabs (x[i]);
      w[i] = x[i] * x[i];
      if (a > amax)
        {
          amax = a;
          max = x[i];
        }
    }
  if (amax < 1e-15f)
    {
      for (int i = 0; i < 16; i++)
        L[i] = 0;
      return 0.0f;
    }
  iscale = convert_float (-nmax) / max;
  sumlx = suml2 = 0.0f;
  for (int i = 0; i < 16; i++)
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
      for (int i = 0; i < 16; i++)
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
  for (int i = 0; i < 16; i++)
    L[i] = (uchar) (clampi (nearest_int_nan (best_iscale * x[i]), -nmax, nmax - 1) + nmax);
  return scale;
}

__kernel void
quantize_q6_k (__global const float *x, __global uchar *q, __global float *y,
               const long nb, const int want_y, __global int *nonfinite)
{
  long i = get_global_id (0);
  __global const float *xb = x + i * QK_K;
  __global uchar *b = q + i * 210, *ql = b, *qh = b + 128, *dh = b + 208;
  __global char *sc = (__global char *) (b + 192);
  uchar L[QK_K];
  float scales[16], max_scale = 0.0f, max_abs_scale = 0.0f, iscale, d_all;

  if (i >= nb || !superblock_finite (xb, nonfinite))
    return;
  for (int ib = 0; ib < 16; ib++)
    {
      float v[16];
      for (int k = 0; k < 16; k++)
        v[k] = xb[16 * ib + k];
      scales[ib] = qx_quants16 (v, L + 16 * ib);
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
    __global float *yb = y + i * QK_K;
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
