/* SPDX-License-Identifier: MIT */
/* take-screenshots.c — renders the main views of the workbench to PNG.
 *
 * Drives the real window through its actions, as the UI tests do: opens
 * the built-in demo model (or the model given), quantizes it with a few
 * plans so that experiments exist, and saves what the window shows.
 * With the reference data (QB_SHARED_DIR), it also evaluates a few plans
 * of stories260K on TinyStories and shows perplexity and KL divergence.
 * Run by take.sh under Xvfb; writes into the folder given.
 */
#include <gtk/gtk.h>

#include "qb-test-ui.h"

static const char *out_dir;

static void
save_window (QbTestWindow *f,
             const char   *name)
{
  g_autofree char *path = g_build_filename (out_dir, name, NULL);
  g_autoptr(GError) error = NULL;

  /* Let the last layout and the charts' redraws land. */
  for (int i = 0; i < 20; i++)
    {
      qb_test_ui_flush ();
      g_usleep (10000);
    }
  if (!qb_test_ui_save_png (GTK_WIDGET (f->window), path, &error))
    g_error ("%s: %s", path, error->message);
  g_print ("wrote %s\n", path);
}

static void
save_chart (QbChart    *chart,
            const char *name,
            int         width,
            int         height)
{
  g_autofree char *path = g_build_filename (out_dir, name, NULL);
  g_autoptr(GError) error = NULL;

  if (!qb_chart_export (chart, path, width, height, &error))
    g_error ("%s: %s", path, error->message);
  g_print ("wrote %s\n", path);
}

static void
run_plan (QbTestWindow *f,
          const char   *preset,
          const char   *default_format)
{
  qb_test_window_activate (f, "set-preset", g_variant_new_string (preset));
  qb_test_window_activate (f, "set-default-format", g_variant_new_string (default_format));
  if (qb_run_get_status (qb_test_window_run (f)) != QB_RUN_DONE)
    g_error ("a run did not finish");
}

static gboolean
has_stats (gpointer data)
{
  QbTensorRow *row = qb_tensor_details_get_row (qb_window_get_details (data));
  return row && qb_tensor_row_get_stats (row);
}

static void
select_tensor (QbTestWindow *f,
               const char   *name)
{
  qb_test_window_activate (f, "select-tensor", g_variant_new_string (name));
  qb_test_ui_wait_for (has_stats, f->window, 60, "the tensor's statistics");
}

/* Selects every listed experiment, the newest first. */
static void
select_all_experiments (QbTestWindow *f)
{
  QbExperimentsPage *page = qb_window_get_experiments_page (f->window);
  GListModel *rows = qb_experiments_page_get_rows (page);

  for (guint i = 0; i < g_list_model_get_n_items (rows); i++)
    {
      g_autoptr(QbExperimentRow) row = g_list_model_get_item (rows, i);
      qb_experiments_page_select_id (page, qb_experiment_row_get_id (row), i > 0);
    }
}

/* 4. stories260K quantized a few ways, each evaluated against the float
 * model on TinyStories: the experiments with their perplexity and KLD,
 * and KLD against bits per weight. */
