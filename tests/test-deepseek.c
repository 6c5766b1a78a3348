/* SPDX-License-Identifier: MIT */
/* test-deepseek.c — DeepSeek-style models (deepseek2): the routing against
 * a recomputation from its published definition (softmax and sigmoid
 * gating, the selection bias, group-limited choice, renormalisation and
 * scale), and files whose hyper-parameters are missing, out of range or
 * contradict the tensors refused with a message that says what.
 *
 * Perplexity against llama.cpp's on the same files is in test-moe.c
 * (/eval-moe/llama-cpp/deepseek2*), with the grouped routing through the
 * whole pass (/eval-moe/deepseek2/groups).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qb-activation-stats.h"
#include "qb-calibration.h"
#include "qb-demo-model.h"
#include "qb-gguf.h"
#include "qb-llama-private.h"
#include "qb-model.h"
#include "qb-test-model.h"
#include "qb-test-util.h"

/* ---- routing -------------------------------------------------------------- */

static const double *sort_values;

/* Descending by value, ties to the lower index. */
static int
by_value_desc (const void *a, const void *b)
{
  int i = *(const int *) a, j = *(const int *) b;

  if (sort_values[i] != sort_values[j])
    return sort_values[i] > sort_values[j] ? -1 : 1;
  return i - j;
}

/* The definition, written out with sorts (DeepSeek-V3's modeling code:
 * scores, scores + bias for the choice, group scores = sum of each
 * group's top group_top choice scores, the topk_group best groups, the
 * top-k of the rest, weights from the unbiased scores, normalised, then
 * scaled). */
static void
route_by_definition (const QbLlamaParams *p, const float *bias, const float *logits,
                     gint32 *experts, double *weights)
{
  guint N = p->n_expert, G = p->n_group, size = N / G;
  g_autofree double *score = g_new (double, N);
  g_autofree double *choice = g_new (double, N);
  g_autofree double *gscore = g_new (double, G);
  g_autofree int *order = g_new (int, N);
  g_autofree int *gorder = g_new (int, G);
  double max = -INFINITY, total = 0, sum = 0;

  for (guint e = 0; e < N; e++)
    max = MAX (max, logits[e]);
  for (guint e = 0; e < N; e++)
    {
      score[e] = p->moe_gating == QB_MOE_GATING_SIGMOID ? 1 / (1 + exp (-(double) logits[e]))
                                                        : exp ((double) logits[e] - max);
      total += score[e];
    }
  for (guint e = 0; e < N; e++)
    {
      if (p->moe_gating == QB_MOE_GATING_SOFTMAX)
        score[e] /= total;
      choice[e] = score[e] + (bias ? bias[e] : 0);
    }
  for (guint g = 0; g < G; g++)
    {
      int in_group[QB_MOE_MAX_GROUPS * 4];

      g_assert_cmpuint (size, <=, G_N_ELEMENTS (in_group));
      for (guint j = 0; j < size; j++)
        in_group[j] = (int) (g * size + j);
      sort_values = choice;
      qsort (in_group, size, sizeof (int), by_value_desc);
      gscore[g] = 0;
      for (guint j = 0; j < MIN (p->group_top, size); j++)
        gscore[g] += choice[in_group[j]];
      gorder[g] = (int) g;
    }
  sort_values = gscore;
  qsort (gorder, G, sizeof (int), by_value_desc);
  for (guint rank = G > 1 ? p->topk_group : G; rank < G; rank++)
    for (guint j = 0; j < size; j++)
      choice[gorder[rank] * size + j] = -INFINITY;
  for (guint e = 0; e < N; e++)
    order[e] = (int) e;
  sort_values = choice;
  qsort (order, N, sizeof (int), by_value_desc);
  for (guint k = 0; k < p->n_expert_used; k++)
    {
      experts[k] = order[k];
      weights[k] = score[order[k]];
      sum += weights[k];
    }
  for (guint k = 0; k < p->n_expert_used; k++)
    weights[k] = (p->moe_norm_topk ? weights[k] / sum : weights[k]) * p->expert_weights_scale;
}

