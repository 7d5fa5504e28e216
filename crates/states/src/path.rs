//! JSONPath as Step Functions reads it: reference paths (`$.a['b'][0]`), full paths with
//! wildcards, slices, unions, filters and deep scan, rooted at the input (`$`), the context
//! object (`$$`) or a variable (`$name`).
//!
//! AWS evaluates paths with Jayway JsonPath; the error texts below follow Jayway's so that
//! the causes of `States.Runtime` failures read as they do on AWS.

use std::fmt;

use serde_json::{Map, Value};

/// Where a path starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$`: the state's input.
    Input,
    /// `$$`: the context object.
    Context,
    /// `$name`: a variable set by `Assign`.
    Variable(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Child(String),
    Index(i64),
    Wildcard,
    Slice { start: Option<i64>, end: Option<i64>, step: Option<i64> },
    Union(Vec<Sel>),
    Filter(Box<Filter>),
    Deep(Box<Seg>),
    Length,
}

#[derive(Debug, Clone, PartialEq)]
enum Sel {
    Name(String),
    Index(i64),
}

/// A parsed JSONPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    root: Root,
    segs: Vec<Seg>,
    definite: bool,
}

/// Why a path could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath '{path}': {reason}")]
pub struct PathSyntaxError {
    /// The path as written.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Why a definite path selected nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Jayway's `PathNotFoundException`, with its message.
    #[error("{0}")]
    NotFound(String),
    /// The path names a variable that no `Assign` has set.
    #[error("The variable '{0}' is not defined")]
    UndefinedVariable(String),
}

