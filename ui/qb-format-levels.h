/* SPDX-License-Identifier: MIT */
/* qb-format-levels.h — where a format's values can land, for drawing.
 *
 * A block format represents each value as one of a few levels times the
 * block's scale (plus a minimum for asymmetric ones).  The scale differs
 * per block, so the levels drawn are those of a *typical* block: its scale
 * is estimated from the tensor's original histogram as the median of the
 * largest |w| (or min and max) over blocks of the format's size.  The
 * levels themselves are the format's own (core's qb-format-grid.h).
 */
#pragma once

#include "qb-format.h"
#include "qb-tensor-result.h"

G_BEGIN_DECLS

#define QB_FORMAT_LEVELS_MAX 65

/* Fills levels (up to QB_FORMAT_LEVELS_MAX) in value units and returns
 * how many; 0 for float formats and grids too fine to draw.  *label (may be
 * NULL) gets a legend text such as "Q4_0 levels, typical block |max| 0.031". */
guint   qb_format_levels_typical  (const QbFormat     *format,
                                   const QbHistogram  *original,
                                   gint64              row_length,
                                   double             *levels,
                                   char              **label);
G_END_DECLS
