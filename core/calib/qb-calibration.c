/* SPDX-License-Identifier: MIT */
/* qb-calibration.c — calibration sets, and the cache files calibration
 * shares with the activation statistics. */
#include "qb-calibration.h"
#include "qb-file.h"
#include "qb-calibration-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK (qb-calibration-error-quark, qb_calibration_error)

#define HASH_VERSION  "quantbench-calibration-1"
#define TOKENS_MAGIC  "QBCALTOK"

struct _QbCalibration {
  gint      ref_count;
  char     *name;
  char    **sources;
  char     *hash;
  guint64   n_text_tokens;
  guint     n_ctx;
  guint     n_chunks;
  guint     skip_chunks;
  gboolean  random;
  guint64   seed;
  gint32    bos;          /* -1: chunks keep their first token */
  guint    *chunk_index;  /* n_chunks, ascending */
  gint32   *tokens;       /* n_chunks × n_ctx, the text's own tokens */
  gboolean  from_cache;
};

/* ---- cache files ---------------------------------------------------------- */

char *
qb_calibration_cache_dir (const char *dir)
{
  if (dir != NULL)
    return g_strdup (dir);
  return g_build_filename (g_get_user_cache_dir (), "quantbench", "calibration", NULL);
}

guint64
qb_cache_checksum (const void *data, gsize n)
{
  /* Four independent multiply-xor lanes over 8-byte words, then the tail:
   * fast enough to check a gigabyte in well under a second. */
  const guint8 *p = data;
  guint64 h[4] = { 0x243f6a8885a308d3, 0x13198a2e03707344, 0xa4093822299f31d0, 0x082efa98ec4e6c89 };
  const guint64 k = 0x9e3779b97f4a7c15;
  gsize i = 0;

  for (; i + 32 <= n; i += 32)
    for (int l = 0; l < 4; l++)
      {
        guint64 w;
        memcpy (&w, p + i + 8 * l, 8);
        h[l] = (h[l] ^ GUINT64_FROM_LE (w)) * k;
        h[l] ^= h[l] >> 29;
      }
  for (; i < n; i++)
    h[0] = (h[0] ^ p[i]) * k;
  return (h[0] ^ (h[1] * 3) ^ (h[2] * 5) ^ (h[3] * 7) ^ n) * k;
}

static void
put_u64 (guint8 *p, guint64 v)
{
  v = GUINT64_TO_LE (v);
  memcpy (p, &v, 8);
}

static guint64
get_u64 (const guint8 *p)
{
  guint64 v;
  memcpy (&v, p, 8);
  return GUINT64_FROM_LE (v);
}

/* The key's SHA-256 as 32 bytes. */
static void
key_bytes (const char *hex, guint8 *out)
{
  memset (out, 0, 32);
  for (int i = 0; i < 32 && hex[2 * i] && hex[2 * i + 1]; i++)
    out[i] = (guint8) (g_ascii_xdigit_value (hex[2 * i]) << 4 | g_ascii_xdigit_value (hex[2 * i + 1]));
}

void
qb_cache_header_fill (guint8 *header, const char *magic, const char *key, const void *payload,
                      guint64 payload_bytes)
{
  memset (header, 0, QB_CACHE_HEADER_BYTES);
  memcpy (header, magic, 8);
  header[8] = 1;   /* u32 version 1, little-endian */
  key_bytes (key, header + 16);
  put_u64 (header + 48, payload_bytes);
  put_u64 (header + 56, qb_cache_checksum (payload, payload_bytes));
}

gboolean
qb_cache_write (const char *path, const guint8 *data, gsize n, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);

  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int e = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e), "%s: cannot create the folder: %s",
                   dir, g_strerror (e));
      return FALSE;
    }
  return g_file_set_contents_full (path, (const char *) data, n,
                                   G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                   0644, error);
}

GMappedFile *
qb_cache_open (const char *path, const char *magic, const char *key, const guint8 **payload,
               guint64 *payload_bytes)
{
  g_autoptr(GMappedFile) file = NULL;
  const guint8 *data;
  guint8 want[32];
  gsize size;
  guint64 n;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return NULL;
  file = qb_file_map (path, NULL);
  if (file == NULL)
    return NULL;
  data = (const guint8 *) g_mapped_file_get_contents (file);
  size = g_mapped_file_get_length (file);
  key_bytes (key, want);
  if (size < QB_CACHE_HEADER_BYTES || memcmp (data, magic, 8) != 0 || data[8] != 1
      || memcmp (data + 16, want, 32) != 0)
    return NULL;
  n = get_u64 (data + 48);
  if (n != size - QB_CACHE_HEADER_BYTES
      || qb_cache_checksum (data + QB_CACHE_HEADER_BYTES, n) != get_u64 (data + 56))
    {
      g_debug ("%s: damaged cache file, ignored", path);
      return NULL;
    }
  *payload = data + QB_CACHE_HEADER_BYTES;
  *payload_bytes = n;
  return g_steal_pointer (&file);
}

