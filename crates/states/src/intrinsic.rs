//! The intrinsic functions (`States.Format`, `States.Array*`, `States.Hash`, ...): a parser
//! for the call syntax and an evaluator with AWS's argument rules.

use base64::Engine as _;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Number, Value};

use crate::path::JsonPath;
use crate::template::{EvalError, Scope};

/// A parsed intrinsic call such as `States.Format('{} items', $.count)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    func: Func,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// A string literal as written between the quotes (escapes not yet applied).
    Str(String),
    Lit(Value),
    Path(JsonPath),
    Call(Box<Call>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "States.Format" => Func::Format,
            "States.StringToJson" => Func::StringToJson,
            "States.JsonToString" => Func::JsonToString,
            "States.Array" => Func::Array,
            "States.ArrayPartition" => Func::ArrayPartition,
            "States.ArrayContains" => Func::ArrayContains,
            "States.ArrayRange" => Func::ArrayRange,
            "States.ArrayGetItem" => Func::ArrayGetItem,
            "States.ArrayLength" => Func::ArrayLength,
            "States.ArrayUnique" => Func::ArrayUnique,
            "States.Base64Encode" => Func::Base64Encode,
            "States.Base64Decode" => Func::Base64Decode,
            "States.Hash" => Func::Hash,
            "States.JsonMerge" => Func::JsonMerge,
            "States.MathRandom" => Func::MathRandom,
            "States.MathAdd" => Func::MathAdd,
            "States.StringSplit" => Func::StringSplit,
            "States.UUID" => Func::Uuid,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Func::Format => "States.Format",
            Func::StringToJson => "States.StringToJson",
            Func::JsonToString => "States.JsonToString",
            Func::Array => "States.Array",
            Func::ArrayPartition => "States.ArrayPartition",
            Func::ArrayContains => "States.ArrayContains",
            Func::ArrayRange => "States.ArrayRange",
            Func::ArrayGetItem => "States.ArrayGetItem",
            Func::ArrayLength => "States.ArrayLength",
            Func::ArrayUnique => "States.ArrayUnique",
            Func::Base64Encode => "States.Base64Encode",
            Func::Base64Decode => "States.Base64Decode",
            Func::Hash => "States.Hash",
            Func::JsonMerge => "States.JsonMerge",
            Func::MathRandom => "States.MathRandom",
            Func::MathAdd => "States.MathAdd",
            Func::StringSplit => "States.StringSplit",
            Func::Uuid => "States.UUID",
        }
    }

    /// Allowed argument counts (min, max).
    fn arity(self) -> (usize, usize) {
        match self {
            Func::Format => (1, usize::MAX),
            Func::Array => (0, usize::MAX),
            Func::StringToJson
            | Func::JsonToString
            | Func::ArrayLength
            | Func::ArrayUnique
            | Func::Base64Encode
            | Func::Base64Decode => (1, 1),
            Func::ArrayPartition
            | Func::ArrayContains
            | Func::ArrayGetItem
            | Func::Hash
            | Func::MathAdd
            | Func::StringSplit => (2, 2),
            Func::ArrayRange | Func::JsonMerge => (3, 3),
            Func::MathRandom => (2, 3),
            Func::Uuid => (0, 0),
        }
    }
}

/// True when a `.$` value is an intrinsic call rather than a path.
pub fn looks_like_call(text: &str) -> bool {
    text.trim_start().starts_with("States.")
}

impl Call {
    /// Parses an intrinsic call.
    pub fn parse(text: &str) -> Result<Call, String> {
        let mut p = P { s: text.chars().collect(), pos: 0 };
        let call = p.call()?;
        p.ws();
        if p.pos != p.s.len() {
            return Err(format!("unexpected text after the call: '{}'", p.rest()));
        }
        Ok(call)
    }

    /// The paths this call reads, for validation.
    pub fn paths(&self) -> Vec<&JsonPath> {
        let mut out = Vec::new();
        for a in &self.args {
            match a {
                Arg::Path(p) => out.push(p),
                Arg::Call(c) => out.extend(c.paths()),
                _ => {}
            }
        }
        out
    }

