/* SPDX-License-Identifier: MIT */
/* test-allocation-plan.c — the allocation's constraints a plan carries in
 * its options: formats allowed per role and the embedding floor, read by
 * qb_alloc_constraints_from_plan, kept through JSON, respected by the
 * allocator. */
#include <math.h>
#include <string.h>

#include "qb-allocation-plan.h"
#include "qb-test-model.h"

static QbCostTable *
proxy_table (QbModel *model)
{
  g_autofree char *list = g_strjoinv (",", (char **) qb_cost_default_candidates ());
  guint n = 0;
  g_autoptr(GError) error = NULL;
  g_autofree const QbFormat **ladder = qb_cost_parse_candidates (list, &n, &error);
  g_assert_no_error (error);
  QbCostTable *table = qb_cost_table_new_proxy (model, ladder, n, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return table;
}

static const char *
chosen (const QbCostTable *table, const QbAllocation *a, const char *name)
{
  for (guint i = 0; i < table->n_tensors; i++)
    if (g_str_equal (table->tensors[i].name, name))
      return table->tensors[i].candidates[a->choice[i]].format->name;
  g_assert_not_reached ();
}

static void
test_plan_constraints (void)
{
  QbTestLlama spec = { .n_layer = 2, .n_embd = 256, .n_ff = 512, .n_vocab = 256,
                       .n_head = 4, .n_head_kv = 4, .dtype = QB_DTYPE_F32, .seed = 3 };
  QbTestModelFixture fx;
  qb_test_model_fixture_open (&fx, &spec);
  g_autoptr(QbCostTable) table = proxy_table (fx.model);
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(GError) error = NULL;
  QbAllocBudget budget = { QB_ALLOC_TARGET_BPW, 4.0 };

  /* Without constraints, 4 bpw puts the embeddings low. */
  g_autoptr(QbAllocConstraints) none = qb_alloc_constraints_from_plan (plan, fx.model, table, &error);
  g_assert_no_error (error);
  g_autoptr(QbAllocation) free_a = qb_allocate (table, &budget, none, &error);
  g_assert_no_error (error);

  /* attn_v only Q8_0 or Q6_K; embeddings at 6 bpw at least. */
  g_assert_true (qb_plan_set_allowed_formats (plan, QB_ROLE_ATTN_V, " q8_0, Q6_K ", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (qb_plan_get_allowed_formats (plan, QB_ROLE_ATTN_V), ==, "Q8_0,Q6_K");
  qb_plan_set_embedding_floor (plan, 6.0);
  g_assert_cmpfloat (qb_plan_get_embedding_floor (plan), ==, 6.0);

  /* Through JSON, as a saved plan or an experiment carries them. */
  g_autofree char *json = qb_plan_to_json (plan);
  g_autoptr(QbPlan) back = qb_plan_new_from_json (json, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (qb_plan_get_allowed_formats (back, QB_ROLE_ATTN_V), ==, "Q8_0,Q6_K");
  g_assert_cmpfloat (qb_plan_get_embedding_floor (back), ==, 6.0);

  g_autoptr(QbAllocConstraints) c = qb_alloc_constraints_from_plan (back, fx.model, table, &error);
  g_assert_no_error (error);
  g_autoptr(QbAllocation) a = qb_allocate (table, &budget, c, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (a->bpw, <=, 4.0);
  for (guint l = 0; l < spec.n_layer; l++)
    {
      g_autofree char *v = g_strdup_printf ("blk.%u.attn_v.weight", l);
      const char *f = chosen (table, a, v);
      g_assert_true (g_str_equal (f, "Q8_0") || g_str_equal (f, "Q6_K"));
    }
  for (guint i = 0; i < table->n_tensors; i++)
    if (g_str_equal (table->tensors[i].name, "token_embd.weight")
        || g_str_equal (table->tensors[i].name, "output.weight"))
      {
        const QbCostTensor *t = &table->tensors[i];
        g_assert_cmpfloat (t->candidates[a->choice[i]].bytes * 8.0 / t->n_weights, >=, 6.0);
        /* ...which the unconstrained plan did not do: the floor changed something. */
        g_assert_cmpfloat (t->candidates[free_a->choice[i]].bytes * 8.0 / t->n_weights, <, 6.0);
      }
  g_assert_cmpfloat (a->predicted_kld, >=, free_a->predicted_kld);

  /* Cleared: as before. */
  g_assert_true (qb_plan_set_allowed_formats (back, QB_ROLE_ATTN_V, "", &error));
  g_assert_null (qb_plan_get_allowed_formats (back, QB_ROLE_ATTN_V));
  qb_plan_set_embedding_floor (back, 0);
  g_assert_null (qb_plan_get_option (back, QB_PLAN_OPTION_EMBEDDING_FLOOR));

  /* Unknown names: refused when set, and when a hand-written plan has them. */
  g_assert_false (qb_plan_set_allowed_formats (back, QB_ROLE_FFN_UP, "Q4_K,Q9_Z", &error));
  g_assert_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "Q9_Z"));
  g_clear_error (&error);
  g_assert_null (qb_plan_get_allowed_formats (back, QB_ROLE_FFN_UP));
  qb_plan_set_option (back, QB_PLAN_OPTION_ALLOW_PREFIX "ffn_up", "Q9_Z");
  g_assert_null (qb_alloc_constraints_from_plan (back, fx.model, table, &error));
  g_assert_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INVALID);
  qb_test_model_fixture_close (&fx);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/allocation-plan/constraints", test_plan_constraints);
  return g_test_run ();
}