typedef struct {
  const char  *name;
  QbMoeGating  gating;
  gboolean     bias;
  gboolean     norm;
  float        scale;
  guint        n_expert, n_used, n_group, topk_group, group_top;
} RouteCase;

static const RouteCase route_cases[] = {
  /* DeepSeek-V2-Lite: softmax, 64 experts, 6 per token, no groups. */
  { "v2-lite", QB_MOE_GATING_SOFTMAX, FALSE, FALSE, 1.0f, 64, 6, 1, 1, 1 },
  /* DeepSeek-V2: 160 experts in 8 groups, 3 used, a group's best score. */
  { "v2-groups", QB_MOE_GATING_SOFTMAX, FALSE, FALSE, 16.0f, 160, 6, 8, 3, 1 },
  /* DeepSeek-V3: sigmoid with the bias, 256 experts in 8 groups, 4 used,
   * the sum of a group's best two, renormalised, × 2.5. */
  { "v3", QB_MOE_GATING_SIGMOID, TRUE, TRUE, 2.5f, 256, 8, 8, 4, 2 },
  /* Small groups: one group chosen of 8 pairs, both its experts used. */
  { "v3-pairs", QB_MOE_GATING_SIGMOID, TRUE, TRUE, 1.0f, 16, 2, 8, 1, 2 },
};

static void
test_routing (gconstpointer data)
{
  const RouteCase *c = data;
  QbLlamaParams p = { .n_expert = c->n_expert, .n_expert_used = c->n_used,
                      .moe_gating = c->gating, .moe_norm_topk = c->norm,
                      .expert_weights_scale = c->scale, .n_group = c->n_group,
                      .topk_group = c->topk_group, .group_top = c->group_top };
  const guint T = 200, N = c->n_expert, K = c->n_used;
  g_autofree float *logits = g_new (float, (gsize) T * N);
  g_autofree float *probs = g_new (float, (gsize) T * N);
  g_autofree float *bias = g_new (float, N);
  g_autofree float *select = g_new (float, N);
  g_autofree gint32 *experts = g_new (gint32, (gsize) T * K);
  g_autofree float *weights = g_new (float, (gsize) T * K);
  g_autofree gint32 *expect_e = g_new (gint32, K);
  g_autofree double *expect_w = g_new (double, K);
  guint64 state = 7;
  guint outside_best = 0, bias_moved = 0;

  qb_test_gaussian (&state, logits, (gsize) T * N, 1.5f);
  qb_test_gaussian (&state, bias, N, 0.1f);
  memcpy (probs, logits, sizeof (float) * T * N);
  qb_moe_route (&p, c->bias ? bias : NULL, probs, T, experts, weights, select);
  for (guint t = 0; t < T; t++)
    {
      const float *lg = logits + (gsize) t * N;
      gint32 plain_best = 0;

      route_by_definition (&p, c->bias ? bias : NULL, lg, expect_e, expect_w);
      for (guint k = 0; k < K; k++)
        {
          g_assert_cmpint (experts[t * K + k], ==, expect_e[k]);
          g_assert_cmpfloat_with_epsilon (weights[t * K + k], expect_w[k], 1e-6 * c->scale);
        }
      /* The groups and the bias act: the best expert by its own score is
       * not always chosen first. */
      for (guint e = 1; e < N; e++)
        if (lg[e] > lg[plain_best])
          plain_best = (gint32) e;
      if (experts[t * K] != plain_best)
        {
          gboolean chosen = FALSE;
          for (guint k = 0; k < K; k++)
            chosen |= experts[t * K + k] == plain_best;
          outside_best += !chosen;
          bias_moved++;
        }
    }
  g_test_message ("%s: %u of %u tokens lead with another expert than the best-scored one, %u "
                  "leave it out", c->name, bias_moved, T, outside_best);
  /* A group's best score always keeps the best expert's group; the sum of
   * its best two need not. */
  if (c->n_group > 1 && c->group_top > 1)
    g_assert_cmpuint (outside_best, >, 0);
  else if (!c->bias)
    g_assert_cmpuint (bias_moved, ==, 0);
}

