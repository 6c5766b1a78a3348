/* SPDX-License-Identifier: MIT */
/* bench-allocate.c — how long the allocator takes for 1,000 tensors × 10
 * candidates at several budgets, beside sorting the same 10,000 numbers
 * (the baseline), on three kinds of tables: costs that fall smoothly with
 * bits (as proxies do), the same with noise (as measurements do), and
 * tensors that are all alike (the most ties).  Then the proxy-only table
 * and an allocation for stories260K when ../shared has it. */
#include <math.h>
#include <stdlib.h>

#include "qb-allocator.h"
#include "qb-bench-util.h"
#include "qb-cost-table.h"

#define N_TENSORS 1000

static const char *const ladder[] = { "Q2_K", "Q3_K", "IQ4_XS", "Q4_K", "Q5_0", "Q5_K",
                                      "Q6_K", "Q8_0", "BF16", "F16" };

typedef enum { SMOOTH, NOISY, ALIKE } Kind;

static QbCostTable *
make_table (Kind kind, GRand *rng)
{
  QbCostTable *table = qb_cost_table_new ();
  for (guint i = 0; i < N_TENSORS; i++)
    {
      g_autofree char *name = g_strdup_printf ("blk.%u.ffn_up.weight", i);
      gint64 cols = kind == ALIKE ? 4096 : 256 * g_rand_int_range (rng, 4, 48);
      gint64 rows = kind == ALIKE ? 4096 : 256 * g_rand_int_range (rng, 4, 48);
      double sensitivity = kind == ALIKE ? 1.0 : exp (g_rand_double_range (rng, -3, 3));
      QbCostTensor *t = qb_cost_table_add_tensor (table, name, i, cols * rows, cols);
      for (guint k = 0; k < G_N_ELEMENTS (ladder); k++)
        {
          const QbFormat *f = qb_format_find (ladder[k]);
          guint64 bytes;
          qb_format_tensor_bytes (f, cols, rows, &bytes);
          double bpw = bytes * 8.0 / (cols * rows);
          double cost = sensitivity * 1e-3 * pow (2.0, -2.0 * bpw);
          if (kind == NOISY)
            cost *= exp (g_rand_double_range (rng, -0.3, 0.3));
          qb_cost_tensor_add_candidate (t, f, bytes, cost, cost, FALSE);
        }
    }
  return table;
}

static int
compare_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
time_sort (GRand *rng)
{
  double best = INFINITY;
  g_autofree double *v = g_new (double, N_TENSORS * G_N_ELEMENTS (ladder));
  for (guint r = 0; r < 20; r++)
    {
      for (guint i = 0; i < N_TENSORS * G_N_ELEMENTS (ladder); i++)
        v[i] = g_rand_double (rng);
      double t0 = qb_bench_now ();
      qsort (v, N_TENSORS * G_N_ELEMENTS (ladder), sizeof (double), compare_double);
      best = MIN (best, qb_bench_now () - t0);
    }
  return best;
}

static void
bench_kind (Kind kind, const char *label, double baseline, GRand *rng)
{
  g_autoptr(QbCostTable) table = make_table (kind, rng);
  const double targets[] = { 3.0, 4.0, 4.5, 5.0, 6.0, 8.0 };
  for (guint b = 0; b < G_N_ELEMENTS (targets); b++)
    {
      QbAllocBudget budget = { QB_ALLOC_TARGET_BPW, targets[b] };
      double best = INFINITY, best_cpu = INFINITY;
      g_autoptr(QbAllocation) a = NULL;
      for (guint r = 0; r < 5; r++)
        {
          g_autoptr(GError) error = NULL;
          g_clear_pointer (&a, qb_allocation_free);
          double t0 = qb_bench_now (), c0 = qb_bench_cpu_seconds ();
          a = qb_allocate (table, &budget, NULL, &error);
          best = MIN (best, qb_bench_now () - t0);
          best_cpu = MIN (best_cpu, qb_bench_cpu_seconds () - c0);
          g_assert_no_error (error);
        }
      /* CPU time beside wall time: on a loaded machine the wall clock
       * counts the time other processes had the core. */
      g_print ("  %-7s %4.1f bpw  %8.2f ms (%6.2f ms CPU)  %6.1fx sort   got %.4f bpw, predicted %.4g, "
               "bound %.4g, %u free, %s\n", label, targets[b], best * 1e3, best_cpu * 1e3, best / baseline,
               a->bpw, a->predicted_kld, a->lower_bound, a->n_free,
               a->exact ? "exact" : "NOT proven");
    }
}

static void
bench_stories (void)
{
  const char *dir = g_getenv ("QB_SHARED_DIR");
  g_autofree char *path = g_build_filename (dir ? dir : "../shared", "models", "stories260K.gguf", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  if (model == NULL)
    {
      g_print ("stories260K: skipped (%s)\n", error->message);
      return;
    }
  g_autofree char *list = g_strjoinv (",", (char **) qb_cost_default_candidates ());
  guint n;
  g_autofree const QbFormat **candidates = qb_cost_parse_candidates (list, &n, &error);
  double t0 = qb_bench_now ();
  g_autoptr(QbCostTable) table = qb_cost_table_new_proxy (model, candidates, n, NULL, NULL, NULL, &error);
  double t_table = qb_bench_now () - t0;
  g_assert_no_error (error);
  QbAllocBudget budget = { QB_ALLOC_TARGET_BPW, 5.0 };
  t0 = qb_bench_now ();
  g_autoptr(QbAllocation) a = qb_allocate (table, &budget, NULL, &error);
  double t_alloc = qb_bench_now () - t0;
  g_assert_no_error (error);
  g_print ("stories260K: proxy table (%u tensors x %u candidates) %.1f ms, allocation at 5.0 bpw "
           "%.3f ms (%.3f bpw, predicted KLD %.4g)\n", table->n_tensors, n, t_table * 1e3,
           t_alloc * 1e3, a->bpw, a->predicted_kld);
}

int
main (void)
{
  g_autoptr(GRand) rng = g_rand_new_with_seed (2026);
  double baseline = time_sort (rng);
  g_print ("allocation, %d tensors x %zu candidates (best of 5); baseline: qsort of %zu doubles "
           "%.3f ms\n", N_TENSORS, G_N_ELEMENTS (ladder), N_TENSORS * G_N_ELEMENTS (ladder),
           baseline * 1e3);
  bench_kind (SMOOTH, "smooth", baseline, rng);
  bench_kind (NOISY, "noisy", baseline, rng);
  bench_kind (ALIKE, "alike", baseline, rng);
  bench_stories ();
  return 0;
}
