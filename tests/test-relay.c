/* SPDX-License-Identifier: MIT */
/* test-relay.c — progress from a worker thread, rate-limited (qb-relay.h). */
#include <glib.h>

#include "qb-relay.h"

static void
test_rate_limit (void)
{
  QbRateLimit limit = { 0 };

  g_assert_true (qb_rate_limit_pass (&limit, 200, FALSE));    /* the first time */
  g_assert_false (qb_rate_limit_pass (&limit, 200, FALSE));   /* too soon */
  g_assert_true (qb_rate_limit_pass (&limit, 200, TRUE));     /* forced */
  g_assert_false (qb_rate_limit_pass (&limit, 200, FALSE));
  g_usleep (210 * 1000);
  g_assert_true (qb_rate_limit_pass (&limit, 200, FALSE));
}

/* What the worker writes and the main loop reads. */
typedef struct {
  GMutex    lock;
  int       latest;
  int       seen;       /* the value the last run read */
  guint     n_runs;
  gint      refs;       /* holds the relay took, not yet released */
  gboolean  worker_done;
  QbRelay  *relay;
} Shared;

static gpointer
take (gpointer data)
{
  g_atomic_int_inc (&((Shared *) data)->refs);
  return data;
}

static void
give_back (gpointer data)
{
  g_atomic_int_dec_and_test (&((Shared *) data)->refs);
}

static gboolean
on_run (gpointer data)
{
  Shared *s = data;

  g_mutex_lock (&s->lock);
  s->seen = s->latest;
  g_mutex_unlock (&s->lock);
  s->n_runs++;
  return G_SOURCE_REMOVE;
}

static gpointer
worker (gpointer data)
{
  Shared *s = data;

  /* 2,000 reports over about 0.2 s. */
  for (int i = 1; i <= 2000; i++)
    {
      g_mutex_lock (&s->lock);
      s->latest = i;
      g_mutex_unlock (&s->lock);
      qb_relay_schedule (s->relay);
      g_usleep (100);
    }
  g_atomic_int_set (&s->worker_done, TRUE);
  return NULL;
}

/* Many schedules from a thread give few runs in the main context, and the
 * last state always arrives; every hold on the data is given back. */
static void
test_relay (void)
{
  Shared s = { 0 };
  GThread *thread;
  gint64 start = g_get_monotonic_time ();
  double seconds;

  g_mutex_init (&s.lock);
  s.relay = qb_relay_new (NULL, 50, "test relay", on_run, &s, take, give_back);
  thread = g_thread_new ("worker", worker, &s);
  while (!g_atomic_int_get (&s.worker_done) || g_atomic_int_get (&s.refs) > 0)
    g_main_context_iteration (NULL, FALSE), g_usleep (1000);
  g_thread_join (thread);
  seconds = (g_get_monotonic_time () - start) / 1e6;
  g_assert_cmpint (s.seen, ==, 2000);
  g_assert_cmpuint (s.n_runs, >=, 1);
  /* At most one run per 50 ms, plus the first and the last. */
  g_assert_cmpuint (s.n_runs, <=, (guint) (seconds / 0.050) + 2);
  g_assert_cmpint (s.refs, ==, 0);

  /* A cancelled run does not happen, and gives its hold back. */
  s.n_runs = 0;
  qb_relay_schedule (s.relay);
  g_assert_cmpint (s.refs, ==, 1);
  qb_relay_cancel (s.relay);
  g_assert_cmpint (s.refs, ==, 0);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_usleep (60 * 1000);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (s.n_runs, ==, 0);
  qb_relay_free (s.relay);
  g_mutex_clear (&s.lock);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/relay/rate-limit", test_rate_limit);
  g_test_add_func ("/relay/coalesce", test_relay);
  return g_test_run ();
}
