/* SPDX-License-Identifier: MIT */
/* qb-test-ui.h — helpers for the UI tests (run under Xvfb). */
#pragma once

#include <gtk/gtk.h>

#include "qb-application.h"
#include "qb-window.h"

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

/* Watches the main loop from now (work the caller then starts on the main
 * thread counts too): the gaps between the ticks of a 5 ms timeout (a gap
 * over 5 ms is time the loop spent elsewhere), each with the CPU time the
 * main thread itself spent in it (on a loaded machine the wall time also
 * counts waiting for a core); and, given a table, the rows of cells it
 * makes or frees in each main-loop iteration (sampled at every poll of
 * the default main context, once per iteration). */
void      qb_test_ui_watch_start (QbLayerTable *table);
/* Stops watching.  Returns "main-loop gaps over 700 ticks: wall max 49 ms,
 * p99 …; main thread's CPU in a gap max …", and in rows_max (may be NULL)
 * the most rows the table made or freed in one main-loop iteration. */
char     *qb_test_ui_watch_stop  (guint        *rows_max);
/* The most rows whose cells were given a row (made or reused, see
 * qb_layer_table_get_n_rows_bound) in one iteration of the last watch. */
guint     qb_test_ui_watch_bound_max (void);
/* Also samples count (data) at every iteration of the watches to come
 * (until called with NULL); qb_test_ui_watch_also_max () is its largest
 * growth in one iteration of the last watch. */
void      qb_test_ui_watch_also      (guint  (*count) (gpointer data),
                                      gpointer data);
guint     qb_test_ui_watch_also_max  (void);
/* Waits until the table's view has every row of its model (it fills
 * frame by frame after a model opens). */
void      qb_test_ui_wait_table_filled (QbLayerTable *table);
/* Rows of cells the table has made or freed so far. */
guint     qb_test_ui_rows_changed    (QbLayerTable *table);
/* The table's column view. */
GtkColumnView *qb_test_ui_table_view (QbLayerTable *table);
/* The rows the table's column view has now (rows shown or scrolled to). */
guint     qb_test_ui_table_n_shown (QbLayerTable *table);

/* The table's column view has exactly its visible rows, in order. */
void      qb_test_ui_check_table_view (QbLayerTable *table);

/* A workbench window of its own application, with a fresh experiment
 * database in a temporary folder. */
typedef struct {
  QbApplication *app;
  QbWindow      *window;
  char          *dir;
} QbTestWindow;

void      qb_test_window_setup    (QbTestWindow  *f,
                                   gconstpointer  data);
/* The same with the experiment database at db (f->dir: a temporary
 * folder, made when not set yet). */
void      qb_test_window_setup_with_db (QbTestWindow *f,
                                   const char    *db);
void      qb_test_window_teardown (QbTestWindow  *f,
                                   gconstpointer  data);
/* Activates a window action (it must be enabled) and lets it settle. */
void      qb_test_window_activate (QbTestWindow  *f,
                                   const char    *action,
                                   GVariant      *param);
/* Opens a model through the open-file action and waits for it. */
void      qb_test_window_open     (QbTestWindow  *f,
                                   const char    *path);
/* Opens a model (path NULL: the demo model, through its action) with the
 * main loop watched until the table has every row, the first open or a
 * switch from another model: GTK makes or frees at most 16 rows of cells
 * in one main-loop iteration (asserted; the gaps are reported), and the
 * row the window picks is the one selected and in the details. */
void      qb_test_window_open_watched (QbTestWindow *f,
                                   const char    *path,
                                   const char    *what);
/* Opens a file of ../shared; FALSE (test skipped) when it is absent. */
gboolean  qb_test_window_open_shared (QbTestWindow *f,
                                   const char    *relative);
/* Quantizes with the current plan and waits for the end of the run and
 * for the experiments list to show it. */
QbRun    *qb_test_window_run      (QbTestWindow  *f);
/* Waits until the window and its pages have no background work left. */
void      qb_test_window_settle   (QbTestWindow  *f);
QbTensorRow *qb_test_window_row   (QbTestWindow  *f,
                                   const char    *name);
/* The id of the newest experiment in the experiments list, 0 if none. */
gint64    qb_test_window_newest_experiment (QbTestWindow *f);
/* Waits until the window's latest evaluation is no longer running (done,
 * failed or cancelled); fails after timeout_s seconds. */
void      qb_test_window_wait_evaluation (QbTestWindow *f,
                                   double         timeout_s);

/* Resizes the window and waits until it has that size and is laid out. */
void      qb_test_window_resize   (QbTestWindow  *f,
                                   int            width,
                                   int            height);
/* The mapped widgets allocated less than their minimum size, or lying
 * outside the window without a scrolling container around them: one line
 * each, or NULL when there is none. */
char     *qb_test_window_find_clipped (QbTestWindow *f);

G_END_DECLS
