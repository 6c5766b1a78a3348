/* SPDX-License-Identifier: MIT */
/* test-ui-sensitivity.c — the sensitivity view: a stored study shown as a
 * heatmap and ranked bars; the candidate changes the ranking; cells read
 * out measured, predicted and "does not fit"; a PNG of it; a study per
 * expert of 60 layers × 60 experts as a grid of experts. */
#include <math.h>
#include <string.h>
#include <gtk/gtk.h>

#include "qb-chart.h"
#include "qb-sensitivity-view.h"
#include "qb-store.h"
#include "qb-study-record.h"
#include "qb-test-ui.h"
#include "qb-test-util.h"

static const char *roles[] = { "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                               "ffn_down" };

/* Two layers and the embedding and output, three candidates: ffn_down
 * fits only the last; blk.1.attn_v is the most sensitive under the first,
 * output.weight under the second. */
static gint64
fake_study (QbStore *store)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModelRecord) model = qb_model_record_new ();
  g_autoptr(QbStudyRecord) rec = qb_study_record_new ();
  const char *cands[] = { "Q4_0", "Q8_0", "INT4_CH" };
  guint position = 0;
  gint64 id;

  model->fingerprint = g_strdup ("00112233445566778899");
  model->path = g_strdup ("/nowhere/model.gguf");
  model->name = g_strdup ("tiny");
  model->arch_json = g_strdup ("{}");
  rec->method = g_strdup ("rtn");
  rec->candidates = g_strdup ("Q4_0,Q8_0,INT4_CH");
  rec->proxy = g_strdup ("mse");
  rec->eval_text_hash = g_strdup ("aa");
  rec->eval_tokens_hash = g_strdup ("bb");
  id = qb_store_begin_study (store, model, rec, &error);
  g_assert_no_error (error);
  for (int layer = -1; layer < 3; layer++)
    for (guint r = 0; r < (layer < 0 || layer == 2 ? 1 : G_N_ELEMENTS (roles)); r++)
      {
        g_autofree char *name = layer == -1 ? g_strdup ("token_embd.weight")
                                : layer == 2 ? g_strdup ("output.weight")
                                : g_strdup_printf ("blk.%d.%s.weight", layer, roles[r]);
        for (guint k = 0; k < G_N_ELEMENTS (cands); k++)
          {
            g_autoptr(QbStudyCost) c = qb_study_cost_new ();
            double base = 1e-3 * (1 + r) * (layer + 2);

            c->position = position;
            c->rung = k;
            c->tensor = g_strdup (name);
            c->format = g_strdup (cands[k]);
            c->n_weights = 4096;
            c->skipped = strstr (name, "ffn_down") != NULL && k < 2;
            if (!c->skipped)
              {
                c->bytes = 2048;
                c->mse = base;
                c->kld = k == 1 ? base / 200 : base;
                if (g_str_equal (name, "blk.1.attn_v.weight") && k == 0)
                  c->kld = 0.5;
                if (g_str_equal (name, "output.weight") && k == 1)
                  c->kld = 0.2;
                if (g_str_equal (name, "blk.0.attn_q.weight") && k == 2)
                  c->kld = NAN;   /* not measured: from the fit */
              }
            qb_store_add_study_cost (store, id, c, &error);
            g_assert_no_error (error);
          }
        position++;
      }
  qb_store_finish_study (store, id, QB_EXPERIMENT_DONE, NAN, NAN, 3.7, 1.0, NULL, &error);
  g_assert_no_error (error);
  return id;
}

