/* SPDX-License-Identifier: MIT */
/* test-plan.c — plan rules, precedence, fallbacks, presets, JSON. */
#include <string.h>

#include "qb-model.h"
#include "qb-plan.h"
#include "qb-test-model.h"
#include "qb-test-util.h"

typedef struct {
  char    *dir;
  char    *llama;      /* 8 layers, n_embd 256, GQA 4, separate output */
  char    *tied;       /* the same without output.weight */
  QbModel *model;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  QbTestLlama spec = { .n_layer = 8, .n_embd = 256, .n_ff = 512, .n_vocab = 512,
                       .n_head = 8, .n_head_kv = 2, .dtype = QB_DTYPE_F16, .seed = 7 };
  g_autoptr(GError) error = NULL;

  f->dir = qb_test_tmpdir ();
  f->llama = qb_test_write_llama (f->dir, "llama.gguf", &spec);
  spec.tied = TRUE;
  f->tied = qb_test_write_llama (f->dir, "tied.gguf", &spec);
  f->model = qb_model_open (f->llama, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->model);
  g_free (f->llama);
  g_free (f->tied);
  g_free (f->dir);
}

static const QbTensorChoice *
choice_for (QbModel *model, const QbPlanResolution *res, const char *name)
{
  guint index;

  g_assert_nonnull (qb_model_find_tensor (model, name, &index));
  return &res->choices[index];
}

static const char *
format_of (QbModel *model, const QbPlanResolution *res, const char *name)
{
  const QbTensorChoice *c = choice_for (model, res, name);
  return c->format ? c->format->name : "keep";
}

/* llama.cpp's use_more_bits, written out for n = 8: layers 0, 3, 6, 7. */
static const gboolean more_bits_8[8] = { TRUE, FALSE, FALSE, TRUE, FALSE, FALSE, TRUE, TRUE };

static void
test_preset_q4_k_m (Fixture *f, gconstpointer data)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbPlanResolution) res = NULL;
  g_autoptr(GError) error = NULL;

  qb_plan_set_preset (plan, "q4_k_m");
  g_assert_cmpstr (qb_plan_get_preset (plan), ==, "Q4_K_M");
  res = qb_plan_resolve (plan, f->model, &error);
  g_assert_no_error (error);

  g_assert_cmpstr (format_of (f->model, res, "token_embd.weight"), ==, "Q4_K");
  g_assert_cmpstr (format_of (f->model, res, "output.weight"), ==, "Q6_K");
  g_assert_cmpstr (format_of (f->model, res, "output_norm.weight"), ==, "keep");
  for (guint l = 0; l < 8; l++)
    {
      g_autofree char *v = g_strdup_printf ("blk.%u.attn_v.weight", l);
      g_autofree char *down = g_strdup_printf ("blk.%u.ffn_down.weight", l);
      g_autofree char *q = g_strdup_printf ("blk.%u.attn_q.weight", l);
      g_autofree char *norm = g_strdup_printf ("blk.%u.attn_norm.weight", l);
      const char *bumped = more_bits_8[l] ? "Q6_K" : "Q4_K";

      g_assert_cmpstr (format_of (f->model, res, v), ==, bumped);
      g_assert_cmpstr (format_of (f->model, res, down), ==, bumped);
      g_assert_cmpstr (format_of (f->model, res, q), ==, "Q4_K");
      g_assert_cmpstr (format_of (f->model, res, norm), ==, "keep");
      g_assert_cmpstr (choice_for (f->model, res, q)->source, ==, "preset Q4_K_M");
    }
  g_assert_cmpuint (res->n_fallbacks, ==, 0);
}

