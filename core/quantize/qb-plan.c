/* SPDX-License-Identifier: MIT */
/* qb-plan.c — which format and method each tensor gets. */
#include "qb-plan.h"
#include "qb-json.h"
#include "qb-plan-private.h"

#include <json-glib/json-glib.h>
#include <fnmatch.h>
#include <string.h>

#define QB_PLAN_VERSION 1

G_DEFINE_QUARK (qb-plan-error-quark, qb_plan_error)

/* A rule: the public part first, so qb_plan_get_rule can hand it out. */
typedef struct {
  QbPlanRule    pub;
  char         *glob;
  GRegex       *regex;
} Rule;

typedef struct {
  char *tensor;
  char *format;
  char *method;
} Override;

struct _QbPlan
{
  GObject     parent_instance;

  char       *default_format;
  char       *default_method;
  char       *preset;
  gboolean    keep_1d;
  GPtrArray  *rules;        /* Rule* in order */
  GPtrArray  *overrides;    /* Override* in the order they were set */
  GHashTable *options;      /* char* -> char* */
};

G_DEFINE_FINAL_TYPE (QbPlan, qb_plan, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_DEFAULT_FORMAT,
  PROP_DEFAULT_METHOD,
  PROP_PRESET,
  PROP_KEEP_1D,
  N_PROPS
};

enum {
  SIGNAL_CHANGED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void
rule_free (gpointer data)
{
  Rule *r = data;

  g_free (r->pub.pattern);
  g_free (r->pub.format);
  g_free (r->pub.method);
  g_free (r->glob);
  if (r->regex)
    g_regex_unref (r->regex);
  g_free (r);
}

static void
override_free (gpointer data)
{
  Override *o = data;

  g_free (o->tensor);
  g_free (o->format);
  g_free (o->method);
  g_free (o);
}

static void
qb_plan_finalize (GObject *object)
{
  QbPlan *plan = QB_PLAN (object);

  g_free (plan->default_format);
  g_free (plan->default_method);
  g_free (plan->preset);
  g_ptr_array_unref (plan->rules);
  g_ptr_array_unref (plan->overrides);
  g_hash_table_unref (plan->options);
  G_OBJECT_CLASS (qb_plan_parent_class)->finalize (object);
}

static void
qb_plan_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  QbPlan *plan = QB_PLAN (object);

