/* SPDX-License-Identifier: MIT */
/* qb-activation-stats.c — importance matrices and XᵀX from forward passes
 * over a calibration set (see qb-activation-stats.h). */
#include "qb-activation-stats.h"
#include "qb-calibration-private.h"
#include "qb-device.h"
#include "qb-tokenizer.h"

#include <cblas.h>
#include <glib/gstdio.h>
#include <string.h>

#define STATS_VERSION "quantbench-stats-1"
#define GRAM_MAGIC    "QBGRAM01"

/* One XᵀX: of a dense input, or of one expert's tokens of an expert
 * tensor's input (each expert sees the tokens routed to it). */
typedef struct {
  guint8    *buf;          /* while its pass runs (after a cache header), or kept (no_cache) */
  double    *gram;
  guint64    rows;
  gboolean   cached;       /* a valid file is in the cache */
} Gram;

/* One distinct input of linear layers: the weights reading it share its
 * statistics. */
typedef struct {
  char      *key;          /* "blk.3.attn_in", "output_in": names the cache file */
  guint      index;        /* in groups */
  int        layer;        /* of its tensors; -1 for the output matrix */
  gint64     n;            /* columns */
  GPtrArray *members;      /* tensor names reading this input, in model order */
  gboolean   is_output;    /* the output matrix's input (llama-imatrix: --process-output) */
  gboolean   want_gram;
  gboolean   in_pass;      /* some of its XᵀX accumulate in the running pass */
  guint64    counted;      /* the forward pass that counted it as seen */
  /* Σ x² per column and rows (from this run or the cached imatrix); an
   * expert tensor's input has a set per expert (n_mat), each with the
   * rows routed to that expert, as llama-imatrix keeps them. */
  guint      n_mat;
  double    *sum2;         /* n × n_mat */
  guint64    rows;
  guint64   *mat_rows;     /* n_mat */
  /* XᵀX: one, or one per expert (n_mat). */
  Gram      *grams;
  /* The input seen last, to count an input shared by Q, K and V once. */
  guint64    last_forward;
  const float *last_x;
  int        last_expert;
} Group;

struct _QbActivationStats {
  QbModel       *model;
  QbCalibration *calib;
  char          *key;          /* SHA-256 hex of model fingerprint + calibration hash */
  char          *dir;          /* cache folder, NULL with no_cache */
  gboolean       no_cache;
  GPtrArray     *groups;       /* Group*, in model order of their first member */
  GHashTable    *by_name;      /* tensor name -> Group* */
  Group        **by_index;     /* model tensor index -> Group* or NULL */
  gboolean       have_sums;
  guint          n_forward;
  guint          n_passes;
  /* The XᵀX handed out last: its group's files (one per expert). */
  GMappedFile  **mapped;
  const double **mapped_gram;
  guint64       *mapped_rows;
  Group         *mapped_group;
  char          *expert_note;  /* why no XᵀX per expert was collected, or NULL */
};

/* A unit of a pass: one XᵀX of a group. */
typedef struct {
  Group *g;
  guint  expert;
} Unit;

void
qb_stats_options_init (QbStatsOptions *opts)
{
  memset (opts, 0, sizeof *opts);
}

/* ---- groups ------------------------------------------------------------- */

static void
group_free (gpointer data)
{
  Group *g = data;

  g_free (g->key);
  g_ptr_array_unref (g->members);
  g_free (g->sum2);
  g_free (g->mat_rows);
  for (guint m = 0; g->grams != NULL && m < g->n_mat; m++)
    g_free (g->grams[m].buf);
  g_free (g->grams);
  g_free (g);
}

/* Which input a tensor multiplies, by its role: Q, K and V read the
 * attention norm's output, gate and up the FFN norm's; a tied embedding
 * serves as the output matrix. */
static char *
input_key (const QbTensor *t, gboolean tied)
{
  const char *kind;

  if (t->n_dims < 2 || t->is_bias)
    return NULL;
  switch (t->role)
    {
    case QB_ROLE_ATTN_Q: case QB_ROLE_ATTN_K: case QB_ROLE_ATTN_V: case QB_ROLE_ATTN_QKV:
    case QB_ROLE_ATTN_Q_A: case QB_ROLE_ATTN_KV_A_MQA:
      kind = "attn_in";
      break;
    /* Multi-head latent attention's second products read the normed
     * low-rank Q and compressed KV. */
    case QB_ROLE_ATTN_Q_B:
      kind = "attn_q_b_in";
      break;
    case QB_ROLE_ATTN_KV_B:
      kind = "attn_kv_b_in";
      break;
    case QB_ROLE_ATTN_OUTPUT:
      kind = "attn_output_in";
      break;
    case QB_ROLE_FFN_GATE: case QB_ROLE_FFN_UP:
    case QB_ROLE_FFN_GATE_INP: case QB_ROLE_FFN_GATE_SHEXP: case QB_ROLE_FFN_UP_SHEXP:
      kind = "ffn_in";
      break;
    case QB_ROLE_FFN_DOWN:
      kind = "ffn_down_in";
      break;
    case QB_ROLE_FFN_DOWN_SHEXP:
      kind = "ffn_down_shexp_in";
      break;
    /* Each expert's tokens: a set of statistics per expert. */
    case QB_ROLE_FFN_GATE_EXPS: case QB_ROLE_FFN_UP_EXPS:
      kind = "ffn_exps_in";
      break;
    case QB_ROLE_FFN_DOWN_EXPS:
      kind = "ffn_down_exps_in";
      break;
    case QB_ROLE_OUTPUT:
      return g_strdup ("output_in");
    case QB_ROLE_TOKEN_EMBD:
      return tied ? g_strdup ("output_in") : NULL;
    default:
      return NULL;
    }
  return t->layer >= 0 ? g_strdup_printf ("blk.%d.%s", t->layer, kind) : g_strdup (t->name);
}

