/* SPDX-License-Identifier: MIT */
/* qb-ggml-quants-legacy.c — Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0, bit-exact.
 *
 * Without importance weights ggml rounds each block of 32 against its
 * extreme value; these loops run across the 32 values of a block.  With
 * importance weights it searches the scale (Q4_0, Q5_0) or scale and
 * minimum (Q4_1, Q5_1); eight blocks then share the vector lanes
 * (qb-ggml-search-private.h).
 */
#include "qb-ggml-quants.h"
#include "qb-ggml-search-private.h"

/* ---- a block of 32 as four vectors of 8 ---------------------------------- */

typedef guint8 QbLanesU8 __attribute__ ((vector_size (QB_LANES)));
typedef gint8  QbLanesS8 __attribute__ ((vector_size (QB_LANES)));

static const QbLanesI lane_index = { 0, 1, 2, 3, 4, 5, 6, 7 };

QB_INLINE QbLanes
lanes_max (QbLanes a, QbLanes b)
{
  return qb_lanes_select (a > b, a, b);
}

QB_INLINE QbLanes
lanes_min (QbLanes a, QbLanes b)
{
  return qb_lanes_select (a < b, a, b);
}

/* Largest lane.  Maxima and minima are exact in any order (no NaN). */
QB_INLINE float
lanes_hmax (QbLanes v)
{
  v = lanes_max (v, __builtin_shuffle (v, (QbLanesI) { 4, 5, 6, 7, 0, 1, 2, 3 }));
  v = lanes_max (v, __builtin_shuffle (v, (QbLanesI) { 2, 3, 0, 1, 6, 7, 4, 5 }));
  v = lanes_max (v, __builtin_shuffle (v, (QbLanesI) { 1, 0, 3, 2, 5, 4, 7, 6 }));
  return v[0];
}

QB_INLINE float
lanes_hmin (QbLanes v)
{
  v = lanes_min (v, __builtin_shuffle (v, (QbLanesI) { 4, 5, 6, 7, 0, 1, 2, 3 }));
  v = lanes_min (v, __builtin_shuffle (v, (QbLanesI) { 2, 3, 0, 1, 6, 7, 4, 5 }));
  v = lanes_min (v, __builtin_shuffle (v, (QbLanesI) { 1, 0, 3, 2, 5, 4, 7, 6 }));
  return v[0];
}

QB_INLINE QbLanesI
lanes_mini (QbLanesI a, QbLanesI b)
{
  return qb_lanes_selecti (a < b, a, b);
}

QB_INLINE int
lanes_hmini (QbLanesI v)
{
  v = lanes_mini (v, __builtin_shuffle (v, (QbLanesI) { 4, 5, 6, 7, 0, 1, 2, 3 }));
  v = lanes_mini (v, __builtin_shuffle (v, (QbLanesI) { 2, 3, 0, 1, 6, 7, 4, 5 }));
  v = lanes_mini (v, __builtin_shuffle (v, (QbLanesI) { 1, 0, 3, 2, 5, 4, 7, 6 }));
  return v[0];
}

QB_INLINE guint32
lanes_hor (QbLanesI v)
{
  guint32 r = 0;
  for (int b = 0; b < QB_LANES; b++)
    r |= (guint32) v[b];
  return r;
}

QB_INLINE void
block_load (const float *x, QbLanes *v)
{
  memcpy (v, x, 4 * sizeof (QbLanes));
}

QB_INLINE float
block_absmax (const QbLanes *v)
{
  QbLanes m = lanes_max (lanes_max (qb_lanes_abs (v[0]), qb_lanes_abs (v[1])),
                         lanes_max (qb_lanes_abs (v[2]), qb_lanes_abs (v[3])));
  return lanes_hmax (m);
}

/* ggml's own scan: a NaN never compares greater, so it is skipped. */
static float
scan_signed_max (const float *x)
{
  float amax = 0.0f, max = 0.0f;

  for (int j = 0; j < QB_QK; j++)
    if (amax < fabsf (x[j]))
      {
        amax = fabsf (x[j]);
        max = x[j];
      }
  return max;
}

QB_INLINE gboolean
block_has_nan (const QbLanes *v)
{
  return lanes_hor ((v[0] != v[0]) | (v[1] != v[1]) | (v[2] != v[2]) | (v[3] != v[3])) != 0;
}

/* The value of largest magnitude, the first one on ties, 0 for a zero block
 * (ggml's scan starts from +0 and replaces it only on a strict increase).
 * A block holding a NaN takes the scan: the lane maxima would carry the
 * NaN (or drop a lane) and no value would equal it. */
QB_INLINE float
block_signed_max (const float *x, const QbLanes *v)
{
  float amax = block_absmax (v);
  QbLanesI first = (QbLanesI) { 0 } + QB_QK;

  if (G_UNLIKELY (block_has_nan (v)))
    return scan_signed_max (x);
  if (amax == 0)
    return 0.0f;
  for (int k = 3; k >= 0; k--)
    first = qb_lanes_selecti (qb_lanes_abs (v[k]) == amax, lane_index + 8 * k, first);
  return x[lanes_hmini (first)];
}

static float
first_zero (const float *x)
{
  for (int j = 0; j < QB_QK; j++)
    if (x[j] == 0)
      return x[j];
  return 0.0f;
}

/* Minimum and maximum of a block.  The values do not depend on the order,
 * but the sign of a zero does: when an extreme is ±0, take the first one as
 * ggml's sequential scan does. */
