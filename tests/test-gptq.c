/* SPDX-License-Identifier: MIT */
/* test-gptq.c — format grids, the Cholesky factor GPTQ uses, and GPTQ on
 * small synthetic layers: never worse than rounding on its objective,
 * clearly better without the guard, valid blocks, act-order. */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "qb-dtype.h"
#include "qb-format-grid.h"
#include "qb-gptq.h"
#include "qb-linalg-private.h"
#include "qb-method.h"
#include "qb-test-model.h"

/* Every format with a grid, on rows of 256 (a multiple of every block). */
static const char *grid_formats[] = {
  "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
  "IQ4_NL", "IQ4_XS", "INT4_G32", "INT4_G32_ASYM", "INT3_G64", "INT2_G128_ASYM",
  "INT8_G256", "INT4_CH", "INT4_CH_ASYM", "INT4_T", "NF4", "MXFP4",
};

/* ---- grids ------------------------------------------------------------------ */

/* Fix a unit, write random codes, dequantize with the format's own
 * dequantizer: every value must be the level of its code. */
static void
test_grid_pack (void)
{
  const gint64 n = 256;
  guint64 state = 11;
  g_autofree float *x = g_new (float, n);
  g_autofree float *y = g_new (float, n);

  qb_test_gaussian (&state, x, n, 1.0f);
  for (gsize f = 0; f < G_N_ELEMENTS (grid_formats); f++)
    {
      const QbFormat *fmt = qb_format_find (grid_formats[f]);
      QbFormatGrid grid;
      QbQuantParams p = { fmt, NULL, FALSE, 3.0f };
      g_autofree guint8 *bytes = NULL;
      g_autofree float *levels = NULL;
      g_autofree guint8 *codes = NULL;
      guint lf;

      g_assert_nonnull (fmt);
      g_assert_true (qb_format_get_grid (fmt, n, &grid));
      lf = qb_format_grid_level_floats (&grid);
      bytes = g_malloc0 (grid.unit_bytes);
      levels = g_new (float, grid.unit * lf);
      codes = g_new (guint8, grid.unit);
      qb_format_grid_fix (&grid, &p, x, bytes, levels);
      for (gint64 i = 0; i < grid.unit; i++)
        codes[i] = (guint8) ((i * 7 + i / 5 + f) % grid.n_levels);
      qb_format_grid_pack (&grid, codes, bytes);
      fmt->dequantize_row (&p, bytes, y, grid.unit);
      for (gint64 i = 0; i < grid.unit; i++)
        {
          const float *l = levels + i * lf;
          float want = grid.uniform ? l[0] + codes[i] * l[1] : l[codes[i]];
          float q;

          g_assert_cmpfloat_with_epsilon (y[i], want, 1e-5f * (1 + fabsf (want)));
          /* Rounding a level gives back that level. */
          qb_format_grid_round (&grid, l, y[i], &q);
          g_assert_cmpfloat_with_epsilon (q, y[i], 1e-5f * (1 + fabsf (y[i])));
        }
    }
}

static void
test_grid_none (void)
{
  QbFormatGrid grid;

  g_assert_false (qb_format_get_grid (qb_format_find ("F16"), 64, &grid));
  g_assert_false (qb_format_get_grid (qb_format_find ("FP8_E4M3_CH"), 64, &grid));
  g_assert_false (qb_format_get_grid (qb_format_find ("Q4_0"), 48, &grid));
}

/* ---- linear algebra -------------------------------------------------------------- */

static double *
random_spd (gint64 n, guint64 seed)
{
  g_autofree float *z = g_new (float, (gsize) 2 * n * n);
  double *a = g_new0 (double, (gsize) n * n);

  qb_test_gaussian (&seed, z, 2 * n * n, 1.0f);
  for (gint64 k = 0; k < 2 * n; k++)
    for (gint64 i = 0; i < n; i++)
      for (gint64 j = 0; j < n; j++)
        a[i * n + j] += (double) z[k * n + i] * z[k * n + j];
  return a;
}

/* U from qb_inverse_cholesky_upper is upper triangular and Uᵀ·U·A = I,
 * across block boundaries (n = 150 > two blocks of 64). */
