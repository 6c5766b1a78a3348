/* SPDX-License-Identifier: MIT */
/* qb-allocator.c — the exact multiple-choice knapsack behind automatic
 * plans (see qb-allocator.h for the method). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qb-allocator.h"

G_DEFINE_QUARK (qb-alloc-error-quark, qb_alloc_error)

/* States the exact stage may hold after one tensor before it gives up
 * proving optimality (it then keeps the most promising ones). */
#define MAX_STATES (1 << 16)

/* ---- budget and constraints -------------------------------------------- */

gboolean
qb_alloc_budget_parse (QbAllocTarget target, const char *text, QbAllocBudget *budget,
                       GError **error)
{
  char *end = NULL;
  double value = g_ascii_strtod (text, &end);
  double unit = 1.0;

  if (end == text)
    goto bad;
  if (target == QB_ALLOC_TARGET_BYTES && *end != '\0')
    {
      switch (g_ascii_toupper (*end))
        {
        case 'K': unit = 1024.0; break;
        case 'M': unit = 1024.0 * 1024.0; break;
        case 'G': unit = 1024.0 * 1024.0 * 1024.0; break;
        default: goto bad;
        }
      end++;
      if (g_ascii_toupper (*end) == 'I')
        end++;
      if (g_ascii_toupper (*end) == 'B')
        end++;
    }
  if (*end != '\0' || !isfinite (value) || value <= 0)
    goto bad;
  budget->target = target;
  budget->value = value * unit;
  return TRUE;

bad:
  g_set_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INVALID,
               target == QB_ALLOC_TARGET_BPW ? "'%s' is not a number of bits per weight > 0"
               : target == QB_ALLOC_TARGET_BYTES ? "'%s' is not a size (e.g. 120M, 3.5G, 1000000)"
               : "'%s' is not a KLD > 0", text);
  return FALSE;
}

struct _QbAllocConstraints {
  GHashTable     *pins;                        /* name -> const QbFormat * */
  GPtrArray      *allowed[QB_ROLE_N_ROLES];    /* NULL: any */
  double          embedding_floor;
};

QbAllocConstraints *
qb_alloc_constraints_new (void)
{
  QbAllocConstraints *c = g_new0 (QbAllocConstraints, 1);
  c->pins = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return c;
}

void
qb_alloc_constraints_free (QbAllocConstraints *c)
{
  if (c == NULL)
    return;
  g_hash_table_unref (c->pins);
  for (guint r = 0; r < QB_ROLE_N_ROLES; r++)
    if (c->allowed[r])
      g_ptr_array_unref (c->allowed[r]);
  g_free (c);
}

void
qb_alloc_constraints_pin (QbAllocConstraints *c, const char *tensor_name, const QbFormat *format)
{
  g_hash_table_replace (c->pins, g_strdup (tensor_name), (gpointer) format);
}

const QbFormat *
qb_alloc_constraints_get_pin (const QbAllocConstraints *c, const char *tensor_name)
{
  return c ? g_hash_table_lookup (c->pins, tensor_name) : NULL;
}

void
qb_alloc_constraints_allow (QbAllocConstraints *c, QbTensorRole role,
                            const QbFormat **formats, guint n_formats)
{
  g_return_if_fail (role < QB_ROLE_N_ROLES);
  if (c->allowed[role])
    g_ptr_array_unref (c->allowed[role]);
  c->allowed[role] = g_ptr_array_new ();
  for (guint i = 0; i < n_formats; i++)
    g_ptr_array_add (c->allowed[role], (gpointer) formats[i]);
}

void
qb_alloc_constraints_set_embedding_floor (QbAllocConstraints *c, double bpw)
{
  c->embedding_floor = bpw;
}

void
qb_allocation_free (QbAllocation *a)
{
  if (a == NULL)
    return;
  g_free (a->choice);
  g_free (a->pinned);
  g_free (a);
}

/* ---- the problem in knapsack form --------------------------------------- */

/* One option of one tensor: w counts against the capacity, v is minimised
 * (bytes and cost, or cost and bytes for a KLD target). */
typedef struct {
  double w, v;
  guint  k;        /* index into the tensor's candidates */
  double r;        /* reduced cost v + λ·w − min over the tensor */
} Option;

typedef struct {
  Option *opt;     /* Pareto set, w ascending, v descending */
  guint   n;
  guint   pos;     /* the current choice (index into opt) */
} Item;