  switch (prop_id)
    {
    case PROP_DEFAULT_FORMAT:
      g_value_set_string (value, plan->default_format);
      break;
    case PROP_DEFAULT_METHOD:
      g_value_set_string (value, plan->default_method);
      break;
    case PROP_PRESET:
      g_value_set_string (value, plan->preset);
      break;
    case PROP_KEEP_1D:
      g_value_set_boolean (value, plan->keep_1d);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qb_plan_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  QbPlan *plan = QB_PLAN (object);

  switch (prop_id)
    {
    case PROP_DEFAULT_FORMAT:
      qb_plan_set_default_format (plan, g_value_get_string (value));
      break;
    case PROP_DEFAULT_METHOD:
      qb_plan_set_default_method (plan, g_value_get_string (value));
      break;
    case PROP_PRESET:
      qb_plan_set_preset (plan, g_value_get_string (value));
      break;
    case PROP_KEEP_1D:
      qb_plan_set_keep_1d (plan, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qb_plan_class_init (QbPlanClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = qb_plan_finalize;
  object_class->get_property = qb_plan_get_property;
  object_class->set_property = qb_plan_set_property;

  properties[PROP_DEFAULT_FORMAT] =
    g_param_spec_string ("default-format", NULL, NULL, "Q8_0",
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_DEFAULT_METHOD] =
    g_param_spec_string ("default-method", NULL, NULL, "rtn",
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_PRESET] =
    g_param_spec_string ("preset", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_KEEP_1D] =
    g_param_spec_boolean ("keep-1d", NULL, NULL, TRUE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * QbPlan::changed:
   *
   * Emitted after any edit (defaults, preset, rules, overrides, options),
   * so views can recompute totals.
   */
  signals[SIGNAL_CHANGED] =
    g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
qb_plan_init (QbPlan *plan)
{
  plan->default_format = g_strdup ("Q8_0");
  plan->default_method = g_strdup ("rtn");
  plan->keep_1d = TRUE;
  plan->rules = g_ptr_array_new_with_free_func (rule_free);
  plan->overrides = g_ptr_array_new_with_free_func (override_free);
  plan->options = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

static void
emit_changed (QbPlan *plan, guint prop)
{
  if (prop != PROP_0)
    g_object_notify_by_pspec (G_OBJECT (plan), properties[prop]);
  g_signal_emit (plan, signals[SIGNAL_CHANGED], 0);
}

/* Replaces *slot with value; TRUE when that changed anything. */
static gboolean
replace_string (char **slot, const char *value)
{
  if (g_strcmp0 (*slot, value) == 0)
    return FALSE;
  g_free (*slot);
  *slot = g_strdup (value);
  return TRUE;
}

QbPlan *
qb_plan_new (void)
{
  return g_object_new (QB_TYPE_PLAN, NULL);
}

const char *
qb_plan_get_default_format (QbPlan *plan)
{
  g_return_val_if_fail (QB_IS_PLAN (plan), NULL);
  return plan->default_format;
}

void
qb_plan_set_default_format (QbPlan *plan, const char *format)
{
  g_return_if_fail (QB_IS_PLAN (plan));
  g_return_if_fail (format != NULL);
  if (replace_string (&plan->default_format, format))
    emit_changed (plan, PROP_DEFAULT_FORMAT);
}

const char *
qb_plan_get_default_method (QbPlan *plan)
{
  g_return_val_if_fail (QB_IS_PLAN (plan), NULL);
  return plan->default_method;
}

void
qb_plan_set_default_method (QbPlan *plan, const char *method)
{
  g_return_if_fail (QB_IS_PLAN (plan));
  g_return_if_fail (method != NULL);
  if (replace_string (&plan->default_method, method))
    emit_changed (plan, PROP_DEFAULT_METHOD);
}

const char *
qb_plan_get_preset (QbPlan *plan)
{
  g_return_val_if_fail (QB_IS_PLAN (plan), NULL);
  return plan->preset;
}

void
qb_plan_set_preset (QbPlan *plan, const char *preset)
{
  g_return_if_fail (QB_IS_PLAN (plan));
  /* Store the canonical spelling of known presets. */
  if (preset != NULL && qb_preset_exists (preset))
    preset = qb_preset_canonical_name (preset);
  if (preset != NULL && *preset == '\0')
    preset = NULL;
  if (replace_string (&plan->preset, preset))
    emit_changed (plan, PROP_PRESET);
}

gboolean
qb_plan_get_keep_1d (QbPlan *plan)
{
  g_return_val_if_fail (QB_IS_PLAN (plan), FALSE);
  return plan->keep_1d;
}

void
qb_plan_set_keep_1d (QbPlan *plan, gboolean keep)
{
  g_return_if_fail (QB_IS_PLAN (plan));
  keep = !!keep;
  if (plan->keep_1d == keep)
    return;
  plan->keep_1d = keep;
  emit_changed (plan, PROP_KEEP_1D);
}

/* ---- rules --------------------------------------------------------------- */

guint
qb_plan_get_n_rules (QbPlan *plan)
{
  g_return_val_if_fail (QB_IS_PLAN (plan), 0);
  return plan->rules->len;
}

const QbPlanRule *
qb_plan_get_rule (QbPlan *plan, guint index)
{
  g_return_val_if_fail (QB_IS_PLAN (plan), NULL);
  g_return_val_if_fail (index < plan->rules->len, NULL);
  return &((Rule *) g_ptr_array_index (plan->rules, index))->pub;
}

static Rule *
rule_new (const char *pattern, QbRuleKind kind, const char *format,
          const char *method, GError **error)
{
  g_autoptr(GError) local = NULL;
  Rule *r = g_new0 (Rule, 1);

  r->pub.pattern = g_strdup (pattern);
  r->pub.kind = kind;
  r->pub.format = g_strdup (format);
  r->pub.method = method && *method ? g_strdup (method) : NULL;
  if (kind == QB_RULE_REGEX)
    {
      r->regex = g_regex_new (pattern, G_REGEX_OPTIMIZE, 0, &local);
      if (r->regex == NULL)
        {
          g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                       "rule '%s': not a valid regular expression: %s", pattern, local->message);
          rule_free (r);
          return NULL;
        }
    }
  else
    r->glob = g_strdup (pattern);
  return r;
}

gboolean
qb_plan_insert_rule (QbPlan *plan, int position, const char *pattern,
                     QbRuleKind kind, const char *format, const char *method,
                     GError **error)
{
  Rule *r;

  g_return_val_if_fail (QB_IS_PLAN (plan), FALSE);
  g_return_val_if_fail (pattern != NULL && format != NULL, FALSE);

  r = rule_new (pattern, kind, format, method, error);
  if (r == NULL)
    return FALSE;
  if (position < 0 || (guint) position >= plan->rules->len)
    g_ptr_array_add (plan->rules, r);
  else
    g_ptr_array_insert (plan->rules, position, r);
  emit_changed (plan, PROP_0);
  return TRUE;
}

void
qb_plan_remove_rule (QbPlan *plan, guint index)
{
  g_return_if_fail (QB_IS_PLAN (plan));
  g_return_if_fail (index < plan->rules->len);
  g_ptr_array_remove_index (plan->rules, index);
  emit_changed (plan, PROP_0);
}

void
qb_plan_move_rule (QbPlan *plan, guint from, guint to)
{
  gpointer r;

  g_return_if_fail (QB_IS_PLAN (plan));
  g_return_if_fail (from < plan->rules->len && to < plan->rules->len);
  if (from == to)
    return;
  r = g_ptr_array_steal_index (plan->rules, from);
  g_ptr_array_insert (plan->rules, to, r);
  emit_changed (plan, PROP_0);
}

static gboolean
rule_matches (const Rule *r, const char *name)
{
  if (r->regex)
    return g_regex_match (r->regex, name, 0, NULL);
  return fnmatch (r->glob, name, 0) == 0;
}

gboolean
qb_plan_rule_matches (QbPlan *plan, guint index, const char *tensor_name)
{
  g_return_val_if_fail (QB_IS_PLAN (plan), FALSE);
  g_return_val_if_fail (index < plan->rules->len, FALSE);
  return rule_matches (g_ptr_array_index (plan->rules, index), tensor_name);
}

/* ---- overrides and options ------------------------------------------------- */

static Override *
find_override (QbPlan *plan, const char *tensor, guint *index)
{
  for (guint i = 0; i < plan->overrides->len; i++)
    {
      Override *o = g_ptr_array_index (plan->overrides, i);
      if (strcmp (o->tensor, tensor) == 0)
        {
          if (index)
            *index = i;
          return o;
        }
    }
  return NULL;
}

void
qb_plan_set_override (QbPlan *plan, const char *tensor_name, const char *format,
                      const char *method)
{
  Override *o;

  g_return_if_fail (QB_IS_PLAN (plan));
  g_return_if_fail (tensor_name != NULL && format != NULL);
  if (method != NULL && *method == '\0')
    method = NULL;

  o = find_override (plan, tensor_name, NULL);
  if (o != NULL)
    {
      gboolean changed = replace_string (&o->format, format);
      changed |= replace_string (&o->method, method);
      if (!changed)
        return;
    }
  else
    {
      o = g_new0 (Override, 1);
      o->tensor = g_strdup (tensor_name);
      o->format = g_strdup (format);
      o->method = g_strdup (method);
      g_ptr_array_add (plan->overrides, o);
    }
  emit_changed (plan, PROP_0);
}

void
qb_plan_clear_override (QbPlan *plan, const char *tensor_name)
{
  guint index;

  g_return_if_fail (QB_IS_PLAN (plan));
  if (find_override (plan, tensor_name, &index) == NULL)
    return;
  g_ptr_array_remove_index (plan->overrides, index);
  emit_changed (plan, PROP_0);
}

gboolean
qb_plan_get_override (QbPlan *plan, const char *tensor_name, const char **format,
                      const char **method)
{
  Override *o;

  g_return_val_if_fail (QB_IS_PLAN (plan), FALSE);
  o = find_override (plan, tensor_name, NULL);
  if (o == NULL)
    return FALSE;
  if (format)
    *format = o->format;
  if (method)
    *method = o->method;
  return TRUE;
}

void
qb_plan_clear_overrides (QbPlan *plan)
{
  g_return_if_fail (QB_IS_PLAN (plan));
  if (plan->overrides->len == 0)
    return;
  g_ptr_array_set_size (plan->overrides, 0);
  emit_changed (plan, PROP_0);
}

guint
qb_plan_get_n_overrides (QbPlan *plan)
{
  g_return_val_if_fail (QB_IS_PLAN (plan), 0);
  return plan->overrides->len;
}

const char *
qb_plan_get_override_at (QbPlan *plan, guint index, const char **format,
                         const char **method)
{
  const Override *o;

  g_return_val_if_fail (QB_IS_PLAN (plan), NULL);
  g_return_val_if_fail (index < plan->overrides->len, NULL);
  o = g_ptr_array_index (plan->overrides, index);
  if (format)
    *format = o->format;
  if (method)
    *method = o->method;
  return o->tensor;
}

void
qb_plan_set_option (QbPlan *plan, const char *key, const char *value)
{
  const char *old;

  g_return_if_fail (QB_IS_PLAN (plan));
  g_return_if_fail (key != NULL);
  old = g_hash_table_lookup (plan->options, key);
  if (g_strcmp0 (old, value) == 0)
    return;
  if (value == NULL)
    g_hash_table_remove (plan->options, key);
  else
    g_hash_table_replace (plan->options, g_strdup (key), g_strdup (value));
  emit_changed (plan, PROP_0);
}

const char *
qb_plan_get_option (QbPlan *plan, const char *key)
{
  g_return_val_if_fail (QB_IS_PLAN (plan), NULL);
  return g_hash_table_lookup (plan->options, key);
}

GHashTable *
qb_plan_get_options (QbPlan *plan)
{
  g_return_val_if_fail (QB_IS_PLAN (plan), NULL);
  return plan->options;
}

QbPlan *
qb_plan_copy (QbPlan *plan)
{
  QbPlan *copy;

  g_return_val_if_fail (QB_IS_PLAN (plan), NULL);
  /* Field by field, so that a plan with names the registry does not know
   * (yet) still copies faithfully. */
  copy = qb_plan_new ();
  replace_string (&copy->default_format, plan->default_format);
  replace_string (&copy->default_method, plan->default_method);
  replace_string (&copy->preset, plan->preset);
  copy->keep_1d = plan->keep_1d;
  for (guint i = 0; i < plan->rules->len; i++)
    {
      const Rule *r = g_ptr_array_index (plan->rules, i);
      g_ptr_array_add (copy->rules, rule_new (r->pub.pattern, r->pub.kind, r->pub.format,
                                              r->pub.method, NULL));
    }
  for (guint i = 0; i < plan->overrides->len; i++)
    {
      const Override *o = g_ptr_array_index (plan->overrides, i);
      Override *c = g_new0 (Override, 1);
      c->tensor = g_strdup (o->tensor);
      c->format = g_strdup (o->format);
      c->method = g_strdup (o->method);
      g_ptr_array_add (copy->overrides, c);
    }
  {
    GHashTableIter iter;
    gpointer k, v;
    g_hash_table_iter_init (&iter, plan->options);
    while (g_hash_table_iter_next (&iter, &k, &v))
      g_hash_table_replace (copy->options, g_strdup (k), g_strdup (v));
  }
  return copy;
}

/* ---- JSON ------------------------------------------------------------------ */

static const char *
rule_kind_name (QbRuleKind kind)
{
  return kind == QB_RULE_REGEX ? "regex" : "glob";
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

char *
qb_plan_to_json (QbPlan *plan)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree gpointer *keys = NULL;
  guint n_keys = 0;

  g_return_val_if_fail (QB_IS_PLAN (plan), NULL);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, QB_PLAN_VERSION);
  json_builder_set_member_name (b, "default_format");
  json_builder_add_string_value (b, plan->default_format);
  json_builder_set_member_name (b, "default_method");
  json_builder_add_string_value (b, plan->default_method);
  json_builder_set_member_name (b, "preset");
  if (plan->preset)
    json_builder_add_string_value (b, plan->preset);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "keep_1d");
  json_builder_add_boolean_value (b, plan->keep_1d);

  json_builder_set_member_name (b, "rules");
  json_builder_begin_array (b);
  for (guint i = 0; i < plan->rules->len; i++)
    {
      const Rule *r = g_ptr_array_index (plan->rules, i);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "pattern");
      json_builder_add_string_value (b, r->pub.pattern);
      json_builder_set_member_name (b, "kind");
      json_builder_add_string_value (b, rule_kind_name (r->pub.kind));
      json_builder_set_member_name (b, "format");
      json_builder_add_string_value (b, r->pub.format);
      if (r->pub.method)
        {
          json_builder_set_member_name (b, "method");
          json_builder_add_string_value (b, r->pub.method);
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "overrides");
  json_builder_begin_array (b);
  for (guint i = 0; i < plan->overrides->len; i++)
    {
      const Override *o = g_ptr_array_index (plan->overrides, i);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "tensor");
      json_builder_add_string_value (b, o->tensor);
      json_builder_set_member_name (b, "format");
      json_builder_add_string_value (b, o->format);
      if (o->method)
        {
          json_builder_set_member_name (b, "method");
          json_builder_add_string_value (b, o->method);
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  /* Options sorted by key, so equal plans give equal text. */
  json_builder_set_member_name (b, "options");
  json_builder_begin_object (b);
  keys = g_hash_table_get_keys_as_array (plan->options, &n_keys);
  qsort (keys, n_keys, sizeof (gpointer), compare_strings);
  for (guint i = 0; i < n_keys; i++)
    {
      json_builder_set_member_name (b, keys[i]);
      json_builder_add_string_value (b, g_hash_table_lookup (plan->options, keys[i]));
    }
  json_builder_end_object (b);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_data (gen, NULL);
}

/* Reads an optional string member; FALSE (error set) when present but not
 * a string. */
static gboolean
get_string_member (JsonObject *obj, const char *member, const char *where,
                   gboolean required, const char **out, GError **error)
{
  JsonNode *node = json_object_get_member (obj, member);

  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      if (!required)
        return TRUE;
      g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                   "plan: %s%s is missing", where, member);
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                   "plan: %s%s must be a string", where, member);
      return FALSE;
    }
  *out = json_node_get_string (node);
  return TRUE;
}

static gboolean
check_format_name (const char *format, const char *where, GError **error)
{
  if (format == NULL || strcmp (format, QB_FORMAT_KEEP) == 0 || qb_format_find (format))
    return TRUE;
  g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
               "plan: %s: unknown format '%s'", where, format);
  return FALSE;
}

static gboolean
check_method_name (const char *method, const char *where, GError **error)
{
  if (method == NULL || qb_method_find (method))
    return TRUE;
  g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
               "plan: %s: unknown method '%s'", where, method);
  return FALSE;
}

