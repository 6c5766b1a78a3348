/* SPDX-License-Identifier: MIT */
/* test-cli-allocate.c — automatic plans from the command line
 * (--target-bpw / --target-size / --target-kld), and that such a plan
 * exports to a GGUF file that reopens with the chosen ggml types. */
#include <string.h>

#include "qb-dtype.h"
#include "qb-model.h"
#include "qb-plan.h"
#include "qb-test-model.h"
#include "qb-test-util.h"

#define GGML_LADDER "Q2_K,Q3_K,Q4_K,Q5_K,Q6_K,Q8_0,F16"

typedef struct {
  char *dir;
  char *model;
} Fixture;

static gboolean
fixture_open (Fixture *f)
{
  g_autofree char *exe = qb_test_quantbench_path ();
  if (exe == NULL)
    return FALSE;
  QbTestLlama spec = { .n_layer = 2, .n_embd = 256, .n_ff = 512, .n_vocab = 256,
                       .n_head = 4, .n_head_kv = 4, .dtype = QB_DTYPE_F32, .seed = 3 };
  f->dir = qb_test_tmpdir ();
  f->model = qb_test_write_llama (f->dir, "model.gguf", &spec);
  return TRUE;
}

static void
fixture_close (Fixture *f)
{
  g_free (f->model);
  g_free (f->dir);
}

static QbPlanResolution *
resolve_saved (const char *plan_file, QbModel *model)
{
  g_autofree char *json = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true (g_file_get_contents (plan_file, &json, NULL, &error));
  g_autoptr(QbPlan) plan = qb_plan_new_from_json (json, &error);
  g_assert_no_error (error);
  g_assert_nonnull (qb_plan_get_option (plan, "allocate.predicted_kld"));
  g_assert_cmpstr (qb_plan_get_option (plan, "allocate.source"), ==, "weight proxies");
  QbPlanResolution *res = qb_plan_resolve (plan, model, &error);
  g_assert_no_error (error);
  return res;
}

/* plan --target-bpw: within the budget, near it, more than one format,
 * says where its costs come from; the same plan quantized to GGUF reopens
 * with exactly the chosen types. */
static void
test_target_bpw_exports (void)
{
  Fixture f = { 0 };
  if (!fixture_open (&f))
    return;
  g_autofree char *plan_file = g_build_filename (f.dir, "plan.json", NULL);
  g_autofree char *gguf = g_build_filename (f.dir, "auto.gguf", NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;

  const char *plan_args[] = { "plan", f.model, "--target-bpw", "4.5", "--candidates", GGML_LADDER,
                              "--save", plan_file, NULL };
  g_assert_cmpint (qb_test_quantbench_argv (plan_args, NULL, &out, &err), ==, 0);
  g_assert_nonnull (strstr (out, "automatic plan: target 4.5 bits per weight"));
  g_assert_nonnull (strstr (out, "predicted KLD"));
  g_assert_nonnull (strstr (out, "weight proxies (no --study)"));

  g_autoptr(QbModel) model = qb_model_open (f.model, &error);
  g_assert_no_error (error);
  g_autoptr(QbPlanResolution) res = resolve_saved (plan_file, model);
  g_assert_cmpfloat (res->bpw, <=, 4.5);
  g_assert_cmpfloat (res->bpw, >, 4.2);
  g_autoptr(GHashTable) used = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < res->n_tensors; i++)
    if (res->choices[i].format)
      g_hash_table_add (used, (gpointer) res->choices[i].format->name);
  g_assert_cmpuint (g_hash_table_size (used), >=, 2);

  const char *q_args[] = { "quantize", f.model, "--plan", plan_file, "--no-save", "--no-metrics",
                           "-o", gguf, NULL };
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (qb_test_quantbench_argv (q_args, NULL, &out, &err), ==, 0);
  g_autoptr(QbModel) exported = qb_model_open (gguf, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qb_model_get_n_tensors (exported), ==, res->n_tensors);
  for (guint i = 0; i < res->n_tensors; i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      const QbTensor *e = qb_model_find_tensor (exported, t->name, NULL);
      g_assert_nonnull (e);
      QbDType want = res->choices[i].format ? res->choices[i].format->dtype : t->dtype;
      g_assert_cmpstr (qb_dtype_name (e->dtype), ==, qb_dtype_name (want));
    }

  /* quantize --target-bpw directly: the same choice, the same file types. */
  g_autofree char *gguf2 = g_build_filename (f.dir, "auto2.gguf", NULL);
  const char *q2_args[] = { "quantize", f.model, "--target-bpw", "4.5", "--candidates", GGML_LADDER,
                            "--no-save", "--no-metrics", "-o", gguf2, NULL };
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (qb_test_quantbench_argv (q2_args, NULL, &out, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "automatic plan"));
  g_autoptr(QbModel) exported2 = qb_model_open (gguf2, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < res->n_tensors; i++)
    g_assert_cmpint (qb_model_get_tensor (exported2, i)->dtype, ==,
                     qb_model_find_tensor (exported, qb_model_get_tensor (exported2, i)->name, NULL)->dtype);
  fixture_close (&f);
}