static int
compare_option (const void *a, const void *b)
{
  const Option *x = a, *y = b;
  if (x->w != y->w)
    return x->w < y->w ? -1 : 1;
  if (x->v != y->v)
    return x->v < y->v ? -1 : 1;
  return x->k < y->k ? -1 : x->k > y->k;
}

/* Keeps only options no other beats on both w and v (first listed wins ties). */
static void
keep_pareto (Item *it)
{
  qsort (it->opt, it->n, sizeof (Option), compare_option);
  guint n = 0;
  for (guint i = 0; i < it->n; i++)
    if (n == 0 || it->opt[i].v < it->opt[n - 1].v)
      it->opt[n++] = it->opt[i];
  it->n = n;
}

static gboolean
candidate_allowed (const QbCostTensor *t, const QbCostCandidate *cand,
                   const QbAllocConstraints *c, QbTensorRole role)
{
  if (!qb_format_fits (cand->format, t->row_length) || !isfinite (cand->cost)
      || cand->cost < 0)
    return FALSE;
  if (c == NULL)
    return TRUE;
  if (c->allowed[role] != NULL)
    {
      guint idx;
      if (!g_ptr_array_find (c->allowed[role], cand->format, &idx))
        return FALSE;
    }
  if ((role == QB_ROLE_TOKEN_EMBD || role == QB_ROLE_OUTPUT) && c->embedding_floor > 0
      && t->n_weights > 0 && cand->bytes * 8.0 / t->n_weights < c->embedding_floor - 1e-9)
    return FALSE;
  return TRUE;
}

/* The options each tensor may take, in knapsack form. */
static gboolean
build_items (const QbCostTable *table, const QbAllocConstraints *c, gboolean by_kld,
             Item *items, gboolean *pinned, GError **error)
{
  for (guint i = 0; i < table->n_tensors; i++)
    {
      const QbCostTensor *t = &table->tensors[i];
      const QbFormat *pin = qb_alloc_constraints_get_pin (c, t->name);
      int layer;
      QbTensorRole role;
      gboolean is_bias;

      qb_tensor_name_parse (t->name, &layer, &role, &is_bias);
      items[i].opt = g_new (Option, MAX (t->n_candidates, 1));
      for (guint k = 0; k < t->n_candidates; k++)
        {
          const QbCostCandidate *cand = &t->candidates[k];
          if (pin ? cand->format != pin || !qb_format_fits (pin, t->row_length)
                  : !candidate_allowed (t, cand, c, role))
            continue;
          items[i].opt[items[i].n++] = (Option) {
            .w = by_kld ? cand->cost : (double) cand->bytes,
            .v = by_kld ? (double) cand->bytes : cand->cost, .k = k };
        }
      pinned[i] = pin != NULL;
      if (items[i].n == 0)
        {
          if (pin)
            g_set_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INVALID,
                         "%s is pinned to %s, which is not one of its candidates "
                         "(or its rows do not fit it)", t->name, pin->name);
          else
            g_set_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INFEASIBLE,
                         "%s: no candidate format is allowed (roles, floor or row length)",
                         t->name);
          return FALSE;
        }
      keep_pareto (&items[i]);
    }
  return TRUE;
}

/* ---- Lagrangian stage ---------------------------------------------------- */

typedef struct {
  double e;        /* v saved per unit of w */
  guint  item;
  guint  from, to; /* option indices */
} Segment;

static int
compare_segment (const void *a, const void *b)
{
  const Segment *x = a, *y = b;
  if (x->e != y->e)
    return x->e > y->e ? -1 : 1;
  if (x->item != y->item)
    return x->item < y->item ? -1 : 1;
  return x->from < y->from ? -1 : x->from > y->from;
}

/* Appends the segments of the item's lower convex hull. */
static void
hull_segments (const Item *it, guint item, GArray *segments)
{
  g_autofree guint *hull = g_new (guint, it->n);
  guint h = 0;
  for (guint i = 0; i < it->n; i++)
    {
      while (h >= 2)
        {
          const Option *a = &it->opt[hull[h - 2]], *b = &it->opt[hull[h - 1]], *c = &it->opt[i];
          double cross = (b->w - a->w) * (c->v - a->v) - (b->v - a->v) * (c->w - a->w);
          if (cross > 0)
            break;
          h--;
        }
      hull[h++] = i;
    }
  for (guint s = 0; s + 1 < h; s++)
    {
      const Option *a = &it->opt[hull[s]], *b = &it->opt[hull[s + 1]];
      Segment seg = { .e = (a->v - b->v) / (b->w - a->w), .item = item,
                      .from = hull[s], .to = hull[s + 1] };
      g_array_append_val (segments, seg);
    }
}

