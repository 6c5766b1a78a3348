/* SPDX-License-Identifier: MIT */
/* qb-test-ui.c — helpers for the UI tests. */
#include "qb-test-ui.h"

#include "qb-test-util.h"

#include <time.h>

void
qb_test_ui_init (int    *argc,
                 char ***argv)
{
  /* The default backend talks to AT-SPI over the session bus, which Xvfb
   * runs lack; the test backend keeps every property for inspection. */
  g_autofree char *home = NULL;

  g_setenv ("GTK_A11Y", "test", TRUE);
  /* The demo model goes to the cache folder and the default database to
   * the data folder: keep both inside the test's temporary folder. */
  home = qb_test_tmpdir ();
  g_setenv ("XDG_CACHE_HOME", home, TRUE);
  g_setenv ("XDG_DATA_HOME", home, TRUE);
  /* Xvfb has no GPU: GL would run in software, slower than cairo, and
   * compiling its shaders costs seconds per process. */
  g_setenv ("GSK_RENDERER", "cairo", FALSE);
  gtk_test_init (argc, argv, NULL);
}

void
qb_test_ui_wait_for (gboolean   (*condition) (gpointer data),
                     gpointer     data,
                     double       timeout_s,
                     const char  *what)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (timeout_s * G_USEC_PER_SEC);

  while (!condition (data))
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("timed out after %.0f s waiting for %s", timeout_s, what);
      g_main_context_iteration (NULL, FALSE);
      if (!condition (data))
        g_usleep (1000);
    }
}

void
qb_test_ui_flush (void)
{
  for (int i = 0; i < 50 && g_main_context_pending (NULL); i++)
    g_main_context_iteration (NULL, FALSE);
}

gboolean
qb_test_ui_save_png (GtkWidget   *widget,
                     const char  *path,
                     GError     **error)
{
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  g_autoptr(GtkSnapshot) snapshot = gtk_snapshot_new ();
  g_autoptr(GskRenderNode) node = NULL;
  g_autoptr(GdkTexture) texture = NULL;
  GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));
  int width = gtk_widget_get_width (widget);
  int height = gtk_widget_get_height (widget);

  if (renderer == NULL || width <= 0 || height <= 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "the widget is not on screen");
      return FALSE;
    }
  gdk_paintable_snapshot (paintable, snapshot, width, height);
  node = gtk_snapshot_free_to_node (g_steal_pointer (&snapshot));
  if (node == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "nothing was drawn");
      return FALSE;
    }
  texture = gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, width, height));
  if (!gdk_texture_save_to_png (texture, path))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "could not write %s", path);
      return FALSE;
    }
  return TRUE;
}

/* -- the main loop's latency ------------------------------------------------ */

static struct {
  guint         source;
  gint64        last_tick, last_cpu;
  GArray       *gaps, *cpu_gaps;
  QbLayerTable *table;
  guint         built_last, built_max;
  guint         bound_last, bound_max;
  guint       (*also) (gpointer data);
  gpointer      also_data;
  guint         also_last, also_max;
  GPollFunc     default_poll;
} watch;

static gint64
thread_cpu_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (gint64) ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static gboolean
watch_tick (gpointer data)
{
  gint64 now = g_get_monotonic_time (), cpu = thread_cpu_us ();
  gint64 gap = now - watch.last_tick, cpu_gap = cpu - watch.last_cpu;

  g_array_append_val (watch.gaps, gap);
  g_array_append_val (watch.cpu_gaps, cpu_gap);
  watch.last_tick = now;
  watch.last_cpu = cpu;
  return G_SOURCE_CONTINUE;
}

guint
qb_test_ui_rows_changed (QbLayerTable *table)
{
  return qb_layer_table_get_n_rows_built (table) + qb_layer_table_get_n_rows_freed (table);
}

static int
watch_poll (GPollFD *fds,
            guint    n,
            int      timeout)
{
  guint built = qb_test_ui_rows_changed (watch.table);
  guint bound = qb_layer_table_get_n_rows_bound (watch.table);

  watch.built_max = MAX (watch.built_max, built - watch.built_last);
  watch.built_last = built;
  watch.bound_max = MAX (watch.bound_max, bound - watch.bound_last);
  watch.bound_last = bound;
  if (watch.also)
    {
      guint also = watch.also (watch.also_data);

      watch.also_max = MAX (watch.also_max, also - watch.also_last);
      watch.also_last = also;
    }
  return watch.default_poll (fds, n, timeout);
}