/* --target-kld gives the smallest plan under the predicted KLD; a looser
 * KLD never gives a bigger plan. */
static void
test_target_kld (void)
{
  Fixture f = { 0 };
  if (!fixture_open (&f))
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (f.model, &error);
  double last_bpw = 100;
  const char *targets[] = { "0.0001", "0.001", "0.01" };
  for (guint i = 0; i < G_N_ELEMENTS (targets); i++)
    {
      g_autofree char *plan_file = g_strdup_printf ("%s/kld%u.json", f.dir, i);
      g_autofree char *out = NULL;
      const char *args[] = { "plan", f.model, "--target-kld", targets[i], "--candidates",
                             GGML_LADDER, "--save", plan_file, NULL };
      g_assert_cmpint (qb_test_quantbench_argv (args, NULL, &out, NULL), ==, 0);
      g_autoptr(QbPlanResolution) res = resolve_saved (plan_file, model);
      g_assert_cmpfloat (res->bpw, <=, last_bpw);
      last_bpw = res->bpw;
    }
  fixture_close (&f);
}

static void
expect_failure (const char * const *args, const char *message)
{
  g_autofree char *err = NULL;
  int status = qb_test_quantbench_argv (args, NULL, NULL, &err);
  g_assert_cmpint (status, !=, 0);
  g_assert_cmpint (status, !=, -1);
  if (strstr (err, message) == NULL)
    g_error ("expected '%s' in: %s", message, err);
}

static void
test_errors (void)
{
  Fixture f = { 0 };
  if (!fixture_open (&f))
    return;
  const char *small[] = { "plan", f.model, "--target-bpw", "1", NULL };
  expect_failure (small, "smallest plan");
  const char *two[] = { "plan", f.model, "--target-bpw", "4", "--target-kld", "0.1", NULL };
  expect_failure (two, "give one of");
  const char *bad[] = { "plan", f.model, "--target-size", "12Q", NULL };
  expect_failure (bad, "--target-size");
  const char *cand[] = { "plan", f.model, "--target-bpw", "5", "--candidates", "Q4_K,Q9_X", NULL };
  expect_failure (cand, "Q9_X");
  const char *alone[] = { "plan", f.model, "--candidates", "Q4_K", NULL };
  expect_failure (alone, "need --target");
  fixture_close (&f);
}

/* The bits per weight of the format a resolved plan gives a tensor. */
static double
chosen_bpw (QbModel *model, const QbPlanResolution *res, const char *name, const char **format)
{
  for (guint i = 0; i < res->n_tensors; i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      if (strcmp (t->name, name) != 0)
        continue;
      g_assert_nonnull (res->choices[i].format);
      *format = res->choices[i].format->name;
      return res->choices[i].bpw;
    }
  g_error ("%s not in the model", name);
}