static void
build_groups (QbActivationStats *s)
{
  g_autoptr(GHashTable) by_key = g_hash_table_new (g_str_hash, g_str_equal);
  guint n = qb_model_get_n_tensors (s->model);
  gboolean tied = qb_model_find_tensor (s->model, "output.weight", NULL) == NULL;

  s->groups = g_ptr_array_new_with_free_func (group_free);
  s->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  s->by_index = g_new0 (Group *, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      const QbTensor *t = qb_model_get_tensor (s->model, i);
      g_autofree char *key = input_key (t, tied);
      Group *g;

      if (key == NULL)
        continue;
      g = g_hash_table_lookup (by_key, key);
      if (g == NULL)
        {
          g = g_new0 (Group, 1);
          g->key = g_steal_pointer (&key);
          g->index = s->groups->len;
          g->layer = t->layer;
          g->n = t->ne[0];
          g->n_mat = (guint) qb_tensor_n_experts (t);
          g->grams = g_new0 (Gram, g->n_mat);
          g->members = g_ptr_array_new_with_free_func (g_free);
          g->is_output = strcmp (g->key, "output_in") == 0;
          g_ptr_array_add (s->groups, g);
          g_hash_table_insert (by_key, g->key, g);
        }
      if (t->ne[0] != g->n || qb_tensor_n_experts (t) != g->n_mat)
        continue;   /* not the same input after all: no statistics */
      g_ptr_array_add (g->members, g_strdup (t->name));
      g_hash_table_insert (s->by_name, g_ptr_array_index (g->members, g->members->len - 1), g);
      s->by_index[i] = g;
    }
}

/* ---- the cache ------------------------------------------------------------ */

static char *
stats_key (QbModel *model, QbCalibration *calib)
{
  g_autofree char *text = g_strdup_printf ("%s\n%s\n%s", STATS_VERSION,
                                           qb_model_get_fingerprint (model),
                                           qb_calibration_get_hash (calib));
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, text, -1);
}

/* gram-KEY.bin, and for experts gram-KEY.eN.bin (one file per expert). */
static char *
gram_name (Group *g, guint expert)
{
  return g->n_mat > 1 ? g_strdup_printf ("%s.e%u", g->key, expert) : g_strdup (g->key);
}

static char *
gram_path (QbActivationStats *s, Group *g, guint expert)
{
  g_autofree char *id = gram_name (g, expert);
  g_autofree char *name = g_strdup_printf ("gram-%s.bin", id);
  return g_build_filename (s->dir, name, NULL);
}

/* Each file's own key: the statistics' key and the input (and expert). */
static char *
gram_key (QbActivationStats *s, Group *g, guint expert)
{
  g_autofree char *id = gram_name (g, expert);
  g_autofree char *text = g_strdup_printf ("%s\n%s", s->key, id);
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, text, -1);
}

/* Maps a group's XᵀX file: NULL when absent, damaged or of another shape.
 * An expert no calibration token reached has a file of zeros and 0 rows. */
static GMappedFile *
open_gram (QbActivationStats *s, Group *g, guint expert, const double **gram, guint64 *rows)
{
  g_autofree char *path = gram_path (s, g, expert);
  g_autofree char *key = gram_key (s, g, expert);
  g_autoptr(GMappedFile) f = NULL;
  const guint8 *p;
  guint64 n, bytes;

  f = qb_cache_open (path, GRAM_MAGIC, key, &p, &bytes);
  if (f == NULL || bytes < 16)
    return NULL;
  memcpy (&n, p, 8);
  memcpy (rows, p + 8, 8);
  if ((gint64) n != g->n || bytes != 16 + (guint64) g->n * g->n * sizeof (double)
      || (*rows == 0 && g->n_mat == 1))
    return NULL;
  *gram = (const double *) (const void *) (p + 16);
  return g_steal_pointer (&f);
}

static gboolean
write_gram (QbActivationStats *s, Group *g, guint expert, GError **error)
{
  g_autofree char *path = gram_path (s, g, expert);
  g_autofree char *key = gram_key (s, g, expert);
  Gram *u = &g->grams[expert];
  guint8 *payload = u->buf + QB_CACHE_HEADER_BYTES;
  guint64 bytes = 16 + (guint64) g->n * g->n * sizeof (double);

  memcpy (payload, &g->n, 8);
  memcpy (payload + 8, &u->rows, 8);
  qb_cache_header_fill (u->buf, GRAM_MAGIC, key, payload, bytes);
  return qb_cache_write (path, u->buf, QB_CACHE_HEADER_BYTES + bytes, error);
}

/* The cached imatrix, if it has every input of this model. */
static gboolean
load_cached_sums (QbActivationStats *s)
{
  g_autofree char *path = g_build_filename (s->dir, "imatrix.gguf", NULL);
  g_autoptr(QbImatrix) im = NULL;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR) || (im = qb_imatrix_load (path, NULL)) == NULL)
    return FALSE;
  for (guint i = 0; i < s->groups->len; i++)
    {
      Group *g = g_ptr_array_index (s->groups, i);
      const char *name = g_ptr_array_index (g->members, 0);
      guint n = 0;
      const float *imp = qb_imatrix_get (im, name, &n);
      guint n_mat = 0;
      const guint64 *counts = qb_imatrix_get_counts (im, name, &n_mat);

      if (imp == NULL || n != g->n * g->n_mat || n_mat != g->n_mat)
        return FALSE;
      g->rows = 0;
      g->sum2 = g_new (double, g->n * g->n_mat);
      g->mat_rows = g_new (guint64, g->n_mat);
      for (guint m = 0; m < g->n_mat; m++)
        {
          if (counts[m] == 0)
            return FALSE;
          g->mat_rows[m] = counts[m];
          g->rows += counts[m];
          for (gint64 j = 0; j < g->n; j++)
            g->sum2[m * g->n + j] = (double) imp[m * g->n + j] * counts[m];
        }
    }
  return TRUE;
}