static void
test_preset_q3_q5 (Fixture *f, gconstpointer data)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(GError) error = NULL;

  qb_plan_set_preset (plan, "Q3_K_M");
  {
    g_autoptr(QbPlanResolution) res = qb_plan_resolve (plan, f->model, &error);
    g_assert_no_error (error);
    for (guint l = 0; l < 8; l++)
      {
        g_autofree char *v = g_strdup_printf ("blk.%u.attn_v.weight", l);
        g_autofree char *down = g_strdup_printf ("blk.%u.ffn_down.weight", l);
        g_autofree char *o = g_strdup_printf ("blk.%u.attn_output.weight", l);
        g_autofree char *up = g_strdup_printf ("blk.%u.ffn_up.weight", l);
        /* attn_v: Q5_K in the first two layers; ffn_down: Q5_K in the first
         * 8/16 = 0 layers, else Q4_K; attn_output Q4_K. */
        g_assert_cmpstr (format_of (f->model, res, v), ==, l < 2 ? "Q5_K" : "Q4_K");
        g_assert_cmpstr (format_of (f->model, res, down), ==, "Q4_K");
        g_assert_cmpstr (format_of (f->model, res, o), ==, "Q4_K");
        g_assert_cmpstr (format_of (f->model, res, up), ==, "Q3_K");
      }
    g_assert_cmpstr (format_of (f->model, res, "output.weight"), ==, "Q6_K");
  }

  qb_plan_set_preset (plan, "Q5_K_M");
  {
    g_autoptr(QbPlanResolution) res = qb_plan_resolve (plan, f->model, &error);
    g_assert_no_error (error);
    for (guint l = 0; l < 8; l++)
      {
        g_autofree char *v = g_strdup_printf ("blk.%u.attn_v.weight", l);
        g_autofree char *gate = g_strdup_printf ("blk.%u.ffn_gate.weight", l);
        g_assert_cmpstr (format_of (f->model, res, v), ==, more_bits_8[l] ? "Q6_K" : "Q5_K");
        g_assert_cmpstr (format_of (f->model, res, gate), ==, "Q5_K");
      }
  }

  /* GQA 4: IQ4_NL raises every attn_v to Q5_K, and the first 8/8 = 1
   * ffn_down too. */
  qb_plan_set_preset (plan, "IQ4_NL");
  {
    g_autoptr(QbPlanResolution) res = qb_plan_resolve (plan, f->model, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (format_of (f->model, res, "blk.5.attn_v.weight"), ==, "Q5_K");
    g_assert_cmpstr (format_of (f->model, res, "blk.0.ffn_down.weight"), ==, "Q5_K");
    g_assert_cmpstr (format_of (f->model, res, "blk.1.ffn_down.weight"), ==, "IQ4_NL");
  }

  /* Simple presets: one type, output Q6_K except for Q8_0. */
  qb_plan_set_preset (plan, "Q4_0");
  {
    g_autoptr(QbPlanResolution) res = qb_plan_resolve (plan, f->model, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (format_of (f->model, res, "blk.3.attn_v.weight"), ==, "Q4_0");
    g_assert_cmpstr (format_of (f->model, res, "output.weight"), ==, "Q6_K");
  }
  qb_plan_set_preset (plan, "Q8_0");
  {
    g_autoptr(QbPlanResolution) res = qb_plan_resolve (plan, f->model, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (format_of (f->model, res, "output.weight"), ==, "Q8_0");
    g_assert_cmpstr (format_of (f->model, res, "token_embd.weight"), ==, "Q8_0");
  }
}

static void
test_preset_tied (Fixture *f, gconstpointer data)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbModel) tied = NULL;
  g_autoptr(QbPlanResolution) res = NULL;
  g_autoptr(GError) error = NULL;

  tied = qb_model_open (f->tied, &error);
  g_assert_no_error (error);
  qb_plan_set_preset (plan, "Q4_K_M");
  res = qb_plan_resolve (plan, tied, &error);
  g_assert_no_error (error);
  /* Without an output matrix the embeddings take the output's type. */
  g_assert_cmpstr (format_of (tied, res, "token_embd.weight"), ==, "Q6_K");
}

