/* SPDX-License-Identifier: MIT */
/* qb-allocation-plan.h — between allocations and plans: writing an
 * allocation into a plan, pinned tensors, and the predicted KLD of any
 * plan under a cost table.
 *
 * An allocation becomes one override per tensor of the table.  The plan
 * remembers, in its options (so they survive JSON), which tensors are
 * pinned ("allocate.pinned": names joined by ','), where the costs came
 * from ("allocate.source") and the predicted KLD ("allocate.predicted_kld"). */
#pragma once

#include "qb-allocator.h"
#include "qb-cost-table.h"
#include "qb-plan.h"

G_BEGIN_DECLS

#define QB_PLAN_OPTION_PINNED        "allocate.pinned"
#define QB_PLAN_OPTION_SOURCE        "allocate.source"
#define QB_PLAN_OPTION_PREDICTED_KLD "allocate.predicted_kld"
/* The allocation's constraints a plan carries: "allocate.allow.ROLE"
 * (ROLE as qb_tensor_role_name writes it) = formats joined by ',', the
 * only ones a tensor of that role may take; "allocate.embedding_floor" =
 * bits per weight below which token_embd and output take no candidate. */
#define QB_PLAN_OPTION_ALLOW_PREFIX     "allocate.allow."
#define QB_PLAN_OPTION_EMBEDDING_FLOOR  "allocate.embedding_floor"

/* Sets an override per table tensor to its chosen format (the plan's
 * default method), and the options above.  source: "weight proxies",
 * "study 3", ... */
void      qb_allocation_apply          (const QbCostTable  *table,
                                        const QbAllocation *allocation,
                                        const char         *source,
                                        QbPlan             *plan);

gboolean  qb_plan_is_pinned            (QbPlan             *plan,
                                        const char         *tensor_name);
/* The pinned tensors' names as a set (char * keys, owned by the table). */
GHashTable *qb_plan_get_pinned_set     (QbPlan             *plan);
void      qb_plan_set_pinned           (QbPlan             *plan,
                                        const char         *tensor_name,
                                        gboolean            pinned);

/* Formats allowed for a role (NULL or empty: any); refuses unknown names. */
gboolean  qb_plan_set_allowed_formats  (QbPlan             *plan,
                                        QbTensorRole        role,
                                        const char         *formats,
                                        GError            **error);
const char *qb_plan_get_allowed_formats (QbPlan            *plan,
                                        QbTensorRole        role);
/* The floor in bits per weight for token_embd and output (0: none). */
void      qb_plan_set_embedding_floor  (QbPlan             *plan,
                                        double              bpw);
double    qb_plan_get_embedding_floor  (QbPlan             *plan);

/* Constraints holding the plan's pins, allowed formats per role and
 * embedding floor (see the options above; an unknown format name in
 * them is an error): each pinned tensor keeps the format
 * the plan resolves it to.  A pinned format the table has no candidate for
 * is added to the table (bytes from the tensor's shape; cost that of the
 * candidate nearest in bits, not measured), so a pin never fails for want
 * of a cost.  Pins on tensors outside the table are ignored. */
QbAllocConstraints *qb_alloc_constraints_from_plan (QbPlan       *plan,
                                                    QbModel      *model,
                                                    QbCostTable  *table,
                                                    GError      **error);

/* The predicted KLD of a resolved plan: the sum over the table's tensors
 * of the cost of the format each resolves to.  Tensors kept in their
 * stored type cost 0; those in a format the table does not hold cost
 * that of the candidate nearest in bits and are counted in *n_estimated
 * (may be NULL). */
double    qb_cost_table_predict        (const QbCostTable       *table,
                                        QbModel                 *model,
                                        const QbPlanResolution  *resolution,
                                        guint                   *n_estimated);
/* The cost of one tensor of the table in a format (or kept: format NULL),
 * by the same rule; *estimated set when not in the table (may be NULL). */
double    qb_cost_tensor_cost_of       (const QbCostTensor      *tensor,
                                        const QbFormat          *format,
                                        gboolean                *estimated);

G_END_DECLS
