/* SPDX-License-Identifier: MIT */
/* qb-sensitivity-view.h — a sensitivity study at a glance: a heatmap of
 * layers × roles (or × the experts of one kind) coloured by what quantizing that tensor alone in the
 * chosen candidate costs (log scale of end-to-end KLD; hatched grey where
 * the candidate does not fit), and beside it the tensors as bars sorted
 * by that cost, most sensitive first.  A Cairo chart (exportable). */
#pragma once

#include <gtk/gtk.h>

#include "qb-sensitivity.h"

G_BEGIN_DECLS

#define QB_TYPE_SENSITIVITY_VIEW (qb_sensitivity_view_get_type ())
G_DECLARE_FINAL_TYPE (QbSensitivityView, qb_sensitivity_view, QB, SENSITIVITY_VIEW, GtkWidget)

GtkWidget  *qb_sensitivity_view_new           (void);
/* Copies what it shows from the study (NULL: empty). */
void        qb_sensitivity_view_set_study     (QbSensitivityView  *self,
                                               QbSensitivityStudy *study);
/* Which candidate (index into the study's ladder) the colours show. */
void        qb_sensitivity_view_set_candidate (QbSensitivityView  *self,
                                               guint               candidate);
guint       qb_sensitivity_view_get_candidate (QbSensitivityView  *self);
/* Tensors in bar order (most sensitive first under the candidate):
 * the name of the i-th, or NULL past the end. */
const char *qb_sensitivity_view_get_ranked    (QbSensitivityView  *self,
                                               guint               i);
/* "blk.3.ffn_down.weight · Q4_0: KLD 2.1e-03 (measured)", or "… does not
 * fit", for a heatmap cell; NULL when no tensor is there. */
char       *qb_sensitivity_view_describe      (QbSensitivityView  *self,
                                               int                 layer,
                                               QbTensorRole        role);

/* A study measured per expert: the heatmap can show the experts of one
 * expert tensor kind (QB_ROLE_FFN_DOWN_EXPS, ...) as layers × experts,
 * each cell one expert alone in the candidate; QB_ROLE_OTHER shows the
 * tensors (layers × roles).  A kind without per-expert measurements
 * shows the tensors.  A click on an expert column's header ("down ▸")
 * opens its experts, on the grid's mode line goes back, through the
 * action "sensitivity.experts" (s: the role name, "" the tensors) when
 * an ancestor has it. */
void         qb_sensitivity_view_set_expert_role  (QbSensitivityView *self,
                                                   QbTensorRole       role);
QbTensorRole qb_sensitivity_view_get_expert_role  (QbSensitivityView *self);
/* The kinds with per-expert measurements, into roles (up to max); their
 * number. */
guint        qb_sensitivity_view_get_expert_roles (QbSensitivityView *self,
                                                   QbTensorRole      *roles,
                                                   guint              max);

/* The tensor drawn at a point of the widget (heatmap cell or bar), or
 * NULL; and a point inside a tensor's bar (FALSE when it has none shown),
 * inside its heatmap cell ("tensor #expert" in an experts' grid), or on
 * a column's header (QB_ROLE_OTHER: the experts' grid's way back).
 * A click on a tensor emits "tensor-activated" with its name;
 * qb_sensitivity_view_activate_at does what a click there does. */
const char *qb_sensitivity_view_get_tensor_at (QbSensitivityView *self,
                                               double             x,
                                               double             y);
gboolean    qb_sensitivity_view_get_tensor_point (QbSensitivityView *self,
                                               const char        *name,
                                               double            *x,
                                               double            *y);
gboolean    qb_sensitivity_view_get_cell_point (QbSensitivityView *self,
                                                const char        *name,
                                                double            *x,
                                                double            *y);
gboolean    qb_sensitivity_view_get_header_point (QbSensitivityView *self,
                                                  QbTensorRole       role,
                                                  double            *x,
                                                  double            *y);
void        qb_sensitivity_view_activate_at   (QbSensitivityView *self,
                                               double             x,
                                               double             y);

G_END_DECLS