QB_INLINE void
block_min_max (const float *x, const QbLanes *v, float *min_out, float *max_out)
{
  float mn = lanes_hmin (lanes_min (lanes_min (v[0], v[1]), lanes_min (v[2], v[3])));
  float mx = lanes_hmax (lanes_max (lanes_max (v[0], v[1]), lanes_max (v[2], v[3])));

  *min_out = mn == 0 ? first_zero (x) : mn;
  *max_out = mx == 0 ? first_zero (x) : mx;
}

/* roundf (v): truncate, then step away from zero when the dropped fraction
 * is at least one half (masks are -1).  v - trunc (v) is exact.  NaN and
 * values beyond int (a block so small that 1/d overflowed) convert to
 * INT_MIN, as in ggml's x86 build, and stay there: its low byte is 0. */
QB_INLINE QbLanesI
lanes_round_half_away (QbLanes v)
{
  QbLanesI t = __builtin_convertvector (v, QbLanesI);
  QbLanes f = v - qb_lanes_float (t);
  QbLanesI in_range = t != G_MININT32;
  return t - ((f >= 0.5f) & in_range) + ((f <= -0.5f) & in_range);
}

/* Truncation toward zero of v, cut at top (codes are never negative). */
QB_INLINE QbLanesI
lanes_code (QbLanes v, int top)
{
  QbLanesI c = __builtin_convertvector (v, QbLanesI);
  return qb_lanes_selecti (c > top, (QbLanesI) { 0 } + top, c);
}

QB_INLINE void
store_bytes (guint8 *p, QbLanesI v)
{
  QbLanesU8 b = __builtin_convertvector (v, QbLanesU8);
  memcpy (p, &b, sizeof b);
}

static void
put_u32_le (guint8 *p, guint32 v)
{
  p[0] = v & 0xff;
  p[1] = (v >> 8) & 0xff;
  p[2] = (v >> 16) & 0xff;
  p[3] = v >> 24;
}

static guint32
get_u32_le (const guint8 *p)
{
  return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

/* Codes c[k] (values 8k..8k+7) two to a byte: value j low, j + 16 high. */
QB_INLINE void
pack_4bit (const QbLanesI *c, guint8 *qs)
{
  store_bytes (qs, c[0] | c[2] << 4);
  store_bytes (qs + 8, c[1] | c[3] << 4);
}

/* Low nibbles into qs, fifth bits into the 32-bit mask qh. */
QB_INLINE void
pack_5bit (const QbLanesI *c, guint8 *qs, guint8 *qh)
{
  QbLanesI h = { 0 }, low[4];

  for (int k = 0; k < 4; k++)
    {
      h |= ((c[k] >> 4) & 1) << (lane_index + 8 * k);
      low[k] = c[k] & 0x0f;
    }
  pack_4bit (low, qs);
  put_u32_le (qh, lanes_hor (h));
}

/* ---- rounding against the block extreme (no importance) ------------------
 *
 * Blocks go in batches of eight: first the extremes of each block, then the
 * eight scales, their inverses and their f16 bits in vector lanes, then the
 * codes.  Batching keeps the two divisions per block off the critical path.
 */

/* Inverse scale as ggml takes it: 1/d, or 0 for d = 0. */
QB_INLINE QbLanes
lanes_inverse (QbLanes d)
{
  return qb_lanes_select (d != 0.0f, 1.0f / d, (QbLanes) { 0 });
}

QB_KERNEL static void
q8_0_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ8_0 *y = vy;

  for (gint64 i = 0; i < nb; i += QB_LANES, x += QB_LANES * QB_QK)
    {
      int n = (int) MIN (QB_LANES, nb - i);
      QbLanes v[4], amax = { 0 }, d, id;
      QbLanesI h;

      for (int b = 0; b < n; b++)
        {
          block_load (x + b * QB_QK, v);
          amax[b] = block_absmax (v);
        }
      d = amax / 127.0f;
      id = lanes_inverse (d);
      h = qb_lanes_fp16_bits (d);
      for (int b = 0; b < n; b++)
        {
          qb_put_f16_bits (y[i + b].d, h[b]);
          block_load (x + b * QB_QK, v);
          for (int k = 0; k < 4; k++)
            {
              QbLanesS8 q = __builtin_convertvector (lanes_round_half_away (v[k] * id[b]), QbLanesS8);
              memcpy (y[i + b].qs + 8 * k, &q, sizeof q);
            }
        }
    }
}

/* Q4_0 and Q5_0: d = max / -2^(bits-1), codes (x/d + offset + 0.5) cut at
 * the top code.  Stores d and leaves block b's codes in c[4 b..4 b + 3]. */
QB_INLINE void
symmetric_batch (const float *x, int n, int half, guint8 *y, gsize block_bytes, QbLanesI *c)
{
  QbLanes v[4], max = { 0 }, d, id;
  QbLanesI h;

  for (int b = 0; b < n; b++)
    {
      block_load (x + b * QB_QK, v);
      max[b] = block_signed_max (x + b * QB_QK, v);
    }
  d = max / (float) -half;
  id = lanes_inverse (d);
  h = qb_lanes_fp16_bits (d);
  for (int b = 0; b < n; b++)
    {
      qb_put_f16_bits (y + b * block_bytes, h[b]);
      block_load (x + b * QB_QK, v);
      for (int k = 0; k < 4; k++)
        c[4 * b + k] = lanes_code (v[k] * id[b] + (half + 0.5f), 2 * half - 1);
    }
}

