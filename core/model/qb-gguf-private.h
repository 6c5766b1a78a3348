/* SPDX-License-Identifier: MIT */
/* qb-gguf-private.h — what the GGUF reader and writer share. */
#pragma once

#include "qb-gguf.h"

G_BEGIN_DECLS

#define QB_GGUF_MAGIC "GGUF"
/* Arrays of arrays deeper than this are refused: nothing real nests, and
 * the reader recurses once per level. */
#define QB_GGUF_MAX_ARRAY_DEPTH 8

/* Bytes one value of a fixed-size type takes in the file (and in memory:
 * numbers are stored in their own C type, bools as one byte); 0 for
 * strings and arrays, whose size depends on their contents. */
static inline guint
qb_gguf_type_fixed_size (QbGgufType type)
{
  switch (type)
    {
    case QB_GGUF_TYPE_UINT8:
    case QB_GGUF_TYPE_INT8:
    case QB_GGUF_TYPE_BOOL:    return 1;
    case QB_GGUF_TYPE_UINT16:
    case QB_GGUF_TYPE_INT16:   return 2;
    case QB_GGUF_TYPE_UINT32:
    case QB_GGUF_TYPE_INT32:
    case QB_GGUF_TYPE_FLOAT32: return 4;
    case QB_GGUF_TYPE_UINT64:
    case QB_GGUF_TYPE_INT64:
    case QB_GGUF_TYPE_FLOAT64: return 8;
    case QB_GGUF_TYPE_STRING:
    case QB_GGUF_TYPE_ARRAY:
    default:                   return 0;
    }
}

static inline gboolean
qb_gguf_type_is_valid (guint32 type)
{
  return type <= QB_GGUF_TYPE_FLOAT64;
}

/* "uint32", "array", ... */
const char *qb_gguf_type_name (QbGgufType type);

/* Rounds up to a multiple of a power-of-two alignment; FALSE on overflow. */
static inline gboolean
qb_gguf_pad (guint64 offset, guint64 alignment, guint64 *out)
{
  if (offset > G_MAXUINT64 - (alignment - 1))
    return FALSE;
  *out = (offset + alignment - 1) & ~(alignment - 1);
  return TRUE;
}

/* The start of the file image (the header is its first data_offset bytes). */
const guint8 *qb_gguf_get_data (QbGguf *gguf);

/* A name usable in messages and listings: keys and tensor names are checked
 * for UTF-8 without control characters, so only length needs limiting. */
char *qb_gguf_quote_name (const char *name);

G_END_DECLS