static void
test_inverse_cholesky (void)
{
  const gint64 n = 150;
  g_autofree double *a = random_spd (n, 3);
  g_autofree double *u = g_memdup2 (a, sizeof (double) * n * n);
  double worst = 0;

  g_assert_true (qb_inverse_cholesky_upper (u, n));
  for (gint64 i = 0; i < n; i++)
    for (gint64 j = 0; j < i; j++)
      g_assert_cmpfloat (u[i * n + j], ==, 0.0);
  for (gint64 i = 0; i < n; i++)
    for (gint64 j = 0; j < n; j++)
      {
        /* (Uᵀ·U·A)ij = Σk Σl U[k][i] U[k][l] A[l][j] */
        double s = 0;
        for (gint64 k = 0; k <= i; k++)
          {
            double t = 0;
            for (gint64 l = k; l < n; l++)
              t += u[k * n + l] * a[l * n + j];
            s += u[k * n + i] * t;
          }
        worst = MAX (worst, fabs (s - (i == j)));
      }
  g_assert_cmpfloat (worst, <, 1e-9);

  /* Not positive definite: refused. */
  memcpy (u, a, sizeof (double) * n * n);
  u[5 * n + 5] = -1e6;
  g_assert_false (qb_inverse_cholesky_upper (u, n));
}

/* ---- GPTQ on a synthetic layer ------------------------------------------------------ */

typedef struct {
  gint64  n, rows;
  guint64 samples;
  float  *w;
  double *gram;
} Layer;

/* Inputs with correlated columns of uneven scale (as activations are): X =
 * Z·M with M banded, and a few loud columns; XᵀX computed directly. */
static void
layer_init (Layer *l, gint64 n, gint64 rows, guint64 seed)
{
  g_autofree float *z = g_new (float, (gsize) 512 * n);
  g_autofree double *x = g_new0 (double, (gsize) 512 * n);

  l->n = n;
  l->rows = rows;
  l->samples = 512;
  l->w = g_new (float, rows * n);
  l->gram = g_new0 (double, n * n);
  qb_test_gaussian (&seed, l->w, rows * n, 0.05f);
  qb_test_gaussian (&seed, z, 512 * n, 1.0f);
  for (gint64 s = 0; s < 512; s++)
    for (gint64 j = 0; j < n; j++)
      {
        double v = 0;
        for (gint64 k = MAX (0, j - 3); k <= MIN (n - 1, j + 3); k++)
          v += z[s * n + k] * (k == j ? 1.0 : 0.6);
        x[s * n + j] = v * (j % 37 == 0 ? 8.0 : 1.0 + (j % 5) * 0.3);
      }
  for (gint64 s = 0; s < 512; s++)
    for (gint64 i = 0; i < n; i++)
      for (gint64 j = 0; j < n; j++)
        l->gram[i * n + j] += x[s * n + i] * x[s * n + j];
}

static void
layer_clear (Layer *l)
{
  g_free (l->w);
  g_free (l->gram);
}

static float
absmax_of (const float *w, gint64 n)
{
  float m = 0;
  for (gint64 i = 0; i < n; i++)
    m = MAX (m, fabsf (w[i]));
  return m;
}

/* Runs a method over the layer in uneven chunks of rows. */
static guint8 *
run_method (const Layer *l, const char *method, const QbFormat *fmt, GHashTable *options)
{
  QbMethodContext ctx = { 0 };
  g_autoptr(GError) error = NULL;
  gpointer state = NULL;
  guint8 *out;

  ctx.method = qb_method_find (method);
  ctx.format = fmt;
  ctx.tensor_name = "test.weight";
  ctx.n_cols = l->n;
  ctx.n_rows = l->rows;
  g_assert_true (qb_format_row_bytes (fmt, l->n, &ctx.row_bytes));
  ctx.gram = l->gram;
  ctx.gram_samples = l->samples;
  ctx.tensor_absmax = absmax_of (l->w, l->rows * l->n);
  ctx.options = options;
  g_assert_nonnull (ctx.method);
  if (ctx.method->prepare)
    {
      state = ctx.method->prepare (&ctx, &error);
      g_assert_no_error (error);
    }
  out = g_malloc (l->rows * ctx.row_bytes);
  for (gint64 r = 0; r < l->rows; r += 7)
    ctx.method->quantize_rows (&ctx, state, l->w + r * l->n, MIN (7, l->rows - r),
                               out + r * ctx.row_bytes);
  if (ctx.method->release)
    ctx.method->release (state);
  return out;
}

