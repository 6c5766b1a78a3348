/* SPDX-License-Identifier: MIT */
/* test-ui-moe.c — the window with a generated mixture of experts of over
 * 1,000 tensors (Qwen2-MoE layout, 60 layers): the table groups each
 * layer's router, experts and shared expert under the layer, an expert
 * tensor's histogram is computed, and a plan runs; an expert tensor
 * expands into a row per expert under it, an expert's row shows its own
 * SQNR and, selected, its own histograms, and the stored experiment
 * brings them back.  Opening it never has GTK build more than a few
 * rows of the table in one main-loop iteration (it built ~200 at once);
 * the main loop's latency while the model opens and while the plan runs
 * is reported (measured, not asserted: it depends on the machine's load).  A study per
 * expert shows each expert's bar on the Sensitivity page, and the study
 * dialog's "Per expert" box starts one; the heatmap opens an expert
 * kind into layers × experts (8 and 60 experts).  The Experiments page
 * reviews a stored run of a mixture: its experts as rows under their
 * tensor, with their figures and histograms.  With
 * QB_MOE_SCREENSHOTS=DIR the window is saved there at 1024×700 and
 * 1920×1080 (moe-*.png; moe-then-demo-*.png after switching to the demo
 * model, moe-switching.png while the table lets go of the big model's
 * rows).  Switching models (small → big → big again → small, several in
 * a row) never has GTK make or free more than 16 rows of cells in one
 * main-loop iteration either (it freed ~200 at once).
 */
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "qb-demo-model.h"
#include "qb-study-dialog.h"
#include "qb-test-ui.h"

typedef QbTestWindow Fixture;

static gboolean
has_stats (gpointer data)
{
  QbTensorRow *row = qb_tensor_details_get_row (qb_window_get_details (data));
  return row && qb_tensor_row_get_stats (row);
}

/* A generated mixture (F16, the demo's widths) at path. */
static void
write_moe (const char *path, const char *arch, guint n_layer, guint n_expert)
{
  g_autoptr(GError) error = NULL;
  QbDemoModelSpec spec;

  qb_demo_model_spec_init (&spec);
  spec.arch = arch;
  spec.n_layer = n_layer;
  spec.n_expert = n_expert;
  g_assert_true (qb_demo_model_write (&spec, path, NULL, NULL, &error));
  g_assert_no_error (error);
}

/* The row of expert e of a tensor among the rows shown, and its position. */
static QbTensorRow *
visible_expert (QbLayerTable *table, const char *tensor, int e, guint *position)
{
  GListModel *visible = qb_layer_table_get_visible_rows (table);

  for (guint i = 0; i < g_list_model_get_n_items (visible); i++)
    {
      g_autoptr(QbTensorRow) r = g_list_model_get_item (visible, i);
      if (qb_tensor_row_get_expert (r) == e && g_str_equal (qb_tensor_row_get_name (r), tensor))
        {
          *position = i;
          return r;
        }
    }
  return NULL;
}

/* Expanded, an expert tensor's four experts follow its row, in order,
 * inside its layer's group; they take the tensor's format. */
static void
check_expert_rows (QbLayerTable *table, QbTensorRow *tensor)
{
  GListModel *visible = qb_layer_table_get_visible_rows (table);
  guint n_before = g_list_model_get_n_items (visible), at = G_MAXUINT;

  qb_layer_table_set_experts_expanded (table, tensor, TRUE);
  g_assert_cmpuint (g_list_model_get_n_items (visible), ==, n_before + 4);
  for (guint i = 0; i < n_before + 4; i++)
    {
      g_autoptr(QbTensorRow) r = g_list_model_get_item (visible, i);
      if (r == tensor)
        at = i;
    }
  g_assert_cmpuint (at, <, n_before);
  for (int e = 0; e < 4; e++)
    {
      g_autoptr(QbTensorRow) r = g_list_model_get_item (visible, at + 1 + e);
      g_autofree char *label = qb_layer_table_get_group_label (table, at + 1 + e);

      g_assert_true (qb_tensor_row_get_parent (r) == tensor);
      g_assert_cmpint (qb_tensor_row_get_expert (r), ==, e);
      g_assert_cmpint (qb_tensor_row_get_layer (r), ==, qb_tensor_row_get_layer (tensor));
      g_assert_null (label);                       /* still inside the layer's group */
      g_assert_cmpstr (qb_tensor_row_get_format (r), ==, qb_tensor_row_get_format (tensor));
      g_assert_cmpint (qb_tensor_row_get_n_params (r) * 4, ==, qb_tensor_row_get_n_params (tensor));
    }
}

static void
save (Fixture *f, const char *dir, const char *prefix, int width, int height)
{
  g_autofree char *name = g_strdup_printf ("%s-%dx%d.png", prefix, width, height);
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  qb_test_window_resize (f, width, height);
  for (int i = 0; i < 20; i++)
    {
      qb_test_ui_flush ();
      g_usleep (10000);
    }
  if (!qb_test_ui_save_png (GTK_WIDGET (f->window), path, &error))
    g_error ("%s: %s", path, error->message);
  g_test_message ("wrote %s", path);
}

static QbStoredTensorsView *show_stored (Fixture *f, gint64 id);
static gboolean tensors_view_idle (gpointer data);

static guint
stored_rows_freed (gpointer view)
{
  return qb_stored_tensors_view_get_n_rows_freed (view);
}