static void
test_view (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *db = g_build_filename (dir, "qb.db", NULL);
  g_autofree char *png = g_build_filename (dir, "sensitivity.png", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = qb_store_open (db, &error);
  g_autoptr(QbSensitivityStudy) st = NULL;
  g_autofree char *cell = NULL, *skipped = NULL, *predicted = NULL;
  GtkWidget *view = qb_sensitivity_view_new ();
  GtkWidget *window = gtk_window_new ();
  gint64 id;

  g_assert_no_error (error);
  id = fake_study (store);
  st = qb_sensitivity_study_load (store, id, &error);
  g_assert_no_error (error);
  gtk_window_set_child (GTK_WINDOW (window), view);
  gtk_window_set_default_size (GTK_WINDOW (window), 1024, 420);
  gtk_window_present (GTK_WINDOW (window));
  qb_sensitivity_view_set_study (QB_SENSITIVITY_VIEW (view), st);
  qb_test_ui_flush ();

  g_assert_cmpstr (qb_sensitivity_view_get_ranked (QB_SENSITIVITY_VIEW (view), 0), ==,
                   "blk.1.attn_v.weight");
  /* Tensors the candidate does not fit come last. */
  g_assert_nonnull (strstr (qb_sensitivity_view_get_ranked (QB_SENSITIVITY_VIEW (view), 15),
                            "ffn_down"));
  cell = qb_sensitivity_view_describe (QB_SENSITIVITY_VIEW (view), 1, QB_ROLE_ATTN_V);
  g_assert_cmpstr (cell, ==, "blk.1.attn_v.weight · Q4_0: KLD 5.00e-01 (measured)");
  skipped = qb_sensitivity_view_describe (QB_SENSITIVITY_VIEW (view), 0, QB_ROLE_FFN_DOWN);
  g_assert_cmpstr (skipped, ==, "blk.0.ffn_down.weight · Q4_0: does not fit");
  g_assert_null (qb_sensitivity_view_describe (QB_SENSITIVITY_VIEW (view), 7, QB_ROLE_ATTN_Q));

  qb_sensitivity_view_set_candidate (QB_SENSITIVITY_VIEW (view), 1);
  g_assert_cmpstr (qb_sensitivity_view_get_ranked (QB_SENSITIVITY_VIEW (view), 0), ==, "output.weight");
  qb_sensitivity_view_set_candidate (QB_SENSITIVITY_VIEW (view), 2);
  predicted = qb_sensitivity_view_describe (QB_SENSITIVITY_VIEW (view), 0, QB_ROLE_ATTN_Q);
  g_assert_nonnull (strstr (predicted, "(predicted)"));
  qb_sensitivity_view_set_candidate (QB_SENSITIVITY_VIEW (view), 0);
  qb_test_ui_flush ();

  g_assert_true (qb_chart_export (QB_CHART (view), png, 1024, 420, &error));
  g_assert_no_error (error);
  g_test_message ("picture: %s", png);
  if (g_getenv ("QB_SCREENSHOT_DIR") != NULL)
    {
      g_autofree char *shot = g_build_filename (g_getenv ("QB_SCREENSHOT_DIR"), "sensitivity.png", NULL);
      g_assert_true (qb_chart_export (QB_CHART (view), shot, 1024, 420, &error));
    }
  gtk_window_destroy (GTK_WINDOW (window));
}

/* A study per expert of a large mixture, written to the store as a study
 * would (synthetic costs): 60 layers of ffn_down_exps with 60 experts, a
 * measured KLD per expert. */
static gint64
fake_expert_study (QbStore *store, guint n_layer, guint n_expert)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModelRecord) model = qb_model_record_new ();
  g_autoptr(QbStudyRecord) rec = qb_study_record_new ();
  gint64 id;

  model->fingerprint = g_strdup ("99887766554433221100");
  model->path = g_strdup ("/nowhere/moe.gguf");
  model->name = g_strdup ("moe");
  model->arch_json = g_strdup ("{}");
  rec->method = g_strdup ("rtn");
  rec->candidates = g_strdup ("Q4_K");
  rec->proxy = g_strdup ("mse");
  rec->eval_text_hash = g_strdup ("aa");
  rec->eval_tokens_hash = g_strdup ("bb");
  id = qb_store_begin_study (store, model, rec, &error);
  g_assert_no_error (error);
  for (guint layer = 0; layer < n_layer; layer++)
    {
      g_autofree char *name = g_strdup_printf ("blk.%u.ffn_down_exps.weight", layer);
      g_autoptr(QbStudyCost) c = qb_study_cost_new ();

      for (guint e = 0; e < n_expert; e++)
        {
          g_autoptr(QbStudyCost) x = qb_study_cost_new ();
          x->position = layer;
          x->expert = (int) e;
          x->tensor = g_strdup (name);
          x->format = g_strdup ("Q4_K");
          x->n_weights = 65536;
          x->bytes = 36864;
          x->mse = 1e-5;
          x->kld = 1e-7 * (1 + (layer * 7 + e * 13) % 97);
          qb_store_add_study_expert_cost (store, id, x, &error);
          g_assert_no_error (error);
        }
      c->position = layer;
      c->tensor = g_strdup (name);
      c->format = g_strdup ("Q4_K");
      c->n_weights = 65536 * n_expert;
      c->bytes = 36864 * n_expert;
      c->mse = 1e-5;
      c->kld = 1e-5 * (1 + layer % 5);
      qb_store_add_study_cost (store, id, c, &error);
      g_assert_no_error (error);
    }
  qb_store_finish_study (store, id, QB_EXPERIMENT_DONE, NAN, NAN, 3.7, 1.0, NULL, &error);
  g_assert_no_error (error);
  return id;
}

