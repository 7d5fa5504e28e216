//! Payload templates (`Parameters`, `ResultSelector`, `ItemSelector`, `Assign`): objects whose
//! `.$` keys take their value from a path or an intrinsic call, evaluated in a [`Scope`].

use std::cell::OnceCell;

use serde_json::{Map, Value};

use crate::intrinsic::{self, Call};
use crate::path::{JsonPath, PathError, Root};

/// What a template's `.$` expressions can read: the input (`$`), the context object (`$$`,
/// built only when a path asks for it) and the variables in scope (`$name`).
pub struct Scope<'a> {
    input: &'a Value,
    context: OnceCell<Value>,
    light_context: OnceCell<Value>,
    map_context: OnceCell<Value>,
    build_context: &'a dyn Fn(ContextPart) -> Value,
    vars: &'a Map<String, Value>,
}

/// How much of the context object `$$` a path needs built: all of it, all but the execution's
/// input, which may be large (a Map over the items of a big input would otherwise copy it once
/// per item) and which most paths never read, or only the Map item, which is all that a Map's
/// `ItemSelector` reads as a rule (`$$.Map.Item.Value`, once per item).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextPart {
    /// The whole context object.
    Whole,
    /// Everything but `Execution.Input`.
    WithoutInput,
    /// `Map` alone (an object without it outside a Map's `ItemSelector`).
    MapItem,
}

impl ContextPart {
    /// What `path` (from `$$`) can reach: a path whose first field is `Map` reads only the Map
    /// item; one whose first field is not `Execution`, or whose second is not `Input`, never
    /// reads the execution's input.
    fn of(path: &JsonPath) -> ContextPart {
        match (path.field(0), path.field(1)) {
            (Some("Map"), _) => ContextPart::MapItem,
            (Some(first), _) if first != "Execution" => ContextPart::WithoutInput,
            (Some(_), Some(second)) if second != "Input" => ContextPart::WithoutInput,
            _ => ContextPart::Whole,
        }
    }
}

impl std::fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope").field("input", self.input).finish_non_exhaustive()
    }
}

impl<'a> Scope<'a> {
    /// A scope over an input, a context object builder and the variables in scope.
    pub fn new(
        input: &'a Value,
        build_context: &'a dyn Fn(ContextPart) -> Value,
        vars: &'a Map<String, Value>,
    ) -> Self {
        Scope {
            input,
            context: OnceCell::new(),
            light_context: OnceCell::new(),
            map_context: OnceCell::new(),
            build_context,
            vars,
        }
    }

    /// The same context and variables over another input.
    pub fn with_input<'b>(&'b self, input: &'b Value) -> Scope<'b>
    where
        'a: 'b,
    {
        let copy = |cell: &OnceCell<Value>| {
            let copied = OnceCell::new();
            if let Some(v) = cell.get() {
                let _ = copied.set(v.clone());
            }
            copied
        };
        Scope {
            input,
            context: copy(&self.context),
            light_context: copy(&self.light_context),
            map_context: copy(&self.map_context),
            build_context: self.build_context,
            vars: self.vars,
        }
    }

    /// The state input `$` stands for.
    pub fn input(&self) -> &Value {
        self.input
    }

    /// The context object `$$` stands for.
    pub fn context(&self) -> &Value {
        self.context.get_or_init(|| (self.build_context)(ContextPart::Whole))
    }

    /// As much of the context object as `path` can reach.
    fn context_for(&self, path: &JsonPath) -> &Value {
        match (ContextPart::of(path), self.context.get(), self.light_context.get()) {
            (_, Some(whole), _) => whole,
            (ContextPart::MapItem, None, Some(light)) => light,
            (ContextPart::MapItem, None, None) => {
                self.map_context.get_or_init(|| (self.build_context)(ContextPart::MapItem))
            }
            (ContextPart::WithoutInput, None, _) => {
                self.light_context.get_or_init(|| (self.build_context)(ContextPart::WithoutInput))
            }
            (ContextPart::Whole, None, _) => self.context(),
        }
    }

    /// The variables in scope.
    pub fn vars(&self) -> &Map<String, Value> {
        self.vars
    }

    /// Evaluates a path against its root.
    pub fn resolve(&self, path: &JsonPath) -> Result<Value, EvalError> {
        let root = match path.root() {
            Root::Input => self.input,
            // A path that fails is evaluated again on the whole object, so that its error is
            // the one the whole object gives.
            Root::Context => match path.eval(self.context_for(path)) {
                Ok(v) => return Ok(v),
                Err(_) => self.context(),
            },
            Root::Variable(name) => {
                self.vars.get(name).ok_or_else(|| EvalError::UndefinedVariable(name.clone()))?
            }
        };
        path.eval(root).map_err(|e| match e {
            PathError::NotFound(message) => EvalError::Path { path: path.as_str().to_string(), message },
            PathError::UndefinedVariable(v) => EvalError::UndefinedVariable(v),
        })
    }

