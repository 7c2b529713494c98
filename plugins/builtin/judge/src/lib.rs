//! `builtin:judge`: picks the candidate this user would prefer, as an LLM-as-a-personalized-judge
//! with verbal certainty (spec/language.md §8.6).
//!
//! - **pairwise** (default): candidates are compared two at a time. Up to four candidates play a
//!   round robin (every pair, n(n−1)/2 calls); more play a single-elimination bracket (n−1
//!   calls, a bye for the odd one out). Every other call shows the pair in swapped order, to
//!   cancel the judge's position bias. A reply without a readable verdict is a tie with
//!   certainty 0. `scores` are win counts (a tie is half a win each). The round robin's winner
//!   has the most wins, then the most certainty-weighted margin, then the earliest position.
//! - **pointwise**: each candidate is scored 1–10 alone; `scores` are those scores (0 when
//!   unreadable); the highest wins, then the more certain, then the earliest.
//!
//! `certainty` is the winner's: the mean over its comparisons of the stated certainty of each
//! one it won (a comparison it did not win counts 0); in pointwise mode the certainty stated
//! with its score. A verdict without a stated certainty counts 50. `confident` says whether
//! `certainty` reached `min-certainty`. One candidate is returned as is, without asking the LLM,
//! with certainty 100.

pub mod parse;

use tailor_plugin_sdk::host::{self, CompletionRequest};
use tailor_plugin_sdk::prelude::*;

use parse::{Verdict, parse_certainty, parse_score, parse_verdict};

/// The certainty a readable verdict gets when the judge states none.
const UNSTATED_CERTAINTY: f64 = 50.0;
/// Up to this many candidates, every pair is compared.
const ROUND_ROBIN_MAX: usize = 4;

pub struct Judge;

impl Plugin for Judge {
    fn describe() -> Descriptor {
        Descriptor::builder("builtin:judge", env!("CARGO_PKG_VERSION"), StageKind::Judge)
            .summary("picks the candidate this user would prefer, with verbal certainty")
            .input(InputPort::new("candidates", "list<text>").doc("the candidates to judge"))
            .input(InputPort::new("persona", "text").optional().doc("who the user is (e.g. a profile summary)"))
            .input(InputPort::new("task", "text").optional().doc("what the candidates answer"))
            .output("best", "text", "the preferred candidate")
            .output("index", "number", "its position in `candidates`, from 0")
            .output("certainty", "number", "the judge's stated certainty, 1–100")
            .output("confident", "bool", "whether certainty reached `min-certainty`")
            .output("scores", "list<number>", "per-candidate scores (pointwise mode) or win counts (pairwise)")
            .config(
                ConfigField::choice("mode", ["pairwise", "pointwise"])
                    .default("pairwise")
                    .doc("compare candidates in pairs, or score each alone"),
            )
            .config(
                ConfigField::number("min-certainty", 1.0, 100.0)
                    .default(1.0)
                    .doc("below this certainty the verdict is not trusted"),
            )
            .config(ConfigField::text("criteria").doc("what makes a candidate better, in words"))
            .grant(Capability::Complete)
            .build()
    }

    fn run(_ctx: &Context, inputs: &Inputs, config: &Config) -> Result<Outputs, StageError> {
        let candidates = inputs.texts("candidates")?;
        if candidates.is_empty() {
            return Err(StageError::invalid_input("input `candidates` is empty: nothing to judge"));
        }
        let brief = Brief {
            persona: inputs.opt_text("persona")?.unwrap_or_default().trim().to_owned(),
            task: inputs.opt_text("task")?.unwrap_or_default().trim().to_owned(),
            criteria: config.opt_text("criteria")?.unwrap_or_default().trim().to_owned(),
        };
        let decision = if candidates.len() == 1 {
            Decision { index: 0, certainty: 100.0, scores: vec![0.0] }
        } else {
            match config.choice("mode")? {
                "pointwise" => pointwise(&candidates, &brief, &mut ask_llm)?,
                _ => pairwise(&candidates, &brief, &mut ask_llm)?,
            }
        };
        let min_certainty = config.number("min-certainty")?;
        Ok(Outputs::new()
            .text("best", candidates[decision.index].clone())
            .number("index", decision.index as f64)
            .number("certainty", decision.certainty)
            .bool("confident", decision.certainty >= min_certainty)
            .numbers("scores", decision.scores))
    }
}

export_plugin!(Judge);

/// What the judge is told besides the candidates.
#[derive(Debug, Clone, Default)]
pub struct Brief {
    pub persona: String,
    pub task: String,
    pub criteria: String,
}

