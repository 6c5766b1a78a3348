/* SPDX-License-Identifier: MIT */
/* qb-tokenizer-bpe.c — byte-level BPE (GPT-2, LLaMA-3, Qwen2, SmolLM), as
 * llama.cpp's BPE tokenizer.
 *
 * 1. The pre-tokenizer's regular expressions cut the text into words, one
 *    expression after the other, each working inside the pieces the last
 *    one left; both the matches and the text between them are kept.
 * 2. Each word's bytes are written with GPT-2's printable stand-ins (so a
 *    space is "Ġ"), the form the vocabulary and merges use.
 * 3. Within a word, the adjacent pair with the lowest merge rank is merged
 *    until none is left (ties: the leftmost); pairs queued before a
 *    neighbour changed are dropped when popped.
 * 4. Each symbol becomes its token; one that is not a token goes out byte
 *    by byte as single-byte tokens where those exist (byte_fallback: as
 *    <0xNN> tokens), as llama.cpp does.
 */
#include "qb-tokenizer-private.h"

#include <string.h>

/* ---- GPT-2's byte to character map ------------------------------------ */

static char     byte_chars[256][3];
static gint16   char_bytes[512];   /* code point -> byte, -1 */

static gpointer
init_byte_map (gpointer data)
{
  int n = 0;

  for (int c = 0; c < 512; c++)
    char_bytes[c] = -1;
  for (int b = 0; b < 256; b++)
    {
      gboolean printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
      gunichar c = printable ? (gunichar) b : (gunichar) (256 + n++);
      int len = g_unichar_to_utf8 (c, byte_chars[b]);

      byte_chars[b][len] = '\0';
      char_bytes[c] = (gint16) b;
    }
  return NULL;
}

static void
ensure_byte_map (void)
{
  static GOnce once = G_ONCE_INIT;
  g_once (&once, init_byte_map, NULL);
}

int
qb_bpe_char_byte (gunichar c)
{
  ensure_byte_map ();
  return c < 512 ? char_bytes[c] : -1;
}

/* ---- word splitting --------------------------------------------------- */

typedef struct {
  gsize off;
  gsize len;
} Piece;

static void
add_piece (GArray *pieces, gsize off, gsize len)
{
  Piece p = { off, len };
  if (len > 0)
    g_array_append_val (pieces, p);
}

/* Applies one expression inside every piece: matches and the gaps between
 * them become the new pieces. */
static GArray *
split_pieces (GRegex *re, const char *text, GArray *pieces)
{
  GArray *next = g_array_sized_new (FALSE, FALSE, sizeof (Piece), pieces->len * 2);

  for (guint i = 0; i < pieces->len; i++)
    {
      const Piece *p = &g_array_index (pieces, Piece, i);
      g_autoptr(GMatchInfo) mi = NULL;
      gsize done = 0;

      g_regex_match_full (re, text + p->off, p->len, 0, 0, &mi, NULL);
      while (g_match_info_matches (mi))
        {
          int start = 0, end = 0;

          g_match_info_fetch_pos (mi, 0, &start, &end);
          if (end > start)
            {
              add_piece (next, p->off + done, start - done);
              add_piece (next, p->off + start, end - start);
              done = end;
            }
          g_match_info_next (mi, NULL);
        }
      add_piece (next, p->off + done, p->len - done);
    }
  g_array_unref (pieces);
  return next;
}

/* ---- merging ---------------------------------------------------------- */

typedef struct {
  gint32 prev;
  gint32 next;
  gsize  off;
  gsize  n;
} Symbol;

typedef struct {
  gint32 left;
  gint32 right;
  gint32 rank;
  gsize  size;
} Bigram;

typedef struct {
  QbTokenizer *tok;
  GString     *word;     /* the word as the vocabulary writes it */
  GArray      *sym;      /* Symbol */
  GArray      *heap;     /* Bigram */
  GString     *key;      /* scratch for merge look-ups */
} Session;