/* ---- choosing chunks ------------------------------------------------------- */

void
qb_calibration_options_init (QbCalibrationOptions *opts)
{
  memset (opts, 0, sizeof *opts);
}

void
qb_calibration_options_for_record (QbCalibrationOptions *opts, const QbCalibrationSet *record)
{
  qb_calibration_options_init (opts);
  opts->n_ctx = record->chunk_len;
  opts->n_chunks = record->n_chunks;
  opts->skip_chunks = record->skip_chunks;
  opts->random = record->seeded;
  opts->seed = record->seed;
  opts->expect_hash = record->hash;
}

static guint64
splitmix64 (guint64 *state)
{
  guint64 z = (*state += G_GUINT64_CONSTANT (0x9e3779b97f4a7c15));

  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static int
compare_uint (gconstpointer a, gconstpointer b)
{
  guint x = *(const guint *) a, y = *(const guint *) b;
  return (x > y) - (x < y);
}

/* Chunks skip .. skip + n - 1, or n of [skip, total) drawn by a partial
 * Fisher-Yates shuffle with SplitMix64 (stable across platforms), sorted. */
static gboolean
choose_chunks (QbCalibration *c, guint64 n_tokens, guint requested, GError **error)
{
  guint64 total = n_tokens / c->n_ctx;
  guint avail;

  if (total <= c->skip_chunks)
    {
      g_set_error (error, QB_CALIBRATION_ERROR, QB_CALIBRATION_ERROR_TEXT,
                   "the calibration text has %" G_GUINT64_FORMAT " tokens: %" G_GUINT64_FORMAT
                   " chunks of %u, none left after skipping %u",
                   n_tokens, total, c->n_ctx, c->skip_chunks);
      return FALSE;
    }
  avail = (guint) MIN (total - c->skip_chunks, G_MAXUINT);
  c->n_chunks = MIN (requested, avail);
  c->chunk_index = g_new (guint, c->n_chunks);
  if (!c->random)
    {
      for (guint i = 0; i < c->n_chunks; i++)
        c->chunk_index[i] = c->skip_chunks + i;
      return TRUE;
    }
  {
    g_autofree guint *all = g_new (guint, avail);
    guint64 state = c->seed;

    for (guint i = 0; i < avail; i++)
      all[i] = c->skip_chunks + i;
    for (guint i = 0; i < c->n_chunks; i++)
      {
        guint j = i + (guint) (splitmix64 (&state) % (avail - i)), t = all[i];
        all[i] = all[j];
        all[j] = t;
      }
    memcpy (c->chunk_index, all, sizeof (guint) * c->n_chunks);
    qsort (c->chunk_index, c->n_chunks, sizeof (guint), compare_uint);
  }
  return TRUE;
}

static void
copy_chunks (QbCalibration *c, const gint32 *tokens)
{
  c->tokens = g_new (gint32, (gsize) c->n_chunks * c->n_ctx);
  for (guint i = 0; i < c->n_chunks; i++)
    memcpy (c->tokens + (gsize) i * c->n_ctx, tokens + (gsize) c->chunk_index[i] * c->n_ctx,
            sizeof (gint32) * c->n_ctx);
}

/* ---- the object -------------------------------------------------------------- */

static QbCalibration *
calibration_new (const QbCalibrationOptions *opts, guint default_ctx, gint32 bos, GError **error)
{
  QbCalibration *c = g_new0 (QbCalibration, 1);

  c->ref_count = 1;
  c->n_ctx = opts->n_ctx ? opts->n_ctx : default_ctx;
  c->skip_chunks = opts->skip_chunks;
  c->random = opts->random;
  c->seed = opts->seed;
  c->bos = bos;
  if (c->n_ctx < QB_CALIBRATION_MIN_CTX)
    {
      g_set_error (error, QB_CALIBRATION_ERROR, QB_CALIBRATION_ERROR_INVALID,
                   "calibration chunks of %u tokens are too short (at least %d)",
                   c->n_ctx, QB_CALIBRATION_MIN_CTX);
      qb_calibration_unref (c);
      return NULL;
    }
  return c;
}

/* The identity of the set: what decides its tokens. */
static void
compute_hash (QbCalibration *c, const char *tokenizer_fp, GPtrArray *text_hashes, guint requested)
{
  g_autoptr(GString) key = g_string_new (HASH_VERSION);

  g_string_append_printf (key, "\ntokenizer %s", tokenizer_fp);
  for (guint i = 0; i < text_hashes->len; i++)
    g_string_append_printf (key, "\ntext %s", (const char *) g_ptr_array_index (text_hashes, i));
  g_string_append_printf (key, "\nctx %u chunks %u skip %u bos %d", c->n_ctx, requested,
                          c->skip_chunks, c->bos);
  if (c->random)
    g_string_append_printf (key, " random %" G_GUINT64_FORMAT, c->seed);
  c->hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, key->str, key->len);
}