static void
shoot_evaluation (QbTestWindow *f,
                  const char   *shared)
{
  g_autofree char *model = g_build_filename (shared, "models", "stories260K.gguf", NULL);
  g_autofree char *text = g_build_filename (shared, "text", "tinystories-val.txt", NULL);
  const char *formats[] = { "Q8_0", "Q5_1", "Q4_0", "INT4_G32", "INT4_G64", "INT3_G32" };
  QbComparePage *compare;

  if (!g_file_test (model, G_FILE_TEST_EXISTS) || !g_file_test (text, G_FILE_TEST_EXISTS))
    return;
  qb_test_window_open (f, model);
  qb_test_window_activate (f, "set-preset", g_variant_new_string (""));
  qb_test_window_activate (f, "show-page", g_variant_new_string ("experiments"));
  for (guint i = 0; i < G_N_ELEMENTS (formats); i++)
    {
      gint64 id;

      qb_test_window_activate (f, "set-default-format", g_variant_new_string (formats[i]));
      if (qb_run_get_status (qb_test_window_run (f)) != QB_RUN_DONE)
        g_error ("a run did not finish");
      qb_test_window_settle (f);
      id = qb_test_window_newest_experiment (f);
      qb_test_window_activate (f, "evaluate-experiment",
                               g_variant_new ("(xsuub)", id, text, 128, 40, TRUE));
      qb_test_window_wait_evaluation (f, 600);
      if (qb_evaluator_get_status (qb_window_get_evaluator (f->window)) != QB_EVALUATOR_DONE)
        g_error ("an evaluation did not finish");
    }
  qb_test_window_settle (f);
  select_all_experiments (f);
  save_window (f, "evaluation.png");
  qb_test_window_activate (f, "compare", NULL);
  qb_test_window_settle (f);
  compare = qb_window_get_compare_page (f->window);
  qb_compare_page_set_metric (compare, QB_METRIC_KLD_MEAN);
  save_window (f, "compare-kld.png");
}

static gboolean
run_over (gpointer data)
{
  QbRun *run = qb_window_get_run (data);
  return run && !qb_run_is_running (run);
}

/* The plan written out as a quantized GGUF from the window: the run panel
 * says what went where; the sidebar's undo, redo, open and save above. */
static void
shoot_export (QbTestWindow *f)
{
  g_autofree char *out = g_build_filename (f->dir, "demo-Q4_K_M.gguf", NULL);

  qb_test_window_activate (f, "show-page", g_variant_new_string ("plan"));
  qb_test_window_activate (f, "export-model-to", g_variant_new_string (out));
  qb_test_window_settle (f);
  qb_test_ui_wait_for (run_over, f->window, 120, "the export");
  if (qb_run_get_status (qb_window_get_run (f->window)) != QB_RUN_DONE)
    g_error ("the export did not finish");
  save_window (f, "export.png");

  /* One experiment selected: its model can be exported; Compare waits
   * for a second one and says so. */
  qb_test_window_activate (f, "show-page", g_variant_new_string ("experiments"));
  qb_experiments_page_select_id (qb_window_get_experiments_page (f->window),
                                 qb_test_window_newest_experiment (f), FALSE);
  save_window (f, "experiments-actions.png");
}

