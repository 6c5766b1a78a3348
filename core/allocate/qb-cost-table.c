/* SPDX-License-Identifier: MIT */
/* qb-cost-table.c — the cost table and its proxy-only filling. */
#include <math.h>
#include <string.h>

#include "qb-cost-table.h"

QbCostTable *
qb_cost_table_new (void)
{
  return g_new0 (QbCostTable, 1);
}

void
qb_cost_table_free (QbCostTable *table)
{
  if (table == NULL)
    return;
  for (guint i = 0; i < table->n_tensors; i++)
    {
      g_free (table->tensors[i].name);
      g_free (table->tensors[i].candidates);
    }
  g_free (table->tensors);
  g_free (table);
}

QbCostTensor *
qb_cost_table_add_tensor (QbCostTable *table, const char *name, guint tensor_index,
                          gint64 n_weights, gint64 row_length)
{
  g_return_val_if_fail (table != NULL && name != NULL, NULL);
  table->tensors = g_renew (QbCostTensor, table->tensors, table->n_tensors + 1);
  QbCostTensor *t = &table->tensors[table->n_tensors++];
  *t = (QbCostTensor) { .name = g_strdup (name), .tensor_index = tensor_index,
                        .n_weights = n_weights, .row_length = row_length };
  return t;
}

QbCostCandidate *
qb_cost_tensor_add_candidate (QbCostTensor *tensor, const QbFormat *format, guint64 bytes,
                              double cost, double proxy, gboolean measured)
{
  g_return_val_if_fail (tensor != NULL && format != NULL, NULL);
  if (!qb_format_fits (format, tensor->row_length) || qb_cost_tensor_find (tensor, format))
    return NULL;
  tensor->candidates = g_renew (QbCostCandidate, tensor->candidates, tensor->n_candidates + 1);
  QbCostCandidate *c = &tensor->candidates[tensor->n_candidates++];
  *c = (QbCostCandidate) { .format = format, .bytes = bytes, .cost = cost,
                           .proxy = proxy, .measured = measured };
  return c;
}

void
qb_cost_table_add_fixed (QbCostTable *table, guint64 bytes, gint64 n_weights)
{
  table->fixed_bytes += bytes;
  table->fixed_weights += n_weights;
}

const QbCostTensor *
qb_cost_table_find (const QbCostTable *table, const char *name)
{
  for (guint i = 0; i < table->n_tensors; i++)
    if (g_str_equal (table->tensors[i].name, name))
      return &table->tensors[i];
  return NULL;
}

const QbCostCandidate *
qb_cost_tensor_find (const QbCostTensor *tensor, const QbFormat *format)
{
  for (guint k = 0; k < tensor->n_candidates; k++)
    if (tensor->candidates[k].format == format)
      return &tensor->candidates[k];
  return NULL;
}

gint64
qb_cost_table_n_weights (const QbCostTable *table)
{
  gint64 n = table->fixed_weights;
  for (guint i = 0; i < table->n_tensors; i++)
    n += table->tensors[i].n_weights;
  return n;
}

const char * const *
qb_cost_default_candidates (void)
{
  static const char * const ladder[] = {
    "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_0",
    "Q4_0", "Q5_0", "INT4_CH", "INT8_CH", "F16", NULL,
  };
  return ladder;
}

const QbFormat **
qb_cost_parse_candidates (const char *list, guint *n_out, GError **error)
{
  g_auto(GStrv) names = g_strsplit (list, ",", -1);
  g_autofree const QbFormat **formats = g_new0 (const QbFormat *, g_strv_length (names) + 1);
  guint n = 0;

  for (guint i = 0; names[i] != NULL; i++)
    {
      const char *name = g_strstrip (names[i]);
      if (*name == '\0')
        continue;
      const QbFormat *f = qb_format_find (name);
      if (f == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "unknown candidate format '%s'", name);
          return NULL;
        }
      for (guint j = 0; j < n; j++)
        if (formats[j] == f)
          {
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                         "candidate format '%s' is listed twice", f->name);
            return NULL;
          }
      formats[n++] = f;
    }
  if (n == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no candidate formats given");
      return NULL;
    }
  *n_out = n;
  return g_steal_pointer (&formats);
}

/* ---- proxy-only table -------------------------------------------------- */

typedef struct {
  QbModel          *model;
  const QbFormat  **candidates;
  guint             n_candidates;
  QbImatrix        *importance;
  GCancellable     *cancellable;
  guint            *tensor_of_item;   /* model tensor index per item */
  double           *proxy;            /* item × candidate: relative error, NAN = does not fit */
  GError          **errors;           /* per item */
} ProxyJob;

static gboolean
quantizable (const QbTensor *t)
{
  gboolean one_d = t->ne[1] == 1 && t->ne[2] == 1 && t->ne[3] == 1;
  return !one_d && !t->is_bias && qb_dtype_is_readable (t->dtype) && t->ne[0] > 0;
}

/* Relative error Σ w (x − q(x))² / Σ w x² of the sampled rows in one format. */
static double
relative_error (const QbFormat *f, const float *rows, gint64 n_rows, gint64 n,
                const float *importance, float absmax, guint8 *code, float *back)
{
  QbQuantParams p = { .format = f, .importance = importance, .tensor_absmax = absmax };
  double err = 0, energy = 0;

  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *x = rows + r * n;
      f->quantize_row (&p, x, code, n);
      f->dequantize_row (&p, code, back, n);
      for (gint64 j = 0; j < n; j++)
        {
          double w = importance ? importance[j] : 1.0;
          double d = (double) x[j] - back[j];
          err += w * d * d;
          energy += w * (double) x[j] * x[j];
        }
    }
  return energy > 0 ? err / energy : 0.0;
}