/// The outcome of judging.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub index: usize,
    pub certainty: f64,
    pub scores: Vec<f64>,
}

fn ask_llm(system: &str, user: &str) -> Result<String, StageError> {
    let request = CompletionRequest::new().system(system).user(user).temperature(0.0).max_tokens(300);
    let completion = host::complete(&request)?;
    Ok(completion.text().unwrap_or_default().to_owned())
}

const SYSTEM: &str = "You are a careful judge who predicts which response a specific user would prefer. \
Judge by what is known about the user and by the criteria, not by length or by the order of the responses.";

fn context_sections(brief: &Brief) -> String {
    let or = |s: &str, fallback: &str| if s.is_empty() { fallback.to_owned() } else { s.to_owned() };
    format!(
        "# User\n{}\n\n# Task\n{}\n\n# Criteria\n{}\n\n",
        or(&brief.persona, "Nothing is known about this user; judge for a typical user."),
        or(&brief.task, "Not stated."),
        or(&brief.criteria, "Which response this user would find more helpful and more to their taste."),
    )
}

/// The prompt comparing two responses, shown as A and B.
pub fn pairwise_prompt(brief: &Brief, a: &str, b: &str) -> String {
    format!(
        "Decide which of two responses this user would prefer.\n\n{}# Response A\n{a}\n\n# Response B\n{b}\n\n\
         Give a brief reason, then end with exactly these two lines:\n\
         Verdict: [[A]] or [[B]]\n\
         Certainty: a number from 1 to 100 saying how sure you are",
        context_sections(brief)
    )
}

/// The prompt scoring one response.
pub fn pointwise_prompt(brief: &Brief, response: &str) -> String {
    format!(
        "Rate how well this response would suit this user.\n\n{}# Response\n{response}\n\n\
         Give a brief reason, then end with exactly these two lines:\n\
         Score: a whole number from 1 (poor fit) to 10 (perfect fit)\n\
         Certainty: a number from 1 to 100 saying how sure you are",
        context_sections(brief)
    )
}

/// One pairwise comparison between candidates `i` and `j`.
#[derive(Debug, Clone, PartialEq)]
struct Comparison {
    i: usize,
    j: usize,
    /// The preferred candidate, `None` for a tie.
    winner: Option<usize>,
    certainty: f64,
}

/// Asks the judge about one pair; `swap` shows `j` as A.
fn compare(
    candidates: &[String],
    brief: &Brief,
    (i, j): (usize, usize),
    swap: bool,
    ask: &mut impl FnMut(&str, &str) -> Result<String, StageError>,
) -> Result<Comparison, StageError> {
    let (first, second) = if swap { (j, i) } else { (i, j) };
    let reply = ask(SYSTEM, &pairwise_prompt(brief, &candidates[first], &candidates[second]))?;
    Ok(match parse_verdict(&reply) {
        Some(verdict) => Comparison {
            i,
            j,
            winner: Some(if verdict == Verdict::First { first } else { second }),
            certainty: parse_certainty(&reply).unwrap_or(UNSTATED_CERTAINTY),
        },
        None => {
            host::warn("judge: no verdict in the reply; counting a tie");
            Comparison { i, j, winner: None, certainty: 0.0 }
        }
    })
}

/// Pairwise judging: a round robin for up to four candidates, a single-elimination bracket
/// beyond. `ask(system, user)` is the LLM.
pub fn pairwise(
    candidates: &[String],
    brief: &Brief,
    ask: &mut impl FnMut(&str, &str) -> Result<String, StageError>,
) -> Result<Decision, StageError> {
    let n = candidates.len();
    let mut comparisons: Vec<Comparison> = Vec::new();
    let mut call = 0usize;
    let mut play = |pair: (usize, usize), comparisons: &mut Vec<Comparison>| -> Result<Option<usize>, StageError> {
        let c = compare(candidates, brief, pair, call % 2 == 1, ask)?;
        call += 1;
        let winner = c.winner;
        comparisons.push(c);
        Ok(winner)
    };
    let index = if n <= ROUND_ROBIN_MAX {
        for i in 0..n {
            for j in i + 1..n {
                play((i, j), &mut comparisons)?;
            }
        }
        round_robin_winner(n, &comparisons)
    } else {
        let mut round: Vec<usize> = (0..n).collect();
        while round.len() > 1 {
            let mut next = Vec::with_capacity(round.len().div_ceil(2));
            for pair in round.chunks(2) {
                match *pair {
                    [i, j] => next.push(play((i, j), &mut comparisons)?.unwrap_or(i)),
                    [bye] => next.push(bye),
                    _ => unreachable!("invariant: chunks(2) yields one or two"),
                }
            }
            round = next;
        }
        round[0]
    };
    Ok(Decision { index, certainty: winner_certainty(index, &comparisons), scores: win_counts(n, &comparisons) })
}