static char *
tokens_cache_path (const QbCalibrationOptions *opts, const char *hash)
{
  g_autofree char *dir = qb_calibration_cache_dir (opts->cache_dir);
  g_autofree char *name = g_strdup_printf ("%s.tokens", hash);

  return g_build_filename (dir, "tokens", name, NULL);
}

/* Payload: u32 n_ctx, u32 n_chunks, u64 text tokens, n_chunks u32 chunk
 * indices, then the chunks' int32 tokens, all little-endian (the indices
 * and tokens are copied as they are: a cache stays on the machine that
 * wrote it, and Quantbench builds for little-endian x86-64). */
static gboolean
read_tokens_cache (QbCalibration *c, const char *path, guint n_vocab)
{
  g_autoptr(GMappedFile) f = NULL;
  const guint8 *p;
  guint64 n;
  guint32 ctx, chunks;

  f = qb_cache_open (path, TOKENS_MAGIC, c->hash, &p, &n);
  if (f == NULL || n < 16)
    return FALSE;
  memcpy (&ctx, p, 4);
  memcpy (&chunks, p + 4, 4);
  ctx = GUINT32_FROM_LE (ctx);
  chunks = GUINT32_FROM_LE (chunks);
  if (ctx != c->n_ctx || chunks == 0 || n != 16 + 4 * (guint64) chunks * (1 + (guint64) ctx))
    return FALSE;
  c->n_chunks = chunks;
  c->n_text_tokens = get_u64 (p + 8);
  c->chunk_index = g_new (guint, chunks);
  c->tokens = g_new (gint32, (gsize) chunks * ctx);
  memcpy (c->chunk_index, p + 16, 4 * (gsize) chunks);
  memcpy (c->tokens, p + 16 + 4 * (gsize) chunks, 4 * (gsize) chunks * ctx);
  for (gsize i = 0; i < (gsize) chunks * ctx; i++)
    if (c->tokens[i] < 0 || (guint) c->tokens[i] >= n_vocab)
      {
        g_clear_pointer (&c->chunk_index, g_free);
        g_clear_pointer (&c->tokens, g_free);
        return FALSE;
      }
  return TRUE;
}

static void
write_tokens_cache (QbCalibration *c, const char *path)
{
  gsize payload = 16 + 4 * (gsize) c->n_chunks * (1 + c->n_ctx);
  g_autofree guint8 *buf = g_malloc (QB_CACHE_HEADER_BYTES + payload);
  guint8 *p = buf + QB_CACHE_HEADER_BYTES;
  guint32 v;
  g_autoptr(GError) error = NULL;

  v = GUINT32_TO_LE (c->n_ctx);
  memcpy (p, &v, 4);
  v = GUINT32_TO_LE (c->n_chunks);
  memcpy (p + 4, &v, 4);
  put_u64 (p + 8, c->n_text_tokens);
  memcpy (p + 16, c->chunk_index, 4 * (gsize) c->n_chunks);
  memcpy (p + 16 + 4 * (gsize) c->n_chunks, c->tokens, 4 * (gsize) c->n_chunks * c->n_ctx);
  qb_cache_header_fill (buf, TOKENS_MAGIC, c->hash, p, payload);
  /* A cache that cannot be written only costs time next run. */
  if (!qb_cache_write (path, buf, QB_CACHE_HEADER_BYTES + payload, &error))
    g_debug ("calibration tokens not cached: %s", error->message);
}

