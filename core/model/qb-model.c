/* SPDX-License-Identifier: MIT */
/* qb-model.c — a model file, whatever its format, as one tensor list.
 *
 * Opening maps the file(s) and reads only headers: the tensor data stays
 * in the page cache's hands until someone reads rows.  GGUF errors keep
 * their QB_GGUF_ERROR domain (they say more); everything else is in
 * QB_MODEL_ERROR.
 */
#include "qb-model.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "qb-gguf-private.h"
#include "qb-safetensors-private.h"

G_DEFINE_QUARK (qb-model-error-quark, qb_model_error)

struct _QbModel
{
  GObject          parent_instance;

  char            *path;
  QbModelFileKind  kind;
  QbArchInfo       arch;
  GArray          *tensors;       /* QbTensor */
  GHashTable      *tensor_index;  /* name -> index + 1 */
  QbGguf          *gguf;
  GPtrArray       *shards;        /* QbSafetensors */
  JsonObject      *hf_config;
  char            *fingerprint;
  gint64           n_params;
  guint64          n_bytes;
  guint64          file_size;
  guint8          *first_read_done;   /* per tensor, atomic; allocated on first use */
};

G_DEFINE_FINAL_TYPE (QbModel, qb_model, G_TYPE_OBJECT)

static void
tensor_clear (QbTensor *t)
{
  g_free (t->name);
}

static void
qb_model_finalize (GObject *object)
{
  QbModel *self = QB_MODEL (object);

  g_free (self->path);
  g_free (self->arch.family);
  g_free (self->arch.name);
  g_array_unref (self->tensors);
  g_hash_table_unref (self->tensor_index);
  g_clear_pointer (&self->gguf, qb_gguf_unref);
  g_ptr_array_unref (self->shards);
  g_clear_pointer (&self->hf_config, json_object_unref);
  g_free (self->fingerprint);
  g_free (self->first_read_done);
  G_OBJECT_CLASS (qb_model_parent_class)->finalize (object);
}

static void
qb_model_class_init (QbModelClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = qb_model_finalize;
}

static void
qb_model_init (QbModel *self)
{
  self->tensors = g_array_new (FALSE, TRUE, sizeof (QbTensor));
  g_array_set_clear_func (self->tensors, (GDestroyNotify) tensor_clear);
  self->tensor_index = g_hash_table_new (g_str_hash, g_str_equal);
  self->shards = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_safetensors_free);
}

/* ---- tensors ---------------------------------------------------------- */

static gboolean
add_tensor (QbModel *self, const char *name, guint n_dims, const gint64 *ne, QbDType dtype,
            guint64 n_bytes, gconstpointer data, GError **error)
{
  QbTensor t = { 0 };

  t.name = g_strdup (name);
  t.n_dims = n_dims;
  t.n_params = 1;
  for (guint d = 0; d < 4; d++)
    {
      t.ne[d] = ne[d];
      t.n_params *= ne[d];          /* the parsers checked the product */
    }
  t.dtype = dtype;
  t.n_bytes = n_bytes;
  t.data = data;
  qb_tensor_name_parse (name, &t.layer, &t.role, &t.is_bias);
  t.expert = qb_tensor_role_is_expert (t.role) ? qb_tensor_name_expert (name) : -1;
  g_array_append_val (self->tensors, t);

  if (!g_hash_table_insert (self->tensor_index, g_array_index (self->tensors, QbTensor,
                                                               self->tensors->len - 1).name,
                            GUINT_TO_POINTER (self->tensors->len)))
    {
      g_autofree char *quoted = qb_gguf_quote_name (name);
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_INVALID,
                   "%s: the tensor %s appears in two shards", self->path, quoted);
      return FALSE;
    }
  self->n_params += t.n_params;
  self->n_bytes += n_bytes;
  return TRUE;
}

/* Gemma 2/3 checkpoints name the attention output's norm
 * "post_attention_layernorm", which in every other family is the FFN's
 * input norm; their FFN input norm is "pre_feedforward_layernorm". */
static void
fix_post_attention_roles (QbModel *self)
{
  gboolean pre_ffn = FALSE;

  for (guint i = 0; i < self->tensors->len && !pre_ffn; i++)
    pre_ffn = strstr (g_array_index (self->tensors, QbTensor, i).name,
                      "pre_feedforward_layernorm") != NULL;
  for (guint i = 0; i < self->tensors->len && pre_ffn; i++)
    {
      QbTensor *t = &g_array_index (self->tensors, QbTensor, i);
      if (t->role == QB_ROLE_FFN_NORM && strstr (t->name, "post_attention_layernorm") != NULL)
        t->role = QB_ROLE_ATTN_POST_NORM;
    }
}

