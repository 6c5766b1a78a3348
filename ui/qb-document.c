/* SPDX-License-Identifier: MIT */
/* qb-document.c — an open model, its plan, and a row per tensor. */
#include "qb-document.h"

#include <math.h>

#include "qb-allocation-plan.h"
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

  QbCostTable       *costs;          /* in use: a study's, else the proxies'; NULL until computed */
  char              *cost_source;
  QbCostTable       *proxy_costs;    /* the weight proxies' (NULL until computed) */
  gboolean           costs_are_proxies;
  GCancellable      *costs_cancellable;
  guint              n_allocating;   /* allocations under way */
  gboolean           predicted_valid;
  double             predicted, delta;
  char              *measured_plan;  /* JSON of the plan last evaluated */
  double             measured_kld;
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
  if (self->costs_cancellable)
    g_cancellable_cancel (self->costs_cancellable);
  g_clear_object (&self->costs_cancellable);
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
  if (self->costs != self->proxy_costs)
    g_clear_pointer (&self->costs, qb_cost_table_free);
  g_clear_pointer (&self->proxy_costs, qb_cost_table_free);
  g_free (self->cost_source);
  g_free (self->measured_plan);
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

/* The prediction of the plan just resolved, and the change from the last. */
static void
update_prediction (QbDocument *self)
{
  if (self->costs == NULL || self->resolution == NULL)
    {
      self->predicted_valid = FALSE;
      return;
    }
  double p = qb_cost_table_predict (self->costs, self->model, self->resolution, NULL);
  self->delta = self->predicted_valid ? p - self->predicted : 0.0;
  self->predicted = p;
  self->predicted_valid = TRUE;
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
      g_autoptr(GHashTable) pinned = qb_plan_get_pinned_set (self->plan);
      self->resolution = res;
      for (guint i = 0; i < res->n_tensors && i < self->row_array->len; i++)
        {
          QbTensorRow *row = g_ptr_array_index (self->row_array, i);
          const char *name = qb_tensor_row_get_name (row);
          gboolean overridden = qb_plan_get_override (self->plan, name, NULL, NULL);
          QbTensorChoice choice = res->choices[i];
          if (g_hash_table_contains (pinned, name))
            choice.source = (char *) "pinned";
          qb_tensor_row_set_choice (row, &choice, overridden);
        }
    }
  update_prediction (self);
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

/* -- predicted KLD ----------------------------------------------------------- */

static void
costs_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  QbModel *model = task_data;
  g_autofree char *list = g_strjoinv (",", (char **) qb_cost_default_candidates ());
  guint n = 0;
  GError *error = NULL;
  g_autofree const QbFormat **candidates = qb_cost_parse_candidates (list, &n, &error);
  QbCostTable *table = candidates ? qb_cost_table_new_proxy (model, candidates, n, NULL, NULL,
                                                             cancellable, &error)
                                  : NULL;
  if (table == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, table, (GDestroyNotify) qb_cost_table_free);
}

static void
costs_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  QbCostTable *table = g_task_propagate_pointer (G_TASK (result), &error);

  if (table == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_warning ("predicted KLD unavailable: %s", error->message);
      return;
    }
  /* The task holds the document until here, so it is alive. */
  QbDocument *self = QB_DOCUMENT (source);
  g_clear_pointer (&self->proxy_costs, qb_cost_table_free);
  self->proxy_costs = table;
  /* A study's table, set meanwhile, stays in use. */
  if (self->costs == NULL)
    qb_document_set_cost_table (self, NULL, NULL);
}

static void
start_costs (QbDocument *self)
{
  self->costs_cancellable = g_cancellable_new ();
  g_autoptr(GTask) task = g_task_new (self, self->costs_cancellable, costs_done, NULL);
  g_task_set_task_data (task, g_object_ref (self->model), g_object_unref);
  g_task_run_in_thread (task, costs_thread);
}

