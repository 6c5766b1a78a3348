/* SPDX-License-Identifier: MIT */
/* test-allocator.c — cost tables and the allocator. */
#include <math.h>
#include <string.h>

#include "qb-allocator.h"
#include "qb-cost-table.h"
#include "qb-test-model.h"
#include "qb-test-util.h"

/* ---- cost table ------------------------------------------------------- */

static void
test_table_add (void)
{
  g_autoptr(QbCostTable) table = qb_cost_table_new ();
  const QbFormat *q4k = qb_format_find ("Q4_K"), *q8 = qb_format_find ("Q8_0");
  const QbFormat *int4 = qb_format_find ("INT4_CH");

  QbCostTensor *t = qb_cost_table_add_tensor (table, "blk.0.ffn_down.weight", 3, 172 * 64, 172);
  /* Rows of 172 take neither 256- nor 32-blocks: refused, never replaced. */
  g_assert_null (qb_cost_tensor_add_candidate (t, q4k, 1, 0.1, 0.1, FALSE));
  g_assert_null (qb_cost_tensor_add_candidate (t, q8, 1, 0.1, 0.1, FALSE));
  g_assert_nonnull (qb_cost_tensor_add_candidate (t, int4, 5600, 0.01, 0.02, TRUE));
  g_assert_null (qb_cost_tensor_add_candidate (t, int4, 5600, 0.01, 0.02, TRUE));
  t = qb_cost_table_add_tensor (table, "blk.0.attn_q.weight", 4, 256 * 8, 256);
  g_assert_nonnull (qb_cost_tensor_add_candidate (t, q4k, 1152, 0.2, 0.3, FALSE));
  qb_cost_table_add_fixed (table, 1000, 250);

  g_assert_cmpuint (table->n_tensors, ==, 2);
  const QbCostTensor *down = qb_cost_table_find (table, "blk.0.ffn_down.weight");
  g_assert_nonnull (down);
  g_assert_cmpuint (down->n_candidates, ==, 1);
  g_assert_true (qb_cost_tensor_find (down, int4)->measured);
  g_assert_null (qb_cost_tensor_find (down, q4k));
  g_assert_null (qb_cost_table_find (table, "output.weight"));
  g_assert_cmpint (qb_cost_table_n_weights (table), ==, 172 * 64 + 256 * 8 + 250);
}

