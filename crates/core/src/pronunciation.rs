//! Pronunciation rules: how some words of a post are to be said. Three kinds, as BeyondWords
//! has them: a substitution (the text is spoken as other text), IPA (the word is spoken as
//! these phonemes) and say-as (letters, a date, a number). Rules belong to a subscription (its
//! stream, `feed-<id>`) or to the global default (its own stream, [`GLOBAL_STREAM`]); a
//! conversion carries the rules in force when it was requested.
//!
//! Here are the rules themselves, their validation, and the pure functions that find which
//! rules touch a text: a rule takes part in the speech cache key of exactly the sentences it
//! touches, so changing a rule makes only those sentences be spoken again.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::id::StreamId;

/// The most rules one rule set holds.
pub const MAX_RULES: usize = 500;
/// The longest `match`, in characters.
pub const MAX_MATCH_CHARS: usize = 100;
/// The longest `say` or `phonemes`, in characters.
pub const MAX_SPOKEN_CHARS: usize = 300;
/// The stream of the global default rules.
pub const GLOBAL_STREAM: &str = "pronunciations-default";

/// The stream that holds the global default rules.
pub fn global_stream() -> StreamId {
    StreamId::new(GLOBAL_STREAM)
}

/// How a `say_as` rule asks its words to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InterpretAs {
    /// Letter by letter ("NASA" as N, A, S, A).
    Characters,
    Date,
    Number,
}

impl InterpretAs {
    /// The SSML `interpret-as` value.
    pub fn as_str(self) -> &'static str {
        match self {
            InterpretAs::Characters => "characters",
            InterpretAs::Date => "date",
            InterpretAs::Number => "number",
        }
    }
}

/// One rule. `match` is a whole word or phrase, case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    /// `match` is spoken as `say`.
    Substitute {
        #[serde(rename = "match")]
        matches: String,
        say: String,
    },
    /// `match` is spoken as the IPA `phonemes`.
    Ipa {
        #[serde(rename = "match")]
        matches: String,
        phonemes: String,
    },
    /// `match` is read as characters, a date or a number.
    SayAs {
        #[serde(rename = "match")]
        matches: String,
        interpret_as: InterpretAs,
    },
}

impl Rule {
    /// The words the rule applies to.
    pub fn matches(&self) -> &str {
        match self {
            Rule::Substitute { matches, .. } | Rule::Ipa { matches, .. } | Rule::SayAs { matches, .. } => {
                matches
            }
        }
    }

    fn check(&self) -> Result<(), String> {
        let m = self.matches();
        if m.trim().is_empty() {
            return Err("match is empty".into());
        }
        if m.chars().count() > MAX_MATCH_CHARS {
            return Err(format!("match is longer than {MAX_MATCH_CHARS} characters"));
        }
        if m.trim() != m || m.contains(['\n', '\t', '\r']) {
            return Err("match starts or ends with a space, or holds a line break".into());
        }
        if !m.chars().any(char::is_alphanumeric) {
            return Err("match has no letter or digit".into());
        }
        if m.chars().any(char::is_control) {
            return Err("match holds a control character".into());
        }
        let spoken = |name: &str, value: &str| -> Result<(), String> {
            if value.trim().is_empty() {
                return Err(format!("{name} is empty"));
            }
            if value.chars().count() > MAX_SPOKEN_CHARS {
                return Err(format!("{name} is longer than {MAX_SPOKEN_CHARS} characters"));
            }
            if value.chars().any(char::is_control) {
                return Err(format!("{name} holds a control character"));
            }
            Ok(())
        };
        match self {
            Rule::Substitute { say, .. } => spoken("say", say),
            Rule::Ipa { phonemes, .. } => {
                spoken("phonemes", phonemes)?;
                match phonemes.chars().find(|c| !is_ipa(*c)) {
                    Some(c) => Err(format!("phonemes hold '{c}' (U+{:04X}), which is not IPA", c as u32)),
                    None => Ok(()),
                }
            }
            Rule::SayAs { .. } => Ok(()),
        }
    }
}

/// Whether `c` may appear in an IPA transcription: the Latin letters IPA uses, the IPA
/// extensions, the modifier letters (stress, length, aspiration), combining diacritics, the
/// Greek and other letters IPA borrows, and the separators (space, `.`, `|`, `‿`).
pub fn is_ipa(c: char) -> bool {
    matches!(c,
        'a'..='z'
        | ' ' | '.' | '|' | '‖' | '‿' | '-'
        | '\u{00E6}' | '\u{00E7}' | '\u{00F0}' | '\u{00F8}' | '\u{0127}' | '\u{014B}' | '\u{0153}'
        | '\u{01C0}'..='\u{01C3}'
        | '\u{0250}'..='\u{02AF}'
        | '\u{02B0}'..='\u{02FF}'
        | '\u{0300}'..='\u{036F}'
        | '\u{03B2}' | '\u{03B8}' | '\u{03C7}'
        | '\u{1D00}'..='\u{1DBF}'
        | '\u{2191}' | '\u{2193}' | '\u{2197}' | '\u{2198}'
    )
}