static char *
display_name (const char * const *paths)
{
  g_autofree char *first = g_path_get_basename (paths[0]);
  guint n = g_strv_length ((char **) paths);

  return n > 1 ? g_strdup_printf ("%s + %u more", first, n - 1) : g_steal_pointer (&first);
}

/* Reads every text (a GBytes each) and its SHA-256. */
static GPtrArray *
read_texts (const char * const *paths, GPtrArray *hashes, GError **error)
{
  g_autoptr(GPtrArray) texts = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  for (guint i = 0; paths[i] != NULL; i++)
    {
      g_autoptr(GError) local = NULL;
      char *text = NULL;
      gsize len;

      if (!qb_file_read (paths[i], (gsize) 1 << 32, &text, &len, &local))
        {
          g_set_error (error, QB_CALIBRATION_ERROR, QB_CALIBRATION_ERROR_TEXT, "%s", local->message);
          return NULL;
        }
      g_ptr_array_add (hashes, g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) text, len));
      g_ptr_array_add (texts, g_bytes_new_take (text, len));
    }
  return g_steal_pointer (&texts);
}

/* The texts' tokens, one after the other, each with BOS as the vocabulary
 * asks (llama-imatrix's tokenization). */
static GArray *
tokenize_texts (QbTokenizer *tok, const char * const *paths, GPtrArray *texts,
                GCancellable *cancellable, GError **error)
{
  g_autoptr(GArray) all = g_array_new (FALSE, FALSE, sizeof (gint32));

  for (guint i = 0; i < texts->len; i++)
    {
      gsize len;
      const char *text = g_bytes_get_data (g_ptr_array_index (texts, i), &len);
      g_autoptr(GError) local = NULL;
      g_autoptr(GArray) ids = qb_tokenizer_encode (tok, text, len, TRUE, FALSE, cancellable, &local);

      if (ids == NULL)
        {
          if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            g_propagate_error (error, g_steal_pointer (&local));
          else
            g_set_error (error, QB_CALIBRATION_ERROR, QB_CALIBRATION_ERROR_TEXT, "%s: %s",
                         paths[i], local->message);
          return NULL;
        }
      g_array_append_vals (all, ids->data, ids->len);
    }
  return g_steal_pointer (&all);
}

QbCalibration *
qb_calibration_new (QbModel *model, QbTokenizer *tok, const char * const *paths,
                    const QbCalibrationOptions *opts, GCancellable *cancellable, GError **error)
{
  g_autoptr(QbCalibration) c = NULL;
  g_autoptr(GPtrArray) hashes = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GArray) tokens = NULL;
  g_autoptr(GPtrArray) texts = NULL;
  g_autofree char *tok_fp = NULL, *cache = NULL;
  guint train = qb_model_get_arch (model)->n_ctx;
  guint requested = opts->n_chunks ? opts->n_chunks : QB_CALIBRATION_DEFAULT_CHUNKS;
  gint32 bos = qb_tokenizer_get_add_bos (tok) ? qb_tokenizer_get_bos (tok) : -1;

  g_return_val_if_fail (paths != NULL, NULL);
  if (paths[0] == NULL)
    {
      g_set_error (error, QB_CALIBRATION_ERROR, QB_CALIBRATION_ERROR_INVALID,
                   "a calibration set needs at least one text file");
      return NULL;
    }
  c = calibration_new (opts, train > 0 && train < QB_CALIBRATION_DEFAULT_CTX
                             ? train : QB_CALIBRATION_DEFAULT_CTX, bos, error);
  if (c == NULL)
    return NULL;
  c->name = display_name (paths);
  c->sources = g_strdupv ((char **) paths);

  /* Hashes first (cheap), then the cache, then tokens if need be. */
  if ((texts = read_texts (paths, hashes, error)) == NULL)
    return NULL;
  tok_fp = qb_tokenizer_fingerprint (tok);
  compute_hash (c, tok_fp, hashes, requested);
  if (opts->expect_hash != NULL && g_strcmp0 (opts->expect_hash, c->hash) != 0)
    {
      g_set_error (error, QB_CALIBRATION_ERROR, QB_CALIBRATION_ERROR_CHANGED,
                   "calibration set %s: its texts or chunking no longer give the stored set "
                   "(hash %.12s…, now %.12s…); a text changed, or the set skipped chunks or "
                   "asked for more than the texts had, which the store does not keep",
                   c->name, opts->expect_hash, c->hash);
      return NULL;
    }
  cache = tokens_cache_path (opts, c->hash);
  if (!opts->no_cache && read_tokens_cache (c, cache, qb_tokenizer_get_n_tokens (tok)))
    {
      c->from_cache = TRUE;
      return g_steal_pointer (&c);
    }

  tokens = tokenize_texts (tok, paths, texts, cancellable, error);
  if (tokens == NULL)
    return NULL;
  c->n_text_tokens = tokens->len;
  if (!choose_chunks (c, tokens->len, requested, error))
    return NULL;
  copy_chunks (c, (const gint32 *) (void *) tokens->data);
  if (!opts->no_cache)
    write_tokens_cache (c, cache);
  return g_steal_pointer (&c);
}