static void
test_moe_window (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "moe.gguf", NULL);
  const char *shots = g_getenv ("QB_MOE_SCREENSHOTS");
  QbLayerTable *table = qb_window_get_layer_table (f->window);
  GListModel *visible;
  QbTensorRow *row;
  const QbTensorResult *stats;
  guint n, first = G_MAXUINT, last = 0, groups = 0, rows_max;
  gint64 t0;
  double open_s, run_s;
  g_autofree char *summary = NULL;
  g_autofree char *report = NULL;
  g_autoptr(QbHistogram) saved = NULL;
  QbTensorRow *expert;
  QbTensorDetails *details;
  const QbHistogram *shown;
  const QbTensorResult *stored;
  double expert_sqnr;
  QbStoredTensorsView *stored_view;
  guint at, freed;

  write_moe (path, "qwen2moe", 60, 4);

  qb_test_ui_watch_start (table);
  t0 = g_get_monotonic_time ();
  qb_test_window_open (f, path);
  qb_test_ui_wait_table_filled (table);
  open_s = (g_get_monotonic_time () - t0) / 1e6;
  report = qb_test_ui_watch_stop (&rows_max);
  g_test_message ("opened 1,023 tensors in %.2f s, table filled; %s; GTK built %u rows of "
                  "cells, at most %u made or freed in one main-loop iteration", open_s, report,
                  qb_layer_table_get_n_rows_built (table), rows_max);
  /* The view got every row, a few at a time: GTK 4.8 builds the cells of
   * up to ~200 rows for a model it is given at once (a quarter to half a
   * second of the main loop's time for 15 columns). */
  g_assert_cmpuint (qb_layer_table_get_n_rows_built (table), >=, 20);
  g_assert_cmpuint (rows_max, <=, 16);
  g_assert_cmpuint (qb_test_ui_table_n_shown (table), ==, 1023);

  /* Grouped by layer: layer 7's 17 tensors together, experts among them. */
  qb_layer_table_set_group_by (table, QB_GROUP_LAYER);
  visible = qb_layer_table_get_visible_rows (table);
  n = g_list_model_get_n_items (visible);
  g_assert_cmpuint (n, ==, 3 + 60 * 17);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(QbTensorRow) r = g_list_model_get_item (visible, i);
      g_autofree char *label = qb_layer_table_get_group_label (table, i);

      groups += label != NULL;
      if (qb_tensor_row_get_layer (r) != 7)
        continue;
      first = MIN (first, i);
      last = MAX (last, i);
    }
  g_assert_cmpuint (last - first + 1, ==, 17);
  summary = qb_layer_table_get_group_summary (table, first);
  g_assert_nonnull (strstr (summary, "17 tensors"));
  g_assert_cmpuint (groups, >=, 60);
  for (guint i = first; i <= last; i++)
    {
      g_autoptr(QbTensorRow) r = g_list_model_get_item (visible, i);
      g_assert_cmpint (qb_tensor_row_get_layer (r), ==, 7);
    }

  /* An expert tensor: its statistics and histogram over all its experts. */
  qb_test_window_activate (f, "select-tensor", g_variant_new_string ("blk.7.ffn_down_exps.weight"));
  qb_test_ui_wait_for (has_stats, f->window, 120, "the expert tensor's statistics");
  row = qb_tensor_details_get_row (qb_window_get_details (f->window));
  g_assert_cmpstr (qb_tensor_row_get_role_name (row), ==, "ffn_down_exps");
  stats = qb_tensor_row_get_stats (row);
  g_assert_nonnull (stats->hist_original);
  g_assert_cmpuint (qb_histogram_total (stats->hist_original), ==, stats->n_params);

  /* A plan over every tensor. */
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q8_0"));
  qb_test_ui_watch_start (NULL);
  t0 = g_get_monotonic_time ();
  g_assert_cmpint (qb_run_get_status (qb_test_window_run (f)), ==, QB_RUN_DONE);
  run_s = (g_get_monotonic_time () - t0) / 1e6;
  g_free (report);
  report = qb_test_ui_watch_stop (NULL);
  g_test_message ("Q8_0 run of 1,023 tensors in %.1f s; %s", run_s, report);
  row = qb_test_window_row (f, "blk.7.ffn_down_exps.weight");
  g_assert_nonnull (qb_tensor_row_get_result (row));
  g_assert_cmpfloat (qb_tensor_row_get_result (row)->metrics.sqnr_db, >, 30);

  /* Each expert a row under its tensor, with its own SQNR from the run. */
  check_expert_rows (table, row);
  expert = visible_expert (table, "blk.7.ffn_down_exps.weight", 2, &at);
  g_assert_nonnull (expert);
  g_assert_cmpfloat (qb_tensor_row_get_sqnr (expert), ==, qb_tensor_row_get_result (row)->expert_metrics[2].sqnr_db);
  /* Every metric of its own, as a tensor's (the cosine and output error too). */
  g_assert_cmpfloat (qb_tensor_row_get_cosine (expert), ==,
                     qb_tensor_row_get_result (row)->expert_metrics[2].cosine);
  g_assert_true (qb_tensor_row_get_cosine (expert) > 0.9 && qb_tensor_row_get_cosine (expert) < 1);
  g_assert_cmpfloat (qb_tensor_row_get_rmse_rel (expert), ==,
                     qb_tensor_row_get_result (row)->expert_metrics[2].rmse_rel);

  /* Selected, it fills the details with its own histograms and figures. */
  g_assert_true (qb_layer_table_select_row (table, expert));
  qb_test_ui_flush ();
  details = qb_window_get_details (f->window);
  g_assert_true (qb_tensor_details_get_row (details) == expert);
  shown = qb_histogram_view_get_histogram (qb_tensor_details_get_histogram (details));
  g_assert_nonnull (shown);
  g_assert_cmpuint (shown->n_bins, ==, QB_EXPERT_HISTOGRAM_BINS);
  g_assert_cmpmem (shown->counts, shown->n_bins * 8,
                   qb_tensor_result_expert_histogram (qb_tensor_row_get_result (row), 2, 0)->counts,
                   shown->n_bins * 8);
  g_assert_cmpuint (qb_histogram_total (shown), ==, qb_tensor_row_get_n_params (expert));
  g_assert_nonnull (strstr (qb_tensor_details_get_fact (details, "experts"), "expert 2 of 4"));
  g_assert_nonnull (strstr (qb_tensor_details_get_fact (details, "format"), "one format for all 4 experts"));
  /* The weights' moments: the expert's own, not the tensor's. */
  {
    const QbTensorMetrics *m = &qb_tensor_row_get_result (row)->expert_metrics[2];
    g_autofree char *mean = g_strdup_printf ("%.4g ± %.4g", m->mean, m->std);
    g_autofree char *kurtosis = g_strdup_printf ("%.2f", m->kurtosis);

    g_assert_cmpfloat (m->kurtosis, !=, qb_tensor_row_get_result (row)->metrics.kurtosis);
    g_assert_cmpstr (qb_tensor_details_get_fact (details, "mean"), ==, mean);
    g_assert_cmpstr (qb_tensor_details_get_fact (details, "kurtosis"), ==, kurtosis);
  }
  saved = qb_histogram_copy (qb_tensor_result_expert_histogram (qb_tensor_row_get_result (row), 2, 2));
  expert_sqnr = qb_tensor_row_get_sqnr (expert);

  /* The stored experiment brings every expert back, histograms too. */
  qb_test_window_activate (f, "open-experiment", g_variant_new_int64 (1));
  qb_test_window_settle (f);
  stored = qb_tensor_row_get_result (row);
  g_assert_nonnull (stored);
  g_assert_cmpuint (stored->n_experts, ==, 4);
  g_assert_cmpfloat (stored->expert_metrics[2].sqnr_db, ==, expert_sqnr);
  g_assert_nonnull (qb_tensor_result_expert_histogram (stored, 2, 2));
  g_assert_cmpmem (qb_tensor_result_expert_histogram (stored, 2, 2)->counts, saved->n_bins * 8,
                   saved->counts, saved->n_bins * 8);
  g_assert_cmpfloat (qb_tensor_row_get_sqnr (expert), ==, expert_sqnr);

  if (shots != NULL)
    {
      g_assert_true (qb_layer_table_select_row (table, expert));
      save (f, shots, "moe", 1024, 700);
      save (f, shots, "moe", 1920, 1080);
    }

  /* Reviewed on the Experiments page: 1,023 tensor rows, the expert's own
   * row under its tensor with its figures and histograms. */
  qb_test_ui_watch_start (NULL);
  t0 = g_get_monotonic_time ();
  stored_view = show_stored (f, 1);
  g_free (report);
  report = qb_test_ui_watch_stop (NULL);
  g_test_message ("the stored experiment's 1,023 tensors read and shown in %.2f s; %s",
                  (g_get_monotonic_time () - t0) / 1e6, report);
  g_assert_cmpuint (g_list_model_get_n_items (qb_stored_tensors_view_get_rows (stored_view)), ==, 1023);
  g_assert_nonnull (strstr (qb_stored_tensors_view_get_summary (stored_view),
                            "180 expert tensors of 4 experts"));
  gtk_widget_activate_action (GTK_WIDGET (stored_view), "tensors.select", "(si)",
                              "blk.7.ffn_down_exps.weight", 2);
  qb_test_ui_wait_for (tensors_view_idle, stored_view, 60, "the expert's histograms");
  g_assert_cmpint (qb_stored_tensor_item_get_expert (qb_stored_tensors_view_get_selected (stored_view)), ==, 2);
  g_assert_cmpfloat (qb_stored_tensor_item_get_metrics (qb_stored_tensors_view_get_selected (stored_view))->sqnr_db,
                     ==, expert_sqnr);
  shown = qb_histogram_view_get_histogram (qb_stored_tensors_view_get_error_histogram (stored_view));
  g_assert_nonnull (shown);
  g_assert_cmpmem (shown->counts, saved->n_bins * 8, saved->counts, saved->n_bins * 8);
  qb_test_window_activate (f, "show-page", g_variant_new_string ("plan"));

  /* Another model after it (the view scrolled to the expert's row): the
   * view lets go of its ~200 rows of cells a few a frame, and so does the
   * Experiments page's table of the stored run (it freed them at once,
   * ~70 ms, as the page showed the new model's experiments). */
  freed = qb_stored_tensors_view_get_n_rows_freed (stored_view);
  qb_test_ui_watch_also (stored_rows_freed, stored_view);
  qb_test_window_open_watched (f, NULL, "the demo model after the 1,023-tensor one");
  qb_test_ui_watch_also (NULL, NULL);
  qb_test_ui_wait_for (tensors_view_idle, stored_view, 60, "the stored view's rows let go of");
  freed = qb_stored_tensors_view_get_n_rows_freed (stored_view) - freed;
  g_test_message ("the Experiments page's table freed %u rows of cells, at most %u in one "
                  "main-loop iteration", freed, qb_test_ui_watch_also_max ());
  g_assert_cmpuint (freed, >=, 100);
  g_assert_cmpuint (qb_test_ui_watch_also_max (), <=, 16);
}

