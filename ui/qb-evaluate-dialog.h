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
/* What the dialog shows: it opens on the last evaluation's text, context,
 * chunks and KLD choice (remembered in GSettings when Evaluate is pressed). */
void       qb_evaluate_dialog_get_options (QbEvaluateDialog *self,
                                           const char      **text_path,
                                           guint            *n_ctx,
                                           guint            *n_chunks,
                                           gboolean         *kld);

G_END_DECLS