/* ---- collecting -------------------------------------------------------------- */

typedef struct {
  QbActivationStats *stats;
  gboolean           sums;        /* Σ x² this pass */
  guint64            forward;
  double            *xd;          /* a chunk's input in double, for dsyrk */
  gsize              xd_floats;
  int                blas_threads;
  GError            *error;
  /* A pass that only wants some layers' XᵀX stops each forward pass once
   * it has them: `stop` cancels the rest of the layers. */
  guint              n_wanted;    /* inputs per forward pass; 0: run every layer */
  guint              n_seen;
  GCancellable      *stop;
  gboolean           stopped;
  QbLlama           *llama;       /* whose expert an input belongs to */
} Collect;

static void
add_gram (Collect *c, Group *g, Gram *u, const float *x, gint64 rows)
{
  gsize need = (gsize) rows * g->n;
  int saved = openblas_get_num_threads ();

  if (c->xd_floats < need)
    {
      g_free (c->xd);
      c->xd = g_new (double, need);
      c->xd_floats = need;
    }
  for (gsize i = 0; i < need; i++)
    c->xd[i] = x[i];
  /* The forward pass runs BLAS on one thread; this product wants them all. */
  openblas_set_num_threads (c->blas_threads);
  cblas_dsyrk (CblasRowMajor, CblasUpper, CblasTrans, (int) g->n, (int) rows, 1.0, c->xd,
               (int) g->n, 1.0, u->gram, (int) g->n);
  openblas_set_num_threads (saved);
  u->rows += rows;
}

static void
add_sums (Group *g, const float *x, gint64 rows, guint mat)
{
  double *s = g->sum2 + (gsize) mat * g->n;

  for (gint64 r = 0; r < rows; r++)
    {
      const float *xr = x + r * g->n;
      for (gint64 j = 0; j < g->n; j++)
        s[j] += (double) xr[j] * xr[j];
    }
  g->rows += rows;
  g->mat_rows[mat] += rows;
}

static void
on_activation (const char *weight_name, guint weight_index, const float *x, gint64 n_rows,
               gint64 n_cols, gpointer data)
{
  Collect *c = data;
  Group *g = weight_index < qb_model_get_n_tensors (c->stats->model) ? c->stats->by_index[weight_index] : NULL;
  int expert = g != NULL && g->n_mat > 1 ? qb_llama_get_activation_expert (c->llama) : 0;

  if (g == NULL || c->error != NULL)
    return;
  if (expert < 0 || (guint) expert >= g->n_mat)
    {
      g_set_error (&c->error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "%s: input of expert %d, the tensor has %u", weight_name, expert, g->n_mat);
      return;
    }
  /* Each expert's gate and up read one gathered buffer: count it once. */
  if (g->last_forward == c->forward && g->last_expert == expert)
    {
      /* Q, K and V read one buffer: count it once.  Anything else would
       * mean the grouping is wrong for this model. */
      if (g->last_x != x)
        g_set_error (&c->error, G_IO_ERROR, G_IO_ERROR_FAILED,
                     "%s: expected the same input as the other weights of %s", weight_name, g->key);
      return;
    }
  g->last_forward = c->forward;
  g->last_x = x;
  g->last_expert = expert;
  if (n_cols != g->n)
    {
      g_set_error (&c->error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "%s: input of %" G_GINT64_FORMAT " columns, expected %" G_GINT64_FORMAT,
                   weight_name, n_cols, g->n);
      return;
    }
  if (c->sums)
    add_sums (g, x, n_rows, (guint) expert);
  if (g->grams[expert].gram != NULL)
    add_gram (c, g, &g->grams[expert], x, n_rows);
  /* A pass that wants some layers' XᵀX stops once it has seen each of
   * their inputs: an expert group at its first expert, since the forward
   * pass runs a layer's experts to the end before it looks at a cancel. */
  if (g->in_pass && g->counted != c->forward)
    {
      g->counted = c->forward;
      if (c->n_wanted > 0 && ++c->n_seen == c->n_wanted)
        {
          c->stopped = TRUE;
          g_cancellable_cancel (c->stop);
        }
    }
}

typedef struct {
  QbStatsProgressFunc func;
  gpointer            data;
  QbStatsProgress     p;
} Progress;

static void
layer_progress (guint done, guint total, gpointer data)
{
  Progress *pr = data;
  double units = (double) pr->p.n_passes * pr->p.n_chunks;

  pr->p.fraction = ((double) pr->p.pass * pr->p.n_chunks + pr->p.chunk + (double) done / total) / units;
  pr->func (&pr->p, pr->data);
}

static void
cancel_stop (GCancellable *cancellable, gpointer stop)
{
  g_cancellable_cancel (stop);
}

/* One forward pass over a chunk, stopped early when the pass has what it
 * wants from it (and only then: a cancel from the user still cancels). */