/// Why a rule set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PronunciationError {
    #[error("{count} rules are too many: at most {MAX_RULES}")]
    TooMany { count: usize },
    /// One rule, by its index in the list (from 0), and why.
    #[error("rule {index} ({matches:?}): {reason}")]
    Invalid { index: usize, matches: String, reason: String },
}

/// A set of rules: a subscription's, the global default, or those in force for a conversion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pronunciations {
    pub rules: Vec<Rule>,
}

/// The rules of a subscription (on its stream) or the global default (on [`GLOBAL_STREAM`])
/// were replaced by these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PronunciationsChanged {
    pub rules: Vec<Rule>,
    /// Who changed them: a user, a token's subject, or `cli`.
    pub changed_by: String,
}

/// The event type of [`PronunciationsChanged`].
pub const CHANGED: &str = "PronunciationsChanged";

/// Where a rule was found in a text: bytes `start..end`, and the rule's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub start: usize,
    pub end: usize,
    pub rule: usize,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Pronunciations {
    pub fn new(rules: Vec<Rule>) -> Self {
        Self { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every check a stored rule set passes: at most [`MAX_RULES`], each rule well formed
    /// (bounded lengths, IPA made of IPA characters), no two rules for the same `match`.
    pub fn validate(&self) -> Result<(), PronunciationError> {
        if self.rules.len() > MAX_RULES {
            return Err(PronunciationError::TooMany { count: self.rules.len() });
        }
        let mut seen = std::collections::HashMap::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let invalid = |reason: String| PronunciationError::Invalid {
                index,
                matches: rule.matches().to_owned(),
                reason,
            };
            rule.check().map_err(invalid)?;
            if let Some(first) = seen.insert(rule.matches(), index) {
                return Err(invalid(format!("rule {first} has the same match")));
            }
        }
        Ok(())
    }

    /// These rules over `default`'s: every rule of `self`, and those of `default` whose
    /// `match` `self` does not have.
    pub fn over(&self, default: &Pronunciations) -> Pronunciations {
        let mut rules = self.rules.clone();
        for rule in &default.rules {
            if !self.rules.iter().any(|r| r.matches() == rule.matches()) {
                rules.push(rule.clone());
            }
        }
        Pronunciations { rules }
    }

    /// Where the rules occur in `text`, left to right, not overlapping: at each place the
    /// longest `match` that is whole there (no letter or digit joined to it on either side
    /// where the match itself begins or ends with one). Case-sensitive.
    pub fn find(&self, text: &str) -> Vec<Found> {
        let mut out = Vec::new();
        if self.rules.is_empty() {
            return out;
        }
        let mut at = 0;
        let mut prev: Option<char> = None;
        while at < text.len() {
            let rest = &text[at..];
            let mut best: Option<(usize, usize)> = None;
            for (i, rule) in self.rules.iter().enumerate() {
                let m = rule.matches();
                if m.is_empty() || !rest.starts_with(m) || best.is_some_and(|(_, len)| len >= m.len()) {
                    continue;
                }
                let starts_word = m.chars().next().is_some_and(is_word);
                let ends_word = m.chars().next_back().is_some_and(is_word);
                if starts_word && prev.is_some_and(is_word) {
                    continue;
                }
                if ends_word && rest[m.len()..].chars().next().is_some_and(is_word) {
                    continue;
                }
                best = Some((i, m.len()));
            }
            match best {
                Some((rule, len)) => {
                    out.push(Found { start: at, end: at + len, rule });
                    prev = text[..at + len].chars().next_back();
                    at += len;
                }
                None => {
                    let c = rest.chars().next().unwrap_or(' ');
                    prev = Some(c);
                    at += c.len_utf8();
                }
            }
        }
        out
    }

    /// The rules that occur in `text`, each once, in the set's order.
    pub fn touching(&self, text: &str) -> Vec<&Rule> {
        let mut used: Vec<usize> = self.find(text).into_iter().map(|f| f.rule).collect();
        used.sort_unstable();
        used.dedup();
        used.into_iter().map(|i| &self.rules[i]).collect()
    }

    /// The canonical form of the rules that occur in `text`, for the speech cache key: empty
    /// when none does (so a sentence no rule touches keeps its key whatever the rules are),
    /// else the rules as JSON, sorted, so the same rules always give the same form.
    pub fn key_of(&self, text: &str) -> String {
        canonical(self.touching(text))
    }

    /// A hash of the whole set (its canonical form), in hex: names what is made from it.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(canonical(self.rules.iter()).as_bytes());
        hex::encode(h.finalize())
    }
}

