/* qb-format.h — the registry of quantization formats.
 *
 * One table (qb-format.c) lists every format Quantbench can produce: its
 * name, family, bits, block geometry, and the functions that quantize and
 * dequantize a row.  Adding a format is adding a row.
 */
#pragma once

#include <glib.h>

#include "qb-dtype.h"

G_BEGIN_DECLS

typedef enum {
  QB_FAMILY_FLOAT,   /* F32, F16, BF16: stored as floats */
  QB_FAMILY_GGML,    /* llama.cpp block formats, bit-exact */
  QB_FAMILY_INT,     /* uniform integer INTn */
  QB_FAMILY_NF,      /* NormalFloat (NF4) */
  QB_FAMILY_MX,      /* OCP microscaling (MXFP4) */
  QB_FAMILY_FP8,     /* FP8 E4M3 / E5M2 with a float scale */
} QbFormatFamily;

typedef enum {
  QB_SCOPE_BLOCK,    /* a scale per block_size values along a row */
  QB_SCOPE_CHANNEL,  /* a scale per row (output channel) */
  QB_SCOPE_TENSOR,   /* one scale for the whole tensor */
} QbScaleScope;

typedef struct _QbFormat QbFormat;

/* What a row quantizer needs beyond the row itself. */
typedef struct {
  const QbFormat *format;
  const float    *importance;    /* per-column weights (ne[0] of them), or NULL */
  gboolean        search;        /* search scales/clipping instead of plain rounding */
  float           tensor_absmax; /* QB_SCOPE_TENSOR: max |w| over the whole tensor */
} QbQuantParams;

/* Quantizes n values of x into y (row_bytes(n) bytes). */
typedef void     (*QbQuantizeRowFunc)   (const QbQuantParams *p,
                                         const float *x, void *y, gint64 n);
/* Inverse; p carries the same tensor_absmax as when quantizing. */
typedef void     (*QbDequantizeRowFunc) (const QbQuantParams *p,
                                         const void *y, float *x, gint64 n);

struct _QbFormat {
  const char          *name;        /* "Q4_K", "INT4_G128", "INT4_G128_ASYM", "NF4", ... */
  QbFormatFamily       family;
  const char          *summary;     /* one line for listings and tooltips */
  QbDType              dtype;       /* GGUF storage type when native, else QB_DTYPE_INVALID */
  guint                bits;        /* bits of one quantized value */
  guint                block_size;  /* values per block; 0 when the scale is per row or tensor */
  guint                block_bytes; /* bytes per block (scale scope BLOCK) */
  QbScaleScope         scope;
  gboolean             asymmetric;  /* has a zero point / minimum */
  const char          *fallback;    /* tried when rows do not fit block_size; NULL = F16 */
  QbQuantizeRowFunc    quantize_row;
  QbDequantizeRowFunc  dequantize_row;
};

guint            qb_format_count        (void);
const QbFormat  *qb_format_get          (guint          index);
/* By name, case-insensitive.  NULL when unknown. */
const QbFormat  *qb_format_find         (const char    *name);
const QbFormat  *qb_format_for_dtype    (QbDType        dtype);   /* native ggml/float formats */
/* TRUE when a row of n values can be held in this format. */
gboolean         qb_format_fits         (const QbFormat *format,
                                         gint64          n);
/* Bytes for one row of n values (FALSE when it does not fit). */
gboolean         qb_format_row_bytes    (const QbFormat *format,
                                         gint64          n,
                                         guint64        *bytes);
/* Bytes for a whole tensor of n_rows rows of n values, including any
 * per-tensor scale. */
gboolean         qb_format_tensor_bytes (const QbFormat *format,
                                         gint64          n,
                                         gint64          n_rows,
                                         guint64        *bytes);
/* Nominal bits per weight for rows of n values, scales included. */
double           qb_format_bpw          (const QbFormat *format,
                                         gint64          n);
/* Walks the fallback chain until a format fits rows of n values. */
const QbFormat  *qb_format_fit          (const QbFormat *format,
                                         gint64          n);
const char      *qb_format_family_name  (QbFormatFamily  family);

G_END_DECLS
