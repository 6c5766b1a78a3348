/* SPDX-License-Identifier: MIT */
/* qb-experiment-row.h — a stored experiment as a list item. */
#pragma once

#include <glib-object.h>

#include "qb-experiment.h"

G_BEGIN_DECLS

#define QB_TYPE_EXPERIMENT_ROW (qb_experiment_row_get_type ())
G_DECLARE_FINAL_TYPE (QbExperimentRow, qb_experiment_row, QB, EXPERIMENT_ROW, GObject)

/* Takes ownership of experiment. */
QbExperimentRow    *qb_experiment_row_new            (QbExperiment    *experiment);
const QbExperiment *qb_experiment_row_get_experiment (QbExperimentRow *self);
gint64              qb_experiment_row_get_id         (QbExperimentRow *self);
const char         *qb_experiment_row_get_name       (QbExperimentRow *self);

G_END_DECLS
