/* SPDX-License-Identifier: MIT */
/* qb-constraints-popover.h — what a budget fill must respect besides the
 * budget and the pins: the formats allowed per role (a comma-separated
 * list, empty for any) and a floor in bits per weight for token_embd and
 * output.  They live in the plan (qb-allocation-plan.h), so they are saved
 * with it; edits go through win.set-allowed-formats and
 * win.set-embedding-floor, as menus and tests do. */
#pragma once

#include <gtk/gtk.h>

#include "qb-document.h"

G_BEGIN_DECLS

#define QB_TYPE_CONSTRAINTS_POPOVER (qb_constraints_popover_get_type ())
G_DECLARE_FINAL_TYPE (QbConstraintsPopover, qb_constraints_popover, QB, CONSTRAINTS_POPOVER, GtkPopover)

GtkWidget     *qb_constraints_popover_new        (void);
void           qb_constraints_popover_set_document (QbConstraintsPopover *self,
                                                  QbDocument           *document);
/* The entry of a role (NULL for a role the popover does not offer). */
GtkEntry      *qb_constraints_popover_get_entry  (QbConstraintsPopover *self,
                                                  QbTensorRole          role);
GtkSpinButton *qb_constraints_popover_get_floor  (QbConstraintsPopover *self);
/* "attn_v: Q6_K,Q8_0 · embeddings ≥ 6 bpw", or NULL when nothing is
 * constrained. */
char          *qb_constraints_describe           (QbPlan               *plan);

G_END_DECLS