QB_KERNEL static void
q4_0_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ4_0 *y = vy;

  for (gint64 i = 0; i < nb; i += QB_LANES, x += QB_LANES * QB_QK)
    {
      int n = (int) MIN (QB_LANES, nb - i);
      QbLanesI c[4 * QB_LANES];

      symmetric_batch (x, n, 8, y[i].d, sizeof (QbBlockQ4_0), c);
      for (int b = 0; b < n; b++)
        pack_4bit (c + 4 * b, y[i + b].qs);
    }
}

/* ---- Q8_0 and Q4_0 in AVX2 intrinsics -------------------------------------
 *
 * The two formats the engine is asked to run at memory speed.  The same
 * float operations as q8_0_ref and q4_0_ref, arranged for AVX2: the
 * extremes of eight blocks come out of one transposed reduction, and
 * round-half-away-from-zero is trunc (v + copysign (0.49999997, v)),
 * which equals roundf (v) for every |v| <= 2^23 (checked exhaustively);
 * codes here are within 128.  Batches holding NaN, infinities or blocks
 * so small that 1/d overflows go to the portable kernels, which define
 * what happens then. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define QB_AVX2 __attribute__ ((target ("avx2,f16c")))

/* Lane b: the maximum of the lanes of m[b].  On non-negative floats as
 * integers, so the maximum is exact and a NaN (above infinity) wins. */
QB_AVX2 static inline __m256i
pairwise_max (__m256i a, __m256i b)
{
  __m256 fa = _mm256_castsi256_ps (a), fb = _mm256_castsi256_ps (b);
  __m256i even = _mm256_castps_si256 (_mm256_shuffle_ps (fa, fb, _MM_SHUFFLE (2, 0, 2, 0)));
  __m256i odd = _mm256_castps_si256 (_mm256_shuffle_ps (fa, fb, _MM_SHUFFLE (3, 1, 3, 1)));
  return _mm256_max_epi32 (even, odd);
}

QB_AVX2 static inline __m256i
transpose_max (const __m256i *m)
{
  __m256i a = pairwise_max (pairwise_max (m[0], m[1]), pairwise_max (m[2], m[3]));
  __m256i b = pairwise_max (pairwise_max (m[4], m[5]), pairwise_max (m[6], m[7]));
  return _mm256_max_epi32 (_mm256_permute2x128_si256 (a, b, 0x20),
                           _mm256_permute2x128_si256 (a, b, 0x31));
}

/* |x| of eight blocks of 32: their bits, and the largest of each block. */
QB_AVX2 static inline __m256i
batch_absmax_bits (const float *x)
{
  const __m256i abs_mask = _mm256_set1_epi32 (0x7fffffff);
  __m256i m[8];

  for (int b = 0; b < 8; b++)
    {
      const float *p = x + b * QB_QK;
      __m256i a0 = _mm256_and_si256 (_mm256_loadu_si256 ((const __m256i *) p), abs_mask);
      __m256i a1 = _mm256_and_si256 (_mm256_loadu_si256 ((const __m256i *) (p + 8)), abs_mask);
      __m256i a2 = _mm256_and_si256 (_mm256_loadu_si256 ((const __m256i *) (p + 16)), abs_mask);
      __m256i a3 = _mm256_and_si256 (_mm256_loadu_si256 ((const __m256i *) (p + 24)), abs_mask);
      m[b] = _mm256_max_epi32 (_mm256_max_epi32 (a0, a1), _mm256_max_epi32 (a2, a3));
    }
  return transpose_max (m);
}

/* FALSE when a block is not finite, or nonzero but under 2^-100 (its
 * inverse scale could overflow): the portable kernel takes the batch. */
QB_AVX2 static inline gboolean
batch_is_plain (__m256i amax_bits)
{
  __m256i big = _mm256_cmpgt_epi32 (amax_bits, _mm256_set1_epi32 (0x7f7fffff));
  __m256i tiny = _mm256_andnot_si256 (_mm256_cmpeq_epi32 (amax_bits, _mm256_setzero_si256 ()),
                                      _mm256_cmpgt_epi32 (_mm256_set1_epi32 (0x0d800000), amax_bits));
  return _mm256_testz_si256 (_mm256_or_si256 (big, tiny), _mm256_set1_epi32 (-1));
}

/* 1/d, or 0 for d = 0, as lanes_inverse. */
QB_AVX2 static inline __m256
inverse_or_zero (__m256 d)
{
  __m256 nonzero = _mm256_cmp_ps (d, _mm256_setzero_ps (), _CMP_NEQ_OQ);
  return _mm256_and_ps (nonzero, _mm256_div_ps (_mm256_set1_ps (1.0f), d));
}

/* The f16 bits of the eight scales into the blocks (round to nearest
 * even, as qb_lanes_fp16_bits for finite values). */