/* Facts the metadata left out, from the tensors themselves. */
static void
infer_arch_from_tensors (QbModel *self)
{
  QbArchInfo *a = &self->arch;
  int max_layer = -1;
  gboolean has_output = FALSE;

  fix_post_attention_roles (self);
  for (guint i = 0; i < self->tensors->len; i++)
    {
      const QbTensor *t = &g_array_index (self->tensors, QbTensor, i);

      max_layer = MAX (max_layer, t->layer);
      if (t->is_bias)
        continue;
      if (t->role == QB_ROLE_OUTPUT)
        has_output = TRUE;
      if (t->role == QB_ROLE_TOKEN_EMBD && t->n_dims == 2)
        {
          if (a->n_embd == 0 && t->ne[0] <= G_MAXUINT)
            a->n_embd = (guint) t->ne[0];
          if (a->n_vocab == 0 && t->ne[1] <= G_MAXUINT)
            a->n_vocab = (guint) t->ne[1];
        }
      if (t->role == QB_ROLE_FFN_UP && t->n_dims == 2 && a->n_ff == 0 && t->ne[1] <= G_MAXUINT)
        a->n_ff = (guint) t->ne[1];
    }
  if (a->n_layer == 0 && max_layer >= 0)
    a->n_layer = (guint) max_layer + 1;
  if (a->n_expert > 0 && a->n_ff_exp == 0)
    a->n_ff_exp = a->n_ff;
  if (a->n_head_kv == 0)
    a->n_head_kv = a->n_head;
  if (a->head_dim == 0 && a->n_head > 0)
    a->head_dim = a->n_embd / a->n_head;
  if (!has_output)
    a->tied_embeddings = TRUE;
  if (a->family == NULL)
    a->family = g_strdup ("unknown");
}

static void
set_fingerprint (QbModel *self, GChecksum *sum)
{
  self->fingerprint = g_strdup (g_checksum_get_string (sum));
}

/* ---- GGUF ------------------------------------------------------------- */

static guint
gguf_count (QbGguf *g, const char *arch, const char *suffix)
{
  g_autofree char *key = g_strdup_printf ("%s.%s", arch, suffix);
  guint64 v;

  if (qb_gguf_get_uint (g, key, &v) && v <= G_MAXUINT)
    return (guint) v;
  return 0;
}

static double
gguf_number (QbGguf *g, const char *arch, const char *suffix)
{
  g_autofree char *key = g_strdup_printf ("%s.%s", arch, suffix);
  double v;

  return qb_gguf_get_double (g, key, &v) ? v : 0.0;
}

static void
gguf_arch (QbModel *self)
{
  QbGguf *g = self->gguf;
  QbArchInfo *a = &self->arch;
  const char *family = qb_gguf_get_string (g, "general.architecture");
  const char *name = qb_gguf_get_string (g, "general.name");
  guint64 n_tokens = 0;

  if (name != NULL)
    a->name = g_strdup (name);
  if (qb_gguf_get_string_array (g, "tokenizer.ggml.tokens", &n_tokens) && n_tokens <= G_MAXUINT)
    a->n_vocab = (guint) n_tokens;
  if (family == NULL)
    return;
  a->family = g_strdup (family);
  a->n_layer = gguf_count (g, family, "block_count");
  a->n_embd = gguf_count (g, family, "embedding_length");
  a->n_head = gguf_count (g, family, "attention.head_count");
  a->n_head_kv = gguf_count (g, family, "attention.head_count_kv");
  a->n_ff = gguf_count (g, family, "feed_forward_length");
  a->n_ctx = gguf_count (g, family, "context_length");
  a->head_dim = gguf_count (g, family, "attention.key_length");
  if (gguf_count (g, family, "vocab_size"))             /* the stated size wins */
    a->n_vocab = gguf_count (g, family, "vocab_size");
  a->rms_eps = gguf_number (g, family, "attention.layer_norm_rms_epsilon");
  a->rope_freq_base = gguf_number (g, family, "rope.freq_base");
  a->n_expert = gguf_count (g, family, "expert_count");
  a->n_expert_used = gguf_count (g, family, "expert_used_count");
  a->n_ff_exp = gguf_count (g, family, "expert_feed_forward_length");
  a->n_ff_shexp = gguf_count (g, family, "expert_shared_feed_forward_length");
  /* DeepSeek counts its shared experts, each as wide as a routed one. */
  if (a->n_ff_shexp == 0 && gguf_count (g, family, "expert_shared_count") <= 256)
    a->n_ff_shexp = gguf_count (g, family, "expert_shared_count") * a->n_ff_exp;
}

