//! Reading a judge's verdict, certainty and score out of free LLM text. Small models rarely
//! follow the requested format exactly, so each reader accepts the common variants and, where a
//! reply states something more than once, takes the last statement (the conclusion).
//!
//! Pure functions, no host: unit-tested with awkward replies.

use std::sync::LazyLock;

use regex::Regex;

/// Which of the two presented responses the judge preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The first presented (`A`).
    First,
    /// The second presented (`B`).
    Second,
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("invariant: judge patterns are valid")
}

/// An echo of the format instruction, which names both answers.
static ECHO: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\[\[\s*a\s*\]\]\s*(?:or|/|\|)\s*\[\[\s*b\s*\]\]"));
static DOUBLE_BRACKET: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\[\[\s*(a|b)\s*\]\]"));
static SINGLE_BRACKET: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\[\s*(a|b)\s*\]"));
/// `Answer: A`, `Output (a)`, `The better response is B`, `I prefer A`: a keyword, then the
/// letter in parentheses, as a capital, or as a lower-case letter that ends the phrase (a
/// lower-case `a` mid-sentence is usually the article).
static KEYWORD: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?m)\b(?i:final answer|answer|verdict|output|choice|winner|decision|preference|prefer(?:red)?|choose|pick|better(?: response| one| answer| output)?)\s*(?:is|would be)?\s*[:=\-]?\s*(?i:(?:response|output|option|candidate|answer|assistant)\s*)?(?:\(\s*([abAB])\s*\)|\b([AB])\b|\b([ab])\s*(?:$|[.,;!)]))",
    )
});
/// `Response A is better`.
static NAMED_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:response|output|option|candidate|assistant)\s*\(?\s*(a|b)\s*\)?\s+(?:is|was|would be|seems)\s+(?:clearly\s+|slightly\s+|much\s+)?(?:the\s+)?(?:better|preferred|superior|stronger)",
    )
});
/// The whole reply is just the letter: `B`, `(a)`, `[B].`
static BARE: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)^\s*[(\[]?\s*(a|b)\s*[)\]]?\s*\.?\s*$"));

static CERTAINTY_KEYWORD: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:certainty|confidence|confident|sure)\s*(?:level|score)?\s*(?:is|of|:|=|-|at)?\s*[:=]?\s*([0-9]{1,3}(?:\.[0-9]+)?)\s*(%|/\s*100\b|out of 100\b)?",
    )
});
static OUT_OF_100: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\b([0-9]{1,3}(?:\.[0-9]+)?)\s*(?:/|out of)\s*100\b"));
static PERCENT: LazyLock<Regex> = LazyLock::new(|| regex(r"\b([0-9]{1,3}(?:\.[0-9]+)?)\s*%"));

static SCORE_BRACKET: LazyLock<Regex> = LazyLock::new(|| regex(r"\[\[\s*([0-9]{1,2}(?:\.[0-9]+)?)\s*\]\]"));
static SCORE_KEYWORD: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:score|rating|rate|grade)\s*(?:is|of)?\s*[:=\-]?\s*([0-9]{1,2}(?:\.[0-9]+)?)(?:\s*(?:/|out of)\s*10\b)?",
    )
});
static OUT_OF_10: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\b([0-9]{1,2}(?:\.[0-9]+)?)\s*(?:/|out of)\s*10\b"));

/// Markdown emphasis gets between keywords and answers (`**Answer:** A`).
fn plain(reply: &str) -> String {
    reply.replace(['*', '_', '`', '#'], "")
}

fn letter(s: &str) -> Verdict {
    if s.eq_ignore_ascii_case("a") { Verdict::First } else { Verdict::Second }
}

/// The judge's verdict, or `None` when the reply names no answer.
pub fn parse_verdict(reply: &str) -> Option<Verdict> {
    let text = plain(reply);
    let text = ECHO.replace_all(&text, " ");
    if let Some(c) = DOUBLE_BRACKET.captures_iter(&text).last() {
        return Some(letter(&c[1]));
    }
    if let Some(c) = KEYWORD.captures_iter(&text).last() {
        let found = c.get(1).or(c.get(2)).or(c.get(3)).expect("invariant: one letter group matched");
        return Some(letter(found.as_str()));
    }
    if let Some(c) = NAMED_FIRST.captures_iter(&text).last() {
        return Some(letter(&c[1]));
    }
    if let Some(c) = SINGLE_BRACKET.captures_iter(&text).last() {
        return Some(letter(&c[1]));
    }
    BARE.captures(&text).map(|c| letter(&c[1]))
}

/// The judge's stated certainty on a 1–100 scale, or `None` when it gives none. A fraction
/// written as `0.85` (without `%` or `/100`) is read as 85; values above 100 are ignored.
pub fn parse_certainty(reply: &str) -> Option<f64> {
    let text = plain(reply);
    let keyword = CERTAINTY_KEYWORD.captures_iter(&text).filter_map(|c| {
        let value: f64 = c[1].parse().ok()?;
        let scaled = c.get(2).is_none() && c[1].contains('.') && value <= 1.0;
        Some(if scaled { value * 100.0 } else { value })
    });
    let of_100 = || OUT_OF_100.captures_iter(&text).filter_map(|c| c[1].parse::<f64>().ok()).collect::<Vec<_>>();
    let percent = || PERCENT.captures_iter(&text).filter_map(|c| c[1].parse::<f64>().ok()).collect::<Vec<_>>();
    let valid = |v: &f64| (0.0..=100.0).contains(v);
    keyword
        .filter(valid)
        .last()
        .or_else(|| of_100().into_iter().rfind(valid))
        .or_else(|| percent().into_iter().rfind(valid))
        .map(|v| v.clamp(1.0, 100.0))
}