void
qb_test_ui_watch_start (QbLayerTable *table)
{
  g_assert_cmpuint (watch.source, ==, 0);
  watch.gaps = g_array_new (FALSE, FALSE, sizeof (gint64));
  watch.cpu_gaps = g_array_new (FALSE, FALSE, sizeof (gint64));
  watch.source = g_timeout_add (5, watch_tick, NULL);
  watch.last_tick = g_get_monotonic_time ();
  watch.last_cpu = thread_cpu_us ();
  watch.table = table;
  watch.built_max = 0;
  watch.bound_max = 0;
  watch.also_max = 0;
  if (watch.also)
    watch.also_last = watch.also (watch.also_data);
  if (table)
    {
      watch.built_last = qb_test_ui_rows_changed (table);
      watch.bound_last = qb_layer_table_get_n_rows_bound (table);
      watch.default_poll = g_main_context_get_poll_func (NULL);
      g_main_context_set_poll_func (NULL, watch_poll);
    }
}

static int
compare_gap (gconstpointer a,
             gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return x < y ? -1 : x > y;
}

static char *
describe_gaps (GArray *a)
{
  guint n = a->len;

  g_array_sort (a, compare_gap);
  return g_strdup_printf ("max %.0f ms, p99 %.0f ms, median %.1f ms",
                          g_array_index (a, gint64, n - 1) / 1e3,
                          g_array_index (a, gint64, MIN (n - 1, (guint) (n * 0.99))) / 1e3,
                          g_array_index (a, gint64, n / 2) / 1e3);
}

char *
qb_test_ui_watch_stop (guint *rows_max)
{
  g_autofree char *wall = NULL, *cpu = NULL;
  char *report;

  g_assert_cmpuint (watch.source, !=, 0);
  watch_tick (NULL);                  /* the gap up to now */
  g_clear_handle_id (&watch.source, g_source_remove);
  if (watch.table)
    g_main_context_set_poll_func (NULL, watch.default_poll);
  wall = describe_gaps (watch.gaps);
  cpu = describe_gaps (watch.cpu_gaps);
  report = g_strdup_printf ("main-loop gaps over %u ticks: wall %s; main thread's CPU in a gap %s",
                            watch.gaps->len, wall, cpu);
  g_clear_pointer (&watch.gaps, g_array_unref);
  g_clear_pointer (&watch.cpu_gaps, g_array_unref);
  if (rows_max)
    *rows_max = watch.built_max;
  watch.table = NULL;
  return report;
}

guint
qb_test_ui_watch_bound_max (void)
{
  return watch.bound_max;
}

void
qb_test_ui_watch_also (guint  (*count) (gpointer data),
                       gpointer data)
{
  watch.also = count;
  watch.also_data = data;
}

guint
qb_test_ui_watch_also_max (void)
{
  return watch.also_max;
}

static gboolean
table_filled (gpointer data)
{
  return !qb_layer_table_is_filling (data);
}

void
qb_test_ui_wait_table_filled (QbLayerTable *table)
{
  qb_test_ui_wait_for (table_filled, table, 60, "the table's rows");
}

static GtkColumnView *
find_column_view (GtkWidget *root)
{
  if (GTK_IS_COLUMN_VIEW (root))
    return GTK_COLUMN_VIEW (root);
  for (GtkWidget *c = gtk_widget_get_first_child (root); c; c = gtk_widget_get_next_sibling (c))
    {
      GtkColumnView *view = find_column_view (c);
      if (view)
        return view;
    }
  return NULL;
}

GtkColumnView *
qb_test_ui_table_view (QbLayerTable *table)
{
  GtkColumnView *view = find_column_view (GTK_WIDGET (table));

  g_assert_nonnull (view);
  return view;
}

guint
qb_test_ui_table_n_shown (QbLayerTable *table)
{
  GtkColumnView *view = find_column_view (GTK_WIDGET (table));

  g_assert_nonnull (view);
  return g_list_model_get_n_items (G_LIST_MODEL (gtk_column_view_get_model (view)));
}

void
qb_test_ui_check_table_view (QbLayerTable *table)
{
  GListModel *visible = qb_layer_table_get_visible_rows (table);
  GtkColumnView *view = find_column_view (GTK_WIDGET (table));
  GListModel *shown = G_LIST_MODEL (gtk_column_view_get_model (view));
  guint n = g_list_model_get_n_items (visible);

  g_assert_cmpuint (g_list_model_get_n_items (shown), ==, n);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GObject) a = g_list_model_get_item (visible, i);
      g_autoptr(GObject) b = g_list_model_get_item (shown, i);
      g_assert_true (a == b);
    }
}

