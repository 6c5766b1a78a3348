/* SPDX-License-Identifier: MIT */
/* qb-tokenizer.c — vocabulary, special tokens, and the encode entry point.
 *
 * The algorithms live in qb-tokenizer-spm.c and qb-tokenizer-bpe.c, the
 * tokenizer.json reader in qb-tokenizer-hf.c.  What is here follows
 * llama.cpp's llama_vocab: how a GGUF vocabulary is read (defaults for
 * BOS/EOS/UNK and add_bos per kind), how special tokens are cut out of the
 * text before the tokenizer proper sees it, and where the space prefix goes.
 */
#include "qb-tokenizer-private.h"

#include <string.h>

G_DEFINE_QUARK (qb-tokenizer-error-quark, qb_tokenizer_error)

/* ---- text index ------------------------------------------------------- */

static guint32
hash_bytes (const char *s, guint32 len)
{
  guint32 h = 2166136261u;   /* FNV-1a */

  for (guint32 i = 0; i < len; i++)
    h = (h ^ (guint8) s[i]) * 16777619u;
  return h;
}

void
qb_text_index_init (QbTextIndex *ix, guint32 expected)
{
  guint32 cap = 16;

  while (cap < expected * 2u + 2u)
    cap <<= 1;
  ix->keys = g_new0 (const char *, cap);
  ix->lens = g_new0 (guint32, cap);
  ix->values = g_new (gint32, cap);
  ix->mask = cap - 1;
  ix->n = 0;
}

void
qb_text_index_clear (QbTextIndex *ix)
{
  g_clear_pointer (&ix->keys, g_free);
  g_clear_pointer (&ix->lens, g_free);
  g_clear_pointer (&ix->values, g_free);
  ix->mask = 0;
  ix->n = 0;
}

static guint32
index_slot (const QbTextIndex *ix, const char *key, guint32 len)
{
  guint32 i = hash_bytes (key, len) & ix->mask;

  while (ix->keys[i] != NULL
         && !(ix->lens[i] == len && memcmp (ix->keys[i], key, len) == 0))
    i = (i + 1) & ix->mask;
  return i;
}

static void
index_grow (QbTextIndex *ix)
{
  QbTextIndex bigger;

  qb_text_index_init (&bigger, (ix->mask + 1));
  for (guint32 i = 0; i <= ix->mask; i++)
    if (ix->keys[i] != NULL)
      qb_text_index_insert (&bigger, ix->keys[i], ix->lens[i], ix->values[i]);
  qb_text_index_clear (ix);
  *ix = bigger;
}

void
qb_text_index_insert (QbTextIndex *ix, const char *key, guint32 len, gint32 value)
{
  guint32 i;

  if ((ix->n + 1) * 2 > ix->mask + 1)
    index_grow (ix);
  i = index_slot (ix, key, len);
  if (ix->keys[i] == NULL)
    {
      ix->keys[i] = key;
      ix->lens[i] = len;
      ix->n++;
    }
  ix->values[i] = value;
}

gint32
qb_text_index_lookup (const QbTextIndex *ix, const char *key, guint32 len)
{
  guint32 i;

  if (ix->keys == NULL)
    return -1;
  i = index_slot (ix, key, len);
  return ix->keys[i] != NULL ? ix->values[i] : -1;
}

/* ---- building --------------------------------------------------------- */

static int
compare_specials (gconstpointer a, gconstpointer b, gpointer data)
{
  const QbTokenizer *tok = data;
  gint32 ia = *(const gint32 *) a, ib = *(const gint32 *) b;
  guint32 la = tok->tokens[ia].len, lb = tok->tokens[ib].len;

  if (la != lb)
    return la > lb ? -1 : 1;
  return ia < ib ? -1 : ia > ib;
}

