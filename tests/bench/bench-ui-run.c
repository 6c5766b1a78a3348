/* SPDX-License-Identifier: MIT */
/* bench-ui-run.c — does the window stay responsive during a large run?
 *
 *   meson test -C build --benchmark --suite bench -v     (needs a display: xvfb-run)
 *   ./build/tests/bench/bench-ui-run [--params 370M] [--format Q4_K]
 *                                    [--preset Q4_K_M] [--model FILE]
 *
 * Opens a generated ~370M-parameter F16 demo model (cached like
 * bench-inspect's) in the workbench window and plays a user: every 50 ms
 * it scrolls the tensor table and every 250 ms selects another tensor
 * (whose histogram is then computed in the background).  Meanwhile a
 * 10 ms timer measures how late the main loop runs it.  The same activity
 * is measured three times in this run: with the window idle (the
 * baseline), during a first quantization of the whole model (the pre-pass
 * reads every tensor) and during a later one (the pre-pass from the scan
 * cache).  It also times the same job
 * without a window, so the cost of showing progress and results is a
 * ratio too, and, with the quantbench executable at hand ($QB_QUANTBENCH,
 * which meson sets), the bare command line run of the same plan as a
 * whole process (`quantize --no-metrics --no-save`, without and with
 * `--out`): the window's run, which measures every tensor and saves the
 * experiment, is compared with what a user would run to get the bytes
 * alone.
 */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <glib/gstdio.h>

#include "qb-bench-util.h"
#include "qb-demo-model.h"
#include "qb-test-ui.h"

#define TICK_MS 10

typedef struct {
  GArray   *late_ms;      /* how late each tick ran */
  gint64    last;
  guint     frames;
} Probe;

static gboolean
on_tick (gpointer data)
{
  Probe *p = data;
  gint64 now = g_get_monotonic_time ();

  if (p->last)
    {
      double late = (now - p->last) / 1000.0 - TICK_MS;
      g_array_append_val (p->late_ms, late);
    }
  p->last = now;
  return G_SOURCE_CONTINUE;
}

static void
on_frame (GdkFrameClock *clock,
          Probe         *p)
{
  p->frames++;
}