    /// Evaluates the call in a scope.
    pub fn eval(&self, scope: &Scope<'_>) -> Result<Value, EvalError> {
        let mut vals = Vec::with_capacity(self.args.len());
        for a in &self.args {
            vals.push(match a {
                Arg::Str(raw) => Value::String(unescape(raw)),
                Arg::Lit(v) => v.clone(),
                Arg::Path(p) => scope.resolve(p)?,
                Arg::Call(c) => c.eval(scope)?,
            });
        }
        let fail = |msg: String| EvalError::Intrinsic(format!("{}: {msg}", self.func.name()));
        match self.func {
            Func::Format => {
                let template = match (&self.args[0], &vals[0]) {
                    (Arg::Str(raw), _) => raw.clone(),
                    (_, Value::String(s)) => s.clone(),
                    (_, other) => {
                        return Err(fail(format!("the format string must be a string, got {other}")));
                    }
                };
                format(&template, &vals[1..]).map(Value::String).map_err(fail)
            }
            Func::StringToJson => {
                let Value::String(s) = &vals[0] else {
                    return Err(fail(format!("expected a string, got {}", vals[0])));
                };
                if s.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(s).map_err(|e| fail(format!("the string is not JSON: {e}")))
            }
            Func::JsonToString => Ok(Value::String(serde_json::to_string(&vals[0]).unwrap_or_default())),
            Func::Array => Ok(Value::Array(vals)),
            Func::ArrayPartition => {
                let arr = as_array(&vals[0]).map_err(&fail)?;
                let size = as_int(&vals[1]).map_err(&fail)?;
                if size <= 0 {
                    return Err(fail(format!("the chunk size must be positive, got {size}")));
                }
                Ok(Value::Array(arr.chunks(size as usize).map(|c| Value::Array(c.to_vec())).collect()))
            }
            Func::ArrayContains => {
                let arr = as_array(&vals[0]).map_err(&fail)?;
                Ok(Value::Bool(arr.iter().any(|x| json_eq(x, &vals[1]))))
            }
            Func::ArrayRange => {
                let start = as_int(&vals[0]).map_err(&fail)?;
                let end = as_int(&vals[1]).map_err(&fail)?;
                let step = as_int(&vals[2]).map_err(&fail)?;
                if step == 0 {
                    return Err(fail("the step must not be 0".into()));
                }
                let mut out = Vec::new();
                let mut k = start;
                while (step > 0 && k <= end) || (step < 0 && k >= end) {
                    out.push(Value::from(k));
                    if out.len() > 1000 {
                        return Err(fail("the range has more than 1000 items".into()));
                    }
                    k += step;
                }
                Ok(Value::Array(out))
            }
            Func::ArrayGetItem => {
                let arr = as_array(&vals[0]).map_err(&fail)?;
                let idx = as_int(&vals[1]).map_err(&fail)?;
                if idx < 0 || idx as usize >= arr.len() {
                    return Err(fail(format!("index {idx} is out of bounds for an array of {}", arr.len())));
                }
                Ok(arr[idx as usize].clone())
            }
            Func::ArrayLength => Ok(Value::from(as_array(&vals[0]).map_err(fail)?.len())),
            Func::ArrayUnique => {
                let arr = as_array(&vals[0]).map_err(fail)?;
                let mut out: Vec<Value> = Vec::new();
                for x in arr {
                    if !out.iter().any(|y| json_eq(x, y)) {
                        out.push(x.clone());
                    }
                }
                Ok(Value::Array(out))
            }
            Func::Base64Encode => {
                let s = as_str(&vals[0]).map_err(&fail)?;
                if s.chars().count() > 10_000 {
                    return Err(fail("the input is longer than 10000 characters".into()));
                }
                Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(s.as_bytes())))
            }
            Func::Base64Decode => {
                let s = as_str(&vals[0]).map_err(&fail)?;
                if s.chars().count() > 10_000 {
                    return Err(fail("the input is longer than 10000 characters".into()));
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|e| fail(format!("the input is not base64: {e}")))?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| fail("the decoded bytes are not UTF-8".into()))
            }
            Func::Hash => {
                let data = match &vals[0] {
                    Value::String(s) => s.clone(),
                    other => serde_json::to_string(other).unwrap_or_default(),
                };
                if data.chars().count() > 10_000 {
                    return Err(fail("the input is longer than 10000 characters".into()));
                }
                let algo = as_str(&vals[1]).map_err(&fail)?;
                hash(&data, algo).map(Value::String).map_err(fail)
            }
            Func::JsonMerge => {
                let (Value::Object(a), Value::Object(b)) = (&vals[0], &vals[1]) else {
                    return Err(fail("both values to merge must be JSON objects".into()));
                };
                match &vals[2] {
                    Value::Bool(false) => {}
                    Value::Bool(true) => {
                        return Err(fail("only a shallow merge (false) is supported".into()));
                    }
                    other => return Err(fail(format!("the merge mode must be a boolean, got {other}"))),
                }
                let mut out: Map<String, Value> = a.clone();
                for (k, v) in b {
                    out.insert(k.clone(), v.clone());
                }
                Ok(Value::Object(out))
            }
            Func::MathRandom => {
                let start = as_rounded_int(&vals[0]).map_err(&fail)?;
                let end = as_rounded_int(&vals[1]).map_err(&fail)?;
                if start >= end {
                    return Err(fail(format!("the start {start} must be less than the end {end}")));
                }
                let n = match vals.get(2) {
                    Some(seed) => {
                        let seed = as_rounded_int(seed).map_err(&fail)?;
                        rand::rngs::StdRng::seed_from_u64(seed as u64).random_range(start..end)
                    }
                    None => rand::rng().random_range(start..end),
                };
                Ok(Value::from(n))
            }
            Func::MathAdd => {
                let a = as_rounded_int(&vals[0]).map_err(&fail)?;
                let b = as_rounded_int(&vals[1]).map_err(&fail)?;
                a.checked_add(b).map(Value::from).ok_or_else(|| fail("the sum overflows".into()))
            }
            Func::StringSplit => {
                let s = as_str(&vals[0]).map_err(&fail)?;
                let delims = as_str(&vals[1]).map_err(&fail)?;
                let parts: Vec<Value> = s
                    .split(|c| delims.contains(c))
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_string()))
                    .collect();
                Ok(Value::Array(parts))
            }
            Func::Uuid => Ok(Value::String(uuid::Uuid::new_v4().to_string())),
        }
    }
}

