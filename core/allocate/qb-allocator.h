/* SPDX-License-Identifier: MIT */
/* qb-allocator.h — one candidate format per tensor of a cost table, under
 * a budget, minimising the predicted KLD (the sum of the chosen costs).
 *
 * Exact for the additive model.  Lagrangian relaxation: each tensor's
 * lower convex hull of (bytes, cost), its segments taken in order of
 * KLD saved per byte until the budget is spent, gives the dual optimum λ
 * and a lower bound; a greedy fill gives a feasible plan.  Every candidate
 * whose reduced cost c + λ·b − min(c + λ·b) exceeds the gap between the
 * two cannot be in a better plan and is dropped; the tensors left with a
 * choice are solved exactly by a dynamic program over non-dominated
 * (bytes, cost) states, pruned by the same bound; tensors whose options
 * are identical are decided together, by how many take each option.  The result equals a
 * brute-force search (tests/test-allocator.c).  With the budget "KLD ≤ x"
 * the roles swap: the fewest bytes with predicted KLD ≤ x.  Ties go to the
 * candidate listed first and the tensor listed first, so the same inputs
 * give the same result.
 */
#pragma once

#include <gio/gio.h>

#include "qb-cost-table.h"
#include "qb-model.h"

G_BEGIN_DECLS

#define QB_ALLOC_ERROR (qb_alloc_error_quark ())
GQuark qb_alloc_error_quark (void);

typedef enum {
  QB_ALLOC_ERROR_INFEASIBLE,   /* no choice meets the budget and constraints */
  QB_ALLOC_ERROR_INVALID,      /* a pin or rule names what the table lacks */
} QbAllocError;

typedef enum {
  QB_ALLOC_TARGET_BPW,     /* total bits per weight ≤ value (all weights, fixed ones too) */
  QB_ALLOC_TARGET_BYTES,   /* total bytes ≤ value (fixed tensors included) */
  QB_ALLOC_TARGET_KLD,     /* predicted KLD ≤ value, fewest bytes */
} QbAllocTarget;

typedef struct {
  QbAllocTarget target;
  double        value;
} QbAllocBudget;

/* Parses "5.5" for bpw, "120M"/"3.2G"/"1000000" (bytes; K, M, G are
 * powers of 1024) for bytes, "0.02" for KLD. */
gboolean qb_alloc_budget_parse (QbAllocTarget  target,
                                const char    *text,
                                QbAllocBudget *budget,
                                GError       **error);

/* What the allocation must respect. */
typedef struct _QbAllocConstraints QbAllocConstraints;

QbAllocConstraints *qb_alloc_constraints_new   (void);
void                qb_alloc_constraints_free  (QbAllocConstraints *c);
/* The tensor takes this format, whatever it costs (it must be one of the
 * tensor's candidates). */
void                qb_alloc_constraints_pin   (QbAllocConstraints *c,
                                                const char         *tensor_name,
                                                const QbFormat     *format);
/* The pinned format, or NULL. */
const QbFormat     *qb_alloc_constraints_get_pin (const QbAllocConstraints *c,
                                                  const char               *tensor_name);
/* Tensors of this role may only take these formats (called again for the
 * same role: replaces the list). */
void                qb_alloc_constraints_allow (QbAllocConstraints *c,
                                                QbTensorRole        role,
                                                const QbFormat    **formats,
                                                guint               n_formats);
/* token_embd and output take no candidate below this many bits per
 * weight (0: no floor). */
void                qb_alloc_constraints_set_embedding_floor (QbAllocConstraints *c,
                                                              double              bpw);

typedef struct {
  guint     n_tensors;          /* = the table's */
  guint    *choice;             /* per table tensor: index into its candidates */
  gboolean *pinned;             /* per table tensor: chosen by a pin */
  guint64   bytes;              /* total, fixed tensors included */
  double    bpw;                /* bytes · 8 / all weights */
  double    predicted_kld;      /* sum of the chosen costs */
  double    lower_bound;        /* the Lagrangian bound on the optimum */
  gboolean  exact;              /* proven optimal (FALSE only when the exact
                                 * stage hit its state limit) */
  guint     n_free;             /* tensors the exact stage had to decide */
} QbAllocation;

/* NULL with QB_ALLOC_ERROR_INFEASIBLE when even the smallest choice
 * exceeds the budget (the message says the smallest size possible). */
QbAllocation *qb_allocate            (const QbCostTable        *table,
                                      const QbAllocBudget      *budget,
                                      const QbAllocConstraints *constraints,
                                      GError                  **error);
void          qb_allocation_free     (QbAllocation             *allocation);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbAllocConstraints, qb_alloc_constraints_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbAllocation, qb_allocation_free)

G_END_DECLS
