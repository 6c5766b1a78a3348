/* SPDX-License-Identifier: MIT */
/* qb-store-model.c — a store record for an open model.
 *
 * Kept apart from qb-experiment.c so that programs using the store
 * without QbModel (tests, tools) do not link the model reader. */
#include "qb-experiment.h"

QbModelRecord *
qb_model_record_new_from_model (QbModel *model)
{
  const QbArchInfo *arch = qb_model_get_arch (model);
  QbModelRecord *m = qb_model_record_new ();

  m->fingerprint = g_strdup (qb_model_get_fingerprint (model));
  m->path = g_strdup (qb_model_get_path (model));
  m->file_size = qb_model_get_file_size (model);
  m->name = arch->name ? g_strdup (arch->name) : g_path_get_basename (m->path);
  m->family = g_strdup (arch->family);
  m->n_params = qb_model_get_n_params (model);
  m->n_tensors = qb_model_get_n_tensors (model);
  g_free (m->arch_json);
  m->arch_json = qb_arch_info_to_json (arch);
  return m;
}
