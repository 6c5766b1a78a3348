/* SPDX-License-Identifier: MIT */
/* qb-gptq.c — GPTQ over any format with a grid (see qb-gptq.h). */
#include "qb-gptq.h"
#include "qb-format-grid.h"
#include "qb-gptq-device-private.h"
#include "qb-linalg-private.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK (qb-gptq-error-quark, qb_gptq_error)

/* About a million values per call: enough rows that the lazy updates are
 * real matrix products, few enough that a call's scratch stays small. */
#define GPTQ_CHUNK_VALUES (1 << 20)
#define MAX_DAMP 1.0

typedef struct {
  double   damp;
  gboolean act_order;
  gint64   block;
  gboolean guard;
} GptqOptions;

typedef struct {
  GptqOptions  opt;
  gboolean     has_grid;      /* FALSE: the format rounds value by value */
  QbFormatGrid grid;
  guint        lf;            /* level floats per value */
  gint64       n;             /* columns */
  float       *u;             /* n × n upper Cholesky factor of H⁻¹, in work order */
  gint64      *order;         /* work position → column; NULL: natural order */
  float       *importance;    /* per column, for fixing a unit's parameters */
  gint64       block;         /* lazy batch width */
  gboolean     fix_up_front;  /* every unit fixed from the original weights */
  int          blas_threads;  /* restored by release */
  QbGptqDevice *device;       /* the updates on the selected device, or NULL */
} Gptq;

/* ---- options ------------------------------------------------------------ */

static gboolean
parse_bool (const char *v, gboolean *out)
{
  static const char *yes[] = { "1", "true", "yes", "on" }, *no[] = { "0", "false", "no", "off" };

  for (gsize i = 0; i < G_N_ELEMENTS (yes); i++)
    {
      if (g_ascii_strcasecmp (v, yes[i]) == 0)
        return *out = TRUE, TRUE;
      if (g_ascii_strcasecmp (v, no[i]) == 0)
        return *out = FALSE, TRUE;
    }
  return FALSE;
}

static gboolean
bad_option (const char *key, const char *value, const char *expected, GError **error)
{
  g_set_error (error, QB_GPTQ_ERROR, QB_GPTQ_ERROR_OPTION,
               "option %s = '%s': expected %s", key, value, expected);
  return FALSE;
}

static gboolean
read_options (GHashTable *options, GptqOptions *o, GError **error)
{
  const char *v;
  char *end;

  o->damp = QB_GPTQ_DEFAULT_DAMP;
  o->act_order = FALSE;
  o->block = QB_GPTQ_DEFAULT_BLOCK;
  o->guard = TRUE;
  if (options == NULL)
    return TRUE;
  if ((v = g_hash_table_lookup (options, "gptq.damp")) != NULL)
    {
      o->damp = g_ascii_strtod (v, &end);
      if (*v == '\0' || *end != '\0' || !(o->damp > 0 && o->damp <= MAX_DAMP))
        return bad_option ("gptq.damp", v, "a number in (0, 1]", error);
    }
  if ((v = g_hash_table_lookup (options, "gptq.block")) != NULL)
    {
      gint64 b = g_ascii_strtoll (v, &end, 10);
      if (*v == '\0' || *end != '\0' || b < 1 || b > 4096)
        return bad_option ("gptq.block", v, "a number of columns from 1 to 4096", error);
      o->block = b;
    }
  if ((v = g_hash_table_lookup (options, "gptq.act_order")) != NULL && !parse_bool (v, &o->act_order))
    return bad_option ("gptq.act_order", v, "true or false", error);
  if ((v = g_hash_table_lookup (options, "gptq.guard")) != NULL && !parse_bool (v, &o->guard))
    return bad_option ("gptq.guard", v, "true or false", error);
  return TRUE;
}

/* ---- prepare: the Hessian and its inverse factor ------------------------- */

static void
gptq_free (Gptq *g)
{
  if (g == NULL)
    return;
  qb_gptq_device_free (g->device);
  g_free (g->u);
  g_free (g->order);
  g_free (g->importance);
  g_free (g);
}

typedef struct {
  double  value;
  gint64  index;
} Ranked;

static int
compare_ranked (const void *a, const void *b)
{
  const Ranked *x = a, *y = b;

  if (x->value != y->value)
    return x->value > y->value ? -1 : 1;   /* larger diagonal first */
  return (x->index > y->index) - (x->index < y->index);
}

/* Work order for act-order: decreasing H_jj, ties by column. */
static gint64 *
act_order (const double *gram, gint64 n)
{
  g_autofree Ranked *r = g_new (Ranked, n);
  gint64 *order = g_new (gint64, n);

  for (gint64 j = 0; j < n; j++)
    r[j] = (Ranked) { gram[j * n + j], j };
  qsort (r, n, sizeof *r, compare_ranked);
  for (gint64 j = 0; j < n; j++)
    order[j] = r[j].index;
  return order;
}

