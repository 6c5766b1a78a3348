/* SPDX-License-Identifier: MIT */
/* qb-gptq.h — GPTQ (Frantar et al., 2022) as a quantization method.
 *
 * Each row of W is rounded column by column to its format's grid
 * (qb-format-grid.h); the rounding error of a column, scaled by the
 * inverse Hessian, is pushed onto the columns not rounded yet, so that
 * the layer's output error ‖(W − Ŵ)X‖² stays small rather than the weight
 * error.  The method needs the Gram matrix XᵀX of the layer's input from
 * calibration (QbMethod.needs_gram).
 *
 *  - Hessian H = XᵀX / n (n activation rows; the usual factor 2 changes
 *    no choice GPTQ makes).  Dead columns (an input that was always 0) get
 *    H_jj = 1: they are rounded on their own and push nothing.  Dampening:
 *    λ·mean(diag H) is added to the diagonal (λ = gptq.damp, 0.01); if H
 *    is still not positive definite, λ grows tenfold, up to 1.
 *  - The upper Cholesky factor U of H⁻¹ is computed once per tensor in
 *    prepare() (qb-linalg-private.h), in double, and kept in float.
 *  - Activation order (gptq.act_order): columns in order of decreasing
 *    H_jj; the permutation only orders the work, codes are written at
 *    their own columns, so the output is in the original order.
 *  - Lazy batch updates over gptq.block columns (128; for block formats a
 *    whole number of format blocks): the error of a batch reaches the
 *    columns after it in one sgemm.
 *  - Groups are the format's own: INT4_G32 has groups of 32, Q4_K
 *    super-blocks of 256 with 8 sub-scales.  A group's scales (and
 *    minimums) are fixed by the format's own quantizer from the partly
 *    updated weights when GPTQ reaches the group's first column, with the
 *    importance of the columns (the imatrix when given, else diag H).
 *    With act-order, groups narrower than the row are fixed up front from
 *    the original weights (static groups): their columns are not visited
 *    in order.  Per-row and per-tensor scales are always fixed up front.
 *  - Guard (gptq.guard, on): a row whose output error through XᵀX comes
 *    out larger than that of plain rounding (the "rtn" method with the
 *    same importance) is replaced by the rounding, so GPTQ never does
 *    worse than rounding on the objective it minimizes.  It costs two
 *    quadratic forms per row (about as much as GPTQ itself).
 * On the selected device (qb-gptq-device-private.h) the lazy batch updates
 * and the guard's products run through CLBlast, the rounding of each
 * column on the host: the same formats and layout, errors within float
 * rounding of the CPU's; a device that fails leaves the tensor to the CPU.
 * Formats without a grid (F32, F16, BF16, FP8) are rounded value by value,
 * which is what any method does for them.
 *
 * Options (plan options, strings): gptq.damp (0 < λ ≤ 1), gptq.act_order
 * (true/false), gptq.block (columns, 1..4096), gptq.guard (true/false).
 */
#pragma once

#include "qb-method.h"

G_BEGIN_DECLS

#define QB_GPTQ_ERROR (qb_gptq_error_quark ())
GQuark qb_gptq_error_quark (void);

typedef enum {
  QB_GPTQ_ERROR_OPTION,           /* a gptq.* option with a bad value */
  QB_GPTQ_ERROR_NO_STATISTICS,    /* no XᵀX of the layer's input: calibrate first */
  QB_GPTQ_ERROR_NOT_POSITIVE,     /* XᵀX not positive definite even dampened */
  QB_GPTQ_ERROR_NO_MEMORY,
} QbGptqError;

#define QB_GPTQ_DEFAULT_DAMP   0.01
#define QB_GPTQ_DEFAULT_BLOCK  128

/* The method "gptq" (registered with the built-in methods). */
const QbMethod *qb_gptq_method (void);

G_END_DECLS