/* 60 layers × 60 experts in the heatmap's space at 1024×700 (the page's
 * share of it): every expert's cell is where hit testing finds it, cells
 * at least 5 px each way, the layer labels thinned.  How long drawing
 * 3,600 cells takes is reported (not asserted). */
static void
test_view_experts_60x60 (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *db = g_build_filename (dir, "qb.db", NULL);
  g_autofree char *png = g_build_filename (dir, "experts.png", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = qb_store_open (db, &error);
  g_autoptr(QbSensitivityStudy) st = NULL;
  QbSensitivityView *view = QB_SENSITIVITY_VIEW (qb_sensitivity_view_new ());
  GtkWidget *window = gtk_window_new ();
  QbTensorRole roles[4];
  double x, y, px = 0, py = 0;
  gint64 t0;

  g_assert_no_error (error);
  st = qb_sensitivity_study_load (store, fake_expert_study (store, 60, 60), &error);
  g_assert_no_error (error);
  gtk_window_set_child (GTK_WINDOW (window), GTK_WIDGET (view));
  gtk_window_set_default_size (GTK_WINDOW (window), 1000, 500);
  gtk_window_present (GTK_WINDOW (window));
  qb_sensitivity_view_set_study (view, st);
  g_assert_cmpuint (qb_sensitivity_view_get_expert_roles (view, roles, 4), ==, 1);
  g_assert_cmpint (roles[0], ==, QB_ROLE_FFN_DOWN_EXPS);
  qb_sensitivity_view_set_expert_role (view, QB_ROLE_FFN_DOWN_EXPS);
  qb_test_ui_flush ();

  for (guint layer = 0; layer < 60; layer++)
    for (guint e = 0; e < 60; e++)
      {
        g_autofree char *name = g_strdup_printf ("blk.%u.ffn_down_exps.weight #%u", layer, e);

        g_assert_true (qb_sensitivity_view_get_cell_point (view, name, &x, &y));
        g_assert_cmpstr (qb_sensitivity_view_get_tensor_at (view, x, y), ==, name);
        if (e > 0)
          g_assert_cmpfloat (x - px, >=, 5.0);
        if (e == 0 && layer > 0)
          g_assert_cmpfloat (y - py, >=, 5.0);
        px = x;
        if (e == 0)
          py = y;
      }
  /* A frame's drawing, as the widget's snapshot does it on the main thread. */
  {
    cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, 1000, 500);
    cairo_t *cr = cairo_create (surface);
    QbChartPalette palette;

    qb_chart_palette_init (&palette, GTK_WIDGET (view));
    t0 = g_get_monotonic_time ();
    for (int i = 0; i < 10; i++)
      qb_chart_draw (QB_CHART (view), cr, 1000, 500, &palette);
    g_test_message ("60 × 60 experts: %.1f ms a frame (mean of 10 draws at 1000×500)",
                    (g_get_monotonic_time () - t0) / 1e4);
    qb_chart_palette_clear (&palette);
    cairo_destroy (cr);
    cairo_surface_destroy (surface);
  }
  g_assert_true (qb_chart_export (QB_CHART (view), png, 1000, 500, &error));
  g_assert_no_error (error);
  if (g_getenv ("QB_SCREENSHOT_DIR") != NULL)
    {
      g_autofree char *shot = g_build_filename (g_getenv ("QB_SCREENSHOT_DIR"),
                                                "moe-heatmap-experts-60x60-synthetic.png", NULL);
      g_assert_true (qb_chart_export (QB_CHART (view), shot, 1000, 500, &error));
    }
  /* Back to the tensors: one column, 60 layers. */
  qb_sensitivity_view_set_expert_role (view, QB_ROLE_OTHER);
  g_assert_true (qb_sensitivity_view_get_cell_point (view, "blk.59.ffn_down_exps.weight", &x, &y));
  g_assert_cmpstr (qb_sensitivity_view_get_tensor_at (view, x, y), ==, "blk.59.ffn_down_exps.weight");
  gtk_window_destroy (GTK_WINDOW (window));
}

int
main (int argc, char **argv)
{
  qb_test_ui_init (&argc, &argv);
  g_test_add_func ("/ui/sensitivity/view", test_view);
  g_test_add_func ("/ui/sensitivity/experts-60x60", test_view_experts_60x60);
  return g_test_run ();
}
