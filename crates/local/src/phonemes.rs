//! Phonemes for the Piper voice: SSML items cut into sentences and clauses, each clause's text
//! turned into IPA by espeak-ng (`espeak-ng -q -m -v VOICE --ipa`, run as a process: espeak-ng is
//! GPL, so it stays out of the binary), the clause's punctuation added back as Piper's own
//! phonemizer does, and IPA from `<phoneme>` put in as it is.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::ssml::{Inline, Item, SayAs};

/// Why phonemes could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhonemizeError {
    /// espeak-ng is not on this machine.
    #[error(
        "espeak-ng is not installed ({program}); the Piper voice needs it for phonemes: apt-get install espeak-ng"
    )]
    NotInstalled { program: String },
    /// espeak-ng has no such voice (language).
    #[error("espeak-ng has no voice '{0}' to make phonemes with")]
    UnknownVoice(String),
    /// espeak-ng ran and failed.
    #[error("espeak-ng failed to make phonemes: {0}")]
    Failed(String),
    /// espeak-ng took too long (a busy machine): another try may do.
    #[error("espeak-ng took longer than {0:?} to make phonemes")]
    TimedOut(Duration),
}

/// One part of a sentence, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// The IPA of `groups[i]` of the plan.
    Group(usize),
    /// IPA put in as it is (from a `<phoneme>`).
    Ipa(String),
    /// A clause's punctuation, as Piper's phonemizer writes it: `.`, `?`, `!`, or `,`, `:`, `;`
    /// followed by a space.
    Punct(&'static str),
}

/// What to synthesize, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// One sentence: one inference.
    Sentence(Vec<Part>),
    /// Silence of this length (a `<break>`).
    Silence(Duration),
}

/// The sentences of an SSML document and the texts espeak-ng is asked to phonemize.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub pieces: Vec<Piece>,
    /// SSML fragments (escaped text, `say-as characters` kept as markup), one per clause part.
    pub groups: Vec<String>,
}

/// Words that end with a period without ending the sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "no", "fig", "approx",
    "inc", "ltd", "co", "mt", "dept", "est", "cf", "al", "ca", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec",
];

/// Closing quotes and brackets that may stand between a clause's punctuation and the space.
fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '}' | '\u{201d}' | '\u{2019}' | '\u{bb}')
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '?' | '!' | ',' | ';' | ':' | '\u{2026}')
}

/// The punctuation a run of terminators stands for, and whether it ends the sentence.
fn punctuation(run: &str) -> (&'static str, bool) {
    if run.contains('?') {
        ("?", true)
    } else if run.contains('!') {
        ("!", true)
    } else if run.contains('.') || run.contains('\u{2026}') {
        (".", true)
    } else if run.contains(';') {
        ("; ", false)
    } else if run.contains(':') {
        (": ", false)
    } else {
        (", ", false)
    }
}

/// Escapes text for the SSML espeak-ng reads; newlines become spaces (a blank line separates
/// the groups).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_whitespace() || c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[derive(Default)]
struct Planner {
    plan: Plan,
    /// The sentence being built.
    sentence: Vec<Part>,
    /// The group (clause text) being built.
    group: String,
}

impl Planner {
    fn flush_group(&mut self) {
        let text = std::mem::take(&mut self.group);
        if text.chars().any(char::is_alphanumeric) {
            self.plan.groups.push(text.trim().to_owned());
            self.sentence.push(Part::Group(self.plan.groups.len() - 1));
        }
    }

    fn end_clause(&mut self, punct: &'static str, ends_sentence: bool) {
        self.flush_group();
        if self.sentence.iter().any(|p| !matches!(p, Part::Punct(_))) {
            self.sentence.push(Part::Punct(punct));
        }
        if ends_sentence {
            self.end_sentence();
        }
    }

    fn end_sentence(&mut self) {
        self.flush_group();
        let mut sentence = std::mem::take(&mut self.sentence);
        if !sentence.iter().any(|p| matches!(p, Part::Group(_) | Part::Ipa(_))) {
            return;
        }
        // A sentence without final punctuation (a heading) is spoken as a statement.
        match sentence.last_mut() {
            Some(Part::Punct(p)) if matches!(*p, "." | "?" | "!") => {}
            Some(Part::Punct(p)) => *p = ".",
            _ => sentence.push(Part::Punct(".")),
        }
        self.plan.pieces.push(Piece::Sentence(sentence));
    }