/// What a path selected.
#[derive(Debug)]
pub enum Selected<'a> {
    /// A definite path's single value.
    One(&'a Value),
    /// An indefinite path's matches, in document order.
    Many(Vec<&'a Value>),
    /// A computed value (`length()`).
    Owned(Value),
}

impl Selected<'_> {
    /// The selection as an owned JSON value (an array for indefinite paths).
    pub fn into_value(self) -> Value {
        match self {
            Selected::One(v) => v.clone(),
            Selected::Many(vs) => Value::Array(vs.into_iter().cloned().collect()),
            Selected::Owned(v) => v,
        }
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl JsonPath {
    /// Parses a path. `$`, `$$` and `$name` roots are accepted.
    pub fn parse(text: &str) -> Result<JsonPath, PathSyntaxError> {
        Parser::new(text).parse()
    }

    /// Parses a reference path: a path that names one node (no wildcards, slices, unions,
    /// filters or deep scan), as `ResultPath` and Choice `Variable` require.
    pub fn parse_reference(text: &str) -> Result<JsonPath, PathSyntaxError> {
        let path = JsonPath::parse(text)?;
        if !path.definite || path.segs.iter().any(|s| matches!(s, Seg::Length)) {
            return Err(PathSyntaxError {
                path: text.to_string(),
                reason: "a reference path may not contain wildcards, slices, unions, filters or '..'"
                    .to_string(),
            });
        }
        Ok(path)
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The root this path starts at.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// True when the path selects at most one node (no wildcards, slices, unions, filters
    /// or deep scan).
    pub fn is_definite(&self) -> bool {
        self.definite
    }

    /// True for the bare root (`$`, `$$` or `$name`).
    pub fn is_root(&self) -> bool {
        self.segs.is_empty()
    }

    /// The name of the `i`-th step, when it is a child step (`.name` or `['name']`).
    pub fn field(&self, i: usize) -> Option<&str> {
        match self.segs.get(i)? {
            Seg::Child(n) => Some(n),
            _ => None,
        }
    }

    /// The field names of a reference path made only of child steps, if it is one.
    pub fn field_names(&self) -> Option<Vec<&str>> {
        self.segs
            .iter()
            .map(|s| match s {
                Seg::Child(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Jayway's normalized form, `$['a'][0]`, used in error texts.
    pub fn normalized(&self) -> String {
        normalized(&self.segs)
    }

    /// Selects from `root` (the value the path's root stands for).
    pub fn select<'a>(&self, root: &'a Value) -> Result<Selected<'a>, PathError> {
        if self.definite {
            let mut cur = root;
            for (i, seg) in self.segs.iter().enumerate() {
                let last = i + 1 == self.segs.len();
                match seg {
                    Seg::Child(name) => match cur {
                        Value::Object(map) => match map.get(name) {
                            Some(v) => cur = v,
                            None if last => {
                                return Err(PathError::NotFound(format!(
                                    "No results for path: {}",
                                    self.normalized()
                                )));
                            }
                            None => {
                                return Err(PathError::NotFound(format!(
                                    "Missing property in path {}",
                                    normalized(&self.segs[..=i])
                                )));
                            }
                        },
                        other => {
                            return Err(PathError::NotFound(format!(
                                "Expected to find an object with property {} in path {} but found '{}'. \
                                 This is not a json object according to the JsonProvider: \
                                 'com.jayway.jsonpath.spi.json.JacksonJsonNodeJsonProvider'.",
                                normalized(std::slice::from_ref(seg)),
                                normalized(&self.segs[..i]),
                                java_type_name(other)
                            )));
                        }
                    },
                    Seg::Index(idx) => match cur {
                        Value::Array(items) => match index_of(*idx, items.len()) {
                            Some(k) => cur = &items[k],
                            None => {
                                return Err(PathError::NotFound(format!(
                                    "No results for path: {}",
                                    self.normalized()
                                )));
                            }
                        },
                        other => {
                            return Err(PathError::NotFound(format!(
                                "Filter: {} can only be applied to arrays. Current context is: {}",
                                normalized(std::slice::from_ref(seg)),
                                compact(other)
                            )));
                        }
                    },
                    Seg::Length => {
                        return match cur {
                            Value::Array(a) => Ok(Selected::Owned(Value::from(a.len()))),
                            Value::Object(m) => Ok(Selected::Owned(Value::from(m.len()))),
                            Value::String(s) => Ok(Selected::Owned(Value::from(s.chars().count()))),
                            _ => Err(PathError::NotFound(format!(
                                "Aggregation function attempted to calculate value using empty array \
                                 in path {}",
                                self.normalized()
                            ))),
                        };
                    }
                    _ => unreachable!("definite paths hold only child, index and length steps"),
                }
            }
            Ok(Selected::One(cur))
        } else {
            let mut current: Vec<&'a Value> = vec![root];
            for seg in &self.segs {
                if matches!(seg, Seg::Length) {
                    return Ok(Selected::Owned(Value::from(current.len())));
                }
                let mut next = Vec::new();
                for v in current {
                    apply_seg(seg, v, root, &mut next);
                }
                current = next;
            }
            Ok(Selected::Many(current))
        }
    }

    /// Selects and clones; indefinite paths give an array of their matches.
    pub fn eval(&self, root: &Value) -> Result<Value, PathError> {
        self.select(root).map(Selected::into_value)
    }

    /// True when a definite path selects a node (Choice `IsPresent`).
    pub fn exists(&self, root: &Value) -> bool {
        match self.select(root) {
            Ok(Selected::Many(v)) => !v.is_empty(),
            Ok(_) => true,
            Err(_) => false,
        }
    }

    /// Writes `value` where this reference path points inside `target` (ResultPath),
    /// creating objects for missing fields. `$` replaces the whole target.
    pub fn set(&self, target: &mut Value, value: Value) -> Result<(), String> {
        let mut cur = target;
        let n = self.segs.len();
        for (i, seg) in self.segs.iter().enumerate() {
            let last = i + 1 == n;
            match seg {
                Seg::Child(name) => {
                    let Value::Object(map) = cur else {
                        return Err(format!("cannot set field '{name}' on a non-object value"));
                    };
                    if last {
                        map.insert(name.clone(), value);
                        return Ok(());
                    }
                    cur = map.entry(name.clone()).or_insert_with(|| Value::Object(Map::new()));
                    if !cur.is_object() && !cur.is_array() {
                        return Err(format!("field '{name}' is not an object"));
                    }
                }
                Seg::Index(idx) => {
                    let Value::Array(items) = cur else {
                        return Err(format!("cannot index [{idx}] into a non-array value"));
                    };
                    let Some(k) = index_of(*idx, items.len()) else {
                        return Err(format!("index [{idx}] is out of bounds"));
                    };
                    if last {
                        items[k] = value;
                        return Ok(());
                    }
                    cur = &mut items[k];
                }
                _ => return Err("only reference paths can be written to".to_string()),
            }
        }
        *cur = value;
        Ok(())
    }
}

fn index_of(idx: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let k = if idx < 0 { len + idx } else { idx };
    if k >= 0 && k < len { Some(k as usize) } else { None }
}

fn normalized(segs: &[Seg]) -> String {
    let mut s = String::from("$");
    for seg in segs {
        match seg {
            Seg::Child(n) => {
                s.push_str("['");
                s.push_str(n);
                s.push_str("']");
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
            Seg::Wildcard => s.push_str("[*]"),
            Seg::Slice { start, end, step } => {
                s.push('[');
                if let Some(v) = start {
                    s.push_str(&v.to_string());
                }
                s.push(':');
                if let Some(v) = end {
                    s.push_str(&v.to_string());
                }
                if let Some(v) = step {
                    s.push(':');
                    s.push_str(&v.to_string());
                }
                s.push(']');
            }
            Seg::Union(sels) => {
                let parts: Vec<String> = sels
                    .iter()
                    .map(|x| match x {
                        Sel::Name(n) => format!("'{n}'"),
                        Sel::Index(i) => i.to_string(),
                    })
                    .collect();
                s.push('[');
                s.push_str(&parts.join(","));
                s.push(']');
            }
            Seg::Filter(_) => s.push_str("[?]"),
            Seg::Deep(inner) => {
                s.push_str("..");
                let rest = normalized(std::slice::from_ref(inner));
                s.push_str(&rest[1..]);
            }
            Seg::Length => s.push_str(".length()"),
        }
    }
    s
}

fn java_type_name(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "java.util.ArrayList",
        Value::String(_) => "java.lang.String",
        Value::Number(n) if n.is_f64() => "java.lang.Double",
        Value::Number(_) => "java.lang.Integer",
        Value::Bool(_) => "java.lang.Boolean",
        Value::Null => "null",
        Value::Object(_) => "java.util.LinkedHashMap",
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn apply_seg<'a>(seg: &Seg, v: &'a Value, doc: &'a Value, out: &mut Vec<&'a Value>) {
    match seg {
        Seg::Child(name) => {
            if let Value::Object(m) = v
                && let Some(x) = m.get(name)
            {
                out.push(x);
            }
        }
        Seg::Index(i) => {
            if let Value::Array(a) = v
                && let Some(k) = index_of(*i, a.len())
            {
                out.push(&a[k]);
            }
        }
        Seg::Wildcard => match v {
            Value::Array(a) => out.extend(a.iter()),
            Value::Object(m) => out.extend(m.values()),
            _ => {}
        },
        Seg::Slice { start, end, step } => {
            if let Value::Array(a) = v {
                for k in slice_indices(a.len(), *start, *end, *step) {
                    out.push(&a[k]);
                }
            }
        }
        Seg::Union(sels) => {
            for sel in sels {
                match (sel, v) {
                    (Sel::Name(n), Value::Object(m)) => {
                        if let Some(x) = m.get(n) {
                            out.push(x);
                        }
                    }
                    (Sel::Index(i), Value::Array(a)) => {
                        if let Some(k) = index_of(*i, a.len()) {
                            out.push(&a[k]);
                        }
                    }
                    _ => {}
                }
            }
        }
        Seg::Filter(f) => match v {
            Value::Array(a) => {
                for item in a {
                    if f.test(item, doc) {
                        out.push(item);
                    }
                }
            }
            Value::Object(_) if f.test(v, doc) => out.push(v),
            _ => {}
        },
        Seg::Deep(inner) => deep(inner, v, doc, out),
        Seg::Length => {}
    }
}

fn deep<'a>(inner: &Seg, v: &'a Value, doc: &'a Value, out: &mut Vec<&'a Value>) {
    apply_seg(inner, v, doc, out);
    match v {
        Value::Array(a) => {
            for x in a {
                deep(inner, x, doc, out);
            }
        }
        Value::Object(m) => {
            for x in m.values() {
                deep(inner, x, doc, out);
            }
        }
        _ => {}
    }
}

fn slice_indices(len: usize, start: Option<i64>, end: Option<i64>, step: Option<i64>) -> Vec<usize> {
    let len = len as i64;
    let step = step.unwrap_or(1);
    if step <= 0 {
        return Vec::new();
    }
    let norm = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
    let s = start.map(norm).unwrap_or(0);
    let e = end.map(norm).unwrap_or(len);
    let mut out = Vec::new();
    let mut k = s;
    while k < e {
        out.push(k as usize);
        k += step;
    }
    out
}

/// A filter expression `?(...)`.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Or(Vec<Filter>),
    And(Vec<Filter>),
    Not(Box<Filter>),
    Exists(Operand),
    Cmp(Operand, CmpOp, Operand),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Nin,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Current(Vec<Seg>),
    Doc(Vec<Seg>),
    Lit(Value),
}

impl Operand {
    fn resolve<'a>(&'a self, cur: &'a Value, doc: &'a Value) -> Option<Value> {
        let (start, segs) = match self {
            Operand::Lit(v) => return Some(v.clone()),
            Operand::Current(s) => (cur, s),
            Operand::Doc(s) => (doc, s),
        };
        let definite = segs.iter().all(|s| matches!(s, Seg::Child(_) | Seg::Index(_) | Seg::Length));
        let mut current = vec![start];
        for seg in segs {
            if matches!(seg, Seg::Length) {
                let v = current.first()?;
                return match v {
                    Value::Array(a) if definite => Some(Value::from(a.len())),
                    Value::Object(m) if definite => Some(Value::from(m.len())),
                    Value::String(s) if definite => Some(Value::from(s.chars().count())),
                    _ if !definite => Some(Value::from(current.len())),
                    _ => None,
                };
            }
            let mut next = Vec::new();
            for v in current {
                apply_seg(seg, v, doc, &mut next);
            }
            current = next;
        }
        if definite {
            current.first().map(|v| (*v).clone())
        } else {
            Some(Value::Array(current.into_iter().cloned().collect()))
        }
    }
}

impl Filter {
    fn test(&self, cur: &Value, doc: &Value) -> bool {
        match self {
            Filter::Or(fs) => fs.iter().any(|f| f.test(cur, doc)),
            Filter::And(fs) => fs.iter().all(|f| f.test(cur, doc)),
            Filter::Not(f) => !f.test(cur, doc),
            Filter::Exists(op) => match op.resolve(cur, doc) {
                Some(Value::Bool(b)) if matches!(op, Operand::Lit(_)) => b,
                Some(_) => true,
                None => false,
            },
            Filter::Cmp(a, op, b) => {
                let (Some(x), Some(y)) = (a.resolve(cur, doc), b.resolve(cur, doc)) else {
                    return matches!(op, CmpOp::Ne | CmpOp::Nin);
                };
                compare(&x, *op, &y)
            }
        }
    }
}

fn compare(x: &Value, op: CmpOp, y: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (x, y) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match op {
        CmpOp::Eq => ord == Some(Ordering::Equal) || (ord.is_none() && x == y),
        CmpOp::Ne => !(ord == Some(Ordering::Equal) || (ord.is_none() && x == y)),
        CmpOp::Lt => ord == Some(Ordering::Less),
        CmpOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => ord == Some(Ordering::Greater),
        CmpOp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
        CmpOp::In => match y {
            Value::Array(a) => a.iter().any(|e| compare(x, CmpOp::Eq, e)),
            _ => false,
        },
        CmpOp::Nin => match y {
            Value::Array(a) => !a.iter().any(|e| compare(x, CmpOp::Eq, e)),
            _ => true,
        },
    }
}

struct Parser<'a> {
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser { text, chars: text.chars().collect(), pos: 0 }
    }

    fn err(&self, reason: impl Into<String>) -> PathSyntaxError {
        PathSyntaxError { path: self.text.to_string(), reason: reason.into() }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(c) if c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn parse(mut self) -> Result<JsonPath, PathSyntaxError> {
        if !self.eat('$') {
            return Err(self.err("a path must start with '$'"));
        }
        let root = if self.eat('$') {
            Root::Context
        } else if matches!(self.peek(), Some(c) if is_var_start(c)) {
            let start = self.pos;
            while matches!(self.peek(), Some(c) if is_var_char(c)) {
                self.pos += 1;
            }
            Root::Variable(self.chars[start..self.pos].iter().collect())
        } else {
            Root::Input
        };
        let segs = self.segments(false)?;
        if self.pos != self.chars.len() {
            return Err(
                self.err(format!("unexpected '{}'", self.chars[self.pos..].iter().collect::<String>()))
            );
        }
        let definite = segs.iter().all(|s| matches!(s, Seg::Child(_) | Seg::Index(_) | Seg::Length));
        if let Some(i) = segs.iter().position(|s| matches!(s, Seg::Length))
            && i + 1 != segs.len()
        {
            return Err(self.err("length() must be the last step"));
        }
        Ok(JsonPath { text: self.text.to_string(), root, segs, definite })
    }

    /// Steps until the end, or (inside a filter) until a character that ends an operand.
    fn segments(&mut self, in_filter: bool) -> Result<Vec<Seg>, PathSyntaxError> {
        let mut segs = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    if self.peek_at(1) == Some('.') {
                        self.pos += 2;
                        let inner = if self.peek() == Some('[') {
                            self.bracket()?
                        } else if self.eat('*') {
                            Seg::Wildcard
                        } else {
                            Seg::Child(self.dot_name(in_filter)?)
                        };
                        segs.push(Seg::Deep(Box::new(inner)));
                    } else {
                        self.pos += 1;
                        if self.peek() == Some('[') {
                            // Jayway reads `$.[...]` as `$[...]`.
                            segs.push(self.bracket()?);
                        } else if self.eat('*') {
                            segs.push(Seg::Wildcard);
                        } else {
                            let name = self.dot_name(in_filter)?;
                            if name == "length()" || name == "size()" {
                                segs.push(Seg::Length);
                            } else {
                                segs.push(Seg::Child(name));
                            }
                        }
                    }
                }
                Some('[') => segs.push(self.bracket()?),
                _ => return Ok(segs),
            }
        }
    }

    fn dot_name(&mut self, in_filter: bool) -> Result<String, PathSyntaxError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == '.' || c == '[' {
                break;
            }
            if in_filter && (c.is_whitespace() || matches!(c, ')' | '=' | '!' | '<' | '>' | '&' | '|' | ','))
            {
                // `length()` keeps its parentheses.
                if c == ')' && self.chars[start..self.pos].iter().collect::<String>().ends_with('(') {
                    self.pos += 1;
                    continue;
                }
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err("a field name is missing after '.'"));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn quoted(&mut self) -> Result<String, PathSyntaxError> {
        let quote = self.peek().ok_or_else(|| self.err("unterminated quote"))?;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated quoted name")),
                Some('\\') if self.peek_at(1) == Some(quote) => {
                    s.push(quote);
                    self.pos += 2;
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn int(&mut self) -> Result<Option<i64>, PathSyntaxError> {
        self.skip_ws();
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == start {
            return Ok(None);
        }
        let s: String = self.chars[start..self.pos].iter().collect();
        let v = s.parse::<i64>().map_err(|_| self.err(format!("'{s}' is not an integer")))?;
        self.skip_ws();
        Ok(Some(v))
    }

    fn bracket(&mut self) -> Result<Seg, PathSyntaxError> {
        self.pos += 1; // '['
        self.skip_ws();
        let seg = match self.peek() {
            Some('*') => {
                self.pos += 1;
                self.skip_ws();
                Seg::Wildcard
            }
            Some('?') => {
                self.pos += 1;
                self.skip_ws();
                if !self.eat('(') {
                    return Err(self.err("a filter must look like [?(...)]"));
                }
                let f = self.filter_or()?;
                self.skip_ws();
                if !self.eat(')') {
                    return Err(self.err("a filter is missing its ')'"));
                }
                self.skip_ws();
                Seg::Filter(Box::new(f))
            }
            Some('\'') | Some('"') => {
                let mut names = vec![self.quoted()?];
                self.skip_ws();
                while self.eat(',') {
                    self.skip_ws();
                    names.push(self.quoted()?);
                    self.skip_ws();
                }
                if names.len() == 1 {
                    Seg::Child(names.remove(0))
                } else {
                    Seg::Union(names.into_iter().map(Sel::Name).collect())
                }
            }
            _ => {
                let first = self.int()?;
                if self.peek() == Some(':') {
                    self.pos += 1;
                    let end = self.int()?;
                    let step = if self.eat(':') { self.int()? } else { None };
                    Seg::Slice { start: first, end, step }
                } else if self.peek() == Some(',') {
                    let mut idx = vec![Sel::Index(first.ok_or_else(|| self.err("an index is missing"))?)];
                    while self.eat(',') {
                        let i = self.int()?.ok_or_else(|| self.err("an index is missing"))?;
                        idx.push(Sel::Index(i));
                    }
                    Seg::Union(idx)
                } else {
                    Seg::Index(first.ok_or_else(|| self.err("an index, a name or '*' is expected in '[]'"))?)
                }
            }
        };
        if !self.eat(']') {
            return Err(self.err("a ']' is missing"));
        }
        Ok(seg)
    }

    fn filter_or(&mut self) -> Result<Filter, PathSyntaxError> {
        let mut parts = vec![self.filter_and()?];
        loop {
            self.skip_ws();
            if self.peek() == Some('|') && self.peek_at(1) == Some('|') {
                self.pos += 2;
                parts.push(self.filter_and()?);
            } else {
                break;
            }
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Filter::Or(parts) })
    }

    fn filter_and(&mut self) -> Result<Filter, PathSyntaxError> {
        let mut parts = vec![self.filter_unary()?];
        loop {
            self.skip_ws();
            if self.peek() == Some('&') && self.peek_at(1) == Some('&') {
                self.pos += 2;
                parts.push(self.filter_unary()?);
            } else {
                break;
            }
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Filter::And(parts) })
    }

    fn filter_unary(&mut self) -> Result<Filter, PathSyntaxError> {
        self.skip_ws();
        if self.peek() == Some('!') && self.peek_at(1) != Some('=') {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.filter_unary()?)));
        }
        if self.eat('(') {
            let f = self.filter_or()?;
            self.skip_ws();
            if !self.eat(')') {
                return Err(self.err("a ')' is missing in the filter"));
            }
            return Ok(f);
        }
        let left = self.operand()?;
        self.skip_ws();
        let op = match (self.peek(), self.peek_at(1)) {
            (Some('='), Some('=')) => Some((CmpOp::Eq, 2)),
            (Some('!'), Some('=')) => Some((CmpOp::Ne, 2)),
            (Some('<'), Some('=')) => Some((CmpOp::Le, 2)),
            (Some('>'), Some('=')) => Some((CmpOp::Ge, 2)),
            (Some('<'), _) => Some((CmpOp::Lt, 1)),
            (Some('>'), _) => Some((CmpOp::Gt, 1)),
            (Some('i'), Some('n')) => Some((CmpOp::In, 2)),
            (Some('n'), Some('i')) if self.peek_at(2) == Some('n') => Some((CmpOp::Nin, 3)),
            _ => None,
        };
        match op {
            None => Ok(Filter::Exists(left)),
            Some((op, width)) => {
                self.pos += width;
                let right = self.operand()?;
                Ok(Filter::Cmp(left, op, right))
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, PathSyntaxError> {
        self.skip_ws();
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                Ok(Operand::Current(self.segments(true)?))
            }
            Some('$') => {
                self.pos += 1;
                Ok(Operand::Doc(self.segments(true)?))
            }
            Some('\'') | Some('"') => Ok(Operand::Lit(Value::String(self.quoted()?))),
            Some('[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.eat(']') {
                        break;
                    }
                    match self.operand()? {
                        Operand::Lit(v) => items.push(v),
                        _ => return Err(self.err("a list in a filter may hold only literals")),
                    }
                    self.skip_ws();
                    self.eat(',');
                }
                Ok(Operand::Lit(Value::Array(items)))
            }
            _ => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
                {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                let v = match word.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    w => serde_json::from_str::<Value>(w)
                        .ok()
                        .filter(Value::is_number)
                        .ok_or_else(|| self.err(format!("'{w}' is not a value in the filter")))?,
                };
                Ok(Operand::Lit(v))
            }
        }
    }
}