/* A third of a second of frames. */
static void
wait_frames (void)
{
  for (int i = 0; i < 30; i++)
    {
      g_usleep (10000);
      qb_test_ui_flush ();
    }
}


static void
test_moe_switch (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "moe.gguf", NULL);
  QbLayerTable *table = qb_window_get_layer_table (f->window);
  const char *shots = g_getenv ("QB_MOE_SCREENSHOTS");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbDocument) moe = NULL;
  g_autoptr(QbDocument) demo = NULL;
  g_autofree char *report = NULL;
  QbTensorRow *last, *pick;
  g_autoptr(GPtrArray) selected = NULL;
  guint rows_max, before;

  write_moe (path, "qwen2moe", 60, 4);

  /* Small, then big, then the big one again (a new document: GTK had
   * ~200 rows of cells for the old one's rows), then small. */
  qb_test_window_open_watched (f, NULL, "the demo model");
  qb_test_window_open_watched (f, path, "the 1,023-tensor model after the demo model");

  /* A far jump: the last tensor, from the top (reported). */
  last = g_list_model_get_item (qb_layer_table_get_visible_rows (table), 1022);
  g_object_unref (last);          /* the document holds it */
  qb_test_ui_watch_start (table);
  before = qb_test_ui_rows_changed (table);
  g_assert_true (qb_layer_table_select_row (table, last));
  wait_frames ();
  report = qb_test_ui_watch_stop (&rows_max);
  /* GTK 4.8 reuses the cells it had for the new rows: few are made or
   * freed, but ~200 rows get new contents at once (reported, not bounded). */
  g_test_message ("selected the last tensor from the top: %u rows of cells made or freed (at most "
                  "%u in one main-loop iteration), %u given a row in one iteration; %s",
                  qb_test_ui_rows_changed (table) - before, rows_max, qb_test_ui_watch_bound_max (), report);

  /* The scrollbar dragged to the middle (reported). */
  {
    GtkAdjustment *adj = gtk_scrollable_get_vadjustment (GTK_SCROLLABLE (qb_test_ui_table_view (table)));

    qb_test_ui_watch_start (table);
    before = qb_test_ui_rows_changed (table);
    gtk_adjustment_set_value (adj, gtk_adjustment_get_upper (adj) / 2);
    wait_frames ();
    g_free (report);
    report = qb_test_ui_watch_stop (&rows_max);
    g_test_message ("scrolled to the middle: %u rows of cells made or freed (at most %u in one "
                    "main-loop iteration), %u given a row in one iteration; %s",
                    qb_test_ui_rows_changed (table) - before, rows_max, qb_test_ui_watch_bound_max (), report);
    gtk_adjustment_set_value (adj, gtk_adjustment_get_upper (adj));
    wait_frames ();
  }

  qb_test_window_open_watched (f, path, "the 1,023-tensor model again, scrolled to its end");
  moe = g_object_ref (qb_window_get_document (f->window));
  qb_test_window_open_watched (f, NULL, "the demo model after the 1,023-tensor one");
  demo = g_object_ref (qb_window_get_document (f->window));
  if (shots)
    {
      save (f, shots, "moe-then-demo", 1024, 700);
      save (f, shots, "moe-then-demo", 1920, 1080);
    }

  /* Models set one after another before the view has let go of the
   * previous rows: it ends on the last one, a few rows per iteration. */
  qb_test_ui_watch_start (table);
  qb_layer_table_set_document (table, moe);
  for (int i = 0; i < 3; i++)
    {
      g_usleep (20000);
      qb_test_ui_flush ();
    }
  qb_layer_table_set_document (table, demo);
  qb_layer_table_set_document (table, moe);
  g_assert_true (qb_layer_table_is_filling (table));
  qb_test_ui_wait_table_filled (table);
  g_free (report);
  report = qb_test_ui_watch_stop (&rows_max);
  g_test_message ("demo → MoE → demo → MoE in a row, table filled; %s; at most %u rows of cells "
                  "made or freed in one main-loop iteration", report, rows_max);
  g_assert_cmpuint (rows_max, <=, 16);
  g_assert_true (qb_layer_table_get_visible_rows (table) != NULL);
  g_assert_cmpuint (g_list_model_get_n_items (qb_layer_table_get_visible_rows (table)), ==, 1023);
  qb_test_ui_check_table_view (table);

  /* A row selected while the view still lets go of the old rows: it is
   * the focused row at once, and selected in the view once it is there. */
  qb_test_ui_watch_start (table);
  qb_layer_table_set_document (table, demo);
  g_assert_true (qb_layer_table_is_filling (table));
  if (shots)
    {
      g_autofree char *png = g_build_filename (shots, "moe-switching.png", NULL);

      for (int i = 0; i < 2; i++)
        {
          g_usleep (20000);
          qb_test_ui_flush ();
        }
      if (!qb_test_ui_save_png (GTK_WIDGET (f->window), png, &error))
        g_error ("%s: %s", png, error->message);
    }
  pick = qb_document_get_row (demo, 3);
  g_assert_true (qb_layer_table_select_row (table, pick));
  g_assert_true (qb_layer_table_get_focused_row (table) == pick);
  selected = qb_layer_table_get_selected_rows (table);
  g_assert_cmpuint (selected->len, ==, 1);
  g_assert_true (g_ptr_array_index (selected, 0) == pick);
  g_clear_pointer (&selected, g_ptr_array_unref);
  qb_test_ui_wait_table_filled (table);
  g_free (report);
  report = qb_test_ui_watch_stop (&rows_max);
  g_test_message ("MoE → demo with a row selected meanwhile; %s; at most %u rows", report, rows_max);
  g_assert_cmpuint (rows_max, <=, 16);
  qb_test_ui_check_table_view (table);
  g_assert_true (qb_layer_table_get_focused_row (table) == pick);
  g_assert_true (qb_tensor_details_get_row (qb_window_get_details (f->window)) == pick);
  selected = qb_layer_table_get_selected_rows (table);
  g_assert_cmpuint (selected->len, ==, 1);
  g_assert_true (g_ptr_array_index (selected, 0) == pick);
}

