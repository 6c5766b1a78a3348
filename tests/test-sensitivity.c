/* SPDX-License-Identifier: MIT */
/* test-sensitivity.c — the sensitivity study: resuming a forward pass from
 * a layer gives the whole pass's logits; a study on stories260K stores a
 * row per (tensor, candidate), skips what does not fit, and its measured
 * KLD equals that of the whole model run with that one tensor quantized by
 * a job; cancel keeps what was measured and resume completes it; evaluation
 * tokens inside the calibration chunks are refused; the fit and Spearman. */
#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "qb-activation-stats.h"
#include "qb-calibration.h"
#include "qb-job.h"
#include "qb-llama.h"
#include "qb-sensitivity.h"
#include "qb-store.h"
#include "qb-study-record.h"
#include "qb-test-model.h"
#include "qb-device.h"
#include "qb-test-util.h"
#include "qb-tokenizer.h"

/* ---- resuming a pass -------------------------------------------------- */

static void
test_forward_from (void)
{
  QbTestLlama spec = { .n_layer = 3, .n_embd = 64, .n_ff = 96, .n_vocab = 200,
                       .n_head = 4, .n_head_kv = 2, .dtype = QB_DTYPE_F32, .seed = 7 };
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = qb_test_write_llama (dir, "m.gguf", &spec);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbLlama) llama = NULL;
  const guint T = 40, first = 20, V = 200, E = 64;
  g_autofree gint32 *tokens = g_new (gint32, T);
  g_autofree float *logits = g_new (float, (T - first) * V);
  g_autofree float *again = g_new (float, (T - first) * V);
  g_autofree float *hidden = g_new (float, (gsize) (spec.n_layer + 1) * T * E);

  g_assert_no_error (error);
  llama = qb_llama_new (model, &error);
  g_assert_no_error (error);
  qb_llama_set_threads (llama, 2);
  for (guint i = 0; i < T; i++)
    tokens[i] = (gint32) ((i * 37 + 11) % V);

  g_assert_true (qb_llama_forward_keep (llama, tokens, T, first, logits, hidden, NULL, &error));
  g_assert_no_error (error);
  for (guint layer = 0; layer <= spec.n_layer; layer++)
    {
      g_assert_true (qb_llama_forward_from (llama, layer, hidden + (gsize) layer * T * E, T, first,
                                            again, NULL, &error));
      g_assert_no_error (error);
      /* The same computation on the same stream: the same bits. */
      g_assert_cmpmem (logits, sizeof (float) * (T - first) * V, again,
                       sizeof (float) * (T - first) * V);
    }
  /* The whole pass gives the same logits as forward_keep: the same bits
   * on the CPU; on an OpenCL device (QB_DEVICE), whole passes run there
   * while the resumable ones stay on the CPU, so within float rounding. */
  g_assert_true (qb_llama_forward (llama, tokens, T, first, again, NULL, NULL, NULL, &error));
  {
    g_autoptr(QbDevice) device = qb_device_dup_default ();

    if (device == NULL)
      g_assert_cmpmem (logits, sizeof (float) * (T - first) * V, again,
                       sizeof (float) * (T - first) * V);
    else
      for (guint i = 0; i < (T - first) * V; i++)
        g_assert_cmpfloat_with_epsilon (logits[i], again[i], 1e-4 * MAX (1.0f, fabsf (logits[i])));
  }

  g_assert_false (qb_llama_forward_from (llama, spec.n_layer + 1, hidden, T, first, again, NULL,
                                         &error));
  g_assert_error (error, QB_LLAMA_ERROR, QB_LLAMA_ERROR_INPUT);
}

/* ---- a study on stories260K ------------------------------------------- */

typedef struct {
  char        *dir;
  char        *text;
  QbModel     *model;
  QbTokenizer *tok;
  QbStore     *store;
} Real;

static gboolean
real_open (Real *r)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autoptr(GError) error = NULL;
  g_autofree char *db = NULL;

  memset (r, 0, sizeof *r);
  if (path == NULL || (r->text = qb_test_shared_path ("text/tinystories-val.txt")) == NULL)
    return FALSE;
  r->model = qb_model_open (path, &error);
  g_assert_no_error (error);
  r->tok = qb_tokenizer_new_for_model (r->model, &error);
  g_assert_no_error (error);
  r->dir = qb_test_tmpdir ();
  db = g_build_filename (r->dir, "qb.db", NULL);
  r->store = qb_store_open (db, &error);
  g_assert_no_error (error);
  return TRUE;
}

