/* SPDX-License-Identifier: MIT */
/* qb-application.h — the GtkApplication: one workbench window, app-wide
 * actions (preferences, about, quit) and keyboard shortcuts. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define QB_TYPE_APPLICATION (qb_application_get_type ())
G_DECLARE_FINAL_TYPE (QbApplication, qb_application, QB, APPLICATION, GtkApplication)

QbApplication *qb_application_new (void);
/* Runs the GUI; argv may name a model file to open. */
int            qb_application_run (int argc, char **argv);

G_END_DECLS
