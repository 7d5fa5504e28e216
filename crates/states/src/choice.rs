//! Choice rules: every comparison operator, its `...Path` form, `And`/`Or`/`Not` and the
//! `Is...` type tests, with AWS's rule that a value of the wrong type simply does not match.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

use crate::path::JsonPath;
use crate::template::{EvalError, Scope};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `StringEquals`.
    StringEquals,
    /// `StringLessThan`.
    StringLessThan,
    /// `StringGreaterThan`.
    StringGreaterThan,
    /// `StringLessThanEquals`.
    StringLessThanEquals,
    /// `StringGreaterThanEquals`.
    StringGreaterThanEquals,
    /// `StringMatches` (`*` wildcards).
    StringMatches,
    /// `NumericEquals`.
    NumericEquals,
    /// `NumericLessThan`.
    NumericLessThan,
    /// `NumericGreaterThan`.
    NumericGreaterThan,
    /// `NumericLessThanEquals`.
    NumericLessThanEquals,
    /// `NumericGreaterThanEquals`.
    NumericGreaterThanEquals,
    /// `BooleanEquals`.
    BooleanEquals,
    /// `TimestampEquals`.
    TimestampEquals,
    /// `TimestampLessThan`.
    TimestampLessThan,
    /// `TimestampGreaterThan`.
    TimestampGreaterThan,
    /// `TimestampLessThanEquals`.
    TimestampLessThanEquals,
    /// `TimestampGreaterThanEquals`.
    TimestampGreaterThanEquals,
    /// `IsNull`.
    IsNull,
    /// `IsPresent`.
    IsPresent,
    /// `IsNumeric`.
    IsNumeric,
    /// `IsString`.
    IsString,
    /// `IsBoolean`.
    IsBoolean,
    /// `IsTimestamp`.
    IsTimestamp,
}

const OPS: &[(&str, Op)] = &[
    ("StringEquals", Op::StringEquals),
    ("StringLessThan", Op::StringLessThan),
    ("StringGreaterThan", Op::StringGreaterThan),
    ("StringLessThanEquals", Op::StringLessThanEquals),
    ("StringGreaterThanEquals", Op::StringGreaterThanEquals),
    ("StringMatches", Op::StringMatches),
    ("NumericEquals", Op::NumericEquals),
    ("NumericLessThan", Op::NumericLessThan),
    ("NumericGreaterThan", Op::NumericGreaterThan),
    ("NumericLessThanEquals", Op::NumericLessThanEquals),
    ("NumericGreaterThanEquals", Op::NumericGreaterThanEquals),
    ("BooleanEquals", Op::BooleanEquals),
    ("TimestampEquals", Op::TimestampEquals),
    ("TimestampLessThan", Op::TimestampLessThan),
    ("TimestampGreaterThan", Op::TimestampGreaterThan),
    ("TimestampLessThanEquals", Op::TimestampLessThanEquals),
    ("TimestampGreaterThanEquals", Op::TimestampGreaterThanEquals),
    ("IsNull", Op::IsNull),
    ("IsPresent", Op::IsPresent),
    ("IsNumeric", Op::IsNumeric),
    ("IsString", Op::IsString),
    ("IsBoolean", Op::IsBoolean),
    ("IsTimestamp", Op::IsTimestamp),
];

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A literal from the definition.
    Lit(Value),
    /// A `...Path` operand, read at run time.
    Path(JsonPath),
}

/// A Choice rule (or a rule nested in `And`/`Or`/`Not`).
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// All must match.
    And(Vec<Rule>),
    /// One must match.
    Or(Vec<Rule>),
    /// Must not match.
    Not(Box<Rule>),
    /// `Variable` compared with an operand.
    Cmp {
        /// The `Variable` path.
        variable: JsonPath,
        /// The operator.
        op: Op,
        /// The operand.
        operand: Operand,
    },
}

/// A failure while evaluating a rule: the text after AWS's "entered at" prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError(pub String);

