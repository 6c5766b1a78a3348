/* SPDX-License-Identifier: MIT */
/* qb-sensitivity-private.h — shared by the study's run and its reading. */
#pragma once

#include "qb-sensitivity.h"

G_BEGIN_DECLS

/* A matrix the runtime multiplies (embedding, projections, output). */
gboolean  qb_sensitivity_is_quantizable (const QbTensor  *t);
/* Per candidate: measured end to end (see qb-sensitivity.c). */
gboolean *qb_sensitivity_measured_rungs (const QbFormat **candidates,
                                         guint            n,
                                         gint64           n_cols,
                                         guint            measure);

G_END_DECLS