    /// The value a path's root stands for, as compact JSON (for error texts).
    pub fn root_json(&self, path: &JsonPath) -> String {
        let v = match path.root() {
            Root::Input => self.input,
            Root::Context => self.context(),
            Root::Variable(name) => match self.vars.get(name) {
                Some(v) => v,
                None => return "null".into(),
            },
        };
        serde_json::to_string(v).unwrap_or_default()
    }
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// A definite path selected nothing.
    Path {
        /// The path as written.
        path: String,
        /// Jayway's message.
        message: String,
    },
    /// An intrinsic function refused its arguments.
    Intrinsic(String),
    /// A `$name` path names no variable in scope.
    UndefinedVariable(String),
}

/// The value of a `.$` key: a path or an intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A path (`$.a`, `$$.Execution.Id`, `$var.field`).
    Path(JsonPath),
    /// An intrinsic call (`States.Format(...)`).
    Call(Call),
}

impl Expr {
    /// Parses the value of a `.$` key.
    pub fn parse(text: &str) -> Result<Expr, String> {
        if intrinsic::looks_like_call(text) {
            Call::parse(text).map(Expr::Call)
        } else if text.starts_with('$') {
            JsonPath::parse(text).map(Expr::Path).map_err(|e| e.to_string())
        } else {
            Err(format!("'{text}' is neither a path (starting with '$') nor an intrinsic function"))
        }
    }

    /// Evaluates the expression.
    pub fn eval(&self, scope: &Scope<'_>) -> Result<Value, EvalError> {
        match self {
            Expr::Path(p) => scope.resolve(p),
            Expr::Call(c) => c.eval(scope),
        }
    }
}

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// A value with no `.$` keys anywhere inside, used as it is.
    Lit(Value),
    /// An object with at least one `.$` key somewhere inside.
    Obj(Vec<(String, Template)>),
    /// An array holding such objects.
    Arr(Vec<Template>),
    /// The value of a `.$` key (`field` is the key as written, with its `.$`).
    Expr {
        /// The key as written.
        field: String,
        /// What it evaluates.
        expr: Expr,
    },
}

/// A template that failed: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The key as written (`value.$`).
    pub field: String,
    /// Why.
    pub error: EvalError,
}

impl Template {
    /// Compiles a template; errors name the key at fault.
    pub fn compile(v: &Value) -> Result<Template, String> {
        if !has_dollar_keys(v) {
            return Ok(Template::Lit(v.clone()));
        }
        match v {
            Value::Object(m) => {
                let mut out = Vec::with_capacity(m.len());
                for (k, v) in m {
                    if let Some(stripped) = k.strip_suffix(".$") {
                        let Value::String(text) = v else {
                            return Err(format!(
                                "the value of '{k}' must be a string holding a path or an intrinsic function"
                            ));
                        };
                        let expr = Expr::parse(text).map_err(|e| format!("'{k}': {e}"))?;
                        out.push((stripped.to_string(), Template::Expr { field: k.clone(), expr }));
                    } else {
                        out.push((k.clone(), Template::compile(v)?));
                    }
                }
                Ok(Template::Obj(out))
            }
            Value::Array(items) => {
                Ok(Template::Arr(items.iter().map(Template::compile).collect::<Result<_, _>>()?))
            }
            other => Ok(Template::Lit(other.clone())),
        }
    }

    /// Every expression in the template, with the key it sits under.
    pub fn exprs(&self) -> Vec<(&str, &Expr)> {
        let mut out = Vec::new();
        self.collect_exprs(&mut out);
        out
    }

    fn collect_exprs<'a>(&'a self, out: &mut Vec<(&'a str, &'a Expr)>) {
        match self {
            Template::Lit(_) => {}
            Template::Obj(entries) => entries.iter().for_each(|(_, t)| t.collect_exprs(out)),
            Template::Arr(items) => items.iter().for_each(|t| t.collect_exprs(out)),
            Template::Expr { field, expr } => out.push((field, expr)),
        }
    }

    /// Evaluates the template.
    pub fn eval(&self, scope: &Scope<'_>) -> Result<Value, TemplateError> {
        match self {
            Template::Lit(v) => Ok(v.clone()),
            Template::Obj(entries) => {
                let mut m = Map::with_capacity(entries.len());
                for (k, t) in entries {
                    m.insert(k.clone(), t.eval(scope)?);
                }
                Ok(Value::Object(m))
            }
            Template::Arr(items) => {
                Ok(Value::Array(items.iter().map(|t| t.eval(scope)).collect::<Result<_, _>>()?))
            }
            Template::Expr { field, expr } => {
                expr.eval(scope).map_err(|error| TemplateError { field: field.clone(), error })
            }
        }
    }
}