/* Per-row ‖(w − ŵ)X‖² = eᵀ·XᵀX·e, with ŵ from the standard dequantizer. */
static void
row_objectives (const Layer *l, const QbFormat *fmt, const guint8 *q, double *obj)
{
  QbQuantParams p = { fmt, NULL, FALSE, absmax_of (l->w, l->rows * l->n) };
  g_autofree float *y = g_new (float, l->n);
  g_autofree double *e = g_new (double, l->n * l->rows);
  guint64 rb;

  g_assert_true (qb_format_row_bytes (fmt, l->n, &rb));
  for (gint64 r = 0; r < l->rows; r++)
    {
      fmt->dequantize_row (&p, q + r * rb, y, l->n);
      for (gint64 j = 0; j < l->n; j++)
        {
          g_assert_true (isfinite (y[j]));
          e[r * l->n + j] = (double) l->w[r * l->n + j] - y[j];
        }
    }
  qb_quadratic_forms (l->gram, e, l->rows, l->n, obj);
}

static double
sum (const double *v, gint64 n)
{
  double s = 0;
  for (gint64 i = 0; i < n; i++)
    s += v[i];
  return s;
}

static GHashTable *
options_new (const char *key, const char *value, ...)
{
  GHashTable *h = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  va_list ap;

  va_start (ap, value);
  while (key != NULL)
    {
      g_hash_table_replace (h, g_strdup (key), g_strdup (value));
      key = va_arg (ap, const char *);
      if (key != NULL)
        value = va_arg (ap, const char *);
    }
  va_end (ap);
  return h;
}

/* With the guard, no row of GPTQ does worse than rounding (same importance)
 * on ‖(w − ŵ)X‖², for every format with a grid. */
static void
test_never_worse (void)
{
  Layer l;

  layer_init (&l, 256, 20, 7);
  for (gsize f = 0; f < G_N_ELEMENTS (grid_formats); f++)
    {
      const QbFormat *fmt = qb_format_find (grid_formats[f]);
      g_autofree guint8 *rtn = run_method (&l, "rtn", fmt, NULL);
      g_autofree guint8 *gptq = run_method (&l, "gptq", fmt, NULL);
      double o_rtn[20], o_gptq[20];

      row_objectives (&l, fmt, rtn, o_rtn);
      row_objectives (&l, fmt, gptq, o_gptq);
      for (gint64 r = 0; r < l.rows; r++)
        g_assert_cmpfloat (o_gptq[r], <=, o_rtn[r]);
      g_test_message ("%-14s output error GPTQ / RTN = %.3f", grid_formats[f],
                      sum (o_gptq, l.rows) / sum (o_rtn, l.rows));
    }
  layer_clear (&l);
}

/* Without the guard GPTQ alone beats rounding clearly, INTn and ggml types
 * alike, with and without act-order. */
static void
test_better_unguarded (void)
{
  static const char *formats[] = { "INT4_G32", "INT3_G64", "INT4_CH", "Q4_0", "Q4_K", "Q3_K", "IQ4_NL" };
  Layer l;

  layer_init (&l, 256, 20, 9);
  for (int ao = 0; ao < 2; ao++)
    {
      g_autoptr(GHashTable) opts = options_new ("gptq.guard", "false",
                                                "gptq.act_order", ao ? "true" : "false", NULL);
      for (gsize f = 0; f < G_N_ELEMENTS (formats); f++)
        {
          const QbFormat *fmt = qb_format_find (formats[f]);
          g_autofree guint8 *rtn = run_method (&l, "rtn", fmt, NULL);
          g_autofree guint8 *gptq = run_method (&l, "gptq", fmt, opts);
          double o_rtn[20], o_gptq[20], ratio;

          row_objectives (&l, fmt, rtn, o_rtn);
          row_objectives (&l, fmt, gptq, o_gptq);
          ratio = sum (o_gptq, l.rows) / sum (o_rtn, l.rows);
          g_test_message ("%-10s act-order %d: GPTQ / RTN = %.3f", formats[f], ao, ratio);
          g_assert_cmpfloat (ratio, <, 0.8);
        }
    }
  layer_clear (&l);
}

