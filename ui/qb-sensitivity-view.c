/* SPDX-License-Identifier: MIT */
/* qb-sensitivity-view.c — heatmap of layers × roles (or of layers ×
 * experts of one expert tensor kind) and ranked bars of a sensitivity
 * study, for one candidate format. */
#include "qb-sensitivity-view.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qb-chart.h"

#define MARGIN     12.0
#define LABEL_W    74.0
#define HEADER_H   50.0
#define BAR_LABEL  170.0
#define GROUP_LINE 18.0      /* the header's upper line: column groups, the mode */
#define MIN_LABEL  13.0      /* row labels at least this far apart */

/* The roles a heatmap column can show, in this order (those the study
 * has become its columns); token_embd and output share the last row.
 * Columns of one group (a mixture's experts, its shared expert) carry
 * its name above them. */
typedef struct {
  QbTensorRole role;
  const char  *label;
  const char  *group;
} Column;

static const Column all_columns[] = {
  { QB_ROLE_ATTN_Q, "q", NULL }, { QB_ROLE_ATTN_K, "k", NULL }, { QB_ROLE_ATTN_V, "v", NULL },
  { QB_ROLE_ATTN_QKV, "qkv", NULL }, { QB_ROLE_ATTN_OUTPUT, "o", NULL },
  { QB_ROLE_FFN_GATE, "gate", NULL }, { QB_ROLE_FFN_UP, "up", NULL },
  { QB_ROLE_FFN_DOWN, "down", NULL }, { QB_ROLE_FFN_GATE_INP, "router", NULL },
  { QB_ROLE_FFN_GATE_EXPS, "gate", "experts" }, { QB_ROLE_FFN_UP_EXPS, "up", "experts" },
  { QB_ROLE_FFN_DOWN_EXPS, "down", "experts" }, { QB_ROLE_FFN_GATE_SHEXP, "gate", "shared" },
  { QB_ROLE_FFN_UP_SHEXP, "up", "shared" }, { QB_ROLE_FFN_DOWN_SHEXP, "down", "shared" },
  { QB_ROLE_FFN_GATE_INP_SHEXP, "sh.gate", NULL },
  { QB_ROLE_TOKEN_EMBD, "embd", NULL }, { QB_ROLE_OUTPUT, "output", NULL },
};

static gboolean
whole_model_role (QbTensorRole role)
{
  return role == QB_ROLE_TOKEN_EMBD || role == QB_ROLE_OUTPUT;
}

typedef struct {
  char         *name;
  int           layer;
  QbTensorRole  role;
  double       *cost;       /* per candidate; NAN when skipped */
  gboolean     *measured;
  int           expert;     /* -1: a tensor; else that expert alone ("name #expert") */
} Tensor;

struct _QbSensitivityView
{
  GtkWidget  parent_instance;

  guint      n_tensors;
  Tensor    *tensors;
  guint      n_candidates;
  GStrv      candidates;
  guint      candidate;
  guint     *order;        /* tensors by cost under the candidate, highest first */
  int        n_layers;
  char      *title;
  /* The heatmap: columns of roles, or with expert_role set (not OTHER)
   * the experts of that kind's tensors, one column each; cells holds the
   * tensor of each cell (-1: none), row by row. */
  const Column *columns[G_N_ELEMENTS (all_columns)];
  guint      n_columns;
  QbTensorRole expert_role;
  guint      n_grid_rows, n_grid_cols;
  int       *cells;
};

