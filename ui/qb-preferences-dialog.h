/* SPDX-License-Identifier: MIT */
/* qb-preferences-dialog.h — threads, default format, database path, kept
 * in GSettings (org.quantbench.Quantbench). */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define QB_TYPE_PREFERENCES_DIALOG (qb_preferences_dialog_get_type ())
G_DECLARE_FINAL_TYPE (QbPreferencesDialog, qb_preferences_dialog, QB, PREFERENCES_DIALOG, GtkWindow)

GtkWidget *qb_preferences_dialog_new (GtkWindow *parent);

G_END_DECLS
