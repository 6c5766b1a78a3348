/* SPDX-License-Identifier: MIT */
/* qb-allocation-plan.c — allocations into plans, pins, predictions. */
#include <math.h>
#include <string.h>

#include "qb-allocation-plan.h"

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static GPtrArray *
pinned_names (QbPlan *plan)
{
  const char *value = qb_plan_get_option (plan, QB_PLAN_OPTION_PINNED);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_auto(GStrv) parts = value ? g_strsplit (value, ",", -1) : NULL;
  for (guint i = 0; parts && parts[i]; i++)
    if (*parts[i] != '\0')
      g_ptr_array_add (names, g_strdup (parts[i]));
  return names;
}

gboolean
qb_plan_is_pinned (QbPlan *plan, const char *tensor_name)
{
  g_autoptr(GPtrArray) names = pinned_names (plan);
  return g_ptr_array_find_with_equal_func (names, tensor_name, g_str_equal, NULL);
}

GHashTable *
qb_plan_get_pinned_set (QbPlan *plan)
{
  g_autoptr(GPtrArray) names = pinned_names (plan);
  GHashTable *set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < names->len; i++)
    g_hash_table_add (set, g_strdup (g_ptr_array_index (names, i)));
  return set;
}

void
qb_plan_set_pinned (QbPlan *plan, const char *tensor_name, gboolean pinned)
{
  g_autoptr(GPtrArray) names = pinned_names (plan);
  guint index;
  gboolean has = g_ptr_array_find_with_equal_func (names, tensor_name, g_str_equal, &index);

  if (has == pinned)
    return;
  if (pinned)
    g_ptr_array_add (names, g_strdup (tensor_name));
  else
    g_ptr_array_remove_index (names, index);
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  g_autofree char *joined = g_strjoinv (",", (char **) names->pdata);
  qb_plan_set_option (plan, QB_PLAN_OPTION_PINNED, *joined ? joined : NULL);
}

void
qb_allocation_apply (const QbCostTable *table, const QbAllocation *allocation,
                     const char *source, QbPlan *plan)
{
  g_return_if_fail (allocation->n_tensors == table->n_tensors);
  for (guint i = 0; i < table->n_tensors; i++)
    {
      const QbCostTensor *t = &table->tensors[i];
      const char *method = NULL;
      const char *old_format;
      /* A pinned tensor keeps its method too. */
      if (!(allocation->pinned[i] && qb_plan_get_override (plan, t->name, &old_format, &method)))
        method = NULL;
      g_autofree char *keep_method = g_strdup (method);
      qb_plan_set_override (plan, t->name, t->candidates[allocation->choice[i]].format->name,
                            keep_method);
    }
  char kld[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_formatd (kld, sizeof kld, "%.6g", allocation->predicted_kld);
  qb_plan_set_option (plan, QB_PLAN_OPTION_SOURCE, source);
  qb_plan_set_option (plan, QB_PLAN_OPTION_PREDICTED_KLD, kld);
}

double
qb_cost_tensor_cost_of (const QbCostTensor *tensor, const QbFormat *format, gboolean *estimated)
{
  if (estimated)
    *estimated = FALSE;
  if (format == NULL)
    return 0.0;
  const QbCostCandidate *c = qb_cost_tensor_find (tensor, format);
  if (c != NULL)
    return c->cost;
  /* Not in the table: the candidate nearest in bits per weight. */
  double bpw = qb_format_bpw (format, tensor->row_length), best = INFINITY, cost = 0;
  for (guint k = 0; k < tensor->n_candidates; k++)
    {
      double d = fabs (tensor->candidates[k].bytes * 8.0 / MAX (tensor->n_weights, 1) - bpw);
      if (d < best)
        {
          best = d;
          cost = tensor->candidates[k].cost;
        }
    }
  if (estimated)
    *estimated = TRUE;
  return cost;
}

double
qb_cost_table_predict (const QbCostTable *table, QbModel *model,
                       const QbPlanResolution *res, guint *n_estimated)
{
  double sum = 0;
  guint n_est = 0;
  for (guint i = 0; i < table->n_tensors; i++)
    {
      const QbCostTensor *t = &table->tensors[i];
      guint index = t->tensor_index;
      gboolean estimated;
      if (index >= res->n_tensors
          || !g_str_equal (qb_model_get_tensor (model, index)->name, t->name))
        continue;
      sum += qb_cost_tensor_cost_of (t, res->choices[index].format, &estimated);
      n_est += estimated;
    }
  if (n_estimated)
    *n_estimated = n_est;
  return sum;
}

static char *
allow_key (QbTensorRole role)
{
  return g_strconcat (QB_PLAN_OPTION_ALLOW_PREFIX, qb_tensor_role_name (role), NULL);
}

/* "Q4_K, Q8_0" as formats (a new array, *n entries); NULL on an unknown name. */
static const QbFormat **
parse_formats (const char *list, guint *n, GError **error)
{
  g_auto(GStrv) parts = g_strsplit (list, ",", -1);
  g_autofree const QbFormat **formats = g_new0 (const QbFormat *, g_strv_length (parts) + 1);

  *n = 0;
  for (guint i = 0; parts[i]; i++)
    {
      const char *name = g_strstrip (parts[i]);
      const QbFormat *f;
      if (*name == '\0')
        continue;
      f = qb_format_find (name);
      if (f == NULL)
        {
          g_set_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INVALID,
                       "Unknown format “%s” among the allowed formats.", name);
          return NULL;
        }
      formats[(*n)++] = f;
    }
  return g_steal_pointer (&formats);
}