/* -- a window under test ---------------------------------------------------- */

static gboolean
window_idle (gpointer data)
{
  QbTestWindow *f = data;
  QbRun *run = qb_window_get_run (f->window);

  return !qb_window_is_loading (f->window) && !qb_window_is_busy (f->window)
         && !(run && qb_run_is_running (run))
         && !qb_experiments_page_is_busy (qb_window_get_experiments_page (f->window))
         && !qb_stored_tensors_view_is_busy (qb_experiments_page_get_tensors_view (
                qb_window_get_experiments_page (f->window)))
         && !qb_compare_page_is_busy (qb_window_get_compare_page (f->window));
}

void
qb_test_window_settle (QbTestWindow *f)
{
  qb_test_ui_wait_for (window_idle, f, 120, "the window's background work");
  qb_test_ui_flush ();
}

void
qb_test_window_setup (QbTestWindow  *f,
                      gconstpointer  data)
{
  g_autofree char *db = NULL;

  f->dir = qb_test_tmpdir ();
  db = g_build_filename (f->dir, "experiments.db", NULL);
  qb_test_window_setup_with_db (f, db);
}

void
qb_test_window_setup_with_db (QbTestWindow *f,
                              const char   *db)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSettings) settings = g_settings_new ("org.quantbench.Quantbench");

  if (f->dir == NULL)
    f->dir = qb_test_tmpdir ();
  g_settings_set_string (settings, "database-path", db);
  g_settings_set_uint (settings, "threads", 2);

  f->app = qb_application_new ();
  g_assert_true (g_application_register (G_APPLICATION (f->app), NULL, &error));
  g_assert_no_error (error);
  f->window = qb_window_new (GTK_APPLICATION (f->app));
  gtk_window_set_default_size (GTK_WINDOW (f->window), 1280, 800);
  gtk_window_present (GTK_WINDOW (f->window));
  qb_test_window_settle (f);
  g_assert_true (qb_window_has_store (f->window));
}

void
qb_test_window_teardown (QbTestWindow  *f,
                         gconstpointer  data)
{
  QbRun *run = qb_window_get_run (f->window);

  /* A run still going is cancelled; wait for it so no worker is left. */
  if (run && qb_run_is_running (run))
    {
      g_object_ref (run);
      qb_run_cancel (run);
      while (qb_run_is_running (run))
        g_main_context_iteration (NULL, TRUE);
      g_object_unref (run);
    }
  qb_test_window_settle (f);
  gtk_window_destroy (GTK_WINDOW (f->window));
  qb_test_ui_flush ();
  g_clear_object (&f->app);
  g_free (f->dir);
}

void
qb_test_window_activate (QbTestWindow *f,
                         const char   *action,
                         GVariant     *param)
{
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), action));
  g_action_group_activate_action (G_ACTION_GROUP (f->window), action, param);
  qb_test_ui_flush ();
}

static gboolean
not_loading (gpointer data)
{
  return !qb_window_is_loading (data);
}

void
qb_test_window_open (QbTestWindow *f,
                     const char   *path)
{
  qb_test_window_activate (f, "open-file", g_variant_new_string (path));
  qb_test_ui_wait_for (not_loading, f->window, 60, "the model to load");
  qb_test_window_settle (f);
}

/* The table has every row, and the row the window picked is the one
 * selected and in the details. */
static void
check_table_after_open (QbTestWindow *f)
{
  QbLayerTable *table = qb_window_get_layer_table (f->window);
  QbTensorRow *focused = qb_layer_table_get_focused_row (table);
  g_autoptr(GPtrArray) selected = qb_layer_table_get_selected_rows (table);

  qb_test_ui_check_table_view (table);
  g_assert_nonnull (focused);
  g_assert_true (qb_tensor_details_get_row (qb_window_get_details (f->window)) == focused);
  g_assert_cmpuint (selected->len, ==, 1);
  g_assert_true (g_ptr_array_index (selected, 0) == focused);
}