static void
real_close (Real *r)
{
  g_clear_pointer (&r->store, qb_store_unref);
  g_clear_pointer (&r->tok, qb_tokenizer_unref);
  g_clear_object (&r->model);
  g_free (r->text);
  g_free (r->dir);
}

/* Q4_K fits no row of stories260K (64 and 172 values); Q4_0 and Q8_0 fit
 * the rows of 64 but not ffn_down's 172; INT4_CH fits every row. */
static const QbFormat **
ladder (guint *n)
{
  static const char *names[] = { "Q4_K", "Q4_0", "INT4_CH", "Q8_0" };
  const QbFormat **f = g_new (const QbFormat *, G_N_ELEMENTS (names));

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    f[i] = qb_format_find (names[i]);
  *n = G_N_ELEMENTS (names);
  return f;
}

static void
study_options (QbSensitivityOptions *o, Real *r, const QbFormat **cands, guint n)
{
  qb_sensitivity_options_init (o);
  o->candidates = cands;
  o->n_candidates = n;
  o->eval_text = r->text;
  o->eval_n_chunks = 2;
  o->n_threads = 2;
}

/* KL(float ‖ model with `index` quantized in format by a job), computed
 * here from two whole passes: the reference the study must reproduce. */
static double
reference_kld (Real *r, guint index, const char *format, const gint32 *text_tokens, guint n_ctx,
               guint n_chunks)
{
  const QbTensor *t = qb_model_get_tensor (r->model, index);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbJob) job = NULL;
  g_autoptr(QbLlama) fl = qb_llama_new (r->model, &error);
  g_autoptr(QbLlama) ql = qb_llama_new (r->model, &error);
  guint first = n_ctx / 2, n_scored = n_ctx - 1 - n_ctx / 2, V = 512;
  g_autofree float *a = g_new (float, (n_ctx - first) * V);
  g_autofree float *b = g_new (float, (n_ctx - first) * V);
  g_autofree gint32 *chunk = g_new (gint32, n_ctx);
  double sum = 0;

  qb_plan_set_default_format (plan, QB_FORMAT_KEEP);
  qb_plan_set_override (plan, t->name, format, NULL);
  job = qb_job_new (r->model, plan);
  qb_job_set_keep_data (job, TRUE);
  qb_job_set_threads (job, 2);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (qb_llama_use_job (ql, job, NULL, &error));
  g_assert_no_error (error);
  for (guint c = 0; c < n_chunks; c++)
    {
      memcpy (chunk, text_tokens + (gsize) c * n_ctx, sizeof (gint32) * n_ctx);
      chunk[0] = qb_tokenizer_get_bos (r->tok);
      g_assert_true (qb_llama_forward (fl, chunk, n_ctx, first, a, NULL, NULL, NULL, &error));
      g_assert_true (qb_llama_forward (ql, chunk, n_ctx, first, b, NULL, NULL, NULL, &error));
      for (guint i = 0; i < n_scored; i++)
        {
          const float *x = a + (gsize) i * V, *y = b + (gsize) i * V;
          double mx = -INFINITY, my = -INFINITY, sx = 0, sy = 0, k = 0;
          for (guint j = 0; j < V; j++)
            {
              mx = MAX (mx, x[j]);
              my = MAX (my, y[j]);
            }
          for (guint j = 0; j < V; j++)
            {
              sx += exp (x[j] - mx);
              sy += exp (y[j] - my);
            }
          for (guint j = 0; j < V; j++)
            {
              double lx = x[j] - mx - log (sx), ly = y[j] - my - log (sy);
              k += exp (lx) * (lx - ly);
            }
          sum += k;
        }
    }
  return sum / ((double) n_chunks * n_scored);
}

static GArray *
text_tokens (Real *r)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  GArray *tokens;

  g_assert_true (g_file_get_contents (r->text, &text, &len, NULL));
  tokens = qb_tokenizer_encode (r->tok, text, len, TRUE, FALSE, NULL, &error);
  g_assert_no_error (error);
  return tokens;
}

