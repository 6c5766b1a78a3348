/* SPDX-License-Identifier: MIT */
/* qb-dtype.h — element types that tensors are stored in.
 *
 * ggml's types keep their ggml ids, so a GGUF type field maps straight onto
 * QbDType.  Storage types that only safetensors has get ids above the ggml
 * range.  One table (qb-dtype.c) gives each its name, block geometry and a
 * dequantizer; a type without a dequantizer is listed but not readable.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  QB_DTYPE_F32     = 0,
  QB_DTYPE_F16     = 1,
  QB_DTYPE_Q4_0    = 2,
  QB_DTYPE_Q4_1    = 3,
  QB_DTYPE_Q5_0    = 6,
  QB_DTYPE_Q5_1    = 7,
  QB_DTYPE_Q8_0    = 8,
  QB_DTYPE_Q8_1    = 9,
  QB_DTYPE_Q2_K    = 10,
  QB_DTYPE_Q3_K    = 11,
  QB_DTYPE_Q4_K    = 12,
  QB_DTYPE_Q5_K    = 13,
  QB_DTYPE_Q6_K    = 14,
  QB_DTYPE_Q8_K    = 15,
  QB_DTYPE_IQ2_XXS = 16,
  QB_DTYPE_IQ2_XS  = 17,
  QB_DTYPE_IQ3_XXS = 18,
  QB_DTYPE_IQ1_S   = 19,
  QB_DTYPE_IQ4_NL  = 20,
  QB_DTYPE_IQ3_S   = 21,
  QB_DTYPE_IQ2_S   = 22,
  QB_DTYPE_IQ4_XS  = 23,
  QB_DTYPE_I8      = 24,
  QB_DTYPE_I16     = 25,
  QB_DTYPE_I32     = 26,
  QB_DTYPE_I64     = 27,
  QB_DTYPE_F64     = 28,
  QB_DTYPE_IQ1_M   = 29,
  QB_DTYPE_BF16    = 30,
  QB_DTYPE_TQ1_0   = 34,
  QB_DTYPE_TQ2_0   = 35,
  QB_DTYPE_GGML_COUNT = 39,   /* ggml ids are below this */

  /* Storage types with no ggml id (safetensors). */
  QB_DTYPE_U8      = 64,
  QB_DTYPE_BOOL    = 65,
  QB_DTYPE_F8_E4M3 = 66,
  QB_DTYPE_F8_E5M2 = 67,
  QB_DTYPE_U16     = 68,
  QB_DTYPE_U32     = 69,
  QB_DTYPE_U64     = 70,

  QB_DTYPE_INVALID = -1,
} QbDType;

/* Converts n elements (a multiple of the block size) to float32. */
typedef void (*QbToFloatFunc) (const void *src, float *dst, gint64 n);

typedef struct {
  QbDType        dtype;
  const char    *name;        /* upper case, as llama.cpp prints it: "Q4_K", "F16" */
  guint          block_size;  /* elements per block; 1 for scalar types */
  guint          type_size;   /* bytes per block */
  gboolean       is_ggml;     /* may appear in a GGUF file */
  QbToFloatFunc  to_float;    /* NULL: known, but Quantbench cannot read it */
} QbDTypeInfo;

/* NULL for ids that name no type. */
const QbDTypeInfo *qb_dtype_info        (QbDType      dtype);
/* "F32", ...; "type 57" style text (static buffer per thread) for unknown ids. */
const char        *qb_dtype_name        (QbDType      dtype);
/* Case-insensitive; QB_DTYPE_INVALID when unknown. */
QbDType            qb_dtype_from_name   (const char  *name);
gboolean           qb_dtype_is_readable (QbDType      dtype);
/* Bytes of n_elements of dtype.  FALSE when n_elements is not a whole number
 * of blocks or the result overflows. */
gboolean           qb_dtype_bytes       (QbDType      dtype,
                                         gint64       n_elements,
                                         guint64     *out_bytes);

/* Scalar conversions shared by the whole engine. */
float              qb_fp16_to_fp32      (guint16      h);
guint16            qb_fp32_to_fp16      (float        f);   /* round to nearest even, as ggml */
float              qb_bf16_to_fp32      (guint16      h);
guint16            qb_fp32_to_bf16      (float        f);   /* round to nearest even, NaN kept quiet, as ggml */
float              qb_fp8_e4m3_to_fp32  (guint8       v);   /* OCP E4M3 (finite, NaN = 0x7f/0xff) */
float              qb_fp8_e5m2_to_fp32  (guint8       v);

/* TRUE on an x86-64 CPU with AVX2 (and so F16C), for code paths chosen at
 * run time; QB_CPU_BASELINE=1 in the environment turns them off, for
 * testing the portable ones. */
gboolean           qb_cpu_has_avx2      (void);

G_END_DECLS