static gboolean
load_rules (QbPlan *plan, JsonNode *node, GError **error)
{
  JsonArray *array;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID, "plan: rules must be an array");
      return FALSE;
    }
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *item = json_array_get_element (array, i);
      g_autofree char *where = g_strdup_printf ("rules[%u].", i);
      const char *pattern, *kind, *format, *method;
      QbRuleKind k = QB_RULE_GLOB;
      Rule *r;

      if (!JSON_NODE_HOLDS_OBJECT (item))
        {
          g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                       "plan: rules[%u] must be an object", i);
          return FALSE;
        }
      if (!get_string_member (json_node_get_object (item), "pattern", where, TRUE, &pattern, error)
          || !get_string_member (json_node_get_object (item), "kind", where, FALSE, &kind, error)
          || !get_string_member (json_node_get_object (item), "format", where, TRUE, &format, error)
          || !get_string_member (json_node_get_object (item), "method", where, FALSE, &method, error))
        return FALSE;
      if (kind != NULL && strcmp (kind, "regex") == 0)
        k = QB_RULE_REGEX;
      else if (kind != NULL && strcmp (kind, "glob") != 0)
        {
          g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                       "plan: %skind: '%s' is neither \"glob\" nor \"regex\"", where, kind);
          return FALSE;
        }
      where[strlen (where) - 1] = '\0';
      if (!check_format_name (format, where, error) || !check_method_name (method, where, error))
        return FALSE;
      r = rule_new (pattern, k, format, method, error);
      if (r == NULL)
        return FALSE;
      g_ptr_array_add (plan->rules, r);
    }
  return TRUE;
}