/* H = XᵀX / samples in work order, dead columns at 1, plus λ·mean(diag). */
static void
fill_hessian (const Gptq *g, const QbMethodContext *ctx, double damp, double *h)
{
  gint64 n = g->n;
  double scale = 1.0 / (double) ctx->gram_samples, mean = 0;

  for (gint64 a = 0; a < n; a++)
    {
      gint64 ia = g->order ? g->order[a] : a;
      for (gint64 b = 0; b < n; b++)
        h[a * n + b] = ctx->gram[ia * n + (g->order ? g->order[b] : b)] * scale;
    }
  for (gint64 a = 0; a < n; a++)
    {
      if (!(h[a * n + a] > 0))
        h[a * n + a] = 1;
      mean += h[a * n + a];
    }
  mean /= n;
  for (gint64 a = 0; a < n; a++)
    h[a * n + a] += damp * mean;
}

/* The importance that fixes a unit's parameters: the imatrix when the job
 * has one, else diag(XᵀX)/samples; dead columns get a sliver of the mean
 * so that a block of them still gets a scale. */
static float *
unit_importance (const QbMethodContext *ctx, gint64 n)
{
  float *imp = g_new (float, n);
  double mean = 0;

  for (gint64 j = 0; j < n; j++)
    {
      imp[j] = ctx->importance ? ctx->importance[j]
                               : (float) (ctx->gram[j * n + j] / (double) ctx->gram_samples);
      mean += imp[j];
    }
  mean = mean > 0 ? mean / n : 1.0;
  for (gint64 j = 0; j < n; j++)
    if (!(imp[j] > 1e-6 * mean))
      imp[j] = (float) (1e-6 * mean);
  return imp;
}

static gboolean
factor_hessian (Gptq *g, const QbMethodContext *ctx, GError **error)
{
  gint64 n = g->n;
  g_autofree double *h = g_try_new (double, (gsize) n * n);

  if (h == NULL || (g->u = g_try_new (float, (gsize) n * n)) == NULL)
    {
      g_set_error (error, QB_GPTQ_ERROR, QB_GPTQ_ERROR_NO_MEMORY,
                   "out of memory for the %" G_GINT64_FORMAT "² Hessian", n);
      return FALSE;
    }
  for (double damp = g->opt.damp; ; damp *= 10)
    {
      fill_hessian (g, ctx, MIN (damp, MAX_DAMP), h);
      if (qb_inverse_cholesky_upper (h, n))
        break;
      if (damp >= MAX_DAMP)
        {
          g_set_error (error, QB_GPTQ_ERROR, QB_GPTQ_ERROR_NOT_POSITIVE,
                       "the Hessian (XᵀX) is not positive definite even with dampening %g "
                       "(are the calibration statistics finite?)", MAX_DAMP);
          return FALSE;
        }
      g_debug ("GPTQ: %s: dampening %g was not enough, trying %g", ctx->tensor_name, damp,
               damp * 10);
    }
  for (gint64 i = 0; i < n * n; i++)
    g->u[i] = (float) h[i];
  return TRUE;
}

static gpointer
gptq_prepare (const QbMethodContext *ctx, GError **error)
{
  Gptq *g = g_new0 (Gptq, 1);

  g->n = ctx->n_cols;
  if (!read_options (ctx->options, &g->opt, error))
    goto fail;
  g->has_grid = qb_format_get_grid (ctx->format, ctx->n_cols, &g->grid);
  if (!g->has_grid)
    return g;
  if (ctx->gram == NULL || ctx->gram_samples == 0)
    {
      g_set_error (error, QB_GPTQ_ERROR, QB_GPTQ_ERROR_NO_STATISTICS,
                   "GPTQ needs the Gram matrix XᵀX of the layer's input (calibration statistics)");
      goto fail;
    }
  g->lf = qb_format_grid_level_floats (&g->grid);
  if (g->opt.act_order)
    g->order = act_order (ctx->gram, g->n);
  if (!factor_hessian (g, ctx, error))
    goto fail;
  g->importance = unit_importance (ctx, g->n);

  /* A unit is fixed when its first column comes up, with all of its
   * columns inside the current batch (so they carry every update). */
  g->fix_up_front = g->order != NULL || g->grid.unit >= g->n;
  g->block = g->opt.block;
  if (!g->fix_up_front)
    g->block = MAX (1, (g->block + g->grid.unit - 1) / g->grid.unit) * g->grid.unit;
  /* The updates (and the guard's products) on the selected device, when
   * there are batches after the first. */
  if (g->block < g->n)
    g->device = qb_gptq_device_new (ctx->tensor_name, g->u, g->opt.guard ? ctx->gram : NULL, g->n);

  /* quantize_rows runs on the engine's workers: one BLAS thread each. */
  g->blas_threads = openblas_get_num_threads ();
  openblas_set_num_threads (1);
  return g;

fail:
  gptq_free (g);
  return NULL;
}