/// Rules as sorted JSON; empty for none.
pub fn canonical<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> String {
    let mut rules: Vec<&Rule> = rules.into_iter().collect();
    if rules.is_empty() {
        return String::new();
    }
    rules.sort();
    rules.dedup();
    // Serialising strings and enums cannot fail.
    serde_json::to_string(&rules).unwrap_or_default()
}

/// Why rules could not be read or stored.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The rules were refused as they are.
    #[error(transparent)]
    Invalid(#[from] PronunciationError),
    /// The subscription refused (not subscribed, ended), or its stream failed.
    #[error(transparent)]
    Feed(#[from] crate::feed::service::FeedExecuteError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The stream holds what this build cannot read.
    #[error("the pronunciation stream is damaged: {0}")]
    Decode(String),
}

impl RulesError {
    pub fn is_transient(&self) -> bool {
        match self {
            RulesError::Feed(e) => e.is_transient(),
            RulesError::Store(e) => e.is_transient(),
            RulesError::Invalid(_) | RulesError::Decode(_) => false,
        }
    }
}

/// The global default rules and the version of their stream.
pub async fn load_global(store: &dyn crate::store::EventStore) -> Result<(Pronunciations, u64), RulesError> {
    let events = store.read_stream(&global_stream(), 0).await?;
    let mut rules = Pronunciations::default();
    for e in &events {
        if e.event_type == CHANGED {
            let changed: PronunciationsChanged =
                serde_json::from_value(e.data.clone()).map_err(|err| RulesError::Decode(err.to_string()))?;
            rules = Pronunciations::new(changed.rules);
        }
    }
    Ok((rules, events.last().map_or(0, |e| e.version)))
}

/// Replace the global default rules; the same rules again record nothing.
pub async fn set_global(
    store: &dyn crate::store::EventStore,
    rules: Pronunciations,
    by: &str,
    occurred_at: chrono::DateTime<chrono::Utc>,
) -> Result<Pronunciations, RulesError> {
    rules.validate()?;
    for _ in 0..crate::service::MAX_DECISIONS {
        let (current, version) = load_global(store).await?;
        if current == rules {
            return Ok(current);
        }
        let changed = PronunciationsChanged { rules: rules.rules.clone(), changed_by: by.to_owned() };
        let event = crate::envelope::NewEvent {
            event_id: crate::id::EventId::derive(&[GLOBAL_STREAM, "changed", &(version + 1).to_string()]),
            event_type: CHANGED.to_owned(),
            schema_version: 1,
            occurred_at,
            correlation_id: GLOBAL_STREAM.to_owned(),
            causation_id: None,
            data: serde_json::to_value(&changed).unwrap_or_default(),
        };
        match store.append(&global_stream(), crate::store::ExpectedVersion(version), vec![event]).await {
            Ok(_) => return Ok(rules),
            Err(crate::store::StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(RulesError::Store(crate::store::StoreError::Unavailable(
        "the pronunciation stream is too busy".into(),
    )))
}

/// The rules in force for a conversion: the subscription's over the global default when the
/// post comes from a subscribed feed, else the global default.
pub async fn in_force(
    store: &dyn crate::store::EventStore,
    feed: Option<&crate::id::FeedId>,
) -> Result<Pronunciations, RulesError> {
    let (global, _) = load_global(store).await?;
    let Some(feed) = feed else { return Ok(global) };
    let (_, subscription) = crate::feed::service::load_feed(store, feed).await?;
    Ok(subscription.pronunciations.over(&global))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(m: &str, say: &str) -> Rule {
        Rule::Substitute { matches: m.into(), say: say.into() }
    }
    fn ipa(m: &str, p: &str) -> Rule {
        Rule::Ipa { matches: m.into(), phonemes: p.into() }
    }
    fn say_as(m: &str, i: InterpretAs) -> Rule {
        Rule::SayAs { matches: m.into(), interpret_as: i }
    }

    fn found<'a>(set: &Pronunciations, text: &'a str) -> Vec<&'a str> {
        set.find(text).into_iter().map(|f| &text[f.start..f.end]).collect()
    }

    #[test]
    fn rules_read_and_write_the_contracts_shape() {
        let json = serde_json::json!({"rules": [
            {"kind": "substitute", "match": "K8s", "say": "Kubernetes"},
            {"kind": "ipa", "match": "Lector", "phonemes": "ˈlɛktɚ"},
            {"kind": "say_as", "match": "NASA", "interpret_as": "characters"},
        ]});
        let set: Pronunciations = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(
            set.rules,
            vec![sub("K8s", "Kubernetes"), ipa("Lector", "ˈlɛktɚ"), say_as("NASA", InterpretAs::Characters)]
        );
        assert_eq!(serde_json::to_value(&set).unwrap(), json);
        assert!(
            serde_json::from_value::<Pronunciations>(
                serde_json::json!({"rules": [{"kind": "shout", "match": "x"}]})
            )
            .is_err()
        );
    }

    #[test]
    fn whole_words_only_case_sensitive_longest_first() {
        let set = Pronunciations::new(vec![
            sub("K8s", "Kubernetes"),
            sub("New York", "the big apple"),
            sub("New", "Old"),
            say_as("C++", InterpretAs::Characters),
        ]);
        assert_eq!(found(&set, "K8s, and K8s."), ["K8s", "K8s"]);
        assert!(found(&set, "MyK8s k8s K8sX K8s_1").is_empty(), "inside words and other cases");
        assert_eq!(found(&set, "New York is New."), ["New York", "New"]);
        assert_eq!(found(&set, "Newer York"), Vec::<&str>::new());
        assert_eq!(found(&set, "I like C++, not C."), ["C++"]);
        assert_eq!(found(&set, "Ünïcode New! éNew"), ["New"]);
    }

    #[test]
    fn only_the_rules_in_a_text_make_its_key() {
        let set = Pronunciations::new(vec![sub("K8s", "Kubernetes"), ipa("Lector", "ˈlɛktɚ")]);
        assert_eq!(set.key_of("Nothing here."), "");
        let k8s = set.key_of("Run K8s.");
        assert!(k8s.contains("Kubernetes") && !k8s.contains("Lector"), "{k8s}");
        let changed = Pronunciations::new(vec![sub("K8s", "Kubernetes"), ipa("Lector", "ˈlɛktər")]);
        assert_eq!(changed.key_of("Run K8s."), k8s, "a rule the text lacks does not change its key");
        assert_ne!(changed.key_of("Lector runs."), set.key_of("Lector runs."));
        // The order of the set does not matter.
        let reordered = Pronunciations::new(vec![ipa("Lector", "ˈlɛktɚ"), sub("K8s", "Kubernetes")]);
        assert_eq!(reordered.key_of("Lector and K8s"), set.key_of("Lector and K8s"));
        assert_eq!(reordered.hash(), set.hash());
        assert_ne!(changed.hash(), set.hash());
    }

    #[test]
    fn validation_names_the_rule_and_why() {
        let bad = |rules: Vec<Rule>| Pronunciations::new(rules).validate().unwrap_err();
        let invalid = |e: PronunciationError| match e {
            PronunciationError::Invalid { index, reason, .. } => (index, reason),
            other => panic!("{other}"),
        };
        assert!(
            Pronunciations::new(vec![sub("K8s", "Kubernetes"), ipa("Lector", "ˈlɛktɚ")]).validate().is_ok()
        );
        assert_eq!(invalid(bad(vec![sub("", "x")])).1, "match is empty");
        let (i, why) = invalid(bad(vec![sub("a", "b"), ipa("Lector", "lector<1>")]));
        assert_eq!(i, 1);
        assert!(why.contains("not IPA"), "{why}");
        let (i, why) = invalid(bad(vec![sub("a", "b"), sub("c", "d"), say_as("a", InterpretAs::Number)]));
        assert_eq!((i, why.as_str()), (2, "rule 0 has the same match"));
        assert!(invalid(bad(vec![sub(&"x".repeat(101), "y")])).1.contains("longer than 100"));
        assert!(invalid(bad(vec![sub(" K8s", "y")])).1.contains("space"));
        assert!(invalid(bad(vec![sub("K8s", " ")])).1.contains("say is empty"));
        assert!(invalid(bad(vec![sub("--", "dash")])).1.contains("no letter"));
        let many = (0..=MAX_RULES).map(|i| sub(&format!("w{i}"), "x")).collect();
        assert_eq!(bad(many), PronunciationError::TooMany { count: MAX_RULES + 1 });
        let message = bad(vec![ipa("Lector", "LECTOR")]).to_string();
        assert!(message.starts_with("rule 0 (\"Lector\"): phonemes hold 'L'"), "{message}");
    }

    #[test]
    fn a_subscriptions_rules_win_over_the_default() {
        let feed = Pronunciations::new(vec![sub("K8s", "kates")]);
        let global = Pronunciations::new(vec![sub("K8s", "Kubernetes"), ipa("Lector", "ˈlɛktɚ")]);
        assert_eq!(feed.over(&global).rules, vec![sub("K8s", "kates"), ipa("Lector", "ˈlɛktɚ")]);
        assert_eq!(Pronunciations::default().over(&global), global);
    }
}