QB_AVX2 static inline void
store_scales (__m256 d, guint8 *y, gsize block_bytes)
{
  guint16 h[8];

  _mm_storeu_si128 ((__m128i *) h, _mm256_cvtps_ph (d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (int b = 0; b < 8; b++)
    qb_put_f16_bits (y + b * block_bytes, h[b]);
}

QB_AVX2 static inline __m256i
round_half_away (__m256 v)
{
  const __m256 sign = _mm256_set1_ps (-0.0f), almost_half = _mm256_set1_ps (0.49999997f);
  return _mm256_cvttps_epi32 (_mm256_add_ps (v, _mm256_or_ps (_mm256_and_ps (v, sign), almost_half)));
}

/* The scales of a batch of eight blocks.  The kernels work out the next
 * batch's scales before the current batch's codes, so that the two
 * dependent divisions overlap the codes' work instead of stalling it. */
typedef struct {
  gboolean plain;     /* FALSE: the portable kernel takes the batch */
  __m256   d;
  __m256   id;
} BatchScales;

QB_AVX2 static inline BatchScales
q8_0_scales (const float *x)
{
  __m256i amax = batch_absmax_bits (x);
  BatchScales s = { batch_is_plain (amax) };

  s.d = _mm256_div_ps (_mm256_castsi256_ps (amax), _mm256_set1_ps (127.0f));
  s.id = inverse_or_zero (s.d);
  return s;
}

QB_AVX2 static inline void
q8_0_codes (const float *x, guint8 *vy, BatchScales sc)
{
  QbBlockQ8_0 *y = (QbBlockQ8_0 *) vy;
  const __m256i order = _mm256_setr_epi32 (0, 4, 1, 5, 2, 6, 3, 7);
  float ids[8];

  store_scales (sc.d, y[0].d, sizeof (QbBlockQ8_0));
  _mm256_storeu_ps (ids, sc.id);
  for (int b = 0; b < 8; b++)
    {
      const float *p = x + b * QB_QK;
      __m256 s = _mm256_set1_ps (ids[b]);
      __m256i q0 = round_half_away (_mm256_mul_ps (_mm256_loadu_ps (p), s));
      __m256i q1 = round_half_away (_mm256_mul_ps (_mm256_loadu_ps (p + 8), s));
      __m256i q2 = round_half_away (_mm256_mul_ps (_mm256_loadu_ps (p + 16), s));
      __m256i q3 = round_half_away (_mm256_mul_ps (_mm256_loadu_ps (p + 24), s));
      /* packs work within 128-bit halves: the permute puts the dwords of
       * bytes back in order. */
      __m256i q = _mm256_packs_epi16 (_mm256_packs_epi32 (q0, q1), _mm256_packs_epi32 (q2, q3));
      _mm256_storeu_si256 ((__m256i *) y[b].qs, _mm256_permutevar8x32_epi32 (q, order));
    }
}

/* Batches of eight blocks, each batch's scales worked out one batch ahead
 * (see BatchScales); batches the fast path cannot take, and the last
 * blocks short of a batch, go to the portable kernel.  Inlined into each
 * format's kernel, so the calls through the pointers are direct. */
typedef BatchScales (*BatchScalesFunc) (const float *x);
typedef void        (*BatchCodesFunc)  (const float *x, guint8 *y, BatchScales sc);
typedef void        (*BlockKernelFunc) (const float *x, void *y, gint64 nb);

QB_AVX2 static inline __attribute__ ((always_inline)) void
run_batches (const float *x, guint8 *y, gint64 nb, gsize block_bytes,
             BatchScalesFunc scales, BatchCodesFunc codes, BlockKernelFunc portable)
{
  gint64 n8 = nb / 8;
  BatchScales cur, next;

  if (n8 > 0)
    cur = scales (x);
  for (gint64 k = 0; k < n8; k++)
    {
      const float *xk = x + k * 8 * QB_QK;
      guint8 *yk = y + k * 8 * block_bytes;

      if (k + 1 < n8)
        next = scales (xk + 8 * QB_QK);
      if (cur.plain)
        codes (xk, yk, cur);
      else
        portable (xk, yk, 8);
      cur = next;
    }
  if (8 * n8 < nb)
    portable (x + 8 * n8 * QB_QK, y + 8 * n8 * block_bytes, nb - 8 * n8);
}

QB_AVX2 static void
q8_0_avx2 (const float *x, void *y, gint64 nb)
{
  run_batches (x, y, nb, sizeof (QbBlockQ8_0), q8_0_scales, q8_0_codes, q8_0_ref);
}

/* Lane b: the largest and the smallest value of block b (no NaN here). */
QB_AVX2 static inline __m256
pairwise_max_ps (__m256 a, __m256 b)
{
  return _mm256_max_ps (_mm256_shuffle_ps (a, b, _MM_SHUFFLE (2, 0, 2, 0)),
                        _mm256_shuffle_ps (a, b, _MM_SHUFFLE (3, 1, 3, 1)));
}

QB_AVX2 static inline __m256
pairwise_min_ps (__m256 a, __m256 b)
{
  return _mm256_min_ps (_mm256_shuffle_ps (a, b, _MM_SHUFFLE (2, 0, 2, 0)),
                        _mm256_shuffle_ps (a, b, _MM_SHUFFLE (3, 1, 3, 1)));
}

/* Also sets *nan when a block holds a NaN (max and min may pass over
 * one). */
QB_AVX2 static inline void
batch_max_min (const float *x, __m256 *max_out, __m256 *min_out, gboolean *nan)
{
  __m256 mx[8], mn[8], a, b, unordered = _mm256_setzero_ps ();

  for (int k = 0; k < 8; k++)
    {
      const float *p = x + k * QB_QK;
      __m256 v0 = _mm256_loadu_ps (p), v1 = _mm256_loadu_ps (p + 8);
      __m256 v2 = _mm256_loadu_ps (p + 16), v3 = _mm256_loadu_ps (p + 24);
      mx[k] = _mm256_max_ps (_mm256_max_ps (v0, v1), _mm256_max_ps (v2, v3));
      mn[k] = _mm256_min_ps (_mm256_min_ps (v0, v1), _mm256_min_ps (v2, v3));
      unordered = _mm256_or_ps (unordered, _mm256_or_ps (_mm256_cmp_ps (v0, v1, _CMP_UNORD_Q),
                                                         _mm256_cmp_ps (v2, v3, _CMP_UNORD_Q)));
    }
  a = pairwise_max_ps (pairwise_max_ps (mx[0], mx[1]), pairwise_max_ps (mx[2], mx[3]));
  b = pairwise_max_ps (pairwise_max_ps (mx[4], mx[5]), pairwise_max_ps (mx[6], mx[7]));
  *max_out = _mm256_max_ps (_mm256_permute2f128_ps (a, b, 0x20), _mm256_permute2f128_ps (a, b, 0x31));
  a = pairwise_min_ps (pairwise_min_ps (mn[0], mn[1]), pairwise_min_ps (mn[2], mn[3]));
  b = pairwise_min_ps (pairwise_min_ps (mn[4], mn[5]), pairwise_min_ps (mn[6], mn[7]));
  *min_out = _mm256_min_ps (_mm256_permute2f128_ps (a, b, 0x20), _mm256_permute2f128_ps (a, b, 0x31));
  *nan = _mm256_movemask_ps (unordered) != 0;
}

/* The first value of block b whose magnitude is the block's largest. */
QB_AVX2 static float
first_extreme (const float *p, gint32 amax_bits)
{
  const __m256i abs_mask = _mm256_set1_epi32 (0x7fffffff);
  __m256i target = _mm256_set1_epi32 (amax_bits);
  guint32 hits = 0;

  for (int k = 3; k >= 0; k--)
    {
      __m256i v = _mm256_and_si256 (_mm256_loadu_si256 ((const __m256i *) (p + 8 * k)), abs_mask);
      hits = hits << 8 | (guint32) _mm256_movemask_ps (_mm256_castsi256_ps (_mm256_cmpeq_epi32 (v, target)));
    }
  return p[__builtin_ctz (hits)];
}

/* The value of largest magnitude of each block, the first one on ties, 0
 * for a zero block (as block_signed_max).  The sign comes from the block's
 * maximum and minimum; only a block holding both +amax and -amax needs
 * the scan for the first. */
QB_AVX2 static inline __m256
batch_signed_max (const float *x, __m256i amax_bits, __m256 mx, __m256 mn)
{
  __m256 amax = _mm256_castsi256_ps (amax_bits), neg_amax, pos, neg, ties;
  int tie_mask;

  neg_amax = _mm256_xor_ps (amax, _mm256_set1_ps (-0.0f));
  pos = _mm256_cmp_ps (mx, amax, _CMP_EQ_OQ);
  neg = _mm256_cmp_ps (mn, neg_amax, _CMP_EQ_OQ);
  ties = _mm256_and_ps (_mm256_and_ps (pos, neg),
                        _mm256_cmp_ps (amax, _mm256_setzero_ps (), _CMP_NEQ_OQ));
  /* +amax unless only -amax occurs; +0 for a zero block. */
  amax = _mm256_blendv_ps (amax, neg_amax, _mm256_andnot_ps (pos, neg));
  tie_mask = _mm256_movemask_ps (ties);
  if (G_UNLIKELY (tie_mask != 0))
    {
      gint32 bits[8];
      float max[8];

      _mm256_storeu_si256 ((__m256i *) bits, amax_bits);
      _mm256_storeu_ps (max, amax);
      for (int b = 0; b < 8; b++)
        if (tie_mask & (1 << b))
          max[b] = first_extreme (x + b * QB_QK, bits[b]);
      amax = _mm256_loadu_ps (max);
    }
  return amax;
}

/* The largest magnitude is max (max, -min): no pass over |x| needed
 * (a NaN anywhere sends the batch to the portable kernel). */
QB_AVX2 static inline BatchScales
q4_0_scales (const float *x)
{
  __m256 mx, mn;
  __m256i amax;
  gboolean nan;
  BatchScales s;

  batch_max_min (x, &mx, &mn, &nan);
  /* (and +0, not -0, for a block of +0: clear the sign) */
  amax = _mm256_castps_si256 (_mm256_andnot_ps (_mm256_set1_ps (-0.0f),
                                                _mm256_max_ps (mx, _mm256_xor_ps (mn, _mm256_set1_ps (-0.0f)))));
  s.plain = !nan && batch_is_plain (amax);
  if (!s.plain)
    return s;
  s.d = _mm256_div_ps (batch_signed_max (x, amax, mx, mn), _mm256_set1_ps (-8.0f));
  s.id = inverse_or_zero (s.d);
  return s;
}

QB_AVX2 static inline void
q4_0_codes (const float *x, guint8 *vy, BatchScales sc)
{
  QbBlockQ4_0 *y = (QbBlockQ4_0 *) vy;
  const __m256 offset = _mm256_set1_ps (8.5f);
  const __m256i top = _mm256_set1_epi8 (15);
  const __m256i order = _mm256_setr_epi32 (0, 4, 1, 5, 2, 6, 3, 7);
  float ids[8];

  store_scales (sc.d, y[0].d, sizeof (QbBlockQ4_0));
  _mm256_storeu_ps (ids, sc.id);
  for (int b = 0; b < 8; b++)
    {
      const float *p = x + b * QB_QK;
      __m256 s = _mm256_set1_ps (ids[b]);
      __m256i c[4], b16, nib;

      /* Truncation toward zero of x/d + 8.5 (0 to 16 here), as lanes_code. */
      for (int k = 0; k < 4; k++)
        c[k] = _mm256_cvttps_epi32 (_mm256_add_ps (_mm256_mul_ps (_mm256_loadu_ps (p + 8 * k), s), offset));
      /* Packed to bytes, each 128-bit half holds values 0-3, 8-11 | 16-19,
       * 24-27 (low half) and 4-7, 12-15 | 20-23, 28-31 (high half); one
       * byte minimum cuts them all at 15. */
      b16 = _mm256_min_epu8 (_mm256_packus_epi16 (_mm256_packs_epi32 (c[0], c[1]),
                                                  _mm256_packs_epi32 (c[2], c[3])), top);
      /* Byte j: value j low, value j + 16 high; the dwords put back in order. */
      nib = _mm256_or_si256 (b16, _mm256_slli_epi16 (_mm256_srli_si256 (b16, 8), 4));
      nib = _mm256_permutevar8x32_epi32 (nib, order);
      _mm_storeu_si128 ((__m128i *) y[b].qs, _mm256_castsi256_si128 (nib));
    }
}

QB_AVX2 static void
q4_0_avx2 (const float *x, void *y, gint64 nb)
{
  run_batches (x, y, nb, sizeof (QbBlockQ4_0), q4_0_scales, q4_0_codes, q4_0_ref);
}
#endif

/* The AVX2 kernels where the CPU has them. */
static void
q8_0_best (const float *x, void *y, gint64 nb)
{
#if defined(__x86_64__) && defined(__GNUC__)
  if (qb_cpu_has_avx2 ())
    {
      q8_0_avx2 (x, y, nb);
      return;
    }
#endif
  q8_0_ref (x, y, nb);
}

static void
q4_0_best (const float *x, void *y, gint64 nb)
{
#if defined(__x86_64__) && defined(__GNUC__)
  if (qb_cpu_has_avx2 ())
    {
      q4_0_avx2 (x, y, nb);
      return;
    }
#endif
  q4_0_ref (x, y, nb);
}

/* (plain functions: the address of a cloned kernel is its resolver's) */
static void
q8_0_portable (const float *x, void *y, gint64 nb)
{
  q8_0_ref (x, y, nb);
}

static void
q4_0_portable (const float *x, void *y, gint64 nb)
{
  q4_0_ref (x, y, nb);
}

gboolean
qb_ggml_block_kernels (QbDType dtype, QbBlockKernel *portable, QbBlockKernel *selected)
{
  switch (dtype)
    {
    case QB_DTYPE_Q8_0:
      *portable = q8_0_portable;
      *selected = q8_0_best;
      return TRUE;
    case QB_DTYPE_Q4_0:
      *portable = q4_0_portable;
      *selected = q4_0_best;
      return TRUE;
    default:
      return FALSE;
    }
}

QB_KERNEL static void
q5_0_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ5_0 *y = vy;

  for (gint64 i = 0; i < nb; i += QB_LANES, x += QB_LANES * QB_QK)
    {
      int n = (int) MIN (QB_LANES, nb - i);
      QbLanesI c[4 * QB_LANES];

      symmetric_batch (x, n, 16, y[i].d, sizeof (QbBlockQ5_0), c);
      for (int b = 0; b < n; b++)
        pack_5bit (c + 4 * b, y[i + b].qs, y[i + b].qh);
    }
}

/* Q4_1 and Q5_1: d = (max - min) / nmax, m = min.  (ggml does not cut
 * Q5_1's codes at 31, but (x - min) / d never reaches 31.5, so the cut
 * changes nothing.)  Stores d and m (the first two halves of the block). */
QB_INLINE void
asymmetric_batch (const float *x, int n, int nmax, guint8 *y, gsize block_bytes, QbLanesI *c)
{
  QbLanes v[4], min = { 0 }, max = { 0 }, d, id;
  QbLanesI hd, hm;

  for (int b = 0; b < n; b++)
    {
      block_load (x + b * QB_QK, v);
      block_min_max (x + b * QB_QK, v, &min[b], &max[b]);
    }
  d = (max - min) / (float) nmax;
  id = lanes_inverse (d);
  hd = qb_lanes_fp16_bits (d);
  hm = qb_lanes_fp16_bits (min);
  for (int b = 0; b < n; b++)
    {
      qb_put_f16_bits (y + b * block_bytes, hd[b]);
      qb_put_f16_bits (y + b * block_bytes + 2, hm[b]);
      block_load (x + b * QB_QK, v);
      for (int k = 0; k < 4; k++)
        c[4 * b + k] = lanes_code ((v[k] - min[b]) * id[b] + 0.5f, nmax);
    }
}

QB_KERNEL static void
q4_1_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ4_1 *y = vy;

  for (gint64 i = 0; i < nb; i += QB_LANES, x += QB_LANES * QB_QK)
    {
      int n = (int) MIN (QB_LANES, nb - i);
      QbLanesI c[4 * QB_LANES];

      asymmetric_batch (x, n, 15, y[i].d, sizeof (QbBlockQ4_1), c);
      for (int b = 0; b < n; b++)
        pack_4bit (c + 4 * b, y[i + b].qs);
    }
}