static void
gptq_release (gpointer state)
{
  Gptq *g = state;

  if (g->has_grid)
    openblas_set_num_threads (g->blas_threads);
  gptq_free (g);
}

/* ---- the rows -------------------------------------------------------------- */

typedef struct {
  const QbMethodContext *ctx;
  Gptq    *g;
  gint64   n_rows;
  float   *w;        /* n_rows × n, work order, updated as columns are rounded */
  float   *err;      /* n_rows × block: scaled errors of the current batch */
  float   *levels;   /* n_rows × n × lf, column order */
  guint8  *codes;    /* n_rows × n, column order */
  guint8  *out;
} Rows;

/* Fixes unit u of row r from x (the unit's values) into the output row. */
static void
fix_unit (Rows *rw, gint64 r, gint64 u, const float *x)
{
  Gptq *g = rw->g;
  gint64 col = u * g->grid.unit;
  QbQuantParams p;

  qb_method_context_params (rw->ctx, &p);
  p.importance = g->importance + col;
  qb_format_grid_fix (&g->grid, &p, x, rw->out + r * rw->ctx->row_bytes + u * g->grid.unit_bytes,
                      rw->levels + (r * g->n + col) * g->lf);
}

/* Rounds work position p of every row and spreads the error over the rest
 * of the batch (up to i2). */
static void
round_column (Rows *rw, gint64 p, gint64 i1, gint64 i2)
{
  Gptq *g = rw->g;
  gint64 n = g->n, col = g->order ? g->order[p] : p;
  const float *urow = g->u + p * n;
  float d = urow[p];

  if (!g->fix_up_front && col % g->grid.unit == 0)
    for (gint64 r = 0; r < rw->n_rows; r++)
      fix_unit (rw, r, col / g->grid.unit, rw->w + r * n + p);

  for (gint64 r = 0; r < rw->n_rows; r++)
    {
      float *wr = rw->w + r * n, q, e;
      guint k = qb_format_grid_round (&g->grid, rw->levels + (r * n + col) * g->lf, wr[p], &q);

      rw->codes[r * n + col] = (guint8) k;
      e = (wr[p] - q) / d;
      rw->err[r * g->block + (p - i1)] = e;
      for (gint64 c = p + 1; c < i2; c++)
        wr[c] -= e * urow[c];
    }
}

static void
to_work_order (const Gptq *g, const float *w, gint64 R, float *dst)
{
  gint64 n = g->n;

  for (gint64 r = 0; r < R; r++)
    for (gint64 c = 0; c < n; c++)
      dst[r * n + c] = w[r * n + (g->order ? g->order[c] : c)];
}

/* The rows through every batch; with dr, W lives on the device, the
 * batch's columns come back before they are rounded and the updates run
 * there.  FALSE (error set) when the device failed. */
static gboolean
gptq_rows (Rows *rw, const float *w, QbGptqDeviceRows *dr, GError **error)
{
  Gptq *g = rw->g;
  gint64 n = g->n, R = rw->n_rows, unit = g->grid.unit;

  to_work_order (g, w, R, rw->w);
  if (g->fix_up_front)
    for (gint64 r = 0; r < R; r++)
      for (gint64 u = 0; u < n / unit; u++)
        fix_unit (rw, r, u, w + r * n + u * unit);

  for (gint64 i1 = 0; i1 < n; i1 += g->block)
    {
      gint64 i2 = MIN (i1 + g->block, n);

      if (dr != NULL && i1 > 0 && !qb_gptq_device_rows_fetch (dr, rw->w, i1, i2, error))
        return FALSE;
      for (gint64 p = i1; p < i2; p++)
        round_column (rw, p, i1, i2);
      /* The batch's errors reach every later column at once. */
      if (i2 < n && dr != NULL && !qb_gptq_device_rows_update (dr, rw->err, i1, i2, error))
        return FALSE;
      if (i2 < n && dr == NULL)
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) R, (int) (n - i2),
                     (int) (i2 - i1), -1.0f, rw->err, (int) g->block, g->u + i1 * n + i2, (int) n,
                     1.0f, rw->w + i2, (int) n);
    }

  for (gint64 r = 0; r < R; r++)
    for (gint64 u = 0; u < n / unit; u++)
      qb_format_grid_pack (&g->grid, rw->codes + r * n + u * unit,
                           rw->out + r * rw->ctx->row_bytes + u * g->grid.unit_bytes);
  return TRUE;
}