    fn silence(&mut self, pause: Duration) {
        self.end_sentence();
        match self.plan.pieces.last_mut() {
            Some(Piece::Silence(d)) => *d += pause,
            _ => self.plan.pieces.push(Piece::Silence(pause)),
        }
    }

    /// Text, cut at clause punctuation followed by a space (or by the end of the text when
    /// nothing inline follows).
    fn text(&mut self, text: &str, last_inline: bool) {
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !is_terminator(c) {
                self.group.push_str(&escape(c.encode_utf8(&mut [0; 4])));
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len() && is_terminator(chars[i]) {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            let mut after = i;
            while after < chars.len() && is_closer(chars[after]) {
                after += 1;
            }
            let at_space = after < chars.len() && chars[after].is_whitespace();
            let at_end = after == chars.len() && last_inline;
            if !(at_space || at_end) || self.is_abbreviation(&run) {
                self.group.push_str(&run);
                continue;
            }
            let (punct, ends) = punctuation(&run);
            // Closing quotes belong to the clause that ends.
            let closers: String = chars[i..after].iter().collect();
            self.group.push_str(&escape(&closers));
            i = after;
            self.end_clause(punct, ends);
        }
    }

    /// A single period after a known abbreviation or an initial ("J. R. R. Tolkien").
    fn is_abbreviation(&self, run: &str) -> bool {
        if run != "." {
            return false;
        }
        let word: String = self
            .group
            .chars()
            .rev()
            .take_while(|c| !c.is_whitespace())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let word = word.trim_start_matches(['(', '"', '\'', '\u{201c}']).to_lowercase();
        (word.chars().count() == 1 && word.chars().all(char::is_alphabetic))
            || ABBREVIATIONS.contains(&word.as_str())
    }
}

/// Cuts SSML items into sentences of clauses. Text is escaped into the groups as it is read,
/// so nothing in it can become markup for espeak-ng.
pub fn plan(items: &[Item]) -> Plan {
    let mut p = Planner::default();
    for (n, item) in items.iter().enumerate() {
        let last_inline = !matches!(items.get(n + 1), Some(Item::Inline(_)));
        match item {
            Item::Inline(Inline::Text(text)) => p.text(text, last_inline),
            Item::Inline(Inline::SayAs(SayAs::Characters, text)) => {
                p.group.push_str("<say-as interpret-as=\"characters\">");
                p.group.push_str(&escape(text));
                p.group.push_str("</say-as>");
            }
            Item::Inline(Inline::SayAs(SayAs::AsText, text)) => p.group.push_str(&escape(text)),
            Item::Inline(Inline::Phonemes(ipa)) => {
                p.flush_group();
                p.sentence.push(Part::Ipa(ipa.trim().to_owned()));
            }
            Item::Break(pause) => p.silence(*pause),
            Item::SentenceEnd => p.end_sentence(),
        }
    }
    p.end_sentence();
    p.plan
}

/// The IPA of a sentence: its groups' IPA, phonemes and punctuation, in order.
pub fn sentence_ipa(parts: &[Part], group_ipa: &[String]) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Group(_) | Part::Ipa(_) if !out.is_empty() && !out.ends_with(' ') => out.push(' '),
            _ => {}
        }
        match part {
            Part::Group(i) => out.push_str(group_ipa.get(*i).map(String::as_str).unwrap_or("")),
            Part::Ipa(ipa) => out.push_str(ipa),
            Part::Punct(p) => out.push_str(p),
        }
    }
    out.trim_end().to_owned()
}

/// espeak-ng as a phonemizer.
#[derive(Debug, Clone)]
pub struct EspeakPhonemizer {
    program: PathBuf,
    timeout: Duration,
}

impl Default for EspeakPhonemizer {
    fn default() -> Self {
        Self::new("espeak-ng")
    }
}