static void
proxy_one (gint64 item, guint thread, gpointer user_data)
{
  ProxyJob *job = user_data;
  guint index = job->tensor_of_item[item];
  const QbTensor *t = qb_model_get_tensor (job->model, index);
  gint64 n = t->ne[0], total_rows = qb_tensor_n_rows (t);
  gint64 n_rows = MIN (total_rows, QB_COST_PROXY_ROWS);
  const float *importance = NULL;
  guint n_cols = 0;

  (void) thread;
  if (g_cancellable_is_cancelled (job->cancellable))
    return;
  if (job->importance != NULL)
    {
      importance = qb_imatrix_get (job->importance, t->name, &n_cols);
      if (importance != NULL && n_cols != (guint) n)
        importance = NULL;
    }

  g_autofree float *rows = g_new (float, n_rows * n);
  g_autofree float *back = g_new (float, n);
  guint64 row_bytes = 0;
  for (guint k = 0; k < job->n_candidates; k++)
    {
      guint64 b;
      if (qb_format_row_bytes (job->candidates[k], n, &b))
        row_bytes = MAX (row_bytes, b);
    }
  g_autofree guint8 *code = g_malloc (row_bytes + 64);

  /* Rows spread evenly: row r·total/n_rows for r < n_rows. */
  float absmax = 0;
  for (gint64 r = 0; r < n_rows; r++)
    {
      gint64 row = r * total_rows / n_rows;
      if (!qb_model_read_rows (job->model, index, row, 1, rows + r * n, &job->errors[item]))
        return;
      for (gint64 j = 0; j < n; j++)
        absmax = MAX (absmax, fabsf (rows[r * n + j]));
    }
  for (guint k = 0; k < job->n_candidates; k++)
    {
      const QbFormat *f = job->candidates[k];
      job->proxy[item * job->n_candidates + k] =
        qb_format_fits (f, n) ? relative_error (f, rows, n_rows, n, importance, absmax, code, back)
                              : NAN;
    }
}

QbCostTable *
qb_cost_table_new_proxy (QbModel *model, const QbFormat **candidates, guint n_candidates,
                         QbImatrix *importance, QbWorkers *workers, GCancellable *cancellable,
                         GError **error)
{
  g_return_val_if_fail (QB_IS_MODEL (model), NULL);
  g_return_val_if_fail (candidates != NULL && n_candidates > 0, NULL);

  guint n_model = qb_model_get_n_tensors (model);
  g_autoptr(QbCostTable) table = qb_cost_table_new ();
  g_autofree guint *items = g_new (guint, MAX (n_model, 1));
  guint n_items = 0;

  for (guint i = 0; i < n_model; i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      if (quantizable (t))
        items[n_items++] = i;
      else
        qb_cost_table_add_fixed (table, t->n_bytes, t->n_params);
    }

  ProxyJob job = {
    .model = model, .candidates = candidates, .n_candidates = n_candidates,
    .importance = importance, .cancellable = cancellable, .tensor_of_item = items,
    .proxy = g_new0 (double, (gsize) MAX (n_items, 1) * n_candidates),
    .errors = g_new0 (GError *, MAX (n_items, 1)),
  };
  g_autoptr(QbWorkers) own = workers ? NULL : qb_workers_new (0);
  qb_workers_run (workers ? workers : own, n_items, proxy_one, &job);

  gboolean ok = !g_cancellable_set_error_if_cancelled (cancellable, error);
  for (guint i = 0; i < n_items; i++)
    if (ok && job.errors[i] != NULL)
      {
        g_propagate_error (error, job.errors[i]);
        job.errors[i] = NULL;
        ok = FALSE;
      }
  for (guint i = 0; ok && i < n_items; i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, items[i]);
      QbCostTensor *ct = qb_cost_table_add_tensor (table, t->name, items[i], t->n_params,
                                                  t->ne[0]);
      for (guint k = 0; k < n_candidates; k++)
        {
          double proxy = job.proxy[i * n_candidates + k];
          guint64 bytes;
          if (isnan (proxy)
              || !qb_format_tensor_bytes (candidates[k], t->ne[0], qb_tensor_n_rows (t), &bytes))
            continue;
          qb_cost_tensor_add_candidate (ct, candidates[k], bytes,
                                        QB_COST_PROXY_KLD_FACTOR * proxy / n_items, proxy, FALSE);
        }
      if (ct->n_candidates == 0)
        {
          const QbFormat *f16 = qb_format_find ("F16");
          guint64 bytes = 0;
          qb_format_tensor_bytes (f16, t->ne[0], qb_tensor_n_rows (t), &bytes);
          qb_cost_tensor_add_candidate (ct, f16, bytes, 0.0, 0.0, FALSE);
        }
    }
  for (guint i = 0; i < n_items; i++)
    g_clear_error (&job.errors[i]);
  g_free (job.errors);
  g_free (job.proxy);
  return ok ? g_steal_pointer (&table) : NULL;
}