static gboolean
load_overrides (QbPlan *plan, JsonNode *node, GError **error)
{
  JsonArray *array;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID, "plan: overrides must be an array");
      return FALSE;
    }
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *item = json_array_get_element (array, i);
      g_autofree char *where = g_strdup_printf ("overrides[%u].", i);
      const char *tensor, *format, *method;
      Override *o;

      if (!JSON_NODE_HOLDS_OBJECT (item))
        {
          g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                       "plan: overrides[%u] must be an object", i);
          return FALSE;
        }
      if (!get_string_member (json_node_get_object (item), "tensor", where, TRUE, &tensor, error)
          || !get_string_member (json_node_get_object (item), "format", where, TRUE, &format, error)
          || !get_string_member (json_node_get_object (item), "method", where, FALSE, &method, error))
        return FALSE;
      where[strlen (where) - 1] = '\0';
      if (!check_format_name (format, where, error) || !check_method_name (method, where, error))
        return FALSE;
      if (find_override (plan, tensor, NULL) != NULL)
        {
          g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                       "plan: %s: a second override for tensor '%s'", where, tensor);
          return FALSE;
        }
      o = g_new0 (Override, 1);
      o->tensor = g_strdup (tensor);
      o->format = g_strdup (format);
      o->method = method && *method ? g_strdup (method) : NULL;
      g_ptr_array_add (plan->overrides, o);
    }
  return TRUE;
}