/* Greedy over the hulls: every item starts at its lightest option and
 * segments are taken in order of efficiency while they fit.  Returns λ,
 * the efficiency of the first segment that did not fit (0 when all did). */
static double
lagrangian_greedy (Item *items, guint n, double capacity, double *used)
{
  g_autoptr(GArray) segments = g_array_new (FALSE, FALSE, sizeof (Segment));
  for (guint i = 0; i < n; i++)
    {
      items[i].pos = 0;
      *used += items[i].opt[0].w;
      hull_segments (&items[i], i, segments);
    }
  g_array_sort (segments, compare_segment);
  for (guint s = 0; s < segments->len; s++)
    {
      const Segment *seg = &g_array_index (segments, Segment, s);
      Item *it = &items[seg->item];
      double dw = it->opt[seg->to].w - it->opt[seg->from].w;
      if (*used + dw > capacity)
        return seg->e;
      *used += dw;
      it->pos = seg->to;
    }
  return 0.0;
}

/* Spends what the greedy left on the single swaps that save the most, one
 * at a time, while any fits. */
static void
greedy_fill (Item *items, guint n, double capacity, double *used)
{
  for (guint round = 0; round < 4 * n + 16; round++)
    {
      double best_gain = 0;
      guint best_i = 0, best_j = 0;
      for (guint i = 0; i < n; i++)
        {
          const Item *it = &items[i];
          const Option *cur = &it->opt[it->pos];
          for (guint j = it->pos + 1; j < it->n; j++)
            if (*used + it->opt[j].w - cur->w <= capacity && cur->v - it->opt[j].v > best_gain)
              {
                best_gain = cur->v - it->opt[j].v;
                best_i = i;
                best_j = j;
              }
        }
      if (best_gain <= 0)
        return;
      *used += items[best_i].opt[best_j].w - items[best_i].opt[items[best_i].pos].w;
      items[best_i].pos = best_j;
    }
}

/* ---- exact stage ----------------------------------------------------------- */

typedef struct {
  double w, v, r;    /* r: reduced cost so far */
  double lb;         /* v plus the LP relaxation of the items still open */
  guint  parent;     /* index in the previous layer */
  guint  option;     /* option index in this layer's item */
} State;

static int
compare_state (const void *a, const void *b)
{
  const State *x = a, *y = b;
  if (x->w != y->w)
    return x->w < y->w ? -1 : 1;
  if (x->v != y->v)
    return x->v < y->v ? -1 : 1;
  if (x->parent != y->parent)
    return x->parent < y->parent ? -1 : 1;
  return x->option < y->option ? -1 : x->option > y->option;
}

static int
compare_state_r (const void *a, const void *b)
{
  const State *x = a, *y = b;
  if (x->r != y->r)
    return x->r < y->r ? -1 : 1;
  return compare_state (a, b);
}

/* The LP relaxation of the items not yet decided, as a function of the
 * capacity left: their hull segments in one efficiency order, in a
 * Fenwick tree of (Δw, Δv) so that an item's segments can be removed as
 * the dynamic program decides it and the relaxation of the rest read in
 * O(log n).  Removed segments weigh 0 and save 0. */
typedef struct {
  guint   n;          /* segments */
  guint   top;        /* the highest power of two ≤ n */
  double *tree_w, *tree_v;
  double *e;          /* each segment's efficiency, in sorted order */
  double *dw;         /* its Δw (0 once removed) */
  guint  *item;       /* its free item, and the options it goes between */
  guint  *from, *to;
  GArray *of_item;    /* per free item: its segments' sorted positions (guint) */
} Relaxation;

static void
fenwick_add (double *tree, guint n, guint pos, double delta)
{
  for (guint i = pos + 1; i <= n; i += i & -i)
    tree[i] += delta;
}