fn as_array(v: &Value) -> Result<&Vec<Value>, String> {
    v.as_array().ok_or_else(|| format!("expected an array, got {v}"))
}

fn as_str(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| format!("expected a string, got {v}"))
}

fn as_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| format!("expected an integer, got {n}")),
        other => Err(format!("expected an integer, got {other}")),
    }
}

/// Rounds as Java's `Math.round` does (half up, towards positive infinity), which is how
/// Step Functions turns non-integer arguments of `MathAdd` and `MathRandom` into integers.
pub fn java_round(f: f64) -> i64 {
    (f + 0.5).floor() as i64
}

fn as_rounded_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(i),
            None => n.as_f64().map(java_round).ok_or_else(|| format!("expected a number, got {n}")),
        },
        other => Err(format!("expected a number, got {other}")),
    }
}

/// Equality of JSON values with numbers compared by value (`1` equals `1.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_eq(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn num_eq(x: &Number, y: &Number) -> bool {
    match (x.as_i64(), y.as_i64()) {
        (Some(a), Some(b)) => a == b,
        _ => x.as_f64() == y.as_f64(),
    }
}

fn hash(data: &str, algo: &str) -> Result<String, String> {
    use sha2::Digest;
    let bytes = data.as_bytes();
    let digest: Vec<u8> = match algo {
        "MD5" => md5::Md5::digest(bytes).to_vec(),
        "SHA-1" => sha1::Sha1::digest(bytes).to_vec(),
        "SHA-256" => sha2::Sha256::digest(bytes).to_vec(),
        "SHA-384" => sha2::Sha384::digest(bytes).to_vec(),
        "SHA-512" => sha2::Sha512::digest(bytes).to_vec(),
        other => {
            return Err(format!(
                "the hash algorithm '{other}' is not one of MD5, SHA-1, SHA-256, SHA-384, SHA-512"
            ));
        }
    };
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Applies the escapes of intrinsic string literals: `\'`, `\{`, `\}` and `\\`.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n) => out.push(n),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `States.Format`: each `{}` takes the next argument; `\{` and `\}` are literal braces.
fn format(template: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut used = 0usize;
    let chars: Vec<char> = template.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == '{' && chars.get(i + 1) == Some(&'}') {
            let arg = args.get(used).ok_or_else(|| {
                format!("the format string has more placeholders than the {} arguments given", args.len())
            })?;
            out.push_str(&format_arg(arg));
            used += 1;
            i += 2;
            continue;
        }
        out.push(c);
        i += 1;
    }
    if used != args.len() {
        return Err(format!(
            "the format string has {used} placeholders but {} arguments were given",
            args.len()
        ));
    }
    Ok(out)
}

