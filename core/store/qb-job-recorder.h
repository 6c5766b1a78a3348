/* SPDX-License-Identifier: MIT */
/* qb-job-recorder.h — a quantization run saved in the experiment store as
 * it goes: the experiment is begun before the first tensor, each tensor's
 * result is written when it finishes (one transaction each, so a long
 * run's partial results survive a crash), and the end records done,
 * cancelled or failed with the run's totals.
 *
 * Calls may come from different threads (the command line begins the
 * experiment on a thread of its own, the job reports tensors from its
 * finishing thread), one at a time, with a store connection no other
 * thread uses meanwhile.  Trouble saving never stops the run: the first
 * error is kept for the caller to show afterwards.
 */
#pragma once

#include "qb-job.h"
#include "qb-store.h"

G_BEGIN_DECLS

typedef struct _QbJobRecorder QbJobRecorder;

/* Begins the experiment.  spec may be NULL; its name (NULL: one made from
 * the plan), notes, tags and calibration set are used, the rest comes from
 * the plan, the model and n_threads.  store must outlive the recorder. (transfer full) */
QbJobRecorder *qb_job_recorder_begin        (QbStore                *store,
                                             QbModel                *model,
                                             QbPlan                 *plan,
                                             guint                   n_threads,
                                             const QbExperimentSpec *spec,
                                             GError                **error);
/* Has the job report each finished tensor to the recorder. */
void           qb_job_recorder_attach       (QbJobRecorder          *recorder,
                                             QbJob                  *job);
void           qb_job_recorder_tensor_done  (QbJobRecorder          *recorder,
                                             guint                   index,
                                             const QbTensorResult   *result);
/* Ends the experiment after the job ran (error_message: why it failed). */
gboolean       qb_job_recorder_finish       (QbJobRecorder          *recorder,
                                             QbJob                  *job,
                                             QbExperimentStatus      status,
                                             const char             *error_message,
                                             GError                **error);
gint64         qb_job_recorder_get_id       (QbJobRecorder          *recorder);
/* The first error writing a tensor, or NULL. */
const GError  *qb_job_recorder_get_error    (QbJobRecorder          *recorder);
void           qb_job_recorder_free         (QbJobRecorder          *recorder);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbJobRecorder, qb_job_recorder_free)

/* "Q4_K_M + 2 rules (Q6_K, Q8_0) + 1 override (F16)": what makes a plan,
 * in a few words.  qb_job_recorder_begin() names an experiment this way
 * when the spec has no name, with " (2)", " (3)"... when the model already
 * has an experiment of that name. (transfer full) */
char          *qb_experiment_name_for_plan  (QbPlan                 *plan);

G_END_DECLS