static void
relaxation_init (Relaxation *rx, Item *items, const guint *free_items, guint n_free)
{
  g_autoptr(GArray) segs = g_array_new (FALSE, FALSE, sizeof (Segment));
  for (guint f = 0; f < n_free; f++)
    hull_segments (&items[free_items[f]], f, segs);
  g_array_sort (segs, compare_segment);
  rx->n = segs->len;
  rx->top = 1;
  while (rx->top * 2 <= rx->n)
    rx->top *= 2;
  rx->tree_w = g_new0 (double, rx->n + 1);
  rx->tree_v = g_new0 (double, rx->n + 1);
  rx->e = g_new (double, MAX (rx->n, 1));
  rx->dw = g_new (double, MAX (rx->n, 1));
  rx->item = g_new (guint, MAX (rx->n, 1));
  rx->from = g_new (guint, MAX (rx->n, 1));
  rx->to = g_new (guint, MAX (rx->n, 1));
  rx->of_item = g_array_new (FALSE, FALSE, sizeof (GArray *));
  for (guint f = 0; f < n_free; f++)
    {
      GArray *a = g_array_new (FALSE, FALSE, sizeof (guint));
      g_array_append_val (rx->of_item, a);
    }
  for (guint s = 0; s < rx->n; s++)
    {
      const Segment *seg = &g_array_index (segs, Segment, s);
      const Item *it = &items[free_items[seg->item]];
      rx->e[s] = seg->e;
      rx->dw[s] = it->opt[seg->to].w - it->opt[seg->from].w;
      rx->item[s] = seg->item;
      rx->from[s] = seg->from;
      rx->to[s] = seg->to;
      fenwick_add (rx->tree_w, rx->n, s, rx->dw[s]);
      fenwick_add (rx->tree_v, rx->n, s, it->opt[seg->from].v - it->opt[seg->to].v);
      g_array_append_val (g_array_index (rx->of_item, GArray *, seg->item), s);
    }
}

static void
relaxation_clear (Relaxation *rx)
{
  for (guint f = 0; f < rx->of_item->len; f++)
    g_array_unref (g_array_index (rx->of_item, GArray *, f));
  g_array_unref (rx->of_item);
  g_free (rx->tree_w);
  g_free (rx->tree_v);
  g_free (rx->e);
  g_free (rx->dw);
  g_free (rx->item);
  g_free (rx->from);
  g_free (rx->to);
}

static void
relaxation_remove (Relaxation *rx, guint f)
{
  GArray *a = g_array_index (rx->of_item, GArray *, f);
  for (guint i = 0; i < a->len; i++)
    {
      guint s = g_array_index (a, guint, i);
      double dv = rx->e[s] * rx->dw[s];
      fenwick_add (rx->tree_w, rx->n, s, -rx->dw[s]);
      fenwick_add (rx->tree_v, rx->n, s, -dv);
      rx->dw[s] = 0;
      rx->e[s] = 0;
    }
}

/* The most v the remaining segments save with `room` of w (LP). */
static double
relaxation_saving (const Relaxation *rx, double room)
{
  guint pos = 0;
  double saved = 0;
  for (guint step = rx->top; step > 0 && rx->n > 0; step /= 2)
    if (pos + step <= rx->n && rx->tree_w[pos + step] <= room)
      {
        pos += step;
        room -= rx->tree_w[pos];
        saved += rx->tree_v[pos];
      }
  if (pos < rx->n)
    saved += room * rx->e[pos];
  return saved;
}

/* Free items with the same options (equal w, v and reduced cost for every
 * option) are interchangeable, so the dynamic program may take a run of
 * them as one unit and decide only how many take each option: m such
 * items give O(m) states in one layer instead of O(m) states in each of m
 * layers.  A unit's compositions (counts per option, summing to its size)
 * are listed once, pruned by reduced cost; a unit too large to list
 * within the limits below is split. */
#define MAX_COMPOSITIONS (1 << 14)
#define MAX_GENERATED    (1 << 22)

typedef struct {
  guint   first, m, k;     /* positions [first, first + m) of the free order; options each */
  guint   n;               /* compositions */
  GArray *w, *v, *r;       /* per composition (double): summed over the unit */
  GArray *count;           /* n × k (guint): how many of the unit take each option */
} Unit;

static void
unit_clear (Unit *u)
{
  g_clear_pointer (&u->w, g_array_unref);
  g_clear_pointer (&u->v, g_array_unref);
  g_clear_pointer (&u->r, g_array_unref);
  g_clear_pointer (&u->count, g_array_unref);
}

