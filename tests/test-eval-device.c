/* SPDX-License-Identifier: MIT */
/* test-eval-device.c — the forward pass on an OpenCL device (PoCL's CPU
 * device in CI) against the CPU pass on stories260K and on each family's
 * demo model: perplexity within 1e-4 relative, mean KL divergence between
 * the two passes' logits under 1e-6, a weight swapped by a plan reaches
 * the device, and the device's own scoring (NLL, KLD against the float
 * model) matches the CPU's. */
#include <math.h>
#include <string.h>

#include "qb-demo-model.h"
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

/* The model at path, its llama and tokenizer, into s. */
static void
open_llama (Stories *s, const char *path)
{
  g_autoptr(GError) error = NULL;

  s->model = qb_model_open (path, &error);
  g_assert_no_error (error);
  s->llama = qb_llama_new (s->model, &error);
  g_assert_no_error (error);
  s->tok = qb_tokenizer_new_from_gguf (qb_model_get_gguf (s->model), &error);
  g_assert_no_error (error);
  qb_llama_set_threads (s->llama, 2);
}

/* FALSE (skipped) without an OpenCL device. */
static gboolean
have_device (void)
{
  g_autoptr(GPtrArray) devices = qb_device_list (NULL);

  if (devices->len == 0)
    g_test_skip ("no OpenCL device (install pocl-opencl-icd)");
  return devices->len > 0;
}

static gboolean
stories_open (Stories *s)
{
  g_autofree char *model_path = NULL;

  memset (s, 0, sizeof *s);
  if (!have_device ())
    return FALSE;
  if ((model_path = qb_test_shared_path ("models/stories260K.gguf")) == NULL
      || (s->text = qb_test_shared_path ("text/tinystories-val.txt")) == NULL)
    return FALSE;
  open_llama (s, model_path);
  return TRUE;
}

/* A family's demo model (`quantbench demo-model --arch ARCH`, its default
 * small size; gemma3 with 6 layers for one global layer), evaluated on the
 * TinyStories text with its own demo vocabulary. */
