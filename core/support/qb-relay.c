/* SPDX-License-Identifier: MIT */
/* qb-relay.c — progress from a worker thread, rate-limited (qb-relay.h). */
#include "qb-relay.h"

gboolean
qb_rate_limit_pass (QbRateLimit *limit, guint interval_ms, gboolean force)
{
  gint64 now = g_get_monotonic_time ();

  if (!force && limit->last != 0 && now - limit->last < (gint64) interval_ms * 1000)
    return FALSE;
  limit->last = now;
  return TRUE;
}

struct _QbRelay {
  GMutex          lock;
  GMainContext   *context;
  guint           interval_ms;
  char           *name;
  GSourceFunc     func;
  gpointer        data;
  QbRelayRefFunc  ref;
  GDestroyNotify  unref;
  QbRateLimit     limit;     /* of the runs */
  GSource        *pending;
};

QbRelay *
qb_relay_new (GMainContext *context, guint interval_ms, const char *name, GSourceFunc func,
              gpointer data, QbRelayRefFunc ref, GDestroyNotify unref)
{
  QbRelay *relay = g_new0 (QbRelay, 1);

  g_mutex_init (&relay->lock);
  relay->context = context ? g_main_context_ref (context) : NULL;
  relay->interval_ms = interval_ms;
  relay->name = g_strdup (name);
  relay->func = func;
  relay->data = data;
  relay->ref = ref;
  relay->unref = unref;
  return relay;
}

static gboolean
run (gpointer user_data)
{
  QbRelay *relay = user_data;

  g_mutex_lock (&relay->lock);
  g_clear_pointer (&relay->pending, g_source_unref);
  qb_rate_limit_pass (&relay->limit, relay->interval_ms, TRUE);
  g_mutex_unlock (&relay->lock);
  relay->func (relay->data);
  return G_SOURCE_REMOVE;
}

/* The pending source's hold on the data (and so on the relay it owns). */
static void
release (gpointer user_data)
{
  QbRelay *relay = user_data;

  if (relay->unref != NULL)
    relay->unref (relay->data);
}

void
qb_relay_schedule (QbRelay *relay)
{
  gint64 wait_us;

  g_mutex_lock (&relay->lock);
  if (relay->pending != NULL)
    {
      g_mutex_unlock (&relay->lock);
      return;
    }
  wait_us = relay->limit.last == 0 ? 0
            : relay->limit.last + (gint64) relay->interval_ms * 1000 - g_get_monotonic_time ();
  relay->pending = wait_us > 0 ? g_timeout_source_new ((guint) ((wait_us + 999) / 1000))
                               : g_idle_source_new ();
  if (relay->ref != NULL)
    relay->ref (relay->data);
  g_source_set_callback (relay->pending, run, relay, release);
  if (relay->name != NULL)
    g_source_set_name (relay->pending, relay->name);
  g_source_attach (relay->pending, relay->context);
  g_mutex_unlock (&relay->lock);
}

void
qb_relay_cancel (QbRelay *relay)
{
  GSource *pending;

  g_mutex_lock (&relay->lock);
  pending = g_steal_pointer (&relay->pending);
  g_mutex_unlock (&relay->lock);
  if (pending != NULL)
    {
      /* Destroying it releases its hold on the data: outside the lock. */
      g_source_destroy (pending);
      g_source_unref (pending);
    }
}

void
qb_relay_free (QbRelay *relay)
{
  if (relay == NULL)
    return;
  qb_relay_cancel (relay);
  g_clear_pointer (&relay->context, g_main_context_unref);
  g_free (relay->name);
  g_mutex_clear (&relay->lock);
  g_free (relay);
}