QB_KERNEL static void
q5_1_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ5_1 *y = vy;

  for (gint64 i = 0; i < nb; i += QB_LANES, x += QB_LANES * QB_QK)
    {
      int n = (int) MIN (QB_LANES, nb - i);
      QbLanesI c[4 * QB_LANES];

      asymmetric_batch (x, n, 31, y[i].d, sizeof (QbBlockQ5_1), c);
      for (int b = 0; b < n; b++)
        pack_5bit (c + 4 * b, y[i + b].qs, y[i + b].qh);
    }
}

/* ---- importance-weighted search ------------------------------------------ */

/* Per value weight of ggml's legacy imatrix paths: qw · sqrt(σ² + x²),
 * σ² the mean square of the whole row. */
QB_INLINE void
lanes_weights (const QbLanes *xt, const float *qw, float sigma2, int n_groups, QbLanes *wt)
{
  for (int j = 0; j < QB_QK; j++)
    {
      float w[QB_LANES];
      for (int b = 0; b < QB_LANES; b++)
        w[b] = b < n_groups ? qw[b * QB_QK + j] * sqrtf (sigma2 + xt[j][b] * xt[j][b]) : 0.0f;
      memcpy (&wt[j], w, sizeof w);
    }
}

typedef void (*StoreBlockFunc) (guint8 *block, const QbLanesI *c, float d, float m);