static gboolean
open_gguf (QbModel *self, GError **error)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  QbGguf *g;

  self->gguf = g = qb_gguf_open (self->path, error);
  if (g == NULL)
    return FALSE;
  self->kind = QB_MODEL_FILE_GGUF;
  self->file_size = qb_gguf_get_file_size (g);
  for (guint64 i = 0; i < qb_gguf_get_n_tensors (g); i++)
    {
      const QbGgufTensorInfo *t = qb_gguf_get_tensor (g, i);
      if (!add_tensor (self, t->name.str, t->n_dims, t->ne, t->dtype, t->n_bytes, t->data, error))
        return FALSE;
    }
  gguf_arch (self);

  /* Everything before the data: header, metadata and tensor table. */
  g_checksum_update (sum, qb_gguf_get_data (g), (gssize) qb_gguf_get_data_offset (g));
  set_fingerprint (self, sum);
  return TRUE;
}

/* ---- safetensors ------------------------------------------------------ */

static gboolean
add_shard_tensors (QbModel *self, QbSafetensors *st, GError **error)
{
  for (guint i = 0; i < qb_safetensors_get_n_tensors (st); i++)
    {
      const QbSafetensorsTensor *t = qb_safetensors_get_tensor (st, i);
      if (!add_tensor (self, t->name, t->n_dims, t->ne, t->dtype, t->n_bytes, t->data, error))
        return FALSE;
    }
  self->file_size += qb_safetensors_get_file_size (st);
  return TRUE;
}

static gboolean
open_safetensors_files (QbModel *self, const char *const *files, GError **error)
{
  for (gsize i = 0; files[i]; i++)
    {
      QbSafetensors *st = qb_safetensors_open (files[i], error);
      if (st == NULL)
        return FALSE;
      g_ptr_array_add (self->shards, st);
      if (!add_shard_tensors (self, st, error))
        return FALSE;
    }
  return TRUE;
}