static gboolean
forward_chunk (QbLlama *llama, Collect *c, const gint32 *tokens, guint n_ctx, guint first,
               float *logits, Progress *pr, GCancellable *cancellable, GError **error)
{
  g_autoptr(GError) local = NULL;

  /* stop is reset for each chunk: a cancel that came after the last
   * check of the previous chunk is seen here. */
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  c->forward++;
  c->n_seen = 0;
  c->stopped = FALSE;
  g_cancellable_reset (c->stop);
  if (qb_llama_forward (llama, tokens, n_ctx, first, logits, pr->func ? layer_progress : NULL, pr,
                        c->stop, &local))
    return TRUE;
  if (c->stopped && !g_cancellable_is_cancelled (cancellable)
      && g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

/* Zero sums (when sums) and the pass's XᵀX: a pass starting over. */
static void
reset_pass (QbActivationStats *s, GPtrArray *pass, gboolean sums)
{
  for (guint i = 0; i < pass->len; i++)
    {
      Unit *un = g_ptr_array_index (pass, i);
      Gram *u = &un->g->grams[un->expert];
      memset (u->gram, 0, sizeof (double) * un->g->n * un->g->n);
      u->rows = 0;
      un->g->counted = 0;
    }
  for (guint i = 0; sums && i < s->groups->len; i++)
    {
      Group *g = g_ptr_array_index (s->groups, i);
      memset (g->sum2, 0, sizeof (double) * g->n * g->n_mat);
      memset (g->mat_rows, 0, sizeof (guint64) * g->n_mat);
      g->rows = 0;
      g->last_expert = -1;
      g->last_forward = 0;
    }
}

/* ---- the pass on the device ----------------------------------------------------- */

/* The statistics the pass wants, kept on the selected device by its
 * forward pass; FALSE (error set) when it cannot. */
static gboolean
device_begin (QbActivationStats *s, QbLlama *llama, GPtrArray *pass, gboolean sums,
              gboolean output, GError **error)
{
  guint n_tensors = qb_model_get_n_tensors (s->model), n = s->groups->len;
  g_autofree gint *input_of = g_new (gint, MAX (n_tensors, 1));
  g_autofree gint64 *n_cols = g_new (gint64, MAX (n, 1));
  g_autofree gboolean *gram = g_new0 (gboolean, MAX (n, 1));
  QbLlamaStatsSpec spec = { n, input_of, n_cols, gram, sums, 0, output };
  int last = -1;
  gboolean experts = FALSE;

  for (guint t = 0; t < n_tensors; t++)
    input_of[t] = s->by_index[t] != NULL ? (gint) s->by_index[t]->index : -1;
  for (guint i = 0; i < n; i++)
    n_cols[i] = ((Group *) g_ptr_array_index (s->groups, i))->n;
  for (guint i = 0; i < pass->len; i++)
    {
      Group *g = ((Unit *) g_ptr_array_index (pass, i))->g;
      experts |= g->n_mat > 1;
      gram[g->index] = TRUE;
      last = MAX (last, g->layer);
    }
  spec.last_layer = output || last < 0 ? qb_llama_get_params (llama)->n_layer - 1 : (guint) last;
  if (!qb_llama_stats_begin (llama, &spec, error))
    return FALSE;
  /* The device pass keeps one XᵀX per input (and refuses mixtures of
   * experts today): XᵀX per expert is collected on the CPU. */
  if (experts)
    {
      qb_llama_stats_end (llama);
      g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_UNSUPPORTED,
                   "XᵀX per expert is collected on the CPU");
      return FALSE;
    }
  return TRUE;
}

/* The device's statistics into the groups; every input the pass wants
 * must have seen each chunk's rows. */
static gboolean
device_collect (QbActivationStats *s, QbLlama *llama, GPtrArray *pass, gboolean sums, guint first,
                GError **error)
{
  guint n_ctx = qb_calibration_get_n_ctx (s->calib), n_chunks = qb_calibration_get_n_chunks (s->calib);

  for (guint i = 0; i < s->groups->len; i++)
    {
      Group *g = g_ptr_array_index (s->groups, i);
      guint64 rows = 0, expect = (guint64) n_chunks * (g->is_output ? n_ctx - first : n_ctx);

      Gram *u = &g->grams[0];

      if (!sums && u->gram == NULL)
        continue;
      if (!qb_llama_stats_read (llama, i, sums ? g->sum2 : NULL, u->gram, &rows, error))
        return FALSE;
      if (u->gram != NULL)
        {
          if (rows != expect)
            {
              g_set_error (error, QB_DEVICE_ERROR, QB_DEVICE_ERROR_FAILED,
                           "the device pass saw %" G_GUINT64_FORMAT " rows of %s, expected %"
                           G_GUINT64_FORMAT, rows, g->key, expect);
              return FALSE;
            }
          u->rows = rows;
        }
      if (sums)
        {
          g->rows = rows;
          g->mat_rows[0] = rows;
        }
    }
  return TRUE;
}

/* The chunks through the device pass, its statistics read back at the end. */
static gboolean
device_pass (QbActivationStats *s, QbLlama *llama, Collect *c, GPtrArray *pass, guint first,
             gint32 *tokens, float *logits, Progress *pr, GCancellable *cancellable, GError **error)
{
  guint n_ctx = qb_calibration_get_n_ctx (s->calib);
  gboolean ok = TRUE;

  for (guint k = 0; ok && k < qb_calibration_get_n_chunks (s->calib); k++)
    {
      qb_calibration_get_chunk (s->calib, k, tokens);
      pr->p.chunk = k;
      ok = forward_chunk (llama, c, tokens, n_ctx, first, logits, pr, cancellable, error);
      s->n_forward += ok;
    }
  ok = ok && device_collect (s, llama, pass, c->sums, first, error);
  qb_llama_stats_end (llama);
  return ok;
}

/* One pass over the calibration chunks with the groups in pass
 * accumulating XᵀX (and Σ x² when sums). */
static gboolean
run_pass (QbActivationStats *s, QbLlama *llama, GPtrArray *pass, gboolean sums, Progress *pr,
          GCancellable *cancellable, GError **error)
{
  guint n_ctx = qb_calibration_get_n_ctx (s->calib), n_vocab = qb_llama_get_params (llama)->n_vocab;
  gboolean output = sums;
  g_autofree gint32 *tokens = g_new (gint32, n_ctx);
  g_autofree float *logits = NULL;
  Collect c = { s, sums, 0, NULL, 0, 0, NULL, 0, 0, NULL, FALSE, llama };
  g_autoptr(GError) local = NULL;
  gulong handler = 0;
  guint first, n_groups = 0;
  gboolean ok = TRUE, device;

  c.blas_threads = (int) MAX (qb_llama_get_threads (llama), 1);
  for (guint i = 0; i < s->groups->len; i++)
    ((Group *) g_ptr_array_index (s->groups, i))->in_pass = FALSE;
  for (guint i = 0; i < pass->len; i++)
    {
      Unit *un = g_ptr_array_index (pass, i);
      Group *g = un->g;
      Gram *u = &g->grams[un->expert];

      output |= g->is_output;
      if (!g->in_pass)
        n_groups++;
      g->in_pass = TRUE;
      g->counted = 0;
      u->buf = g_try_malloc0 (QB_CACHE_HEADER_BYTES + 16 + sizeof (double) * g->n * g->n);
      if (u->buf == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                       "out of memory for XᵀX of %s (%" G_GINT64_FORMAT " columns)", g->key, g->n);
          return FALSE;
        }
      u->gram = (double *) (void *) (u->buf + QB_CACHE_HEADER_BYTES + 16);
      u->rows = 0;
    }
  for (guint i = 0; sums && i < s->groups->len; i++)
    {
      Group *g = g_ptr_array_index (s->groups, i);
      g_free (g->sum2);
      g_free (g->mat_rows);
      g->sum2 = g_new0 (double, g->n * g->n_mat);
      g->mat_rows = g_new0 (guint64, g->n_mat);
      g->rows = 0;
      g->last_expert = -1;
    }
  /* The output matrix sees every position only when its input is wanted;
   * a pass for some layers' XᵀX alone stops after the last of them. */
  first = output ? 0 : n_ctx - 1;
  logits = g_new (float, (gsize) (n_ctx - first) * n_vocab);
  c.stop = g_cancellable_new ();
  if (cancellable != NULL)
    handler = g_cancellable_connect (cancellable, G_CALLBACK (cancel_stop), c.stop, NULL);

  /* On the selected device the statistics stay there until the pass is
   * done; a device that cannot, or fails midway, leaves the pass to the
   * CPU from its first chunk. */
  device = device_begin (s, llama, pass, sums, output, &local);
  if (device && device_pass (s, llama, &c, pass, first, tokens, logits, pr, cancellable, &local))
    goto done;
  if (local->domain != QB_DEVICE_ERROR)   /* cancelled, bad input: not the device's doing */
    {
      g_propagate_error (error, g_steal_pointer (&local));
      ok = FALSE;
      goto done;
    }
  if (local->code != QB_DEVICE_ERROR_NOT_FOUND)
    g_message ("%s; calibrating on the CPU", local->message);
  if (device)
    reset_pass (s, pass, sums);
  ok = TRUE;
  c.n_wanted = output ? 0 : n_groups;
  qb_llama_set_activation_func (llama, on_activation, &c);
  for (guint k = 0; ok && k < qb_calibration_get_n_chunks (s->calib); k++)
    {
      qb_calibration_get_chunk (s->calib, k, tokens);
      pr->p.chunk = k;
      ok = forward_chunk (llama, &c, tokens, n_ctx, first, logits, pr, cancellable, error);
      s->n_forward += ok;
      if (ok && c.error != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&c.error));
          ok = FALSE;
        }
      if (ok && c.n_wanted > 0 && c.n_seen != c.n_wanted)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "the forward pass saw %u of the %u inputs this pass wants", c.n_seen, c.n_wanted);
          ok = FALSE;
        }
    }
  qb_llama_set_activation_func (llama, NULL, NULL);