static void qb_sensitivity_view_chart_init (QbChartInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (QbSensitivityView, qb_sensitivity_view, GTK_TYPE_WIDGET,
                               G_IMPLEMENT_INTERFACE (QB_TYPE_CHART, qb_sensitivity_view_chart_init))

enum {
  TENSOR_ACTIVATED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
clear (QbSensitivityView *self)
{
  for (guint i = 0; i < self->n_tensors; i++)
    {
      g_free (self->tensors[i].name);
      g_free (self->tensors[i].cost);
      g_free (self->tensors[i].measured);
    }
  g_clear_pointer (&self->tensors, g_free);
  g_clear_pointer (&self->candidates, g_strfreev);
  g_clear_pointer (&self->order, g_free);
  g_clear_pointer (&self->title, g_free);
  g_clear_pointer (&self->cells, g_free);
  self->n_tensors = self->n_candidates = 0;
  self->n_layers = 0;
  self->n_columns = self->n_grid_rows = self->n_grid_cols = 0;
}

static double
cost_of (QbSensitivityView *self, guint t)
{
  return self->tensors[t].cost[self->candidate];
}

static QbSensitivityView *sort_view;   /* qsort has no user data; main thread only */

static int
compare_cost (const void *a, const void *b)
{
  double x = cost_of (sort_view, *(const guint *) a), y = cost_of (sort_view, *(const guint *) b);

  if (isnan (x) != isnan (y))
    return isnan (x) ? 1 : -1;
  if (x != y && !isnan (x))
    return x > y ? -1 : 1;
  return (*(const guint *) a > *(const guint *) b) - (*(const guint *) a < *(const guint *) b);
}

static void
rank (QbSensitivityView *self)
{
  g_free (self->order);
  self->order = g_new (guint, MAX (self->n_tensors, 1));
  for (guint i = 0; i < self->n_tensors; i++)
    self->order[i] = i;
  sort_view = self;
  qsort (self->order, self->n_tensors, sizeof (guint), compare_cost);
  sort_view = NULL;
}

/* A study run per expert: each expert alone becomes a bar of its own
 * ("blk.3.ffn_down_exps.weight #5"), measured candidates only (NAN: not
 * measured).  The heatmap keeps one cell per tensor. */
static void
add_experts (QbSensitivityView *self, QbSensitivityStudy *study)
{
  GPtrArray *costs = study->expert_costs;

  if (costs->len == 0)
    return;
  /* at most a bar per row */
  self->tensors = g_renew (Tensor, self->tensors, self->n_tensors + costs->len);
  for (guint i = 0; i < costs->len; i++)
    {
      const QbStudyCost *c = g_ptr_array_index (costs, i);
      Tensor *x = NULL;
      gboolean bias = FALSE;

      /* rows come by position, rung, expert: find this expert's bar */
      for (guint t = self->n_tensors; t-- > study->n_tensors && x == NULL;)
        if (self->tensors[t].expert == c->expert && g_str_has_prefix (self->tensors[t].name, c->tensor)
            && self->tensors[t].name[strlen (c->tensor)] == ' ')
          x = &self->tensors[t];
      if (x == NULL)
        {
          x = &self->tensors[self->n_tensors++];
          x->name = g_strdup_printf ("%s #%d", c->tensor, c->expert);
          x->expert = c->expert;
          x->cost = g_new (double, self->n_candidates);
          x->measured = g_new0 (gboolean, self->n_candidates);
          for (guint k = 0; k < self->n_candidates; k++)
            x->cost[k] = NAN;
          qb_tensor_name_parse (c->tensor, &x->layer, &x->role, &bias);
        }
      if (c->rung < self->n_candidates)
        {
          x->cost[c->rung] = c->kld;
          x->measured[c->rung] = isfinite (c->kld);
        }
    }
}

/* The roles the study has (its tensors, not their experts) as columns. */
static void
choose_columns (QbSensitivityView *self)
{
  self->n_columns = 0;
  for (gsize c = 0; c < G_N_ELEMENTS (all_columns); c++)
    for (guint t = 0; t < self->n_tensors; t++)
      if (self->tensors[t].expert < 0 && self->tensors[t].role == all_columns[c].role)
        {
          self->columns[self->n_columns++] = &all_columns[c];
          break;
        }
}

/* Experts shown for a kind: one past the highest expert measured. */
static guint
n_experts_of (QbSensitivityView *self, QbTensorRole role)
{
  guint n = 0;

  for (guint t = 0; t < self->n_tensors; t++)
    if (self->tensors[t].expert >= 0 && self->tensors[t].role == role)
      n = MAX (n, (guint) self->tensors[t].expert + 1);
  return n;
}

/* Which tensor each heatmap cell shows, for the mode: done once per
 * study or mode, so drawing and hit testing only index it. */
static void
layout_cells (QbSensitivityView *self)
{
  gboolean experts = self->expert_role != QB_ROLE_OTHER;

  g_free (self->cells);
  self->n_grid_rows = (guint) self->n_layers + (experts ? 0 : 1);
  self->n_grid_cols = experts ? n_experts_of (self, self->expert_role) : self->n_columns;
  self->cells = g_new (int, MAX (self->n_grid_rows * self->n_grid_cols, 1));
  for (guint i = 0; i < self->n_grid_rows * self->n_grid_cols; i++)
    self->cells[i] = -1;
  for (guint t = 0; t < self->n_tensors; t++)
    {
      const Tensor *x = &self->tensors[t];
      guint row = x->layer >= 0 ? (guint) x->layer : (guint) self->n_layers, col = 0;

      if (experts)
        {
          if (x->expert < 0 || x->role != self->expert_role || x->layer < 0)
            continue;
          col = (guint) x->expert;
        }
      else
        {
          if (x->expert >= 0 || whole_model_role (x->role) != (x->layer < 0))
            continue;
          while (col < self->n_columns && self->columns[col]->role != x->role)
            col++;
          if (col == self->n_columns)
            continue;
        }
      if (row < self->n_grid_rows && col < self->n_grid_cols
          && self->cells[row * self->n_grid_cols + col] < 0)
        self->cells[row * self->n_grid_cols + col] = (int) t;
    }
}

void
qb_sensitivity_view_set_study (QbSensitivityView *self, QbSensitivityStudy *study)
{
  g_return_if_fail (QB_IS_SENSITIVITY_VIEW (self));
  clear (self);
  if (study != NULL)
    {
      self->n_candidates = study->n_candidates;
      self->candidates = g_strdupv (study->candidates);
      self->n_tensors = study->n_tensors;
      self->tensors = g_new0 (Tensor, MAX (study->n_tensors, 1));
      for (guint t = 0; t < study->n_tensors; t++)
        {
          Tensor *x = &self->tensors[t];
          gboolean bias = FALSE;

          x->cost = g_new (double, study->n_candidates);
          x->measured = g_new0 (gboolean, study->n_candidates);
          for (guint k = 0; k < study->n_candidates; k++)
            {
              const QbSensitivityEntry *e = qb_sensitivity_study_get (study, t, k);
              x->cost[k] = e->cost && !e->cost->skipped ? e->value : NAN;
              x->measured[k] = e->cost && isfinite (e->cost->kld);
              if (x->name == NULL && e->cost != NULL)
                x->name = g_strdup (e->cost->tensor);
            }
          qb_tensor_name_parse (x->name ? x->name : "", &x->layer, &x->role, &bias);
          x->expert = -1;
          self->n_layers = MAX (self->n_layers, x->layer + 1);
        }
      add_experts (self, study);
      choose_columns (self);
      self->title = g_strdup_printf ("study %" G_GINT64_FORMAT " · %s · %s", study->record->id,
                                     study->record->model_name ? study->record->model_name : "",
                                     study->record->method);
    }
  self->candidate = 0;
  /* A kind the new study has no experts of goes back to the tensors. */
  if (self->expert_role != QB_ROLE_OTHER && n_experts_of (self, self->expert_role) == 0)
    self->expert_role = QB_ROLE_OTHER;
  layout_cells (self);
  rank (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
qb_sensitivity_view_set_expert_role (QbSensitivityView *self, QbTensorRole role)
{
  g_return_if_fail (QB_IS_SENSITIVITY_VIEW (self));
  if (role != QB_ROLE_OTHER && n_experts_of (self, role) == 0)
    role = QB_ROLE_OTHER;
  if (role == self->expert_role)
    return;
  self->expert_role = role;
  layout_cells (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

QbTensorRole
qb_sensitivity_view_get_expert_role (QbSensitivityView *self)
{
  g_return_val_if_fail (QB_IS_SENSITIVITY_VIEW (self), QB_ROLE_OTHER);
  return self->expert_role;
}

guint
qb_sensitivity_view_get_expert_roles (QbSensitivityView *self, QbTensorRole *roles, guint max)
{
  guint n = 0;

  g_return_val_if_fail (QB_IS_SENSITIVITY_VIEW (self), 0);
  for (gsize c = 0; c < G_N_ELEMENTS (all_columns); c++)
    if (n_experts_of (self, all_columns[c].role) > 0)
      {
        if (n < max)
          roles[n] = all_columns[c].role;
        n++;
      }
  return n;
}

void
qb_sensitivity_view_set_candidate (QbSensitivityView *self, guint candidate)
{
  g_return_if_fail (QB_IS_SENSITIVITY_VIEW (self));
  if (candidate >= self->n_candidates)
    return;
  self->candidate = candidate;
  rank (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

guint
qb_sensitivity_view_get_candidate (QbSensitivityView *self)
{
  return self->candidate;
}

const char *
qb_sensitivity_view_get_ranked (QbSensitivityView *self, guint i)
{
  return i < self->n_tensors ? self->tensors[self->order[i]].name : NULL;
}

static int
find (QbSensitivityView *self, int layer, QbTensorRole role)
{
  for (guint t = 0; t < self->n_tensors; t++)
    if (self->tensors[t].role == role && self->tensors[t].expert < 0
        && (self->tensors[t].layer == layer || self->tensors[t].layer < 0))
      return (int) t;
  return -1;
}

static char *
describe_tensor (QbSensitivityView *self, int t)
{
  double c;

  if (t < 0 || self->n_candidates == 0)
    return NULL;
  c = cost_of (self, (guint) t);
  if (isnan (c))
    return g_strdup_printf ("%s · %s: %s", self->tensors[t].name, self->candidates[self->candidate],
                            self->tensors[t].expert >= 0 ? "not measured" : "does not fit");
  if (self->tensors[t].expert >= 0)
    return g_strdup_printf ("%s · %s: KLD %.2e with this expert alone quantized (measured)",
                            self->tensors[t].name, self->candidates[self->candidate], c);
  return g_strdup_printf ("%s · %s: KLD %.2e (%s)", self->tensors[t].name,
                          self->candidates[self->candidate], c,
                          self->tensors[t].measured[self->candidate] ? "measured" : "predicted");
}

char *
qb_sensitivity_view_describe (QbSensitivityView *self, int layer, QbTensorRole role)
{
  return describe_tensor (self, find (self, layer, role));
}

/* ---- drawing ---------------------------------------------------------- */

static void
cost_range (QbSensitivityView *self, double *lo, double *hi)
{
  *lo = INFINITY;
  *hi = -INFINITY;
  for (guint t = 0; t < self->n_tensors; t++)
    {
      double c = cost_of (self, t);
      if (c > 0 && isfinite (c))
        {
          *lo = MIN (*lo, log10 (c));
          *hi = MAX (*hi, log10 (c));
        }
    }
  if (!isfinite (*lo))
    *lo = *hi = 0;
  if (*hi - *lo < 1e-6)
    *hi = *lo + 1;
}

/* Low cost pale, high cost the error colour. */
static void
heat_color (cairo_t *cr, const QbChartPalette *palette, double f)
{
  const GdkRGBA *hot = &palette->error, *cold = &palette->success;

  cairo_set_source_rgba (cr, cold->red + (hot->red - cold->red) * f,
                         cold->green + (hot->green - cold->green) * f,
                         cold->blue + (hot->blue - cold->blue) * f, 0.25 + 0.75 * f);
}

/* Where the heatmap's cells lie in its rectangle: draw and hit testing
 * share it. */
typedef struct {
  double x0, y0;     /* the first cell's corner */
  double cw, ch;     /* a cell's size */
} Grid;

static gboolean
heatmap_grid (QbSensitivityView *self, const graphene_rect_t *r, Grid *g)
{
  if (self->n_grid_rows == 0 || self->n_grid_cols == 0)
    return FALSE;
  g->x0 = r->origin.x + LABEL_W;
  g->y0 = r->origin.y + HEADER_H;
  g->cw = (r->size.width - LABEL_W) / self->n_grid_cols;
  g->ch = MIN (28.0, (r->size.height - HEADER_H) / self->n_grid_rows);
  return g->cw > 0 && g->ch > 0;
}

/* Every step-th label only, so that labels keep `room` apart. */
static guint
label_step (double size, double room)
{
  static const guint nice[] = { 1, 2, 4, 5, 10, 20, 25, 50, 100 };
  double need = room / MAX (size, 1e-3);

  for (gsize i = 0; i < G_N_ELEMENTS (nice); i++)
    if (nice[i] >= need)
      return nice[i];
  return (guint) ceil (need);
}

/* Text centred at (x, y) in at most max_w: smaller type for a narrow
 * column, left out when even that does not fit. */
static void
fitted_text (cairo_t *cr, const QbChartPalette *palette, const char *text, double x, double y,
             double max_w)
{
  for (double scale = 0.7; scale > 0.45; scale -= 0.1)
    if (qb_chart_text_width (cr, palette, text, scale) <= max_w)
      {
        qb_chart_text (cr, palette, text, x, y, 0.5, 1.0, scale);
        return;
      }
}

static void
draw_header (QbSensitivityView *self, cairo_t *cr, const QbChartPalette *palette,
             const graphene_rect_t *r, const Grid *g)
{
  double base = r->origin.y + HEADER_H - 4, upper = base - GROUP_LINE;

  qb_chart_set_color (cr, &palette->fg, 0.8);
  if (self->expert_role != QB_ROLE_OTHER)
    {
      guint step = label_step (g->cw, 22.0);
      g_autofree char *what = g_strdup_printf ("◂ tensors · experts of %s",
                                               qb_tensor_role_name (self->expert_role));

      qb_chart_text (cr, palette, what, g->x0, upper, 0.0, 1.0, 0.7);
      for (guint c = 0; c < self->n_grid_cols; c += step)
        {
          g_autofree char *label = g_strdup_printf ("%u", c);
          qb_chart_text (cr, palette, label, g->x0 + (c + 0.5) * g->cw, base, 0.5, 1.0, 0.65);
        }
      return;
    }
  for (guint c = 0; c < self->n_columns; c++)
    {
      const Column *col = self->columns[c];
      guint n = 1;
      gboolean opens = FALSE;

      fitted_text (cr, palette, col->label, g->x0 + (c + 0.5) * g->cw, base, g->cw - 2);
      if (col->group == NULL || (c > 0 && g_strcmp0 (self->columns[c - 1]->group, col->group) == 0))
        continue;
      /* A group's name over its columns; ▸: they open into their experts. */
      while (c + n < self->n_columns && g_strcmp0 (self->columns[c + n]->group, col->group) == 0)
        n++;
      for (guint k = c; k < c + n; k++)
        opens |= n_experts_of (self, self->columns[k]->role) > 0;
      {
        g_autofree char *label = g_strdup_printf ("%s%s", col->group, opens ? " ▸" : "");
        fitted_text (cr, palette, label, g->x0 + (c + n / 2.0) * g->cw, upper - 2, n * g->cw - 4);
      }
      cairo_move_to (cr, g->x0 + c * g->cw + 3, upper + 1.5);
      cairo_line_to (cr, g->x0 + (c + n) * g->cw - 3, upper + 1.5);
      cairo_set_line_width (cr, 1.0);
      cairo_stroke (cr);
    }
}

static void
draw_cell (QbSensitivityView *self, cairo_t *cr, const QbChartPalette *palette,
           double x, double y, const Grid *g, int t, double lo, double hi)
{
  double v = cost_of (self, (guint) t), gap = g->ch >= 6 && g->cw >= 6 ? 1 : 0;

  if (isnan (v))
    {
      /* does not fit (or an expert not measured): grey, crossed */
      qb_chart_set_color (cr, &palette->fg, 0.12);
      cairo_rectangle (cr, x + gap, y + gap, g->cw - 2 * gap, g->ch - 2 * gap);
      cairo_fill (cr);
      if (g->cw >= 10 && g->ch >= 10)
        {
          qb_chart_set_color (cr, &palette->fg, 0.35);
          cairo_move_to (cr, x + 4, y + g->ch - 4);
          cairo_line_to (cr, x + g->cw - 4, y + 4);
          cairo_stroke (cr);
        }
      return;
    }
  heat_color (cr, palette, v > 0 ? CLAMP ((log10 (v) - lo) / (hi - lo), 0, 1) : 0);
  cairo_rectangle (cr, x + gap, y + gap, g->cw - 2 * gap, g->ch - 2 * gap);
  cairo_fill (cr);
  if (g->cw > 50 && g->ch >= 14)
    {
      g_autofree char *txt = g_strdup_printf ("%.1e", v);
      qb_chart_set_color (cr, &palette->fg, 0.9);
      qb_chart_text (cr, palette, txt, x + g->cw / 2, y + g->ch / 2, 0.5, 0.5, 0.65);
    }
}

static void
draw_heatmap (QbSensitivityView *self, cairo_t *cr, const QbChartPalette *palette,
              const graphene_rect_t *r, double lo, double hi)
{
  guint step;
  Grid g;

  if (!heatmap_grid (self, r, &g))
    return;
  draw_header (self, cr, palette, r, &g);
  step = label_step (g.ch, MIN_LABEL);
  for (guint row = 0; row < self->n_grid_rows; row++)
    {
      double y = g.y0 + row * g.ch;

      if (row % step == 0 || row == (guint) self->n_layers)
        {
          g_autofree char *label = row < (guint) self->n_layers ? g_strdup_printf ("layer %u", row)
                                                                : g_strdup ("model");
          qb_chart_set_color (cr, &palette->fg, 0.8);
          qb_chart_text (cr, palette, label, g.x0 - 6, y + g.ch / 2, 1.0, 0.5, g.ch >= 12 ? 0.8 : 0.65);
        }
      for (guint c = 0; c < self->n_grid_cols; c++)
        {
          int t = self->cells[row * self->n_grid_cols + c];
          if (t >= 0)
            draw_cell (self, cr, palette, g.x0 + c * g.cw, y, &g, t, lo, hi);
        }
    }
}

static void
draw_bars (QbSensitivityView *self, cairo_t *cr, const QbChartPalette *palette,
           const graphene_rect_t *r, double lo, double hi)
{
  double bh = 14.0;
  guint fit = (guint) MAX (0, (r->size.height - HEADER_H) / bh);
  double w = r->size.width - BAR_LABEL;

  qb_chart_set_color (cr, &palette->fg, 0.8);
  qb_chart_text (cr, palette, "most sensitive first (log scale)", r->origin.x, r->origin.y + HEADER_H - 4,
                 0.0, 1.0, 0.75);
  for (guint i = 0; i < MIN (fit, self->n_tensors); i++)
    {
      guint t = self->order[i];
      double v = cost_of (self, t), y = r->origin.y + HEADER_H + i * bh;
      double f = v > 0 && isfinite (v) ? CLAMP ((log10 (v) - lo) / (hi - lo), 0, 1) : 0;

      qb_chart_set_color (cr, &palette->fg, isnan (v) ? 0.4 : 0.85);
      qb_chart_text (cr, palette, self->tensors[t].name, r->origin.x + BAR_LABEL - 6, y + bh / 2,
                     1.0, 0.5, 0.65);
      if (isnan (v))
        {
          qb_chart_text (cr, palette, self->tensors[t].expert >= 0 ? "not measured" : "does not fit",
                         r->origin.x + BAR_LABEL, y + bh / 2, 0.0, 0.5, 0.65);
          continue;
        }
      heat_color (cr, palette, f);
      cairo_rectangle (cr, r->origin.x + BAR_LABEL, y + 2, MAX (2.0, (0.08 + 0.92 * f) * w), bh - 4);
      cairo_fill (cr);
    }
}

/* Where the heatmap and the bars lie for a size: draw and hit testing
 * share it. */
static void
split_rects (double width, double height, graphene_rect_t *left, graphene_rect_t *right)
{
  double split = MAX (width * 0.55, 360.0);

  graphene_rect_init (left, MARGIN, MARGIN + 8, MAX (1.0, split - 2 * MARGIN), height - 2 * MARGIN - 8);
  graphene_rect_init (right, split, MARGIN + 8, MAX (1.0, width - split - MARGIN), height - 2 * MARGIN - 8);
}

static int
heatmap_hit (QbSensitivityView *self, const graphene_rect_t *r, double x, double y)
{
  Grid g;
  double cx, cy;

  if (!heatmap_grid (self, r, &g))
    return -1;
  cx = (x - g.x0) / g.cw;
  cy = (y - g.y0) / g.ch;
  if (cx < 0 || cy < 0 || cx >= self->n_grid_cols || cy >= self->n_grid_rows)
    return -1;
  return self->cells[(guint) cy * self->n_grid_cols + (guint) cx];
}

/* The header's answer to a click: an expert kind to open (its column
 * header), QB_ROLE_OTHER to go back to the tensors (the mode line of the
 * experts' grid), or -1: nothing there. */
static int
header_hit (QbSensitivityView *self, const graphene_rect_t *r, double x, double y)
{
  Grid g;
  double cx;

  if (!heatmap_grid (self, r, &g) || y < g.y0 - HEADER_H + 4 || y >= g.y0 || x < g.x0)
    return -1;
  if (self->expert_role != QB_ROLE_OTHER)
    return y < g.y0 - GROUP_LINE ? QB_ROLE_OTHER : -1;
  cx = (x - g.x0) / g.cw;
  if (cx >= self->n_columns || n_experts_of (self, self->columns[(guint) cx]->role) == 0)
    return -1;
  return self->columns[(guint) cx]->role;
}

static int
bars_hit (QbSensitivityView *self, const graphene_rect_t *r, double x, double y)
{
  double bh = 14.0, cy = y - r->origin.y - HEADER_H;
  guint fit = (guint) MAX (0, (r->size.height - HEADER_H) / bh), i;

  if (x < r->origin.x || x > r->origin.x + r->size.width || cy < 0)
    return -1;
  i = (guint) (cy / bh);
  return i < MIN (fit, self->n_tensors) ? (int) self->order[i] : -1;
}

/* The tensor under a point of the widget: a heatmap cell or a bar. */
static int
tensor_at (QbSensitivityView *self, double x, double y)
{
  graphene_rect_t left, right;
  int t;

  if (self->n_tensors == 0)
    return -1;
  split_rects (gtk_widget_get_width (GTK_WIDGET (self)), gtk_widget_get_height (GTK_WIDGET (self)),
               &left, &right);
  t = heatmap_hit (self, &left, x, y);
  return t >= 0 ? t : bars_hit (self, &right, x, y);
}

const char *
qb_sensitivity_view_get_tensor_at (QbSensitivityView *self, double x, double y)
{
  int t;

  g_return_val_if_fail (QB_IS_SENSITIVITY_VIEW (self), NULL);
  t = tensor_at (self, x, y);
  return t >= 0 ? self->tensors[t].name : NULL;
}

gboolean
qb_sensitivity_view_get_tensor_point (QbSensitivityView *self, const char *name, double *x, double *y)
{
  graphene_rect_t left, right;
  double bh = 14.0;
  guint fit;

  g_return_val_if_fail (QB_IS_SENSITIVITY_VIEW (self), FALSE);
  split_rects (gtk_widget_get_width (GTK_WIDGET (self)), gtk_widget_get_height (GTK_WIDGET (self)),
               &left, &right);
  fit = (guint) MAX (0, (right.size.height - HEADER_H) / bh);
  for (guint i = 0; i < MIN (fit, self->n_tensors); i++)
    if (g_strcmp0 (self->tensors[self->order[i]].name, name) == 0)
      {
        *x = right.origin.x + BAR_LABEL + 4;
        *y = right.origin.y + HEADER_H + (i + 0.5) * bh;
        return TRUE;
      }
  return FALSE;
}

gboolean
qb_sensitivity_view_get_cell_point (QbSensitivityView *self, const char *name, double *x, double *y)
{
  graphene_rect_t left, right;
  Grid g;

  g_return_val_if_fail (QB_IS_SENSITIVITY_VIEW (self), FALSE);
  split_rects (gtk_widget_get_width (GTK_WIDGET (self)), gtk_widget_get_height (GTK_WIDGET (self)),
               &left, &right);
  if (!heatmap_grid (self, &left, &g))
    return FALSE;
  for (guint i = 0; i < self->n_grid_rows * self->n_grid_cols; i++)
    if (self->cells[i] >= 0 && g_strcmp0 (self->tensors[self->cells[i]].name, name) == 0)
      {
        *x = g.x0 + (i % self->n_grid_cols + 0.5) * g.cw;
        *y = g.y0 + (i / self->n_grid_cols + 0.5) * g.ch;
        return TRUE;
      }
  return FALSE;
}

gboolean
qb_sensitivity_view_get_header_point (QbSensitivityView *self, QbTensorRole role, double *x,
                                      double *y)
{
  graphene_rect_t left, right;
  Grid g;

  g_return_val_if_fail (QB_IS_SENSITIVITY_VIEW (self), FALSE);
  split_rects (gtk_widget_get_width (GTK_WIDGET (self)), gtk_widget_get_height (GTK_WIDGET (self)),
               &left, &right);
  if (!heatmap_grid (self, &left, &g))
    return FALSE;
  if (self->expert_role != QB_ROLE_OTHER)
    {
      *x = g.x0 + 8;
      *y = g.y0 - GROUP_LINE - 8;
      return role == QB_ROLE_OTHER;
    }
  for (guint c = 0; c < self->n_columns; c++)
    if (self->columns[c]->role == role)
      {
        *x = g.x0 + (c + 0.5) * g.cw;
        *y = g.y0 - 8;
        return TRUE;
      }
  return FALSE;
}

/* Opens an expert kind's grid (QB_ROLE_OTHER: back to the tensors)
 * through the page's action when there is one, which keeps its selector
 * in step; alone, the view changes itself. */
static void
open_experts (QbSensitivityView *self, QbTensorRole role)
{
  const char *name = role == QB_ROLE_OTHER ? "" : qb_tensor_role_name (role);

  if (!gtk_widget_activate_action (GTK_WIDGET (self), "sensitivity.experts", "s", name))
    qb_sensitivity_view_set_expert_role (self, role);
}

void
qb_sensitivity_view_activate_at (QbSensitivityView *self, double x, double y)
{
  graphene_rect_t left, right;
  int role, t;

  g_return_if_fail (QB_IS_SENSITIVITY_VIEW (self));
  split_rects (gtk_widget_get_width (GTK_WIDGET (self)), gtk_widget_get_height (GTK_WIDGET (self)),
               &left, &right);
  if ((role = header_hit (self, &left, x, y)) >= 0)
    {
      open_experts (self, (QbTensorRole) role);
      return;
    }
  t = tensor_at (self, x, y);
  if (t >= 0 && self->tensors[t].name)
    g_signal_emit (self, signals[TENSOR_ACTIVATED], 0, self->tensors[t].name);
}

static void
on_released (GtkGestureClick   *gesture,
             int                n_press,
             double             x,
             double             y,
             QbSensitivityView *self)
{
  qb_sensitivity_view_activate_at (self, x, y);
}

static gboolean
on_query_tooltip (GtkWidget         *widget,
                  int                x,
                  int                y,
                  gboolean           keyboard,
                  GtkTooltip        *tooltip,
                  QbSensitivityView *self)
{
  int t = tensor_at (self, x, y), role;
  g_autofree char *text = NULL;
  graphene_rect_t left, right;

  split_rects (gtk_widget_get_width (widget), gtk_widget_get_height (widget), &left, &right);
  if ((role = header_hit (self, &left, x, y)) >= 0)
    {
      g_autofree char *tip = role == QB_ROLE_OTHER
        ? g_strdup ("Click: back to the tensors (layers × roles)")
        : g_strdup_printf ("Click: each expert of %s alone (layers × experts)",
                           qb_tensor_role_name ((QbTensorRole) role));
      gtk_tooltip_set_text (tooltip, tip);
      return TRUE;
    }
  if (t < 0)
    return FALSE;
  text = describe_tensor (self, t);
  if (text == NULL)
    return FALSE;
  {
    g_autofree char *full = g_strdup_printf ("%s\nClick: select it in the plan", text);
    gtk_tooltip_set_text (tooltip, full);
  }
  return TRUE;
}

static void
qb_sensitivity_view_draw (QbChart *chart, cairo_t *cr, double width, double height,
                          const QbChartPalette *palette)
{
  QbSensitivityView *self = QB_SENSITIVITY_VIEW (chart);
  graphene_rect_t left, right;
  double lo, hi;
  g_autofree char *head = NULL;

  if (self->n_tensors == 0)
    {
      qb_chart_set_color (cr, &palette->fg, 0.6);
      qb_chart_text (cr, palette, "No sensitivity study to show.", width / 2, height / 2, 0.5, 0.5, 1.0);
      return;
    }
  cost_range (self, &lo, &hi);
  if (self->expert_role != QB_ROLE_OTHER)
    head = g_strdup_printf ("%s — KLD when one expert of %s alone is %s", self->title,
                            qb_tensor_role_name (self->expert_role), self->candidates[self->candidate]);
  else
    head = g_strdup_printf ("%s — KLD when one tensor alone is %s", self->title,
                            self->candidates[self->candidate]);
  qb_chart_set_color (cr, &palette->fg, 0.9);
  qb_chart_text (cr, palette, head, MARGIN, MARGIN, 0.0, 0.0, 0.9);
  split_rects (width, height, &left, &right);
  draw_heatmap (self, cr, palette, &left, lo, hi);
  draw_bars (self, cr, palette, &right, lo, hi);
}

static void
qb_sensitivity_view_chart_init (QbChartInterface *iface)
{
  iface->draw = qb_sensitivity_view_draw;
}

static void
qb_sensitivity_view_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  qb_chart_snapshot (QB_CHART (widget), snapshot);
}

static void
qb_sensitivity_view_finalize (GObject *object)
{
  clear (QB_SENSITIVITY_VIEW (object));
  G_OBJECT_CLASS (qb_sensitivity_view_parent_class)->finalize (object);
}

static void
qb_sensitivity_view_class_init (QbSensitivityViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = qb_sensitivity_view_finalize;
  widget_class->snapshot = qb_sensitivity_view_snapshot;

  /* A heatmap cell or bar was clicked: the tensor's name. */
  signals[TENSOR_ACTIVATED] =
    g_signal_new ("tensor-activated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
qb_sensitivity_view_init (QbSensitivityView *self)
{
  GtkGesture *click = gtk_gesture_click_new ();

  gtk_widget_set_size_request (GTK_WIDGET (self), 480, 240);
  self->expert_role = QB_ROLE_OTHER;
  g_signal_connect (click, "released", G_CALLBACK (on_released), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (click));
  gtk_widget_set_has_tooltip (GTK_WIDGET (self), TRUE);
  g_signal_connect (self, "query-tooltip", G_CALLBACK (on_query_tooltip), self);
}

GtkWidget *
qb_sensitivity_view_new (void)
{
  return g_object_new (QB_TYPE_SENSITIVITY_VIEW, NULL);
}