static int
compare_double (const void *a,
                const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
percentile (GArray *values,
            double  q)
{
  if (values->len == 0)
    return 0;
  return g_array_index (values, double, MIN (values->len - 1, (guint) (q * values->len)));
}

typedef struct {
  QbTestWindow      *f;
  GtkAdjustment     *scroll;
  guint              step;
} User;

/* The table's vertical scrollbar. */
static GtkAdjustment *
find_scroll (GtkWidget *widget)
{
  for (GtkWidget *child = gtk_widget_get_first_child (widget); child; child = gtk_widget_get_next_sibling (child))
    {
      GtkAdjustment *adj;

      if (GTK_IS_SCROLLED_WINDOW (child))
        return gtk_scrolled_window_get_vadjustment (GTK_SCROLLED_WINDOW (child));
      if ((adj = find_scroll (child)) != NULL)
        return adj;
    }
  return NULL;
}

static gboolean
on_user (gpointer data)
{
  User *u = data;
  QbDocument *doc = qb_window_get_document (u->f->window);
  guint n = g_list_model_get_n_items (qb_document_get_rows (doc));
  double upper = gtk_adjustment_get_upper (u->scroll) - gtk_adjustment_get_page_size (u->scroll);

  u->step++;
  /* Scroll down and up the table, one step every 50 ms. */
  gtk_adjustment_set_value (u->scroll, upper * ((u->step % 40) < 20 ? (u->step % 20) / 20.0
                                                                       : 1 - (u->step % 20) / 20.0));
  if (u->step % 5 == 0)
    qb_layer_table_select_row (qb_window_get_layer_table (u->f->window),
                               qb_document_get_row (doc, (u->step / 5 * 7) % n));
  return G_SOURCE_CONTINUE;
}

static void
measure (QbTestWindow *f,
         const char   *label,
         gboolean      with_run,
         double        idle_seconds)
{
  Probe probe = { g_array_new (FALSE, FALSE, sizeof (double)), 0, 0 };
  User user = { f, find_scroll (GTK_WIDGET (qb_window_get_layer_table (f->window))), 0 };
  GdkFrameClock *clock = gtk_widget_get_frame_clock (GTK_WIDGET (f->window));
  gulong frame_id = g_signal_connect (clock, "after-paint", G_CALLBACK (on_frame), &probe);
  guint tick_id = g_timeout_add (TICK_MS, on_tick, &probe);
  guint user_id = g_timeout_add (50, on_user, &user);
  double t0 = qb_bench_now (), seconds;

  if (with_run)
    {
      g_action_group_activate_action (G_ACTION_GROUP (f->window), "quantize", NULL);
      while (qb_run_is_running (qb_window_get_run (f->window)))
        g_main_context_iteration (NULL, TRUE);
    }
  else
    while (qb_bench_now () - t0 < idle_seconds)
      g_main_context_iteration (NULL, TRUE);
  seconds = qb_bench_now () - t0;

  g_source_remove (user_id);
  g_source_remove (tick_id);
  g_signal_handler_disconnect (clock, frame_id);
  g_array_sort (probe.late_ms, compare_double);
  printf ("  %-22s %6.1f s  %5.1f frames/s  timer late by: median %5.1f ms  p99 %6.1f ms  max %6.1f ms\n",
          label, seconds, probe.frames / seconds, percentile (probe.late_ms, 0.5),
          percentile (probe.late_ms, 0.99), percentile (probe.late_ms, 1.0));
  g_array_unref (probe.late_ms);
}

/* The plan the run uses: a preset when one is named, else one format. */
static void
set_plan (QbPlan     *plan,
          const char *format,
          const char *preset)
{
  if (preset != NULL)
    qb_plan_set_preset (plan, preset);
  else
    qb_plan_set_default_format (plan, format);
}

static double
headless_job_seconds (const char *path,
                      const char *format,
                      const char *preset)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbJob) job = NULL;
  double t0;

  if (model == NULL)
    g_error ("%s", error->message);
  set_plan (plan, format, preset);
  job = qb_job_new (model, plan);
  t0 = qb_bench_now ();
  if (!qb_job_run (job, NULL, &error))
    g_error ("%s", error->message);
  return qb_bench_now () - t0;
}

/* The bare command line run of the plan, as a whole process: wall
 * seconds, or NAN when the executable is not at hand or fails. */
static double
bare_cli_seconds (const char *path,
                  const char *format,
                  const char *preset,
                  gboolean    with_out)
{
  const char *exe = g_getenv ("QB_QUANTBENCH");
  g_autofree char *dir = NULL;
  g_autofree char *out = NULL;
  const char *argv[12];
  QbBenchTime t;
  guint n = 0;
  gboolean ok;

  if (exe == NULL)
    return NAN;
  argv[n++] = exe;
  argv[n++] = "quantize";
  argv[n++] = path;
  argv[n++] = preset ? "--preset" : "--default";
  argv[n++] = preset ? preset : format;
  argv[n++] = "--no-metrics";
  argv[n++] = "--no-save";
  if (with_out)
    {
      dir = g_dir_make_tmp ("bench-ui-run-XXXXXX", NULL);
      out = g_build_filename (dir, "out.gguf", NULL);
      argv[n++] = "--out";
      argv[n++] = out;
    }
  argv[n] = NULL;
  ok = qb_bench_spawn_time (argv, NULL, &t);
  if (out != NULL)
    {
      g_unlink (out);
      g_rmdir (dir);
    }
  return ok ? t.wall : NAN;
}

