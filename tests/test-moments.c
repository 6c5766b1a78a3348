/* SPDX-License-Identifier: MIT */
/* test-moments.c — streaming moments against a direct computation, merging,
 * non-finite values, and whole-model statistics for any thread count.
 */
#include <math.h>
#include <string.h>

#include "qb-model-stats.h"
#include "qb-test-util.h"

typedef struct
{
  double mean, var, kurt, min, max;
} Direct;

/* Plain two-pass reference in long double. */
static Direct
direct (const float *x, gint64 n)
{
  long double sum = 0, s2 = 0, s4 = 0;
  Direct d = { 0, 0, 0, INFINITY, -INFINITY };

  for (gint64 i = 0; i < n; i++)
    {
      sum += x[i];
      d.min = MIN (d.min, x[i]);
      d.max = MAX (d.max, x[i]);
    }
  d.mean = (double) (sum / n);
  for (gint64 i = 0; i < n; i++)
    {
      long double e = x[i] - (long double) d.mean, e2 = e * e;
      s2 += e2;
      s4 += e2 * e2;
    }
  d.var = (double) (s2 / n);
  d.kurt = (double) (n * s4 / (s2 * s2)) - 3.0;
  return d;
}

static double
normal (GRand *r)
{
  double u = g_rand_double (r), v = g_rand_double (r);
  return sqrt (-2.0 * log (1.0 - u)) * cos (2 * G_PI * v);
}

static float *
make_data (int kind, gint64 n, guint32 seed)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (seed);
  float *x = g_new (float, n);

  for (gint64 i = 0; i < n; i++)
    switch (kind)
      {
      case 0: x[i] = (float) normal (r); break;                          /* normal */
      case 1: x[i] = (float) g_rand_double_range (r, -1, 1); break;      /* uniform */
      case 2:                                                            /* Laplace, offset */
        {
          double u = g_rand_double (r) - 0.5;
          x[i] = (float) (1000.0 - copysign (log (1 - 2 * fabs (u)), u));
          break;
        }
      default: x[i] = (float) (1e-3 * normal (r) + 12345.0); break;      /* big mean, tiny spread */
      }
  return x;
}

static void
assert_close (double a, double b, double rel)
{
  if (!(fabs (a - b) <= rel * MAX (1.0, fabs (b))))
    g_error ("%.17g differs from %.17g by more than %g (relative)", a, b, rel);
}

static void
test_against_direct (void)
{
  for (int kind = 0; kind < 4; kind++)
    {
      gint64 n = 200003;
      g_autofree float *x = make_data (kind, n, 7 + kind);
      Direct d = direct (x, n);
      QbMoments m;

      qb_moments_init (&m);
      /* Fed in uneven blocks, as a streaming reader would. */
      for (gint64 at = 0, len = 1; at < n; at += len, len = len * 3 % 9973 + 1)
        qb_moments_add (&m, x + at, MIN (len, n - at));
      g_assert_cmpuint (m.n, ==, n);
      g_assert_cmpuint (m.n_nonfinite, ==, 0);
      assert_close (m.mean, d.mean, 1e-12);
      assert_close (qb_moments_variance (&m), d.var, 1e-9);
      assert_close (qb_moments_kurtosis (&m), d.kurt, 1e-7);
      g_assert_cmpfloat (m.min, ==, d.min);
      g_assert_cmpfloat (m.max, ==, d.max);
      g_test_message ("kind %d: mean %g std %g excess kurtosis %g", kind, m.mean,
                      qb_moments_std (&m), qb_moments_kurtosis (&m));
    }
}

/* Known excess kurtosis: normal 0, uniform -1.2, Laplace 3. */
static void
test_known_kurtosis (void)
{
  static const double expected[3] = { 0.0, -1.2, 3.0 };
  for (int kind = 0; kind < 3; kind++)
    {
      gint64 n = 1000000;
      g_autofree float *x = make_data (kind, n, 100 + kind);
      QbMoments m;

      qb_moments_init (&m);
      qb_moments_add (&m, x, n);
      g_assert_cmpfloat (fabs (qb_moments_kurtosis (&m) - expected[kind]), <, 0.1);
    }
}

static void
test_merge (void)
{
  gint64 n = 100000;
  g_autofree float *x = make_data (2, n, 3);
  QbMoments whole, a, b, c, left, right;

  qb_moments_init (&whole);
  qb_moments_add (&whole, x, n);
  qb_moments_init (&a);
  qb_moments_init (&b);
  qb_moments_init (&c);
  qb_moments_add (&a, x, 10);
  qb_moments_add (&b, x + 10, 60000);
  qb_moments_add (&c, x + 60010, n - 60010);

  /* (a + b) + c and a + (b + c) agree with the whole. */
  left = a;
  qb_moments_merge (&left, &b);
  qb_moments_merge (&left, &c);
  right = b;
  qb_moments_merge (&right, &c);
  {
    QbMoments t = a;
    qb_moments_merge (&t, &right);
    right = t;
  }
  for (int k = 0; k < 2; k++)
    {
      const QbMoments *m = k ? &right : &left;
      g_assert_cmpuint (m->n, ==, whole.n);
      assert_close (m->mean, whole.mean, 1e-13);
      assert_close (m->m2, whole.m2, 1e-10);
      assert_close (m->m3, whole.m3, 1e-8);
      assert_close (m->m4, whole.m4, 1e-10);
      g_assert_cmpfloat (m->min, ==, whole.min);
      g_assert_cmpfloat (m->max, ==, whole.max);
    }

  /* Empty accumulators are neutral. */
  {
    QbMoments e, t = whole;
    qb_moments_init (&e);
    qb_moments_merge (&t, &e);
    g_assert_true (memcmp (&t, &whole, sizeof t) == 0);
    qb_moments_merge (&e, &whole);
    g_assert_true (memcmp (&e, &whole, sizeof e) == 0);
  }
}