/* Every tensor the index names is in the shard it names. */
static gboolean
check_weight_map (QbModel *self, GHashTable *weight_map, GError **error)
{
  GHashTableIter iter;
  gpointer tensor, file;

  g_hash_table_iter_init (&iter, weight_map);
  while (g_hash_table_iter_next (&iter, &tensor, &file))
    {
      guint index = GPOINTER_TO_UINT (g_hash_table_lookup (self->tensor_index, tensor));
      gboolean found = FALSE;

      for (guint s = 0; index && s < self->shards->len && !found; s++)
        {
          QbSafetensors *st = g_ptr_array_index (self->shards, s);
          g_autofree char *base = g_path_get_basename (qb_safetensors_get_path (st));
          found = strcmp (base, file) == 0 && qb_safetensors_find_tensor (st, tensor) != NULL;
        }
      if (!found)
        {
          g_autofree char *quoted = qb_gguf_quote_name (tensor);
          g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_INVALID,
                       "%s: weight_map: tensor %s is not in %s", self->path, quoted, (char *) file);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
open_safetensors (QbModel *self, gboolean is_index, GError **error)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *dir = g_path_get_dirname (self->path);
  g_autofree char *config_path = g_build_filename (dir, "config.json", NULL);
  g_autoptr(GHashTable) weight_map = NULL;
  g_auto(GStrv) files = NULL;

  self->kind = QB_MODEL_FILE_SAFETENSORS;
  if (is_index)
    {
      g_auto(GStrv) shards = NULL;

      if (!qb_safetensors_read_index (self->path, &shards, &weight_map, error))
        return FALSE;
      files = g_new0 (char *, g_strv_length (shards) + 1);
      for (guint i = 0; shards[i]; i++)
        files[i] = g_build_filename (dir, shards[i], NULL);
    }
  else
    {
      files = g_new0 (char *, 2);
      files[0] = g_strdup (self->path);
    }
  if (!open_safetensors_files (self, (const char *const *) files, error))
    return FALSE;
  if (weight_map != NULL && !check_weight_map (self, weight_map, error))
    return FALSE;

  for (guint s = 0; s < self->shards->len; s++)
    {
      gsize len;
      gconstpointer header = qb_safetensors_get_header (g_ptr_array_index (self->shards, s), &len);
      g_checksum_update (sum, header, (gssize) len);
    }
  set_fingerprint (self, sum);

  if (g_file_test (config_path, G_FILE_TEST_IS_REGULAR))
    {
      self->hf_config = qb_hf_config_load (config_path, error);
      if (self->hf_config == NULL)
        return FALSE;
      qb_hf_config_get_arch (self->hf_config, &self->arch);
    }
  self->arch.name = g_path_get_basename (dir);
  return TRUE;
}

/* ---- choosing what to open ------------------------------------------- */

/* In a folder: the shard index, model.safetensors, or the only
 * .safetensors or .gguf file there. */
static char *
resolve_folder (const char *dir, GError **error)
{
  g_autoptr(GDir) d = NULL;
  g_autoptr(GPtrArray) st = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) gguf = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) local_error = NULL;
  const char *name;
  const char *preferred[] = { "model.safetensors.index.json", "model.safetensors" };

  for (gsize i = 0; i < G_N_ELEMENTS (preferred); i++)
    {
      char *path = g_build_filename (dir, preferred[i], NULL);
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        return path;
      g_free (path);
    }

  d = g_dir_open (dir, 0, &local_error);
  if (d == NULL)
    {
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_IO, "%s", local_error->message);
      return NULL;
    }
  while ((name = g_dir_read_name (d)) != NULL)
    {
      if (g_str_has_suffix (name, ".safetensors"))
        g_ptr_array_add (st, g_build_filename (dir, name, NULL));
      else if (g_str_has_suffix (name, ".gguf"))
        g_ptr_array_add (gguf, g_build_filename (dir, name, NULL));
    }
  if (st->len == 1)
    return g_strdup (g_ptr_array_index (st, 0));
  if (st->len > 1)
    {
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_FORMAT,
                   "%s: %u .safetensors files but no model.safetensors.index.json to join them",
                   dir, st->len);
      return NULL;
    }
  if (gguf->len == 1)
    return g_strdup (g_ptr_array_index (gguf, 0));
  if (gguf->len > 1)
    g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_FORMAT,
                 "%s: %u .gguf files; open one of them", dir, gguf->len);
  else
    g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_FORMAT,
                 "%s: no .gguf, .safetensors or model.safetensors.index.json here", dir);
  return NULL;
}

typedef enum { SNIFF_GGUF, SNIFF_SAFETENSORS, SNIFF_INDEX, SNIFF_UNKNOWN } Sniff;

/* By name first (a damaged .gguf should get the GGUF reader's message),
 * then by the first bytes. */
static Sniff
sniff (const char *path)
{
  guint8 head[9] = { 0 };
  int fd;
  ssize_t n = 0;

  if (g_str_has_suffix (path, ".gguf"))
    return SNIFF_GGUF;
  if (g_str_has_suffix (path, ".safetensors"))
    return SNIFF_SAFETENSORS;
  if (g_str_has_suffix (path, ".json"))
    return SNIFF_INDEX;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0)
    {
      n = read (fd, head, sizeof head);
      close (fd);
    }
  if (n >= 4 && memcmp (head, QB_GGUF_MAGIC, 4) == 0)
    return SNIFF_GGUF;
  if (n == 9 && head[8] == '{')
    return SNIFF_SAFETENSORS;
  return SNIFF_UNKNOWN;
}

QbModel *
qb_model_open (const char *path, GError **error)
{
  g_autoptr(QbModel) self = NULL;
  g_autofree char *file = NULL;
  gboolean ok;

  g_return_val_if_fail (path != NULL, NULL);

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    file = resolve_folder (path, error);
  else if (!g_file_test (path, G_FILE_TEST_EXISTS))
    g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_IO, "%s: no such file", path);
  else
    file = g_strdup (path);
  if (file == NULL)
    return NULL;

  self = g_object_new (QB_TYPE_MODEL, NULL);
  self->path = g_steal_pointer (&file);
  switch (sniff (self->path))
    {
    case SNIFF_GGUF:        ok = open_gguf (self, error); break;
    case SNIFF_SAFETENSORS: ok = open_safetensors (self, FALSE, error); break;
    case SNIFF_INDEX:       ok = open_safetensors (self, TRUE, error); break;
    default:
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_FORMAT,
                   "%s: not a GGUF or safetensors model file", self->path);
      ok = FALSE;
    }
  if (!ok)
    return NULL;
  infer_arch_from_tensors (self);
  return g_steal_pointer (&self);
}