/// A pointwise score on the 1–10 scale, or `None` when the reply gives none in range.
pub fn parse_score(reply: &str) -> Option<f64> {
    let text = plain(reply);
    let valid = |v: &f64| (1.0..=10.0).contains(v);
    let last = |re: &Regex| re.captures_iter(&text).filter_map(|c| c[1].parse::<f64>().ok()).filter(valid).last();
    last(&SCORE_BRACKET).or_else(|| last(&SCORE_KEYWORD)).or_else(|| last(&OUT_OF_10))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{First, Second};

    #[test]
    fn verdict_in_double_brackets() {
        assert_eq!(parse_verdict("A is concise.\nVerdict: [[A]]\nCertainty: 80"), Some(First));
        assert_eq!(parse_verdict("[[ b ]]"), Some(Second));
        assert_eq!(parse_verdict("**Verdict:** **[[B]]**"), Some(Second));
    }

    #[test]
    fn last_verdict_wins_and_echoed_instructions_are_ignored() {
        assert_eq!(parse_verdict("At first I thought [[A]], but on reflection [[B]]."), Some(Second));
        assert_eq!(parse_verdict("Format: Verdict: [[A]] or [[B]]\nVerdict: [[A]]"), Some(First));
        assert_eq!(parse_verdict("Verdict: [[A]] or [[B]]"), None);
    }

    #[test]
    fn verdict_in_single_brackets() {
        assert_eq!(parse_verdict("My choice: [B]"), Some(Second));
        assert_eq!(parse_verdict("[a]"), Some(First));
    }

    #[test]
    fn verdict_after_a_keyword() {
        assert_eq!(parse_verdict("Answer: A"), Some(First));
        assert_eq!(parse_verdict("answer: b."), Some(Second));
        assert_eq!(parse_verdict("Output (a)"), Some(First));
        assert_eq!(parse_verdict("OUTPUT (B) is what they'd like"), Some(Second));
        assert_eq!(parse_verdict("The better response is B because it is shorter."), Some(Second));
        assert_eq!(parse_verdict("I prefer Response A."), Some(First));
        assert_eq!(parse_verdict("Final answer: Output (b)"), Some(Second));
    }

    #[test]
    fn lower_case_article_is_not_a_verdict() {
        assert_eq!(parse_verdict("The answer is a matter of taste."), None);
        assert_eq!(parse_verdict("I would prefer a shorter reply."), None);
    }

    #[test]
    fn verdict_from_response_is_better() {
        assert_eq!(parse_verdict("Response B is clearly better for this user."), Some(Second));
        assert_eq!(parse_verdict("Output (a) is the better one."), Some(First));
    }

    #[test]
    fn bare_letter_reply() {
        assert_eq!(parse_verdict(" B. "), Some(Second));
        assert_eq!(parse_verdict("(a)"), Some(First));
    }

    #[test]
    fn no_verdict_in_rambling() {
        assert_eq!(parse_verdict("Both responses have merits; it depends."), None);
        assert_eq!(parse_verdict(""), None);
    }

    #[test]
    fn certainty_forms() {
        assert_eq!(parse_certainty("Certainty: 85"), Some(85.0));
        assert_eq!(parse_certainty("certainty - 70%"), Some(70.0));
        assert_eq!(parse_certainty("I am 90/100 sure"), Some(90.0));
        assert_eq!(parse_certainty("about 60% confident"), Some(60.0));
        assert_eq!(parse_certainty("Confidence level: 0.75"), Some(75.0));
        assert_eq!(parse_certainty("**Certainty:** 99 out of 100"), Some(99.0));
        assert_eq!(parse_certainty("Certainty: 0"), Some(1.0));
    }

    #[test]
    fn certainty_takes_the_last_valid_statement() {
        assert_eq!(parse_certainty("Certainty: 150\nCertainty: 65"), Some(65.0));
        assert_eq!(parse_certainty("Certainty: 150"), None);
        assert_eq!(parse_certainty("Verdict: [[A]]"), None);
    }

    #[test]
    fn score_forms() {
        assert_eq!(parse_score("Score: 7"), Some(7.0));
        assert_eq!(parse_score("I'd rate it 8/10. Certainty: 85/100"), Some(8.0));
        assert_eq!(parse_score("rating = 6.5 out of 10"), Some(6.5));
        assert_eq!(parse_score("[[9]]"), Some(9.0));
        assert_eq!(parse_score("Certainty: 85/100"), None);
        assert_eq!(parse_score("Score: 11"), None);
        assert_eq!(parse_score("Score: 0"), None);
    }
}