void
qb_test_window_open_watched (QbTestWindow *f,
                             const char   *path,
                             const char   *what)
{
  QbLayerTable *table = qb_window_get_layer_table (f->window);
  g_autofree char *report = NULL;
  guint rows_max, n;

  qb_test_ui_watch_start (table);
  if (path)
    qb_test_window_open (f, path);
  else
    qb_test_window_activate (f, "open-demo", NULL);
  qb_test_window_settle (f);
  qb_test_ui_wait_table_filled (table);
  report = qb_test_ui_watch_stop (&rows_max);
  n = g_list_model_get_n_items (qb_layer_table_get_visible_rows (table));
  g_test_message ("opened %s (%u tensors), table filled; %s; at most %u rows of cells made "
                  "or freed in one main-loop iteration (%u given a row)", what, n, report, rows_max,
                  qb_test_ui_watch_bound_max ());
  g_assert_cmpuint (rows_max, <=, 16);
  /* Nor are ~200 rows filled again because their positions moved (GTK
   * 4.8 unbinds and binds them; 205 when the view let go of the rows
   * above its cells on a switch, ~90 ms). */
  g_assert_cmpuint (qb_test_ui_watch_bound_max (), <=, 16);
  check_table_after_open (f);
}

gboolean
qb_test_window_open_shared (QbTestWindow *f,
                            const char   *relative)
{
  g_autofree char *path = qb_test_shared_path (relative);

  if (path == NULL)
    return FALSE;
  qb_test_window_open (f, path);
  g_assert_null (qb_window_get_error_message (f->window));
  g_assert_nonnull (qb_window_get_document (f->window));
  return TRUE;
}

QbRun *
qb_test_window_run (QbTestWindow *f)
{
  qb_test_window_activate (f, "quantize", NULL);
  qb_test_window_settle (f);
  return qb_window_get_run (f->window);
}

QbTensorRow *
qb_test_window_row (QbTestWindow *f,
                    const char   *name)
{
  QbTensorRow *row = qb_document_find_row (qb_window_get_document (f->window), name);

  g_assert_nonnull (row);
  return row;
}

static gboolean
evaluation_over (gpointer data)
{
  QbEvaluator *evaluator = qb_window_get_evaluator (data);
  return evaluator && !qb_evaluator_is_running (evaluator);
}

void
qb_test_window_wait_evaluation (QbTestWindow *f,
                                double        timeout_s)
{
  qb_test_ui_wait_for (evaluation_over, f->window, timeout_s, "the evaluation");
}

gint64
qb_test_window_newest_experiment (QbTestWindow *f)
{
  GListModel *rows = qb_experiments_page_get_rows (qb_window_get_experiments_page (f->window));
  gint64 id = 0;

  for (guint i = 0; i < g_list_model_get_n_items (rows); i++)
    {
      g_autoptr(QbExperimentRow) row = g_list_model_get_item (rows, i);
      id = MAX (id, qb_experiment_row_get_id (row));
    }
  return id;
}

/* -- layout ----------------------------------------------------------------- */

static gboolean
window_has_size (gpointer data)
{
  GtkWidget *window = ((gpointer *) data)[0];
  int width = GPOINTER_TO_INT (((gpointer *) data)[1]);
  int height = GPOINTER_TO_INT (((gpointer *) data)[2]);

  int w = gtk_widget_get_width (window), h = gtk_widget_get_height (window);

  /* The default size counts the client-side decorations' margins too. */
  return w <= width && w >= width - 12 && h <= height && h >= height - 12;
}

void
qb_test_window_resize (QbTestWindow *f,
                       int           width,
                       int           height)
{
  gpointer data[3] = { f->window, GINT_TO_POINTER (width), GINT_TO_POINTER (height) };

  /* A mapped window takes a new default size on its next configure: the
   * round trip through maximize asks the server for one. */
  gtk_window_set_default_size (GTK_WINDOW (f->window), width, height);
  gtk_window_maximize (GTK_WINDOW (f->window));
  qb_test_ui_flush ();
  gtk_window_unmaximize (GTK_WINDOW (f->window));
  /* A window whose content needs more keeps its larger size: say so. */
  for (int i = 0; i < 300 && !window_has_size (data); i++)
    {
      qb_test_ui_flush ();
      g_usleep (10000);
    }
  for (int i = 0; i < 5; i++)
    {
      qb_test_ui_flush ();
      g_usleep (10000);
    }
  if (!window_has_size (data))
    {
      int min_w, min_h;
      gtk_widget_measure (GTK_WIDGET (f->window), GTK_ORIENTATION_HORIZONTAL, -1, &min_w, NULL, NULL, NULL);
      gtk_widget_measure (GTK_WIDGET (f->window), GTK_ORIENTATION_VERTICAL, -1, &min_h, NULL, NULL, NULL);
      g_error ("asked for a %d×%d window, got %d×%d (its content needs at least %d×%d)", width, height,
               gtk_widget_get_width (GTK_WIDGET (f->window)), gtk_widget_get_height (GTK_WIDGET (f->window)),
               min_w, min_h);
    }
}

