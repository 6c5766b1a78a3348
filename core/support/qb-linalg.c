/* SPDX-License-Identifier: MIT */
/* qb-linalg.c — blocked Cholesky and triangular inverse in double.
 *
 * Right-looking Cholesky: factor a diagonal block, solve the panel below
 * it (dtrsm), update the trailing matrix (dsyrk).  Triangular inverse
 * from the last block up: with the trailing part already inverted,
 * L⁻¹ = [[L11⁻¹, 0], [-L22⁻¹·L21·L11⁻¹, L22⁻¹]] (dtrmm, dtrsm).  Both do
 * n³/3 multiply-adds, almost all of them inside OpenBLAS.
 */
#include "qb-linalg-private.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Block size: large enough for efficient level-3 calls (128 measured 2-3x
 * faster than 64 at n = 1536..3000), small enough that the unblocked
 * kernels stay in cache. */
#define NB 128

#define A(i, j) a[(gint64) (i) * lda + (j)]

/* Unblocked Cholesky of the nb × nb block at a (leading dimension lda). */
static gboolean
cholesky_block (double *a, gint64 nb, gint64 lda)
{
  for (gint64 j = 0; j < nb; j++)
    {
      double d = A (j, j);

      for (gint64 k = 0; k < j; k++)
        d -= A (j, k) * A (j, k);
      if (!(d > 0) || !isfinite (d))
        return FALSE;
      d = sqrt (d);
      A (j, j) = d;
      for (gint64 i = j + 1; i < nb; i++)
        {
          double s = A (i, j);
          for (gint64 k = 0; k < j; k++)
            s -= A (i, k) * A (j, k);
          A (i, j) = s / d;
        }
    }
  return TRUE;
}

gboolean
qb_cholesky_lower (double *a, gint64 n)
{
  gint64 lda = n;

  for (gint64 k = 0; k < n; k += NB)
    {
      gint64 kb = MIN (NB, n - k), rest = n - k - kb;
      double *a11 = &A (k, k), *a21 = &A (k + kb, k), *a22 = &A (k + kb, k + kb);

      if (!cholesky_block (a11, kb, lda))
        return FALSE;
      if (rest == 0)
        break;
      /* A21 ← A21·L11⁻ᵀ, then A22 ← A22 − A21·A21ᵀ (lower half). */
      cblas_dtrsm (CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit,
                   (int) rest, (int) kb, 1.0, a11, (int) lda, a21, (int) lda);
      cblas_dsyrk (CblasRowMajor, CblasLower, CblasNoTrans, (int) rest, (int) kb,
                   -1.0, a21, (int) lda, 1.0, a22, (int) lda);
    }
  for (gint64 i = 0; i < n; i++)
    memset (&A (i, i + 1), 0, sizeof (double) * (n - i - 1));
  return TRUE;
}

/* Unblocked inverse of the lower triangular nb × nb block at a. */
static void
lower_inverse_block (double *a, gint64 nb, gint64 lda, double *x)
{
  for (gint64 j = 0; j < nb; j++)
    {
      x[j * nb + j] = 1.0 / A (j, j);
      for (gint64 i = j + 1; i < nb; i++)
        {
          double s = 0;
          for (gint64 k = j; k < i; k++)
            s += A (i, k) * x[k * nb + j];
          x[i * nb + j] = -s / A (i, i);
        }
    }
  for (gint64 i = 0; i < nb; i++)
    for (gint64 j = 0; j <= i; j++)
      A (i, j) = x[i * nb + j];
}

void
qb_lower_inverse (double *a, gint64 n)
{
  gint64 lda = n;
  g_autofree double *x = g_new (double, NB * NB);

  for (gint64 j = (n - 1) / NB * NB; j >= 0; j -= NB)
    {
      gint64 jb = MIN (NB, n - j), rest = n - j - jb;
      double *a11 = &A (j, j), *a21 = &A (j + jb, j), *a22 = &A (j + jb, j + jb);

      if (rest > 0)
        {
          /* A21 ← −L22⁻¹·A21·L11⁻¹ (L22 is already inverted, L11 not yet). */
          cblas_dtrmm (CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit,
                       (int) rest, (int) jb, 1.0, a22, (int) lda, a21, (int) lda);
          cblas_dtrsm (CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit,
                       (int) rest, (int) jb, -1.0, a11, (int) lda, a21, (int) lda);
        }
      lower_inverse_block (a11, jb, lda, x);
    }
}

/* J·a·J of a row-major square matrix is the flat array reversed. */
static void
reverse (double *a, gint64 n)
{
  for (gint64 i = 0, j = n * n - 1; i < j; i++, j--)
    {
      double t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
}

gboolean
qb_inverse_cholesky_upper (double *a, gint64 n)
{
  reverse (a, n);
  if (!qb_cholesky_lower (a, n))
    return FALSE;
  qb_lower_inverse (a, n);
  reverse (a, n);
  return TRUE;
}

void
qb_quadratic_forms (const double *gram, const double *e, gint64 m, gint64 n, double *out)
{
  g_autofree double *ge = g_new (double, (gsize) m * n);

  cblas_dgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) m, (int) n, (int) n, 1.0, e,
               (int) n, gram, (int) n, 0.0, ge, (int) n);
  qb_row_dots (ge, e, m, n, out);
}

void
qb_row_dots (const double *a, const double *b, gint64 m, gint64 n, double *out)
{
  for (gint64 i = 0; i < m; i++)
    {
      double s = 0;
      for (gint64 j = 0; j < n; j++)
        s += a[i * n + j] * b[i * n + j];
      out[i] = s;
    }
}
