/* SPDX-License-Identifier: MIT */
/* qb-sensitivity-table.c — a study as the allocator's cost table. */
#include "qb-sensitivity-table.h"

#include <math.h>

QbCostTable *
qb_sensitivity_study_to_cost_table (QbSensitivityStudy *st, QbModel *model, GError **error)
{
  g_autoptr(QbCostTable) table = NULL;
  g_autofree gboolean *in_table = NULL;
  guint n = qb_model_get_n_tensors (model);

  if (g_strcmp0 (st->record->model_fingerprint, qb_model_get_fingerprint (model)) != 0)
    {
      g_set_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_MISMATCH,
                   "study %" G_GINT64_FORMAT " was made on another model (%s)", st->record->id,
                   st->record->model_name ? st->record->model_name : "?");
      return NULL;
    }
  table = qb_cost_table_new ();
  in_table = g_new0 (gboolean, n);
  /* One row per tensor: a 3-D expert tensor's cost is the whole tensor's
   * measurement (all experts in the candidate at once), not a sum of its
   * per-expert rows (st->expert_costs) — llama.cpp stores one type per 3-D
   * tensor, so the allocator chooses for all experts together, and the
   * whole-tensor KLD includes how the experts' errors combine. */
  for (guint t = 0; t < st->n_tensors; t++)
    {
      const QbTensor *tensor = st->positions[t] < n ? qb_model_get_tensor (model, st->positions[t])
                                                    : NULL;
      QbCostTensor *ct = NULL;

      if (tensor == NULL)
        continue;
      for (guint r = 0; r < st->n_candidates; r++)
        {
          const QbSensitivityEntry *e = &st->entries[t * st->n_candidates + r];
          const QbFormat *f = e->cost && !e->cost->skipped ? qb_format_find (e->cost->format) : NULL;

          if (f == NULL || !isfinite (e->value))
            continue;
          if (ct == NULL)
            ct = qb_cost_table_add_tensor (table, tensor->name, st->positions[t], tensor->n_params,
                                           tensor->ne[0]);
          qb_cost_tensor_add_candidate (ct, f, e->cost->bytes, e->value, e->proxy,
                                        isfinite (e->cost->kld));
        }
      in_table[st->positions[t]] = ct != NULL;
    }
  for (guint i = 0; i < n; i++)
    if (!in_table[i])
      {
        const QbTensor *t = qb_model_get_tensor (model, i);
        qb_cost_table_add_fixed (table, t->n_bytes, t->n_params);
      }
  return g_steal_pointer (&table);
}