static gboolean
load_options (QbPlan *plan, JsonNode *node, GError **error)
{
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID, "plan: options must be an object");
      return FALSE;
    }
  json_object_iter_init (&iter, json_node_get_object (node));
  while (json_object_iter_next (&iter, &key, &value))
    {
      if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING)
        {
          g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                       "plan: options.%s must be a string", key);
          return FALSE;
        }
      g_hash_table_replace (plan->options, g_strdup (key), g_strdup (json_node_get_string (value)));
    }
  return TRUE;
}

static gboolean
load_version (JsonObject *obj, GError **error)
{
  JsonNode *node = json_object_get_member (obj, "version");
  gint64 version;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64)
    {
      g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                   "plan: \"version\" is missing or not an integer");
      return FALSE;
    }
  version = json_node_get_int (node);
  if (version > QB_PLAN_VERSION)
    {
      g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_VERSION,
                   "plan: written by a newer Quantbench (plan version %" G_GINT64_FORMAT
                   "; this one reads up to %d)", version, QB_PLAN_VERSION);
      return FALSE;
    }
  if (version < 1)
    {
      g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                   "plan: version %" G_GINT64_FORMAT " is not valid", version);
      return FALSE;
    }
  return TRUE;
}

QbPlan *
qb_plan_new_from_json (const char *json, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(QbPlan) plan = NULL;
  g_autoptr(GError) local = NULL;
  JsonObject *obj;
  JsonNode *root, *keep;
  const char *format, *method, *preset;

  g_return_val_if_fail (json != NULL, NULL);
  if (!qb_json_parser_load (parser, json, -1, QB_JSON_MAX_NESTING, "plan", &local))
    {
      g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID, "plan: not valid JSON: %s",
                   local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID, "plan: the top level must be an object");
      return NULL;
    }
  obj = json_node_get_object (root);
  if (!load_version (obj, error))
    return NULL;

  plan = qb_plan_new ();
  if (!get_string_member (obj, "default_format", "", FALSE, &format, error)
      || !get_string_member (obj, "default_method", "", FALSE, &method, error)
      || !get_string_member (obj, "preset", "", FALSE, &preset, error)
      || !check_format_name (format, "default_format", error)
      || !check_method_name (method, "default_method", error))
    return NULL;
  if (preset != NULL && !qb_preset_exists (preset))
    {
      g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                   "plan: preset: unknown preset '%s'", preset);
      return NULL;
    }
  if (format)
    replace_string (&plan->default_format, format);
  if (method)
    replace_string (&plan->default_method, method);
  replace_string (&plan->preset, qb_preset_canonical_name (preset));

  keep = json_object_get_member (obj, "keep_1d");
  if (keep != NULL)
    {
      if (!JSON_NODE_HOLDS_VALUE (keep) || json_node_get_value_type (keep) != G_TYPE_BOOLEAN)
        {
          g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID, "plan: keep_1d must be true or false");
          return NULL;
        }
      plan->keep_1d = json_node_get_boolean (keep);
    }

  if (!load_rules (plan, json_object_get_member (obj, "rules"), error)
      || !load_overrides (plan, json_object_get_member (obj, "overrides"), error)
      || !load_options (plan, json_object_get_member (obj, "options"), error))
    return NULL;
  return g_steal_pointer (&plan);
}

