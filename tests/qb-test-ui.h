/* qb-test-ui.h — helpers for the UI tests (run under Xvfb). */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* gtk_test_init() with an accessibility backend that needs no D-Bus and
 * records what widgets announce, so tests can check it. */
void      qb_test_ui_init       (int          *argc,
                                 char       ***argv);
/* Iterates the main context until condition(data) holds; fails the test
 * after timeout_s seconds, naming what it waited for. */
void      qb_test_ui_wait_for   (gboolean    (*condition) (gpointer data),
                                 gpointer      data,
                                 double        timeout_s,
                                 const char   *what);
/* Lets pending idles and redraws run. */
void      qb_test_ui_flush      (void);
/* Renders a widget (a whole window, with its decorations) as it is on
 * screen and writes it to a PNG file. */
gboolean  qb_test_ui_save_png   (GtkWidget    *widget,
                                 const char   *path,
                                 GError      **error);

G_END_DECLS