static QbPlanResolution *
plan_with (Fixture *f, QbModel *model, const char *name, const char * const *extra)
{
  g_autofree char *plan_file = g_strdup_printf ("%s/%s.json", f->dir, name);
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  const char *head[] = { "plan", f->model, "--target-bpw", "4.5", "--candidates", GGML_LADDER,
                         "--save", plan_file };
  for (guint i = 0; i < G_N_ELEMENTS (head); i++)
    g_ptr_array_add (args, (gpointer) head[i]);
  for (guint i = 0; extra[i]; i++)
    g_ptr_array_add (args, (gpointer) extra[i]);
  g_ptr_array_add (args, NULL);
  g_autofree char *out = NULL, *err = NULL;
  if (qb_test_quantbench_argv ((const char * const *) args->pdata, NULL, &out, &err) != 0)
    g_error ("plan %s failed: %s", name, err);
  QbPlanResolution *res = resolve_saved (plan_file, model);
  g_assert_cmpfloat (res->bpw, <=, 4.5);
  return res;
}

/* --allow ROLE=TYPE,TYPE and --embedding-floor N: without them the 4.5-bpw
 * plan gives embeddings and attn_v few bits; with them every attn_v takes
 * an allowed type and token_embd/output at least the floor. */
static void
test_constraints (void)
{
  Fixture f = { 0 };
  if (!fixture_open (&f))
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (f.model, &error);
  g_assert_no_error (error);
  const char *fmt = NULL;

  const char *none[] = { NULL };
  g_autoptr(QbPlanResolution) free_res = plan_with (&f, model, "free", none);
  g_assert_cmpfloat (chosen_bpw (model, free_res, "token_embd.weight", &fmt), <, 6.0);
  g_assert_cmpstr (fmt, !=, "Q8_0");
  chosen_bpw (model, free_res, "blk.0.attn_v.weight", &fmt);
  g_assert_cmpstr (fmt, !=, "Q8_0");

  const char *extra[] = { "--allow", "attn_v=Q8_0", "--allow", "ffn_down=Q2_K,Q3_K",
                          "--embedding-floor", "6", NULL };
  g_autoptr(QbPlanResolution) res = plan_with (&f, model, "constrained", extra);
  g_assert_cmpfloat (chosen_bpw (model, res, "token_embd.weight", &fmt), >=, 6.0);
  g_assert_cmpfloat (chosen_bpw (model, res, "output.weight", &fmt), >=, 6.0);
  for (guint l = 0; l < 2; l++)
    {
      g_autofree char *v = g_strdup_printf ("blk.%u.attn_v.weight", l);
      g_autofree char *down = g_strdup_printf ("blk.%u.ffn_down.weight", l);
      chosen_bpw (model, res, v, &fmt);
      g_assert_cmpstr (fmt, ==, "Q8_0");
      chosen_bpw (model, res, down, &fmt);
      g_assert_true (g_str_equal (fmt, "Q2_K") || g_str_equal (fmt, "Q3_K"));
    }

  const char *role[] = { "plan", f.model, "--target-bpw", "5", "--allow", "attn_x=Q4_K", NULL };
  expect_failure (role, "unknown role");
  const char *form[] = { "plan", f.model, "--target-bpw", "5", "--allow", "attn_v", NULL };
  expect_failure (form, "expected ROLE=TYPE");
  const char *type[] = { "plan", f.model, "--target-bpw", "5", "--allow", "attn_v=Q9_X", NULL };
  expect_failure (type, "Q9_X");
  const char *floor_[] = { "plan", f.model, "--target-bpw", "5", "--embedding-floor", "six", NULL };
  expect_failure (floor_, "--embedding-floor");
  const char *alone[] = { "plan", f.model, "--allow", "attn_v=Q4_K", NULL };
  expect_failure (alone, "need --target");
  const char *tight[] = { "plan", f.model, "--target-bpw", "3", "--candidates", GGML_LADDER,
                          "--allow", "ffn_up=F16", NULL };
  expect_failure (tight, "smallest plan");
  fixture_close (&f);
}

