/* SPDX-License-Identifier: MIT */
/* qb-workers.h — a fixed set of worker threads for data-parallel loops.
 *
 * The engine splits work into numbered items (row chunks, tensors) and
 * hands them out in order of an atomic counter; what each item computes
 * must not depend on which thread ran it, so results are identical for any
 * thread count.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _QbWorkers QbWorkers;

/* fn runs once per item; thread is in [0, n_threads). */
typedef void (*QbWorkFunc) (gint64 item, guint thread, gpointer user_data);

/* More threads than this never help (and each costs a stack). */
#define QB_WORKERS_MAX_THREADS 1024

/* n_threads == 0 means one per online CPU; more than
 * QB_WORKERS_MAX_THREADS are cut to it.  When the system refuses a thread
 * (a process limit), the set runs with the threads it got: see
 * qb_workers_get_n_threads(). (transfer full) */
QbWorkers *qb_workers_new          (guint       n_threads);
void       qb_workers_free         (QbWorkers  *workers);
guint      qb_workers_get_n_threads (QbWorkers *workers);
/* Runs fn for items 0..n_items-1 on all threads (the caller's included) and
 * returns when every item is done.  Must not be called from inside fn. */
void       qb_workers_run          (QbWorkers  *workers,
                                    gint64      n_items,
                                    QbWorkFunc  fn,
                                    gpointer    user_data);
guint      qb_cpu_count            (void);

/* Per-thread scratch memory that lives as long as the pool: a loop run
 * once per tensor reuses the same pages instead of faulting in fresh ones
 * for every tensor (a page fault costs more than reading the page).
 * Returns at least size bytes, 64-byte aligned, contents undefined; the
 * pointer stays valid until the next call for the same thread and slot.
 * Call it only from thread's own work function, or between runs. */
#define QB_WORKERS_SCRATCH_SLOTS 4
gpointer   qb_workers_scratch      (QbWorkers  *workers,
                                    guint       thread,
                                    guint       slot,
                                    gsize       size);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbWorkers, qb_workers_free)

G_END_DECLS