static gboolean
compose (Unit *u, const Item *it, guint j, guint left, double w, double v, double r,
         guint *count, double r_limit)
{
  if (j + 1 == it->n)
    {
      count[j] = left;
      w += left * it->opt[j].w;
      v += left * it->opt[j].v;
      r += left * it->opt[j].r;
      if (r >= r_limit && r > 0)
        return TRUE;
      if (u->n == MAX_COMPOSITIONS)
        return FALSE;
      g_array_append_val (u->w, w);
      g_array_append_val (u->v, v);
      g_array_append_val (u->r, r);
      g_array_append_vals (u->count, count, it->n);
      u->n++;
      return TRUE;
    }
  for (guint c = 0; c <= left; c++)
    {
      double rc = r + c * it->opt[j].r;
      if (rc >= r_limit && rc > 0)
        break;
      count[j] = c;
      if (!compose (u, it, j + 1, left - c, w + c * it->opt[j].w, v + c * it->opt[j].v, rc,
                    count, r_limit))
        return FALSE;
    }
  return TRUE;
}

/* The compositions of m items like `it` from position first whose
 * reduced cost stays below r_limit; FALSE when there are too many. */
static gboolean
unit_init (Unit *u, const Item *it, guint first, guint m, double r_limit)
{
  g_autofree guint *count = g_new0 (guint, it->n);
  *u = (Unit) { .first = first, .m = m, .k = it->n,
                .w = g_array_new (FALSE, FALSE, sizeof (double)),
                .v = g_array_new (FALSE, FALSE, sizeof (double)),
                .r = g_array_new (FALSE, FALSE, sizeof (double)),
                .count = g_array_new (FALSE, FALSE, sizeof (guint)) };
  return compose (u, it, 0, m, 0, 0, 0, count, r_limit);
}

static guint
item_hash (gconstpointer p)
{
  const Item *it = p;
  guint h = it->n;
  for (guint j = 0; j < it->n; j++)
    h = (h * 31 + g_double_hash (&it->opt[j].w)) * 31 + g_double_hash (&it->opt[j].v);
  return h;
}

static gboolean
item_equal (gconstpointer a, gconstpointer b)
{
  const Item *x = a, *y = b;
  if (x->n != y->n)
    return FALSE;
  for (guint j = 0; j < x->n; j++)
    if (x->opt[j].w != y->opt[j].w || x->opt[j].v != y->opt[j].v || x->opt[j].r != y->opt[j].r)
      return FALSE;
  return TRUE;
}

/* The free items in the order the program takes them: alike items next to
 * each other (each kind where its first item was).  run_end[p]: the end of
 * the run of items like the one at position p. */
static void
order_alike (Item *items, const guint *free_items, guint n_free, guint *order, guint *run_end)
{
  g_autoptr(GHashTable) kinds = g_hash_table_new (item_hash, item_equal);
  g_autofree guint *kind = g_new (guint, MAX (n_free, 1));
  g_autofree guint *size = g_new0 (guint, MAX (n_free, 1));
  g_autofree guint *start = g_new0 (guint, MAX (n_free, 1) + 1);
  guint n_kinds = 0;

  for (guint f = 0; f < n_free; f++)
    {
      gpointer found;
      if (!g_hash_table_lookup_extended (kinds, &items[free_items[f]], NULL, &found))
        {
          found = GUINT_TO_POINTER (n_kinds++);
          g_hash_table_insert (kinds, &items[free_items[f]], found);
        }
      kind[f] = GPOINTER_TO_UINT (found);
      size[kind[f]]++;
    }
  for (guint g = 0; g < n_kinds; g++)
    start[g + 1] = start[g] + size[g];
  memset (size, 0, n_free * sizeof (guint));
  for (guint f = 0; f < n_free; f++)
    {
      guint p = start[kind[f]] + size[kind[f]]++;
      order[p] = free_items[f];
      run_end[p] = start[kind[f] + 1];
    }
}

/* The positions' options along the path of a state of unit `last`. */
static void
trace_path (GPtrArray *layers, GArray *units, guint last, const State *state, guint *best)
{
  for (guint u = last + 1; u-- > 0;)
    {
      const Unit *un = &g_array_index (units, Unit, u);
      const guint *c = &g_array_index (un->count, guint, (gsize) state->option * un->k);
      guint q = un->first;
      for (guint j = 0; j < un->k; j++)
        for (guint x = 0; x < c[j]; x++)
          best[q++] = j;
      if (u > 0)
        state = &((State *) g_ptr_array_index (layers, u))[state->parent];
    }
}

/* Completes a state of unit `last` greedily: the open items (positions
 * from `next`) start at their lightest option and take hull segments in
 * efficiency order while they fit.  When that beats the incumbent, it
 * becomes the incumbent and best (one option per position) records it. */