/* With uncorrelated inputs (diagonal XᵀX) there is nothing to push: GPTQ is
 * plain rounding on the same grid, byte for byte (INT4_T: one scale for the
 * tensor, which neither importance nor GPTQ moves). */
static void
test_diagonal_is_rounding (void)
{
  Layer l;
  const QbFormat *fmt = qb_format_find ("INT4_T");
  g_autoptr(GHashTable) opts = options_new ("gptq.guard", "false", "gptq.act_order", "true", NULL);
  g_autofree guint8 *rtn = NULL, *gptq = NULL;
  guint64 rb;

  layer_init (&l, 256, 20, 13);
  for (gint64 i = 0; i < l.n; i++)
    for (gint64 j = 0; j < l.n; j++)
      if (i != j)
        l.gram[i * l.n + j] = 0;
  rtn = run_method (&l, "rtn", fmt, NULL);
  gptq = run_method (&l, "gptq", fmt, opts);
  g_assert_true (qb_format_row_bytes (fmt, l.n, &rb));
  g_assert_cmpmem (rtn, l.rows * rb, gptq, l.rows * rb);
  layer_clear (&l);
}

/* Act-order on a layer whose columns are permuted (W·P, Pᵀ·XᵀX·P) gives the
 * same values at the permuted columns: the work order is undone in the
 * output.  A per-tensor scale, so no unit depends on column order. */
static void
test_act_order_permutation (void)
{
  const QbFormat *fmt = qb_format_find ("INT4_T");
  g_autoptr(GHashTable) opts = options_new ("gptq.act_order", "true", "gptq.guard", "false", NULL);
  Layer a, b;
  gint64 n = 256, perm[256];
  g_autofree guint8 *qa = NULL, *qb_ = NULL;
  g_autofree float *ya = g_new (float, n);
  g_autofree float *yb = g_new (float, n);
  QbQuantParams p = { fmt, NULL, FALSE, 0 };
  guint64 rb;

  layer_init (&a, n, 20, 17);
  layer_init (&b, n, 20, 17);
  /* A fixed shuffle: column j of b is column perm[j] of a. */
  for (gint64 j = 0; j < n; j++)
    perm[j] = (j * 97 + 31) % n;
  for (gint64 r = 0; r < a.rows; r++)
    for (gint64 j = 0; j < n; j++)
      b.w[r * n + j] = a.w[r * n + perm[j]];
  for (gint64 i = 0; i < n; i++)
    for (gint64 j = 0; j < n; j++)
      b.gram[i * n + j] = a.gram[perm[i] * n + perm[j]];

  qa = run_method (&a, "gptq", fmt, opts);
  qb_ = run_method (&b, "gptq", fmt, opts);
  p.tensor_absmax = absmax_of (a.w, a.rows * n);
  g_assert_true (qb_format_row_bytes (fmt, n, &rb));
  for (gint64 r = 0; r < a.rows; r++)
    {
      fmt->dequantize_row (&p, qa + r * rb, ya, n);
      fmt->dequantize_row (&p, qb_ + r * rb, yb, n);
      for (gint64 j = 0; j < n; j++)
        g_assert_cmpfloat (yb[j], ==, ya[perm[j]]);
    }
  layer_clear (&a);
  layer_clear (&b);
}

/* A GPTQ Q4_K / Q6_K / Q4_0 tensor is a valid tensor of its type: the
 * standard ggml dequantizer reads it, every value finite and on its
 * block's grid, and its error is far below the weights' spread. */
