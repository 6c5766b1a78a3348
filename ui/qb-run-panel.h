/* SPDX-License-Identifier: MIT */
/* qb-run-panel.h — progress of the current run: overall and per tensor,
 * the tensor being worked on, elapsed and remaining time, Cancel.  After
 * the run it keeps a one-line summary until hidden or the next run. */
#pragma once

#include <gtk/gtk.h>

#include "qb-run.h"
#include "qb-study-runner.h"

G_BEGIN_DECLS

#define QB_TYPE_RUN_PANEL (qb_run_panel_get_type ())
G_DECLARE_FINAL_TYPE (QbRunPanel, qb_run_panel, QB, RUN_PANEL, GtkWidget)

GtkWidget  *qb_run_panel_new             (void);
void        qb_run_panel_set_run         (QbRunPanel *self,
                                          QbRun      *run);
/* A sensitivity study's progress instead of a run's (NULL: neither). */
void        qb_run_panel_set_study       (QbRunPanel    *self,
                                          QbStudyRunner *study);
/* Appended to the summary ("saved as experiment 4"). */
void        qb_run_panel_set_note        (QbRunPanel *self,
                                          const char *note);
const char *qb_run_panel_get_status_text (QbRunPanel *self);

G_END_DECLS