fn win_counts(n: usize, comparisons: &[Comparison]) -> Vec<f64> {
    let mut wins = vec![0.0; n];
    for c in comparisons {
        match c.winner {
            Some(w) => wins[w] += 1.0,
            None => {
                wins[c.i] += 0.5;
                wins[c.j] += 0.5;
            }
        }
    }
    wins
}

fn round_robin_winner(n: usize, comparisons: &[Comparison]) -> usize {
    let wins = win_counts(n, comparisons);
    let margin = |k: usize| -> f64 {
        comparisons
            .iter()
            .filter(|c| c.i == k || c.j == k)
            .map(|c| match c.winner {
                Some(w) if w == k => c.certainty,
                Some(_) => -c.certainty,
                None => 0.0,
            })
            .sum()
    };
    (0..n)
        .max_by(|&a, &b| wins[a].total_cmp(&wins[b]).then(margin(a).total_cmp(&margin(b))).then(b.cmp(&a)))
        .expect("invariant: at least two candidates")
}

fn winner_certainty(winner: usize, comparisons: &[Comparison]) -> f64 {
    let played: Vec<f64> = comparisons
        .iter()
        .filter(|c| c.i == winner || c.j == winner)
        .map(|c| if c.winner == Some(winner) { c.certainty } else { 0.0 })
        .collect();
    if played.is_empty() { 0.0 } else { played.iter().sum::<f64>() / played.len() as f64 }
}

