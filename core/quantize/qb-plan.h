/* SPDX-License-Identifier: MIT */
/* qb-plan.h — which format and method each tensor gets.
 *
 * A plan has a default format and method, an optional llama.cpp-style
 * preset, ordered name rules (glob or regex, first match wins) and
 * explicit per-tensor overrides.  Precedence, highest first: override,
 * 1-D tensors kept as they are (when keep_1d), first matching rule, the
 * preset's choice, the default.  So a broad rule such as blk.*.attn_*
 * never quantizes norm vectors behind keep_1d's back: to quantize 1-D
 * tensors by rule, turn keep_1d off (an override by hand still applies).
 * Plans round-trip through versioned JSON.
 *
 * Globs (fnmatch(3): *, ?, classes such as [qkv] or [0-3], [!…] for
 * "none of") match the whole tensor name; a backslash quotes the next
 * character.  Regular expressions (GRegex) match anywhere in the name
 * unless anchored.  A preset
 * decides every tensor (it keeps what llama-quantize keeps), so with a
 * preset the default only matters where no preset is set.  A tensor whose
 * rows do not fit the requested format gets the first format of the
 * registry's fallback chain that fits, with the reason recorded.  A new
 * plan: default Q8_0, method rtn, keep_1d, no preset, no rules.
 * Every edit emits "changed" (and notify for the properties
 * default-format, default-method, preset, keep-1d).
 *
 * JSON (version 1):
 *   { "version": 1, "default_format": "Q4_K", "default_method": "rtn",
 *     "preset": "Q4_K_M" | null, "keep_1d": true,
 *     "rules": [ { "pattern": "*.ffn_down.*", "kind": "glob" | "regex",
 *                  "format": "Q6_K", "method": "search" (optional) } ],
 *     "overrides": [ { "tensor": "output.weight", "format": "Q8_0",
 *                      "method": "rtn" (optional) } ],
 *     "options": { "gptq.damp": "0.01" } }
 * A larger version is refused with QB_PLAN_ERROR_VERSION; unknown members
 * are ignored; unknown formats, methods and presets are refused.
 */
#pragma once

#include <gio/gio.h>

#include "qb-format.h"
#include "qb-method.h"
#include "qb-model.h"

G_BEGIN_DECLS

#define QB_PLAN_ERROR (qb_plan_error_quark ())
GQuark qb_plan_error_quark (void);

typedef enum {
  QB_PLAN_ERROR_INVALID,     /* bad JSON, unknown format or method, bad pattern */
  QB_PLAN_ERROR_VERSION,     /* written by a newer Quantbench */
} QbPlanError;

typedef enum {
  QB_RULE_GLOB,
  QB_RULE_REGEX,
} QbRuleKind;

/* The format name "keep" means: leave the tensor in its stored type. */
#define QB_FORMAT_KEEP "keep"

typedef struct {
  char       *pattern;
  QbRuleKind  kind;
  char       *format;    /* a format name or "keep" */
  char       *method;    /* NULL: the plan's default method */
} QbPlanRule;

#define QB_TYPE_PLAN (qb_plan_get_type ())
G_DECLARE_FINAL_TYPE (QbPlan, qb_plan, QB, PLAN, GObject)

/* (transfer full) */
QbPlan             *qb_plan_new                (void);
QbPlan             *qb_plan_copy               (QbPlan       *plan);
/* Names of the presets ("Q4_K_M", "Q5_K_M", "Q3_K_M", ...), NULL-terminated. */
const char * const *qb_plan_list_presets       (void);
const char         *qb_plan_preset_summary     (const char   *preset);

const char         *qb_plan_get_default_format (QbPlan *plan);
void                qb_plan_set_default_format (QbPlan *plan, const char *format);
const char         *qb_plan_get_default_method (QbPlan *plan);
void                qb_plan_set_default_method (QbPlan *plan, const char *method);
const char         *qb_plan_get_preset         (QbPlan *plan);   /* NULL: none */
void                qb_plan_set_preset         (QbPlan *plan, const char *preset);
gboolean            qb_plan_get_keep_1d        (QbPlan *plan);
/* TRUE when keep_1d keeps this tensor whatever the rules say (1-D tensors,
 * and a mixture of experts' routers, which llama-quantize keeps too). */
