/* SPDX-License-Identifier: MIT */
/* qb-format-ggml.c — llama.cpp's block types as registry rows.
 *
 * Plain rounding and importance both go straight to the bit-exact kernels
 * (qb-ggml-quants.h): with importance, llama.cpp's imatrix path.  Q8_0
 * has none in llama.cpp and ignores importance, as llama-quantize does.
 *
 * Search.  The K-quants and IQ4_XS already search their scales inside
 * ggml's algorithm, so search is that algorithm.  For the 32-block types
 * (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) each block then tries a grid of
 * scales around ggml's and keeps whichever block dequantizes with the
 * smallest Σ w (x - x̂)²; ggml's block comes first (with importance, the
 * imatrix block, then the plain one), so search never does worse:
 *   - symmetric types: d = max / -2^(b-1) and d = max / (2^(b-1) - 1)
 *     (max the signed extreme; for IQ4_NL max / -127 and max / 113; for
 *     Q8_0 absmax / 127), each times 1 - k/40, k = 0..20;
 *   - Q4_1, Q5_1: [min, max] cut by 0, 5, .. 25 % of the range at either
 *     end, d = (hi - lo) / nmax, m = lo.
 */
#include "qb-format-private.h"
#include "qb-ggml-quants.h"
#include "qb-ggml-quants-private.h"

#include <math.h>
#include <string.h>

typedef gsize (*QuantizeFunc) (const float *src, void *dst, gint64 n_rows,
                               gint64 n_per_row, const float *imatrix);

typedef enum {
  SEARCH_NONE,         /* the kernel searches already */
  SEARCH_SYMMETRIC,
  SEARCH_MINIMUM,      /* scale and minimum */
} SearchKind;

typedef struct {
  QbDType       dtype;
  QuantizeFunc  quantize;
  SearchKind    search;
  float         neg, pos;   /* scale = max / neg or max / pos (symmetric) */
} Kernel;

static const Kernel kernels[] = {
  { QB_DTYPE_Q4_0,   qb_quantize_q4_0,   SEARCH_SYMMETRIC, -8,   7 },
  { QB_DTYPE_Q4_1,   qb_quantize_q4_1,   SEARCH_MINIMUM,   0,    15 },
  { QB_DTYPE_Q5_0,   qb_quantize_q5_0,   SEARCH_SYMMETRIC, -16,  15 },
  { QB_DTYPE_Q5_1,   qb_quantize_q5_1,   SEARCH_MINIMUM,   0,    31 },
  { QB_DTYPE_Q8_0,   qb_quantize_q8_0,   SEARCH_SYMMETRIC, -127, 127 },
  { QB_DTYPE_Q2_K,   qb_quantize_q2_K,   SEARCH_NONE,      0,    0 },
  { QB_DTYPE_Q3_K,   qb_quantize_q3_K,   SEARCH_NONE,      0,    0 },
  { QB_DTYPE_Q4_K,   qb_quantize_q4_K,   SEARCH_NONE,      0,    0 },
  { QB_DTYPE_Q5_K,   qb_quantize_q5_K,   SEARCH_NONE,      0,    0 },
  { QB_DTYPE_Q6_K,   qb_quantize_q6_K,   SEARCH_NONE,      0,    0 },
  { QB_DTYPE_IQ4_NL, qb_quantize_iq4_nl, SEARCH_SYMMETRIC, -127, 113 },
  { QB_DTYPE_IQ4_XS, qb_quantize_iq4_xs, SEARCH_NONE,      0,    0 },
};

static const Kernel *
kernel_for (QbDType dtype)
{
  for (gsize i = 0; i < G_N_ELEMENTS (kernels); i++)
    if (kernels[i].dtype == dtype)
      return &kernels[i];
  return NULL;
}