done:
  if (handler != 0)
    g_cancellable_disconnect (cancellable, handler);
  g_object_unref (c.stop);
  g_clear_error (&c.error);
  g_free (c.xd);
  return ok;
}

/* dsyrk filled the upper triangle: mirror it. */
static void
symmetrize (double *a, gint64 n)
{
  for (gint64 i = 0; i < n; i++)
    for (gint64 j = 0; j < i; j++)
      a[i * n + j] = a[j * n + i];
}

/* Each expert's XᵀX must hold the rows its importance counted (the
 * tokens routed to it): anything else would mean the pass missed some. */
static gboolean
check_expert_rows (QbActivationStats *s, GPtrArray *pass, gboolean sums, GError **error)
{
  for (guint i = 0; (s->have_sums || sums) && i < pass->len; i++)
    {
      Unit *un = g_ptr_array_index (pass, i);
      Group *g = un->g;

      if (g->n_mat > 1 && g->mat_rows != NULL && g->grams[un->expert].rows != g->mat_rows[un->expert])
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "%s: XᵀX of expert %u holds %" G_GUINT64_FORMAT " rows, its importance %"
                       G_GUINT64_FORMAT, g->key, un->expert, g->grams[un->expert].rows,
                       g->mat_rows[un->expert]);
          return FALSE;
        }
    }
  return TRUE;
}

