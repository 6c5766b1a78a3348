/* SPDX-License-Identifier: MIT */
/* qb-sensitivity-page.h — the open model's sensitivity studies.
 *
 * A chooser of the model's stored studies (newest first) and "weight
 * proxies (no study)", the chosen candidate format, the study's heatmap of
 * layers × roles and its ranked bars (QbSensitivityView; a click selects
 * the tensor in the plan), a line of facts (measured, fit, evaluation
 * text), and Run / Resume.  A study run per expert adds "Show": the
 * heatmap's columns become the experts of one kind (action
 * "sensitivity.experts", s: "ffn_down_exps", ... or "" for the tensors;
 * the view's column headers use it too).  With no study it explains what a study is and
 * offers to run one.
 *
 * The chosen study's cost table becomes the document's: the budget fill
 * and the predicted KLD in the totals come from it ("study N"); choosing
 * the proxies goes back to the weights' table.  Studies are read and
 * turned into cost tables on a worker thread.
 */
#pragma once

#include <gtk/gtk.h>

#include "qb-document.h"
#include "qb-sensitivity-view.h"
#include "qb-store.h"

G_BEGIN_DECLS

#define QB_TYPE_SENSITIVITY_PAGE (qb_sensitivity_page_get_type ())
G_DECLARE_FINAL_TYPE (QbSensitivityPage, qb_sensitivity_page, QB, SENSITIVITY_PAGE, GtkWidget)

GtkWidget         *qb_sensitivity_page_new          (void);
void               qb_sensitivity_page_set_store    (QbSensitivityPage *self,
                                                     QbStore           *store);
void               qb_sensitivity_page_set_document (QbSensitivityPage *self,
                                                     QbDocument        *document);
/* Lists the model's studies again and shows id (0: the newest; -1: the
 * weight proxies, no study). */
void               qb_sensitivity_page_reload       (QbSensitivityPage *self,
                                                     gint64             id);
/* The study shown and used for the costs (0: none). */
gint64             qb_sensitivity_page_get_study_id (QbSensitivityPage *self);
/* Its stored status (QB_EXPERIMENT_DONE, _CANCELLED, ...). */
QbExperimentStatus qb_sensitivity_page_get_study_status (QbSensitivityPage *self);
/* TRUE while studies are being read. */
gboolean           qb_sensitivity_page_is_loading   (QbSensitivityPage *self);
QbSensitivityView *qb_sensitivity_page_get_view     (QbSensitivityPage *self);
GtkDropDown       *qb_sensitivity_page_get_candidate_dropdown (QbSensitivityPage *self);
GtkDropDown       *qb_sensitivity_page_get_study_dropdown     (QbSensitivityPage *self);
GtkDropDown       *qb_sensitivity_page_get_show_dropdown      (QbSensitivityPage *self);
/* "37 tensors × 12 candidates · 409 measured · …", or the empty state's text. */
const char        *qb_sensitivity_page_get_info_text (QbSensitivityPage *self);

G_END_DECLS
