/* SPDX-License-Identifier: MIT */
/* qb-window.h — the workbench window.
 *
 * Every command is a GAction of the window ("win.*") or the application
 * ("app.*"); menus, keyboard shortcuts and tests all go through them.
 */
#pragma once

#include <gtk/gtk.h>

#include "qb-compare-page.h"
#include "qb-document.h"
#include "qb-evaluator.h"
#include "qb-experiment-recorder.h"
#include "qb-experiments-page.h"
#include "qb-layer-table.h"
#include "qb-plan-panel.h"
#include "qb-run.h"
#include "qb-run-panel.h"
#include "qb-sensitivity-page.h"
#include "qb-study-runner.h"
#include "qb-tensor-details.h"

G_BEGIN_DECLS

#define QB_TYPE_WINDOW (qb_window_get_type ())
G_DECLARE_FINAL_TYPE (QbWindow, qb_window, QB, WINDOW, GtkApplicationWindow)

QbWindow        *qb_window_new               (GtkApplication *application);
/* Opens a model in the background; errors show in the window.  path NULL
 * opens the built-in demo model. */
void             qb_window_open_path         (QbWindow       *self,
                                              const char     *path);
void             qb_window_open_demo         (QbWindow       *self);

/* State, for the application and the tests. */
QbDocument      *qb_window_get_document      (QbWindow       *self);
gboolean         qb_window_is_loading        (QbWindow       *self);
/* The message of the error banner, or NULL when none shows. */
const char      *qb_window_get_error_message (QbWindow       *self);
QbRun           *qb_window_get_run           (QbWindow       *self);
QbLayerTable    *qb_window_get_layer_table   (QbWindow       *self);
QbTensorDetails *qb_window_get_details       (QbWindow       *self);
QbPlanPanel     *qb_window_get_plan_panel    (QbWindow       *self);
QbRunPanel      *qb_window_get_run_panel     (QbWindow       *self);
const char      *qb_window_get_totals_text   (QbWindow       *self);
QbExperimentsPage *qb_window_get_experiments_page (QbWindow  *self);
QbComparePage   *qb_window_get_compare_page  (QbWindow       *self);
QbSensitivityPage *qb_window_get_sensitivity_page (QbWindow     *self);
/* The latest sensitivity study run from the window (NULL: none). */
QbStudyRunner   *qb_window_get_study         (QbWindow       *self);
/* The experiment database is open. */
gboolean         qb_window_has_store         (QbWindow       *self);
/* The latest evaluation (running or finished), or NULL. */
QbEvaluator     *qb_window_get_evaluator     (QbWindow       *self);
/* Opening the database or an experiment is under way. */
gboolean         qb_window_is_busy           (QbWindow       *self);
const char      *qb_window_get_subtitle_text (QbWindow       *self);

G_END_DECLS