static void
test_stories_fallbacks (void)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbPlanResolution) res = NULL;
  g_autoptr(GError) error = NULL;
  guint n_down = 0;

  if (path == NULL)
    return;
  model = qb_model_open (path, &error);
  g_assert_no_error (error);

  qb_plan_set_default_format (plan, "Q4_0");
  res = qb_plan_resolve (plan, model, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < res->n_tensors; i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      const QbTensorChoice *c = &res->choices[i];

      if (t->role == QB_ROLE_FFN_DOWN)
        {
          /* 172 values per row: no 32-block fits; the reason says so. */
          n_down++;
          g_assert_cmpint (t->ne[0], ==, 172);
          g_assert_nonnull (c->format);
          g_assert_cmpstr (c->requested->name, ==, "Q4_0");
          g_assert_true (c->format != c->requested);
          g_assert_true (qb_format_fits (c->format, 172));
          g_assert_nonnull (c->fallback_reason);
          g_assert_nonnull (strstr (c->fallback_reason, "172"));
          g_assert_nonnull (strstr (c->fallback_reason, c->format->name));
        }
      else if (t->n_dims == 1)
        {
          g_assert_null (c->format);
          g_assert_cmpstr (c->source, ==, "1-D");
        }
      else
        {
          g_assert_true (c->format == c->requested);
          g_assert_null (c->fallback_reason);
        }
    }
  g_assert_cmpuint (n_down, ==, 5);
  g_assert_cmpuint (res->n_fallbacks, ==, 5);

  /* Q4_K_M on 64-wide rows: K-quants (256) never fit and fall back as in
   * llama.cpp (Q4_K -> Q5_0, Q6_K -> Q8_0; 172 -> F16). */
  qb_plan_set_preset (plan, "Q4_K_M");
  g_clear_pointer (&res, qb_plan_resolution_free);
  res = qb_plan_resolve (plan, model, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (format_of (model, res, "blk.1.attn_q.weight"), ==, "Q5_0");
  g_assert_cmpstr (format_of (model, res, "blk.2.attn_v.weight"), ==, "Q8_0");
  g_assert_cmpstr (format_of (model, res, "blk.1.attn_v.weight"), ==, "Q5_0");
  g_assert_cmpstr (format_of (model, res, "blk.1.ffn_down.weight"), ==, "F16");
  g_assert_cmpstr (choice_for (model, res, "blk.1.ffn_down.weight")->requested->name, ==, "Q4_K");
}

