/* SPDX-License-Identifier: MIT */
/* qb-document.c — an open model, its plan, and a row per tensor. */
#include "qb-document.h"

#include <math.h>

#include "qb-demo-model.h"
#include "qb-tensor-quantizer.h"

struct _QbDocument
{
  GObject            parent_instance;

  QbModel           *model;
  QbPlan            *plan;
  gulong             plan_changed_id;
  GListStore        *rows;
  GPtrArray         *row_array;      /* QbTensorRow by model index (borrowed from rows) */
  QbPlanResolution  *resolution;
  GError            *plan_error;
  guint              bulk_depth;
  gboolean           bulk_dirty;

  GCancellable      *stats_cancellable;
  QbTensorRow       *stats_row;      /* the row being computed, owned */

  char             **calib_paths;    /* calibration texts for runs, or NULL */
  QbCalibrationOptions calib_opts;
};

G_DEFINE_FINAL_TYPE (QbDocument, qb_document, G_TYPE_OBJECT)

enum {
  TOTALS_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
qb_document_dispose (GObject *object)
{
  QbDocument *self = QB_DOCUMENT (object);

  if (self->stats_cancellable)
    g_cancellable_cancel (self->stats_cancellable);
  g_clear_object (&self->stats_cancellable);
  g_clear_object (&self->stats_row);
  if (self->plan && self->plan_changed_id)
    g_clear_signal_handler (&self->plan_changed_id, self->plan);
  g_clear_object (&self->plan);
  g_clear_pointer (&self->row_array, g_ptr_array_unref);
  g_clear_object (&self->rows);
  g_clear_object (&self->model);
  G_OBJECT_CLASS (qb_document_parent_class)->dispose (object);
}

static void
qb_document_finalize (GObject *object)
{
  QbDocument *self = QB_DOCUMENT (object);

  g_clear_pointer (&self->resolution, qb_plan_resolution_free);
  g_clear_error (&self->plan_error);
  g_clear_pointer (&self->calib_paths, g_strfreev);
  G_OBJECT_CLASS (qb_document_parent_class)->finalize (object);
}

static void
qb_document_class_init (QbDocumentClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = qb_document_dispose;
  object_class->finalize = qb_document_finalize;

  /* The plan was resolved again: rows and totals are up to date. */
  signals[TOTALS_CHANGED] =
    g_signal_new ("totals-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
qb_document_init (QbDocument *self)
{
  self->rows = g_list_store_new (QB_TYPE_TENSOR_ROW);
  self->row_array = g_ptr_array_new ();
  qb_calibration_options_init (&self->calib_opts);
}

/* Resolves the plan and pushes each tensor's choice into its row. */
static void
resolve (QbDocument *self)
{
  g_autoptr(GError) error = NULL;
  QbPlanResolution *res;

  if (self->bulk_depth > 0)
    {
      self->bulk_dirty = TRUE;
      return;
    }

  res = qb_plan_resolve (self->plan, self->model, &error);
  g_clear_error (&self->plan_error);
  g_clear_pointer (&self->resolution, qb_plan_resolution_free);
  if (res == NULL)
    self->plan_error = g_steal_pointer (&error);
  else
    {
      self->resolution = res;
      for (guint i = 0; i < res->n_tensors && i < self->row_array->len; i++)
        {
          QbTensorRow *row = g_ptr_array_index (self->row_array, i);
          gboolean overridden = qb_plan_get_override (self->plan, qb_tensor_row_get_name (row),
                                                      NULL, NULL);
          qb_tensor_row_set_choice (row, &res->choices[i], overridden);
        }
    }
  g_signal_emit (self, signals[TOTALS_CHANGED], 0);
}

static void
on_plan_changed (QbPlan     *plan,
                 QbDocument *self)
{
  resolve (self);
}

static void
take_plan (QbDocument *self,
           QbPlan     *plan)
{
  if (self->plan && self->plan_changed_id)
    g_clear_signal_handler (&self->plan_changed_id, self->plan);
  g_set_object (&self->plan, plan);
  self->plan_changed_id = g_signal_connect (plan, "changed", G_CALLBACK (on_plan_changed), self);
}

QbDocument *
qb_document_new (QbModel    *model,
                 const char *default_format)
{
  QbDocument *self = g_object_new (QB_TYPE_DOCUMENT, NULL);
  g_autoptr(QbPlan) plan = qb_plan_new ();
  guint n = qb_model_get_n_tensors (model);
  g_autoptr(GPtrArray) rows = g_ptr_array_new_full (n, g_object_unref);

  self->model = g_object_ref (model);
  if (default_format && qb_format_find (default_format))
    qb_plan_set_default_format (plan, default_format);
  take_plan (self, plan);

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (rows, qb_tensor_row_new (i, qb_model_get_tensor (model, i)));
  /* One splice: the table sees a single change, not thousands. */
  g_list_store_splice (self->rows, 0, 0, rows->pdata, rows->len);
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (self->row_array, g_ptr_array_index (rows, i));

  resolve (self);
  return self;
}

static void
load_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  const char *path = task_data;
  g_autofree char *demo = NULL;
  GError *error = NULL;
  QbModel *model;

  /* No path: the built-in demo model, generated on first use. */
  if (path == NULL)
    {
      path = demo = qb_demo_model_get_default (cancellable, &error);
      if (path == NULL)
        {
          g_task_return_error (task, error);
          return;
        }
    }
  model = qb_model_open (path, &error);

  if (model == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, model, g_object_unref);
}

void
qb_document_load_async (const char          *path,
                        const char          *default_format,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, qb_document_load_async);
  g_task_set_task_data (task, g_strdup (path), g_free);
  g_object_set_data_full (G_OBJECT (task), "default-format", g_strdup (default_format), g_free);
  g_task_run_in_thread (task, load_thread);
}

QbDocument *
qb_document_load_finish (GAsyncResult  *result,
                         GError       **error)
{
  g_autoptr(QbModel) model = NULL;

  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  model = g_task_propagate_pointer (G_TASK (result), error);
  if (model == NULL)
    return NULL;
  /* Rows are made here, on the main thread, as GListStore wants. */
  return qb_document_new (model, g_object_get_data (G_OBJECT (result), "default-format"));
}

QbModel *
qb_document_get_model (QbDocument *self)
{
  g_return_val_if_fail (QB_IS_DOCUMENT (self), NULL);
  return self->model;
}

QbPlan *
qb_document_get_plan (QbDocument *self)
{
  g_return_val_if_fail (QB_IS_DOCUMENT (self), NULL);
  return self->plan;
}

void
qb_document_set_plan (QbDocument *self,
                      QbPlan     *plan)
{
  g_return_if_fail (QB_IS_DOCUMENT (self));
  g_return_if_fail (QB_IS_PLAN (plan));

  take_plan (self, plan);
  resolve (self);
}

GListModel *
qb_document_get_rows (QbDocument *self)
{
  g_return_val_if_fail (QB_IS_DOCUMENT (self), NULL);
  return G_LIST_MODEL (self->rows);
}

QbTensorRow *
qb_document_get_row (QbDocument *self,
                     guint       index)
{
  g_return_val_if_fail (QB_IS_DOCUMENT (self), NULL);
  return index < self->row_array->len ? g_ptr_array_index (self->row_array, index) : NULL;
}

QbTensorRow *
qb_document_find_row (QbDocument *self,
                      const char *name)
{
  guint index;

  g_return_val_if_fail (QB_IS_DOCUMENT (self), NULL);
  if (qb_model_find_tensor (self->model, name, &index) == NULL)
    return NULL;
  return qb_document_get_row (self, index);
}

const QbPlanResolution *
qb_document_get_resolution (QbDocument *self)
{
  g_return_val_if_fail (QB_IS_DOCUMENT (self), NULL);
  return self->resolution;
}

const GError *
qb_document_get_plan_error (QbDocument *self)
{
  g_return_val_if_fail (QB_IS_DOCUMENT (self), NULL);
  return self->plan_error;
}

char *
qb_document_describe_arch (QbDocument *self)
{
  const QbArchInfo *a = qb_model_get_arch (self->model);
  GString *s = g_string_new (a->family ? a->family : "unknown");

  if (a->n_layer)
    g_string_append_printf (s, " · %u layers", a->n_layer);
  if (a->n_embd)
    g_string_append_printf (s, " · %u hidden", a->n_embd);
  if (a->n_head)
    {
      g_string_append_printf (s, " · %u heads", a->n_head);
      if (a->n_head_kv && a->n_head_kv != a->n_head)
        g_string_append_printf (s, " (%u KV)", a->n_head_kv);
    }
  if (a->n_ff)
    g_string_append_printf (s, " · FFN %u", a->n_ff);
  if (a->n_vocab)
    g_string_append_printf (s, " · vocab %u", a->n_vocab);
  if (a->n_ctx)
    g_string_append_printf (s, " · context %u", a->n_ctx);
  return g_string_free (s, FALSE);
}

static char *
format_params (gint64 n)
{
  if (n >= 1000000000)
    return g_strdup_printf ("%.2fB", n / 1e9);
  if (n >= 1000000)
    return g_strdup_printf ("%.1fM", n / 1e6);
  if (n >= 1000)
    return g_strdup_printf ("%.1fK", n / 1e3);
  return g_strdup_printf ("%" G_GINT64_FORMAT, n);
}

char *
qb_document_describe_totals (QbDocument *self)
{
  const QbPlanResolution *r = self->resolution;
  g_autofree char *params = format_params (qb_model_get_n_params (self->model));
  g_autofree char *original = NULL;
  g_autofree char *quantized = NULL;

  if (r == NULL)
    return g_strdup_printf ("%s params · the plan has an error", params);
  original = g_format_size (r->original_bytes);
  quantized = g_format_size (r->quantized_bytes);
  return g_strdup_printf ("%s params · %s → %s · %.2f bpw · %.2f× smaller · %u fallback%s", params,
                          original, quantized, r->bpw,
                          r->quantized_bytes ? (double) r->original_bytes / r->quantized_bytes : 0.0,
                          r->n_fallbacks, r->n_fallbacks == 1 ? "" : "s");
}

void
qb_document_begin_bulk_edit (QbDocument *self)
{
  g_return_if_fail (QB_IS_DOCUMENT (self));
  self->bulk_depth++;
}

void
qb_document_end_bulk_edit (QbDocument *self)
{
  g_return_if_fail (QB_IS_DOCUMENT (self));
  g_return_if_fail (self->bulk_depth > 0);

  if (--self->bulk_depth == 0 && self->bulk_dirty)
    {
      self->bulk_dirty = FALSE;
      resolve (self);
    }
}

void
qb_document_set_formats (QbDocument   *self,
                         QbTensorRow **rows,
                         guint         n_rows,
                         const char   *format)
{
  g_return_if_fail (QB_IS_DOCUMENT (self));

  qb_document_begin_bulk_edit (self);
  for (guint i = 0; i < n_rows; i++)
    qb_plan_set_override (self->plan, qb_tensor_row_get_name (rows[i]), format, NULL);
  qb_document_end_bulk_edit (self);
}

void
qb_document_clear_overrides (QbDocument   *self,
                             QbTensorRow **rows,
                             guint         n_rows)
{
  g_return_if_fail (QB_IS_DOCUMENT (self));

  qb_document_begin_bulk_edit (self);
  for (guint i = 0; i < n_rows; i++)
    qb_plan_clear_override (self->plan, qb_tensor_row_get_name (rows[i]));
  qb_document_end_bulk_edit (self);
}

void
qb_document_highlight_rule (QbDocument *self,
                            int         index)
{
  gboolean valid;

  g_return_if_fail (QB_IS_DOCUMENT (self));

  valid = index >= 0 && (guint) index < qb_plan_get_n_rules (self->plan);
  for (guint i = 0; i < self->row_array->len; i++)
    {
      QbTensorRow *row = g_ptr_array_index (self->row_array, i);
      const QbTensor *t = qb_model_get_tensor (self->model, qb_tensor_row_get_index (row));

      /* Where the rule acts: not on the 1-D tensors keep_1d keeps. */
      qb_tensor_row_set_highlighted (row, valid && qb_plan_rule_matches (self->plan, index, t->name)
                                          && !qb_plan_keeps_1d_tensor (self->plan, t));
    }
}

guint
qb_document_count_highlighted (QbDocument *self)
{
  guint n = 0;

  for (guint i = 0; i < self->row_array->len; i++)
    n += qb_tensor_row_get_highlighted (g_ptr_array_index (self->row_array, i));
  return n;
}

void
qb_document_set_result (QbDocument     *self,
                        guint           index,
                        QbTensorResult *result)
{
  QbTensorRow *row = qb_document_get_row (self, index);

  if (row == NULL)
    {
      qb_tensor_result_free (result);
      return;
    }
  qb_tensor_row_set_result (row, result);
  qb_tensor_row_set_state (row, result ? QB_TENSOR_ROW_DONE : QB_TENSOR_ROW_IDLE);
}

void
qb_document_clear_results (QbDocument *self)
{
  for (guint i = 0; i < self->row_array->len; i++)
    qb_document_set_result (self, i, NULL);
}

/* -- original statistics ------------------------------------------------ */

typedef struct {
  QbModel *model;
  guint    index;
} StatsRequest;

static void
stats_request_free (StatsRequest *req)
{
  g_object_unref (req->model);
  g_free (req);
}

static void
stats_thread (GTask        *task,
              gpointer      source_object,
              gpointer      task_data,
              GCancellable *cancellable)
{
  StatsRequest *req = task_data;
  g_autoptr(QbWorkers) workers = qb_workers_new (0);
  GError *error = NULL;
  /* The engine's description: the histogram edges and channel buckets a
   * run of this tensor uses, so the charts after a run line up. */
  QbTensorResult *stats = qb_tensor_describe_original (req->model, req->index, workers, cancellable, &error);

  if (stats == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, stats, (GDestroyNotify) qb_tensor_result_free);
}

static void
stats_done (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  QbDocument *self = QB_DOCUMENT (object);
  g_autoptr(QbTensorRow) row = user_data;
  g_autoptr(GError) error = NULL;
  QbTensorResult *stats = g_task_propagate_pointer (G_TASK (result), &error);

  if (self->stats_row == row)
    {
      g_clear_object (&self->stats_row);
      g_clear_object (&self->stats_cancellable);
    }
  if (stats != NULL)
    qb_tensor_row_set_stats (row, stats);
  else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_warning ("Statistics of %s: %s", qb_tensor_row_get_name (row), error->message);
}

void
qb_document_request_stats (QbDocument  *self,
                           QbTensorRow *row)
{
  g_autoptr(GTask) task = NULL;
  StatsRequest *req;

  g_return_if_fail (QB_IS_DOCUMENT (self));

  if (qb_tensor_row_get_stats (row) != NULL || self->stats_row == row)
    return;
  if (self->stats_cancellable)
    g_cancellable_cancel (self->stats_cancellable);
  g_clear_object (&self->stats_cancellable);
  self->stats_cancellable = g_cancellable_new ();
  g_set_object (&self->stats_row, row);

  task = g_task_new (self, self->stats_cancellable, stats_done, g_object_ref (row));
  g_task_set_source_tag (task, qb_document_request_stats);
  req = g_new (StatsRequest, 1);
  req->model = g_object_ref (self->model);
  req->index = qb_tensor_row_get_index (row);
  g_task_set_task_data (task, req, (GDestroyNotify) stats_request_free);
  g_task_run_in_thread (task, stats_thread);
}

gboolean
qb_document_is_computing_stats (QbDocument *self)
{
  return self->stats_row != NULL;
}

/* -- calibration ---------------------------------------------------------- */

void
qb_document_set_calibration (QbDocument                 *self,
                             const char * const         *paths,
                             const QbCalibrationOptions *opts)
{
  g_return_if_fail (QB_IS_DOCUMENT (self));
  g_clear_pointer (&self->calib_paths, g_strfreev);
  if (paths != NULL && paths[0] != NULL)
    self->calib_paths = g_strdupv ((char **) paths);
  if (opts != NULL)
    self->calib_opts = *opts;
  else
    qb_calibration_options_init (&self->calib_opts);
  /* The document owns no strings of the options. */
  self->calib_opts.cache_dir = NULL;
  self->calib_opts.expect_hash = NULL;
}

const char * const *
qb_document_get_calibration (QbDocument           *self,
                             QbCalibrationOptions *opts)
{
  g_return_val_if_fail (QB_IS_DOCUMENT (self), NULL);
  if (opts != NULL)
    *opts = self->calib_opts;
  return (const char * const *) self->calib_paths;
}