static void
store_q4_0 (guint8 *block, const QbLanesI *c, float d, float m)
{
  QbBlockQ4_0 *y = (QbBlockQ4_0 *) block;
  qb_put_f16 (y->d, d);
  pack_4bit (c, y->qs);
}

static void
store_q5_0 (guint8 *block, const QbLanesI *c, float d, float m)
{
  QbBlockQ5_0 *y = (QbBlockQ5_0 *) block;
  qb_put_f16 (y->d, d);
  pack_5bit (c, y->qs, y->qh);
}

static void
store_q4_1 (guint8 *block, const QbLanesI *c, float d, float m)
{
  QbBlockQ4_1 *y = (QbBlockQ4_1 *) block;
  qb_put_f16 (y->d, d);
  qb_put_f16 (y->m, m);
  pack_4bit (c, y->qs);
}

static void
store_q5_1 (guint8 *block, const QbLanesI *c, float d, float m)
{
  QbBlockQ5_1 *y = (QbBlockQ5_1 *) block;
  qb_put_f16 (y->d, d);
  qb_put_f16 (y->m, m);
  pack_5bit (c, y->qs, y->qh);
}

/* One row with importance weights: symmetric formats search with
 * make_qx_quants (nmax = 8 or 16), asymmetric ones with make_qkx3_quants
 * (nmax = 15 or 31, 37 candidates from -0.9 in steps of 0.05). */