static gboolean
scrolls (GtkWidget *widget)
{
  return GTK_IS_SCROLLED_WINDOW (widget) || GTK_IS_VIEWPORT (widget) || GTK_IS_SCROLLABLE (widget);
}

static void
describe_widget (GString   *out,
                 GtkWidget *widget)
{
  for (GtkWidget *w = widget; w; w = gtk_widget_get_parent (w))
    {
      const char *label = GTK_IS_LABEL (w) ? gtk_label_get_text (GTK_LABEL (w))
                          : GTK_IS_BUTTON (w) && gtk_button_get_label (GTK_BUTTON (w))
                            ? gtk_button_get_label (GTK_BUTTON (w)) : NULL;

      g_string_append_printf (out, "%s%s%s%s%s", w == widget ? "" : " < ", G_OBJECT_TYPE_NAME (w),
                              label ? " \"" : "", label ? label : "", label ? "\"" : "");
    }
}

/* Checks one widget and its children: allocated at least its minimum
 * size, and, unless a scrolling container holds it, inside the window. */
static void
check_clipping (GtkWidget *window,
                GtkWidget *widget,
                gboolean   in_scroller,
                gboolean   in_list,
                GString   *problems)
{
  GtkAllocation alloc;
  int width, height, min_w, min_h;
  graphene_rect_t bounds;

  if (!gtk_widget_get_mapped (widget) || (GTK_IS_NATIVE (widget) && widget != window))
    return;
  /* The allocation is the CSS margin box; measuring counts the margin
   * properties too. */
  gtk_widget_get_allocation (widget, &alloc);
  width = alloc.width + gtk_widget_get_margin_start (widget) + gtk_widget_get_margin_end (widget);
  height = alloc.height + gtk_widget_get_margin_top (widget) + gtk_widget_get_margin_bottom (widget);
  gtk_widget_measure (widget, GTK_ORIENTATION_HORIZONTAL, -1, &min_w, NULL, NULL, NULL);
  gtk_widget_measure (widget, GTK_ORIENTATION_VERTICAL, width, &min_h, NULL, NULL, NULL);
  /* Scrollables show a part of themselves; list rows are as wide as their
   * columns, which scroll. */
  in_list |= GTK_IS_COLUMN_VIEW (widget) || GTK_IS_LIST_VIEW (widget) || GTK_IS_GRID_VIEW (widget);
  if (!in_list && !GTK_IS_SCROLLABLE (widget) && (width + 1 < min_w || height + 1 < min_h))
    {
      g_string_append_printf (problems, "  %d×%d, needs %d×%d: ", width, height, min_w, min_h);
      describe_widget (problems, widget);
      g_string_append_c (problems, '\n');
    }
  else if (!in_scroller && widget != window && gtk_widget_compute_bounds (widget, window, &bounds)
           && (bounds.origin.x < -1 || bounds.origin.y < -1
               || bounds.origin.x + bounds.size.width > gtk_widget_get_width (window) + 1
               || bounds.origin.y + bounds.size.height > gtk_widget_get_height (window) + 1))
    {
      g_string_append_printf (problems, "  at %.0f,%.0f %.0f×%.0f, outside the window: ",
                              bounds.origin.x, bounds.origin.y, bounds.size.width, bounds.size.height);
      describe_widget (problems, widget);
      g_string_append_c (problems, '\n');
    }
  in_scroller |= scrolls (widget);
  for (GtkWidget *child = gtk_widget_get_first_child (widget); child;
       child = gtk_widget_get_next_sibling (child))
    check_clipping (window, child, in_scroller, in_list, problems);
}

char *
qb_test_window_find_clipped (QbTestWindow *f)
{
  g_autoptr(GString) problems = g_string_new (NULL);

  check_clipping (GTK_WIDGET (f->window), GTK_WIDGET (f->window), FALSE, FALSE, problems);
  return problems->len ? g_string_free (g_steal_pointer (&problems), FALSE) : NULL;
}