static void
find_specials (QbTokenizer *tok)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));

  for (guint i = 0; i < tok->n_tokens; i++)
    {
      QbTokenType t = tok->tokens[i].type;
      if (t == QB_TOKEN_CONTROL || t == QB_TOKEN_USER_DEFINED || t == QB_TOKEN_UNKNOWN)
        {
          gint32 id = (gint32) i;
          g_array_append_val (ids, id);
        }
    }
  g_array_sort_with_data (ids, compare_specials, tok);
  tok->n_specials = ids->len;
  tok->specials = (gint32 *) (void *) g_array_free (ids, FALSE);
}

/* llama.cpp's byte_to_token: the <0xNN> token, else the byte's own text. */
static void
find_byte_tokens (QbTokenizer *tok)
{
  for (guint b = 0; b < 256; b++)
    {
      char hex[8], raw[1] = { (char) b };
      gint32 id;

      g_snprintf (hex, sizeof hex, "<0x%02X>", b);
      id = qb_text_index_lookup (&tok->index, hex, 6);
      if (id < 0)
        id = qb_text_index_lookup (&tok->index, raw, 1);
      tok->byte_tokens[b] = id;
    }
}

QbTokenizer *
qb_tokenizer_alloc (QbTokenizerKind kind, const char * const *tokens, const guint32 *lens,
                    const float *scores, const int *types, guint n_tokens, GError **error)
{
  QbTokenizer *tok;

  if (n_tokens == 0 || n_tokens > G_MAXINT32)
    {
      g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_INVALID,
                   "the vocabulary has %u tokens", n_tokens);
      return NULL;
    }

  tok = g_new0 (QbTokenizer, 1);
  g_atomic_ref_count_init (&tok->ref);
  tok->kind = kind;
  tok->strings = g_string_chunk_new (64 * 1024);
  tok->tokens = g_new0 (QbTokenEntry, n_tokens);
  tok->n_tokens = n_tokens;
  tok->bos = tok->eos = tok->unk = -1;
  qb_text_index_init (&tok->index, n_tokens);

  for (guint i = 0; i < n_tokens; i++)
    {
      QbTokenEntry *e = &tok->tokens[i];
      guint32 len = lens ? lens[i] : (guint32) strlen (tokens[i]);

      if (len == 0)
        {
          /* As llama.cpp: an empty token gets a placeholder text. */
          g_autofree char *name = g_strdup_printf ("[EMPTY_%u]", i);
          e->text = g_string_chunk_insert (tok->strings, name);
          e->len = (guint32) strlen (name);
        }
      else
        {
          e->text = g_string_chunk_insert_len (tok->strings, tokens[i], len);
          e->len = len;
        }
      e->score = scores ? scores[i] : 0.0f;
      e->type = types ? (QbTokenType) types[i] : QB_TOKEN_NORMAL;
      if (e->type < QB_TOKEN_UNDEFINED || e->type > QB_TOKEN_BYTE)
        e->type = QB_TOKEN_UNDEFINED;
      qb_text_index_insert (&tok->index, e->text, e->len, (gint32) i);
    }

  find_specials (tok);
  find_byte_tokens (tok);
  tok->regexes = g_ptr_array_new_with_free_func ((GDestroyNotify) g_regex_unref);
  return tok;
}

gboolean
qb_tokenizer_add_merge (QbTokenizer *tok, const char *left, gsize left_len,
                        const char *right, gsize right_len, gint32 rank)
{
  GString *key;
  const char *stored;
  guint32 l = (guint32) left_len;

  if (tok->merge_keys == NULL)
    {
      tok->merge_keys = g_string_chunk_new (64 * 1024);
      qb_text_index_init (&tok->merges, 1024);
    }
  if (left_len > G_MAXUINT32 / 2 || right_len > G_MAXUINT32 / 2)
    return FALSE;
  key = g_string_sized_new (4 + left_len + right_len);
  g_string_append_len (key, (const char *) &l, 4);
  g_string_append_len (key, left, left_len);
  g_string_append_len (key, right, right_len);
  /* The first occurrence of a pair keeps its rank (a later duplicate
   * would only be shadowed in llama.cpp's map as well). */
  if (qb_text_index_lookup (&tok->merges, key->str, (guint32) key->len) < 0)
    {
      stored = g_string_chunk_insert_len (tok->merge_keys, key->str, key->len);
      qb_text_index_insert (&tok->merges, stored, (guint32) key->len, rank);
    }
  g_string_free (key, TRUE);
  return TRUE;
}