static gboolean
tensors_view_idle (gpointer data)
{
  return !qb_stored_tensors_view_is_busy (data);
}

/* The Experiments page with experiment id focused, its tensors read and
 * given to the table. */
static QbStoredTensorsView *
show_stored (Fixture *f, gint64 id)
{
  QbExperimentsPage *page = qb_window_get_experiments_page (f->window);
  QbStoredTensorsView *view = qb_experiments_page_get_tensors_view (page);

  qb_test_window_activate (f, "show-page", g_variant_new_string ("experiments"));
  qb_test_window_settle (f);
  g_assert_true (qb_experiments_page_select_id (page, id, FALSE));
  qb_test_ui_wait_for (tensors_view_idle, view, 120, "the experiment's tensors");
  g_assert_cmpint (qb_stored_tensors_view_get_experiment (view), ==, id);
  return view;
}

/* The position of a tensor's row among the rows the view shows. */
static guint
stored_row (QbStoredTensorsView *view, const char *name)
{
  GListModel *rows = qb_stored_tensors_view_get_rows (view);

  for (guint i = 0; i < g_list_model_get_n_items (rows); i++)
    {
      QbStoredTensorItem *item = qb_stored_tensors_view_get_item (view, i);
      if (qb_stored_tensor_item_get_expert (item) < 0
          && g_str_equal (qb_stored_tensor_item_get_name (item), name))
        return i;
    }
  g_error ("%s is not shown", name);
  return 0;
}

static char *
sqnr_text (double v)
{
  return g_strdup_printf ("%.2f", v);
}

