/* SPDX-License-Identifier: MIT */
/* qb-sensitivity-table.h — a sensitivity study as the allocator's cost
 * table (`--study ID`). */
#pragma once

#include "qb-cost-table.h"
#include "qb-sensitivity.h"

G_BEGIN_DECLS

/* Every studied tensor with the candidates it was studied in (skipped ones
 * absent), each costing its measured KLD or, when not measured, the
 * fitted S_t · proxy^α; tensors of the model outside the study, and
 * studied tensors with no candidate, count as fixed at their stored size.
 * Fails when model is not the study's. */
QbCostTable *qb_sensitivity_study_to_cost_table (QbSensitivityStudy *study,
                                                 QbModel            *model,
                                                 GError            **error);

G_END_DECLS