QB_KERNEL static void
legacy_row_weighted (const float *x, guint8 *y, gint64 n, const float *qw,
                     int nmax, gboolean asymmetric, gsize block_bytes, StoreBlockFunc store)
{
  float sigma2 = qb_sum_squares (x, n) / n;

  for (gint64 ib = 0; ib < n / QB_QK; ib += QB_LANES)
    {
      int n_groups = (int) MIN (QB_LANES, n / QB_QK - ib);
      QbLanes xt[QB_QK], wt[QB_QK], scale, the_min = { 0 };
      QbLanesI Lt[QB_QK];

      /* Spare lanes hold zero groups, which the searches pass over. */
      qb_lanes_load (x + ib * QB_QK, QB_QK, QB_QK, n_groups, xt);
      lanes_weights (xt, qw + ib * QB_QK, sigma2, n_groups, wt);
      if (asymmetric)
        scale = qb_lanes_qkx_quants (xt, wt, QB_QK, nmax, -0.9f, 0.05f, 36, FALSE, Lt, &the_min);
      else
        scale = qb_lanes_qx_quants (xt, wt, QB_QK, nmax, Lt);

      for (int b = 0; b < n_groups; b++)
        {
          QbLanesI c[4];
          for (int k = 0; k < 4; k++)
            for (int l = 0; l < QB_LANES; l++)
              c[k][l] = Lt[8 * k + l][b];
          store (y + (ib + b) * block_bytes, c, scale[b], -the_min[b]);
        }
    }
}

/* ---- entry points -------------------------------------------------------- */

typedef void (*RefFunc) (const float *x, void *y, gint64 nb);

static gsize
quantize_legacy (const float *src, void *dst, gint64 n_rows, gint64 n_per_row,
                 const float *imatrix, gsize block_bytes, RefFunc ref,
                 int nmax, gboolean asymmetric, StoreBlockFunc store)
{
  gsize row_bytes = (gsize) (n_per_row / QB_QK) * block_bytes;

  g_return_val_if_fail (n_per_row % QB_QK == 0, 0);
  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *x = src + r * n_per_row;
      guint8 *y = (guint8 *) dst + r * row_bytes;

      if (imatrix == NULL || store == NULL)
        ref (x, y, n_per_row / QB_QK);
      else
        legacy_row_weighted (x, y, n_per_row, imatrix, nmax, asymmetric, block_bytes, store);
    }
  return (gsize) n_rows * row_bytes;
}

gsize
qb_quantize_q4_0 (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  return quantize_legacy (src, dst, n_rows, n_per_row, imatrix, sizeof (QbBlockQ4_0),
                          q4_0_best, 8, FALSE, store_q4_0);
}

gsize
qb_quantize_q5_0 (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  return quantize_legacy (src, dst, n_rows, n_per_row, imatrix, sizeof (QbBlockQ5_0),
                          q5_0_ref, 16, FALSE, store_q5_0);
}

gsize
qb_quantize_q4_1 (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  return quantize_legacy (src, dst, n_rows, n_per_row, imatrix, sizeof (QbBlockQ4_1),
                          q4_1_ref, 15, TRUE, store_q4_1);
}