/* ---- refused files ------------------------------------------------------- */

typedef enum { SET_UINT, SET_FLOAT, SET_STRING, DROP_KEY, DROP_TENSOR } Edit;

typedef struct {
  const char *name;
  Edit        edit;
  const char *key;           /* after "deepseek2.", or the tensor's name */
  double      number;
  const char *string;
  gboolean    sigmoid;       /* of the demo model edited */
  const char *message;       /* what the error must say */
} Refusal;

static const Refusal refusals[] = {
  { "no-kv-rank", DROP_KEY, "attention.kv_lora_rank", 0, NULL, FALSE, "kv_lora_rank" },
  { "kv-rank-shape", SET_UINT, "attention.kv_lora_rank", 128, NULL, FALSE, "compressed KV" },
  { "q-rank-missing", DROP_KEY, "attention.q_lora_rank", 0, NULL, FALSE, "without a q_lora_rank" },
  { "rope-too-wide", SET_UINT, "rope.dimension_count", 128, NULL, FALSE, "RoPE dimension" },
  { "rope-odd", SET_UINT, "rope.dimension_count", 31, NULL, FALSE, "is odd" },
  { "key-short", SET_UINT, "attention.key_length", 0, NULL, FALSE, "K head size" },
  { "value-huge", SET_UINT, "attention.value_length", 4096, NULL, FALSE, "V head size" },
  { "kv-heads", SET_UINT, "attention.head_count_kv", 2, NULL, FALSE, "KV heads" },
  { "gating", SET_UINT, "expert_gating_func", 3, NULL, FALSE, "neither softmax" },
  { "dense-lead", SET_UINT, "leading_dense_block_count", 9, NULL, FALSE, "leading dense layer count" },
  { "dense-experts", SET_UINT, "leading_dense_block_count", 2, NULL, FALSE, "leading dense layers" },
  { "all-moe", SET_UINT, "leading_dense_block_count", 0, NULL, FALSE, "both a dense FFN and experts" },
  { "scale", SET_FLOAT, "expert_weights_scale", -1, NULL, FALSE, "weight scale" },
  { "groups", SET_UINT, "expert_group_count", 3, NULL, FALSE, "groups do not divide" },
  { "groups-used", SET_UINT, "expert_group_used_count", 5, NULL, FALSE, "expert groups used" },
  { "shared", SET_UINT, "expert_shared_count", 2, NULL, FALSE, "shared expert FFN gate" },
  { "yarn-no-factor", SET_STRING, "rope.scaling.type", 0, "yarn", FALSE, "YaRN needs deepseek2.rope.scaling.factor" },
  { "rope-scaling", SET_STRING, "rope.scaling.type", 0, "longrope", FALSE, "'longrope'" },
  { "kv-b-missing", DROP_TENSOR, "blk.2.attn_kv_b.weight", 0, NULL, FALSE, "KV expansion" },
  { "bias-optional", DROP_TENSOR, "blk.2.exp_probs_b.bias", 0, NULL, TRUE, NULL },
};

