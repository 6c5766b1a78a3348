/* SPDX-License-Identifier: MIT */
/* test-ui-moe.c — the window with a generated mixture of experts of over
 * 1,000 tensors (Qwen2-MoE layout, 60 layers): the table groups each
 * layer's router, experts and shared expert under the layer, an expert
 * tensor's histogram is computed, and a plan runs.  The longest stall of
 * the main loop while the model opens and while the plan runs is
 * reported (measured, not asserted).  With QB_MOE_SCREENSHOTS=DIR the
 * window is saved there at 1024×700 and 1920×1080.
 */
#include <gtk/gtk.h>
#include <string.h>

#include "qb-demo-model.h"
#include "qb-test-ui.h"

typedef QbTestWindow Fixture;

static gint64 last_tick, worst_gap;

static gboolean
tick (gpointer data)
{
  gint64 now = g_get_monotonic_time ();

  if (last_tick != 0)
    worst_gap = MAX (worst_gap, now - last_tick);
  last_tick = now;
  return G_SOURCE_CONTINUE;
}

static void
stall_reset (void)
{
  last_tick = 0;
  worst_gap = 0;
}

static gboolean
has_stats (gpointer data)
{
  QbTensorRow *row = qb_tensor_details_get_row (qb_window_get_details (data));
  return row && qb_tensor_row_get_stats (row);
}

static void
save (Fixture *f, const char *dir, int width, int height)
{
  g_autofree char *name = g_strdup_printf ("moe-%dx%d.png", width, height);
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

static void
test_moe_window (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "moe.gguf", NULL);
  g_autoptr(GError) error = NULL;
  const char *shots = g_getenv ("QB_MOE_SCREENSHOTS");
  QbLayerTable *table = qb_window_get_layer_table (f->window);
  GListModel *visible;
  QbDemoModelSpec spec;
  QbTensorRow *row;
  const QbTensorResult *stats;
  guint source, n, first = G_MAXUINT, last = 0, groups = 0;
  gint64 t0;
  double open_s, run_s;
  g_autofree char *summary = NULL;

  qb_demo_model_spec_init (&spec);
  spec.arch = "qwen2moe";
  spec.n_layer = 60;
  spec.n_expert = 4;
  g_assert_true (qb_demo_model_write (&spec, path, NULL, NULL, &error));
  g_assert_no_error (error);

  source = g_timeout_add (5, tick, NULL);
  stall_reset ();
  t0 = g_get_monotonic_time ();
  qb_test_window_open (f, path);
  qb_test_window_settle (f);
  open_s = (g_get_monotonic_time () - t0) / 1e6;
  g_test_message ("opened 1,023 tensors in %.2f s; longest main-loop stall %.0f ms", open_s,
                  worst_gap / 1e3);

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
  stall_reset ();
  t0 = g_get_monotonic_time ();
  g_assert_cmpint (qb_run_get_status (qb_test_window_run (f)), ==, QB_RUN_DONE);
  run_s = (g_get_monotonic_time () - t0) / 1e6;
  g_test_message ("Q8_0 run of 1,023 tensors in %.1f s; longest main-loop stall %.0f ms", run_s,
                  worst_gap / 1e3);
  row = qb_test_window_row (f, "blk.7.ffn_down_exps.weight");
  g_assert_nonnull (qb_tensor_row_get_result (row));
  g_assert_cmpfloat (qb_tensor_row_get_result (row)->metrics.sqnr_db, >, 30);
  g_source_remove (source);

  if (shots != NULL)
    {
      qb_test_window_activate (f, "select-tensor", g_variant_new_string ("blk.7.ffn_down_exps.weight"));
      save (f, shots, 1024, 700);
      save (f, shots, 1920, 1080);
    }
}

int
main (int argc, char **argv)
{
  qb_test_ui_init (&argc, &argv);
  g_test_add ("/ui/moe/window", Fixture, NULL, qb_test_window_setup, test_moe_window,
              qb_test_window_teardown);
  return g_test_run ();
}