static void
test_precedence (Fixture *f, gconstpointer data)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbPlanResolution) res = NULL;
  g_autoptr(GError) error = NULL;

  qb_plan_set_default_format (plan, "Q8_0");
  qb_plan_set_preset (plan, "Q4_K_M");
  g_assert_true (qb_plan_insert_rule (plan, -1, "*.attn_q.weight", QB_RULE_GLOB, "Q5_0", NULL, &error));
  g_assert_true (qb_plan_insert_rule (plan, -1, "blk\\.[0-3]\\.attn_[qkv]\\.", QB_RULE_REGEX, "Q4_1", "search", &error));
  /* keep_1d beats a rule on a 1-D tensor (inserted first: the regex
   * above matches it too); the rule applies once keep_1d is off. */
  g_assert_true (qb_plan_insert_rule (plan, 0, "blk.0.attn_norm.weight", QB_RULE_GLOB, "F16", NULL, &error));
  qb_plan_set_override (plan, "blk.0.attn_q.weight", "Q6_K", NULL);
  res = qb_plan_resolve (plan, f->model, &error);
  g_assert_no_error (error);

  /* Override beats everything. */
  g_assert_cmpstr (format_of (f->model, res, "blk.0.attn_q.weight"), ==, "Q6_K");
  g_assert_cmpstr (choice_for (f->model, res, "blk.0.attn_q.weight")->source, ==, "override");
  /* The first matching rule wins over a later one. */
  g_assert_cmpstr (format_of (f->model, res, "blk.1.attn_q.weight"), ==, "Q5_0");
  g_assert_cmpstr (choice_for (f->model, res, "blk.1.attn_q.weight")->source, ==, "rule 2");
  g_assert_cmpstr (format_of (f->model, res, "blk.1.attn_k.weight"), ==, "Q4_1");
  g_assert_cmpstr (choice_for (f->model, res, "blk.1.attn_k.weight")->method->name, ==, "search");
  g_assert_cmpstr (choice_for (f->model, res, "blk.1.attn_q.weight")->method->name, ==, "rtn");
  /* Regexes search: blk.7 is not matched, so the preset decides. */
  g_assert_cmpstr (format_of (f->model, res, "blk.7.attn_k.weight"), ==, "Q4_K");
  g_assert_cmpstr (choice_for (f->model, res, "blk.7.attn_k.weight")->source, ==, "preset Q4_K_M");
  g_assert_cmpstr (format_of (f->model, res, "blk.0.attn_norm.weight"), ==, "keep");
  g_assert_cmpstr (choice_for (f->model, res, "blk.0.attn_norm.weight")->source, ==, "1-D");
  g_assert_cmpstr (format_of (f->model, res, "blk.1.attn_norm.weight"), ==, "keep");
  g_assert_cmpstr (choice_for (f->model, res, "blk.1.attn_norm.weight")->source, ==, "1-D");

  /* Without the preset, the default. */
  qb_plan_set_preset (plan, NULL);
  g_clear_pointer (&res, qb_plan_resolution_free);
  res = qb_plan_resolve (plan, f->model, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (format_of (f->model, res, "blk.7.attn_k.weight"), ==, "Q8_0");
  g_assert_cmpstr (choice_for (f->model, res, "blk.7.attn_k.weight")->source, ==, "default");

  /* keep_1d off: norms follow the default too. */
  qb_plan_set_keep_1d (plan, FALSE);
  g_clear_pointer (&res, qb_plan_resolution_free);
  res = qb_plan_resolve (plan, f->model, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (format_of (f->model, res, "blk.1.attn_norm.weight"), ==, "Q8_0");
  g_assert_cmpstr (format_of (f->model, res, "blk.0.attn_norm.weight"), ==, "F16");
  g_assert_cmpstr (choice_for (f->model, res, "blk.0.attn_norm.weight")->source, ==, "rule 1");

  /* Rule editing: move the regex first, then blk.1.attn_q is Q4_1. */
  qb_plan_move_rule (plan, 2, 0);
  g_assert_cmpstr (qb_plan_get_rule (plan, 0)->pattern, ==, "blk\\.[0-3]\\.attn_[qkv]\\.");
  g_assert_true (qb_plan_rule_matches (plan, 0, "blk.2.attn_v.weight"));
  g_assert_false (qb_plan_rule_matches (plan, 0, "blk.4.attn_v.weight"));
  g_assert_true (qb_plan_rule_matches (plan, 2, "blk.9.attn_q.weight"));
  g_assert_false (qb_plan_rule_matches (plan, 2, "blk.9.attn_q.weight.x"));
  g_clear_pointer (&res, qb_plan_resolution_free);
  res = qb_plan_resolve (plan, f->model, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (format_of (f->model, res, "blk.1.attn_q.weight"), ==, "Q4_1");
  qb_plan_remove_rule (plan, 0);
  g_assert_cmpuint (qb_plan_get_n_rules (plan), ==, 2);
  g_assert_cmpstr (qb_plan_get_rule (plan, 0)->pattern, ==, "blk.0.attn_norm.weight");

  /* Globs take classes ([qkv], ranges, [!…]) and match the whole name. */
  g_assert_true (qb_plan_insert_rule (plan, -1, "blk.[0-2].attn_[qk].weight", QB_RULE_GLOB, "Q8_0", NULL, &error));
  g_assert_true (qb_plan_rule_matches (plan, 2, "blk.1.attn_k.weight"));
  g_assert_true (qb_plan_rule_matches (plan, 2, "blk.0.attn_q.weight"));
  g_assert_false (qb_plan_rule_matches (plan, 2, "blk.1.attn_v.weight"));
  g_assert_false (qb_plan_rule_matches (plan, 2, "blk.3.attn_q.weight"));
  g_assert_false (qb_plan_rule_matches (plan, 2, "blk.1.attn_q.weight.x"));
  g_assert_true (qb_plan_insert_rule (plan, -1, "*.attn_[!q].weight", QB_RULE_GLOB, "Q8_0", NULL, &error));
  g_assert_true (qb_plan_rule_matches (plan, 3, "blk.5.attn_v.weight"));
  g_assert_false (qb_plan_rule_matches (plan, 3, "blk.5.attn_q.weight"));
  qb_plan_remove_rule (plan, 3);
  qb_plan_remove_rule (plan, 2);

  /* A bad regex is refused. */
  g_assert_false (qb_plan_insert_rule (plan, -1, "blk.(", QB_RULE_REGEX, "Q8_0", NULL, &error));
  g_assert_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID);
  g_assert_cmpuint (qb_plan_get_n_rules (plan), ==, 2);
}

static void
test_totals (Fixture *f, gconstpointer data)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbPlanResolution) res = NULL;
  g_autoptr(GError) error = NULL;
  guint64 orig = 0, quant = 0;
  gint64 params = 0;

  qb_plan_set_preset (plan, "Q4_K_M");
  res = qb_plan_resolve (plan, f->model, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < res->n_tensors; i++)
    {
      const QbTensor *t = qb_model_get_tensor (f->model, i);
      const QbTensorChoice *c = &res->choices[i];
      guint64 expect = t->n_bytes;

      if (c->format)
        g_assert_true (qb_format_tensor_bytes (c->format, t->ne[0], qb_tensor_n_rows (t), &expect));
      g_assert_cmpuint (c->bytes, ==, expect);
      g_assert_cmpfloat_with_epsilon (c->bpw, expect * 8.0 / t->n_params, 1e-12);
      orig += t->n_bytes;
      quant += c->bytes;
      params += t->n_params;
    }
  g_assert_cmpuint (res->original_bytes, ==, orig);
  g_assert_cmpuint (res->original_bytes, ==, qb_model_get_n_bytes (f->model));
  g_assert_cmpuint (res->quantized_bytes, ==, quant);
  g_assert_cmpint (res->n_params, ==, params);
  g_assert_cmpfloat_with_epsilon (res->bpw, quant * 8.0 / params, 1e-12);
  /* Between Q4_K (4.5) and Q6_K (6.5625), closer to Q4_K. */
  g_assert_cmpfloat (res->bpw, >, 4.5);
  g_assert_cmpfloat (res->bpw, <, 5.5);
  g_assert_cmpint (qb_plan_resolution_llama_ftype (plan, f->model, res), ==, 15);
  qb_plan_set_preset (plan, NULL);
  qb_plan_set_default_format (plan, "Q5_0");
  g_clear_pointer (&res, qb_plan_resolution_free);
  res = qb_plan_resolve (plan, f->model, &error);
  g_assert_cmpint (qb_plan_resolution_llama_ftype (plan, f->model, res), ==, 8);
}