QbCalibration *
qb_calibration_new_from_tokens (const gint32 *tokens, gsize n_tokens, gint32 bos,
                                const QbCalibrationOptions *opts, GError **error)
{
  g_autoptr(QbCalibration) c = calibration_new (opts, QB_CALIBRATION_DEFAULT_CTX, bos, error);
  g_autoptr(GPtrArray) hashes = g_ptr_array_new_with_free_func (g_free);
  guint requested = opts->n_chunks ? opts->n_chunks : QB_CALIBRATION_DEFAULT_CHUNKS;

  if (c == NULL)
    return NULL;
  c->name = g_strdup ("tokens");
  c->sources = g_new0 (char *, 1);
  g_ptr_array_add (hashes, g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) tokens,
                                                        sizeof (gint32) * n_tokens));
  compute_hash (c, "-", hashes, requested);
  c->n_text_tokens = n_tokens;
  if (!choose_chunks (c, n_tokens, requested, error))
    return NULL;
  copy_chunks (c, tokens);
  return g_steal_pointer (&c);
}

QbCalibration *
qb_calibration_ref (QbCalibration *c)
{
  g_return_val_if_fail (c != NULL, NULL);
  g_atomic_int_inc (&c->ref_count);
  return c;
}

void
qb_calibration_unref (QbCalibration *c)
{
  if (c == NULL || !g_atomic_int_dec_and_test (&c->ref_count))
    return;
  g_free (c->name);
  g_strfreev (c->sources);
  g_free (c->hash);
  g_free (c->chunk_index);
  g_free (c->tokens);
  g_free (c);
}

const char *qb_calibration_get_name (QbCalibration *c) { return c->name; }
const char * const *qb_calibration_get_sources (QbCalibration *c) { return (const char * const *) c->sources; }
const char *qb_calibration_get_hash (QbCalibration *c) { return c->hash; }
guint64 qb_calibration_get_n_text_tokens (QbCalibration *c) { return c->n_text_tokens; }
guint qb_calibration_get_n_ctx (QbCalibration *c) { return c->n_ctx; }
guint qb_calibration_get_n_chunks (QbCalibration *c) { return c->n_chunks; }
guint qb_calibration_get_skip_chunks (QbCalibration *c) { return c->skip_chunks; }
gboolean qb_calibration_get_random (QbCalibration *c) { return c->random; }
guint64 qb_calibration_get_seed (QbCalibration *c) { return c->seed; }
gboolean qb_calibration_get_from_cache (QbCalibration *c) { return c->from_cache; }

guint
qb_calibration_get_chunk_index (QbCalibration *c, guint i)
{
  g_return_val_if_fail (i < c->n_chunks, 0);
  return c->chunk_index[i];
}

QbCalibrationSet *
qb_calibration_to_record (QbCalibration *c)
{
  QbCalibrationSet *r = qb_calibration_set_new ();

  r->name = g_strdup (c->name);
  g_strfreev (r->sources);
  r->sources = g_strdupv (c->sources);
  r->hash = g_strdup (c->hash);
  r->n_tokens = c->n_text_tokens;
  r->chunk_len = c->n_ctx;
  r->n_chunks = c->n_chunks;
  r->skip_chunks = c->skip_chunks;
  r->seeded = c->random;
  r->seed = c->seed;
  return r;
}

void
qb_calibration_get_chunk (QbCalibration *c, guint i, gint32 *dst)
{
  g_return_if_fail (i < c->n_chunks);
  memcpy (dst, c->tokens + (gsize) i * c->n_ctx, sizeof (gint32) * c->n_ctx);
  if (c->bos >= 0)
    dst[0] = c->bos;
}
