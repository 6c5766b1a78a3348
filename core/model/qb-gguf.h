/* SPDX-License-Identifier: MIT */
/* qb-gguf.h — GGUF v2/v3 files: a validating reader over a mapping, and an
 * atomic writer.
 *
 * The reader never trusts the file: every count, length and offset is
 * checked against the bytes that are there before it is used, and errors
 * name the file, the field and its offset (QB_GGUF_ERROR).
 */
#pragma once

#include <gio/gio.h>

#include "qb-dtype.h"

G_BEGIN_DECLS

#define QB_GGUF_ERROR (qb_gguf_error_quark ())
GQuark qb_gguf_error_quark (void);

typedef enum {
  QB_GGUF_ERROR_TRUNCATED,     /* a field runs past the end of the file */
  QB_GGUF_ERROR_BAD_MAGIC,
  QB_GGUF_ERROR_BAD_VERSION,
  QB_GGUF_ERROR_INVALID,       /* a value is out of range or inconsistent */
  QB_GGUF_ERROR_UNSUPPORTED,   /* well-formed, but a type Quantbench cannot size */
  QB_GGUF_ERROR_IO,
} QbGgufError;

typedef enum {
  QB_GGUF_TYPE_UINT8   = 0,
  QB_GGUF_TYPE_INT8    = 1,
  QB_GGUF_TYPE_UINT16  = 2,
  QB_GGUF_TYPE_INT16   = 3,
  QB_GGUF_TYPE_UINT32  = 4,
  QB_GGUF_TYPE_INT32   = 5,
  QB_GGUF_TYPE_FLOAT32 = 6,
  QB_GGUF_TYPE_BOOL    = 7,
  QB_GGUF_TYPE_STRING  = 8,
  QB_GGUF_TYPE_ARRAY   = 9,
  QB_GGUF_TYPE_UINT64  = 10,
  QB_GGUF_TYPE_INT64   = 11,
  QB_GGUF_TYPE_FLOAT64 = 12,
} QbGgufType;

#define QB_GGUF_DEFAULT_ALIGNMENT 32
#define QB_GGUF_MAX_DIMS 4

/* A string as GGUF stores it: length-prefixed, not NUL-terminated, may hold
 * any bytes.  `str` is NUL-terminated for convenience (the NUL is not
 * counted in len). */
typedef struct {
  guint64     len;
  const char *str;
} QbGgufString;

/* One metadata key/value.  Scalars live in `v`; arrays point at `n`
 * decoded elements (numbers in their own C type, strings as QbGgufString,
 * bools as one byte each).  Arrays of arrays are kept as a nested list. */
typedef struct _QbGgufKv QbGgufKv;
struct _QbGgufKv {
  QbGgufString  key;
  QbGgufType    type;
  QbGgufType    array_type;   /* when type == ARRAY */
  guint64       n;            /* array length */
  union {
    guint64      u64;
    gint64       i64;
    double       f64;
    gboolean     b;
    QbGgufString str;
  } v;                        /* scalar value, widened to 64 bits */
  gconstpointer array;        /* array elements (see above) */
  guint64       file_offset;  /* where this pair starts, for messages */
};

typedef struct {
  QbGgufString  name;
  guint         n_dims;
  gint64        ne[QB_GGUF_MAX_DIMS];  /* ne[0] is the row length; unused dims are 1 */
  QbDType       dtype;
  guint64       offset;      /* relative to the start of the data section */
  guint64       n_bytes;     /* computed from type and shape */
  gconstpointer data;        /* inside the mapping */
} QbGgufTensorInfo;

typedef struct _QbGguf QbGguf;

/* Maps and parses a file.  Only headers are read; tensor data is touched on
 * demand through the mapping. */
QbGguf                 *qb_gguf_open             (const char   *path,
                                                  GError      **error);
/* Parses a GGUF image held in memory (for tests and fuzzing).  name is used
 * in error messages. */
QbGguf                 *qb_gguf_new_from_bytes   (GBytes       *bytes,
                                                  const char   *name,
                                                  GError      **error);
void                    qb_gguf_unref            (QbGguf       *gguf);

const char             *qb_gguf_get_path         (QbGguf       *gguf);
guint32                 qb_gguf_get_version      (QbGguf       *gguf);
guint64                 qb_gguf_get_alignment    (QbGguf       *gguf);
guint64                 qb_gguf_get_data_offset  (QbGguf       *gguf);
guint64                 qb_gguf_get_file_size    (QbGguf       *gguf);

guint64                 qb_gguf_get_n_kv         (QbGguf       *gguf);
const QbGgufKv         *qb_gguf_get_kv           (QbGguf       *gguf,
                                                  guint64       index);
const QbGgufKv         *qb_gguf_find_kv          (QbGguf       *gguf,
                                                  const char   *key);
/* Typed look-ups: FALSE when the key is missing or of another kind.  Any
 * integer type satisfies get_int/get_uint when the value fits; any float
 * or integer satisfies get_double. */