/* ---- accessors -------------------------------------------------------- */

const char       *qb_model_get_path      (QbModel *self) { return self->path; }
QbModelFileKind   qb_model_get_file_kind (QbModel *self) { return self->kind; }
const QbArchInfo *qb_model_get_arch      (QbModel *self) { return &self->arch; }
guint             qb_model_get_n_tensors (QbModel *self) { return self->tensors->len; }
gint64            qb_model_get_n_params  (QbModel *self) { return self->n_params; }
guint64           qb_model_get_n_bytes   (QbModel *self) { return self->n_bytes; }
guint64           qb_model_get_file_size (QbModel *self) { return self->file_size; }
QbGguf           *qb_model_get_gguf      (QbModel *self) { return self->gguf; }
JsonObject       *qb_model_get_hf_config (QbModel *self) { return self->hf_config; }
const char       *qb_model_get_fingerprint (QbModel *self) { return self->fingerprint; }

const QbTensor *
qb_model_get_tensor (QbModel *self, guint index)
{
  g_return_val_if_fail (index < self->tensors->len, NULL);
  return &g_array_index (self->tensors, QbTensor, index);
}

const QbTensor *
qb_model_find_tensor (QbModel *self, const char *name, guint *index)
{
  guint i = GPOINTER_TO_UINT (g_hash_table_lookup (self->tensor_index, name));

  if (i == 0)
    return NULL;
  if (index)
    *index = i - 1;
  return qb_model_get_tensor (self, i - 1);
}

gboolean
qb_model_read_range (QbModel *self, guint index, gint64 first, gint64 n, float *dst, GError **error)
{
  const QbTensor *t = qb_model_get_tensor (self, index);
  const QbDTypeInfo *info = qb_dtype_info (t->dtype);
  guint64 offset;

  g_return_val_if_fail (t != NULL, FALSE);

  if (info == NULL || info->to_float == NULL)
    {
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_UNREADABLE,
                   "%s: tensor '%s' is stored as %s, which Quantbench cannot convert to float",
                   self->path, t->name, qb_dtype_name (t->dtype));
      return FALSE;
    }
  if (first < 0 || n < 0 || first > t->n_params || n > t->n_params - first ||
      first % info->block_size != 0 || n % info->block_size != 0)
    {
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_INVALID,
                   "%s: tensor '%s': values %" G_GINT64_FORMAT "..+%" G_GINT64_FORMAT
                   " are not whole %s blocks inside its %" G_GINT64_FORMAT " values",
                   self->path, t->name, first, n, info->name, t->n_params);
      return FALSE;
    }
  if (n == 0)
    return TRUE;
  offset = (guint64) (first / info->block_size) * info->type_size;
  info->to_float ((const guint8 *) t->data + offset, dst, n);
  return TRUE;
}

gboolean
qb_model_claim_first_read (QbModel *self, guint index)
{
  guint8 *done = g_atomic_pointer_get (&self->first_read_done);

  g_return_val_if_fail (index < self->tensors->len, FALSE);
  if (done == NULL)
    {
      guint8 *fresh = g_new0 (guint8, self->tensors->len);
      if (g_atomic_pointer_compare_and_exchange (&self->first_read_done, NULL, fresh))
        done = fresh;
      else
        {
          g_free (fresh);
          done = g_atomic_pointer_get (&self->first_read_done);
        }
    }
  return __atomic_exchange_n (&done[index], 1, __ATOMIC_RELAXED) == 0;
}

gboolean
qb_model_read_rows (QbModel *self, guint index, gint64 row, gint64 n_rows, float *dst, GError **error)
{
  const QbTensor *t = qb_model_get_tensor (self, index);
  gint64 total;

  g_return_val_if_fail (t != NULL, FALSE);
  total = qb_tensor_n_rows (t);
  if (row < 0 || n_rows < 0 || row > total || n_rows > total - row)
    {
      g_set_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_INVALID,
                   "%s: tensor '%s': rows %" G_GINT64_FORMAT "..+%" G_GINT64_FORMAT
                   " are outside its %" G_GINT64_FORMAT " rows", self->path, t->name, row, n_rows, total);
      return FALSE;
    }
  return qb_model_read_range (self, index, row * t->ne[0], n_rows * t->ne[0], dst, error);
}
