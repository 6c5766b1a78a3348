/* SPDX-License-Identifier: MIT */
/* qb-window-private.h — QbWindow's fields, shared by qb-window.c (state,
 * loading) and qb-window-actions.c (the commands).  Functions private to
 * the window's files are named _qb_window_*, as GNOME Text Editor does. */
#pragma once

#include "qb-plan-history.h"
#include "qb-sensitivity-page.h"
#include "qb-study-runner.h"
#include "qb-window.h"

G_BEGIN_DECLS

struct _QbWindow
{
  GtkApplicationWindow  parent_instance;

  /* Template children. */
  GtkLabel             *title_label;
  GtkLabel             *subtitle_label;
  GtkRevealer          *banner_revealer;
  GtkLabel             *banner_label;
  GtkStack             *content_stack;
  GtkSpinner           *status_spinner;
  GtkLabel             *status_label;
  GtkLabel             *totals_label;
  GtkStack             *page_stack;
  GtkPaned             *outer_paned;
  QbPlanPanel          *plan_panel;
  QbLayerTable         *layer_table;
  QbTensorDetails      *details;
  QbRunPanel           *run_panel;
  QbExperimentsPage    *experiments_page;
  QbComparePage        *compare_page;
  QbSensitivityPage    *sensitivity_page;
  GMenu                *recent_section;

  GSettings            *settings;
  QbDocument           *document;
  GCancellable         *load_cancellable;
  char                 *loading_path;
  QbRun                *run;
  QbExperimentRecorder *recorder;   /* the current run's; owned by the run */
  QbStore              *store;      /* NULL until open, or when it failed */
  QbEvaluator          *evaluator;  /* the latest evaluation, running or not */
  QbStudyRunner        *study;      /* the latest sensitivity study run, running or not */
  GHashTable           *study_runs; /* study id -> the QbStudyRunner that ran it (its settings) */
  GCancellable         *allocate_cancellable;
  QbPlanHistory        *history;    /* undo/redo of the document's plan */
  char                 *error_message;
  guint                 n_pending;  /* experiment loads under way */
};

/* qb-window-actions.c */
void _qb_window_install_actions     (QbWindow    *self);
/* Enables the actions that need a document, an idle engine, a run... */
void _qb_window_update_actions      (QbWindow    *self);
/* Enables or disables the window action `name` (if it exists). */
void _qb_window_set_enabled         (QbWindow    *self,
                                    const char  *name,
                                    gboolean     enabled);
/* How many experiments the Experiments page has selected. */
guint _qb_window_n_selected_experiments (QbWindow  *self);

/* qb-window-plan-actions.c: undo, redo, plan files */
void _qb_window_install_plan_actions (QbWindow   *self);
void _qb_window_update_plan_actions  (QbWindow   *self);

/* qb-window-export.c: the quantized model and experiments to files */
void _qb_window_install_export_actions (QbWindow *self);
void _qb_window_update_export_actions  (QbWindow *self);

/* qb-window-study.c: sensitivity studies and the budget fill */
void _qb_window_install_study_actions (QbWindow *self);
void _qb_window_update_study_actions  (QbWindow *self);
/* Cancels a running study and forgets the model's (another one opens). */
void _qb_window_forget_studies        (QbWindow *self);

/* qb-window.c */
void _qb_window_show_error          (QbWindow    *self,
                                    const char  *message);
void _qb_window_clear_error         (QbWindow    *self);
void _qb_window_start_run           (QbWindow    *self);
/* Loads an experiment's plan and results into the editor (background). */
void _qb_window_open_experiment     (QbWindow    *self,
                                    gint64       id);
/* The chart on the visible page, or NULL. */
QbChart *_qb_window_get_visible_chart (QbWindow  *self);

G_END_DECLS