int
main (int argc, char **argv)
{
  QbTestWindow f = { 0 };
  QbComparePage *compare;

  if (argc < 2)
    {
      g_printerr ("usage: take-screenshots OUT-DIR [MODEL]\n");
      return 2;
    }
  out_dir = argv[1];
  qb_test_ui_init (&argc, &argv);
  g_mkdir_with_parents (out_dir, 0755);

  qb_test_window_setup (&f, NULL);
  gtk_window_set_default_size (GTK_WINDOW (f.window), 1440, 900);
  gtk_window_maximize (GTK_WINDOW (f.window));
  gtk_window_unmaximize (GTK_WINDOW (f.window));
  if (argc > 2)
    qb_test_window_open (&f, argv[2]);
  else
    {
      qb_test_window_activate (&f, "open-demo", NULL);
      qb_test_window_settle (&f);
    }
  if (qb_window_get_document (f.window) == NULL)
    g_error ("the model did not open: %s", qb_window_get_error_message (f.window));

  /* A few experiments to review and compare. */
  run_plan (&f, "", "Q8_0");
  qb_test_window_activate (&f, "set-experiment-tags", g_variant_new ("(xs)", (gint64) 1, "baseline"));
  qb_test_window_activate (&f, "set-experiment-notes",
                           g_variant_new ("(xs)", (gint64) 1, "8 bits everywhere: the reference the others are judged against."));
  run_plan (&f, "", "Q4_1");
  run_plan (&f, "", "Q4_0");
  run_plan (&f, "", "IQ4_NL");
  run_plan (&f, "", "Q3_K");
  /* The last run, on screen: a preset, a rule, and one tensor in a
   * per-channel integer format whose levels show in its histogram. */
  qb_test_window_activate (&f, "add-rule", g_variant_new ("(sss)", "*.attn_v.weight", "glob", "Q6_K"));
  qb_test_window_activate (&f, "select-tensor", g_variant_new_string ("blk.1.attn_q.weight"));
  qb_test_window_activate (&f, "set-format", g_variant_new_string ("INT4_CH"));
  run_plan (&f, "Q4_K_M", "Q4_K");

  /* 1. The plan page after a finished run, worst tensors first, the
   * worst one's histogram below. */
  qb_test_window_activate (&f, "show-page", g_variant_new_string ("plan"));
  qb_layer_table_sort_by (qb_window_get_layer_table (f.window), "sqnr", GTK_SORT_ASCENDING);
  select_tensor (&f, "blk.1.attn_q.weight");
  save_window (&f, "plan.png");

  /* The same at the smallest size supported and at full HD. */
  qb_test_window_resize (&f, 1024, 700);
  save_window (&f, "plan-1024x700.png");
  qb_test_window_activate (&f, "show-page", g_variant_new_string ("experiments"));
  qb_test_window_settle (&f);
  /* The latest run with its tensors, the overridden one's histograms. */
  qb_experiments_page_select_id (qb_window_get_experiments_page (f.window),
                                 qb_test_window_newest_experiment (&f), FALSE);
  qb_test_window_settle (&f);
  gtk_widget_activate_action (GTK_WIDGET (qb_experiments_page_get_tensors_view (qb_window_get_experiments_page (f.window))),
                              "tensors.select", "(si)", "blk.1.attn_q.weight", -1);
  qb_test_window_settle (&f);
  save_window (&f, "experiments-1024x700.png");
  qb_test_window_resize (&f, 1920, 1080);
  save_window (&f, "experiments-1920x1080.png");
  qb_test_window_activate (&f, "show-page", g_variant_new_string ("plan"));
  qb_test_window_settle (&f);
  save_window (&f, "plan-1920x1080.png");
  qb_test_window_resize (&f, 1440, 900);

  /* 2. The histogram overlay on its own, light and dark. */
  qb_histogram_view_set_log_scale (qb_tensor_details_get_histogram (qb_window_get_details (f.window)), FALSE);
  save_chart (QB_CHART (qb_tensor_details_get_histogram (qb_window_get_details (f.window))),
              "histogram.png", 1000, 440);
  qb_test_window_activate (&f, "show-chart", g_variant_new_string ("channels"));
  save_chart (QB_CHART (qb_tensor_details_get_channel_view (qb_window_get_details (f.window))),
              "channels.png", 1000, 360);
  qb_test_window_activate (&f, "show-chart", g_variant_new_string ("histogram"));
  g_object_set (gtk_settings_get_default (), "gtk-application-prefer-dark-theme", TRUE, NULL);
  qb_test_ui_flush ();
  save_chart (QB_CHART (qb_tensor_details_get_histogram (qb_window_get_details (f.window))),
              "histogram-dark.png", 1000, 440);
  g_object_set (gtk_settings_get_default (), "gtk-application-prefer-dark-theme", FALSE, NULL);

  /* 3. The experiments and their comparison. */
  qb_test_window_activate (&f, "show-page", g_variant_new_string ("experiments"));
  qb_test_window_settle (&f);
  select_all_experiments (&f);
  save_window (&f, "experiments.png");
  qb_test_window_activate (&f, "compare", NULL);
  qb_test_window_settle (&f);
  compare = qb_window_get_compare_page (f.window);
  qb_compare_page_set_metric (compare, QB_METRIC_SQNR);
  save_window (&f, "compare.png");
  save_chart (QB_CHART (qb_compare_page_get_layer_bars (compare)), "compare-layers.png", 1000, 400);

  shoot_export (&f);

  if (g_getenv ("QB_SHARED_DIR") != NULL)
    shoot_evaluation (&f, g_getenv ("QB_SHARED_DIR"));

  qb_test_window_teardown (&f, NULL);
  return 0;
}
