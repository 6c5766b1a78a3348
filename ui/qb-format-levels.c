/* SPDX-License-Identifier: MIT */
/* qb-format-levels.c — a format's representable levels for a typical block.
 *
 * The levels come from core's format grid (qb-format-grid.h), which reads
 * them back through the format's own dequantizer: a synthetic block whose
 * values span the typical block's range is quantized, and the levels of
 * its first value are the ones drawn. */
#include "qb-format-levels.h"

#include <math.h>
#include <stdlib.h>

#include "qb-format-grid.h"

/* Values per scale: a block, or for 256-value super-blocks (K-quants,
 * IQ4_XS) their sub-blocks of 32; a row for per-row formats. */
static gint64
scale_group (const QbFormat *format, const QbFormatGrid *grid)
{
  if (format->scope == QB_SCOPE_BLOCK && grid->unit >= 256)
    return 32;
  return grid->unit;
}

static int
compare_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* Sorted, without repeats (MXFP4 has +0 and -0, tables their symmetry). */
static guint
sort_unique (double *v, guint n)
{
  guint m = 0;

  qsort (v, n, sizeof *v, compare_double);
  for (guint i = 0; i < n; i++)
    if (m == 0 || v[i] != v[m - 1])
      v[m++] = v[i];
  return m;
}

guint
qb_format_levels_typical (const QbFormat     *format,
                          const QbHistogram  *original,
                          gint64              row_length,
                          double             *levels,
                          char              **label)
{
  /* Every 16 values (a divisor of every block and sub-block) span the
   * typical range, so each scale group sees the same minimum and maximum. */
  const guint period = 16;
  QbFormatGrid grid;
  QbQuantParams p = { 0 };
  g_autofree float *x = NULL, *lv = NULL;
  g_autofree guint8 *bytes = NULL;
  double q, lo, hi, amax;
  guint n = 0;

  if (label)
    *label = NULL;
  if (format == NULL || original == NULL || qb_histogram_total (original) == 0
      || !qb_format_get_grid (format, row_length, &grid)
      || grid.n_levels > QB_FORMAT_LEVELS_MAX || grid.unit < period)
    return 0;   /* floats, FP8, and grids too fine to draw (Q8_0) */

  /* The median over groups of a group's largest (smallest) w is the
   * quantile of w at 0.5^(1/B) (its complement). */
  q = pow (0.5, 1.0 / scale_group (format, &grid));
  lo = qb_histogram_quantile (original, 1 - q, FALSE);
  hi = qb_histogram_quantile (original, q, FALSE);
  amax = MAX (fabs (lo), fabs (hi));

  x = g_new (float, grid.unit);
  for (gint64 i = 0; i < grid.unit; i++)
    x[i] = (float) (lo + (hi - lo) * (double) (i % period) / (period - 1));
  lv = g_new (float, (gsize) grid.unit * qb_format_grid_level_floats (&grid));
  bytes = g_malloc (grid.unit_bytes);
  p.format = format;
  p.tensor_absmax = (float) amax;
  qb_format_grid_fix (&grid, &p, x, bytes, lv);

  /* The levels of the first value: lo + k·step, or its table. */
  for (guint k = 0; k < grid.n_levels; k++)
    levels[n++] = grid.uniform ? lv[0] + (double) k * lv[1] : lv[k];
  n = sort_unique (levels, n);
  if (label)
    *label = g_strdup_printf ("%s grid (typical block |max| %.3g)", format->name, amax);
  return n;
}
