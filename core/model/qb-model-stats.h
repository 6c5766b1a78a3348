/* SPDX-License-Identifier: MIT */
/* qb-model-stats.h — weight statistics of every tensor of a model, computed
 * in parallel and streaming: each thread converts one chunk of values at a
 * time into its own small buffer, so memory stays bounded whatever the
 * model's size.
 *
 * Chunks and the order their partial results are merged in do not depend
 * on the number of threads, so neither do the results.
 */
#pragma once

#include "qb-model.h"
#include "qb-moments.h"
#include "qb-workers.h"

G_BEGIN_DECLS

/* Values converted per work item (a multiple of every block size). */
#define QB_STATS_CHUNK 65536

typedef struct {
  gboolean  readable;     /* FALSE: the tensor's type has no converter; the rest is empty */
  QbMoments moments;
  guint64   n_outliers;   /* |w − mean| > QB_OUTLIER_SIGMAS · std */
} QbTensorStats;

static inline double
qb_tensor_stats_outlier_share (const QbTensorStats *s)
{
  return s->moments.n ? (double) s->n_outliers / (double) s->moments.n : 0.0;
}

/* fraction in [0, 1]; called on the calling thread between chunks of work. */
typedef void (*QbStatsProgressFunc) (double fraction, gpointer user_data);

/* Fills stats[i] for every tensor i of the model (stats holds
 * qb_model_get_n_tensors() entries).  Two passes over the data: moments,
 * then outliers against the final mean and deviation.  Returns FALSE only
 * when cancelled. */
gboolean qb_model_compute_stats (QbModel              *model,
                                 QbWorkers            *workers,
                                 QbTensorStats        *stats,
                                 QbStatsProgressFunc   progress,
                                 gpointer              user_data,
                                 GCancellable         *cancellable,
                                 GError              **error);

G_END_DECLS