impl Rule {
    /// Parses a rule object; `top` rules may carry `Next`, `Assign` and `Comment`.
    pub fn parse(v: &Value, top: bool) -> Result<Rule, String> {
        let Value::Object(m) = v else {
            return Err("a choice rule must be an object".into());
        };
        let allowed_extra: &[&str] = if top { &["Next", "Assign", "Comment"] } else { &["Comment"] };
        if let Some(list) = m.get("And").or_else(|| m.get("Or")) {
            let is_and = m.contains_key("And");
            let Value::Array(items) = list else {
                return Err(format!(
                    "'{}' must be a non-empty array of rules",
                    if is_and { "And" } else { "Or" }
                ));
            };
            if items.is_empty() {
                return Err(format!(
                    "'{}' must be a non-empty array of rules",
                    if is_and { "And" } else { "Or" }
                ));
            }
            check_keys(m, &[if is_and { "And" } else { "Or" }], allowed_extra)?;
            let rules = items.iter().map(|r| Rule::parse(r, false)).collect::<Result<Vec<_>, _>>()?;
            return Ok(if is_and { Rule::And(rules) } else { Rule::Or(rules) });
        }
        if let Some(inner) = m.get("Not") {
            check_keys(m, &["Not"], allowed_extra)?;
            return Ok(Rule::Not(Box::new(Rule::parse(inner, false)?)));
        }
        let variable = match m.get("Variable") {
            Some(Value::String(s)) => {
                JsonPath::parse_reference(s).map_err(|e| format!("'Variable': {}", e.reason))?
            }
            Some(_) => return Err("'Variable' must be a string path".into()),
            None => {
                return Err("a choice rule needs 'Variable' and an operator, or 'And', 'Or' or 'Not'".into());
            }
        };
        let mut found: Option<(Op, Operand)> = None;
        for (k, v) in m {
            if k == "Variable" || allowed_extra.contains(&k.as_str()) {
                continue;
            }
            let (name, is_path) = match k.strip_suffix("Path") {
                Some(base) if OPS.iter().any(|(n, _)| *n == base) => (base, true),
                _ => (k.as_str(), false),
            };
            let Some((_, op)) = OPS.iter().find(|(n, _)| *n == name) else {
                return Err(format!("'{k}' is not a comparison operator"));
            };
            if found.is_some() {
                return Err("a choice rule may hold only one comparison operator".into());
            }
            let operand = if is_path {
                if name.starts_with("Is") {
                    return Err(format!("'{k}' is not a comparison operator"));
                }
                let Value::String(p) = v else {
                    return Err(format!("'{k}' must be a path string"));
                };
                Operand::Path(JsonPath::parse_reference(p).map_err(|e| format!("'{k}': {}", e.reason))?)
            } else {
                check_literal(*op, v).map_err(|e| format!("'{k}': {e}"))?;
                Operand::Lit(v.clone())
            };
            found = Some((*op, operand));
        }
        let (op, operand) = found.ok_or("a choice rule with 'Variable' needs a comparison operator")?;
        Ok(Rule::Cmp { variable, op, operand })
    }