/* ---- resolution ------------------------------------------------------------ */

static gboolean
is_1d (const QbTensor *t)
{
  return t->ne[1] == 1 && t->ne[2] == 1 && t->ne[3] == 1;
}

/* A mixture's router: small, and a rounding error there changes which
 * experts a token goes to; llama-quantize never quantizes it either. */
static gboolean
is_router (const QbTensor *t)
{
  return t->role == QB_ROLE_FFN_GATE_INP || t->role == QB_ROLE_FFN_GATE_INP_SHEXP;
}

gboolean
qb_plan_keeps_1d_tensor (QbPlan *plan, const QbTensor *tensor)
{
  g_return_val_if_fail (QB_IS_PLAN (plan), FALSE);
  return plan->keep_1d && (is_1d (tensor) || is_router (tensor));
}

/* "rows of 172 values do not fit Q4_K (blocks of 256); Q5_0 does not fit
 * either (blocks of 32); using F16". */
static char *
describe_fallback (const QbFormat *requested, const QbFormat *chosen, gint64 n)
{
  GString *s = g_string_new (NULL);
  const QbFormat *f = requested;

  g_string_append_printf (s, "rows of %" G_GINT64_FORMAT " values do not fit %s (blocks of %u)",
                          n, requested->name, requested->block_size);
  for (int guard = 0; guard < 16 && f != NULL; guard++)
    {
      f = f->fallback ? qb_format_find (f->fallback) : qb_format_find ("F16");
      if (f == NULL || f == chosen)
        break;
      g_string_append_printf (s, "; %s does not fit either (blocks of %u)", f->name, f->block_size);
    }
  if (chosen)
    g_string_append_printf (s, "; using %s", chosen->name);
  else
    g_string_append (s, "; no format fits, kept as stored");
  return g_string_free (s, FALSE);
}