gboolean
qb_plan_set_allowed_formats (QbPlan *plan, QbTensorRole role, const char *formats, GError **error)
{
  g_autofree char *key = allow_key (role);
  guint n = 0;
  g_autofree const QbFormat **parsed = formats ? parse_formats (formats, &n, error) : NULL;
  g_autoptr(GStrvBuilder) names = g_strv_builder_new ();
  g_auto(GStrv) list = NULL;
  g_autofree char *joined = NULL;

  if (formats && parsed == NULL)
    return FALSE;
  for (guint i = 0; i < n; i++)
    g_strv_builder_add (names, parsed[i]->name);
  list = g_strv_builder_end (names);
  joined = g_strjoinv (",", list);
  qb_plan_set_option (plan, key, *joined ? joined : NULL);
  return TRUE;
}

const char *
qb_plan_get_allowed_formats (QbPlan *plan, QbTensorRole role)
{
  g_autofree char *key = allow_key (role);
  return qb_plan_get_option (plan, key);
}

void
qb_plan_set_embedding_floor (QbPlan *plan, double bpw)
{
  char text[G_ASCII_DTOSTR_BUF_SIZE];

  if (!(bpw > 0))
    {
      qb_plan_set_option (plan, QB_PLAN_OPTION_EMBEDDING_FLOOR, NULL);
      return;
    }
  g_ascii_formatd (text, sizeof text, "%.4g", bpw);
  qb_plan_set_option (plan, QB_PLAN_OPTION_EMBEDDING_FLOOR, text);
}

double
qb_plan_get_embedding_floor (QbPlan *plan)
{
  const char *text = qb_plan_get_option (plan, QB_PLAN_OPTION_EMBEDDING_FLOOR);
  double bpw = text ? g_ascii_strtod (text, NULL) : 0;
  return isfinite (bpw) && bpw > 0 ? bpw : 0;
}

/* The plan's allowed formats per role and embedding floor. */
static gboolean
add_role_constraints (QbPlan *plan, QbAllocConstraints *c, GError **error)
{
  for (int role = 0; role < QB_ROLE_N_ROLES; role++)
    {
      const char *list = qb_plan_get_allowed_formats (plan, role);
      guint n = 0;
      g_autofree const QbFormat **formats = NULL;
      if (list == NULL || *list == '\0')
        continue;
      formats = parse_formats (list, &n, error);
      if (formats == NULL)
        return FALSE;
      if (n > 0)
        qb_alloc_constraints_allow (c, role, formats, n);
    }
  qb_alloc_constraints_set_embedding_floor (c, qb_plan_get_embedding_floor (plan));
  return TRUE;
}

QbAllocConstraints *
qb_alloc_constraints_from_plan (QbPlan *plan, QbModel *model, QbCostTable *table, GError **error)
{
  g_autoptr(QbAllocConstraints) c = qb_alloc_constraints_new ();
  g_autoptr(GPtrArray) names = pinned_names (plan);
  g_autoptr(QbPlanResolution) res = NULL;

  if (!add_role_constraints (plan, c, error))
    return NULL;
  if (names->len == 0)
    return g_steal_pointer (&c);
  res = qb_plan_resolve (plan, model, error);
  if (res == NULL)
    return NULL;
  for (guint p = 0; p < names->len; p++)
    {
      const char *name = g_ptr_array_index (names, p);
      guint index;
      const QbTensor *t = qb_model_find_tensor (model, name, &index);
      QbCostTensor *ct = (QbCostTensor *) qb_cost_table_find (table, name);
      const QbFormat *f = t ? res->choices[index].format : NULL;
      if (ct == NULL || f == NULL)
        continue;
      if (qb_cost_tensor_find (ct, f) == NULL)
        {
          guint64 bytes;
          double cost = qb_cost_tensor_cost_of (ct, f, NULL);
          if (!qb_format_tensor_bytes (f, t->ne[0], qb_tensor_n_rows (t), &bytes))
            continue;
          qb_cost_tensor_add_candidate (ct, f, bytes, cost, NAN, FALSE);
        }
      qb_alloc_constraints_pin (c, name, f);
    }
  return g_steal_pointer (&c);
}