/* A stored run of a mixture reviewed on the Experiments page: the tensors
 * of the experiment, each expert tensor's 8 experts as rows under it (the
 * action opens them), each with the run's own figures — SQNR, the
 * weights' mean and kurtosis — and, selected, its own histograms read
 * from the store; sorting by SQNR sorts the experts under their tensor;
 * "Worst Expert" finds the expert of lowest SQNR of the whole run.  With
 * QB_SCREENSHOT_DIR the page is saved there at 1024×700 and 1920×1080. */
static void
test_moe_experiments_page (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "moe8.gguf", NULL);
  const char *shots = g_getenv ("QB_SCREENSHOT_DIR");
  const char *name = "blk.1.ffn_down_exps.weight";
  static const char *const kinds[] = { "gate", "up", "down" };
  const QbTensorResult *live;
  QbStoredTensorsView *view;
  QbStoredTensorItem *item;
  const QbHistogram *shown;
  GListModel *rows;
  QbRun *run;
  gint64 id;
  guint at, n_tensors;
  char *worst_name = NULL;
  int worst_expert = -1;
  double worst = INFINITY, prev = -INFINITY;
  g_autofree char *cell = NULL, *want = NULL, *clipped = NULL;

  write_moe (path, "qwen2moe", 2, 8);
  qb_test_window_open (f, path);
  qb_test_window_settle (f);
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q4_K"));
  run = qb_test_window_run (f);
  g_assert_cmpint (qb_run_get_status (run), ==, QB_RUN_DONE);
  id = qb_test_window_newest_experiment (f);
  live = qb_tensor_row_get_result (qb_test_window_row (f, name));
  g_assert_cmpuint (live->n_experts, ==, 8);
  for (guint l = 0; l < 2; l++)
    for (guint k = 0; k < 3; k++)
      {
        g_autofree char *t = g_strdup_printf ("blk.%u.ffn_%s_exps.weight", l, kinds[k]);
        const QbTensorResult *r = qb_tensor_row_get_result (qb_test_window_row (f, t));
        for (guint e = 0; e < r->n_experts; e++)
          if (r->expert_metrics[e].sqnr_db < worst)
            {
              worst = r->expert_metrics[e].sqnr_db;
              g_free (worst_name);
              worst_name = g_strdup (t);
              worst_expert = (int) e;
            }
      }

  view = show_stored (f, id);
  rows = qb_stored_tensors_view_get_rows (view);
  n_tensors = qb_model_get_n_tensors (qb_document_get_model (qb_window_get_document (f->window)));
  g_assert_cmpuint (g_list_model_get_n_items (rows), ==, n_tensors);
  g_assert_nonnull (strstr (qb_stored_tensors_view_get_summary (view),
                            "6 expert tensors of 8 experts"));

  /* One expert selected: its tensor opens, its 8 experts under it. */
  gtk_widget_activate_action (GTK_WIDGET (view), "tensors.select", "(si)", name, 5);
  qb_test_ui_wait_for (tensors_view_idle, view, 60, "the expert's histograms");
  g_assert_cmpuint (g_list_model_get_n_items (rows), ==, n_tensors + 8);
  at = stored_row (view, name);
  for (int e = 0; e < 8; e++)
    {
      item = qb_stored_tensors_view_get_item (view, at + 1 + e);
      g_assert_cmpint (qb_stored_tensor_item_get_expert (item), ==, e);
      g_assert_cmpstr (qb_stored_tensor_item_get_tensor_name (item), ==, name);
      cell = qb_stored_tensors_view_get_cell (view, at + 1 + e, "sqnr");
      want = sqnr_text (live->expert_metrics[e].sqnr_db);
      g_assert_cmpstr (cell, ==, want);
      g_clear_pointer (&cell, g_free);
      g_clear_pointer (&want, g_free);
    }
  item = qb_stored_tensors_view_get_selected (view);
  g_assert_nonnull (item);
  g_assert_cmpint (qb_stored_tensor_item_get_expert (item), ==, 5);
  /* Its own moments, as the run measured them. */
  g_assert_cmpfloat (qb_stored_tensor_item_get_metrics (item)->mean, ==, live->expert_metrics[5].mean);
  g_assert_cmpfloat (qb_stored_tensor_item_get_metrics (item)->kurtosis, ==,
                     live->expert_metrics[5].kurtosis);
  g_assert_cmpfloat (live->expert_metrics[5].kurtosis, !=, live->metrics.kurtosis);
  cell = qb_stored_tensors_view_get_cell (view, at + 6, "kurtosis");
  want = g_strdup_printf ("%.2f", live->expert_metrics[5].kurtosis);
  g_assert_cmpstr (cell, ==, want);
  g_assert_nonnull (strstr (qb_stored_tensors_view_get_facts (view), "expert 5 of 8"));
  g_assert_nonnull (strstr (qb_stored_tensors_view_get_facts (view), "kurtosis"));
  /* Its histograms, from the store: the run's own counts. */
  shown = qb_histogram_view_get_histogram (qb_stored_tensors_view_get_histogram (view));
  g_assert_nonnull (shown);
  g_assert_cmpuint (shown->n_bins, ==, QB_EXPERT_HISTOGRAM_BINS);
  g_assert_cmpmem (shown->counts, shown->n_bins * 8,
                   qb_tensor_result_expert_histogram (live, 5, 0)->counts, shown->n_bins * 8);
  shown = qb_histogram_view_get_histogram (qb_stored_tensors_view_get_error_histogram (view));
  g_assert_nonnull (shown);
  g_assert_cmpmem (shown->counts, shown->n_bins * 8,
                   qb_tensor_result_expert_histogram (live, 5, 2)->counts, shown->n_bins * 8);

  /* Sorted by SQNR: the experts in order, still under their tensor. */
  g_assert_true (qb_stored_tensors_view_sort_by (view, "sqnr", GTK_SORT_ASCENDING));
  at = stored_row (view, name);
  for (int e = 0; e < 8; e++)
    {
      double v;
      item = qb_stored_tensors_view_get_item (view, at + 1 + e);
      g_assert_cmpint (qb_stored_tensor_item_get_expert (item), >=, 0);
      g_assert_cmpstr (qb_stored_tensor_item_get_tensor_name (item), ==, name);
      v = qb_stored_tensor_item_get_metrics (item)->sqnr_db;
      g_assert_cmpfloat (v, >=, prev);
      prev = v;
    }

  /* Which expert suffers most: the run's lowest SQNR. */
  gtk_widget_activate_action (GTK_WIDGET (view), "tensors.select-worst-expert", NULL);
  qb_test_ui_wait_for (tensors_view_idle, view, 60, "the worst expert's histograms");
  item = qb_stored_tensors_view_get_selected (view);
  g_assert_nonnull (item);
  g_assert_cmpstr (qb_stored_tensor_item_get_tensor_name (item), ==, worst_name);
  g_assert_cmpint (qb_stored_tensor_item_get_expert (item), ==, worst_expert);
  g_assert_nonnull (strstr (qb_stored_tensors_view_get_summary (view), worst_name));

  if (shots != NULL)
    {
      save (f, shots, "experiments-moe", 1024, 700);
      save (f, shots, "experiments-moe", 1920, 1080);
    }
  qb_test_window_resize (f, 1024, 700);
  clipped = qb_test_window_find_clipped (f);
  if (clipped != NULL)
    g_error ("clipped at 1024×700:\n%s", clipped);

  /* Expert tensors only, folded: the 6 of them. */
  gtk_widget_activate_action (GTK_WIDGET (view), "tensors.collapse-experts", NULL);
  gtk_widget_activate_action (GTK_WIDGET (view), "tensors.experts-only", NULL);
  qb_test_ui_flush ();
  g_assert_cmpuint (g_list_model_get_n_items (rows), ==, 6);
  gtk_widget_activate_action (GTK_WIDGET (view), "tensors.expand-experts", NULL);
  g_assert_cmpuint (g_list_model_get_n_items (rows), ==, 6 * 9);
  gtk_widget_activate_action (GTK_WIDGET (view), "tensors.experts-only", NULL);
  gtk_widget_activate_action (GTK_WIDGET (view), "tensors.collapse-experts", NULL);
  qb_test_ui_flush ();
  g_assert_cmpuint (g_list_model_get_n_items (rows), ==, n_tensors);
  g_free (worst_name);
}