static void
choice_clear (QbTensorChoice *c)
{
  g_free (c->fallback_reason);
  g_free (c->source);
}

void
qb_plan_resolution_free (QbPlanResolution *res)
{
  if (res == NULL)
    return;
  for (guint i = 0; i < res->n_tensors; i++)
    choice_clear (&res->choices[i]);
  g_free (res->choices);
  g_free (res);
}

/* What the plan asks for one tensor, before fitting: format name and
 * method name (NULL: the default), and where that came from. */
static void
plan_ask (QbPlan *plan, QbPresetContext *preset, const QbTensor *t, guint index,
          const char **format, const char **method, char **source)
{
  *method = NULL;
  if (qb_plan_get_override (plan, t->name, format, method))
    {
      *source = g_strdup ("override");
      return;
    }
  if (plan->keep_1d && (is_1d (t) || is_router (t)))
    {
      *format = QB_FORMAT_KEEP;
      *source = g_strdup (is_1d (t) ? "1-D" : "router");
      return;
    }
  for (guint i = 0; i < plan->rules->len; i++)
    {
      const Rule *r = g_ptr_array_index (plan->rules, i);
      if (rule_matches (r, t->name))
        {
          *format = r->pub.format;
          *method = r->pub.method;
          *source = g_strdup_printf ("rule %u", i + 1);
          return;
        }
    }
  if (preset != NULL)
    {
      *format = qb_preset_choose (preset, index);
      *source = g_strdup_printf ("preset %s", plan->preset);
      return;
    }
  *format = plan->default_format;
  *source = g_strdup ("default");
}