static gboolean
family_open (Stories *s, const char *arch)
{
  g_autofree char *dir = NULL, *path = NULL, *name = g_strdup_printf ("%s.gguf", arch);
  g_autoptr(GError) error = NULL;
  QbDemoModelSpec spec;

  memset (s, 0, sizeof *s);
  if (!have_device () || (s->text = qb_test_shared_path ("text/tinystories-val.txt")) == NULL)
    return FALSE;
  dir = qb_test_tmpdir ();
  path = g_build_filename (dir, name, NULL);
  qb_demo_model_spec_init (&spec);
  spec.arch = arch;
  spec.dtype = QB_DTYPE_F32;
  spec.n_layer = g_str_equal (arch, "gemma3") ? 6 : 2;
  qb_demo_model_write (&spec, path, NULL, NULL, &error);
  g_assert_no_error (error);
  open_llama (s, path);
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

/* Every matrix swapped for its bytes in the format pick gives it (NULL:
 * left as stored); returns how many were swapped. */
static guint
use_formats (Stories *s, const QbFormat *(*pick) (const QbTensor *t))
{
  guint n = 0;

  for (guint i = 0; i < qb_model_get_n_tensors (s->model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (s->model, i);
      const QbFormat *f = t->n_dims < 2 ? NULL : pick (t);
      QbQuantParams params = { .format = f };
      gint64 rows = qb_tensor_n_rows (t);
      guint64 row_bytes = 0;
      g_autofree float *x = NULL;
      guint8 *q;
      g_autoptr(GBytes) bytes = NULL;
      g_autoptr(GError) error = NULL;

      if (f == NULL || !qb_format_row_bytes (f, t->ne[0], &row_bytes))
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
  return n;
}

static const QbFormat *
pick_q4_0 (const QbTensor *t)
{
  return qb_format_find ("Q4_0");
}

static void
use_q4_0 (Stories *s)
{
  g_assert_cmpuint (use_formats (s, pick_q4_0), >, 0);
}

/* A mix in the spirit of Q4_K_M for rows that no K-quant fits (64 and
 * 172 values): more bits for V and the output, a format of each family
 * the device dequantizes on the others; the 172-wide down projections
 * in F16. */
static const QbFormat *
pick_mix (const QbTensor *t)
{
  switch (t->role)
    {
    case QB_ROLE_ATTN_Q:   return qb_format_find ("Q4_0");
    case QB_ROLE_ATTN_K:   return qb_format_find ("IQ4_NL");
    case QB_ROLE_ATTN_V:   return qb_format_find ("Q5_1");
    case QB_ROLE_ATTN_OUTPUT: return qb_format_find ("Q4_1");
    case QB_ROLE_FFN_GATE: return qb_format_find ("Q5_0");
    case QB_ROLE_FFN_UP:   return qb_format_find ("Q4_0");
    case QB_ROLE_FFN_DOWN: return qb_format_find ("F16");
    default:               return qb_format_find ("Q8_0");   /* the embedding and output */
    }
}

static void
use_mix (Stories *s)
{
  g_assert_cmpuint (use_formats (s, pick_mix), >=, 7 * 5);
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

/* The first CTX tokens of the text. */
static GArray *
first_tokens (Stories *s)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  GArray *ids;
  gsize len = 0;

  g_assert_true (g_file_get_contents (s->text, &text, &len, NULL));
  text[MIN (len, 4000)] = '\0';
  ids = qb_tokenizer_encode (s->tok, text, -1, TRUE, FALSE, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ids->len, >=, CTX);
  return ids;
}

#define FIRST 8

/* The logits of positions FIRST..CTX-1 on device. */
static float *
logits_on (Stories *s, const gint32 *tokens, const char *device)
{
  guint n_vocab = qb_llama_get_params (s->llama)->n_vocab;
  float *out = g_new (float, (gsize) (CTX - FIRST) * n_vocab);
  g_autoptr(GError) error = NULL;

  g_assert_true (qb_device_set_default (device, NULL));
  g_assert_true (qb_llama_forward (s->llama, tokens, CTX, FIRST, out, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  return out;
}

/* Mean KLD(CPU ‖ device) of the logits of one chunk. */
static double
logits_kld (Stories *s)
{
  g_autoptr(GArray) ids = first_tokens (s);
  guint n_vocab = qb_llama_get_params (s->llama)->n_vocab;
  g_autofree float *a = logits_on (s, (const gint32 *) ids->data, "cpu");
  g_autofree float *b = logits_on (s, (const gint32 *) ids->data, "opencl:0");
  g_autofree double *la = g_new (double, n_vocab), *lb = g_new (double, n_vocab);
  double kld = 0;

  for (guint t = 0; t < CTX - FIRST; t++)
    {
      log_softmax (a + (gsize) t * n_vocab, n_vocab, la);
      log_softmax (b + (gsize) t * n_vocab, n_vocab, lb);
      for (guint i = 0; i < n_vocab; i++)
        kld += exp (la[i]) * (la[i] - lb[i]);
    }
  kld /= CTX - FIRST;
  g_test_message ("mean KLD(CPU || device) over %u positions: %.3g", CTX - FIRST, kld);
  return kld;
}

static void
test_kld (void)
{
  Stories s;
  double kld;

  if (!stories_open (&s))
    return;
  kld = logits_kld (&s);
  g_assert_cmpfloat (kld, <, 1e-6);
  g_assert_cmpfloat (kld, >=, -1e-12);
  stories_close (&s);
}

/* A mixed plan's blocks go to the device as they are and are dequantized
 * there: perplexity within 1e-4 of the CPU's, the logits' KLD under 1e-6,
 * and every product of a quantized weight dequantized on the device. */
static void
test_quantized_plan (void)
{
  Stories s;
  double cpu, dev, kld;
  guint64 dequantized;

  if (!stories_open (&s))
    return;
  use_mix (&s);
  cpu = ppl (&s, "cpu");
  dequantized = qb_llama_device_dequantized ();
  dev = ppl (&s, "opencl:0");
  /* 10 chunks × 5 layers × 7 matrices, and the output head. */
  g_assert_cmpuint (qb_llama_device_dequantized (), >=, dequantized + 10 * (5 * 7 + 1));
  g_assert_cmpfloat (fabs (dev - cpu), <=, 1e-4 * cpu);
  kld = logits_kld (&s);
  g_assert_cmpfloat (kld, <, 1e-6);
  g_assert_cmpfloat (kld, >=, -1e-12);
  stories_close (&s);
}

/* Caps the device memory so that the device holds the activations, the
 * streaming slot and extra more bytes of weights; returns the bytes all
 * units need. */
static guint64
cap_memory (Stories *s, guint64 extra)
{
  guint64 fixed, largest, all;

  qb_llama_device_needs (s->llama, CTX, CTX - FIRST, &fixed, &largest, &all);
  qb_llama_device_set_mem_limit (fixed + largest + extra);
  g_test_message ("activations and scratch %" G_GUINT64_FORMAT " B, largest unit %" G_GUINT64_FORMAT
                  " B, all units %" G_GUINT64_FORMAT " B: cap %" G_GUINT64_FORMAT " B",
                  fixed, largest, all, fixed + largest + extra);
  return all;
}

/* With the memory capped below the model's weights, the layers that do
 * not fit are streamed: the logits are bit for bit those of the fully
 * resident pass, for the float model and for the mixed plan, and the
 * perplexity is the CPU's. */
static void
streamed (gboolean quantized)
{
  Stories s;
  g_autoptr(GArray) ids = NULL;
  g_autofree float *resident = NULL, *a = NULL, *b = NULL;
  gsize n;
  guint64 count, all;
  double cpu, dev;

  if (!stories_open (&s))
    return;
  if (quantized)
    use_mix (&s);
  ids = first_tokens (&s);
  n = (gsize) (CTX - FIRST) * qb_llama_get_params (s.llama)->n_vocab * sizeof (float);
  count = qb_llama_device_streamed ();
  resident = logits_on (&s, (const gint32 *) ids->data, "opencl:0");
  g_assert_cmpuint (qb_llama_device_streamed (), ==, count);

  /* Nothing resident but the slot; then two units' worth more. */
  all = cap_memory (&s, 0);
  a = logits_on (&s, (const gint32 *) ids->data, "opencl:0");
  g_assert_cmpuint (qb_llama_device_streamed (), >=, count + 6);   /* 5 layers and the head */
  g_assert_cmpmem (a, n, resident, n);
  count = qb_llama_device_streamed ();
  g_assert_cmpuint (cap_memory (&s, all / 3), ==, all);
  b = logits_on (&s, (const gint32 *) ids->data, "opencl:0");
  g_assert_cmpuint (qb_llama_device_streamed (), >, count);
  g_assert_cmpuint (qb_llama_device_streamed (), <, count + 6);
  g_assert_cmpmem (b, n, resident, n);

  count = qb_llama_device_streamed ();
  dev = ppl (&s, "opencl:0");
  g_assert_cmpuint (qb_llama_device_streamed (), >=, count + 10);
  qb_llama_device_set_mem_limit (0);
  cpu = ppl (&s, "cpu");
  g_assert_cmpfloat (fabs (dev - cpu), <=, 1e-4 * cpu);
  stories_close (&s);
}

static void
test_streamed_float (void)
{
  streamed (FALSE);
}

static void
test_streamed_quantized (void)
{
  streamed (TRUE);
}


/* Asked for the device (its memory capped at mem_limit bytes, 0: none),
 * the evaluation logs why it cannot run there and runs on the CPU with
 * the CPU's result; closes s. */
static void
assert_cpu_fallback (Stories *s, const char *why, gsize mem_limit)
{
  QbEvalOptions o;
  QbEvalResult r;
  g_autoptr(GError) error = NULL;
  guint64 passes = qb_llama_device_passes ();
  double cpu = ppl (s, "cpu");

  qb_test_log_clear ();
  qb_llama_device_set_mem_limit (mem_limit);
  g_assert_true (qb_device_set_default ("opencl:0", NULL));
  qb_eval_options_init (&o);
  o.n_ctx = CTX;
  o.n_chunks = 10;
  o.no_cache = TRUE;
  qb_eval_run (s->llama, s->tok, s->text, &o, NULL, NULL, NULL, &r, &error);
  qb_llama_device_set_mem_limit (0);
  g_assert_no_error (error);
  g_test_message ("logged: %s", qb_test_log_text ());
  g_assert_nonnull (strstr (qb_test_log_text (), why));
  g_assert_nonnull (strstr (qb_test_log_text (), "evaluating on the CPU"));
  g_assert_cmpstr (r.device, ==, "cpu");
  g_assert_cmpuint (qb_llama_device_passes (), ==, passes);
  g_assert_cmpfloat (r.ppl, ==, cpu);
  g_assert_true (qb_device_set_default ("cpu", NULL));
  stories_close (s);
}

/* A cap too small for one layer: a message says so and the evaluation
 * runs on the CPU with the CPU's result. */
static void
test_too_small (void)
{
  Stories s;

  if (stories_open (&s))
    assert_cpu_fallback (&s, "not even one layer fits", 64 << 10);
}

/* DeepSeek's latent attention has no device pass: asked for the device,
 * the evaluation says why once and runs on the CPU, with the CPU's
 * result (never a device result of another computation). */
static void
test_latent_attention_on_cpu (void)
{
  Stories s;

  if (family_open (&s, "deepseek2"))
    assert_cpu_fallback (&s, "no multi-head latent attention", 0);
}

/* Nor routing to experts: a mixture says so too, and runs on the CPU. */
static void
test_experts_on_cpu (gconstpointer data)
{
  Stories s;

  if (family_open (&s, data))
    assert_cpu_fallback (&s, "no routing to experts", 0);
}

/* Progress comes after each half of a layer: 2 × (5 layers + the head)
 * steps.  Cancels after layer 1 (steps 1..4 done); no report after. */
static void
cancel_at_layer_2 (guint done, guint total, gpointer data)
{
  g_assert_cmpuint (total, ==, 2 * (5 + 1));
  g_assert_cmpuint (done, <=, 4);
  if (done == 4)
    g_cancellable_cancel (data);
}

/* Cancelling a streamed pass stops it with G_IO_ERROR_CANCELLED; the
 * device is still used, with the same logits, by the next pass. */
static void
test_streamed_cancel (void)
{
  Stories s;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(GCancellable) cancel = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autofree float *resident = NULL, *out = NULL, *again = NULL;
  gsize n;
  guint64 passes, count;

  if (!stories_open (&s))
    return;
  use_mix (&s);
  ids = first_tokens (&s);
  n = (gsize) (CTX - FIRST) * qb_llama_get_params (s.llama)->n_vocab;
  resident = logits_on (&s, (const gint32 *) ids->data, "opencl:0");
  cap_memory (&s, 0);
  out = g_new (float, n);
  passes = qb_llama_device_passes ();
  count = qb_llama_device_streamed ();
  g_assert_false (qb_llama_forward (s.llama, (const gint32 *) ids->data, CTX, FIRST, out,
                                    cancel_at_layer_2, cancel, cancel, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (qb_llama_device_passes (), ==, passes);
  g_assert_cmpuint (qb_llama_device_streamed (), ==, count + 2);   /* stopped at layer 2 */
  again = logits_on (&s, (const gint32 *) ids->data, "opencl:0");
  qb_llama_device_set_mem_limit (0);
  g_assert_cmpuint (qb_llama_device_passes (), ==, passes + 1);
  g_assert_cmpmem (again, n * sizeof (float), resident, n * sizeof (float));
  stories_close (&s);
}

/* A family whose pieces the device pass takes from the descriptor (Q/K
 * norms, post-norms, embedding scale, GeGLU, soft-caps, sliding windows,
 * local RoPE base, query scale): perplexity within 1e-4 of the CPU's (the
 * device pass ran every chunk: ppl checks the counter), the logits' mean
 * KLD under 1e-6. */
static void
test_family (gconstpointer data)
{
  const char *arch = data;
  const QbLlamaParams *p;
  Stories s;
  double cpu, dev, kld;

  if (!family_open (&s, arch))
    return;
  p = qb_llama_get_params (s.llama);
  g_test_message ("%s: window %u, caps %g/%g, query scale %g", arch, p->swa_window,
                  p->attn_softcap, p->final_softcap, p->attn_scale);
  cpu = ppl (&s, "cpu");
  dev = ppl (&s, "opencl:0");
  g_assert_cmpfloat (fabs (dev - cpu), <=, 1e-4 * cpu);
  kld = logits_kld (&s);
  g_assert_cmpfloat (kld, <, 1e-6);
  g_assert_cmpfloat (kld, >=, -1e-12);
  stories_close (&s);
}

int
main (int argc, char **argv)
{
  qb_test_log_keep ();
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/eval-device/ppl", test_ppl);
  g_test_add_func ("/eval-device/deepseek2-on-cpu", test_latent_attention_on_cpu);
  g_test_add_data_func ("/eval-device/mixtral-on-cpu", "mixtral", test_experts_on_cpu);
  g_test_add_data_func ("/eval-device/qwen2moe-on-cpu", "qwen2moe", test_experts_on_cpu);
  g_test_add_func ("/eval-device/kld", test_kld);
  g_test_add_func ("/eval-device/swapped-weights", test_swapped_weights);
  g_test_add_func ("/eval-device/scores", test_scores);
  g_test_add_func ("/eval-device/quantized-plan", test_quantized_plan);
  g_test_add_func ("/eval-device/streamed-float", test_streamed_float);
  g_test_add_func ("/eval-device/streamed-quantized", test_streamed_quantized);
  g_test_add_func ("/eval-device/too-small", test_too_small);
  g_test_add_func ("/eval-device/streamed-cancel", test_streamed_cancel);
  g_test_add_data_func ("/eval-device/family/qwen3", "qwen3", test_family);
  g_test_add_data_func ("/eval-device/family/phi3", "phi3", test_family);
  g_test_add_data_func ("/eval-device/family/gemma2", "gemma2", test_family);
  g_test_add_data_func ("/eval-device/family/gemma3", "gemma3", test_family);
  return g_test_run ();
}
