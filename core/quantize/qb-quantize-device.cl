/* SPDX-License-Identifier: MIT */
/* qb-quantize-device.cl — Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and INTn_Gg quantization and the
 * error metrics and histograms, on an OpenCL device, with the CPU's bytes.
 *
 * The same IEEE operations as core/ggml/qb-ggml-quants-legacy.c and
 * core/formats/qb-format-int.c and core/quantize/qb-measure.c, in the same order: no contraction (the
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