static void
count_changed (QbPlan *plan, guint *n)
{
  (*n)++;
}

static void
test_changed_signal (void)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  guint n = 0;

  g_signal_connect (plan, "changed", G_CALLBACK (count_changed), &n);
  qb_plan_set_default_format (plan, "Q4_0");
  g_assert_cmpuint (n, ==, 1);
  qb_plan_set_default_format (plan, "Q4_0");     /* no change, no signal */
  g_assert_cmpuint (n, ==, 1);
  qb_plan_set_preset (plan, "Q5_K_M");
  qb_plan_set_keep_1d (plan, FALSE);
  qb_plan_set_default_method (plan, "search");
  g_assert_cmpuint (n, ==, 4);
  g_assert_true (qb_plan_insert_rule (plan, 0, "*", QB_RULE_GLOB, "Q8_0", NULL, NULL));
  qb_plan_set_override (plan, "a", "Q8_0", NULL);
  qb_plan_set_override (plan, "a", "Q8_0", NULL);
  qb_plan_set_option (plan, "k", "v");
  qb_plan_clear_override (plan, "a");
  qb_plan_clear_override (plan, "a");
  qb_plan_remove_rule (plan, 0);
  g_assert_cmpuint (n, ==, 9);
  g_object_set (plan, "default-format", "Q6_K", NULL);
  g_assert_cmpuint (n, ==, 10);
}

