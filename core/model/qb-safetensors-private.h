/* SPDX-License-Identifier: MIT */
/* qb-safetensors-private.h — safetensors files, single or sharded, and the
 * Hugging Face config.json beside them.  QbModel is the public face.
 *
 * A safetensors file is a little-endian u64 header length N, N bytes of
 * JSON ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {string: string}}), then the data section that the
 * offsets point into.  Errors are in QB_MODEL_ERROR.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "qb-model.h"

G_BEGIN_DECLS

#define QB_SAFETENSORS_MAX_HEADER (100 * 1000 * 1000)   /* as the reference reader */
#define QB_JSON_MAX_FILE          (100 * 1000 * 1000)   /* index and config files */

typedef struct {
  char          *name;
  QbDType        dtype;
  guint          n_dims;      /* up to 4: more dimensions are folded into ne[3] */
  gint64         ne[4];       /* ggml order: ne[0] is the last (innermost) dimension */
  guint64        begin;       /* data_offsets[0], relative to the data section */
  guint64        n_bytes;
  gconstpointer  data;
} QbSafetensorsTensor;

typedef struct _QbSafetensors QbSafetensors;

QbSafetensors             *qb_safetensors_open           (const char     *path,
                                                          GError        **error);
/* Parses an image in memory (tests, fuzzing); name is used in messages. */
QbSafetensors             *qb_safetensors_new_from_bytes (GBytes         *bytes,
                                                          const char     *name,
                                                          GError        **error);
void                       qb_safetensors_free           (QbSafetensors  *st);
const char                *qb_safetensors_get_path       (QbSafetensors  *st);
guint64                    qb_safetensors_get_file_size  (QbSafetensors  *st);
/* The length prefix and JSON text, for fingerprints. */
gconstpointer              qb_safetensors_get_header     (QbSafetensors  *st,
                                                          gsize          *len);
/* Tensors in the order of their data. */
guint                      qb_safetensors_get_n_tensors  (QbSafetensors  *st);
const QbSafetensorsTensor *qb_safetensors_get_tensor     (QbSafetensors  *st,
                                                          guint           index);
const QbSafetensorsTensor *qb_safetensors_find_tensor    (QbSafetensors  *st,
                                                          const char     *name);
/* __metadata__ string values (key -> value); empty when absent. */
GHashTable                *qb_safetensors_get_metadata   (QbSafetensors  *st);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbSafetensors, qb_safetensors_free)

/* model.safetensors.index.json: the shard file names (sorted, each a plain
 * name in the index's folder) and the weight map (tensor -> shard). */
gboolean   qb_safetensors_parse_index (const char   *text,
                                       gsize         len,
                                       const char   *name,
                                       GStrv        *shards,
                                       GHashTable  **weight_map,
                                       GError      **error);
gboolean   qb_safetensors_read_index  (const char   *path,
                                       GStrv        *shards,
                                       GHashTable  **weight_map,
                                       GError      **error);

/* config.json.  Fills the facts it states into arch and leaves the rest. */
JsonObject *qb_hf_config_load         (const char   *path,
                                       GError      **error);
void        qb_hf_config_get_arch     (JsonObject   *config,
                                       QbArchInfo   *arch);

/* Parses JSON text after the checks json-glib does not make: valid UTF-8,
 * nesting at most max_depth (its parser recurses), and no key repeated in
 * the top-level object (it would keep the last silently).  When top_keys
 * is given it receives each top-level key's raw text -> byte position + 1,
 * for messages. */
JsonNode   *qb_json_parse_checked     (const char   *text,
                                       gsize         len,
                                       const char   *name,
                                       guint64       base_offset,
                                       guint         max_depth,
                                       GHashTable   *top_keys,
                                       GError      **error);

G_END_DECLS