gboolean
qb_tokenizer_add_merges (QbTokenizer *tok, const char * const *merges, guint n_merges,
                         GError **error)
{
  for (guint i = 0; i < n_merges; i++)
    {
      const char *m = merges[i];
      const char *sp = m[0] != '\0' ? strchr (m + 1, ' ') : NULL;

      /* llama.cpp keeps a merge without a space as the pair ("", ""),
       * which never matches: skip it the same way. */
      if (sp == NULL)
        continue;
      if (!qb_tokenizer_add_merge (tok, m, sp - m, sp + 1, strlen (sp + 1), (gint32) i))
        {
          g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_INVALID,
                       "merge %u is too long", i);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
qb_tokenizer_add_pattern (QbTokenizer *tok, const char *pattern, GError **error)
{
  g_autoptr(GError) local = NULL;
  GRegex *re = g_regex_new (pattern, G_REGEX_OPTIMIZE, 0, &local);

  if (re == NULL)
    {
      g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_UNSUPPORTED,
                   "pre-tokenizer pattern %s does not compile: %s", pattern, local->message);
      return FALSE;
    }
  g_ptr_array_add (tok->regexes, re);
  return TRUE;
}

QbTokenizer *
qb_tokenizer_new_bpe (const char * const *tokens, const int *types, guint n_tokens,
                      const char * const *merges, guint n_merges,
                      const char * const *patterns, gboolean byte_level, GError **error)
{
  g_autoptr(QbTokenizer) tok = qb_tokenizer_alloc (QB_TOKENIZER_BPE, tokens, NULL, NULL, types,
                                                   n_tokens, error);

  if (tok == NULL)
    return NULL;
  tok->byte_level = byte_level;
  if (!qb_tokenizer_add_merges (tok, merges, n_merges, error))
    return NULL;
  for (guint i = 0; patterns != NULL && patterns[i] != NULL; i++)
    if (!qb_tokenizer_add_pattern (tok, patterns[i], error))
      return NULL;
  qb_tokenizer_set_special (tok, 11, 11, -1, FALSE, FALSE);
  return g_steal_pointer (&tok);
}

void
qb_tokenizer_set_special (QbTokenizer *tok, gint32 bos, gint32 eos, gint32 unk,
                          gboolean add_bos, gboolean add_eos)
{
  gint32 n = (gint32) tok->n_tokens;

  tok->bos = bos >= 0 && bos < n ? bos : -1;
  tok->eos = eos >= 0 && eos < n ? eos : -1;
  tok->unk = unk >= 0 && unk < n ? unk : -1;
  tok->add_bos = add_bos && tok->bos >= 0;
  tok->add_eos = add_eos && tok->eos >= 0;
}

QbTokenizer *
qb_tokenizer_ref (QbTokenizer *tok)
{
  g_atomic_ref_count_inc (&tok->ref);
  return tok;
}

void
qb_tokenizer_unref (QbTokenizer *tok)
{
  if (tok == NULL || !g_atomic_ref_count_dec (&tok->ref))
    return;
  qb_text_index_clear (&tok->index);
  qb_text_index_clear (&tok->merges);
  if (tok->merge_keys)
    g_string_chunk_free (tok->merge_keys);
  g_ptr_array_unref (tok->regexes);
  g_string_chunk_free (tok->strings);
  g_free (tok->tokens);
  g_free (tok->specials);
  g_free (tok);
}

QbTokenizerKind qb_tokenizer_get_kind     (QbTokenizer *tok) { return tok->kind; }
guint           qb_tokenizer_get_n_tokens (QbTokenizer *tok) { return tok->n_tokens; }
gint32          qb_tokenizer_get_bos      (QbTokenizer *tok) { return tok->bos; }
gint32          qb_tokenizer_get_eos      (QbTokenizer *tok) { return tok->eos; }
gboolean        qb_tokenizer_get_add_bos  (QbTokenizer *tok) { return tok->add_bos; }
gboolean        qb_tokenizer_get_add_eos  (QbTokenizer *tok) { return tok->add_eos; }

/* ---- encoding --------------------------------------------------------- */

typedef struct {
  gint32 token;    /* -1: raw text */
  gsize  offset;
  gsize  len;
} Fragment;

/* Cuts the special tokens out of the text, longest first, as llama.cpp's
 * tokenizer_st_partition: every occurrence in every raw fragment. */
static GArray *
partition (QbTokenizer *tok, const char *text, gsize len, gboolean parse_special)
{
  GArray *frags = g_array_new (FALSE, FALSE, sizeof (Fragment));
  Fragment whole = { -1, 0, len };

  if (len > 0)
    g_array_append_val (frags, whole);

  for (guint s = 0; s < tok->n_specials; s++)
    {
      const QbTokenEntry *e = &tok->tokens[tok->specials[s]];
      GArray *next;

      if (!parse_special && (e->type == QB_TOKEN_CONTROL || e->type == QB_TOKEN_UNKNOWN))
        continue;

      next = g_array_sized_new (FALSE, FALSE, sizeof (Fragment), frags->len);
      for (guint f = 0; f < frags->len; f++)
        {
          Fragment fr = g_array_index (frags, Fragment, f);
          gsize pos = fr.offset, end = fr.offset + fr.len;
          const char *hit;

          if (fr.token >= 0)
            {
              g_array_append_val (next, fr);
              continue;
            }
          while (pos < end && (hit = memmem (text + pos, end - pos, e->text, e->len)) != NULL)
            {
              gsize at = hit - text;
              Fragment left = { -1, pos, at - pos }, special = { tok->specials[s], at, e->len };

              if (left.len > 0)
                g_array_append_val (next, left);
              g_array_append_val (next, special);
              pos = at + e->len;
            }
          if (pos < end)
            {
              Fragment rest = { -1, pos, end - pos };
              g_array_append_val (next, rest);
            }
        }
      g_array_unref (frags);
      frags = next;
    }
  return frags;
}

/* ' ' -> "▁", with a space in front when asked. */
static char *
escape_spaces (const char *text, gsize len, gboolean prefix, gsize *out_len)
{
  GString *s = g_string_sized_new (len + len / 4 + 4);

  if (prefix)
    g_string_append (s, "\xe2\x96\x81");
  for (gsize i = 0; i < len; i++)
    {
      if (text[i] == ' ')
        g_string_append (s, "\xe2\x96\x81");
      else
        g_string_append_c (s, text[i]);
    }
  *out_len = s->len;
  return g_string_free (s, FALSE);
}

static gboolean
encode_raw (QbTokenizer *tok, const char *text, gsize len, gboolean prev_special,
            GArray *out, GCancellable *cancellable, GError **error)
{
  g_autofree char *escaped = NULL;
  gsize elen = 0;

  if (tok->escape_spaces)
    {
      escaped = escape_spaces (text, len, tok->add_space_prefix && prev_special, &elen);
      text = escaped;
      len = elen;
    }
  if (tok->kind == QB_TOKENIZER_SPM)
    return qb_spm_encode (tok, text, len, out, cancellable, error);
  return qb_bpe_encode (tok, text, len, out, cancellable, error);
}

GArray *
qb_tokenizer_encode (QbTokenizer *tok, const char *text, gssize len, gboolean add_special,
                     gboolean parse_special, GCancellable *cancellable, GError **error)
{
  g_autoptr(GArray) out = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr(GArray) frags = NULL;
  gboolean prev_special = TRUE;   /* the start of the text counts as after a special */

  if (len < 0)
    len = strlen (text);
  if (tok->kind == QB_TOKENIZER_BPE && !g_utf8_validate_len (text, len, NULL))
    {
      const char *bad = NULL;
      g_utf8_validate_len (text, len, &bad);
      g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_TEXT,
                   "the text is not valid UTF-8 (at byte %" G_GSIZE_FORMAT ")",
                   (gsize) (bad - text));
      return NULL;
    }

  if (add_special && tok->add_bos)
    g_array_append_val (out, tok->bos);

  frags = partition (tok, text, len, parse_special);
  for (guint f = 0; f < frags->len; f++)
    {
      const Fragment *fr = &g_array_index (frags, Fragment, f);

      if (fr->token >= 0)
        {
          g_array_append_val (out, fr->token);
          prev_special = TRUE;
          continue;
        }
      if (!encode_raw (tok, text + fr->offset, fr->len, prev_special, out, cancellable, error))
        return NULL;
      prev_special = FALSE;
    }

  if (add_special && tok->add_eos)
    g_array_append_val (out, tok->eos);
  return g_steal_pointer (&out);
}