static void
complete_greedily (const Relaxation *rx, GPtrArray *layers, GArray *units, guint last,
                   const State *state, guint next, guint n_free, double room, double v,
                   guint *scratch, guint *best, double *incumbent, double tol)
{
  memset (scratch, 0, n_free * sizeof (guint));
  for (guint s = 0; s < rx->n; s++)
    if (rx->dw[s] > 0 && scratch[rx->item[s]] == rx->from[s] && rx->dw[s] <= room)
      {
        room -= rx->dw[s];
        v -= rx->e[s] * rx->dw[s];
        scratch[rx->item[s]] = rx->to[s];
      }
  if (v >= *incumbent - tol)
    return;
  *incumbent = v;
  for (guint g = next; g < n_free; g++)
    best[g] = scratch[g];
  trace_path (layers, units, last, state, best);
}

/* Merges the runs gen[start[j] .. start[j+1]) (each in w order) into one
 * list in w order that keeps only non-dominated states (v falling). */
static State *
merge_runs (State *gen, const guint *start, guint n_runs, guint *n_out)
{
  State *out = g_new (State, MAX (start[n_runs], 1));
  guint n = 0;
  if (n_runs > 8)
    {
      /* Many runs: one sort is cheaper than picking among the heads. */
      qsort (gen, start[n_runs], sizeof (State), compare_state);
      for (guint i = 0; i < start[n_runs]; i++)
        if (n == 0 || gen[i].v < out[n - 1].v)
          out[n++] = gen[i];
      *n_out = n;
      return out;
    }
  g_autofree guint *head = g_memdup2 (start, n_runs * sizeof (guint));
  for (;;)
    {
      int pick = -1;
      for (guint j = 0; j < n_runs; j++)
        if (head[j] < start[j + 1]
            && (pick < 0 || compare_state (&gen[head[j]], &gen[head[pick]]) < 0))
          pick = j;
      if (pick < 0)
        break;
      const State *st = &gen[head[pick]++];
      if (n == 0 || st->v < out[n - 1].v)
        out[n++] = *st;
    }
  *n_out = n;
  return out;
}

/* The next unit from position p: as many alike items as its limits allow. */
static void
next_unit (Unit *u, const Item *items, const guint *order, const guint *run_end, guint p,
           guint n_cur, double r_limit)
{
  const Item *it = &items[order[p]];
  for (guint m = run_end[p] - p;; m = (m + 1) / 2)
    {
      if ((unit_init (u, it, p, m, r_limit) && (guint64) u->n * n_cur <= MAX_GENERATED) || m == 1)
        return;
      unit_clear (u);
    }
}

/* Dynamic program over the free items (those with more than one option
 * left), unit by unit: non-dominated (w, v) states, pruned by capacity,
 * by the bound L + reduced cost, and by each state's own LP bound over
 * the items still open; a state that cannot beat the incumbent is
 * dropped.  Sets each free item's pos to the best state's path when it
 * beats the incumbent.  Returns FALSE when the state limit cut the search
 * (the result is then not proven optimal). */
