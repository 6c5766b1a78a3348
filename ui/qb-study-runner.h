/* SPDX-License-Identifier: MIT */
/* qb-study-runner.h — a sensitivity study of the open model, run (or
 * resumed) in the background from the window.
 *
 * On a worker thread at low priority: the calibration statistics of the
 * calibration text (importance and XᵀX; when it is the evaluation text,
 * its chunks start after the evaluated tokens, so the two never overlap),
 * then qb_sensitivity_run() over the candidate ladder, storing every cost
 * as it is measured.  Progress reaches the main loop at most ten times a
 * second; Cancel stops within one measurement and the study keeps what it
 * measured (resume_id resumes it).  "finished" comes once.
 */
#pragma once

#include <gio/gio.h>

#include "qb-model.h"
#include "qb-run.h"
#include "qb-store.h"

G_BEGIN_DECLS

typedef struct {
  const char *calib_path;   /* NULL or "": no calibration (proxies from the weights; RTN only) */
  guint       calib_chunks; /* 0: 64 */
  const char *eval_path;    /* held-out text the KLD is measured on */
  guint       eval_chunks;  /* 0: QB_SENSITIVITY_DEFAULT_CHUNKS */
  guint       eval_ctx;     /* 0: the model's context, at most 512 */
  const char *candidates;   /* NULL or "": the allocator's default ladder */
  const char *method;       /* NULL: "rtn" */
  guint       n_threads;    /* 0: all cores */
  gint64      resume_id;    /* > 0: resume this study */
  gboolean    per_expert;   /* each expert of a 3-D expert tensor alone too */
} QbStudySettings;

#define QB_TYPE_STUDY_RUNNER (qb_study_runner_get_type ())
G_DECLARE_FINAL_TYPE (QbStudyRunner, qb_study_runner, QB, STUDY_RUNNER, GObject)

QbStudyRunner  *qb_study_runner_new          (QbStore               *store,
                                              QbModel               *model,
                                              const QbStudySettings *settings);
void            qb_study_runner_start        (QbStudyRunner         *self);
void            qb_study_runner_cancel       (QbStudyRunner         *self);
/* READY, RUNNING, DONE, CANCELLED or FAILED. */
QbRunStatus     qb_study_runner_get_status   (QbStudyRunner         *self);
gboolean        qb_study_runner_is_running   (QbStudyRunner         *self);
/* The study's id once it exists (0 before, or when it never started). */
gint64          qb_study_runner_get_study_id (QbStudyRunner         *self);
/* "Studying · 120 of 444 (98 measured)", the current tensor, and the
 * share done. */
const char     *qb_study_runner_get_text     (QbStudyRunner         *self);
const char     *qb_study_runner_get_tensor   (QbStudyRunner         *self);
double          qb_study_runner_get_fraction (QbStudyRunner         *self);
double          qb_study_runner_get_elapsed  (QbStudyRunner         *self);
const GError   *qb_study_runner_get_error    (QbStudyRunner         *self);
/* The settings it runs with (strings owned by the runner). */
const QbStudySettings *qb_study_runner_get_settings (QbStudyRunner   *self);

G_END_DECLS