fn has_dollar_keys(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| k.ends_with(".$") || has_dollar_keys(v)),
        Value::Array(items) => items.iter().any(has_dollar_keys),
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn with_scope<T>(input: &Value, f: impl FnOnce(&Scope<'_>) -> T) -> T {
        let vars = Map::new();
        let ctx = |_| json!({"Execution": {"Id": "arn:x"}});
        let scope = Scope::new(input, &ctx, &vars);
        f(&scope)
    }

    #[test]
    fn dollar_keys_are_evaluated_and_others_copied() {
        let t = Template::compile(&json!({
            "a.$": "$.x",
            "b": {"c.$": "$$.Execution.Id", "d": [1, {"e.$": "States.Format('{}!', $.x)"}]},
            "f": "$.x"
        }))
        .expect("compiles");
        let out = with_scope(&json!({"x": "hi"}), |s| t.eval(s)).expect("evaluates");
        assert_eq!(out, json!({"a": "hi", "b": {"c": "arn:x", "d": [1, {"e": "hi!"}]}, "f": "$.x"}));
    }

    #[test]
    fn the_context_object_is_built_only_as_far_as_a_path_can_read() {
        let built = std::cell::RefCell::new(Vec::new());
        let ctx = |part: ContextPart| {
            built.borrow_mut().push(part);
            let map = json!({"Item": {"Index": 4}});
            if part == ContextPart::MapItem {
                return json!({ "Map": map });
            }
            let mut execution = json!({"Id": "arn:x"});
            if part == ContextPart::Whole {
                execution["Input"] = json!({"big": [1, 2, 3]});
            }
            json!({"Execution": execution, "Map": map})
        };
        let vars = Map::new();
        let input = json!({});
        let eval = |path: &str| {
            let scope = Scope::new(&input, &ctx, &vars);
            scope.resolve(&JsonPath::parse(path).unwrap())
        };
        assert_eq!(eval("$$.Map.Item.Index").unwrap(), json!(4));
        assert_eq!(eval("$$.Map").unwrap(), json!({"Item": {"Index": 4}}));
        assert_eq!(built.take(), vec![ContextPart::MapItem; 2]);
        assert_eq!(eval("$$.Execution.Id").unwrap(), json!("arn:x"));
        assert_eq!(built.take(), vec![ContextPart::WithoutInput]);
        // One scope builds each part once, and reads the Map item from a part it already built.
        let scope = Scope::new(&input, &ctx, &vars);
        let resolve = |path: &str| scope.resolve(&JsonPath::parse(path).unwrap()).unwrap();
        assert_eq!(
            [resolve("$$.Execution.Id"), resolve("$$.Map.Item.Index"), resolve("$$.Map.Item.Index")],
            [json!("arn:x"), json!(4), json!(4)]
        );
        assert_eq!(built.take(), vec![ContextPart::WithoutInput]);
        assert_eq!(eval("$$.Execution.Input.big[1]").unwrap(), json!(2));
        assert_eq!(eval("$$").unwrap()["Execution"]["Input"], json!({"big": [1, 2, 3]}));
        assert_eq!(eval("$$.Execution").unwrap()["Input"], json!({"big": [1, 2, 3]}));
        assert_eq!(built.take(), vec![ContextPart::Whole; 3]);
        // A path that finds nothing fails as it does on the whole object.
        let light = eval("$$.Map.Item.Nope").unwrap_err();
        let whole = |_| ctx(ContextPart::Whole);
        let on_whole =
            Scope::new(&input, &whole, &vars).resolve(&JsonPath::parse("$$.Map.Item.Nope").unwrap());
        assert_eq!(Err(light), on_whole);
    }

    #[test]
    fn a_missing_path_names_its_field() {
        let t = Template::compile(&json!({"value.$": "$.nope"})).expect("compiles");
        let err = with_scope(&json!({}), |s| t.eval(s)).expect_err("fails");
        assert_eq!(err.field, "value.$");
        assert!(matches!(err.error, EvalError::Path { .. }));
    }

    #[test]
    fn bad_expressions_are_refused_when_compiled() {
        assert!(Template::compile(&json!({"a.$": 1})).is_err());
        assert!(Template::compile(&json!({"a.$": "nope"})).is_err());
    }
}