/* On the device when there is one; a device that fails leaves this chunk
 * (done again from the start) and the tensor's others to the CPU. */
static void
gptq_rows_anywhere (Rows *rw, const float *w)
{
  Gptq *g = rw->g;
  g_autoptr(GError) error = NULL;

  if (qb_gptq_device_usable (g->device))
    {
      g_autoptr(QbGptqDeviceRows) dr = NULL;

      /* W goes up in work order (gptq_rows starts its host copy alike). */
      to_work_order (g, w, rw->n_rows, rw->w);
      dr = qb_gptq_device_rows_new (g->device, rw->w, rw->n_rows, g->block, &error);
      if (dr != NULL && gptq_rows (rw, w, dr, &error))
        return;
      qb_gptq_device_failed (g->device, error);
    }
  gptq_rows (rw, w, NULL, NULL);
}

/* ---- the guard --------------------------------------------------------------- */

static gboolean
quadratic_forms_device (Gptq *g, const double *e, gint64 m, double *out)
{
  g_autoptr(GError) error = NULL;

  if (!qb_gptq_device_usable (g->device))
    return FALSE;
  if (qb_gptq_device_quadratic_forms (g->device, e, m, out, &error))
    return TRUE;
  if (error != NULL)
    qb_gptq_device_failed (g->device, error);
  return FALSE;
}

/* Replaces the rows where rounding ("rtn", same importance) leaves a
 * smaller output error than GPTQ did. */
static void
guard_rows (const QbMethodContext *ctx, Gptq *g, const float *w, gint64 R, guint8 *out)
{
  gint64 n = ctx->n_cols;
  guint64 rb = ctx->row_bytes;
  g_autofree guint8 *rtn = g_malloc (R * rb);
  g_autofree float *y = g_new (float, n);
  g_autofree double *e = g_new (double, (gsize) 2 * R * n);
  g_autofree double *obj = g_new (double, 2 * R);
  QbQuantParams p;

  qb_method_context_params (ctx, &p);
  for (gint64 r = 0; r < R; r++)
    {
      const float *wr = w + r * n;

      ctx->format->quantize_row (&p, wr, rtn + r * rb, n);
      ctx->format->dequantize_row (&p, out + r * rb, y, n);
      for (gint64 j = 0; j < n; j++)
        e[r * n + j] = (double) wr[j] - y[j];
      ctx->format->dequantize_row (&p, rtn + r * rb, y, n);
      for (gint64 j = 0; j < n; j++)
        e[(R + r) * n + j] = (double) wr[j] - y[j];
    }
  if (!quadratic_forms_device (g, e, 2 * R, obj))
    qb_quadratic_forms (ctx->gram, e, 2 * R, n, obj);
  for (gint64 r = 0; r < R; r++)
    if (obj[R + r] < obj[r])
      memcpy (out + r * rb, rtn + r * rb, rb);
}

static void
gptq_quantize_rows (const QbMethodContext *ctx, gpointer state, const float *w,
                    gint64 n_rows, guint8 *out)
{
  Gptq *g = state;
  Rows rw = { ctx, g, n_rows, NULL, NULL, NULL, NULL, out };
  gint64 n = ctx->n_cols;

  if (!g->has_grid)
    {
      QbQuantParams p;
      qb_method_context_params (ctx, &p);
      for (gint64 r = 0; r < n_rows; r++)
        ctx->format->quantize_row (&p, w + r * n, out + r * ctx->row_bytes, n);
      return;
    }
  rw.w = g_new (float, (gsize) n_rows * n);
  rw.err = g_new (float, (gsize) n_rows * g->block);
  rw.levels = g_new (float, (gsize) n_rows * n * g->lf);
  rw.codes = g_new (guint8, (gsize) n_rows * n);
  gptq_rows_anywhere (&rw, w);
  if (g->opt.guard)
    guard_rows (ctx, g, w, n_rows, out);
  g_free (rw.w);
  g_free (rw.err);
  g_free (rw.levels);
  g_free (rw.codes);
}

static const QbMethod gptq_method = {
  .name = "gptq",
  .summary = "GPTQ: round column by column, pushing each error onto the columns left "
             "through the inverse Hessian from calibration (XᵀX)",
  .needs_gram = TRUE,
  .chunk_values = GPTQ_CHUNK_VALUES,
  .prepare = gptq_prepare,
  .quantize_rows = gptq_quantize_rows,
  .release = gptq_release,
};

const QbMethod *
qb_gptq_method (void)
{
  return &gptq_method;
}