/* The demo model with one key changed or dropped, or one tensor left out. */
static char *
edited_model (const char *dir, const Refusal *r)
{
  g_autofree char *src = g_build_filename (dir, r->sigmoid ? "src-sigmoid.gguf" : "src.gguf", NULL);
  char *dst = g_strdup_printf ("%s/%s.gguf", dir, r->name);
  g_autofree char *key = g_strdup_printf ("deepseek2.%s", r->key);
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(GPtrArray) sources = g_ptr_array_new ();
  g_autoptr(QbModel) model = NULL;
  g_autoptr(GError) error = NULL;
  QbGguf *g;

  if (!g_file_test (src, G_FILE_TEST_EXISTS))
    {
      QbDemoModelSpec spec;
      qb_demo_model_spec_init (&spec);
      spec.arch = "deepseek2";
      spec.sigmoid = r->sigmoid;
      g_assert_true (qb_demo_model_write (&spec, src, NULL, NULL, &error));
    }
  model = qb_model_open (src, &error);
  g_assert_no_error (error);
  g = qb_model_get_gguf (model);
  for (guint64 i = 0; i < qb_gguf_get_n_kv (g); i++)
    if (r->edit != DROP_KEY || strcmp (qb_gguf_get_kv (g, i)->key.str, key) != 0)
      qb_gguf_writer_copy_kv (w, qb_gguf_get_kv (g, i));
  if (r->edit == SET_UINT)
    qb_gguf_writer_set_uint32 (w, key, (guint32) r->number);
  else if (r->edit == SET_FLOAT)
    qb_gguf_writer_set_float32 (w, key, (float) r->number);
  else if (r->edit == SET_STRING)
    qb_gguf_writer_set_string (w, key, r->string);
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      if (r->edit == DROP_TENSOR && strcmp (t->name, r->key) == 0)
        continue;
      qb_gguf_writer_add_tensor (w, t->name, t->n_dims, t->ne, t->dtype);
      g_ptr_array_add (sources, (gpointer) t);
    }
  g_assert_true (qb_gguf_writer_begin (w, dst, &error));
  for (guint i = 0; i < sources->len; i++)
    {
      const QbTensor *t = g_ptr_array_index (sources, i);
      g_assert_true (qb_gguf_writer_write_tensor (w, i, t->data, t->n_bytes, &error));
    }
  g_assert_true (qb_gguf_writer_finish (w, &error));
  return dst;
}

static char *refusal_dir;

static void
test_refused (gconstpointer data)
{
  const Refusal *r = data;
  g_autofree char *path = edited_model (refusal_dir, r);
  g_autoptr(QbModel) model = NULL;
  g_autoptr(GError) error = NULL;
  QbLlama *llama;

  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  llama = qb_llama_new (model, &error);
  if (r->message == NULL)
    {
      /* The selection bias is optional: a layer without it runs. */
      g_assert_no_error (error);
      g_assert_nonnull (llama);
      qb_llama_free (llama);
      return;
    }
  g_assert_null (llama);
  g_assert_nonnull (error);
  g_test_message ("%s: %s", r->name, error->message);
  if (strstr (error->message, r->message) == NULL)
    g_error ("%s: the message '%s' does not say '%s'", r->name, error->message, r->message);
}

/* The deepseek2 demo of spec (arch set here) written to a fresh folder
 * and opened; its dimensions into d. */
static QbModel *
open_demo (QbDemoModelSpec *spec, QbDemoModelDims *d)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "ds.gguf", NULL);
  g_autoptr(GError) error = NULL;
  QbModel *model;

  spec->arch = "deepseek2";
  qb_demo_model_spec_dims (spec, d);
  g_assert_true (qb_demo_model_write (spec, path, NULL, NULL, &error));
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  return model;
}

