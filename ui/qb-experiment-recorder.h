/* SPDX-License-Identifier: MIT */
/* qb-experiment-recorder.h — saves a run in the experiment store as it
 * goes: the experiment is begun before the first tensor, each tensor's
 * result is written as it finishes (so a long run's partial results
 * survive a crash), and the end records done, cancelled or failed.
 *
 * The writes happen on the run's worker thread, on a connection of their
 * own, so the UI's reads never wait for them.
 */
#pragma once

#include "qb-job-recorder.h"
#include "qb-run.h"
#include "qb-store.h"

G_BEGIN_DECLS

typedef struct _QbExperimentRecorder QbExperimentRecorder;

/* name may be NULL (the plan gives one). */
QbExperimentRecorder *qb_experiment_recorder_new       (QbStore              *store,
                                                        const char           *name);
/* Hands the recorder to the run, which frees it. */
void                  qb_experiment_recorder_attach    (QbExperimentRecorder *recorder,
                                                        QbRun                *run);
/* After the run's "finished": the experiment's id (0 when none was
 * stored) and why saving failed, if it did. */
gint64                qb_experiment_recorder_get_id    (QbExperimentRecorder *recorder);
const GError         *qb_experiment_recorder_get_error (QbExperimentRecorder *recorder);
/* After "finished": whether the run's end was stored, and as what (done,
 * cancelled, or failed when not every result was saved); FALSE when even
 * that write failed (a full disk): the experiment then stays marked
 * running until a store is opened, with room to write, after the process
 * is gone, which marks it interrupted. */
gboolean              qb_experiment_recorder_get_end (QbExperimentRecorder *recorder,
                                                      QbExperimentStatus   *status);

G_END_DECLS