/* After a pass: XᵀX to the cache (or kept in memory). */
static gboolean
finish_pass (QbActivationStats *s, GPtrArray *pass, gboolean sums, GError **error)
{
  if (!check_expert_rows (s, pass, sums, error))
    return FALSE;
  for (guint i = 0; i < pass->len; i++)
    {
      Unit *un = g_ptr_array_index (pass, i);
      Gram *u = &un->g->grams[un->expert];

      symmetrize (u->gram, un->g->n);
      if (s->no_cache)
        continue;
      if (!write_gram (s, un->g, un->expert, error))
        return FALSE;
      u->cached = TRUE;
      g_clear_pointer (&u->buf, g_free);
      u->gram = NULL;
    }
  return TRUE;
}

static void
drop_pass (GPtrArray *pass)
{
  for (guint i = 0; i < pass->len; i++)
    {
      Unit *un = g_ptr_array_index (pass, i);
      g_clear_pointer (&un->g->grams[un->expert].buf, g_free);
      un->g->grams[un->expert].gram = NULL;
    }
}

/* The importance matrix of every group (output included). */
static QbImatrix *
build_imatrix (QbActivationStats *s, gboolean include_output)
{
  QbImatrix *im = qb_imatrix_new ();

  for (guint i = 0; i < s->groups->len; i++)
    {
      Group *g = g_ptr_array_index (s->groups, i);
      g_autofree float *sum2 = NULL;

      gboolean every_expert = TRUE;

      if (g->rows == 0 || g->sum2 == NULL || (g->is_output && !include_output))
        continue;
      /* As llama-imatrix: an expert no token reached leaves the entry out. */
      for (guint m = 0; m < g->n_mat; m++)
        every_expert &= g->mat_rows[m] > 0;
      if (!every_expert)
        continue;
      sum2 = g_new (float, g->n * g->n_mat);
      for (gint64 j = 0; j < g->n * g->n_mat; j++)
        sum2[j] = (float) g->sum2[j];
      for (guint m = 0; m < g->members->len; m++)
        qb_imatrix_set_stacked (im, g_ptr_array_index (g->members, m), sum2, (guint) g->n,
                                g->n_mat, g->mat_rows);
    }
  qb_imatrix_set_dataset (im, qb_calibration_get_name (s->calib),
                          qb_calibration_get_n_chunks (s->calib), qb_calibration_get_n_ctx (s->calib));
  return im;
}

static gboolean
save_sums (QbActivationStats *s, GError **error)
{
  g_autoptr(QbImatrix) im = build_imatrix (s, TRUE);
  g_autofree char *path = g_build_filename (s->dir, "imatrix.gguf", NULL);

  if (g_mkdir_with_parents (s->dir, 0755) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: cannot create the folder", s->dir);
      return FALSE;
    }
  return qb_imatrix_get_n_entries (im) == 0 || qb_imatrix_save_gguf (im, path, error);
}

/* ---- planning the passes -------------------------------------------------------- */

static guint64
group_gram_bytes (const Group *g)
{
  return (guint64) g->n_mat * g->n * g->n * sizeof (double);
}

/* XᵀX per expert takes n_expert × n² doubles per input: above the limit
 * none is collected (GPTQ then rounds the expert tensors, and says so),
 * rather than filling the disk, or memory without a cache. */