static gboolean
resolve_one (QbPlan *plan, QbPresetContext *preset, QbModel *model, guint index,
             QbTensorChoice *c, GError **error)
{
  const QbTensor *t = qb_model_get_tensor (model, index);
  const char *format_name, *method_name;
  gint64 n_rows = qb_tensor_n_rows (t);

  plan_ask (plan, preset, t, index, &format_name, &method_name, &c->source);

  if (strcmp (format_name, QB_FORMAT_KEEP) != 0)
    {
      c->requested = qb_format_find (format_name);
      if (c->requested == NULL)
        {
          g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                       "%s (%s): unknown format '%s'", t->name, c->source, format_name);
          return FALSE;
        }
      if (method_name == NULL)
        method_name = plan->default_method;
      c->method = qb_method_find (method_name);
      if (c->method == NULL)
        {
          g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                       "%s (%s): unknown method '%s'", t->name, c->source, method_name);
          return FALSE;
        }
      c->format = qb_format_fit (c->requested, t->ne[0]);
      if (c->format != c->requested)
        c->fallback_reason = describe_fallback (c->requested, c->format, t->ne[0]);
      if (c->format != NULL && !qb_dtype_is_readable (t->dtype))
        {
          g_free (c->fallback_reason);
          c->fallback_reason = g_strdup_printf ("stored type %s cannot be read; kept as stored",
                                                qb_dtype_name (t->dtype));
          c->format = NULL;
        }
      if (c->format == NULL)
        c->method = NULL;
    }

  if (c->format == NULL)
    c->bytes = t->n_bytes;
  else if (!qb_format_tensor_bytes (c->format, t->ne[0], n_rows, &c->bytes))
    {
      g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                   "%s: the size in %s overflows", t->name, c->format->name);
      return FALSE;
    }
  c->bpw = t->n_params > 0 ? c->bytes * 8.0 / t->n_params : 0;
  return TRUE;
}

QbPlanResolution *
qb_plan_resolve (QbPlan *plan, QbModel *model, GError **error)
{
  g_autoptr(QbPlanResolution) res = NULL;
  g_autoptr(QbPresetContext) preset = NULL;

  g_return_val_if_fail (QB_IS_PLAN (plan), NULL);
  g_return_val_if_fail (QB_IS_MODEL (model), NULL);

  if (plan->preset != NULL)
    {
      if (!qb_preset_exists (plan->preset))
        {
          g_set_error (error, QB_PLAN_ERROR, QB_PLAN_ERROR_INVALID,
                       "unknown preset '%s'", plan->preset);
          return NULL;
        }
      preset = qb_preset_context_new (plan->preset, model);
    }

  res = g_new0 (QbPlanResolution, 1);
  res->n_tensors = qb_model_get_n_tensors (model);
  res->choices = g_new0 (QbTensorChoice, MAX (res->n_tensors, 1));
  for (guint i = 0; i < res->n_tensors; i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      QbTensorChoice *c = &res->choices[i];

      if (!resolve_one (plan, preset, model, i, c, error))
        return NULL;
      res->original_bytes += t->n_bytes;
      res->quantized_bytes += c->bytes;
      res->n_params += t->n_params;
      if (c->fallback_reason != NULL)
        res->n_fallbacks++;
    }
  res->bpw = res->n_params > 0 ? res->quantized_bytes * 8.0 / res->n_params : 0;
  return g_steal_pointer (&res);
}

int
qb_plan_resolution_llama_ftype (QbPlan *plan, QbModel *model, const QbPlanResolution *res)
{
  g_autoptr(GHashTable) params = NULL;
  const char *best = NULL;
  gint64 best_params = 0;

  g_return_val_if_fail (QB_IS_PLAN (plan), -1);
  if (plan->preset != NULL && qb_preset_llama_ftype (plan->preset) >= 0)
    return qb_preset_llama_ftype (plan->preset);

  /* Otherwise the ggml type holding the most weights among quantized
   * matrices names the file. */
  params = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < res->n_tensors; i++)
    {
      const QbTensorChoice *c = &res->choices[i];
      const QbTensor *t = qb_model_get_tensor (model, i);
      gint64 sum;

      if (c->format == NULL || qb_llama_ftype_for_format (c->format->name) < 0 || is_1d (t))
        continue;
      sum = GPOINTER_TO_SIZE (g_hash_table_lookup (params, c->format->name)) + t->n_params;
      g_hash_table_insert (params, (gpointer) c->format->name, GSIZE_TO_POINTER (sum));
      if (best == NULL || sum > best_params
          || (sum == best_params && strcmp (c->format->name, best) < 0))
        {
          best = c->format->name;
          best_params = sum;
        }
    }
  return best ? qb_llama_ftype_for_format (best) : -1;
}