/// Pointwise judging: each candidate scored alone.
pub fn pointwise(
    candidates: &[String],
    brief: &Brief,
    ask: &mut impl FnMut(&str, &str) -> Result<String, StageError>,
) -> Result<Decision, StageError> {
    let mut scores = Vec::with_capacity(candidates.len());
    let mut certainties = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let reply = ask(SYSTEM, &pointwise_prompt(brief, candidate))?;
        match parse_score(&reply) {
            Some(score) => {
                scores.push(score);
                certainties.push(parse_certainty(&reply).unwrap_or(UNSTATED_CERTAINTY));
            }
            None => {
                host::warn("judge: no score in the reply; counting 0");
                scores.push(0.0);
                certainties.push(0.0);
            }
        }
    }
    let index = (0..candidates.len())
        .max_by(|&a, &b| {
            scores[a].total_cmp(&scores[b]).then(certainties[a].total_cmp(&certainties[b])).then(b.cmp(&a))
        })
        .expect("invariant: at least two candidates");
    Ok(Decision { index, certainty: certainties[index], scores })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_plugin_sdk::testing::{FakeHost, call, with_host};

    fn texts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("candidate-{i}")).collect()
    }

    /// A judge that prefers the candidate with the highest number, at certainty 90.
    fn prefers_highest(_: &str, user: &str) -> Result<String, StageError> {
        let a = user.split("# Response A\ncandidate-").nth(1).and_then(|s| s[..1].parse::<u32>().ok()).expect("A");
        let b = user.split("# Response B\ncandidate-").nth(1).and_then(|s| s[..1].parse::<u32>().ok()).expect("B");
        Ok(format!("Reason.\nVerdict: [[{}]]\nCertainty: 90", if a > b { "A" } else { "B" }))
    }

    #[test]
    fn round_robin_for_up_to_four_with_swapped_order_on_alternate_calls() {
        let mut prompts = Vec::new();
        let mut ask = |s: &str, u: &str| {
            prompts.push(u.to_owned());
            prefers_highest(s, u)
        };
        let d = pairwise(&texts(4), &Brief::default(), &mut ask).unwrap();
        assert_eq!(prompts.len(), 6);
        assert_eq!(d, Decision { index: 3, certainty: 90.0, scores: vec![0.0, 1.0, 2.0, 3.0] });
        assert!(prompts[0].contains("# Response A\ncandidate-0"));
        assert!(prompts[1].contains("# Response A\ncandidate-2"), "second call swaps the pair (0, 2)");
    }

    #[test]
    fn single_elimination_beyond_four_stays_within_budget() {
        let mut calls = 0;
        let mut ask = |s: &str, u: &str| {
            calls += 1;
            prefers_highest(s, u)
        };
        let d = pairwise(&texts(7), &Brief::default(), &mut ask).unwrap();
        assert_eq!(d.index, 6);
        assert_eq!(calls, 6);
        assert!(calls <= 7 * 6 / 2);
        assert_eq!(d.certainty, 90.0);
    }

    #[test]
    fn unparseable_replies_are_ties_with_zero_certainty() {
        let mut ask = |_: &str, _: &str| Ok("I cannot decide.".to_owned());
        let d = pairwise(&texts(3), &Brief::default(), &mut ask).unwrap();
        assert_eq!(d.index, 0);
        assert_eq!(d.certainty, 0.0);
        assert_eq!(d.scores, vec![1.0, 1.0, 1.0]);
    }

    #[test]
    fn position_bias_cancels_out() {
        // A judge that always says A: with alternating order, each candidate wins once.
        let mut ask = |_: &str, _: &str| Ok("[[A]] Certainty: 70".to_owned());
        let d = pairwise(&texts(2), &Brief::default(), &mut ask).unwrap();
        assert_eq!(d.scores, vec![1.0, 0.0]);
        let mut ask = |_: &str, _: &str| Ok("[[A]] Certainty: 70".to_owned());
        let d = pairwise(&texts(3), &Brief::default(), &mut ask).unwrap();
        // (0,1) → 0; (0,2) swapped → 2; (1,2) → 1.
        assert_eq!(d.scores, vec![1.0, 1.0, 1.0]);
    }

    #[test]
    fn pointwise_picks_highest_score_then_certainty() {
        let mut n = 0;
        let mut ask = |_: &str, _: &str| {
            n += 1;
            Ok(match n {
                1 => "Score: 7\nCertainty: 60",
                2 => "Score: 9\nCertainty: 40",
                3 => "Score: 9\nCertainty: 80",
                _ => "no idea",
            }
            .to_owned())
        };
        let d = pointwise(&texts(4), &Brief::default(), &mut ask).unwrap();
        assert_eq!(d, Decision { index: 2, certainty: 80.0, scores: vec![7.0, 9.0, 9.0, 0.0] });
    }

    #[test]
    fn prompts_carry_persona_task_and_criteria() {
        let brief = Brief { persona: "Likes puns.".into(), task: "Name a cat.".into(), criteria: "Funny.".into() };
        let p = pairwise_prompt(&brief, "Purrcy", "Tom");
        for part in
            ["Likes puns.", "Name a cat.", "Funny.", "# Response A\nPurrcy", "# Response B\nTom", "[[A]] or [[B]]"]
        {
            assert!(p.contains(part), "{part}");
        }
        assert!(pointwise_prompt(&brief, "Tom").contains("Score:"));
    }

    #[test]
    fn one_candidate_is_returned_without_asking() {
        let (out, fake) =
            with_host(FakeHost::new(), || call::<Judge>(Inputs::new().with("candidates", vec!["only"]), Config::new()));
        let out = out.unwrap();
        assert!(fake.requests.is_empty());
        assert_eq!(out.get("best"), Some(&Value::Text("only".into())));
        assert_eq!(out.get("index"), Some(&Value::Number(0.0)));
        assert_eq!(out.get("confident"), Some(&Value::Bool(true)));
    }

    #[test]
    fn runs_through_the_host_and_reports_confidence() {
        let fake = FakeHost::new().reply_with(|r| {
            let user = &r.messages[1].content;
            Ok(if user.contains("# Response A\nshort") { "[[A]]\nCertainty: 55" } else { "[[B]]\nCertainty: 55" }
                .to_owned())
        });
        let inputs = Inputs::new().with("candidates", vec!["long answer", "short"]).with("persona", "Prefers brevity.");
        let (out, fake) = with_host(fake, || call::<Judge>(inputs, Config::new().with("min-certainty", 60.0)));
        let out = out.unwrap();
        assert_eq!(out.get("best"), Some(&Value::Text("short".into())));
        assert_eq!(out.get("index"), Some(&Value::Number(1.0)));
        assert_eq!(out.get("certainty"), Some(&Value::Number(55.0)));
        assert_eq!(out.get("confident"), Some(&Value::Bool(false)));
        assert_eq!(fake.requests.len(), 1);
        assert_eq!(fake.requests[0].temperature, 0.0);
    }

    #[test]
    fn no_candidates_is_invalid_input() {
        let out = call::<Judge>(Inputs::new().with("candidates", Vec::<String>::new()), Config::new());
        assert!(matches!(out, Err(StageError::InvalidInput(_))));
    }
}