impl EspeakPhonemizer {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self { program: program.into(), timeout: Duration::from_secs(60) }
    }

    /// The program's version line (`eSpeak NG text-to-speech: 1.51`): its phonemes decide the
    /// sound, so it is part of the voice's fingerprint.
    pub async fn version(&self) -> Result<String, PhonemizeError> {
        let out = self.command().arg("--version").output().await.map_err(|e| self.spawn_error(e))?;
        if !out.status.success() {
            return Err(PhonemizeError::Failed(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
        }
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        Ok(line.split("Data at").next().unwrap_or(&line).trim().to_owned())
    }

    fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        cmd
    }

    fn spawn_error(&self, e: std::io::Error) -> PhonemizeError {
        if e.kind() == std::io::ErrorKind::NotFound {
            PhonemizeError::NotInstalled { program: self.program.display().to_string() }
        } else {
            PhonemizeError::Failed(format!("cannot run {}: {e}", self.program.display()))
        }
    }

    /// The IPA of each group, in order. One process for all of them: the groups are separated
    /// by blank lines, which espeak-ng keeps in its output. When the output does not split into
    /// as many groups (a group that gives no phonemes), each group is asked alone.
    pub async fn ipa(&self, voice: &str, groups: &[String]) -> Result<Vec<String>, PhonemizeError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.run(voice, &groups.join("\n\n")).await?;
        let split = split_groups(&out);
        if split.len() == groups.len() {
            return Ok(split);
        }
        tracing::debug!(
            asked = groups.len(),
            got = split.len(),
            "espeak-ng groups did not line up; one at a time"
        );
        let mut each = Vec::with_capacity(groups.len());
        for group in groups {
            each.push(split_groups(&self.run(voice, group).await?).join(" "));
        }
        Ok(each)
    }

    async fn run(&self, voice: &str, body: &str) -> Result<String, PhonemizeError> {
        let mut cmd = self.command();
        cmd.args(["-q", "-m", "--ipa", "-v", voice, "--stdin"]).stdin(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| self.spawn_error(e))?;
        let mut stdin =
            child.stdin.take().ok_or_else(|| PhonemizeError::Failed("espeak-ng has no stdin".into()))?;
        let input = format!("<speak>{body}</speak>\n").into_bytes();
        // Written beside the reading, so a long input cannot fill both pipes and stall.
        let writer = tokio::spawn(async move {
            let written = stdin.write_all(&input).await;
            drop(stdin);
            written
        });
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| PhonemizeError::TimedOut(self.timeout))?
            .map_err(|e| PhonemizeError::Failed(e.to_string()))?;
        let _ = writer.await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("voice does not exist") {
            return Err(PhonemizeError::UnknownVoice(voice.to_owned()));
        }
        if !out.status.success() {
            return Err(PhonemizeError::Failed(format!("{}: {}", out.status, stderr.trim())));
        }
        String::from_utf8(out.stdout).map_err(|_| PhonemizeError::Failed("its output is not UTF-8".into()))
    }
}