const QbCostTable *
qb_document_get_cost_table (QbDocument *self)
{
  g_return_val_if_fail (QB_IS_DOCUMENT (self), NULL);
  return self->costs;
}

const char *
qb_document_get_cost_source (QbDocument *self)
{
  g_return_val_if_fail (QB_IS_DOCUMENT (self), NULL);
  return self->cost_source;
}

gboolean
qb_document_costs_are_proxies (QbDocument *self)
{
  g_return_val_if_fail (QB_IS_DOCUMENT (self), FALSE);
  return self->costs != NULL && self->costs_are_proxies;
}

void
qb_document_set_cost_table (QbDocument *self, QbCostTable *table, const char *source)
{
  g_return_if_fail (QB_IS_DOCUMENT (self));
  if (self->costs != self->proxy_costs)
    g_clear_pointer (&self->costs, qb_cost_table_free);
  self->costs = table ? table : self->proxy_costs;
  self->costs_are_proxies = table == NULL;
  g_free (self->cost_source);
  self->cost_source = g_strdup (table ? source : self->proxy_costs ? "weight proxies" : NULL);
  self->predicted_valid = FALSE;
  update_prediction (self);
  g_signal_emit (self, signals[TOTALS_CHANGED], 0);
}

gboolean
qb_document_get_predicted_kld (QbDocument *self, double *kld, double *delta)
{
  g_return_val_if_fail (QB_IS_DOCUMENT (self), FALSE);
  if (!self->predicted_valid)
    return FALSE;
  if (kld)
    *kld = self->predicted;
  if (delta)
    *delta = self->delta;
  return TRUE;
}

/* A copy the allocation may extend (pinned formats the table lacks) on
 * its thread while the document keeps using its own. */
static QbCostTable *
copy_cost_table (const QbCostTable *src)
{
  QbCostTable *copy = qb_cost_table_new ();

  for (guint i = 0; i < src->n_tensors; i++)
    {
      const QbCostTensor *t = &src->tensors[i];
      QbCostTensor *c = qb_cost_table_add_tensor (copy, t->name, t->tensor_index, t->n_weights,
                                                  t->row_length);
      for (guint k = 0; k < t->n_candidates; k++)
        {
          const QbCostCandidate *k_ = &t->candidates[k];
          qb_cost_tensor_add_candidate (c, k_->format, k_->bytes, k_->cost, k_->proxy, k_->measured);
        }
    }
  qb_cost_table_add_fixed (copy, src->fixed_bytes, src->fixed_weights);
  return copy;
}

typedef struct {
  QbCostTable        *table;
  QbAllocConstraints *constraints;
  QbAllocBudget       budget;
  char               *source;
  QbAllocation       *allocation;
} AllocateCall;

static void
allocate_call_free (AllocateCall *call)
{
  qb_cost_table_free (call->table);
  qb_alloc_constraints_free (call->constraints);
  g_free (call->source);
  g_clear_pointer (&call->allocation, qb_allocation_free);
  g_free (call);
}