static gboolean
study_over (gpointer data)
{
  QbStudyRunner *study = qb_window_get_study (data);
  return study && !qb_study_runner_is_running (study);
}

/* A 2-layer Qwen2-MoE demo of n_expert experts opened in the window, a
 * study per expert (Q8_0, one chunk of 64 tokens of a generated text)
 * run to the end from win.start-study, and the Sensitivity page shown. */
static void
run_expert_study (Fixture *f, guint n_expert)
{
  g_autofree char *path = g_build_filename (f->dir, "small-moe.gguf", NULL);
  g_autofree char *text = g_build_filename (f->dir, "eval.txt", NULL);
  g_autoptr(GString) words = g_string_new (NULL);
  g_autoptr(GError) error = NULL;

  write_moe (path, "qwen2moe", 2, n_expert);
  for (guint i = 0; i < 200; i++)
    g_string_append_printf (words, "The little %s saw %u birds by the river. ",
                            i % 3 ? "cat" : "dog", (i * 7) % 13);
  g_assert_true (g_file_set_contents (text, words->str, words->len, &error));
  qb_test_window_open (f, path);
  qb_test_window_settle (f);

  qb_test_window_activate (f, "start-study",
                           g_variant_new ("(ssssuuuxb)", "", text, "Q8_0", "rtn", 64, 1, 0,
                                          (gint64) 0, TRUE));
  qb_test_ui_wait_for (study_over, f->window, 600, "the study per expert");
  g_assert_cmpint (qb_study_runner_get_status (qb_window_get_study (f->window)), ==, QB_RUN_DONE);
  qb_test_window_settle (f);
  qb_test_window_activate (f, "show-page", g_variant_new_string ("sensitivity"));
  qb_test_window_settle (f);
}

/* A study per expert from the window: the Sensitivity page ranks each
 * expert alone ("blk.1.ffn_down_exps.weight #2") beside the tensors, and
 * clicking one selects that expert's row in the plan's table.  With
 * QB_SCREENSHOT_DIR the page is saved there at 1024×700. */
static void
test_moe_study_per_expert (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  const char *shots = g_getenv ("QB_SCREENSHOT_DIR");
  const char *name = "blk.1.ffn_down_exps.weight #2";
  QbSensitivityPage *page = qb_window_get_sensitivity_page (f->window);
  QbSensitivityView *view = qb_sensitivity_page_get_view (page);
  QbTensorRow *row;
  guint n_expert_bars = 0, n_bars = 0;
  double x, y;
  g_autofree char *tip = NULL;

  run_expert_study (f, 4);
  g_assert_cmpint (qb_sensitivity_page_get_study_id (page), ==,
                   qb_study_runner_get_study_id (qb_window_get_study (f->window)));

  /* 2 layers × gate, up, down × 4 experts, ranked among the tensors. */
  for (const char *t; (t = qb_sensitivity_view_get_ranked (view, n_bars)) != NULL; n_bars++)
    n_expert_bars += strstr (t, "_exps.weight #") != NULL;
  g_assert_cmpuint (n_expert_bars, ==, 2 * 3 * 4);
  g_assert_cmpuint (n_bars, >, n_expert_bars);
  g_assert_nonnull (strstr (qb_sensitivity_page_get_info_text (page), "+ 24 per-expert measurements"));

  if (shots != NULL)
    {
      g_autofree char *shot = g_build_filename (shots, "moe-study-experts-1024x700.png", NULL);

      qb_test_window_resize (f, 1024, 700);
      for (int i = 0; i < 20; i++)
        {
          qb_test_ui_flush ();
          g_usleep (10000);
        }
      g_assert_true (qb_test_ui_save_png (GTK_WIDGET (f->window), shot, &error));
      g_assert_no_error (error);
      g_test_message ("wrote %s", shot);
    }

  /* The expert's bar, where a click lands, names it; the click selects its row. */
  qb_test_window_resize (f, 1920, 1080);
  qb_test_ui_flush ();
  if (qb_sensitivity_view_get_tensor_point (view, name, &x, &y))
    g_assert_cmpstr (qb_sensitivity_view_get_tensor_at (view, x, y), ==, name);
  g_signal_emit_by_name (view, "tensor-activated", name);
  qb_test_window_settle (f);
  row = qb_tensor_details_get_row (qb_window_get_details (f->window));
  g_assert_nonnull (row);
  g_assert_cmpint (qb_tensor_row_get_expert (row), ==, 2);
  g_assert_cmpstr (qb_tensor_row_get_name (qb_tensor_row_get_parent (row)), ==,
                   "blk.1.ffn_down_exps.weight");
  g_assert_true (qb_layer_table_get_experts_expanded (qb_window_get_layer_table (f->window), row));
}

