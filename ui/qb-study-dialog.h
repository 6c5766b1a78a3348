/* SPDX-License-Identifier: MIT */
/* qb-study-dialog.h — what a sensitivity study measures: the calibration
 * text (importance and XᵀX for the proxies and GPTQ), the held-out
 * evaluation text and how many chunks of it, the candidate ladder (the
 * allocator's default offered) and the method.  Start activates
 * win.start-study on the parent window. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define QB_TYPE_STUDY_DIALOG (qb_study_dialog_get_type ())
G_DECLARE_FINAL_TYPE (QbStudyDialog, qb_study_dialog, QB, STUDY_DIALOG, GtkWindow)

/* calib_path: the plan's calibration text, offered first (NULL: the
 * evaluation text, whose evaluated chunks calibration then skips). */
GtkWidget *qb_study_dialog_new (GtkWindow  *parent,
                                const char *calib_path);

G_END_DECLS