static void
allocate_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  AllocateCall *call = task_data;
  GError *error = NULL;

  call->allocation = qb_allocate (call->table, &call->budget, call->constraints, &error);
  if (call->allocation == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

void
qb_document_allocate_async (QbDocument          *self,
                            const QbAllocBudget *budget,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  AllocateCall *call;

  g_return_if_fail (QB_IS_DOCUMENT (self));
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, qb_document_allocate_async);
  if (self->costs == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The tensors' costs are still being computed; try again in a moment.");
      return;
    }
  call = g_new0 (AllocateCall, 1);
  call->table = copy_cost_table (self->costs);
  call->budget = *budget;
  call->source = g_strdup (self->cost_source);
  g_task_set_task_data (task, call, (GDestroyNotify) allocate_call_free);
  /* Pins and rules are read now: the plan as the user filled it. */
  call->constraints = qb_alloc_constraints_from_plan (self->plan, self->model, call->table, &error);
  if (call->constraints == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  self->n_allocating++;
  g_task_run_in_thread (task, allocate_thread);
}

gboolean
qb_document_allocate_finish (QbDocument    *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  AllocateCall *call;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  call = g_task_get_task_data (G_TASK (result));
  if (call != NULL && call->constraints != NULL && self->n_allocating > 0)
    self->n_allocating--;
  if (!g_task_propagate_boolean (G_TASK (result), error))
    return FALSE;
  qb_document_begin_bulk_edit (self);
  qb_allocation_apply (call->table, call->allocation, call->source, self->plan);
  qb_document_end_bulk_edit (self);
  return TRUE;
}

gboolean
qb_document_is_allocating (QbDocument *self)
{
  g_return_val_if_fail (QB_IS_DOCUMENT (self), FALSE);
  return self->n_allocating > 0;
}

void
qb_document_set_pinned (QbDocument *self, QbTensorRow **rows, guint n_rows, gboolean pinned)
{
  g_return_if_fail (QB_IS_DOCUMENT (self));
  qb_document_begin_bulk_edit (self);
  for (guint i = 0; i < n_rows; i++)
    {
      const char *name = qb_tensor_row_get_name (rows[i]);
      /* A pin holds the format the tensor has now, as an override. */
      if (pinned && !qb_plan_get_override (self->plan, name, NULL, NULL))
        qb_plan_set_override (self->plan, name, qb_tensor_row_get_format (rows[i]), NULL);
      qb_plan_set_pinned (self->plan, name, pinned);
    }
  qb_document_end_bulk_edit (self);
}

void
qb_document_set_measured_kld (QbDocument *self, const char *plan_json, double kld)
{
  g_return_if_fail (QB_IS_DOCUMENT (self));
  /* In the plan's own JSON layout, to compare with the plan being edited. */
  g_autoptr(QbPlan) plan = qb_plan_new_from_json (plan_json, NULL);
  g_free (self->measured_plan);
  self->measured_plan = plan ? qb_plan_to_json (plan) : NULL;
  self->measured_kld = kld;
  g_signal_emit (self, signals[TOTALS_CHANGED], 0);
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
  start_costs (self);
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
  GString *s = g_string_new (NULL);
  g_string_printf (s, "%s params · %s → %s · %.2f bpw", params, original, quantized, r->bpw);
  if (self->predicted_valid)
    {
      g_string_append_printf (s, " · predicted KLD %.4f (%s)", self->predicted,
                              self->costs_are_proxies ? "proxies" : self->cost_source);
      if (self->delta != 0)
        g_string_append_printf (s, " (Δ %+.4f)", self->delta);
      g_autofree char *json = self->measured_plan ? qb_plan_to_json (self->plan) : NULL;
      if (json && g_str_equal (json, self->measured_plan))
        g_string_append_printf (s, " · measured %.4f", self->measured_kld);
    }
  g_string_append_printf (s, " · %.2f× smaller · %u fallback%s",
                          r->quantized_bytes ? (double) r->original_bytes / r->quantized_bytes : 0.0,
                          r->n_fallbacks, r->n_fallbacks == 1 ? "" : "s");
  return g_string_free (s, FALSE);
}

char *
qb_document_describe_prediction (QbDocument *self)
{
  g_return_val_if_fail (QB_IS_DOCUMENT (self), NULL);
  if (self->costs == NULL)
    return g_strdup ("The predicted KLD appears when the tensors' costs are computed.");
  if (!self->predicted_valid)
    return g_strdup_printf ("Costs from %s; the plan has an error.", self->cost_source);
  if (self->costs_are_proxies)
    return g_strdup_printf ("Predicted KLD %.4f from weight proxies: an estimate not measured on this "
                            "model.  Run a sensitivity study (Sensitivity page) for measured costs.",
                            self->predicted);
  return g_strdup_printf ("Predicted KLD %.4f from %s: each tensor's measured end-to-end KLD in its "
                          "format, summed.", self->predicted, self->cost_source);
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