int
main (int argc, char **argv)
{
  const char *size = "370M";
  const char *format = "Q4_K";
  const char *preset = NULL;
  const char *model = NULL;
  const char *what;
  g_autofree char *path = NULL;
  QbTestWindow f = { 0 };
  gint64 n_params;
  double headless, first, later, bare, bare_out;

  for (int i = 1; i + 1 < argc; i += 2)
    {
      if (g_str_equal (argv[i], "--params"))
        size = argv[i + 1];
      else if (g_str_equal (argv[i], "--format"))
        format = argv[i + 1];
      else if (g_str_equal (argv[i], "--preset"))
        preset = argv[i + 1];
      else if (g_str_equal (argv[i], "--model"))
        model = argv[i + 1];
    }
  what = preset ? preset : format;
  if (g_getenv ("DISPLAY") == NULL && g_getenv ("WAYLAND_DISPLAY") == NULL)
    {
      printf ("bench-ui-run: no display; run it under xvfb-run\n");
      return 77;
    }
  if (!qb_demo_model_parse_size (size, &n_params))
    g_error ("not a size: %s", size);
  path = model ? g_strdup (model) : qb_bench_demo_model (n_params, QB_DTYPE_F16);

  printf ("bare command line run (quantize --no-metrics --no-save), %s, whole process ...\n", what);
  fflush (stdout);
  bare = bare_cli_seconds (path, format, preset, FALSE);
  bare_out = bare_cli_seconds (path, format, preset, TRUE);
  if (isnan (bare))
    printf ("  (not run: set QB_QUANTBENCH to the quantbench executable)\n");
  else
    printf ("  %.1f s; with --out %.1f s\n", bare, bare_out);
  {
    int fake_argc = 1;
    char *fake[] = { argv[0], NULL };
    char **fake_argv = fake;
    qb_test_ui_init (&fake_argc, &fake_argv);
  }
  qb_test_window_setup (&f, NULL);
  gtk_window_set_default_size (GTK_WINDOW (f.window), 1440, 900);
  qb_test_window_open (&f, path);
  if (preset != NULL)
    qb_test_window_activate (&f, "set-preset", g_variant_new_string (preset));
  else
    qb_test_window_activate (&f, "set-default-format", g_variant_new_string (format));

  printf ("main-loop latency while scrolling and selecting tensors (%s, %u tensors):\n",
          model ? model : size,
          g_list_model_get_n_items (qb_document_get_rows (qb_window_get_document (f.window))));
  measure (&f, "idle (baseline)", FALSE, 8.0);
  /* A first run of the model: the pre-pass reads every tensor (no scan
   * cache).  Set while no job runs, so no worker reads the environment
   * meanwhile. */
  g_setenv ("QB_SCAN_CACHE", "0", TRUE);
  measure (&f, "during a first run", TRUE, 0);
  g_unsetenv ("QB_SCAN_CACHE");
  first = qb_run_get_elapsed (qb_window_get_run (f.window));
  printf ("  (results and progress reached the main loop in %u batches)\n",
          qb_run_get_n_dispatches (qb_window_get_run (f.window)));

  printf ("headless job (no window, fills the scan cache), %s, all threads ...\n", what);
  fflush (stdout);
  headless = headless_job_seconds (path, format, preset);
  printf ("  %.1f s\n", headless);

  measure (&f, "during a later run", TRUE, 0);
  later = qb_run_get_elapsed (qb_window_get_run (f.window));

  printf ("run in the window: first run %.1f s, later run (pre-pass from the scan cache) %.1f s; "
          "headless %.1f s: %.2f x\n", first, later, headless, later / headless);
  if (!isnan (bare))
    printf ("run in the window against the bare command line run (%.1f s; with --out %.1f s): "
            "first run %.2f x (%.2f x), later run %.2f x (%.2f x); target 1.3 x\n",
            bare, bare_out, first / bare, first / bare_out, later / bare, later / bare_out);

  qb_test_window_teardown (&f, NULL);
  return 0;
}