static void
test_valid_ggml_blocks (void)
{
  static const char *formats[] = { "Q4_0", "Q4_K", "Q6_K", "Q2_K", "IQ4_XS" };
  Layer l;

  layer_init (&l, 512, 12, 19);
  for (gsize f = 0; f < G_N_ELEMENTS (formats); f++)
    {
      const QbFormat *fmt = qb_format_find (formats[f]);
      const QbDTypeInfo *info = qb_dtype_info (fmt->dtype);
      g_autofree guint8 *q = run_method (&l, "gptq", fmt, NULL);
      g_autofree float *y = g_new (float, l.n * l.rows);
      QbFormatGrid grid;
      guint64 rb;
      double err = 0, sig = 0;

      g_assert_true (qb_format_row_bytes (fmt, l.n, &rb));
      g_assert_cmpuint (rb, ==, l.n / info->block_size * info->type_size);
      info->to_float (q, y, l.n * l.rows);
      g_assert_true (qb_format_get_grid (fmt, l.n, &grid));
      for (gint64 r = 0; r < l.rows; r++)
        for (gint64 u = 0; u < l.n / grid.unit; u++)
          {
            guint lf = qb_format_grid_level_floats (&grid);
            g_autofree guint8 *copy = g_memdup2 (q + r * rb + u * grid.unit_bytes, grid.unit_bytes);
            g_autofree float *levels = g_new (float, grid.unit * lf);
            QbQuantParams p = { fmt, NULL, FALSE, 0 };

            qb_format_grid_read_levels (&grid, &p, copy, levels);
            for (gint64 i = 0; i < grid.unit; i++)
              {
                float v = y[r * l.n + u * grid.unit + i], lv;
                g_assert_true (isfinite (v));
                qb_format_grid_round (&grid, levels + i * lf, v, &lv);
                g_assert_cmpfloat_with_epsilon (lv, v, 1e-5f * (1 + fabsf (v)));
              }
          }
      for (gint64 i = 0; i < l.n * l.rows; i++)
        {
          err += (y[i] - l.w[i]) * (y[i] - l.w[i]);
          sig += l.w[i] * l.w[i];
        }
      g_test_message ("%s: weight rel. error %.3f", formats[f], sqrt (err / sig));
      g_assert_cmpfloat (err, <, 0.5 * sig);
    }
  layer_clear (&l);
}

static void
test_bad_options (void)
{
  Layer l;
  QbMethodContext ctx = { 0 };
  static const char *bad[][2] = {
    { "gptq.damp", "0" }, { "gptq.damp", "abc" }, { "gptq.block", "0" },
    { "gptq.act_order", "maybe" }, { "gptq.guard", "" },
  };

  layer_init (&l, 64, 4, 23);
  ctx.method = qb_method_find ("gptq");
  ctx.format = qb_format_find ("INT4_G32");
  ctx.n_cols = 64;
  ctx.n_rows = 4;
  ctx.gram = l.gram;
  ctx.gram_samples = l.samples;
  g_assert_true (qb_format_row_bytes (ctx.format, 64, &ctx.row_bytes));
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GHashTable) opts = options_new (bad[i][0], bad[i][1], NULL);
      g_autoptr(GError) error = NULL;

      ctx.options = opts;
      g_assert_null (ctx.method->prepare (&ctx, &error));
      g_assert_error (error, QB_GPTQ_ERROR, QB_GPTQ_ERROR_OPTION);
      g_assert_nonnull (strstr (error->message, bad[i][0]));
    }
  /* No statistics: a clear error, not a crash. */
  {
    g_autoptr(GError) error = NULL;
    ctx.options = NULL;
    ctx.gram = NULL;
    g_assert_null (ctx.method->prepare (&ctx, &error));
    g_assert_error (error, QB_GPTQ_ERROR, QB_GPTQ_ERROR_NO_STATISTICS);
  }
  layer_clear (&l);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/gptq/grid/pack", test_grid_pack);
  g_test_add_func ("/gptq/grid/none", test_grid_none);
  g_test_add_func ("/gptq/inverse-cholesky", test_inverse_cholesky);
  g_test_add_func ("/gptq/never-worse", test_never_worse);
  g_test_add_func ("/gptq/better-unguarded", test_better_unguarded);
  g_test_add_func ("/gptq/diagonal-is-rounding", test_diagonal_is_rounding);
  g_test_add_func ("/gptq/act-order-permutation", test_act_order_permutation);
  g_test_add_func ("/gptq/valid-ggml-blocks", test_valid_ggml_blocks);
  g_test_add_func ("/gptq/bad-options", test_bad_options);
  return g_test_run ();
}
