/* SPDX-License-Identifier: MIT */
/* qb-plan-private.h — llama.cpp-style presets, used by qb-plan.c. */
#pragma once

#include "qb-plan.h"

G_BEGIN_DECLS

/* What a preset needs to know about a model, computed once per resolve. */
typedef struct _QbPresetContext QbPresetContext;

gboolean          qb_preset_exists          (const char      *preset);
/* Canonical spelling of a preset name (case-insensitive look-up), or NULL. */
const char       *qb_preset_canonical_name  (const char      *preset);
/* llama.cpp's LLAMA_FTYPE value of a preset, -1 when unknown. */
int               qb_preset_llama_ftype     (const char      *preset);
/* LLAMA_FTYPE for a ggml format used as a model's main type, -1 if none. */
int               qb_llama_ftype_for_format (const char      *format);

QbPresetContext  *qb_preset_context_new     (const char      *preset,
                                             QbModel         *model);
void              qb_preset_context_free    (QbPresetContext *pc);
/* The preset's format for a tensor: a format name or QB_FORMAT_KEEP. */
const char       *qb_preset_choose          (QbPresetContext *pc,
                                             guint            tensor_index);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbPresetContext, qb_preset_context_free)

G_END_DECLS
