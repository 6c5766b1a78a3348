/* SPDX-License-Identifier: MIT */
/* qb-format-grid.h — a format's grid, for methods that round weights one
 * at a time.
 *
 * GPTQ rounds a row column by column and pushes each rounding error onto
 * the columns not rounded yet.  A format then has to answer four questions:
 *  - which values share parameters: a unit, which is a block of
 *    block-scoped formats and the whole row of per-row and per-tensor ones;
 *  - how a unit's parameters are fixed from some values: the format's own
 *    quantize_row on the unit (so a GPTQ-optimized Q4_K picks its scales
 *    and minimums exactly as Q4_K does);
 *  - which values each position of a fixed unit can take (its levels);
 *  - how chosen codes are written into the unit without touching its
 *    parameters.
 * Every code of every unit then dequantizes, through the format's standard
 * dequantizer, to the level it was chosen as: the result is a valid tensor
 * of the format.
 *
 * Levels are read back through the format's own dequantizer, so they
 * cannot drift from it:
 *  - uniform grids (the ggml legacy types and K-quants, INTn): level k of
 *    value i is lo_i + k·step_i, k = 0 .. n_levels - 1, read from the unit
 *    dequantized with every code 0 and with every code at the top (a step
 *    may be negative or 0, as signed K-quant scales allow);
 *  - tabled grids (IQ4_NL, IQ4_XS, NF4, MXFP4): all n_levels levels of each
 *    value, one dequantization per code.
 * Floats and FP8 have no grid: each value rounds on its own, whatever the
 * others do.
 */
#pragma once

#include <math.h>

#include "qb-format.h"

G_BEGIN_DECLS

typedef struct {
  const QbFormat *format;
  gint64          unit;         /* values sharing one set of parameters */
  guint64         unit_bytes;
  guint           n_levels;     /* codes 0 .. n_levels - 1 */
  gboolean        uniform;      /* levels lo + k·step; else a table per value */
} QbFormatGrid;

/* The grid of rows of n_cols values in format; FALSE when the format has
 * none or the rows do not fit it. */
gboolean qb_format_get_grid          (const QbFormat     *format,
                                      gint64              n_cols,
                                      QbFormatGrid       *grid);
/* Floats of levels per value: 2 (lo, step) for uniform grids, else n_levels. */
guint    qb_format_grid_level_floats (const QbFormatGrid *grid);
/* Fixes the parameters of one unit from x (grid->unit values, importance
 * from p) into unit_bytes, and writes the levels of its values
 * (level_floats per value) into levels.  The unit's codes are left
 * unspecified: write them with qb_format_grid_pack. */
void     qb_format_grid_fix          (const QbFormatGrid *grid,
                                      const QbQuantParams *p,
                                      const float        *x,
                                      guint8             *unit_bytes,
                                      float              *levels);
/* Reads the levels of a unit whose parameters are already in unit_bytes
 * (its codes are overwritten). */
void     qb_format_grid_read_levels  (const QbFormatGrid *grid,
                                      const QbQuantParams *p,
                                      guint8             *unit_bytes,
                                      float              *levels);
/* Writes grid->unit codes into the unit, leaving its parameters. */
void     qb_format_grid_pack         (const QbFormatGrid *grid,
                                      const guint8       *codes,
                                      guint8             *unit_bytes);

/* The code nearest to v among one value's levels; its level in *q. */
static inline guint
qb_format_grid_round (const QbFormatGrid *grid, const float *levels, float v, float *q)
{
  guint best = 0;

  if (grid->uniform)
    {
      float lo = levels[0], step = levels[1], k;

      if (step == 0 || !(v == v))
        {
          *q = lo;
          return 0;
        }
      k = (v - lo) / step;
      k = k < 0 ? 0 : k > grid->n_levels - 1 ? grid->n_levels - 1 : k;
      best = (guint) (k + 0.5f);
      *q = lo + best * step;
      return best;
    }
  for (guint k = 1; k < grid->n_levels; k++)
    if (fabsf (levels[k] - v) < fabsf (levels[best] - v))
      best = k;
  *q = levels[best];
  return best;
}

G_END_DECLS
