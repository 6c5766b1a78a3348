/* SPDX-License-Identifier: MIT */
/* qb-relay.h — progress from a worker thread, at a rate a person can read.
 *
 * Work reports progress many times a second; whoever shows it needs it
 * a few times a second.  QbRateLimit says when enough time has passed
 * since the last time it said so.  QbRelay carries "something changed"
 * from any thread to a main context: the worker stores its latest state
 * (under its own lock) and calls qb_relay_schedule (); the relay's
 * function then runs in the context, at once when the last run is at
 * least the interval ago, else when the interval is over — one run for
 * any number of schedules in between, and never a last state left behind.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  gint64 last;   /* monotonic µs of the last pass; 0: never */
} QbRateLimit;

/* TRUE, and the time noted, when interval_ms have passed since the last
 * TRUE (always the first time, and whenever force is set). */
gboolean  qb_rate_limit_pass (QbRateLimit *limit, guint interval_ms, gboolean force);

typedef struct _QbRelay QbRelay;
typedef gpointer (*QbRelayRefFunc) (gpointer data);   /* g_object_ref fits */

/* func runs in context (NULL: the default one) with data; while a run is
 * pending the relay holds a reference on data (ref/unref may be NULL when
 * data outlives the relay).  name names the GSource. */
QbRelay  *qb_relay_new       (GMainContext   *context,
                              guint           interval_ms,
                              const char     *name,
                              GSourceFunc     func,
                              gpointer        data,
                              QbRelayRefFunc  ref,
                              GDestroyNotify  unref);
/* From any thread. */
void      qb_relay_schedule  (QbRelay        *relay);
/* Drops a pending run (the work ended: its last state is shown otherwise). */
void      qb_relay_cancel    (QbRelay        *relay);
void      qb_relay_free      (QbRelay        *relay);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbRelay, qb_relay_free)

G_END_DECLS