static inline gboolean
bigram_before (const Bigram *a, const Bigram *b)
{
  return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void
heap_push (GArray *heap, Bigram b)
{
  gsize i;
  Bigram *items;

  g_array_set_size (heap, heap->len + 1);
  items = (Bigram *) (void *) heap->data;
  i = heap->len - 1;
  while (i > 0)
    {
      gsize parent = (i - 1) / 2;
      if (!bigram_before (&b, &items[parent]))
        break;
      items[i] = items[parent];
      i = parent;
    }
  items[i] = b;
}

static Bigram
heap_pop (GArray *heap)
{
  Bigram *items = (Bigram *) (void *) heap->data;
  Bigram top = items[0], last = items[heap->len - 1];
  gsize n = heap->len - 1, i = 0;

  for (;;)
    {
      gsize child = 2 * i + 1;
      if (child >= n)
        break;
      if (child + 1 < n && bigram_before (&items[child + 1], &items[child]))
        child++;
      if (!bigram_before (&items[child], &last))
        break;
      items[i] = items[child];
      i = child;
    }
  if (n > 0)
    items[i] = last;
  g_array_set_size (heap, n);
  return top;
}

static Symbol *
sym_at (Session *s, gint32 i)
{
  return &g_array_index (s->sym, Symbol, i);
}

static void
add_bigram (Session *s, gint32 left, gint32 right)
{
  const Symbol *l, *r;
  guint32 llen;
  gint32 rank;
  Bigram b;

  if (left < 0 || right < 0)
    return;
  l = sym_at (s, left);
  r = sym_at (s, right);
  llen = (guint32) l->n;
  g_string_truncate (s->key, 0);
  g_string_append_len (s->key, (const char *) &llen, 4);
  g_string_append_len (s->key, s->word->str + l->off, l->n);
  g_string_append_len (s->key, s->word->str + r->off, r->n);
  rank = qb_text_index_lookup (&s->tok->merges, s->key->str, (guint32) s->key->len);
  if (rank < 0)
    return;
  b.left = left;
  b.right = right;
  b.rank = rank;
  b.size = l->n + r->n;
  heap_push (s->heap, b);
}

static void
emit_symbol (Session *s, const Symbol *sym, GArray *out)
{
  QbTokenizer *tok = s->tok;
  const char *text = s->word->str + sym->off;
  gint32 id = qb_text_index_lookup (&tok->index, text, (guint32) sym->n);

  if (id >= 0)
    {
      g_array_append_val (out, id);
      return;
    }
  for (gsize j = 0; j < sym->n; j++)
    {
      gint32 b;

      if (tok->byte_fallback)
        {
          b = tok->byte_tokens[(guint8) text[j]];
          if (b < 0)
            b = tok->unk;
        }
      else
        b = qb_text_index_lookup (&tok->index, text + j, 1);
      if (b >= 0)
        g_array_append_val (out, b);
    }
}

static void
encode_word (Session *s, const char *raw, gsize raw_len, GArray *out)
{
  QbTokenizer *tok = s->tok;
  gsize off = 0;

  g_string_truncate (s->word, 0);
  if (tok->byte_level)
    for (gsize i = 0; i < raw_len; i++)
      g_string_append (s->word, byte_chars[(guint8) raw[i]]);
  else
    g_string_append_len (s->word, raw, raw_len);

  if (tok->ignore_merges)
    {
      gint32 id = qb_text_index_lookup (&tok->index, s->word->str, (guint32) s->word->len);
      if (id >= 0)
        {
          g_array_append_val (out, id);
          return;
        }
    }

  g_array_set_size (s->sym, 0);
  g_array_set_size (s->heap, 0);
  while (off < s->word->len)
    {
      Symbol sym;
      sym.off = off;
      sym.n = MIN (qb_utf8_len ((guint8) s->word->str[off]), s->word->len - off);
      off += sym.n;
      sym.prev = (gint32) s->sym->len - 1;
      sym.next = off == s->word->len ? -1 : (gint32) s->sym->len + 1;
      g_array_append_val (s->sym, sym);
    }
  for (guint i = 1; i < s->sym->len; i++)
    add_bigram (s, (gint32) i - 1, (gint32) i);

  while (s->heap->len > 0)
    {
      Bigram b = heap_pop (s->heap);
      Symbol *left = sym_at (s, b.left), *right = sym_at (s, b.right);

      if (left->n == 0 || right->n == 0 || left->n + right->n != b.size)
        continue;
      left->n += right->n;
      right->n = 0;
      left->next = right->next;
      if (right->next >= 0)
        sym_at (s, right->next)->prev = b.left;
      add_bigram (s, left->prev, b.left);
      add_bigram (s, b.left, left->next);
    }

  for (gint32 i = 0; s->sym->len > 0 && i != -1; i = sym_at (s, i)->next)
    emit_symbol (s, sym_at (s, i), out);
}

gboolean
qb_bpe_encode (QbTokenizer *tok, const char *text, gsize len, GArray *out,
               GCancellable *cancellable, GError **error)
{
  GArray *pieces = g_array_new (FALSE, FALSE, sizeof (Piece));
  Session s;
  gboolean ok = TRUE;

  ensure_byte_map ();
  add_piece (pieces, 0, len);
  for (guint r = 0; r < tok->regexes->len; r++)
    pieces = split_pieces (g_ptr_array_index (tok->regexes, r), text, pieces);

  s.tok = tok;
  s.word = g_string_new (NULL);
  s.key = g_string_new (NULL);
  s.sym = g_array_new (FALSE, FALSE, sizeof (Symbol));
  s.heap = g_array_new (FALSE, FALSE, sizeof (Bigram));

  for (guint i = 0; i < pieces->len; i++)
    {
      const Piece *p = &g_array_index (pieces, Piece, i);

      if ((i & 0x3fff) == 0x3fff && g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          ok = FALSE;
          break;
        }
      encode_word (&s, text + p->off, p->len, out);
    }

  g_string_free (s.word, TRUE);
  g_string_free (s.key, TRUE);
  g_array_unref (s.sym);
  g_array_unref (s.heap);
  g_array_unref (pieces);
  return ok;
}
