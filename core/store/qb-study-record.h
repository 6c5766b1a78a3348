/* SPDX-License-Identifier: MIT */
/* qb-study-record.h — sensitivity studies as the experiment store keeps
 * them (the study itself runs in core/sensitivity/).
 *
 * A study is a model, a quantization method, a ladder of candidate
 * formats, a calibration set (for the proxies and the methods), a stretch
 * of evaluation tokens, and for every (tensor, rung of the ladder) one
 * cost row: the format studied (or why none could be), its size, the
 * instant proxies and, when it was measured, the KL divergence of the
 * whole model with that one tensor quantized.  Each cost row is written in
 * its own transaction as soon as it is known, so a cancelled or crashed
 * study keeps everything it measured and can be resumed.
 */
#pragma once

#include <gio/gio.h>

#include "qb-experiment.h"
#include "qb-store.h"

G_BEGIN_DECLS

typedef struct {
  gint64              id;
  char               *uuid;
  gint64              model_id;
  char               *model_name;        /* read back; may be NULL */
  char               *model_fingerprint; /* read back */
  gint64              created;
  gint64              updated;
  QbExperimentStatus  status;
  char               *method;            /* "rtn", "gptq", ... */
  char               *candidates;        /* the ladder as written (qb-candidates.h) */
  char               *proxy;             /* the proxy the fit maps to KLD: "out_err", "wmse", "mse" */
  gint64              calibration_set_id;/* 0: none */
  char               *eval_text_name;
  char               *eval_text_hash;    /* SHA-256 of the evaluation text */
  char               *eval_tokens_hash;  /* SHA-256 of the evaluated tokens */
  guint               eval_n_ctx;
  guint               eval_n_chunks;
  guint64             eval_first_token;  /* where the evaluated tokens start in the text's tokens */
  double              base_ppl;          /* float model on those tokens */
  double              fit_alpha;         /* kld ≈ S_t · proxy^alpha; NAN before the fit */
  double              fit_spearman;      /* of predicted vs measured over the measured costs */
  double              seconds;
  char               *settings_json;     /* everything else, a JSON object */
  char               *error;
} QbStudyRecord;

typedef struct {
  guint     position;      /* the tensor's index in the model */
  guint     rung;          /* index in the ladder */
  char     *tensor;
  char     *format;        /* studied; when skipped, the rung's first choice */
  gboolean  skipped;       /* no format of the rung fits the tensor */
  char     *note;          /* why skipped, or which choices of the rung did not fit */
  gint64    n_weights;
  guint64   bytes;         /* in format (0 when skipped) */
  double    mse;           /* weight MSE */
  double    wmse;          /* importance-weighted MSE; NAN without importance */
  double    out_err;       /* ‖(W−Ŵ)X‖² / ‖WX‖² on calibration XᵀX; NAN without */
  double    kld;           /* measured end to end; NAN when not measured */
  double    kld_err;       /* its standard error */
  double    seconds;
  int       expert;        /* -1: the whole tensor; else that expert of a 3-D expert tensor
                            * alone quantized (kept apart: qb_store_*_study_expert_cost*) */
} QbStudyCost;

QbStudyRecord *qb_study_record_new  (void);
void           qb_study_record_free (QbStudyRecord *s);
QbStudyCost   *qb_study_cost_new    (void);   /* every measure NAN */
QbStudyCost   *qb_study_cost_copy   (const QbStudyCost *c);
void           qb_study_cost_free   (QbStudyCost   *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbStudyRecord, qb_study_record_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbStudyCost, qb_study_cost_free)

/* Stores the model if new and starts a `running` study (id, uuid, model_id,
 * created, updated and status are set by the store).  Returns its id. */
gint64         qb_store_begin_study     (QbStore             *store,
                                         const QbModelRecord *model,
                                         const QbStudyRecord *study,
                                         GError             **error);
/* Marks a study running again, to resume it. */
gboolean       qb_store_resume_study    (QbStore             *store,
                                         gint64               id,
                                         GError             **error);
/* One cost row, in one transaction (the same tensor and rung again
 * replaces it). */
gboolean       qb_store_add_study_cost  (QbStore             *store,
                                         gint64               id,
                                         const QbStudyCost   *cost,
                                         GError             **error);
/* Ends a study: status, fit, base perplexity, time, and the message of a
 * failure. */
gboolean       qb_store_finish_study    (QbStore             *store,
                                         gint64               id,
                                         QbExperimentStatus   status,
                                         double               fit_alpha,
                                         double               fit_spearman,
                                         double               base_ppl,
                                         double               seconds,
                                         const char          *error_message,
                                         GError             **error);
QbStudyRecord *qb_store_get_study       (QbStore             *store,
                                         gint64               id,
                                         GError             **error);
/* Newest first; model_id 0: every model's. */
GPtrArray     *qb_store_list_studies    (QbStore             *store,
                                         gint64               model_id,
                                         GError             **error);
/* Of QbStudyCost, by position then rung. */
GPtrArray     *qb_store_get_study_costs (QbStore             *store,
                                         gint64               id,
                                         GError             **error);
/* One expert's row (cost->expert ≥ 0: tensor, format, n_weights, bytes,
 * mse, kld, kld_err and seconds are kept), in one transaction; the same
 * tensor, rung and expert again replaces it. */
gboolean       qb_store_add_study_expert_cost (QbStore           *store,
                                         gint64               id,
                                         const QbStudyCost   *cost,
                                         GError             **error);
/* Of QbStudyCost, by position, rung, then expert; empty for a study
 * measured tensor by tensor only. */
GPtrArray     *qb_store_get_study_expert_costs (QbStore          *store,
                                         gint64               id,
                                         GError             **error);
gboolean       qb_store_delete_study    (QbStore             *store,
                                         gint64               id,
                                         GError             **error);

G_END_DECLS