char *
qb_tokenizer_fingerprint (QbTokenizer *tok)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  gint32 flags[] = { tok->kind, tok->bos, tok->eos, tok->unk, tok->add_bos, tok->add_eos,
                     tok->escape_spaces, tok->add_space_prefix, tok->byte_level,
                     tok->byte_fallback, tok->ignore_merges };

  g_checksum_update (sum, (const guchar *) flags, sizeof flags);
  for (guint i = 0; i < tok->n_tokens; i++)
    {
      const QbTokenEntry *e = &tok->tokens[i];
      g_checksum_update (sum, (const guchar *) &e->len, sizeof e->len);
      g_checksum_update (sum, (const guchar *) e->text, e->len);
      g_checksum_update (sum, (const guchar *) &e->score, sizeof e->score);
      g_checksum_update (sum, (const guchar *) &e->type, sizeof e->type);
    }
  /* Merges in slot order: the same set always hashes the same. */
  for (guint32 i = 0; tok->merges.keys != NULL && i <= tok->merges.mask; i++)
    if (tok->merges.keys[i] != NULL)
      {
        g_checksum_update (sum, (const guchar *) tok->merges.keys[i], tok->merges.lens[i]);
        g_checksum_update (sum, (const guchar *) &tok->merges.values[i], sizeof (gint32));
      }
  for (guint i = 0; i < tok->regexes->len; i++)
    {
      const char *pattern = g_regex_get_pattern (g_ptr_array_index (tok->regexes, i));
      g_checksum_update (sum, (const guchar *) pattern, strlen (pattern) + 1);
    }
  return g_strdup (g_checksum_get_string (sum));
}