gboolean                qb_gguf_get_uint         (QbGguf       *gguf,
                                                  const char   *key,
                                                  guint64      *out);
gboolean                qb_gguf_get_int          (QbGguf       *gguf,
                                                  const char   *key,
                                                  gint64       *out);
gboolean                qb_gguf_get_double       (QbGguf       *gguf,
                                                  const char   *key,
                                                  double       *out);
gboolean                qb_gguf_get_bool         (QbGguf       *gguf,
                                                  const char   *key,
                                                  gboolean     *out);
const char             *qb_gguf_get_string       (QbGguf       *gguf,
                                                  const char   *key);
/* String array elements; NULL when missing or not an array of strings. */
const QbGgufString     *qb_gguf_get_string_array (QbGguf       *gguf,
                                                  const char   *key,
                                                  guint64      *n);
/* Numeric array as the given element type; NULL when missing or of
 * another element type. */
gconstpointer           qb_gguf_get_array        (QbGguf       *gguf,
                                                  const char   *key,
                                                  QbGgufType    element_type,
                                                  guint64      *n);

guint64                 qb_gguf_get_n_tensors    (QbGguf       *gguf);
const QbGgufTensorInfo *qb_gguf_get_tensor       (QbGguf       *gguf,
                                                  guint64       index);
const QbGgufTensorInfo *qb_gguf_find_tensor      (QbGguf       *gguf,
                                                  const char   *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbGguf, qb_gguf_unref)

/* ---- writer ---------------------------------------------------------- */

typedef struct _QbGgufWriter QbGgufWriter;

QbGgufWriter *qb_gguf_writer_new             (void);
void          qb_gguf_writer_free            (QbGgufWriter    *w);
void          qb_gguf_writer_set_version     (QbGgufWriter    *w,
                                              guint32          version);   /* 3 by default */
/* Copies a key/value read from another file (replacing one of the same key). */
void          qb_gguf_writer_copy_kv         (QbGgufWriter    *w,
                                              const QbGgufKv  *kv);
void          qb_gguf_writer_set_uint32      (QbGgufWriter    *w, const char *key, guint32 v);
void          qb_gguf_writer_set_int32       (QbGgufWriter    *w, const char *key, gint32 v);
void          qb_gguf_writer_set_uint64      (QbGgufWriter    *w, const char *key, guint64 v);
void          qb_gguf_writer_set_float32     (QbGgufWriter    *w, const char *key, float v);
void          qb_gguf_writer_set_bool        (QbGgufWriter    *w, const char *key, gboolean v);
void          qb_gguf_writer_set_string      (QbGgufWriter    *w, const char *key, const char *v);
void          qb_gguf_writer_set_string_array(QbGgufWriter    *w, const char *key,
                                              const char *const *v, guint64 n);
/* Numeric arrays: data holds n elements of element_type. */
void          qb_gguf_writer_set_array       (QbGgufWriter    *w, const char *key,
                                              QbGgufType element_type,
                                              gconstpointer data, guint64 n);
void          qb_gguf_writer_remove_kv       (QbGgufWriter    *w, const char *key);
/* The alignment comes from general.alignment when set, else 32. */

/* Declares a tensor (in file order); returns its index.  n_bytes is
 * computed from dtype and shape. */
guint         qb_gguf_writer_add_tensor      (QbGgufWriter    *w,
                                              const char      *name,
                                              guint            n_dims,
                                              const gint64    *ne,
                                              QbDType          dtype);

/* Streaming write, for data produced while the file is written:
 * begin() creates a temporary file beside path and writes the header;
 * write_tensor() puts one tensor's bytes at its offset (thread-safe, any
 * order); finish() checks every tensor was written, fsyncs and renames to
 * path; abort() removes the temporary file.  Nothing appears at path
 * unless finish() succeeds. */
gboolean      qb_gguf_writer_begin           (QbGgufWriter    *w,
                                              const char      *path,
                                              GError         **error);
gboolean      qb_gguf_writer_write_tensor    (QbGgufWriter    *w,
                                              guint            index,
                                              gconstpointer    data,
                                              guint64          n_bytes,
                                              GError         **error);
/* Writes n_bytes of tensor index starting offset bytes into its data, for
 * tensors produced piece by piece (thread-safe, any order).  finish()
 * checks that the pieces add up to the whole tensor. */
gboolean      qb_gguf_writer_write_tensor_range (QbGgufWriter *w,
                                              guint            index,
                                              guint64          offset,
                                              gconstpointer    data,
                                              guint64          n_bytes,
                                              GError         **error);
gboolean      qb_gguf_writer_finish          (QbGgufWriter    *w,
                                              GError         **error);
void          qb_gguf_writer_abort           (QbGgufWriter    *w);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbGgufWriter, qb_gguf_writer_free)

G_END_DECLS