gsize
qb_quantize_q5_1 (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  return quantize_legacy (src, dst, n_rows, n_per_row, imatrix, sizeof (QbBlockQ5_1),
                          q5_1_ref, 31, TRUE, store_q5_1);
}

/* Q8_0 has no weighted path in ggml: importance is ignored. */
gsize
qb_quantize_q8_0 (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  return quantize_legacy (src, dst, n_rows, n_per_row, NULL, sizeof (QbBlockQ8_0),
                          q8_0_best, 0, FALSE, NULL);
}

/* ---- blocks with a given scale (for searches) ------------------------------ */

void
qb_ggml_encode_block (QbDType dtype, const float *x, float d, float m, void *block)
{
  QbBlockQ4_0 *q = block;   /* every legacy block starts with its f16 d */
  QbLanes v[4];
  QbLanesI c[4];
  int lo = 0, hi = 15, offset = 8;
  float dd, mm = 0, id;

  qb_put_f16 (q->d, d);
  dd = qb_get_f16 (q->d);
  id = dd != 0 ? 1.0f / dd : 0.0f;
  if (dtype == QB_DTYPE_Q4_1 || dtype == QB_DTYPE_Q5_1)
    {
      qb_put_f16 (((QbBlockQ4_1 *) block)->m, m);
      mm = qb_get_f16 (((QbBlockQ4_1 *) block)->m);
      offset = 0;
      hi = dtype == QB_DTYPE_Q4_1 ? 15 : 31;
    }
  else if (dtype == QB_DTYPE_Q5_0)
    hi = 31, offset = 16;
  else if (dtype == QB_DTYPE_Q8_0)
    lo = -128, hi = 127, offset = 0;

  block_load (x, v);
  for (int k = 0; k < 4; k++)
    c[k] = qb_lanes_clamp (qb_lanes_nearest_int ((v[k] - mm) * id) + offset, lo, hi);

  switch (dtype)
    {
    case QB_DTYPE_Q4_0:
      pack_4bit (c, q->qs);
      break;
    case QB_DTYPE_Q4_1:
      pack_4bit (c, ((QbBlockQ4_1 *) block)->qs);
      break;
    case QB_DTYPE_Q5_0:
      pack_5bit (c, ((QbBlockQ5_0 *) block)->qs, ((QbBlockQ5_0 *) block)->qh);
      break;
    case QB_DTYPE_Q5_1:
      pack_5bit (c, ((QbBlockQ5_1 *) block)->qs, ((QbBlockQ5_1 *) block)->qh);
      break;
    case QB_DTYPE_Q8_0:
      for (int k = 0; k < 4; k++)
        {
          QbLanesS8 b = __builtin_convertvector (c[k], QbLanesS8);
          memcpy (((QbBlockQ8_0 *) block)->qs + 8 * k, &b, sizeof b);
        }
      break;
    default:
      g_return_if_reached ();
    }
}

/* ---- dequantization ------------------------------------------------------ */

QB_KERNEL void
qb_dequantize_row_q4_0 (const void *restrict src, float *restrict y, gint64 n)
{
  const QbBlockQ4_0 *x = src;
  for (gint64 i = 0; i < n / QB_QK; i++, y += QB_QK)
    {
      float d = qb_get_f16 (x[i].d);
      for (int j = 0; j < 16; j++)
        {
          y[j] = ((x[i].qs[j] & 0x0f) - 8) * d;
          y[j + 16] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

QB_KERNEL void
qb_dequantize_row_q4_1 (const void *restrict src, float *restrict y, gint64 n)
{
  const QbBlockQ4_1 *x = src;
  for (gint64 i = 0; i < n / QB_QK; i++, y += QB_QK)
    {
      float d = qb_get_f16 (x[i].d), m = qb_get_f16 (x[i].m);
      for (int j = 0; j < 16; j++)
        {
          y[j] = (x[i].qs[j] & 0x0f) * d + m;
          y[j + 16] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}

QB_KERNEL void
qb_dequantize_row_q5_0 (const void *restrict src, float *restrict y, gint64 n)
{
  const QbBlockQ5_0 *x = src;
  for (gint64 i = 0; i < n / QB_QK; i++, y += QB_QK)
    {
      float d = qb_get_f16 (x[i].d);
      guint32 qh = get_u32_le (x[i].qh);
      for (int j = 0; j < 16; j++)
        {
          int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
          y[j] = (((x[i].qs[j] & 0x0f) | h0) - 16) * d;
          y[j + 16] = (((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

QB_KERNEL void
qb_dequantize_row_q5_1 (const void *restrict src, float *restrict y, gint64 n)
{
  const QbBlockQ5_1 *x = src;
  for (gint64 i = 0; i < n / QB_QK; i++, y += QB_QK)
    {
      float d = qb_get_f16 (x[i].d), m = qb_get_f16 (x[i].m);
      guint32 qh = get_u32_le (x[i].qh);
      for (int j = 0; j < 16; j++)
        {
          int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
          y[j] = ((x[i].qs[j] & 0x0f) | h0) * d + m;
          y[j + 16] = ((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

QB_KERNEL void
qb_dequantize_row_q8_0 (const void *restrict src, float *restrict y, gint64 n)
{
  const QbBlockQ8_0 *x = src;
  for (gint64 i = 0; i < n / QB_QK; i++, y += QB_QK)
    {
      float d = qb_get_f16 (x[i].d);
      for (int j = 0; j < QB_QK; j++)
        y[j] = x[i].qs[j] * d;
    }
}