static void
test_edge_cases (void)
{
  float x[10] = { 1, NAN, 2, INFINITY, 3, -INFINITY, 4, 5, 6, 7 };
  float same[5] = { 2, 2, 2, 2, 2 };
  QbMoments m;

  qb_moments_init (&m);
  g_assert_cmpfloat (qb_moments_variance (&m), ==, 0.0);
  g_assert_true (isnan (qb_moments_kurtosis (&m)));
  qb_moments_add (&m, x, 0);
  g_assert_cmpuint (m.n, ==, 0);

  qb_moments_add (&m, x, 10);
  g_assert_cmpuint (m.n, ==, 7);
  g_assert_cmpuint (m.n_nonfinite, ==, 3);
  g_assert_cmpfloat (m.mean, ==, 4.0);
  g_assert_cmpfloat (m.min, ==, 1.0);
  g_assert_cmpfloat (m.max, ==, 7.0);
  assert_close (qb_moments_variance (&m), 4.0, 1e-15);

  qb_moments_init (&m);
  qb_moments_add (&m, same, 5);
  g_assert_cmpfloat (qb_moments_std (&m), ==, 0.0);
  g_assert_true (isnan (qb_moments_kurtosis (&m)));

  /* Outliers: finite values strictly beyond the radius. */
  {
    float y[12] = { 0, 1, -1, 10, -10, 10.5f, NAN, INFINITY, 3, 9.99f, -10.01f, 0 };
    g_assert_cmpuint (qb_moments_count_outliers (y, 12, 0.0, 10.0), ==, 2);
    g_assert_cmpuint (qb_moments_count_outliers (y, 12, 1.0, 9.0), ==, 3);
  }
}

/* ---- whole models ----------------------------------------------------- */

/* Field by field: the struct has padding. */
static gboolean
stats_equal (const QbTensorStats *a, const QbTensorStats *b, guint n)
{
  for (guint i = 0; i < n; i++)
    if (a[i].readable != b[i].readable || a[i].n_outliers != b[i].n_outliers ||
        memcmp (&a[i].moments, &b[i].moments, sizeof a[i].moments) != 0)
      return FALSE;
  return TRUE;
}

static void
test_model_stats (void)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autofree QbTensorStats *ref = NULL;
  guint n;

  if (path == NULL)
    return;
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  n = qb_model_get_n_tensors (model);
  ref = g_new (QbTensorStats, n);

  for (guint threads = 1; threads <= 4; threads++)
    {
      g_autoptr(QbWorkers) workers = qb_workers_new (threads);
      g_autofree QbTensorStats *stats = g_new (QbTensorStats, n);

      g_assert_true (qb_model_compute_stats (model, workers, stats, NULL, NULL, NULL, &error));
      g_assert_no_error (error);
      if (threads == 1)
        memcpy (ref, stats, n * sizeof *stats);
      else        /* identical to the bit */
        g_assert_true (stats_equal (ref, stats, n));
    }

  /* Against a direct computation over the mapped floats. */
  for (guint i = 0; i < n; i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      const float *x = t->data;
      Direct d = direct (x, t->n_params);
      guint64 outliers = 0;

      g_assert_true (ref[i].readable);
      g_assert_cmpuint (ref[i].moments.n, ==, t->n_params);
      assert_close (ref[i].moments.mean, d.mean, 1e-10);
      assert_close (qb_moments_variance (&ref[i].moments), d.var, 1e-9);
      if (d.var > 0)
        assert_close (qb_moments_kurtosis (&ref[i].moments), d.kurt, 1e-7);
      g_assert_cmpfloat (ref[i].moments.min, ==, d.min);
      g_assert_cmpfloat (ref[i].moments.max, ==, d.max);
      for (gint64 k = 0; k < t->n_params; k++)
        outliers += fabs (x[k] - d.mean) > 6.0 * sqrt (d.var);
      g_assert_cmpuint (ref[i].n_outliers, ==, outliers);
    }
}

static void
cancel_on_progress (double fraction, gpointer data)
{
  g_cancellable_cancel (data);
}

static void
test_model_stats_cancel (void)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree QbTensorStats *stats = NULL;

  if (path == NULL)
    return;
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  stats = g_new (QbTensorStats, qb_model_get_n_tensors (model));
  g_assert_false (qb_model_compute_stats (model, workers, stats, cancel_on_progress, cancellable,
                                          cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/moments/against-direct", test_against_direct);
  g_test_add_func ("/moments/known-kurtosis", test_known_kurtosis);
  g_test_add_func ("/moments/merge", test_merge);
  g_test_add_func ("/moments/edge-cases", test_edge_cases);
  g_test_add_func ("/moments/model-stats", test_model_stats);
  g_test_add_func ("/moments/model-stats-cancel", test_model_stats_cancel);
  return g_test_run ();
}