/// How `States.Format` prints a value: strings as they are, objects and arrays as Java's
/// `Map`/`List` `toString` does (`{a=1, b=[x, y]}`), other values as JSON.
fn format_arg(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(format_arg).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => {
            format!(
                "{{{}}}",
                m.iter().map(|(k, v)| format!("{k}={}", format_arg(v))).collect::<Vec<_>>().join(", ")
            )
        }
        other => other.to_string(),
    }
}

struct P {
    s: Vec<char>,
    pos: usize,
}

impl P {
    fn rest(&self) -> String {
        self.s[self.pos..].iter().collect()
    }

    fn ws(&mut self) {
        while matches!(self.s.get(self.pos), Some(c) if c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn call(&mut self) -> Result<Call, String> {
        self.ws();
        let start = self.pos;
        while matches!(self.s.get(self.pos), Some(c) if c.is_ascii_alphanumeric() || *c == '.') {
            self.pos += 1;
        }
        let name: String = self.s[start..self.pos].iter().collect();
        let func = Func::from_name(&name).ok_or_else(|| format!("'{name}' is not an intrinsic function"))?;
        self.ws();
        if self.s.get(self.pos) != Some(&'(') {
            return Err(format!("'(' expected after {name}"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.ws();
        if self.s.get(self.pos) == Some(&')') {
            self.pos += 1;
        } else {
            loop {
                args.push(self.arg()?);
                self.ws();
                match self.s.get(self.pos) {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(format!("',' or ')' expected in the arguments of {name}")),
                }
            }
        }
        let (min, max) = func.arity();
        if args.len() < min || args.len() > max {
            let expected = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(format!("{name} takes {expected} arguments, got {}", args.len()));
        }
        if func == Func::Format && matches!(args.first(), Some(Arg::Lit(_))) {
            return Err("the first argument of States.Format must be a string".into());
        }
        Ok(Call { func, args })
    }

    fn arg(&mut self) -> Result<Arg, String> {
        self.ws();
        match self.s.get(self.pos) {
            Some('\'') => {
                self.pos += 1;
                let mut raw = String::new();
                loop {
                    match self.s.get(self.pos) {
                        None => return Err("unterminated string literal".into()),
                        Some('\\') => {
                            raw.push('\\');
                            if let Some(n) = self.s.get(self.pos + 1) {
                                raw.push(*n);
                            }
                            self.pos += 2;
                        }
                        Some('\'') => {
                            self.pos += 1;
                            return Ok(Arg::Str(raw));
                        }
                        Some(c) => {
                            raw.push(*c);
                            self.pos += 1;
                        }
                    }
                }
            }
            Some('$') => {
                let start = self.pos;
                let mut depth = 0i32;
                let mut quote: Option<char> = None;
                while let Some(&c) = self.s.get(self.pos) {
                    if let Some(q) = quote {
                        if c == '\\' {
                            self.pos += 2;
                            continue;
                        }
                        if c == q {
                            quote = None;
                        }
                    } else if c == '\'' || c == '"' {
                        quote = Some(c);
                    } else if c == '[' || c == '(' {
                        depth += 1;
                    } else if c == ']' || (c == ')' && depth > 0) {
                        depth -= 1;
                    } else if depth == 0 && (c == ',' || c == ')' || c.is_whitespace()) {
                        break;
                    }
                    self.pos += 1;
                }
                let text: String = self.s[start..self.pos.min(self.s.len())].iter().collect();
                JsonPath::parse(&text).map(Arg::Path).map_err(|e| e.to_string())
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let save = self.pos;
                let start = self.pos;
                while matches!(self.s.get(self.pos), Some(c) if c.is_ascii_alphanumeric() || *c == '.') {
                    self.pos += 1;
                }
                let word: String = self.s[start..self.pos].iter().collect();
                match word.as_str() {
                    "true" => Ok(Arg::Lit(Value::Bool(true))),
                    "false" => Ok(Arg::Lit(Value::Bool(false))),
                    "null" => Ok(Arg::Lit(Value::Null)),
                    _ => {
                        self.pos = save;
                        Ok(Arg::Call(Box::new(self.call()?)))
                    }
                }
            }
            Some(_) => {
                let start = self.pos;
                while matches!(self.s.get(self.pos), Some(c) if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
                {
                    self.pos += 1;
                }
                let word: String = self.s[start..self.pos].iter().collect();
                serde_json::from_str::<Value>(&word)
                    .ok()
                    .filter(Value::is_number)
                    .map(Arg::Lit)
                    .ok_or_else(|| format!("'{}' is not a valid argument", self.rest()))
            }
            None => Err("an argument is missing".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::with_scope;
    use serde_json::json;

    fn run(call: &str, input: Value) -> Result<Value, EvalError> {
        let c = Call::parse(call).expect("parses");
        with_scope(&input, |s| c.eval(s))
    }

    #[test]
    fn format_fills_placeholders_and_prints_values_as_aws_does() {
        assert_eq!(
            run("States.Format('a {} b {}', $.x, $.y)", json!({"x": "s", "y": 1.1})),
            Ok(json!("a s b 1.1"))
        );
        assert_eq!(
            run("States.Format('{}', $.o)", json!({"o": {"Arg1": 1, "Arg2": []}})),
            Ok(json!("{Arg1=1, Arg2=[]}"))
        );
        assert_eq!(run("States.Format('\\{\\} {}', $.x)", json!({"x": null})), Ok(json!("{} null")));
        assert!(run("States.Format('{} {}', $.x)", json!({"x": 1})).is_err());
    }

    #[test]
    fn math_add_rounds_like_java() {
        assert_eq!(run("States.MathAdd($.a, $.b)", json!({"a": 1.49, "b": 1.5})), Ok(json!(3)));
        assert_eq!(run("States.MathAdd($.a, $.b)", json!({"a": -1.5, "b": -1.51})), Ok(json!(-3)));
        assert_eq!(run("States.MathAdd($.a, $.b)", json!({"a": -1.49, "b": -1.5})), Ok(json!(-2)));
        assert_eq!(run("States.MathAdd($.a, -1)", json!({"a": 3})), Ok(json!(2)));
    }

    #[test]
    fn array_functions() {
        assert_eq!(run("States.ArrayPartition($.a, 2)", json!({"a": [0, 1, 2]})), Ok(json!([[0, 1], [2]])));
        assert_eq!(run("States.ArrayRange(1, 9, 2)", json!({})), Ok(json!([1, 3, 5, 7, 9])));
        assert_eq!(run("States.ArrayUnique($.a)", json!({"a": [1, 1.0, "1", 2]})), Ok(json!([1, "1", 2])));
        assert_eq!(run("States.ArrayContains($.a, 2)", json!({"a": [1, 2]})), Ok(json!(true)));
        assert_eq!(run("States.ArrayGetItem($.a, 1)", json!({"a": [1, 2]})), Ok(json!(2)));
        assert_eq!(run("States.ArrayLength(States.Array(1, 'x', null))", json!({})), Ok(json!(3)));
    }

    #[test]
    fn strings_json_and_hashes() {
        assert_eq!(run("States.StringToJson($.s)", json!({"s": " "})), Ok(Value::Null));
        assert_eq!(run("States.StringToJson($.s)", json!({"s": "{\"a\": [1]}"})), Ok(json!({"a": [1]})));
        assert_eq!(run("States.JsonToString($.o)", json!({"o": {"a": [1]}})), Ok(json!("{\"a\":[1]}")));
        assert_eq!(
            run("States.StringSplit($.s, '.+,')", json!({"s": "a.b+c,,d"})),
            Ok(json!(["a", "b", "c", "d"]))
        );
        assert_eq!(
            run("States.Base64Encode('Data to encode')", json!({})),
            Ok(json!("RGF0YSB0byBlbmNvZGU="))
        );
        assert_eq!(
            run("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", json!({})),
            Ok(json!("Data to encode"))
        );
        assert_eq!(
            run("States.Hash('input data', 'SHA-1')", json!({})),
            Ok(json!("aaff4a450a104cd177d28d18d74485e8cae074b7"))
        );
        assert_eq!(
            run("States.JsonMerge($.a, $.b, false)", json!({"a": {"x": 1, "y": 1}, "b": {"y": 2}})),
            Ok(json!({"x": 1, "y": 2}))
        );
    }

    #[test]
    fn random_is_in_range_and_seeded_is_stable() {
        let a = run("States.MathRandom(1, 10, 7)", json!({})).expect("runs");
        let b = run("States.MathRandom(1, 10, 7)", json!({})).expect("runs");
        assert_eq!(a, b);
        let n = a.as_i64().expect("an integer");
        assert!((1..10).contains(&n));
    }

    #[test]
    fn bad_calls_are_refused_when_parsed() {
        assert!(Call::parse("States.Nope(1)").is_err());
        assert!(Call::parse("States.MathAdd(1)").is_err());
        assert!(Call::parse("States.Format(1, 2)").is_err());
        assert!(Call::parse("States.UUID() x").is_err());
    }
}
