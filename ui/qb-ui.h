/* SPDX-License-Identifier: MIT */
/* qb-ui.h — set-up shared by every widget of the UI library. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* Registers the library's GResource (templates, CSS, icon) once.  The
 * resources live in a static library, where an automatic constructor
 * would be dropped by the linker; widgets with templates call this from
 * class_init. */
void qb_ui_ensure_resources (void);

/* For dispose() of widgets built on GtkWidget: clears the template and
 * unparents every remaining child (GTK 4.8's gtk_widget_dispose_template()
 * only unparents the children bound to fields). */
void qb_ui_dispose_template (GtkWidget *widget,
                             GType      type);

/* Calls func(data) on a new thread running at a lower CPU priority than
 * the UI, and waits for it: for long computations started from a worker
 * thread (a quantization job, an evaluation), so that with every core busy
 * the main loop still gets the CPU when it wants it.  Threads func starts
 * inherit the lower priority (Linux keeps nice values per thread). */
void qb_ui_call_at_low_priority (GThreadFunc func,
                                 gpointer    data);

G_END_DECLS
