/* SPDX-License-Identifier: MIT */
/* qb-experiments-page.h — the saved experiments of the open model.
 *
 * A table (name, date, status, size, bpw, key metrics, tags) and the
 * selected experiment's details, where it is renamed, tagged, annotated,
 * opened back into the editor or deleted.  Reads and writes run on worker
 * threads; the page reloads after each change.  Several rows selected are
 * what Compare compares.
 */
#pragma once

#include <gtk/gtk.h>

#include "qb-evaluator.h"
#include "qb-stored-tensors-view.h"
#include "qb-experiment-row.h"
#include "qb-model.h"
#include "qb-store.h"

G_BEGIN_DECLS

#define QB_TYPE_EXPERIMENTS_PAGE (qb_experiments_page_get_type ())
G_DECLARE_FINAL_TYPE (QbExperimentsPage, qb_experiments_page, QB, EXPERIMENTS_PAGE, GtkWidget)

GtkWidget       *qb_experiments_page_new              (void);
/* NULL store: nothing to show (no database). */
void             qb_experiments_page_set_store        (QbExperimentsPage *self,
                                                       QbStore           *store);
/* Lists this model's experiments (all models when NULL or "All models"). */
void             qb_experiments_page_set_model        (QbExperimentsPage *self,
                                                       QbModel           *model);
void             qb_experiments_page_refresh          (QbExperimentsPage *self);
/* Reads or writes are under way. */
gboolean         qb_experiments_page_is_busy          (QbExperimentsPage *self);
/* QbExperimentRow, as listed. */
GListModel      *qb_experiments_page_get_rows         (QbExperimentsPage *self);
/* Ids of the selected experiments, in list order. */
GArray          *qb_experiments_page_get_selected_ids (QbExperimentsPage *self);
/* "5 experiments · 1 selected · select two or more to compare" */
const char      *qb_experiments_page_get_count_text   (QbExperimentsPage *self);
QbExperimentRow *qb_experiments_page_get_focused      (QbExperimentsPage *self);
/* The focused experiment's fact shown as key ("Calibration"), or NULL. */
char            *qb_experiments_page_get_fact         (QbExperimentsPage *self,
                                                       const char        *key);
gboolean         qb_experiments_page_select_id        (QbExperimentsPage *self,
                                                       gint64             id,
                                                       gboolean           extend);

/* Changes, each in the background, then a reload.  Failures are announced
 * with the "error" signal. */
void             qb_experiments_page_rename           (QbExperimentsPage *self,
                                                       gint64             id,
                                                       const char        *name);
void             qb_experiments_page_set_notes        (QbExperimentsPage *self,
                                                       gint64             id,
                                                       const char        *notes);
/* Replaces the tags with these (comma-separated). */
void             qb_experiments_page_set_tags         (QbExperimentsPage *self,
                                                       gint64             id,
                                                       const char        *tags);
void             qb_experiments_page_delete           (QbExperimentsPage *self,
                                                       gint64             id);
/* Shows an evaluation's progress with its experiment; NULL hides it. */
void             qb_experiments_page_set_evaluator    (QbExperimentsPage *self,
                                                       QbEvaluator       *evaluator);
/* The focused experiment's tensors, each expert tensor's experts under it. */
QbStoredTensorsView *qb_experiments_page_get_tensors_view (QbExperimentsPage *self);

G_END_DECLS