fn is_var_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_var_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(path: &str, v: &Value) -> Result<Value, PathError> {
        JsonPath::parse(path).expect("parses").eval(v)
    }

    #[test]
    fn reference_paths_select_one_node() {
        let v = json!({"a": {"b": [10, 20, 30]}, "x y": 1, "Test\\\"\"Name\"": "ok"});
        assert_eq!(eval("$.a.b[1]", &v), Ok(json!(20)));
        assert_eq!(eval("$.a.b[-1]", &v), Ok(json!(30)));
        assert_eq!(eval("$['x y']", &v), Ok(json!(1)));
        assert_eq!(eval("$['Test\\\"\"Name\"']", &v), Ok(json!("ok")));
        assert_eq!(eval("$", &v), Ok(v.clone()));
    }

    #[test]
    fn missing_definite_paths_give_jayway_texts() {
        let v = json!({"a": 1});
        assert_eq!(
            eval("$.NoSuchInputPath", &v),
            Err(PathError::NotFound("No results for path: $['NoSuchInputPath']".into()))
        );
        assert_eq!(eval("$.b.c", &v), Err(PathError::NotFound("Missing property in path $['b']".into())));
    }

    #[test]
    fn wildcards_slices_and_filters_give_arrays() {
        let v = json!({"items": [{"v": 1}, {"v": 2}, {"v": 3}, {"w": 4}]});
        assert_eq!(eval("$.items[*].v", &v), Ok(json!([1, 2, 3])));
        assert_eq!(eval("$.items[1:3].v", &v), Ok(json!([2, 3])));
        assert_eq!(eval("$.items[:1]", &v), Ok(json!([{"v": 1}])));
        assert_eq!(eval("$.items[?(@.v > 1)].v", &v), Ok(json!([2, 3])));
        assert_eq!(eval("$.items[?(@.w)]", &v), Ok(json!([{"w": 4}])));
        assert_eq!(eval("$..v", &v), Ok(json!([1, 2, 3])));
        assert_eq!(eval("$.items[0,2].v", &v), Ok(json!([1, 3])));
        assert_eq!(eval("$.nothing[*]", &v), Ok(json!([])));
        assert_eq!(eval("$.items.length()", &v), Ok(json!(4)));
        let years = json!([{"name": "a", "year": 1997}, {"name": "b", "year": 2001}]);
        assert_eq!(eval("$.[?(@.year < 1999)].name", &years), Ok(json!(["a"])));
        assert_eq!(eval("$[?(@.year <= 2001)].name", &years), Ok(json!(["a", "b"])));
    }

    #[test]
    fn roots_are_told_apart() {
        assert_eq!(JsonPath::parse("$$.Map.Item.Value").map(|p| p.root().clone()), Ok(Root::Context));
        assert_eq!(JsonPath::parse("$items").map(|p| p.root().clone()), Ok(Root::Variable("items".into())));
        assert_eq!(JsonPath::parse("$.items").map(|p| p.root().clone()), Ok(Root::Input));
        assert!(JsonPath::parse_reference("$.a[*]").is_err());
        assert!(JsonPath::parse("a.b").is_err());
    }

    #[test]
    fn result_paths_write_and_create_objects() {
        let mut v = json!({"a": 1});
        JsonPath::parse("$.b.c").expect("parses").set(&mut v, json!(2)).expect("sets");
        assert_eq!(v, json!({"a": 1, "b": {"c": 2}}));
        let mut s = json!("text");
        assert!(JsonPath::parse("$.b").expect("parses").set(&mut s, json!(2)).is_err());
    }
}