gboolean            qb_plan_keeps_1d_tensor    (QbPlan *plan, const QbTensor *tensor);
void                qb_plan_set_keep_1d        (QbPlan *plan, gboolean keep);

guint               qb_plan_get_n_rules        (QbPlan *plan);
const QbPlanRule   *qb_plan_get_rule           (QbPlan *plan, guint index);
/* position -1 appends.  FALSE (and error) when a regex does not compile. */
gboolean            qb_plan_insert_rule        (QbPlan *plan, int position,
                                                const char *pattern, QbRuleKind kind,
                                                const char *format, const char *method,
                                                GError **error);
void                qb_plan_remove_rule        (QbPlan *plan, guint index);
void                qb_plan_move_rule          (QbPlan *plan, guint from, guint to);
/* TRUE when rule `index` matches the tensor name (for highlighting). */
gboolean            qb_plan_rule_matches       (QbPlan *plan, guint index, const char *tensor_name);

void                qb_plan_set_override       (QbPlan *plan, const char *tensor_name,
                                                const char *format, const char *method);
void                qb_plan_clear_override     (QbPlan *plan, const char *tensor_name);
/* Returns FALSE when the tensor has no override. */
gboolean            qb_plan_get_override       (QbPlan *plan, const char *tensor_name,
                                                const char **format, const char **method);
void                qb_plan_clear_overrides    (QbPlan *plan);
guint               qb_plan_get_n_overrides    (QbPlan *plan);
/* The index-th override in the order they were set: returns the tensor name. */
const char         *qb_plan_get_override_at    (QbPlan *plan, guint index,
                                                const char **format, const char **method);

/* Method options (e.g. GPTQ damp, group order), applied to every tensor. */
void                qb_plan_set_option         (QbPlan *plan, const char *key, const char *value);
const char         *qb_plan_get_option         (QbPlan *plan, const char *key);
/* All options (char* -> char*), owned by the plan. (transfer none) */
GHashTable         *qb_plan_get_options        (QbPlan *plan);

char               *qb_plan_to_json            (QbPlan *plan);
QbPlan             *qb_plan_new_from_json      (const char *json, GError **error);

/* The plan applied to one model. */
typedef struct {
  const QbFormat *format;           /* NULL: kept in its stored type */
  const QbFormat *requested;        /* what rules asked for (NULL for keep) */
  const QbMethod *method;           /* NULL when kept */
  char           *fallback_reason;  /* set when format != requested */
  char           *source;           /* "override", "rule 2" (1-based), "1-D", "preset Q4_K_M", "default" */
  guint64         bytes;            /* bytes after quantization */
  double          bpw;
} QbTensorChoice;

typedef struct {
  guint           n_tensors;
  QbTensorChoice *choices;          /* one per model tensor, in model order */
  guint64         original_bytes;
  guint64         quantized_bytes;
  gint64          n_params;
  double          bpw;              /* quantized_bytes * 8 / n_params */
  guint           n_fallbacks;
} QbPlanResolution;

/* Instant: no tensor data is read. (transfer full) */
QbPlanResolution   *qb_plan_resolve            (QbPlan *plan, QbModel *model, GError **error);
void                qb_plan_resolution_free    (QbPlanResolution *res);
/* llama.cpp's LLAMA_FTYPE value closest to the resolved plan: the preset's
 * when there is one, else the file type of the ggml type that holds the
 * most weights of the quantized matrices (Q4_K counts as Q4_K_M, Q3_K as
 * Q3_K_M, Q5_K as Q5_K_M); -1 when no ggml type is used. */
int                 qb_plan_resolution_llama_ftype (QbPlan *plan, QbModel *model,
                                                    const QbPlanResolution *res);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbPlanResolution, qb_plan_resolution_free)

G_END_DECLS
