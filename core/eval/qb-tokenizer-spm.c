/* SPDX-License-Identifier: MIT */
/* qb-tokenizer-spm.c — SentencePiece-style BPE, as llama.cpp's SPM tokenizer.
 *
 * The text (spaces already escaped to "▁") starts as one symbol per UTF-8
 * character.  Every adjacent pair whose concatenation is a token goes into
 * a priority queue keyed by that token's score (ties: the leftmost pair);
 * the best pair is merged, its neighbours' pairs are queued, and a popped
 * pair is dropped when either side has changed since it was queued (its
 * total length no longer matches).  Symbols that are not tokens at the end
 * come out as byte tokens.
 */
#include "qb-tokenizer-private.h"

typedef struct {
  gint32 prev;
  gint32 next;
  gsize  off;
  gsize  n;      /* 0: merged into its left neighbour */
} Symbol;

typedef struct {
  gint32 left;
  gint32 right;
  float  score;
  gsize  size;
} Bigram;

typedef struct {
  Bigram *items;
  gsize   n;
  gsize   cap;
} Heap;

/* TRUE when a comes out of the queue before b. */
static inline gboolean
bigram_before (const Bigram *a, const Bigram *b)
{
  return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void
heap_push (Heap *h, Bigram b)
{
  gsize i;

  if (h->n == h->cap)
    {
      h->cap = h->cap ? h->cap * 2 : 256;
      h->items = g_renew (Bigram, h->items, h->cap);
    }
  i = h->n++;
  while (i > 0)
    {
      gsize parent = (i - 1) / 2;
      if (!bigram_before (&b, &h->items[parent]))
        break;
      h->items[i] = h->items[parent];
      i = parent;
    }
  h->items[i] = b;
}

static Bigram
heap_pop (Heap *h)
{
  Bigram top = h->items[0], last = h->items[--h->n];
  gsize i = 0;

  for (;;)
    {
      gsize child = 2 * i + 1;
      if (child >= h->n)
        break;
      if (child + 1 < h->n && bigram_before (&h->items[child + 1], &h->items[child]))
        child++;
      if (!bigram_before (&h->items[child], &last))
        break;
      h->items[i] = h->items[child];
      i = child;
    }
  if (h->n > 0)
    h->items[i] = last;
  return top;
}

typedef struct {
  QbTokenizer *tok;
  const char  *text;
  Symbol      *sym;
  Heap         heap;
} Session;

static void
try_add_bigram (Session *s, gint32 left, gint32 right)
{
  gsize size;
  gint32 id;
  Bigram b;

  if (left < 0 || right < 0)
    return;
  size = s->sym[left].n + s->sym[right].n;
  id = qb_text_index_lookup (&s->tok->index, s->text + s->sym[left].off, (guint32) size);
  if (id < 0)
    return;
  b.left = left;
  b.right = right;
  b.score = s->tok->tokens[id].score;
  b.size = size;
  heap_push (&s->heap, b);
}

static void
emit_symbol (Session *s, const Symbol *sym, GArray *out)
{
  gint32 id = qb_text_index_lookup (&s->tok->index, s->text + sym->off, (guint32) sym->n);

  if (id >= 0)
    {
      g_array_append_val (out, id);
      return;
    }
  /* Not a token: its bytes, through the byte-fallback tokens. */
  for (gsize j = 0; j < sym->n; j++)
    {
      gint32 b = s->tok->byte_tokens[(guint8) s->text[sym->off + j]];
      if (b < 0)
        b = s->tok->unk;
      if (b >= 0)
        g_array_append_val (out, b);
    }
}

gboolean
qb_spm_encode (QbTokenizer *tok, const char *text, gsize len, GArray *out,
               GCancellable *cancellable, GError **error)
{
  Session s = { tok, text, NULL, { NULL, 0, 0 } };
  gsize n_sym = 0, off = 0;
  guint64 steps = 0;
  gboolean ok = TRUE;

  if (len == 0)
    return TRUE;
  if (len >= G_MAXINT32)
    {
      g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_TEXT,
                   "a piece of text of %" G_GSIZE_FORMAT " bytes is too long", len);
      return FALSE;
    }

  s.sym = g_new (Symbol, len);
  while (off < len)
    {
      Symbol *sym = &s.sym[n_sym];
      sym->off = off;
      sym->n = MIN (qb_utf8_len ((guint8) text[off]), len - off);
      off += sym->n;
      sym->prev = (gint32) n_sym - 1;
      sym->next = off == len ? -1 : (gint32) n_sym + 1;
      n_sym++;
    }

  for (gsize i = 1; i < n_sym; i++)
    try_add_bigram (&s, (gint32) i - 1, (gint32) i);

  while (s.heap.n > 0)
    {
      Bigram b = heap_pop (&s.heap);
      Symbol *left = &s.sym[b.left], *right = &s.sym[b.right];

      if ((++steps & 0xffff) == 0 && g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          ok = FALSE;
          break;
        }
      /* Stale: one side was merged away or grew since. */
      if (left->n == 0 || right->n == 0 || left->n + right->n != b.size)
        continue;

      left->n += right->n;
      right->n = 0;
      left->next = right->next;
      if (right->next >= 0)
        s.sym[right->next].prev = b.left;

      try_add_bigram (&s, left->prev, b.left);
      try_add_bigram (&s, b.left, left->next);
    }

  if (ok)
    for (gint32 i = 0; i != -1; i = s.sym[i].next)
      emit_symbol (&s, &s.sym[i], out);

  g_free (s.heap.items);
  g_free (s.sym);
  return ok;
}
