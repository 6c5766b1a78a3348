/* SPDX-License-Identifier: MIT */
/* qb-format.h — the registry of quantization formats.
 *
 * One table (qb-format.c) lists every format Quantbench can produce: its
 * name, family, bits, block geometry, and the functions that quantize and
 * dequantize a row.  Adding a format is adding a row.
 *
 * Row functions take a whole row (ne[0] values): some formats use
 * statistics of the whole row.  Byte layouts, all little-endian:
 *
 *   F32, F16, BF16   plain values.
 *   ggml types       exactly as in GGUF (llama.cpp's block structs).
 *   INTn_Gg[_ASYM]   per group of g: f16 scale d, [u8 zero point z,]
 *                    g codes of n bits packed LSB first (code i in bits
 *                    n·i .. n·i+n-1 of the group's code bytes).
 *                    Symmetric: x = d·(u - 2^(n-1)); asymmetric: x = d·(u - z).
 *   INTn_CH[_ASYM]   per row: f16 d, [u8 z,] the row's codes packed as
 *                    above, padded to a whole byte.
 *   INTn_T           per row: the codes only; the tensor's scale
 *                    d = f16(tensor_absmax / (2^(n-1) - 1)) is stored once
 *                    (2 bytes, counted by qb_format_tensor_bytes()).
 *   NF4              per 64: f32 absmax, 32 bytes of 4-bit indices into the
 *                    16 NormalFloat levels, first value in the high nibble
 *                    (bitsandbytes' order, no double quantization).
 *   MXFP4            per 32 (OCP MX): u8 E8M0 scale 2^(e-127), 16 bytes of
 *                    E2M1 codes, value 2j in the low nibble of byte j.
 *   FP8_*_CH         per row: f32 scale s, one E4M3/E5M2 byte per value.
 *   FP8_*_T          one byte per value; s = tensor_absmax / max finite,
 *                    stored once as f32 (4 bytes, in tensor_bytes).
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
  gboolean        search;        /* search scales/clipping instead of plain rounding
                                  * (K-quants and IQ4_XS: their own search, always on) */
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
  guint                scale_bytes; /* CHANNEL: scale (and zero) bytes heading each row;
                                       TENSOR: bytes of the one per-tensor scale */
  gboolean             asymmetric;  /* has a zero point / minimum */
  const char          *fallback;    /* tried when rows do not fit block_size; NULL = F16 */
  QbQuantizeRowFunc    quantize_row;
  QbDequantizeRowFunc  dequantize_row;
  const char          *device_kernel; /* the OpenCL kernel (core/quantize/qb-quantize-device.cl)
                                         that rounds this format on a device with the CPU's
                                         bytes, or NULL: the CPU only */
  const char          *device_kernel_imatrix; /* the kernel that rounds it with an importance
                                                 matrix as the CPU does (the plain kernel where the
                                                 CPU ignores importance), or NULL: the CPU only */
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
/* The one scale of a per-tensor format (INTn_T's step
 * f16 (absmax / (2^(n-1) - 1)), FP8_*_T's absmax / largest finite value,
 * 1 for a zero tensor) as its rows are rounded against it. */
float            qb_format_tensor_scale (const QbFormat *format,
                                         float           tensor_absmax);
/* Nominal bits per weight for rows of n values, scales included (a
 * per-tensor scale, a few bytes per tensor, is left out); NAN when rows of
 * n do not fit. */
double           qb_format_bpw          (const QbFormat *format,
                                         gint64          n);
/* Walks the fallback chain until a format fits rows of n values; a NULL
 * fallback means F16. */
const QbFormat  *qb_format_fit          (const QbFormat *format,
                                         gint64          n);
const char      *qb_format_family_name  (QbFormatFamily  family);

G_END_DECLS
