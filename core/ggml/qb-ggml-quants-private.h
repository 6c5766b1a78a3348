/* SPDX-License-Identifier: MIT */
/* qb-ggml-quants-private.h — block layouts and helpers shared by the ggml
 * kernels (qb-ggml-quants-*.c).
 *
 * Bit-exactness with ggml means the same float operations in the same
 * order.  ggml-base is built for baseline x86-64 (no FMA), so nothing may
 * be contracted: core is compiled with -ffp-contract=off.  Kernels are
 * cloned for AVX2 and AVX-512 (QB_KERNEL); the clones do the same IEEE
 * operations, only more of them at once.
 *
 * Blocks are declared as byte arrays so that any destination alignment is
 * fine; halves are stored little-endian through qb_put_f16().
 */
#pragma once

#include <glib.h>
#include <math.h>
#include <string.h>

#include "qb-dtype.h"

G_BEGIN_DECLS

#define QB_QK      32     /* values per block of the 32-block formats */
#define QB_QK_K    256    /* values per K-quant super-block */

/* ggml's threshold under which a group counts as all zero. */
#define QB_GROUP_MAX_EPS 1e-15f

/* Runtime dispatch: GCC builds each kernel for AVX-512, AVX2 and baseline
 * x86-64 and picks one at load time.  To test a variant on a machine that
 * would pick another, build with -DQB_KERNEL_NO_AVX512 (AVX2 and baseline)
 * or -DQB_NO_KERNEL_CLONES (baseline only). */
#ifdef QB_KERNEL_NO_AVX512
#define QB_KERNEL_TARGETS "arch=x86-64-v3", "default"
#else
#define QB_KERNEL_TARGETS "arch=x86-64-v4", "arch=x86-64-v3", "default"
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(QB_NO_KERNEL_CLONES)
#define QB_KERNEL __attribute__ ((target_clones (QB_KERNEL_TARGETS)))
#else
#define QB_KERNEL
#endif

#define QB_INLINE static inline __attribute__ ((always_inline))

typedef struct { guint8 d[2]; guint8 qs[16]; }                              QbBlockQ4_0;
typedef struct { guint8 d[2]; guint8 m[2]; guint8 qs[16]; }                 QbBlockQ4_1;
typedef struct { guint8 d[2]; guint8 qh[4]; guint8 qs[16]; }                QbBlockQ5_0;
typedef struct { guint8 d[2]; guint8 m[2]; guint8 qh[4]; guint8 qs[16]; }   QbBlockQ5_1;
typedef struct { guint8 d[2]; gint8 qs[32]; }                               QbBlockQ8_0;
typedef struct { guint8 scales[16]; guint8 qs[64]; guint8 d[2]; guint8 dmin[2]; } QbBlockQ2_K;
typedef struct { guint8 hmask[32]; guint8 qs[64]; guint8 scales[12]; guint8 d[2]; } QbBlockQ3_K;
typedef struct { guint8 d[2]; guint8 dmin[2]; guint8 scales[12]; guint8 qs[128]; } QbBlockQ4_K;
typedef struct { guint8 d[2]; guint8 dmin[2]; guint8 scales[12]; guint8 qh[32];
                 guint8 qs[128]; }                                          QbBlockQ5_K;
typedef struct { guint8 ql[128]; guint8 qh[64]; gint8 scales[16]; guint8 d[2]; } QbBlockQ6_K;
typedef struct { guint8 d[2]; guint8 qs[16]; }                              QbBlockIQ4_NL;
typedef struct { guint8 d[2]; guint8 scales_h[2]; guint8 scales_l[4];
                 guint8 qs[128]; }                                          QbBlockIQ4_XS;

G_STATIC_ASSERT (sizeof (QbBlockQ4_0) == 18);
G_STATIC_ASSERT (sizeof (QbBlockQ4_1) == 20);
G_STATIC_ASSERT (sizeof (QbBlockQ5_0) == 22);
G_STATIC_ASSERT (sizeof (QbBlockQ5_1) == 24);
G_STATIC_ASSERT (sizeof (QbBlockQ8_0) == 34);
G_STATIC_ASSERT (sizeof (QbBlockQ2_K) == 84);
G_STATIC_ASSERT (sizeof (QbBlockQ3_K) == 110);
G_STATIC_ASSERT (sizeof (QbBlockQ4_K) == 144);
G_STATIC_ASSERT (sizeof (QbBlockQ5_K) == 176);
G_STATIC_ASSERT (sizeof (QbBlockQ6_K) == 210);
G_STATIC_ASSERT (sizeof (QbBlockIQ4_NL) == 18);
G_STATIC_ASSERT (sizeof (QbBlockIQ4_XS) == 136);

static inline void
qb_put_f16 (guint8 *p, float f)
{
  guint16 h = qb_fp32_to_fp16 (f);
  p[0] = h & 0xff;
  p[1] = h >> 8;
}

static inline float
qb_get_f16 (const guint8 *p)
{
  return qb_fp16_to_fp32 ((guint16) (p[0] | p[1] << 8));
}

/* Rounds to nearest, ties to even, for |f| < 2^22: adding 1.5 * 2^23 puts
 * the integer in the low mantissa bits.  Same trick as ggml, and unlike
 * lrintf it vectorizes. */
QB_INLINE int
qb_nearest_int (float f)
{
  float v = f + 12582912.f;
  gint32 i;
  memcpy (&i, &v, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

QB_INLINE int
qb_clampi (int v, int lo, int hi)
{
  return v < lo ? lo : v > hi ? hi : v;
}

/* Sum of squares in order, as ggml's loops do (no reassociation). */
QB_INLINE float
qb_sum_squares (const float *x, gint64 n)
{
  float s = 0;
  for (gint64 i = 0; i < n; i++)
    s += x[i] * x[i];
  return s;
}

/* One block of 32 coded against a given scale d (and minimum m for Q4_1
 * and Q5_1): d and m are stored as f16 and the codes round against the
 * stored values, clamped to the valid range.  Used by the scale searches
 * of qb-format-ggml.c.  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and IQ4_NL. */
void qb_ggml_encode_block      (QbDType dtype, const float *x, float d, float m, void *block);
void qb_ggml_encode_iq4_nl     (const float *x, float d, void *block);

/* For tests: the portable block kernel of Q8_0 or Q4_0 and the one the
 * CPU selects at run time (the same function where there is no faster
 * one), to compare on any data.  nb blocks of 32 from x into y.  FALSE
 * for another type. */
typedef void (*QbBlockKernel) (const float *x, void *y, gint64 nb);
gboolean qb_ggml_block_kernels (QbDType dtype, QbBlockKernel *portable, QbBlockKernel *selected);

G_END_DECLS
