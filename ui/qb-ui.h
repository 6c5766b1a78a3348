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

/* The application's settings.  The schema comes from the system (or
 * GSETTINGS_SCHEMA_DIR) when installed there; otherwise, as when
 * build/app/quantbench is run directly or from a prefix whose schemas were
 * not compiled, from the copy compiled into the resources. */
GSettings *qb_ui_settings_new (void);

/* "The file is truncated: key count needs 8 bytes but the file ends 3
 * bytes later (byte 16, header) — /path/model.gguf": a model that could not
 * be opened, what is wrong first, the path once (path NULL: the demo). */
char *qb_ui_describe_open_error (const char   *path,
                                 const GError *error);

/* The hex SHA-256 of a file's bytes (a text's identity, as studies and
 * evaluations record it), or NULL when it cannot be read.  Blocks. */
char *qb_ui_file_sha256 (const char *path);

G_END_DECLS