static gboolean
exact_stage (Item *items, const guint *free_items, guint n_free, double base_w, double base_v,
             double capacity, double bound, double *incumbent, double tol)
{
  g_autofree guint *order = g_new (guint, n_free);
  g_autofree guint *run_end = g_new (guint, n_free);
  order_alike (items, free_items, n_free, order, run_end);
  g_autofree double *min_w_after = g_new0 (double, n_free + 1);
  g_autofree double *min_v_after = g_new0 (double, n_free + 1);
  for (guint f = n_free; f-- > 0;)
    {
      min_w_after[f] = min_w_after[f + 1] + items[order[f]].opt[0].w;
      min_v_after[f] = min_v_after[f + 1] + items[order[f]].opt[0].v;
    }
  Relaxation rx;
  relaxation_init (&rx, items, order, n_free);

  g_autofree guint *scratch = g_new (guint, n_free);
  g_autofree guint *best_pos = g_new (guint, n_free);
  for (guint f = 0; f < n_free; f++)
    best_pos[f] = items[order[f]].pos;
  GPtrArray *layers = g_ptr_array_new_with_free_func (g_free);
  GArray *units = g_array_new (FALSE, FALSE, sizeof (Unit));
  State *cur = g_new (State, 1);
  cur[0] = (State) { .w = base_w, .v = base_v };
  guint n_cur = 1, p = 0;
  gboolean complete = TRUE;

  while (p < n_free && n_cur > 0)
    {
      Unit u;
      next_unit (&u, items, order, run_end, p, n_cur, *incumbent - tol - bound);
      g_array_append_val (units, u);
      guint next = p + u.m;
      State *gen = g_new (State, MAX ((gsize) n_cur * u.n, 1));
      g_autofree guint *start = g_new (guint, u.n + 1);
      guint n_gen = 0;
      for (guint q = p; q < next; q++)
        relaxation_remove (&rx, q);
      /* Per composition, the states it extends stay in w order: one run each. */
      for (guint c = 0; c < u.n; c++)
        {
          double cw = g_array_index (u.w, double, c), cv = g_array_index (u.v, double, c);
          double cr = g_array_index (u.r, double, c);
          start[c] = n_gen;
          for (guint s = 0; s < n_cur; s++)
            {
              State st = { .w = cur[s].w + cw, .v = cur[s].v + cv, .r = cur[s].r + cr,
                           .parent = s, .option = c };
              double room = capacity - st.w - min_w_after[next];
              if (room < 0 || bound + st.r >= *incumbent - tol)
                continue;
              st.lb = st.v + min_v_after[next] - relaxation_saving (&rx, room);
              if (st.lb >= *incumbent - tol)
                continue;
              gen[n_gen++] = st;
            }
        }
      start[u.n] = n_gen;
      State *kept = merge_runs (gen, start, u.n, &n_cur);
      g_free (gen);
      if (n_cur > MAX_STATES)
        {
          qsort (kept, n_cur, sizeof (State), compare_state_r);
          n_cur = MAX_STATES;
          qsort (kept, n_cur, sizeof (State), compare_state);
          complete = FALSE;
        }
      g_ptr_array_add (layers, cur);
      cur = kept;
      p = next;
      /* The most promising state, completed, may lower the incumbent. */
      guint top = 0;
      for (guint s = 1; s < n_cur; s++)
        if (cur[s].lb < cur[top].lb)
          top = s;
      if (n_cur > 0)
        complete_greedily (&rx, layers, units, units->len - 1, &cur[top], next, n_free,
                           capacity - cur[top].w - min_w_after[next],
                           cur[top].v + min_v_after[next], scratch, best_pos, incumbent, tol);
    }
  relaxation_clear (&rx);

  /* The best complete state: least v, then least w. */
  guint best = G_MAXUINT;
  if (p == n_free)
    for (guint s = 0; s < n_cur; s++)
      if (cur[s].w <= capacity
          && (best == G_MAXUINT || cur[s].v < cur[best].v
              || (cur[s].v == cur[best].v && cur[s].w < cur[best].w)))
        best = s;
  if (best != G_MAXUINT && cur[best].v < *incumbent)
    {
      *incumbent = cur[best].v;
      trace_path (layers, units, units->len - 1, &cur[best], best_pos);
    }
  for (guint f = 0; f < n_free; f++)
    items[order[f]].pos = best_pos[f];
  for (guint u = 0; u < units->len; u++)
    unit_clear (&g_array_index (units, Unit, u));
  g_array_unref (units);
  g_free (cur);
  g_ptr_array_unref (layers);
  return complete;
}

/* ---- the allocation ------------------------------------------------------ */

static double
total_v (const Item *items, guint n)
{
  double v = 0;
  for (guint i = 0; i < n; i++)
    v += items[i].opt[items[i].pos].v;
  return v;
}

static gboolean
capacity_of (const QbCostTable *table, const QbAllocBudget *budget, double *capacity,
             GError **error)
{
  double total;

  switch (budget->target)
    {
    case QB_ALLOC_TARGET_KLD:
      *capacity = budget->value;
      return TRUE;
    case QB_ALLOC_TARGET_BPW:
      total = floor (budget->value * (double) qb_cost_table_n_weights (table) / 8.0);
      break;
    case QB_ALLOC_TARGET_BYTES:
      total = floor (budget->value);
      break;
    default:
      g_return_val_if_reached (FALSE);
    }
  *capacity = total - (double) table->fixed_bytes;
  if (*capacity < 0)
    {
      g_set_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INFEASIBLE,
                   "the budget (%.0f bytes) is below the tensors kept as they are "
                   "(%" G_GUINT64_FORMAT " bytes)", total, table->fixed_bytes);
      return FALSE;
    }
  return TRUE;
}