static void
test_study_real (void)
{
  Real r;
  guint n = 0;
  g_autofree const QbFormat **cands = NULL;
  QbSensitivityOptions o;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) costs = NULL;
  g_autoptr(QbStudyRecord) rec = NULL;
  g_autoptr(QbSensitivityStudy) st = NULL;
  g_autoptr(GArray) tokens = NULL;
  gint64 id = 0;
  guint n_tensors = 0, n_skipped = 0, n_measured = 0, checked = 0, lower_worse = 0, pairs = 0;

  if (!real_open (&r))
    return;
  cands = ladder (&n);
  study_options (&o, &r, cands, n);
  g_assert_true (qb_sensitivity_run (r.model, r.tok, r.store, &o, NULL, NULL, NULL, &id, &error));
  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);

  rec = qb_store_get_study (r.store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (rec->status, ==, QB_EXPERIMENT_DONE);
  g_assert_cmpstr (rec->method, ==, "rtn");
  g_assert_cmpstr (rec->candidates, ==, "Q4_K,Q4_0,INT4_CH,Q8_0");
  g_assert_cmpuint (rec->eval_n_ctx, ==, 128);
  g_assert_cmpuint (rec->eval_n_chunks, ==, 2);
  g_assert_cmpfloat (rec->base_ppl, >, 1);
  g_assert_cmpstr (rec->proxy, ==, "mse");   /* no calibration statistics */

  costs = qb_store_get_study_costs (r.store, id, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < qb_model_get_n_tensors (r.model); i++)
    n_tensors += qb_model_get_tensor (r.model, i)->n_dims >= 2;
  /* 5 layers × 7 matrices + token_embd + output */
  g_assert_cmpuint (n_tensors, ==, 37);
  g_assert_cmpuint (costs->len, ==, 37 * n);
  for (guint i = 0; i < costs->len; i++)
    {
      const QbStudyCost *c = g_ptr_array_index (costs, i);
      gboolean down = strstr (c->tensor, "ffn_down") != NULL;
      gboolean fits = g_str_equal (c->format, "INT4_CH")
                      || (!down && !g_str_equal (c->format, "Q4_K"));

      g_assert_cmpint (c->skipped, ==, !fits);
      if (c->skipped)
        {
          n_skipped++;
          g_assert_nonnull (strstr (c->note, "do not fit"));
          g_assert_false (isfinite (c->kld));
          continue;
        }
      n_measured++;
      g_assert_cmpfloat (c->kld, >, 0);
      g_assert_cmpfloat (c->mse, >, 0);
      g_assert_cmpuint (c->bytes, >, 0);
    }
  g_assert_cmpuint (n_skipped, ==, 37 + 5 * 2);
  g_assert_cmpuint (n_measured, ==, 37 * n - n_skipped);

  /* Q4_0 costs more than Q8_0 for nearly every tensor. */
  st = qb_sensitivity_study_load (r.store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (st->n_tensors, ==, 37);
  for (guint t = 0; t < st->n_tensors; t++)
    {
      const QbSensitivityEntry *q4 = qb_sensitivity_study_get (st, t, 1);
      const QbSensitivityEntry *q8 = qb_sensitivity_study_get (st, t, 3);
      if (q4->cost->skipped)
        continue;
      pairs++;
      lower_worse += q4->value > q8->value;
    }
  g_assert_cmpuint (lower_worse, >=, pairs - 1);

  /* The study's measurement is the whole model's KLD with that tensor
   * quantized by a job: for the first layer's attn_q, a middle ffn_down
   * (INT4_CH), and the output matrix. */
  tokens = text_tokens (&r);
  for (guint i = 0; i < costs->len; i++)
    {
      const QbStudyCost *c = g_ptr_array_index (costs, i);
      gboolean pick = (g_str_equal (c->tensor, "blk.0.attn_q.weight") && g_str_equal (c->format, "Q4_0"))
                      || (g_str_equal (c->tensor, "blk.2.ffn_down.weight") && g_str_equal (c->format, "INT4_CH"))
                      || (g_str_equal (c->tensor, "output.weight") && g_str_equal (c->format, "Q4_0"))
                      || (g_str_equal (c->tensor, "token_embd.weight") && g_str_equal (c->format, "Q4_0"));
      double ref;

      if (!pick)
        continue;
      ref = reference_kld (&r, c->position, c->format, (const gint32 *) (void *) tokens->data, 128, 2);
      g_test_message ("%s %s: study %.8g, whole passes %.8g", c->tensor, c->format, c->kld, ref);
      /* the study keeps the float log-probabilities in float */
      g_assert_cmpfloat (fabs (c->kld - ref), <=, 1e-4 * ref);
      checked++;
    }
  g_assert_cmpuint (checked, ==, 4);
  real_close (&r);
}

/* ---- cancel and resume ------------------------------------------------ */

typedef struct {
  GCancellable *cancel;
  guint         after;
} CancelAt;

static void
cancel_progress (const QbSensitivityProgress *p, gpointer data)
{
  CancelAt *c = data;

  if (p->done >= c->after)
    g_cancellable_cancel (c->cancel);
}

static void
test_cancel_resume (void)
{
  Real r;
  guint n = 0;
  g_autofree const QbFormat **cands = NULL;
  QbSensitivityOptions o;
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancel = g_cancellable_new ();
  g_autoptr(GPtrArray) before = NULL, after = NULL;
  g_autoptr(QbStudyRecord) rec = NULL;
  CancelAt at = { cancel, 30 };
  gint64 id = 0, id2 = 0;

  if (!real_open (&r))
    return;
  cands = ladder (&n);
  study_options (&o, &r, cands, n);
  g_assert_false (qb_sensitivity_run (r.model, r.tok, r.store, &o, cancel_progress, &at, cancel,
                                      &id, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  rec = qb_store_get_study (r.store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (rec->status, ==, QB_EXPERIMENT_CANCELLED);
  before = qb_store_get_study_costs (r.store, id, &error);
  g_assert_cmpuint (before->len, >=, 30);
  g_assert_cmpuint (before->len, <, 37 * n);

  /* Another ladder cannot resume it. */
  o.resume_id = id;
  o.n_candidates = n - 1;
  g_assert_false (qb_sensitivity_run (r.model, r.tok, r.store, &o, NULL, NULL, NULL, &id2, &error));
  g_assert_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_MISMATCH);
  g_clear_error (&error);

  o.n_candidates = n;
  g_assert_true (qb_sensitivity_run (r.model, r.tok, r.store, &o, NULL, NULL, NULL, &id2, &error));
  g_assert_no_error (error);
  g_assert_cmpint (id2, ==, id);
  after = qb_store_get_study_costs (r.store, id, &error);
  g_assert_cmpuint (after->len, ==, 37 * n);
  /* What was measured before the cancel is kept as it was. */
  for (guint i = 0; i < before->len; i++)
    {
      const QbStudyCost *b = g_ptr_array_index (before, i);
      for (guint j = 0; j < after->len; j++)
        {
          const QbStudyCost *a = g_ptr_array_index (after, j);
          if (a->position == b->position && a->rung == b->rung)
            g_assert_true (a->kld == b->kld || (isnan (a->kld) && isnan (b->kld)));
        }
    }
  g_clear_pointer (&rec, qb_study_record_free);
  rec = qb_store_get_study (r.store, id, &error);
  g_assert_cmpint (rec->status, ==, QB_EXPERIMENT_DONE);
  real_close (&r);
}

/* ---- calibration disjoint from evaluation ----------------------------- */

static QbActivationStats *
stats_for (Real *r, guint skip, GError **error)
{
  const char *paths[] = { r->text, NULL };
  QbCalibrationOptions co;
  g_autofree char *cache = g_build_filename (r->dir, "cache", NULL);

  qb_calibration_options_init (&co);
  co.n_ctx = 128;
  co.n_chunks = 4;
  co.skip_chunks = skip;
  co.cache_dir = cache;
  return qb_sensitivity_compute_stats (r->model, paths, &co, TRUE, 2, NULL, NULL, NULL, error);
}

static void
test_disjoint (void)
{
  Real r;
  guint n = 0;
  g_autofree const QbFormat **cands = NULL;
  QbSensitivityOptions o;
  g_autoptr(GError) error = NULL;
  QbActivationStats *stats;
  gint64 id = 0;

  if (!real_open (&r))
    return;
  cands = ladder (&n);
  study_options (&o, &r, cands, n);

  stats = stats_for (&r, 1, &error);   /* chunk 1 is evaluation chunk 1 */
  g_assert_no_error (error);
  o.stats = stats;
  g_assert_false (qb_sensitivity_run (r.model, r.tok, r.store, &o, NULL, NULL, NULL, &id, &error));
  g_assert_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_OVERLAP);
  g_assert_cmpint (id, ==, 0);
  qb_activation_stats_free (stats);
  g_clear_error (&error);

  /* Skipping the two evaluated chunks: accepted, and the output error
   * through XᵀX becomes the proxy. */
  stats = stats_for (&r, 2, &error);
  g_assert_no_error (error);
  o.stats = stats;
  o.candidates = cands + 1;
  o.n_candidates = 1;
  g_assert_true (qb_sensitivity_run (r.model, r.tok, r.store, &o, NULL, NULL, NULL, &id, &error));
  g_assert_no_error (error);
  {
    g_autoptr(QbStudyRecord) rec = qb_store_get_study (r.store, id, &error);
    g_autoptr(GPtrArray) costs = qb_store_get_study_costs (r.store, id, &error);
    const QbStudyCost *c = NULL;

    for (guint i = 0; i < costs->len; i++)
      if (g_str_equal (((QbStudyCost *) g_ptr_array_index (costs, i))->tensor, "blk.0.attn_q.weight"))
        c = g_ptr_array_index (costs, i);
    g_assert_cmpstr (rec->proxy, ==, "out_err");
    g_assert_nonnull (c);
    g_assert_cmpfloat (c->out_err, >, 0);
    g_assert_cmpfloat (c->wmse, >, 0);
  }
  qb_activation_stats_free (stats);
  real_close (&r);
}

/* ---- the fit ---------------------------------------------------------- */

static void
test_spearman (void)
{
  const double a[] = { 1, 2, 3, 4, 5 };
  const double b[] = { 10, 20, 30, 40, 50 };
  const double c[] = { 5, 4, 3, 2, 1 };
  const double ties[] = { 1, 1, 2, 2, 3 };

  g_assert_cmpfloat_with_epsilon (qb_sensitivity_spearman (a, b, 5), 1.0, 1e-12);
  g_assert_cmpfloat_with_epsilon (qb_sensitivity_spearman (a, c, 5), -1.0, 1e-12);
  g_assert_cmpfloat (qb_sensitivity_spearman (a, ties, 5), >, 0.9);
  g_assert_true (isnan (qb_sensitivity_spearman (a, b, 2)));
}

/* Measuring two candidates per tensor: the others are predicted, and the
 * prediction is in the right place between the measured ones. */
static void
test_fit_fills (void)
{
  Real r;
  static const char *names[] = { "Q4_0", "Q5_0", "Q8_0", "INT4_CH" };
  const QbFormat *cands[G_N_ELEMENTS (names)];
  QbSensitivityOptions o;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbSensitivityStudy) st = NULL;
  gint64 id = 0;
  guint predicted = 0;

  if (!real_open (&r))
    return;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    cands[i] = qb_format_find (names[i]);
  study_options (&o, &r, cands, G_N_ELEMENTS (names));
  o.measure = 2;
  g_assert_true (qb_sensitivity_run (r.model, r.tok, r.store, &o, NULL, NULL, NULL, &id, &error));
  g_assert_no_error (error);
  st = qb_sensitivity_study_load (r.store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (st->alpha, >, 0.3);
  g_assert_cmpfloat (st->alpha, <, 3);
  for (guint t = 0; t < st->n_tensors; t++)
    for (guint k = 0; k < st->n_candidates; k++)
      {
        const QbSensitivityEntry *e = qb_sensitivity_study_get (st, t, k);
        if (e->cost->skipped)
          continue;
        g_assert_true (isfinite (e->value));
        g_assert_cmpfloat (e->value, >=, 0);
        if (!isfinite (e->cost->kld))
          predicted++;
      }
  /* 32 tensors of rows of 64: Q4_0 Q5_0 Q8_0 INT4_CH fit, 2 measured;
   * 5 ffn_down: INT4_CH alone, measured. */
  g_assert_cmpuint (predicted, ==, 32 * 2);
  {
    /* Q8_0 (predicted) below Q5_0 (measured) for blk.1.attn_v */
    for (guint t = 0; t < st->n_tensors; t++)
      {
        const QbSensitivityEntry *q5 = qb_sensitivity_study_get (st, t, 1);
        const QbSensitivityEntry *q8 = qb_sensitivity_study_get (st, t, 2);
        if (g_str_equal (q5->cost->tensor, "blk.1.attn_v.weight"))
          {
            g_assert_true (isfinite (q5->cost->kld));
            g_assert_false (isfinite (q8->cost->kld));
            g_assert_cmpfloat (q8->value, <, q5->value);
          }
      }
  }
  real_close (&r);
}


/* ---- the command ------------------------------------------------------ */

static void
test_cli (void)
{
  g_autofree char *model = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *text = qb_test_shared_path ("text/tinystories-val.txt");
  g_autofree char *exe = NULL, *dir = NULL, *db = NULL, *cache = NULL;
  g_autofree char *out = NULL, *err = NULL, *shown = NULL, *listed = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *o;
  JsonArray *costs;
  guint skipped = 0;

  if (model == NULL || text == NULL || (exe = qb_test_quantbench_path ()) == NULL)
    return;
  dir = qb_test_tmpdir ();
  db = g_build_filename (dir, "qb.db", NULL);
  cache = g_build_filename (dir, "cache", NULL);
  {
    const char *args[] = { "sensitivity", model, "--calib", text, "--calib-chunks", "8",
                           "--calib-cache-dir", cache, "--eval-text", text, "--eval-chunks", "2",
                           "--candidates", "Q4_K,Q4_0,INT4_CH", "--db", db, "-t", "2", "--json",
                           NULL };
    g_assert_cmpint (qb_test_quantbench_argv (args, NULL, &out, &err), ==, 0);
  }
  g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
  o = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (o, "status"), ==, "done");
  g_assert_cmpstr (json_object_get_string_member (o, "proxy"), ==, "out_err");
  g_assert_cmpint (json_object_get_int_member (o, "eval_n_chunks"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (o, "calibration_set_id"), >, 0);
  costs = json_object_get_array_member (o, "costs");
  g_assert_cmpuint (json_array_get_length (costs), ==, 37 * 3);
  for (guint i = 0; i < json_array_get_length (costs); i++)
    skipped += json_object_get_boolean_member (json_array_get_object_element (costs, i), "skipped");
  g_assert_cmpuint (skipped, ==, 37 + 5);

  {
    const char *args[] = { "sensitivity", "--show", "1", "--db", db, NULL };
    g_assert_cmpint (qb_test_quantbench_argv (args, NULL, &shown, NULL), ==, 0);
  }
  g_assert_nonnull (strstr (shown, "blk.2.ffn_down.weight"));
  g_assert_nonnull (strstr (shown, "leave-one-out Spearman"));
  {
    const char *args[] = { "sensitivity", "--list", "--db", db, NULL };
    g_assert_cmpint (qb_test_quantbench_argv (args, NULL, &listed, NULL), ==, 0);
  }
  g_assert_nonnull (strstr (listed, "Q4_K,Q4_0,INT4_CH"));
  {
    /* Calibration over the evaluation tokens is refused. */
    const char *args[] = { "sensitivity", model, "--calib", text, "--calib-skip", "1",
                           "--calib-chunks", "4", "--calib-cache-dir", cache, "--eval-text", text,
                           "--eval-chunks", "2", "--db", db, NULL };
    g_autofree char *e2 = NULL;
    g_assert_cmpint (qb_test_quantbench_argv (args, NULL, NULL, &e2), ==, 1);
    g_assert_nonnull (strstr (e2, "overlaps"));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sensitivity/forward-from", test_forward_from);
  g_test_add_func ("/sensitivity/spearman", test_spearman);
  g_test_add_func ("/sensitivity/study-real", test_study_real);
  g_test_add_func ("/sensitivity/cancel-resume", test_cancel_resume);
  g_test_add_func ("/sensitivity/disjoint", test_disjoint);
  g_test_add_func ("/sensitivity/fit-fills", test_fit_fills);
  g_test_add_func ("/sensitivity/cli", test_cli);
  return g_test_run ();
}