static void
limit_expert_grams (QbActivationStats *s, guint64 limit)
{
  guint64 total = 0;
  guint n_inputs = 0, n_experts = 0;

  for (guint i = 0; i < s->groups->len; i++)
    {
      Group *g = g_ptr_array_index (s->groups, i);
      if (g->want_gram && g->n_mat > 1)
        {
          total += group_gram_bytes (g);
          n_inputs++;
          n_experts = g->n_mat;
        }
    }
  if (total <= limit)
    return;
  for (guint i = 0; i < s->groups->len; i++)
    {
      Group *g = g_ptr_array_index (s->groups, i);
      if (g->n_mat > 1)
        g->want_gram = FALSE;
    }
  {
    g_autofree char *t = g_format_size_full (total, G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *l = g_format_size_full (limit, G_FORMAT_SIZE_IEC_UNITS);
    s->expert_note = g_strdup_printf ("one XᵀX per expert would take %s (%u expert inputs × %u "
                                      "experts), above the limit of %s: not collected",
                                      t, n_inputs, n_experts, l);
  }
  g_message ("calibration: %s; the expert tensors are rounded instead of GPTQ", s->expert_note);
}

static void
mark_wanted (QbActivationStats *s, const QbStatsOptions *opts)
{
  /* An expert tensor's input has an XᵀX per expert, each over the tokens
   * routed to that expert. */
  for (guint i = 0; i < s->groups->len; i++)
    {
      Group *g = g_ptr_array_index (s->groups, i);
      g->want_gram = opts->gram_all;
    }
  for (guint i = 0; opts->gram_tensors != NULL && opts->gram_tensors[i] != NULL; i++)
    {
      Group *g = g_hash_table_lookup (s->by_name, opts->gram_tensors[i]);
      if (g != NULL)
        g->want_gram = TRUE;
    }
  limit_expert_grams (s, opts->max_expert_gram_bytes ? opts->max_expert_gram_bytes
                                                     : QB_STATS_DEFAULT_EXPERT_GRAM_BYTES);
}

/* XᵀX still to compute (each expert's its own unit), cut into passes of
 * at most max_bytes (a unit larger than that gets a pass of its own). */
static GPtrArray *
plan_passes (QbActivationStats *s, guint64 max_bytes)
{
  GPtrArray *passes = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  GPtrArray *cur = NULL;
  guint64 cur_bytes = 0;

  for (guint i = 0; i < s->groups->len; i++)
    {
      Group *g = g_ptr_array_index (s->groups, i);
      guint64 bytes = (guint64) g->n * g->n * sizeof (double);

      for (guint e = 0; g->want_gram && e < g->n_mat; e++)
        {
          const double *gram;
          guint64 rows;
          Unit *un;

          if (!s->no_cache)
            {
              g_autoptr(GMappedFile) f = open_gram (s, g, e, &gram, &rows);
              if ((g->grams[e].cached = f != NULL))
                continue;
            }
          if (cur == NULL || (cur->len > 0 && cur_bytes + bytes > max_bytes))
            {
              cur = g_ptr_array_new_with_free_func (g_free);
              g_ptr_array_add (passes, cur);
              cur_bytes = 0;
            }
          un = g_new (Unit, 1);
          un->g = g;
          un->expert = e;
          g_ptr_array_add (cur, un);
          cur_bytes += bytes;
        }
    }
  return passes;
}

/* ---- the computation -------------------------------------------------------------- */

static void unmap_group (QbActivationStats *s);

QbActivationStats *
qb_activation_stats_compute (QbLlama *llama, QbCalibration *calib, const QbStatsOptions *opts,
                             QbStatsProgressFunc progress, gpointer progress_data,
                             GCancellable *cancellable, GError **error)
{
  QbActivationStats *s = g_new0 (QbActivationStats, 1);
  g_autoptr(GPtrArray) passes = NULL;
  Progress pr = { progress, progress_data, { 0 } };
  g_autofree char *root = NULL;
  gboolean ok = TRUE;

  s->model = g_object_ref (qb_llama_get_model (llama));
  s->calib = qb_calibration_ref (calib);
  s->key = stats_key (s->model, calib);
  s->no_cache = opts->no_cache;
  if (!s->no_cache)
    {
      root = qb_calibration_cache_dir (opts->cache_dir);
      s->dir = g_build_filename (root, "stats", s->key, NULL);
    }
  build_groups (s);
  mark_wanted (s, opts);

  s->have_sums = !s->no_cache && load_cached_sums (s);
  passes = plan_passes (s, opts->max_gram_bytes ? opts->max_gram_bytes : QB_STATS_DEFAULT_GRAM_BYTES);
  if (!s->have_sums && passes->len == 0)
    g_ptr_array_add (passes, g_ptr_array_new ());
  s->n_passes = passes->len;
  pr.p.n_passes = passes->len;
  pr.p.n_chunks = qb_calibration_get_n_chunks (calib);

  for (guint p = 0; ok && p < passes->len; p++)
    {
      GPtrArray *pass = g_ptr_array_index (passes, p);
      gboolean sums = !s->have_sums;

      pr.p.pass = p;
      ok = run_pass (s, llama, pass, sums, &pr, cancellable, error)
           && finish_pass (s, pass, sums, error);
      if (!ok)
        drop_pass (pass);
      if (ok && sums)
        {
          s->have_sums = TRUE;
          ok = s->no_cache || save_sums (s, error);
        }
    }
  if (!ok)
    {
      qb_activation_stats_free (s);
      return NULL;
    }
  return s;
}

void
qb_activation_stats_free (QbActivationStats *s)
{
  if (s == NULL)
    return;
  unmap_group (s);
  g_free (s->mapped);
  g_free (s->mapped_gram);
  g_free (s->mapped_rows);
  g_free (s->expert_note);
  g_ptr_array_unref (s->groups);
  g_hash_table_unref (s->by_name);
  g_free (s->by_index);
  g_free (s->key);
  g_free (s->dir);
  qb_calibration_unref (s->calib);
  g_object_unref (s->model);
  g_free (s);
}

/* ---- results ------------------------------------------------------------------ */

QbImatrix *
qb_activation_stats_get_imatrix (QbActivationStats *s, gboolean include_output)
{
  return build_imatrix (s, include_output);
}

static void
unmap_group (QbActivationStats *s)
{
  for (guint m = 0; s->mapped_group != NULL && m < s->mapped_group->n_mat; m++)
    g_clear_pointer (&s->mapped[m], g_mapped_file_unref);
  s->mapped_group = NULL;
}

/* Maps every XᵀX file of the group at once (an expert tensor is quantized
 * with all of its experts' at hand). */
static gboolean
map_group (QbActivationStats *s, Group *g)
{
  if (s->mapped_group == g)
    return TRUE;
  unmap_group (s);
  s->mapped = g_renew (GMappedFile *, s->mapped, g->n_mat);
  s->mapped_gram = g_renew (const double *, s->mapped_gram, g->n_mat);
  s->mapped_rows = g_renew (guint64, s->mapped_rows, g->n_mat);
  memset (s->mapped, 0, sizeof (GMappedFile *) * g->n_mat);
  s->mapped_group = g;
  for (guint m = 0; m < g->n_mat; m++)
    if (!g->grams[m].cached
        || (s->mapped[m] = open_gram (s, g, m, &s->mapped_gram[m], &s->mapped_rows[m])) == NULL)
      {
        unmap_group (s);
        return FALSE;
      }
  return TRUE;
}

const double *
qb_activation_stats_get_expert_gram (QbActivationStats *s, const char *tensor_name, guint expert,
                                     guint64 *n_samples)
{
  Group *g = g_hash_table_lookup (s->by_name, tensor_name);

  *n_samples = 0;
  if (g == NULL || !g->want_gram || expert >= g->n_mat)
    return NULL;
  if (g->grams[expert].gram != NULL)   /* kept in memory */
    {
      *n_samples = g->grams[expert].rows;
      return g->grams[expert].gram;
    }
  if (!map_group (s, g))
    return NULL;
  *n_samples = s->mapped_rows[expert];
  return s->mapped_gram[expert];
}

const double *
qb_activation_stats_get_gram (QbActivationStats *s, const char *tensor_name, guint64 *n_samples)
{
  Group *g = g_hash_table_lookup (s->by_name, tensor_name);

  *n_samples = 0;
  if (g == NULL || g->n_mat != 1)
    return NULL;
  return qb_activation_stats_get_expert_gram (s, tensor_name, 0, n_samples);
}

guint
qb_activation_stats_get_expert_grams (QbActivationStats *s, const char *tensor_name, gint64 n_cols,
                                      const double **grams, guint64 *n_samples, guint max)
{
  Group *g = g_hash_table_lookup (s->by_name, tensor_name);

  if (g == NULL || g->n != n_cols || g->n_mat > max)
    return 0;
  for (guint m = 0; m < g->n_mat; m++)
    if ((grams[m] = qb_activation_stats_get_expert_gram (s, tensor_name, m, &n_samples[m])) == NULL)
      return 0;
  return g->n_mat;
}

const char *
qb_activation_stats_get_expert_note (QbActivationStats *s)
{
  return s->expert_note;
}

guint
qb_activation_stats_get_n_forward (QbActivationStats *s)
{
  return s->n_forward;
}

guint
qb_activation_stats_get_n_passes (QbActivationStats *s)
{
  return s->n_passes;
}

const char *
qb_activation_stats_get_cache_dir (QbActivationStats *s)
{
  return s->dir;
}

QbCalibration *
qb_activation_stats_get_calibration (QbActivationStats *s)
{
  return s->calib;
}

static const double *
job_gram (const char *tensor_name, gint64 n_cols, guint expert, guint64 *n_samples, gpointer data)
{
  const double *gram = qb_activation_stats_get_expert_gram (data, tensor_name, expert, n_samples);
  Group *g = g_hash_table_lookup (((QbActivationStats *) data)->by_name, tensor_name);

  return gram != NULL && g->n == n_cols ? gram : NULL;
}

void
qb_activation_stats_attach (QbActivationStats *s, QbJob *job, gboolean include_output)
{
  g_autoptr(QbImatrix) im = qb_activation_stats_get_imatrix (s, include_output);

  qb_job_set_imatrix (job, im);
  qb_job_set_gram_func (job, job_gram, s);
}

QbActivationStats *
qb_activation_stats_compute_for_plan (QbModel *model, QbPlan *plan, const char * const *paths,
                                      const QbCalibrationOptions *calib_opts, guint n_threads,
                                      QbStatsProgressFunc progress, gpointer progress_data,
                                      GCancellable *cancellable, GError **error)
{
  return qb_activation_stats_compute_for_plan_full (model, plan, paths, calib_opts, NULL, n_threads,
                                                    NULL, progress, progress_data, cancellable, error);
}

QbActivationStats *
qb_activation_stats_compute_for_plan_full (QbModel *model, QbPlan *plan, const char * const *paths,
                                           const QbCalibrationOptions *calib_opts,
                                           const QbStatsOptions *base, guint n_threads,
                                           QbStatsReadyFunc ready, QbStatsProgressFunc progress,
                                           gpointer data, GCancellable *cancellable, GError **error)
{
  g_autoptr(QbLlama) llama = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(QbCalibration) calib = NULL;
  g_auto(GStrv) grams = NULL;
  QbStatsOptions so;

  if ((llama = qb_llama_new (model, error)) == NULL
      || (tok = qb_tokenizer_new_for_model (model, error)) == NULL
      || (calib = qb_calibration_new (model, tok, paths, calib_opts, cancellable, error)) == NULL
      || (plan != NULL && (grams = qb_activation_stats_gram_tensors (plan, model, error)) == NULL))
    return NULL;
  qb_llama_set_threads (llama, n_threads);
  if (base != NULL)
    so = *base;
  else
    qb_stats_options_init (&so);
  so.gram_tensors = (const char * const *) grams;
  so.cache_dir = calib_opts->cache_dir;
  so.no_cache = calib_opts->no_cache;
  if (ready != NULL)
    ready (calib, &so, data);
  return qb_activation_stats_compute (llama, calib, &so, progress, data, cancellable, error);
}

GStrv
qb_activation_stats_gram_tensors (QbPlan *plan, QbModel *model, GError **error)
{
  g_autoptr(QbPlanResolution) res = qb_plan_resolve (plan, model, error);
  g_autoptr(GStrvBuilder) b = NULL;

  if (res == NULL)
    return NULL;
  b = g_strv_builder_new ();
  for (guint i = 0; i < res->n_tensors; i++)
    {
      const QbTensorChoice *c = &res->choices[i];
      if (c->format != NULL && c->method != NULL && c->method->needs_gram)
        g_strv_builder_add (b, qb_model_get_tensor (model, i)->name);
    }
  return g_strv_builder_end (b);
}

guint64
qb_activation_stats_gram_bytes (QbModel *model, const char * const *tensors, guint64 *largest,
                                guint64 *experts)
{
  QbActivationStats s = { 0 };
  g_autoptr(GHashTable) seen = g_hash_table_new (NULL, NULL);
  guint64 total = 0, most = 0;

  if (experts != NULL)
    *experts = 0;
  s.model = model;
  build_groups (&s);
  for (guint i = 0; tensors != NULL && tensors[i] != NULL; i++)
    {
      Group *g = g_hash_table_lookup (s.by_name, tensors[i]);
      guint64 bytes;

      if (g == NULL || !g_hash_table_add (seen, g))
        continue;
      bytes = (guint64) g->n * g->n * sizeof (double);
      total += bytes * g->n_mat;
      most = MAX (most, bytes);
      if (experts != NULL && g->n_mat > 1)
        *experts += bytes * g->n_mat;
    }
  g_ptr_array_unref (s.groups);
  g_hash_table_unref (s.by_name);
  g_free (s.by_index);
  if (largest)
    *largest = most;
  return total;
}