static void
infeasible_error (const QbCostTable *table, const QbAllocBudget *budget, double least,
                  GError **error)
{
  gint64 n = qb_cost_table_n_weights (table);
  if (budget->target == QB_ALLOC_TARGET_KLD)
    g_set_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INFEASIBLE,
                 "no plan reaches a predicted KLD of %g: the least possible is %g",
                 budget->value, least);
  else
    {
      double bytes = least + (double) table->fixed_bytes;
      g_set_error (error, QB_ALLOC_ERROR, QB_ALLOC_ERROR_INFEASIBLE,
                   "the budget is too small: the smallest plan the candidates allow is "
                   "%.0f bytes (%.3f bits per weight)", bytes, n > 0 ? bytes * 8.0 / n : 0.0);
    }
}

static QbAllocation *
allocation_from (const QbCostTable *table, Item *items, gboolean *pinned)
{
  QbAllocation *a = g_new0 (QbAllocation, 1);
  a->n_tensors = table->n_tensors;
  a->choice = g_new0 (guint, MAX (table->n_tensors, 1));
  a->pinned = pinned;
  a->bytes = table->fixed_bytes;
  for (guint i = 0; i < table->n_tensors; i++)
    {
      const QbCostCandidate *c = &table->tensors[i].candidates[items[i].opt[items[i].pos].k];
      a->choice[i] = items[i].opt[items[i].pos].k;
      a->bytes += c->bytes;
      a->predicted_kld += c->cost;
    }
  gint64 n = qb_cost_table_n_weights (table);
  a->bpw = n > 0 ? a->bytes * 8.0 / n : 0;
  return a;
}

QbAllocation *
qb_allocate (const QbCostTable *table, const QbAllocBudget *budget,
             const QbAllocConstraints *constraints, GError **error)
{
  g_return_val_if_fail (table != NULL && budget != NULL, NULL);
  guint n = table->n_tensors;
  gboolean by_kld = budget->target == QB_ALLOC_TARGET_KLD;
  double capacity;

  if (!capacity_of (table, budget, &capacity, error))
    return NULL;

  Item *items = g_new0 (Item, MAX (n, 1));
  g_autofree gboolean *pinned = g_new0 (gboolean, MAX (n, 1));
  g_autofree guint *free_items = g_new (guint, MAX (n, 1));
  QbAllocation *result = NULL;

  if (!build_items (table, constraints, by_kld, items, pinned, error))
    goto out;

  double used = 0;
  double lambda = lagrangian_greedy (items, n, capacity, &used);
  if (used > capacity)
    {
      infeasible_error (table, budget, used, error);
      goto out;
    }

  /* The bound L(λ) = Σ min (v + λ·w) − λ·capacity, and reduced costs. */
  double bound = -lambda * capacity;
  for (guint i = 0; i < n; i++)
    {
      double m = INFINITY;
      for (guint j = 0; j < items[i].n; j++)
        m = MIN (m, items[i].opt[j].v + lambda * items[i].opt[j].w);
      for (guint j = 0; j < items[i].n; j++)
        items[i].opt[j].r = items[i].opt[j].v + lambda * items[i].opt[j].w - m;
      bound += m;
    }

  greedy_fill (items, n, capacity, &used);
  double incumbent = total_v (items, n);
  double tol = 1e-12 * (fabs (incumbent) + fabs (bound)) + 1e-300;
  double gap = incumbent - bound;

  /* Options whose reduced cost exceeds the gap cannot improve on the
   * incumbent; items with one option left are decided. */
  guint n_free = 0;
  double base_w = 0, base_v = 0;
  gboolean exact = TRUE;
  for (guint i = 0; i < n; i++)
    {
      Item *it = &items[i];
      guint kept = 0, keep_pos = 0;
      for (guint j = 0; j < it->n; j++)
        if (j == it->pos || it->opt[j].r <= gap + tol)
          {
            if (j == it->pos)
              keep_pos = kept;
            it->opt[kept++] = it->opt[j];
          }
      it->n = kept;
      it->pos = keep_pos;
      if (kept > 1)
        free_items[n_free++] = i;
      else
        {
          base_w += it->opt[0].w;
          base_v += it->opt[0].v;
        }
    }
  if (gap > tol && n_free > 0)
    exact = exact_stage (items, free_items, n_free, base_w, base_v, capacity, bound,
                         &incumbent, tol);

  result = allocation_from (table, items, g_steal_pointer (&pinned));
  result->lower_bound = by_kld ? NAN : bound;
  result->exact = exact;
  result->n_free = n_free;

out:
  for (guint i = 0; i < n; i++)
    g_free (items[i].opt);
  g_free (items);
  return result;
}