/* A study per expert on the heatmap: the expert tensors (and the shared
 * expert) have columns of their own; the header of an expert kind's
 * column, or Show, turns the heatmap into layers × that kind's experts,
 * each cell one expert alone; a click on a cell selects that expert's row
 * in the plan.  With 8 and 60 experts, every expert's cell is where
 * hit testing finds it at 1024×700.  With QB_SCREENSHOT_DIR the page is
 * saved there at 1024×700 and 1920×1080. */
static void
test_moe_heatmap_experts (Fixture *f, gconstpointer data)
{
  guint n_expert = GPOINTER_TO_UINT (data);
  const char *shots = g_getenv ("QB_SCREENSHOT_DIR");
  QbSensitivityPage *page = qb_window_get_sensitivity_page (f->window);
  QbSensitivityView *view = qb_sensitivity_page_get_view (page);
  GtkDropDown *show;
  QbTensorRow *row;
  double x, y, x0 = 0, y0 = 0;

  run_expert_study (f, n_expert);
  qb_test_window_resize (f, 1024, 700);
  qb_test_window_settle (f);

  /* The tensors: the experts and the shared expert have columns. */
  g_assert_cmpint (qb_sensitivity_view_get_expert_role (view), ==, QB_ROLE_OTHER);
  for (guint k = 0; k < 2; k++)
    {
      const char *name = k ? "blk.1.ffn_down_shexp.weight" : "blk.1.ffn_down_exps.weight";
      g_assert_true (qb_sensitivity_view_get_cell_point (view, name, &x, &y));
      g_assert_cmpstr (qb_sensitivity_view_get_tensor_at (view, x, y), ==, name);
    }
  show = qb_sensitivity_page_get_show_dropdown (page);
  g_assert_true (gtk_widget_get_visible (gtk_widget_get_parent (GTK_WIDGET (show))));   /* "Show" */
  g_assert_cmpuint (g_list_model_get_n_items (gtk_drop_down_get_model (show)), ==, 4);
  if (shots != NULL && n_expert == 8)
    save (f, shots, "moe-heatmap-experts-tensors", 1024, 700);

  /* The down column's header opens its experts, through the page's action. */
  g_assert_true (qb_sensitivity_view_get_header_point (view, QB_ROLE_FFN_DOWN_EXPS, &x, &y));
  qb_sensitivity_view_activate_at (view, x, y);
  qb_test_ui_flush ();
  g_assert_cmpint (qb_sensitivity_view_get_expert_role (view), ==, QB_ROLE_FFN_DOWN_EXPS);
  g_assert_cmpstr (gtk_string_object_get_string (GTK_STRING_OBJECT (gtk_drop_down_get_selected_item (show))),
                   ==, "Experts of ffn_down_exps");
  for (guint layer = 0; layer < 2; layer++)
    for (guint e = 0; e < n_expert; e++)
      {
        g_autofree char *name = g_strdup_printf ("blk.%u.ffn_down_exps.weight #%u", layer, e);
        g_autofree char *tip = NULL;

        g_assert_true (qb_sensitivity_view_get_cell_point (view, name, &x, &y));
        g_assert_cmpstr (qb_sensitivity_view_get_tensor_at (view, x, y), ==, name);
        /* Side by side, a cell per expert, wide enough to aim at. */
        if (e > 0)
          {
            g_assert_cmpfloat (y, ==, y0);
            g_assert_cmpfloat (x - x0, >=, 5.0);
          }
        x0 = x;
        y0 = y;
      }
  if (shots != NULL)
    {
      g_autofree char *prefix = g_strdup_printf ("moe-heatmap-experts-%u", n_expert);
      save (f, shots, prefix, 1024, 700);
      save (f, shots, prefix, 1920, 1080);
      qb_test_window_resize (f, 1024, 700);
      qb_test_window_settle (f);
    }

  /* Show goes back and forth the same way; the mode line goes back. */
  gtk_drop_down_set_selected (show, 0);
  qb_test_ui_flush ();
  g_assert_cmpint (qb_sensitivity_view_get_expert_role (view), ==, QB_ROLE_OTHER);
  gtk_drop_down_set_selected (show, 1);
  qb_test_ui_flush ();
  g_assert_cmpint (qb_sensitivity_view_get_expert_role (view), ==, QB_ROLE_FFN_GATE_EXPS);
  g_assert_true (qb_sensitivity_view_get_header_point (view, QB_ROLE_OTHER, &x, &y));
  qb_sensitivity_view_activate_at (view, x, y);
  qb_test_ui_flush ();
  g_assert_cmpint (qb_sensitivity_view_get_expert_role (view), ==, QB_ROLE_OTHER);
  g_assert_cmpuint (gtk_drop_down_get_selected (show), ==, 0);
  qb_test_window_activate (f, "show-page", g_variant_new_string ("sensitivity"));
  qb_test_ui_flush ();

  /* A click on an expert's cell selects its row in the plan. */
  gtk_widget_activate_action (GTK_WIDGET (page), "sensitivity.experts", "s", "ffn_up_exps");
  qb_test_window_settle (f);
  {
    guint e = n_expert - 1;
    g_autofree char *name = g_strdup_printf ("blk.1.ffn_up_exps.weight #%u", e);

    g_assert_true (qb_sensitivity_view_get_cell_point (view, name, &x, &y));
    qb_sensitivity_view_activate_at (view, x, y);
    qb_test_window_settle (f);
    row = qb_tensor_details_get_row (qb_window_get_details (f->window));
    g_assert_nonnull (row);
    g_assert_cmpint (qb_tensor_row_get_expert (row), ==, (int) e);
    g_assert_cmpstr (qb_tensor_row_get_name (qb_tensor_row_get_parent (row)), ==,
                     "blk.1.ffn_up_exps.weight");
  }
}

