/* SPDX-License-Identifier: MIT */
/* qb-sensitivity-view.h — a sensitivity study at a glance: a heatmap of
 * layers × roles coloured by what quantizing that tensor alone in the
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

/* The tensor drawn at a point of the widget (heatmap cell or bar), or
 * NULL; and a point inside a tensor's bar (FALSE when it has none shown).
 * A click on a tensor emits "tensor-activated" with its name. */
const char *qb_sensitivity_view_get_tensor_at (QbSensitivityView *self,
                                               double             x,
                                               double             y);
gboolean    qb_sensitivity_view_get_tensor_point (QbSensitivityView *self,
                                               const char        *name,
                                               double            *x,
                                               double            *y);

G_END_DECLS