static void
encode (const Kernel *k, const float *x, float d, float m, guint8 *block)
{
  if (k->dtype == QB_DTYPE_IQ4_NL)
    qb_ggml_encode_iq4_nl (x, d, block);
  else
    qb_ggml_encode_block (k->dtype, x, d, m, block);
}

/* Keeps the candidate in best if it dequantizes closer to x. */
static void
try_candidate (const Kernel *k, const QbDTypeInfo *info, const float *x, const float *w,
               float d, float m, guint8 *best, double *best_err)
{
  guint8 block[64];
  float y[QB_QK];
  double err;

  encode (k, x, d, m, block);
  info->to_float (block, y, QB_QK);
  err = qb_format_weighted_sse (x, y, w, QB_QK);
  if (err < *best_err)
    {
      *best_err = err;
      memcpy (best, block, info->type_size);
    }
}

/* Starts from block (ggml's own), tries plain (ggml's block without
 * importance, when block came from the imatrix path) and the grid. */
static void
search_block (const Kernel *k, const QbDTypeInfo *info, const float *x, const float *w,
              const guint8 *plain, guint8 *block)
{
  float y[QB_QK], min = x[0], max = x[0], amax = 0, smax = 0;
  double best_err;

  info->to_float (block, y, QB_QK);
  best_err = qb_format_weighted_sse (x, y, w, QB_QK);
  if (plain != NULL)
    {
      double err;
      info->to_float (plain, y, QB_QK);
      err = qb_format_weighted_sse (x, y, w, QB_QK);
      if (err < best_err)
        {
          best_err = err;
          memcpy (block, plain, info->type_size);
        }
    }
  for (int j = 0; j < QB_QK; j++)
    {
      min = MIN (min, x[j]);
      max = MAX (max, x[j]);
      if (fabsf (x[j]) > amax)
        {
          amax = fabsf (x[j]);
          smax = x[j];
        }
    }

  if (k->search == SEARCH_SYMMETRIC)
    {
      if (amax == 0)
        return;
      if (k->dtype == QB_DTYPE_Q8_0)
        smax = amax;
      for (int step = 0; step < QB_SEARCH_STEPS; step++)
        {
          float f = qb_search_factor (step);
          try_candidate (k, info, x, w, smax / k->neg * f, 0, block, &best_err);
          try_candidate (k, info, x, w, smax / k->pos * f, 0, block, &best_err);
        }
    }
  else
    {
      float range = max - min;
      if (range == 0)
        return;
      for (int a = 0; a < QB_SEARCH_ENDS; a++)
        for (int b = 0; b < QB_SEARCH_ENDS; b++)
          {
            float lo = min + range * (1 - qb_search_end_factor (a));
            float hi = max - range * (1 - qb_search_end_factor (b));
            try_candidate (k, info, x, w, (hi - lo) / k->pos, lo, block, &best_err);
          }
    }
}

void
qb_format_ggml_quantize_row (const QbQuantParams *p, const float *x, void *y, gint64 n)
{
  const Kernel *k = kernel_for (p->format->dtype);
  const QbDTypeInfo *info = qb_dtype_info (p->format->dtype);
  g_autofree guint8 *plain = NULL;

  g_return_if_fail (k != NULL && n % info->block_size == 0);
  k->quantize (x, y, 1, n, p->importance);
  if (!p->search || k->search == SEARCH_NONE)
    return;
  if (p->importance != NULL)
    {
      plain = g_malloc ((gsize) (n / QB_QK) * info->type_size);
      k->quantize (x, plain, 1, n, NULL);
    }
  for (gint64 b = 0; b < n / QB_QK; b++)
    search_block (k, info, x + b * QB_QK, p->importance ? p->importance + b * QB_QK : NULL,
                  plain ? plain + b * info->type_size : NULL, (guint8 *) y + b * info->type_size);
}

void
qb_format_ggml_dequantize_row (const QbQuantParams *p, const void *y, float *x, gint64 n)
{
  qb_dtype_info (p->format->dtype)->to_float (y, x, n);
}