static void
test_json_round_trip (void)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbPlan) back = NULL;
  g_autoptr(QbPlan) copy = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  g_autofree char *json2 = NULL;
  g_autofree char *json3 = NULL;
  const char *format, *method;

  qb_plan_set_default_format (plan, "Q5_1");
  qb_plan_set_default_method (plan, "search");
  qb_plan_set_preset (plan, "Q3_K_M");
  qb_plan_set_keep_1d (plan, FALSE);
  g_assert_true (qb_plan_insert_rule (plan, -1, "*.ffn_down.*", QB_RULE_GLOB, "Q6_K", NULL, NULL));
  g_assert_true (qb_plan_insert_rule (plan, -1, "^blk\\.(1|2)\\.", QB_RULE_REGEX, "keep", "rtn", NULL));
  qb_plan_set_override (plan, "output.weight", "Q8_0", "search");
  qb_plan_set_override (plan, "token_embd.weight", "F16", NULL);
  qb_plan_set_option (plan, "gptq.damp", "0.01");
  qb_plan_set_option (plan, "a.first", "1");

  json = qb_plan_to_json (plan);
  g_assert_nonnull (strstr (json, "\"version\" : 1"));
  back = qb_plan_new_from_json (json, &error);
  g_assert_no_error (error);
  json2 = qb_plan_to_json (back);
  g_assert_cmpstr (json, ==, json2);

  g_assert_cmpstr (qb_plan_get_default_format (back), ==, "Q5_1");
  g_assert_cmpstr (qb_plan_get_default_method (back), ==, "search");
  g_assert_cmpstr (qb_plan_get_preset (back), ==, "Q3_K_M");
  g_assert_false (qb_plan_get_keep_1d (back));
  g_assert_cmpuint (qb_plan_get_n_rules (back), ==, 2);
  g_assert_cmpint (qb_plan_get_rule (back, 1)->kind, ==, QB_RULE_REGEX);
  g_assert_cmpstr (qb_plan_get_rule (back, 1)->method, ==, "rtn");
  g_assert_null (qb_plan_get_rule (back, 0)->method);
  g_assert_true (qb_plan_get_override (back, "output.weight", &format, &method));
  g_assert_cmpstr (format, ==, "Q8_0");
  g_assert_cmpstr (method, ==, "search");
  g_assert_cmpuint (qb_plan_get_n_overrides (back), ==, 2);
  g_assert_cmpstr (qb_plan_get_override_at (back, 1, NULL, NULL), ==, "token_embd.weight");
  g_assert_cmpstr (qb_plan_get_option (back, "gptq.damp"), ==, "0.01");

  copy = qb_plan_copy (plan);
  json3 = qb_plan_to_json (copy);
  g_assert_cmpstr (json, ==, json3);
}

static void
expect_refused (const char *json, int code, const char *fragment)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbPlan) plan = qb_plan_new_from_json (json, &error);

  g_assert_null (plan);
  g_assert_error (error, QB_PLAN_ERROR, code);
  if (fragment && strstr (error->message, fragment) == NULL)
    g_error ("message '%s' does not mention '%s'", error->message, fragment);
}

