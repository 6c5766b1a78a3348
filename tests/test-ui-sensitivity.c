/* SPDX-License-Identifier: MIT */
/* test-ui-sensitivity.c — the sensitivity view: a stored study shown as a
 * heatmap and ranked bars; the candidate changes the ranking; cells read
 * out measured, predicted and "does not fit"; a PNG of it. */
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

int
main (int argc, char **argv)
{
  qb_test_ui_init (&argc, &argv);
  g_test_add_func ("/ui/sensitivity/view", test_view);
  return g_test_run ();
}
