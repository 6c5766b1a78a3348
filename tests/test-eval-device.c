/* SPDX-License-Identifier: MIT */
/* test-eval-device.c — the LLaMA forward pass on an OpenCL device (PoCL's
 * CPU device in CI) against the CPU pass on stories260K: perplexity within
 * 1e-4 relative, mean KL divergence between the two passes' logits under
 * 1e-6, a weight swapped by a plan reaches the device, and the device's
 * own scoring (NLL, KLD against the float model) matches the CPU's. */
#include <math.h>
#include <string.h>

#include "qb-device.h"
#include "qb-eval.h"
#include "qb-format.h"
#include "qb-llama-device-private.h"
#include "qb-logprobs.h"
#include "qb-test-util.h"
#include "qb-tokenizer.h"

#define CTX 128

typedef struct {
  QbModel     *model;
  QbLlama     *llama;
  QbTokenizer *tok;
  char        *text;
} Stories;

static gboolean
stories_open (Stories *s)
{
  g_autofree char *model_path = NULL;
  g_autoptr(GPtrArray) devices = qb_device_list (NULL);
  g_autoptr(GError) error = NULL;

  memset (s, 0, sizeof *s);
  if (devices->len == 0)
    {
      g_test_skip ("no OpenCL device (install pocl-opencl-icd)");
      return FALSE;
    }
  if ((model_path = qb_test_shared_path ("models/stories260K.gguf")) == NULL
      || (s->text = qb_test_shared_path ("text/tinystories-val.txt")) == NULL)
    return FALSE;
  s->model = qb_model_open (model_path, &error);
  g_assert_no_error (error);
  s->llama = qb_llama_new (s->model, &error);
  g_assert_no_error (error);
  s->tok = qb_tokenizer_new_from_gguf (qb_model_get_gguf (s->model), &error);
  g_assert_no_error (error);
  qb_llama_set_threads (s->llama, 2);
  return TRUE;
}

static void
stories_close (Stories *s)
{
  g_assert_true (qb_device_set_default ("cpu", NULL));
  g_clear_pointer (&s->llama, qb_llama_free);
  g_clear_pointer (&s->tok, qb_tokenizer_unref);
  g_clear_object (&s->model);
  g_clear_pointer (&s->text, g_free);
}

static double
ppl (Stories *s, const char *device)
{
  QbEvalOptions o;
  QbEvalResult r;
  g_autoptr(GError) error = NULL;
  guint64 passes = qb_llama_device_passes ();

  g_assert_true (qb_device_set_default (device, NULL));
  qb_eval_options_init (&o);
  o.n_ctx = CTX;
  o.n_chunks = 10;
  o.no_cache = TRUE;
  qb_eval_run (s->llama, s->tok, s->text, &o, NULL, NULL, NULL, &r, &error);
  g_assert_no_error (error);
  g_test_message ("%s: PPL %.6f, %.0f tokens/s on %s", device, r.ppl, r.tokens_per_second, r.device);
  /* The result says what ran it. */
  if (g_str_equal (device, "cpu"))
    g_assert_cmpstr (r.device, ==, "cpu");
  else
    g_assert_true (g_str_has_prefix (r.device, device));
  /* The device pass ran (no silent fallback); the CPU run used none. */
  if (g_str_equal (device, "cpu"))
    g_assert_cmpuint (qb_llama_device_passes (), ==, passes);
  else
    g_assert_cmpuint (qb_llama_device_passes (), >=, passes + 10);
  return r.ppl;
}

static void
test_ppl (void)
{
  Stories s;
  double cpu, dev;

  if (!stories_open (&s))
    return;
  cpu = ppl (&s, "cpu");
  dev = ppl (&s, "opencl:0");
  g_assert_cmpfloat (fabs (dev - cpu), <=, 1e-4 * cpu);
  stories_close (&s);
}

