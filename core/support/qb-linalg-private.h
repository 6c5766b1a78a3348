/* SPDX-License-Identifier: MIT */
/* qb-linalg-private.h — dense symmetric positive definite algebra in
 * double, blocked over OpenBLAS level-3 calls (Debian's OpenBLAS ships no
 * LAPACKE header, so the factorizations are written here).
 *
 * Matrices are n × n, row-major, contiguous.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* a = L·Lᵀ: the lower triangle of a becomes L, the strict upper triangle
 * is zeroed.  FALSE (a then undefined) when a is not positive definite:
 * a pivot is not a finite positive number. */
gboolean qb_cholesky_lower          (double *a, gint64 n);

/* Inverts a lower triangular matrix in place (upper triangle untouched). */
void     qb_lower_inverse           (double *a, gint64 n);

/* a (symmetric positive definite) becomes the upper triangular U with
 * a⁻¹ = Uᵀ·U, the factor GPTQ works with, without forming a⁻¹: with J
 * the order reversal, J·a·J = L·Lᵀ gives a = R·Rᵀ with R = J·L·J upper,
 * so a⁻¹ = R⁻ᵀ·R⁻¹ and U = R⁻¹ = J·L⁻¹·J.  FALSE when a is not positive
 * definite. */
gboolean qb_inverse_cholesky_upper  (double *a, gint64 n);

/* out[i] = eᵢᵀ·G·eᵢ for the m rows eᵢ of e (m × n), G symmetric n × n.
 * One dgemm: call with OpenBLAS at one thread from worker threads. */
void     qb_quadratic_forms         (const double *gram,
                                     const double *e,
                                     gint64        m,
                                     gint64        n,
                                     double       *out);
/* out[i] = Σ_j a[i][j]·b[i][j] for m rows of n (the last step of the
 * quadratic forms once G·eᵢ is known). */
void     qb_row_dots                (const double *a,
                                     const double *b,
                                     gint64        m,
                                     gint64        n,
                                     double       *out);

G_END_DECLS