static void
test_parse_candidates (void)
{
  g_autoptr(GError) error = NULL;
  guint n = 0;
  g_autofree const QbFormat **f = qb_cost_parse_candidates ("Q2_K, q4_k,Q8_0", &n, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 3);
  g_assert_cmpstr (f[1]->name, ==, "Q4_K");

  g_assert_null (qb_cost_parse_candidates ("Q4_K,Q9_X", &n, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "Q9_X"));
  g_clear_error (&error);
  g_assert_null (qb_cost_parse_candidates ("Q4_K,Q4_K", &n, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (qb_cost_parse_candidates (" , ", &n, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

static const QbFormat **
default_ladder (guint *n)
{
  const char * const *names = qb_cost_default_candidates ();
  g_autofree char *list = g_strjoinv (",", (char **) names);
  g_autoptr(GError) error = NULL;
  const QbFormat **f = qb_cost_parse_candidates (list, n, &error);
  g_assert_no_error (error);
  return f;
}

/* The proxy table of a synthetic model: every matrix, the candidates that
 * fit its rows, costs falling as bits rise, same result on 1 and 3 threads. */
static void
test_proxy_table (void)
{
  QbTestLlama spec = { .n_layer = 2, .n_embd = 256, .n_ff = 172, .n_vocab = 300,
                       .n_head = 4, .n_head_kv = 4, .dtype = QB_DTYPE_F32, .seed = 7 };
  QbTestModelFixture fx;
  qb_test_model_fixture_open (&fx, &spec);
  guint n_cand;
  g_autofree const QbFormat **ladder = default_ladder (&n_cand);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbWorkers) one = qb_workers_new (1), three = qb_workers_new (3);

  g_autoptr(QbCostTable) a = qb_cost_table_new_proxy (fx.model, ladder, n_cand, NULL, one, NULL, &error);
  g_assert_no_error (error);
  g_autoptr(QbCostTable) b = qb_cost_table_new_proxy (fx.model, ladder, n_cand, NULL, three, NULL, &error);
  g_assert_no_error (error);

  /* 9 matrices per layer... token_embd, 7 per layer, output. */
  g_assert_cmpuint (a->n_tensors, ==, 2 + 7 * spec.n_layer);
  g_assert_cmpint (qb_cost_table_n_weights (a), ==, qb_model_get_n_params (fx.model));
  g_assert_cmpuint (a->n_tensors, ==, b->n_tensors);
  for (guint i = 0; i < a->n_tensors; i++)
    {
      const QbCostTensor *t = &a->tensors[i];
      g_assert_cmpstr (t->name, ==, b->tensors[i].name);
      g_assert_cmpuint (t->n_candidates, ==, b->tensors[i].n_candidates);
      for (guint k = 0; k < t->n_candidates; k++)
        {
          const QbCostCandidate *c = &t->candidates[k];
          g_assert_true (qb_format_fits (c->format, t->row_length));
          g_assert_false (c->measured);
          g_assert_true (c->cost >= 0 && isfinite (c->cost));
          g_assert_cmpfloat (c->cost, ==, b->tensors[i].candidates[k].cost);
        }
      const QbCostCandidate *q2 = qb_cost_tensor_find (t, qb_format_find ("Q2_K"));
      const QbCostCandidate *q6 = qb_cost_tensor_find (t, qb_format_find ("Q6_K"));
      const QbCostCandidate *f16 = qb_cost_tensor_find (t, qb_format_find ("F16"));
      g_assert_nonnull (f16);
      if (t->row_length % 256 == 0)
        {
          g_assert_nonnull (q2);
          g_assert_nonnull (q6);
          g_assert_cmpfloat (q2->proxy, >, q6->proxy);
          g_assert_cmpfloat (q6->proxy, >, f16->proxy);
          g_assert_cmpuint (q2->bytes, <, q6->bytes);
        }
      else
        {
          /* ffn_down: rows of 172 — only per-channel INT and F16. */
          g_assert_cmpint (t->row_length, ==, 172);
          g_assert_null (q2);
          g_assert_null (qb_cost_tensor_find (t, qb_format_find ("Q4_0")));
          const QbCostCandidate *i4 = qb_cost_tensor_find (t, qb_format_find ("INT4_CH"));
          const QbCostCandidate *i8 = qb_cost_tensor_find (t, qb_format_find ("INT8_CH"));
          g_assert_nonnull (i4);
          g_assert_nonnull (i8);
          g_assert_cmpfloat (i4->cost, >, i8->cost);
        }
    }

  /* Cancelled before it starts: an error, no table. */
  g_autoptr(GCancellable) cancel = g_cancellable_new ();
  g_cancellable_cancel (cancel);
  g_assert_null (qb_cost_table_new_proxy (fx.model, ladder, n_cand, NULL, three, cancel, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  qb_test_model_fixture_close (&fx);
}


/* ---- allocator ----------------------------------------------------------- */

/* Formats that fit rows of 256, to label random candidates. */
static const QbFormat *
nth_format (guint k)
{
  static const char *const names[] = { "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_0",
                                       "Q4_0", "Q4_1", "Q5_0", "Q5_1", "F16", "BF16", "F32" };
  g_assert_cmpuint (k, <, G_N_ELEMENTS (names));
  return qb_format_find (names[k]);
}

static char *
tensor_name (guint i)
{
  switch (i % 5)
    {
    case 0: return g_strdup_printf ("token_embd.weight.%u", i);
    case 1: return g_strdup_printf ("blk.%u.attn_q.weight", i);
    case 2: return g_strdup_printf ("blk.%u.attn_v.weight", i);
    case 3: return g_strdup_printf ("blk.%u.ffn_down.weight", i);
    default: return g_strdup_printf ("output.weight.%u", i);
    }
}

/* A random table: n tensors with 1..max_k candidates.  With ties, bytes
 * and costs come from small sets so that equal sums and collinear points
 * are common. */
static QbCostTable *
random_table (GRand *rng, guint n, guint max_k, gboolean ties)
{
  QbCostTable *table = qb_cost_table_new ();
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *name = tensor_name (i);
      QbCostTensor *t = qb_cost_table_add_tensor (table, name, i, 256 * 16, 256);
      guint k_n = g_rand_int_range (rng, 1, max_k + 1);
      for (guint k = 0; k < k_n; k++)
        {
          guint64 bytes = ties ? 100 * g_rand_int_range (rng, 1, 6)
                               : (guint64) g_rand_int_range (rng, 50, 5000);
          double cost = ties ? 0.25 * g_rand_int_range (rng, 0, 5) : g_rand_double (rng);
          g_assert_nonnull (qb_cost_tensor_add_candidate (t, nth_format (k), bytes, cost,
                                                          cost, FALSE));
        }
    }
  qb_cost_table_add_fixed (table, g_rand_int_range (rng, 0, 300), 1000);
  return table;
}

/* The optimum by enumeration: least cost within max_bytes (or least bytes
 * within max_cost when by_kld); FALSE when nothing is feasible. */
static gboolean
brute_force (const QbCostTable *table, const QbAllocConstraints *c, gboolean by_kld,
             double limit, double *best_cost, guint64 *best_bytes)
{
  guint n = table->n_tensors;
  g_autofree guint *idx = g_new0 (guint, n + 1);
  gboolean found = FALSE;
  for (;;)
    {
      guint64 bytes = table->fixed_bytes;
      double cost = 0;
      gboolean ok = TRUE;
      for (guint i = 0; i < n; i++)
        {
          const QbCostTensor *t = &table->tensors[i];
          const QbCostCandidate *cand = &t->candidates[idx[i]];
          const QbFormat *pin = qb_alloc_constraints_get_pin (c, t->name);
          if ((pin && cand->format != pin) || !qb_format_fits (cand->format, t->row_length))
            ok = FALSE;
          bytes += cand->bytes;
          cost += cand->cost;
        }
      if (ok && (by_kld ? cost <= limit : bytes <= limit))
        {
          double objective = by_kld ? (double) bytes : cost;
          double best = by_kld ? (double) *best_bytes : *best_cost;
          if (!found || objective < best)
            {
              *best_cost = cost;
              *best_bytes = bytes;
              found = TRUE;
            }
        }
      guint i = 0;
      while (i < n && ++idx[i] == table->tensors[i].n_candidates)
        idx[i++] = 0;
      if (i == n)
        break;
    }
  return found;
}

static void
check_random (GRand *rng, gboolean ties, gboolean by_kld, gboolean with_pin)
{
  guint n = g_rand_int_range (rng, 1, 8);
  g_autoptr(QbCostTable) table = random_table (rng, n, 5, ties);
  g_autoptr(QbAllocConstraints) c = qb_alloc_constraints_new ();
  if (with_pin)
    {
      const QbCostTensor *t = &table->tensors[g_rand_int_range (rng, 0, n)];
      qb_alloc_constraints_pin (c, t->name, t->candidates[g_rand_int_range (rng, 0, t->n_candidates)].format);
    }
  double lo = 0, hi = 0;
  for (guint i = 0; i < n; i++)
    {
      const QbCostTensor *t = &table->tensors[i];
      double mn = INFINITY, mx = 0;
      for (guint k = 0; k < t->n_candidates; k++)
        {
          double x = by_kld ? t->candidates[k].cost : (double) t->candidates[k].bytes;
          mn = MIN (mn, x);
          mx = MAX (mx, x);
        }
      lo += mn;
      hi += mx;
    }
  if (!by_kld)
    {
      lo += table->fixed_bytes;
      hi += table->fixed_bytes;
    }
  /* Budgets from a little below the least to above the most. */
  double limit = lo + (hi - lo) * (g_rand_double (rng) * 1.2 - 0.1);
  if (ties && !by_kld)
    limit = floor (limit / 100) * 100 + (g_rand_boolean (rng) ? 0 : 50);
  if (limit <= 0)
    limit = by_kld ? 1e-9 : 1;

  QbAllocBudget budget = { by_kld ? QB_ALLOC_TARGET_KLD : QB_ALLOC_TARGET_BYTES, limit };
  double best_cost = 0;
  guint64 best_bytes = 0;
  gboolean feasible = brute_force (table, c, by_kld, limit, &best_cost, &best_bytes);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbAllocation) a = qb_allocate (table, &budget, c, &error);
  if (!feasible)
    {
      g_assert_null (a);
      g_assert_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INFEASIBLE);
      return;
    }
  g_assert_no_error (error);
  g_assert_true (a->exact);
  /* Never over budget; pins kept; the brute-force optimum. */
  if (by_kld)
    {
      g_assert_cmpfloat (a->predicted_kld, <=, limit * (1 + 1e-12));
      g_assert_cmpuint (a->bytes, ==, best_bytes);
    }
  else
    {
      g_assert_cmpfloat ((double) a->bytes, <=, limit);
      g_assert_cmpfloat_with_epsilon (a->predicted_kld, best_cost, 1e-9);
      g_assert_cmpfloat (a->lower_bound, <=, a->predicted_kld + 1e-9);
    }
  for (guint i = 0; i < n; i++)
    {
      const QbCostTensor *t = &table->tensors[i];
      const QbFormat *pin = qb_alloc_constraints_get_pin (c, t->name);
      g_assert_cmpuint (a->choice[i], <, t->n_candidates);
      g_assert_true (a->pinned[i] == (pin != NULL));
      if (pin)
        g_assert_true (t->candidates[a->choice[i]].format == pin);
    }
}

static void
test_brute_force (void)
{
  g_autoptr(GRand) rng = g_rand_new_with_seed (12);
  for (guint round = 0; round < 3000; round++)
    check_random (rng, round % 2, (round / 2) % 3 == 0, (round / 6) % 4 == 0);
}

/* A tensor of many near-equal options at scale: still exact, same answer twice. */
static void
test_deterministic (void)
{
  g_autoptr(GRand) rng = g_rand_new_with_seed (5);
  g_autoptr(QbCostTable) table = random_table (rng, 300, 10, TRUE);
  QbAllocBudget budget = { QB_ALLOC_TARGET_BPW, 0 };
  budget.value = 8.0 * (table->fixed_bytes + 300 * 300) / qb_cost_table_n_weights (table);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbAllocation) a = qb_allocate (table, &budget, NULL, &error);
  g_assert_no_error (error);
  g_autoptr(QbAllocation) b = qb_allocate (table, &budget, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (a->choice, 300 * sizeof (guint), b->choice, 300 * sizeof (guint));
  g_assert_cmpfloat (a->predicted_kld, ==, b->predicted_kld);
  g_assert_cmpfloat (a->bpw, <=, budget.value);
  g_assert_cmpfloat (a->lower_bound, <=, a->predicted_kld + 1e-9);
}

/* Tables of copies of one or two tensors (the program takes alike tensors
 * as one unit): the brute-force optimum on small ones; on 400 copies of
 * one tensor with three options, the optimum over how many take each
 * (with collinear options every composition ties, the most to list). */
static void
add_copy (QbCostTable *table, guint i, const guint64 *bytes, const double *cost, guint k)
{
  g_autofree char *name = g_strdup_printf ("blk.%u.ffn_up.weight", i);
  QbCostTensor *t = qb_cost_table_add_tensor (table, name, i, 256 * 16, 256);
  for (guint j = 0; j < k; j++)
    g_assert_nonnull (qb_cost_tensor_add_candidate (t, nth_format (j), bytes[j], cost[j], cost[j], FALSE));
}

static void
test_alike (void)
{
  g_autoptr(GRand) rng = g_rand_new_with_seed (7);
  for (guint round = 0; round < 400; round++)
    {
      gboolean ties = round % 2;
      guint64 bytes[2][4];
      double cost[2][4];
      guint k[2], n = g_rand_int_range (rng, 2, 9);
      for (guint m = 0; m < 2; m++)
        {
          k[m] = g_rand_int_range (rng, 2, 5);
          for (guint j = 0; j < k[m]; j++)
            {
              bytes[m][j] = ties ? 100 * (j + 1) : (guint64) g_rand_int_range (rng, 50, 5000);
              cost[m][j] = ties ? 0.25 * (k[m] - j) : g_rand_double (rng);
            }
        }
      g_autoptr(QbCostTable) table = qb_cost_table_new ();
      guint64 lo = 0, hi = 0;
      for (guint i = 0; i < n; i++)
        {
          guint m = round % 3 == 0 ? 0 : g_rand_int_range (rng, 0, 2);
          add_copy (table, i, bytes[m], cost[m], k[m]);
          guint64 mn = G_MAXUINT64, mx = 0;
          for (guint j = 0; j < k[m]; j++)
            {
              mn = MIN (mn, bytes[m][j]);
              mx = MAX (mx, bytes[m][j]);
            }
          lo += mn;
          hi += mx;
        }
      QbAllocBudget budget = { QB_ALLOC_TARGET_BYTES, lo + (hi - lo) * g_rand_double (rng) };
      double best_cost = 0;
      guint64 best_bytes = 0;
      g_assert_true (brute_force (table, NULL, FALSE, budget.value, &best_cost, &best_bytes));
      g_autoptr(GError) error = NULL;
      g_autoptr(QbAllocation) a = qb_allocate (table, &budget, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (a->exact);
      g_assert_cmpfloat ((double) a->bytes, <=, budget.value);
      g_assert_cmpfloat_with_epsilon (a->predicted_kld, best_cost, 1e-9);
    }

  for (guint collinear = 0; collinear < 2; collinear++)
    {
      const guint64 bytes[3] = { 100, 200, 300 };
      const double cost[3] = { 2.0, collinear ? 1.0 : 0.7, 0.0 };
      const guint n = 400;
      g_autoptr(QbCostTable) table = qb_cost_table_new ();
      for (guint i = 0; i < n; i++)
        add_copy (table, i, bytes, cost, 3);
      QbAllocBudget budget = { QB_ALLOC_TARGET_BYTES, 200 * n + 50 + 17 * collinear };
      double best = INFINITY;
      for (guint c0 = 0; c0 <= n; c0++)
        for (guint c1 = 0; c0 + c1 <= n; c1++)
          {
            guint c2 = n - c0 - c1;
            if (c0 * bytes[0] + c1 * bytes[1] + c2 * bytes[2] <= budget.value)
              best = MIN (best, c0 * cost[0] + c1 * cost[1] + c2 * cost[2]);
          }
      g_autoptr(GError) error = NULL;
      g_autoptr(QbAllocation) a = qb_allocate (table, &budget, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (a->exact);
      g_assert_cmpfloat ((double) a->bytes, <=, budget.value);
      g_assert_cmpfloat_with_epsilon (a->predicted_kld, best, 1e-9);
    }
}

/* A candidate the tensor's rows cannot take (256-blocks on rows of 172),
 * put in the table behind its back, is never chosen however cheap. */
static void
test_incompatible (void)
{
  g_autoptr(QbCostTable) table = qb_cost_table_new ();
  QbCostTensor *t = qb_cost_table_add_tensor (table, "blk.0.ffn_down.weight", 0, 172 * 64, 172);
  qb_cost_tensor_add_candidate (t, qb_format_find ("INT4_CH"), 5600, 0.5, 0.5, FALSE);
  qb_cost_tensor_add_candidate (t, qb_format_find ("F16"), 22016, 0.0, 0.0, FALSE);
  t->candidates = g_renew (QbCostCandidate, t->candidates, 3);
  t->candidates[t->n_candidates++] = (QbCostCandidate) {
    .format = qb_format_find ("Q4_K"), .bytes = 10, .cost = 0.0 };
  QbAllocBudget budget = { QB_ALLOC_TARGET_BYTES, 6000 };
  g_autoptr(GError) error = NULL;
  g_autoptr(QbAllocation) a = qb_allocate (table, &budget, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (t->candidates[a->choice[0]].format->name, ==, "INT4_CH");
  budget.value = 100;   /* only the impossible one would fit */
  g_assert_null (qb_allocate (table, &budget, NULL, &error));
  g_assert_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INFEASIBLE);
  g_assert_nonnull (strstr (error->message, "5600 bytes"));
}

/* Pins, roles and the embedding floor. */
static void
test_constraints (void)
{
  g_autoptr(QbCostTable) table = qb_cost_table_new ();
  const char *names[] = { "token_embd.weight", "blk.0.attn_v.weight", "output.weight" };
  const char *fmts[] = { "Q2_K", "Q4_K", "Q6_K", "Q8_0" };
  for (guint i = 0; i < 3; i++)
    {
      QbCostTensor *t = qb_cost_table_add_tensor (table, names[i], i, 256 * 4, 256);
      for (guint k = 0; k < 4; k++)
        {
          const QbFormat *f = qb_format_find (fmts[k]);
          guint64 bytes;
          g_assert_true (qb_format_tensor_bytes (f, 256, 4, &bytes));
          qb_cost_tensor_add_candidate (t, f, bytes, 1.0 / (1 << (2 * k)), 0, FALSE);
        }
    }
  QbAllocBudget budget = { QB_ALLOC_TARGET_BPW, 2.625 };   /* Q2_K everywhere */
  g_autoptr(QbAllocConstraints) c = qb_alloc_constraints_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(QbAllocation) a = qb_allocate (table, &budget, c, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpstr (table->tensors[i].candidates[a->choice[i]].format->name, ==, "Q2_K");

  /* A floor of 6 bpw on embeddings leaves Q6_K and Q8_0 for them. */
  qb_alloc_constraints_set_embedding_floor (c, 6.0);
  budget.value = 20;
  g_clear_pointer (&a, qb_allocation_free);
  a = qb_allocate (table, &budget, c, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (table->tensors[0].candidates[a->choice[0]].bytes * 8.0 / 1024, >=, 6.0);
  g_assert_cmpfloat (table->tensors[2].candidates[a->choice[2]].bytes * 8.0 / 1024, >=, 6.0);
  budget.value = 4.0;    /* now too small for that floor */
  g_clear_pointer (&a, qb_allocation_free);
  g_assert_null (qb_allocate (table, &budget, c, &error));
  g_assert_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INFEASIBLE);
  g_clear_error (&error);

  /* attn_v may only take Q4_K; pinned output to Q8_0. */
  qb_alloc_constraints_set_embedding_floor (c, 0);
  const QbFormat *q4 = qb_format_find ("Q4_K");
  qb_alloc_constraints_allow (c, QB_ROLE_ATTN_V, &q4, 1);
  qb_alloc_constraints_pin (c, "output.weight", qb_format_find ("Q8_0"));
  budget.value = 20;
  a = qb_allocate (table, &budget, c, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (table->tensors[1].candidates[a->choice[1]].format->name, ==, "Q4_K");
  g_assert_cmpstr (table->tensors[2].candidates[a->choice[2]].format->name, ==, "Q8_0");
  g_assert_true (a->pinned[2]);
  g_assert_false (a->pinned[1]);

  /* A pin the table has no candidate for is a clear error. */
  qb_alloc_constraints_pin (c, "output.weight", qb_format_find ("Q5_K"));
  g_clear_pointer (&a, qb_allocation_free);
  g_assert_null (qb_allocate (table, &budget, c, &error));
  g_assert_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "output.weight"));
}

static void
test_budget_parse (void)
{
  QbAllocBudget b;
  g_autoptr(GError) error = NULL;
  g_assert_true (qb_alloc_budget_parse (QB_ALLOC_TARGET_BYTES, "1.5M", &b, &error));
  g_assert_cmpfloat (b.value, ==, 1.5 * 1024 * 1024);
  g_assert_true (qb_alloc_budget_parse (QB_ALLOC_TARGET_BYTES, "2GiB", &b, &error));
  g_assert_cmpfloat (b.value, ==, 2.0 * 1024 * 1024 * 1024);
  g_assert_true (qb_alloc_budget_parse (QB_ALLOC_TARGET_BPW, "4.5", &b, &error));
  g_assert_cmpint (b.target, ==, QB_ALLOC_TARGET_BPW);
  g_assert_false (qb_alloc_budget_parse (QB_ALLOC_TARGET_BPW, "4.5x", &b, &error));
  g_assert_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (qb_alloc_budget_parse (QB_ALLOC_TARGET_KLD, "-1", &b, &error));
  g_assert_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INVALID);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cost-table/add", test_table_add);
  g_test_add_func ("/cost-table/parse-candidates", test_parse_candidates);
  g_test_add_func ("/cost-table/proxy", test_proxy_table);
  g_test_add_func ("/allocator/brute-force", test_brute_force);
  g_test_add_func ("/allocator/deterministic", test_deterministic);
  g_test_add_func ("/allocator/alike", test_alike);
  g_test_add_func ("/allocator/incompatible", test_incompatible);
  g_test_add_func ("/allocator/constraints", test_constraints);
  g_test_add_func ("/allocator/budget-parse", test_budget_parse);
  return g_test_run ();
}