/* Every matrix whose rows fit Q4_0 swapped for its Q4_0 bytes. */
static void
use_q4_0 (Stories *s)
{
  const QbFormat *f = qb_format_find ("Q4_0");
  QbQuantParams params = { .format = f };
  guint n = 0;

  for (guint i = 0; i < qb_model_get_n_tensors (s->model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (s->model, i);
      gint64 rows = qb_tensor_n_rows (t);
      guint64 row_bytes = 0;
      g_autofree float *x = NULL;
      guint8 *q;
      g_autoptr(GBytes) bytes = NULL;
      g_autoptr(GError) error = NULL;

      if (t->n_dims < 2 || !qb_format_row_bytes (f, t->ne[0], &row_bytes))
        continue;
      x = g_new (float, t->n_params);
      g_assert_true (qb_model_read_rows (s->model, i, 0, rows, x, &error));
      q = g_malloc (row_bytes * rows);
      for (gint64 r = 0; r < rows; r++)
        f->quantize_row (&params, x + r * t->ne[0], q + r * row_bytes, t->ne[0]);
      bytes = g_bytes_new_take (q, row_bytes * rows);
      g_assert_true (qb_llama_set_weight (s->llama, i, bytes, &params, &error));
      g_assert_no_error (error);
      n++;
    }
  g_assert_cmpuint (n, >, 0);
}

/* Weights swapped after the device holds the float ones are uploaded
 * again: the quantized model's perplexity, the same on both. */
static void
test_swapped_weights (void)
{
  Stories s;
  double floats, cpu, dev;

  if (!stories_open (&s))
    return;
  floats = ppl (&s, "opencl:0");
  use_q4_0 (&s);
  dev = ppl (&s, "opencl:0");
  cpu = ppl (&s, "cpu");
  g_assert_cmpfloat (fabs (dev - floats), >, 1e-3 * floats);
  g_assert_cmpfloat (fabs (dev - cpu), <=, 1e-4 * cpu);
  stories_close (&s);
}

/* A KLD evaluation against the float model on device, in result. */
static void
eval_kld (Stories *s, const char *device, QbEvalResult *r)
{
  QbEvalOptions o;
  g_autoptr(GError) error = NULL;

  g_assert_true (qb_device_set_default (device, NULL));
  qb_eval_options_init (&o);
  o.n_ctx = CTX;
  o.n_chunks = 10;
  o.kld = TRUE;
  o.no_cache = TRUE;
  qb_eval_run (s->llama, s->tok, s->text, &o, NULL, NULL, NULL, r, &error);
  g_assert_no_error (error);
  g_test_message ("%s: PPL %.6f (float %.6f), KLD %.9f, same top %.4f", r->device, r->ppl,
                  r->base_ppl, r->kld_mean, r->same_top);
}

/* The device scores the positions of both passes (log-softmax, NLL, KL
 * divergence, the float model's records) and no logits come back; the
 * figures are the CPU's within rounding. */
static void
test_scores (void)
{
  Stories s;
  QbEvalResult cpu, dev;
  guint64 scored, rows;

  if (!stories_open (&s))
    return;
  use_q4_0 (&s);
  eval_kld (&s, "cpu", &cpu);
  scored = qb_llama_device_scored ();
  rows = qb_llama_device_logit_rows ();
  eval_kld (&s, "opencl:0", &dev);
  g_assert_cmpuint (qb_llama_device_scored (), ==, scored + 2 * 10 * qb_logprobs_n_scored (CTX));
  g_assert_cmpuint (qb_llama_device_logit_rows (), ==, rows);
  g_assert_cmpfloat (fabs (dev.ppl - cpu.ppl), <=, 1e-4 * cpu.ppl);
  g_assert_cmpfloat (fabs (dev.base_ppl - cpu.base_ppl), <=, 1e-4 * cpu.base_ppl);
  g_assert_cmpfloat (cpu.kld_mean, >, 1e-3);   /* Q4_0 is far from the float model */
  g_assert_cmpfloat (fabs (dev.kld_mean - cpu.kld_mean), <, 1e-6);
  g_assert_cmpfloat (fabs (dev.kld_max - cpu.kld_max), <, 1e-5);
  g_assert_cmpfloat (fabs (dev.same_top - cpu.same_top), <=, 0.01);
  g_assert_cmpfloat (fabs (dev.dp_rms - cpu.dp_rms), <, 1e-5);
  stories_close (&s);
}

/* log-softmax of a row, in double. */
static void
log_softmax (const float *x, guint n, double *out)
{
  double max = -INFINITY, sum = 0;

  for (guint i = 0; i < n; i++)
    max = MAX (max, x[i]);
  for (guint i = 0; i < n; i++)
    sum += exp (x[i] - max);
  for (guint i = 0; i < n; i++)
    out[i] = x[i] - max - log (sum);
}

static void
test_kld (void)
{
  Stories s;
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) ids = NULL;
  const gint32 *tokens;
  g_autofree float *a = NULL, *b = NULL;
  g_autofree double *la = NULL, *lb = NULL;
  g_autofree char *text = NULL;
  guint n_vocab, n = 0, first = 8;
  gsize len = 0;
  double kld = 0;

  if (!stories_open (&s))
    return;
  n_vocab = qb_llama_get_params (s.llama)->n_vocab;
  g_assert_true (g_file_get_contents (s.text, &text, &len, NULL));
  text[MIN (len, 4000)] = '\0';
  ids = qb_tokenizer_encode (s.tok, text, -1, TRUE, FALSE, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ids->len, >=, CTX);
  tokens = (const gint32 *) ids->data;
  n = CTX;
  a = g_new (float, (gsize) (n - first) * n_vocab);
  b = g_new (float, (gsize) (n - first) * n_vocab);
  g_assert_true (qb_device_set_default ("cpu", NULL));
  g_assert_true (qb_llama_forward (s.llama, tokens, n, first, a, NULL, NULL, NULL, &error));
  g_assert_true (qb_device_set_default ("opencl:0", NULL));
  g_assert_true (qb_llama_forward (s.llama, tokens, n, first, b, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  la = g_new (double, n_vocab);
  lb = g_new (double, n_vocab);
  for (guint t = 0; t < n - first; t++)
    {
      log_softmax (a + (gsize) t * n_vocab, n_vocab, la);
      log_softmax (b + (gsize) t * n_vocab, n_vocab, lb);
      for (guint i = 0; i < n_vocab; i++)
        kld += exp (la[i]) * (la[i] - lb[i]);
    }
  kld /= n - first;
  g_test_message ("mean KLD(CPU || device) over %u positions: %.3g", n - first, kld);
  g_assert_cmpfloat (kld, <, 1e-6);
  g_assert_cmpfloat (kld, >=, -1e-12);
  stories_close (&s);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/eval-device/ppl", test_ppl);
  g_test_add_func ("/eval-device/kld", test_kld);
  g_test_add_func ("/eval-device/swapped-weights", test_swapped_weights);
  g_test_add_func ("/eval-device/scores", test_scores);
  return g_test_run ();
}