/* ---- decoding --------------------------------------------------------- */

static void
append_piece (QbTokenizer *tok, const QbTokenEntry *e, GString *s)
{
  if (e->type == QB_TOKEN_BYTE && e->len == 6 && strncmp (e->text, "<0x", 3) == 0)
    {
      g_string_append_c (s, (char) g_ascii_strtoull (e->text + 3, NULL, 16));
      return;
    }
  if (tok->byte_level)
    {
      for (const char *p = e->text; p < e->text + e->len; p = g_utf8_next_char (p))
        {
          int b = qb_bpe_char_byte (g_utf8_get_char_validated (p, e->text + e->len - p));
          if (b >= 0)
            g_string_append_c (s, (char) b);
        }
      return;
    }
  for (guint32 i = 0; i < e->len; i++)
    {
      if (tok->escape_spaces && i + 2 < e->len && memcmp (e->text + i, "\xe2\x96\x81", 3) == 0)
        {
          g_string_append_c (s, ' ');
          i += 2;
        }
      else
        g_string_append_c (s, e->text[i]);
    }
}

char *
qb_tokenizer_decode (QbTokenizer *tok, const gint32 *ids, gsize n_ids)
{
  GString *s = g_string_new (NULL);

  for (gsize i = 0; i < n_ids; i++)
    if (ids[i] >= 0 && (guint) ids[i] < tok->n_tokens)
      append_piece (tok, &tok->tokens[ids[i]], s);
  return g_string_free (s, FALSE);
}