    /// Evaluates the rule.
    pub fn eval(&self, scope: &Scope<'_>) -> Result<bool, RuleError> {
        match self {
            Rule::And(rs) => {
                for r in rs {
                    if !r.eval(scope)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rs) => {
                for r in rs {
                    if r.eval(scope)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(r) => Ok(!r.eval(scope)?),
            Rule::Cmp { variable, op, operand } => {
                let value = match scope.resolve(variable) {
                    Ok(v) => Some(v),
                    Err(EvalError::Path { .. }) | Err(EvalError::UndefinedVariable(_)) => None,
                    Err(EvalError::Intrinsic(m)) => return Err(RuleError(m)),
                };
                if *op == Op::IsPresent {
                    let want = matches!(operand, Operand::Lit(Value::Bool(true)));
                    return Ok(value.is_some() == want);
                }
                let Some(value) = value else {
                    return Err(RuleError(format!(
                        "Invalid path '{}': The choice state's condition path references an invalid value.",
                        variable.as_str()
                    )));
                };
                let rhs = match operand {
                    Operand::Lit(v) => v.clone(),
                    Operand::Path(p) => scope.resolve(p).map_err(|_| {
                        RuleError(format!(
                            "Invalid path '{}': The choice state's condition path references an invalid value.",
                            p.as_str()
                        ))
                    })?,
                };
                Ok(compare(&value, *op, &rhs))
            }
        }
    }

    /// The paths the rule reads, for validation.
    pub fn paths(&self) -> Vec<&JsonPath> {
        match self {
            Rule::And(rs) | Rule::Or(rs) => rs.iter().flat_map(Rule::paths).collect(),
            Rule::Not(r) => r.paths(),
            Rule::Cmp { variable, operand, .. } => {
                let mut v = vec![variable];
                if let Operand::Path(p) = operand {
                    v.push(p);
                }
                v
            }
        }
    }
}

fn check_keys(m: &Map<String, Value>, main: &[&str], extra: &[&str]) -> Result<(), String> {
    for k in m.keys() {
        if !main.contains(&k.as_str()) && !extra.contains(&k.as_str()) {
            return Err(format!("'{k}' is not allowed beside '{}' in a choice rule", main.join("', '")));
        }
    }
    Ok(())
}

fn check_literal(op: Op, v: &Value) -> Result<(), String> {
    use Op::*;
    let ok = match op {
        StringEquals
        | StringLessThan
        | StringGreaterThan
        | StringLessThanEquals
        | StringGreaterThanEquals
        | StringMatches => v.is_string(),
        NumericEquals
        | NumericLessThan
        | NumericGreaterThan
        | NumericLessThanEquals
        | NumericGreaterThanEquals => v.is_number(),
        BooleanEquals | IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp => v.is_boolean(),
        TimestampEquals
        | TimestampLessThan
        | TimestampGreaterThan
        | TimestampLessThanEquals
        | TimestampGreaterThanEquals => {
            return match v.as_str().map(parse_timestamp) {
                Some(Some(_)) => Ok(()),
                _ => Err(format!("{v} is not an RFC 3339 timestamp")),
            };
        }
    };
    if ok { Ok(()) } else { Err(format!("{v} is not a value of the operator's type")) }
}

/// Parses a timestamp as Choice rules and Wait states accept them: RFC 3339 with an
/// uppercase `T` and either `Z` or a numeric offset.
pub fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    let bytes = s.as_bytes();
    if bytes.len() < 20 || bytes[10] != b'T' || s.ends_with('z') {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn num_cmp(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// `StringMatches`: `*` matches any run of characters; `\*` and `\\` are literal.
fn string_matches(s: &str, pattern: &str) -> bool {
    #[derive(Debug, PartialEq)]
    enum Tok {
        Ch(char),
        Star,
    }
    let mut toks = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.next() {
                Some(n) => toks.push(Tok::Ch(n)),
                None => toks.push(Tok::Ch('\\')),
            },
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Ch(c)),
        }
    }
    let chars: Vec<char> = s.chars().collect();
    // Classic wildcard matching with backtracking on the last star.
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < chars.len() {
        match toks.get(j) {
            Some(Tok::Ch(c)) if *c == chars[i] => {
                i += 1;
                j += 1;
            }
            Some(Tok::Star) => {
                star = Some((j, i));
                j += 1;
            }
            _ => match star {
                Some((sj, si)) => {
                    j = sj + 1;
                    i = si + 1;
                    star = Some((sj, si + 1));
                }
                None => return false,
            },
        }
    }
    while toks.get(j) == Some(&Tok::Star) {
        j += 1;
    }
    j == toks.len()
}

fn compare(v: &Value, op: Op, rhs: &Value) -> bool {
    use Op::*;
    match op {
        StringEquals
        | StringLessThan
        | StringGreaterThan
        | StringLessThanEquals
        | StringGreaterThanEquals => {
            let (Value::String(a), Value::String(b)) = (v, rhs) else { return false };
            let o = utf16_cmp(a, b);
            match op {
                StringEquals => o == Ordering::Equal,
                StringLessThan => o == Ordering::Less,
                StringGreaterThan => o == Ordering::Greater,
                StringLessThanEquals => o != Ordering::Greater,
                _ => o != Ordering::Less,
            }
        }
        StringMatches => match (v, rhs) {
            (Value::String(a), Value::String(p)) => string_matches(a, p),
            _ => false,
        },
        NumericEquals
        | NumericLessThan
        | NumericGreaterThan
        | NumericLessThanEquals
        | NumericGreaterThanEquals => {
            let (Value::Number(a), Value::Number(b)) = (v, rhs) else { return false };
            let Some(o) = num_cmp(a, b) else { return false };
            match op {
                NumericEquals => o == Ordering::Equal,
                NumericLessThan => o == Ordering::Less,
                NumericGreaterThan => o == Ordering::Greater,
                NumericLessThanEquals => o != Ordering::Greater,
                _ => o != Ordering::Less,
            }
        }
        BooleanEquals => matches!((v, rhs), (Value::Bool(a), Value::Bool(b)) if a == b),
        TimestampEquals
        | TimestampLessThan
        | TimestampGreaterThan
        | TimestampLessThanEquals
        | TimestampGreaterThanEquals => {
            let (Some(a), Some(b)) =
                (v.as_str().and_then(parse_timestamp), rhs.as_str().and_then(parse_timestamp))
            else {
                return false;
            };
            let o = a.cmp(&b);
            match op {
                TimestampEquals => o == Ordering::Equal,
                TimestampLessThan => o == Ordering::Less,
                TimestampGreaterThan => o == Ordering::Greater,
                TimestampLessThanEquals => o != Ordering::Greater,
                _ => o != Ordering::Less,
            }
        }
        IsNull | IsNumeric | IsString | IsBoolean | IsTimestamp => {
            let is = match op {
                IsNull => v.is_null(),
                IsNumeric => v.is_number(),
                IsString => v.is_string(),
                IsBoolean => v.is_boolean(),
                _ => v.as_str().and_then(parse_timestamp).is_some(),
            };
            matches!(rhs, Value::Bool(want) if *want == is)
        }
        IsPresent => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::with_scope;
    use serde_json::json;

    fn check(rule: Value, input: Value) -> Result<bool, RuleError> {
        let r = Rule::parse(&rule, true).expect("parses");
        with_scope(&input, |s| r.eval(s))
    }

    #[test]
    fn wrong_types_do_not_match() {
        assert_eq!(
            check(json!({"Variable": "$.v", "StringEquals": "1", "Next": "x"}), json!({"v": 1})),
            Ok(false)
        );
        assert_eq!(
            check(json!({"Variable": "$.v", "NumericEquals": 42, "Next": "x"}), json!({"v": "42"})),
            Ok(false)
        );
        assert_eq!(
            check(json!({"Variable": "$.v", "BooleanEquals": true, "Next": "x"}), json!({"v": null})),
            Ok(false)
        );
    }

    #[test]
    fn is_operators_test_true_and_false() {
        let r = |op: &str, want: bool, v: Value| {
            let mut rule = json!({"Variable": "$.v", "Next": "x"});
            rule[op] = json!(want);
            check(rule, json!({"v": v}))
        };
        assert_eq!(r("IsNull", true, json!(null)), Ok(true));
        assert_eq!(r("IsNull", false, json!(null)), Ok(false));
        assert_eq!(r("IsString", false, json!(1)), Ok(true));
        assert_eq!(r("IsTimestamp", true, json!("2016-03-14T01:59:00Z")), Ok(true));
        assert_eq!(r("IsTimestamp", true, json!("2016-03-14 01:59:00Z")), Ok(false));
        assert_eq!(check(json!({"Variable": "$.w", "IsPresent": false, "Next": "x"}), json!({})), Ok(true));
    }

    #[test]
    fn paths_composites_and_wildcards() {
        assert_eq!(
            check(
                json!({"Variable": "$.a", "NumericLessThanPath": "$.b", "Next": "x"}),
                json!({"a": 1, "b": 2.5})
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"And": [{"Variable": "$.a", "StringMatches": "log-*.txt"}, {"Not": {"Variable": "$.b", "IsNull": true}}], "Next": "x"}),
                json!({"a": "log-2024.txt", "b": 1})
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.t", "TimestampLessThan": "2020-01-01T00:00:00+01:00", "Next": "x"}),
                json!({"t": "2019-12-31T23:00:00Z"})
            ),
            Ok(false)
        );
    }

    #[test]
    fn a_missing_variable_is_a_runtime_error() {
        let err = check(json!({"Variable": "$.nope", "StringEquals": "a", "Next": "x"}), json!({}));
        assert_eq!(
            err,
            Err(RuleError(
                "Invalid path '$.nope': The choice state's condition path references an invalid value."
                    .into()
            ))
        );
    }

    #[test]
    fn string_matches_escapes() {
        assert!(string_matches("a*b", "a\\*b"));
        assert!(!string_matches("axb", "a\\*b"));
        assert!(string_matches("anything", "*"));
        assert!(string_matches("", "*"));
    }
}