/* The unedited demo models load with the sizes they were written with. */
static void
test_params (void)
{
  g_autoptr(QbModel) model = NULL;
  g_autoptr(GError) error = NULL;
  QbDemoModelSpec spec;
  QbDemoModelDims d;
  const QbLlamaParams *p;
  QbLlama *llama;

  qb_demo_model_spec_init (&spec);
  spec.sigmoid = TRUE;
  spec.n_group = 4;
  spec.topk_group = 2;
  model = open_demo (&spec, &d);
  g_assert_cmpuint (qb_model_get_arch (model)->n_ff_shexp, ==, d.n_ff_exp);
  llama = qb_llama_new (model, &error);
  g_assert_no_error (error);
  p = qb_llama_get_params (llama);
  g_assert_cmpuint (p->kv_lora_rank, ==, d.kv_lora_rank);
  g_assert_cmpuint (p->q_lora_rank, ==, d.q_lora_rank);
  g_assert_cmpuint (p->head_dim, ==, d.head_k);
  g_assert_cmpuint (p->head_dim_v, ==, d.head_v);
  g_assert_cmpuint (p->n_rot, ==, d.n_rot);
  g_assert_cmpuint (p->n_layer_dense_lead, ==, 1);
  g_assert_cmpuint (p->n_ff, ==, d.n_ff);
  g_assert_cmpuint (p->n_ff_shexp, ==, d.n_ff_exp);
  g_assert_cmpint (p->moe_gating, ==, QB_MOE_GATING_SIGMOID);
  g_assert_true (p->moe_norm_topk);
  g_assert_cmpfloat (p->expert_weights_scale, ==, 2.5f);
  g_assert_cmpuint (p->n_group, ==, 4);
  g_assert_cmpuint (p->topk_group, ==, 2);
  g_assert_cmpuint (p->group_top, ==, 2);
  g_assert_cmpint (p->rope_style, ==, QB_ROPE_NORM);
  g_assert_cmpfloat_with_epsilon (p->attn_scale, 1 / sqrt ((double) d.head_k), 1e-7);
  qb_llama_free (llama);
}

/* Calibration sees every product of the latent attention: attn_q_a and
 * attn_kv_a_mqa read the attention norm's output (one importance),
 * attn_q_b the normed low-rank Q and attn_kv_b the normed compressed KV,
 * each of its own width. */
static void
test_imatrix (void)
{
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbLlama) llama = NULL;
  g_autoptr(GError) error = NULL;
  QbActivationStats *stats;
  g_autoptr(QbImatrix) im = NULL;
  QbDemoModelSpec spec;
  QbDemoModelDims d;
  const float *qa, *kva, *qb, *kvb;
  guint n_qa, n_kva, n_qb, n_kvb;

  qb_demo_model_spec_init (&spec);
  spec.n_layer = 2;
  model = open_demo (&spec, &d);
  llama = qb_llama_new (model, &error);
  g_assert_no_error (error);
  stats = qb_test_activation_stats (llama, 64, 2);
  im = qb_activation_stats_get_imatrix (stats, FALSE);
  qa = qb_imatrix_get (im, "blk.1.attn_q_a.weight", &n_qa);
  kva = qb_imatrix_get (im, "blk.1.attn_kv_a_mqa.weight", &n_kva);
  qb = qb_imatrix_get (im, "blk.1.attn_q_b.weight", &n_qb);
  kvb = qb_imatrix_get (im, "blk.1.attn_kv_b.weight", &n_kvb);
  g_assert_true (qa && kva && qb && kvb);
  g_assert_cmpuint (n_qa, ==, d.n_embd);
  g_assert_cmpuint (n_kva, ==, d.n_embd);
  g_assert_cmpuint (n_qb, ==, d.q_lora_rank);
  g_assert_cmpuint (n_kvb, ==, d.kv_lora_rank);
  g_assert_cmpmem (qa, sizeof (float) * n_qa, kva, sizeof (float) * n_kva);
  g_assert_true (memcmp (qb, kvb, sizeof (float) * MIN (n_qb, n_kvb)) != 0);
  for (guint i = 0; i < n_qb; i++)
    g_assert_cmpfloat (qb[i], >, 0);
  qb_activation_stats_free (stats);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  refusal_dir = qb_test_tmpdir ();
  for (gsize i = 0; i < G_N_ELEMENTS (route_cases); i++)
    {
      g_autofree char *name = g_strdup_printf ("/deepseek/routing/%s", route_cases[i].name);
      g_test_add_data_func (name, &route_cases[i], test_routing);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (refusals); i++)
    {
      g_autofree char *name = g_strdup_printf ("/deepseek/refused/%s", refusals[i].name);
      g_test_add_data_func (name, &refusals[i], test_refused);
    }
  g_test_add_func ("/deepseek/params", test_params);
  g_test_add_func ("/deepseek/imatrix", test_imatrix);
  status = g_test_run ();
  g_free (refusal_dir);
  return status;
}
