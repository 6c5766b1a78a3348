/* SPDX-License-Identifier: MIT */
/* qb-evaluate-dialog.h — asks which text, context and chunks to evaluate
 * an experiment on, then starts win.evaluate-experiment. */
#pragma once

#include <gtk/gtk.h>

#include "qb-experiment.h"

G_BEGIN_DECLS

#define QB_TYPE_EVALUATE_DIALOG (qb_evaluate_dialog_get_type ())
G_DECLARE_FINAL_TYPE (QbEvaluateDialog, qb_evaluate_dialog, QB, EVALUATE_DIALOG, GtkWindow)

/* model_ctx: the model's training context (0: unknown), the longest
 * sensible chunk. */
GtkWidget *qb_evaluate_dialog_new (GtkWindow          *parent,
                                   const QbExperiment *experiment,
                                   guint               model_ctx);

G_END_DECLS