/* Widgets of a type under root, in creation order (the titlebar too). */
static void
collect (GtkWidget *root, GType type, GPtrArray *out)
{
  if (G_TYPE_CHECK_INSTANCE_TYPE (root, type))
    g_ptr_array_add (out, root);
  for (GtkWidget *c = gtk_widget_get_first_child (root); c; c = gtk_widget_get_next_sibling (c))
    collect (c, type, out);
}

/* The study dialog's "Per expert" box reaches the study: started from
 * the dialog with it checked, the study runs per expert.  With
 * QB_SCREENSHOT_DIR the dialog is saved there. */
static void
test_moe_study_dialog (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "small-moe.gguf", NULL);
  g_autofree char *text = g_build_filename (f->dir, "eval.txt", NULL);
  g_autoptr(GString) words = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) checks = g_ptr_array_new ();
  g_autoptr(GPtrArray) entries = g_ptr_array_new ();
  g_autoptr(GPtrArray) buttons = g_ptr_array_new ();
  const char *shots = g_getenv ("QB_SCREENSHOT_DIR");
  GtkCheckButton *per_expert = NULL;
  GtkWidget *start = NULL, *dialog;
  QbStudyRunner *study;

  write_moe (path, "mixtral", 1, 4);
  for (guint i = 0; i < 200; i++)
    g_string_append_printf (words, "A small %s ran %u times. ", i % 2 ? "fox" : "hen", i % 11);
  g_assert_true (g_file_set_contents (text, words->str, words->len, &error));
  qb_test_window_open (f, path);
  qb_test_window_settle (f);

  dialog = qb_study_dialog_new (GTK_WINDOW (f->window), NULL);
  gtk_window_present (GTK_WINDOW (dialog));
  qb_test_ui_flush ();
  collect (dialog, GTK_TYPE_CHECK_BUTTON, checks);
  for (guint i = 0; i < checks->len; i++)
    if (g_strcmp0 (gtk_check_button_get_label (g_ptr_array_index (checks, i)),
                   "Per e_xpert (mixtures of experts)") == 0)
      per_expert = g_ptr_array_index (checks, i);
  g_assert_nonnull (per_expert);
  g_assert_false (gtk_check_button_get_active (per_expert));   /* off by default */
  collect (dialog, GTK_TYPE_BUTTON, buttons);
  for (guint i = 0; i < buttons->len; i++)
    if (g_strcmp0 (gtk_button_get_label (g_ptr_array_index (buttons, i)), "_Start") == 0)
      start = g_ptr_array_index (buttons, i);
  g_assert_nonnull (start);
  /* evaluation text, calibration text (none), candidates */
  collect (dialog, GTK_TYPE_ENTRY, entries);
  g_assert_cmpuint (entries->len, ==, 3);
  gtk_editable_set_text (GTK_EDITABLE (g_ptr_array_index (entries, 0)), text);
  gtk_editable_set_text (GTK_EDITABLE (g_ptr_array_index (entries, 1)), "");
  gtk_editable_set_text (GTK_EDITABLE (g_ptr_array_index (entries, 2)), "Q8_0");
  gtk_check_button_set_active (per_expert, TRUE);
  qb_test_ui_flush ();
  if (shots != NULL)
    {
      g_autofree char *shot = g_build_filename (shots, "study-dialog-per-expert.png", NULL);

      for (int i = 0; i < 20; i++)
        {
          qb_test_ui_flush ();
          g_usleep (10000);
        }
      g_assert_true (qb_test_ui_save_png (dialog, shot, &error));
      g_assert_no_error (error);
      g_test_message ("wrote %s", shot);
    }
  g_assert_true (gtk_widget_get_sensitive (start));
  g_signal_emit_by_name (start, "clicked");
  qb_test_ui_wait_for (study_over, f->window, 300, "the study started from the dialog");
  study = qb_window_get_study (f->window);
  g_assert_cmpint (qb_study_runner_get_status (study), ==, QB_RUN_DONE);
  g_assert_true (qb_study_runner_get_settings (study)->per_expert);
  qb_test_window_settle (f);
  /* 3 expert tensors × 4 experts × 1 candidate */
  g_assert_nonnull (strstr (qb_sensitivity_page_get_info_text (qb_window_get_sensitivity_page (f->window)),
                            "+ 12 per-expert measurements"));
}

int
main (int argc, char **argv)
{
  qb_test_ui_init (&argc, &argv);
  g_test_add ("/ui/moe/switch", Fixture, NULL, qb_test_window_setup, test_moe_switch,
              qb_test_window_teardown);
  g_test_add ("/ui/moe/window", Fixture, NULL, qb_test_window_setup, test_moe_window,
              qb_test_window_teardown);
  g_test_add ("/ui/moe/experiments-page", Fixture, NULL, qb_test_window_setup,
              test_moe_experiments_page, qb_test_window_teardown);
  g_test_add ("/ui/moe/study-per-expert", Fixture, NULL, qb_test_window_setup,
              test_moe_study_per_expert, qb_test_window_teardown);
  g_test_add ("/ui/moe/study-dialog", Fixture, NULL, qb_test_window_setup,
              test_moe_study_dialog, qb_test_window_teardown);
  g_test_add ("/ui/moe/heatmap-experts-8", Fixture, GUINT_TO_POINTER (8), qb_test_window_setup,
              test_moe_heatmap_experts, qb_test_window_teardown);
  g_test_add ("/ui/moe/heatmap-experts-60", Fixture, GUINT_TO_POINTER (60), qb_test_window_setup,
              test_moe_heatmap_experts, qb_test_window_teardown);
  return g_test_run ();
}
