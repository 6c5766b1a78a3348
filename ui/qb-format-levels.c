/* SPDX-License-Identifier: MIT */
/* qb-format-levels.c — a format's representable levels for a typical block. */
#include "qb-format-levels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* NormalFloat-4 (QLoRA): quantiles of a standard normal, scaled to [-1, 1]. */
static const double nf4_levels[16] = {
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
  -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
};

/* The non-uniform 4-bit code book of IQ4_NL/IQ4_XS, in units of 1/127. */
static const double iq4_levels[16] = {
  -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

/* E2M1 magnitudes (MXFP4). */
static const double e2m1_levels[8] = { 0, 0.5, 1, 1.5, 2, 3, 4, 6 };

typedef enum {
  GRID_NONE,
  GRID_SYMMETRIC,   /* k / half, k = -half..half, times |max| */
  GRID_ASYMMETRIC,  /* min + k (max - min) / (count - 1) */
  GRID_TABLE,       /* table values / table_scale, times |max| */
  GRID_E2M1,        /* E2M1 values times a power of two */
} GridKind;

typedef struct {
  GridKind      kind;
  guint         count;        /* levels (asymmetric) or half-range (symmetric) */
  guint         block;        /* values sharing a scale; 0 = from the format */
  const double *table;
  guint         table_len;
  double        table_scale;
} GridSpec;

static gboolean
spec_for_ggml (const char *name,
               GridSpec   *g)
{
  static const struct { const char *name; GridSpec spec; } ggml[] = {
    { "Q4_0", { GRID_SYMMETRIC, 8, 32 } },
    { "Q5_0", { GRID_SYMMETRIC, 16, 32 } },
    { "Q4_1", { GRID_ASYMMETRIC, 16, 32 } },
    { "Q5_1", { GRID_ASYMMETRIC, 32, 32 } },
    /* K-quants: the scale that matters is the sub-block's. */
    { "Q2_K", { GRID_ASYMMETRIC, 4, 16 } },
    { "Q3_K", { GRID_SYMMETRIC, 4, 16 } },
    { "Q4_K", { GRID_ASYMMETRIC, 16, 32 } },
    { "Q5_K", { GRID_ASYMMETRIC, 32, 32 } },
    { "Q6_K", { GRID_SYMMETRIC, 32, 16 } },
    { "IQ4_NL", { GRID_TABLE, 0, 32, iq4_levels, 16, 127 } },
    { "IQ4_XS", { GRID_TABLE, 0, 32, iq4_levels, 16, 127 } },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (ggml); i++)
    if (g_ascii_strcasecmp (name, ggml[i].name) == 0)
      {
        *g = ggml[i].spec;
        return TRUE;
      }
  return FALSE;   /* Q8_0 and others: too fine to draw */
}

static gboolean
grid_spec (const QbFormat *format,
           GridSpec       *g)
{
  memset (g, 0, sizeof *g);
  switch (format->family)
    {
    case QB_FAMILY_GGML:
      return spec_for_ggml (format->name, g);
    case QB_FAMILY_INT:
      if (format->bits < 2 || format->bits > 6)
        return FALSE;
      g->kind = format->asymmetric ? GRID_ASYMMETRIC : GRID_SYMMETRIC;
      g->count = format->asymmetric ? 1u << format->bits : (1u << (format->bits - 1)) - 1;
      return TRUE;
    case QB_FAMILY_NF:
      *g = (GridSpec) { GRID_TABLE, 0, 0, nf4_levels, 16, 1 };
      return TRUE;
    case QB_FAMILY_MX:
      *g = (GridSpec) { GRID_E2M1, 0, 32 };
      return TRUE;
    case QB_FAMILY_FLOAT:
    case QB_FAMILY_FP8:
    default:
      return FALSE;
    }
}

typedef struct {
  double key;
  guint64 count;
} KeyCount;

static int
compare_key (const void *a,
             const void *b)
{
  double x = ((const KeyCount *) a)->key, y = ((const KeyCount *) b)->key;
  return (x > y) - (x < y);
}

double
qb_histogram_quantile (const QbHistogram *h,
                       double             q,
                       gboolean           absolute)
{
  g_autofree KeyCount *bins = g_new (KeyCount, h->n_bins);
  double w = (h->hi - h->lo) / h->n_bins;
  guint64 total = qb_histogram_total (h), target, seen = 0;

  for (guint i = 0; i < h->n_bins; i++)
    {
      double center = h->lo + (i + 0.5) * w;
      bins[i].key = absolute ? fabs (center) : center;
      bins[i].count = h->counts[i];
    }
  if (absolute)
    qsort (bins, h->n_bins, sizeof (KeyCount), compare_key);
  target = (guint64) ceil (CLAMP (q, 0, 1) * total);
  for (guint i = 0; i < h->n_bins; i++)
    {
      seen += bins[i].count;
      if (seen >= target && seen > 0)
        return bins[i].key;
    }
  return bins[h->n_bins - 1].key;
}

static guint
block_size (const QbFormat *format,
            const GridSpec *g,
            gint64          row_length,
            guint64         total)
{
  if (g->block)
    return g->block;
  switch (format->scope)
    {
    case QB_SCOPE_BLOCK:
      return MAX (format->block_size, 1);
    case QB_SCOPE_CHANNEL:
      return (guint) MAX (MIN (row_length, G_MAXUINT), 1);
    case QB_SCOPE_TENSOR:
    default:
      return (guint) MAX (MIN (total, G_MAXUINT), 1);
    }
}

guint
qb_format_levels_typical (const QbFormat     *format,
                       const QbHistogram  *original,
                       gint64              row_length,
                       double             *levels,
                       char              **label)
{
  guint64 total;
  GridSpec g;
  guint block, n = 0;
  double q, amax;

  if (label)
    *label = NULL;
  if (format == NULL || original == NULL || !grid_spec (format, &g))
    return 0;
  total = qb_histogram_total (original);
  if (total == 0)
    return 0;

  /* The median over blocks of a block's largest |w| is the quantile of |w|
   * at 0.5^(1/B); likewise for a block's min and max. */
  block = block_size (format, &g, row_length, total);
  q = pow (0.5, 1.0 / block);
  amax = qb_histogram_quantile (original, q, TRUE);

  switch (g.kind)
    {
    case GRID_SYMMETRIC:
      for (int k = -(int) g.count; k <= (int) g.count; k++)
        levels[n++] = amax * k / g.count;
      break;
    case GRID_ASYMMETRIC:
      {
        double lo = qb_histogram_quantile (original, 1 - q, FALSE);
        double hi = qb_histogram_quantile (original, q, FALSE);
        for (guint k = 0; k < g.count; k++)
          levels[n++] = lo + (hi - lo) * k / (g.count - 1);
      }
      break;
    case GRID_TABLE:
      for (guint k = 0; k < g.table_len; k++)
        levels[n++] = amax * g.table[k] / g.table_scale;
      break;
    case GRID_E2M1:
      {
        /* The shared scale is a power of two putting |max| in the top binade (E2M1 max 6 = 1.5 * 2^2). */
        double scale = amax > 0 ? exp2 (floor (log2 (amax)) - 2) : 0;
        for (guint k = 0; k < G_N_ELEMENTS (e2m1_levels); k++)
          {
            levels[n++] = e2m1_levels[k] * scale;
            if (k > 0)
              levels[n++] = -e2m1_levels[k] * scale;
          }
      }
      break;
    case GRID_NONE:
    default:
      return 0;
    }
  g_assert (n <= QB_FORMAT_LEVELS_MAX);
  if (label)
    *label = g_strdup_printf ("%s grid (typical block |max| %.3g)", format->name, amax);
  return n;
}