/// espeak-ng's IPA output cut at blank lines; the lines of one group joined by a space (it
/// starts a new line at some abbreviations).
fn split_groups(out: &str) -> Vec<String> {
    let out = out.replace("\r\n", "\n");
    let out = out.trim_matches('\n');
    if out.trim().is_empty() {
        return Vec::new();
    }
    out.split("\n\n")
        .map(|group| group.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" "))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssml::parse;

    fn planned(ssml: &str) -> Plan {
        plan(&parse(ssml).unwrap())
    }

    fn groups(p: &Plan) -> Vec<&str> {
        p.groups.iter().map(String::as_str).collect()
    }

    #[test]
    fn clauses_end_at_punctuation_followed_by_a_space_and_keep_it_as_piper_does() {
        let p = planned("<speak>Hello, world. Is this a test?! Yes; it is: a small one</speak>");
        assert_eq!(groups(&p), ["Hello", "world", "Is this a test", "Yes", "it is", "a small one"]);
        assert_eq!(
            p.pieces,
            vec![
                Piece::Sentence(vec![Part::Group(0), Part::Punct(", "), Part::Group(1), Part::Punct(".")]),
                Piece::Sentence(vec![Part::Group(2), Part::Punct("?")]),
                // No final punctuation (a heading, a list item): spoken as a statement.
                Piece::Sentence(vec![
                    Part::Group(3),
                    Part::Punct("; "),
                    Part::Group(4),
                    Part::Punct(": "),
                    Part::Group(5),
                    Part::Punct("."),
                ]),
            ]
        );
    }

    #[test]
    fn abbreviations_initials_and_decimals_do_not_end_a_clause() {
        let p = planned("<speak>Dr. Smith and J. R. Jones paid 3.14 dollars, e.g. for apples.</speak>");
        assert_eq!(groups(&p), ["Dr. Smith and J. R. Jones paid 3.14 dollars", "e.g. for apples"]);
        assert_eq!(p.pieces.len(), 1);
    }

    #[test]
    fn closing_quotes_stay_with_their_clause() {
        let p = planned("<speak>He said \u{201c}stop.\u{201d} Then he left.</speak>");
        assert_eq!(groups(&p), ["He said \u{201c}stop\u{201d}", "Then he left"]);
    }

    #[test]
    fn breaks_are_silences_between_sentences() {
        let p =
            planned("<speak>One.<break time=\"500ms\"/>Two <break time=\"1s\"/><break time=\"1s\"/></speak>");
        assert_eq!(
            p.pieces,
            vec![
                Piece::Sentence(vec![Part::Group(0), Part::Punct(".")]),
                Piece::Silence(Duration::from_millis(500)),
                Piece::Sentence(vec![Part::Group(1), Part::Punct(".")]),
                Piece::Silence(Duration::from_secs(2)),
            ]
        );
    }

    #[test]
    fn phonemes_go_in_as_they_are_between_the_texts_around_them() {
        let p = planned(
            "<speak>I say <phoneme alphabet=\"ipa\" ph=\"təˈmɑːtoʊ\">tomato</phoneme>, you too.</speak>",
        );
        assert_eq!(groups(&p), ["I say", "you too"]);
        let Piece::Sentence(parts) = &p.pieces[0] else { panic!("{p:?}") };
        assert_eq!(
            parts,
            &vec![
                Part::Group(0),
                Part::Ipa("təˈmɑːtoʊ".into()),
                Part::Punct(", "),
                Part::Group(1),
                Part::Punct("."),
            ]
        );
        let ipa = sentence_ipa(parts, &["aɪ sˈeɪ".into(), "juː tˈuː".into()]);
        assert_eq!(ipa, "aɪ sˈeɪ təˈmɑːtoʊ, juː tˈuː.");
    }

    #[test]
    fn text_is_escaped_for_espeak_and_say_as_characters_stays_markup() {
        let p = planned(
            "<speak>R&amp;D &lt;b&gt; uses the <say-as interpret-as=\"characters\">API</say-as> daily</speak>",
        );
        assert_eq!(
            groups(&p),
            ["R&amp;D &lt;b&gt; uses the <say-as interpret-as=\"characters\">API</say-as> daily"]
        );
    }

    #[test]
    fn blank_lines_split_espeaks_output_into_groups() {
        assert_eq!(split_groups("wˈʌn\n\ndˈɑːktɚ\nsmˈɪθ\n\ntˈuː\n\n"), ["wˈʌn", "dˈɑːktɚ smˈɪθ", "tˈuː"]);
        // A group that gives no phonemes is an empty group, so the others still line up.
        assert_eq!(split_groups("wˈʌn\n\n\n\ntˈuː\n"), ["wˈʌn", "", "tˈuː"]);
        assert!(split_groups("\n").is_empty());
    }

    #[tokio::test]
    async fn espeak_gives_each_group_its_ipa() {
        let espeak = EspeakPhonemizer::default();
        let ipa = espeak
            .ipa(
                "en-us",
                &[
                    "Hello".into(),
                    "Dr. Smith".into(),
                    "--".into(),
                    "<say-as interpret-as=\"characters\">API</say-as>".into(),
                ],
            )
            .await
            .unwrap();
        assert_eq!(ipa, ["həlˈoʊ", "dˈɑːktɚ smˈɪθ", "", "ˌeɪpˌiːˈaɪ"]);
        assert!(espeak.version().await.unwrap().starts_with("eSpeak NG"));
        let err = espeak.ipa("xx-nowhere", &["Hello".into()]).await.unwrap_err();
        assert_eq!(err, PhonemizeError::UnknownVoice("xx-nowhere".into()));
        let missing = EspeakPhonemizer::new("/nonexistent/espeak-ng").ipa("en-us", &["a".into()]).await;
        assert!(matches!(missing, Err(PhonemizeError::NotInstalled { .. })), "{missing:?}");
    }
}