/* quantize --target-bpw -o X.gguf with the default ladder: every tensor
 * that a quantized ggml type fits is stored in a ggml type (none as F16
 * for want of one), and the file follows the rules llama.cpp's loader
 * checks: rows a multiple of the type's block, tensor data at multiples
 * of the alignment (32).  Rows of 64 (as stories260K's) fit 32-blocks,
 * where INT4_CH would otherwise often win; ffn_down's rows of 172 fit no
 * ggml block: it may take INTn_CH, stored as F16.  (Loaded in llama.cpp by hand: see
 * README, "Automatic plans".) */
static void
test_gguf_types (void)
{
  g_autofree char *exe = qb_test_quantbench_path ();
  if (exe == NULL)
    return;
  QbTestLlama spec = { .n_layer = 2, .n_embd = 64, .n_ff = 172, .n_vocab = 256,
                       .n_head = 4, .n_head_kv = 4, .dtype = QB_DTYPE_F32, .seed = 4 };
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = qb_test_write_llama (dir, "model.gguf", &spec);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_assert_no_error (error);
  const char *budgets[] = { "5", "6", "7" };
  for (guint b = 0; b < G_N_ELEMENTS (budgets); b++)
    {
      g_autofree char *gguf = g_strdup_printf ("%s/auto%u.gguf", dir, b);
      g_autofree char *out = NULL, *err = NULL;
      const char *args[] = { "quantize", path, "--target-bpw", budgets[b], "--no-save",
                             "--no-metrics", "-o", gguf, NULL };
      if (qb_test_quantbench_argv (args, NULL, &out, &err) != 0)
        g_error ("quantize --target-bpw %s: %s", budgets[b], err);
      g_assert_nonnull (strstr (out, "formats with a ggml type"));
      g_autoptr(QbModel) exported = qb_model_open (gguf, &error);
      g_assert_no_error (error);
      const char *base = qb_model_get_tensor (exported, 0)->data;
      guint n_quantized = 0;
      for (guint i = 0; i < qb_model_get_n_tensors (exported); i++)
        {
          const QbTensor *e = qb_model_get_tensor (exported, i);
          const QbDTypeInfo *info = qb_dtype_info (e->dtype);
          g_assert_nonnull (info);
          g_assert_true (info->is_ggml);
          g_assert_cmpint (e->ne[0] % info->block_size, ==, 0);
          g_assert_cmpuint (((const char *) e->data - base) % 32, ==, 0);
          if (e->ne[1] > 1 && e->ne[0] % 32 == 0)
            {
              /* a quantized ggml type fits: it was chosen (never F16 for want of one) */
              g_assert_cmpint (e->dtype, !=, QB_DTYPE_F16);
              g_assert_cmpint (e->dtype, !=, QB_DTYPE_F32);
              n_quantized++;
            }
        }
      g_assert_cmpuint (n_quantized, >, 0);
    }
}

/* eval --target-bpw on stories260K: the automatic plan is evaluated. */
static void
test_eval (void)
{
  g_autofree char *model = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *text = model ? qb_test_shared_path ("text/tinystories-val.txt") : NULL;
  g_autofree char *exe = text ? qb_test_quantbench_path () : NULL;
  if (exe == NULL)
    return;
  g_autofree char *out = NULL;
  const char *args[] = { "eval", model, "--text", text, "--ctx", "64", "--chunks", "4", "--kld",
                         "--no-cache", "--target-bpw", "6", NULL };
  g_assert_cmpint (qb_test_quantbench_argv (args, NULL, &out, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "automatic plan: target 6 bits per weight"));
  g_assert_nonnull (strstr (out, "mean KLD"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli-allocate/target-bpw-exports", test_target_bpw_exports);
  g_test_add_func ("/cli-allocate/target-kld", test_target_kld);
  g_test_add_func ("/cli-allocate/errors", test_errors);
  g_test_add_func ("/cli-allocate/constraints", test_constraints);
  g_test_add_func ("/cli-allocate/gguf-types", test_gguf_types);
  g_test_add_func ("/cli-allocate/eval", test_eval);
  return g_test_run ();
}