static void
test_json_refusals (void)
{
  expect_refused ("{\"version\": 2, \"default_format\": \"Q4_0\"}", QB_PLAN_ERROR_VERSION, "newer");
  expect_refused ("{\"version\": 99}", QB_PLAN_ERROR_VERSION, "99");
  expect_refused ("{\"default_format\": \"Q4_0\"}", QB_PLAN_ERROR_INVALID, "version");
  expect_refused ("{\"version\": \"1\"}", QB_PLAN_ERROR_INVALID, "version");
  expect_refused ("{\"version\": 0}", QB_PLAN_ERROR_INVALID, "version");
  expect_refused ("[1, 2]", QB_PLAN_ERROR_INVALID, "object");
  expect_refused ("{\"version\": 1,", QB_PLAN_ERROR_INVALID, "JSON");
  expect_refused ("{\"version\": 1, \"default_format\": \"Q9_Z\"}", QB_PLAN_ERROR_INVALID, "Q9_Z");
  expect_refused ("{\"version\": 1, \"default_method\": \"magic\"}", QB_PLAN_ERROR_INVALID, "magic");
  expect_refused ("{\"version\": 1, \"preset\": \"Q7_K_Z\"}", QB_PLAN_ERROR_INVALID, "Q7_K_Z");
  expect_refused ("{\"version\": 1, \"rules\": [{\"pattern\": \"(\", \"kind\": \"regex\", \"format\": \"Q4_0\"}]}",
                  QB_PLAN_ERROR_INVALID, "regular expression");
  expect_refused ("{\"version\": 1, \"rules\": [{\"pattern\": \"*\", \"kind\": \"fuzzy\", \"format\": \"Q4_0\"}]}",
                  QB_PLAN_ERROR_INVALID, "fuzzy");
  expect_refused ("{\"version\": 1, \"rules\": [{\"pattern\": \"*\"}]}", QB_PLAN_ERROR_INVALID, "rules[0].format");
  expect_refused ("{\"version\": 1, \"rules\": {}}", QB_PLAN_ERROR_INVALID, "rules");
  expect_refused ("{\"version\": 1, \"overrides\": [{\"tensor\": \"a\", \"format\": \"Q4_0\"},"
                  "{\"tensor\": \"a\", \"format\": \"Q8_0\"}]}", QB_PLAN_ERROR_INVALID, "second");
  expect_refused ("{\"version\": 1, \"keep_1d\": 1}", QB_PLAN_ERROR_INVALID, "keep_1d");
  expect_refused ("{\"version\": 1, \"options\": {\"a\": 1}}", QB_PLAN_ERROR_INVALID, "options.a");

  /* Unknown members are ignored; a minimal plan gets the defaults. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(QbPlan) plan = qb_plan_new_from_json ("{\"version\": 1, \"future\": [1]}", &error);
    g_assert_no_error (error);
    g_assert_cmpstr (qb_plan_get_default_format (plan), ==, "Q8_0");
    g_assert_true (qb_plan_get_keep_1d (plan));
  }
}

static void
test_resolve_errors (Fixture *f, gconstpointer data)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(GError) error = NULL;
  QbPlanResolution *res;

  qb_plan_set_default_format (plan, "NOT_A_FORMAT");
  res = qb_plan_resolve (plan, f->model, &error);
  g_assert_null (res);
  g_assert_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "NOT_A_FORMAT"));
  g_clear_error (&error);

  qb_plan_set_default_format (plan, "Q8_0");
  qb_plan_set_override (plan, "blk.0.attn_q.weight", "Q8_0", "nonesuch");
  res = qb_plan_resolve (plan, f->model, &error);
  g_assert_null (res);
  g_assert_nonnull (strstr (error->message, "nonesuch"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define FIX(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  FIX ("/plan/preset/q4_k_m", test_preset_q4_k_m);
  FIX ("/plan/preset/q3_q5_iq4_simple", test_preset_q3_q5);
  FIX ("/plan/preset/tied-embeddings", test_preset_tied);
  FIX ("/plan/precedence", test_precedence);
  FIX ("/plan/totals", test_totals);
  FIX ("/plan/resolve-errors", test_resolve_errors);
#undef FIX
  g_test_add_func ("/plan/stories260K-fallbacks", test_stories_fallbacks);
  g_test_add_func ("/plan/changed-signal", test_changed_signal);
  g_test_add_func ("/plan/json/round-trip", test_json_round_trip);
  g_test_add_func ("/plan/json/refusals", test_json_refusals);
  return g_test_run ();
}
