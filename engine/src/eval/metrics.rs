//! The LaMP benchmark's metrics, computed as its evaluation scripts compute them, and a paired
//! bootstrap for comparing two pipelines on the same rows.
//!
//! - **accuracy** and **macro-F1** (LaMP-1/2, classification): a prediction matches a gold label
//!   when both are equal after trimming and lowercasing. Macro-F1 averages the F1 of every label
//!   that occurs in the gold outputs (scikit-learn's `f1_score(average="macro", labels=gold)`):
//!   a prediction outside that set counts against the gold label's recall and for no label.
//! - **MAE** and **RMSE** (LaMP-3, ratings): a prediction is the trimmed text read as a decimal
//!   number; one that does not read as a finite number is scored as the rating farthest from the
//!   gold one within the scale (1–5 by default), as LaMP's script does.
//! - **ROUGE-1** and **ROUGE-L** (LaMP-4…7): F-measures as Google's `rouge_score` computes them
//!   without stemming (the default of Hugging Face's `evaluate`, which LaMP uses): lowercase, every
//!   run of characters other than `a-z0-9` is a separator (so "don't" is "don t" and "café" is
//!   "caf"), unigram overlap clipped by counts, and the longest common subsequence. The corpus
//!   value is the mean of the rows' F-measures.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// A metric of [`score`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Accuracy,
    MacroF1,
    Mae,
    Rmse,
    Rouge1,
    RougeL,
}

impl Metric {
    pub const ALL: [Metric; 6] =
        [Metric::Accuracy, Metric::MacroF1, Metric::Mae, Metric::Rmse, Metric::Rouge1, Metric::RougeL];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::MacroF1 => "macro-f1",
            Metric::Mae => "mae",
            Metric::Rmse => "rmse",
            Metric::Rouge1 => "rouge-1",
            Metric::RougeL => "rouge-l",
        }
    }

    /// Whether a larger value is better (errors are smaller-is-better).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::Mae | Metric::Rmse)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Metric, String> {
        Metric::ALL.into_iter().find(|m| m.name() == s.to_ascii_lowercase()).ok_or_else(|| {
            let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            format!("unknown metric `{s}` (expected one of {})", names.join(", "))
        })
    }
}

/// The rating scale of MAE and RMSE, for scoring a prediction that is not a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub min: f64,
    pub max: f64,
}

impl Default for Scale {
    fn default() -> Scale {
        Scale { min: 1.0, max: 5.0 }
    }
}

/// The metric over paired predictions and gold outputs (`NaN` when there are none).
pub fn score(metric: Metric, predictions: &[&str], golds: &[&str], scale: Scale) -> f64 {
    assert_eq!(predictions.len(), golds.len(), "one prediction per gold output");
    if golds.is_empty() {
        return f64::NAN;
    }
    let pairs = predictions.iter().zip(golds);
    match metric {
        Metric::MacroF1 => macro_f1(predictions, golds),
        Metric::Rmse => mean(pairs.map(|(p, g)| rating_error(p, g, scale).powi(2))).sqrt(),
        Metric::Accuracy | Metric::Mae | Metric::Rouge1 | Metric::RougeL => {
            mean(pairs.map(|(p, g)| row_score(metric, p, g, scale).expect("a per-row metric")))
        }
    }
}

/// One row's contribution for the metrics that are means over rows (`None` for macro-F1, which
/// is not, and RMSE, whose row value is the squared error: see [`row_score`]'s callers).
pub fn row_score(metric: Metric, prediction: &str, gold: &str, scale: Scale) -> Option<f64> {
    Some(match metric {
        Metric::Accuracy => f64::from(u8::from(label(prediction) == label(gold))),
        Metric::Mae => rating_error(prediction, gold, scale),
        Metric::Rouge1 => rouge_1(prediction, gold),
        Metric::RougeL => rouge_l(prediction, gold),
        Metric::MacroF1 | Metric::Rmse => return None,
    })
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n as f64
}

fn label(text: &str) -> String {
    text.trim().to_lowercase()
}

fn macro_f1(predictions: &[&str], golds: &[&str]) -> f64 {
    // label → (true positives, false positives, false negatives)
    let mut counts: HashMap<String, (u32, u32, u32)> = HashMap::new();
    for gold in golds {
        counts.entry(label(gold)).or_default();
    }
    for (p, g) in predictions.iter().zip(golds) {
        let (p, g) = (label(p), label(g));
        if p == g {
            counts.get_mut(&g).expect("every gold label is counted").0 += 1;
        } else {
            counts.get_mut(&g).expect("every gold label is counted").2 += 1;
            if let Some(c) = counts.get_mut(&p) {
                c.1 += 1;
            }
        }
    }
    mean(counts.values().map(|&(tp, fp, fnn)| {
        let denominator = 2 * tp + fp + fnn;
        if denominator == 0 { 0.0 } else { f64::from(2 * tp) / f64::from(denominator) }
    }))
}

/// A rating read from text: a finite decimal number, surrounding whitespace allowed.
pub fn parse_rating(text: &str) -> Option<f64> {
    let t = text.trim();
    let looks_numeric = !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'));
    t.parse::<f64>().ok().filter(|v| looks_numeric && v.is_finite())
}

/// |prediction − gold|, with an unreadable prediction taken as the farthest rating of the scale.
/// A gold output that is not a number is a dataset error, caught when the dataset is loaded.
pub fn rating_error(prediction: &str, gold: &str, scale: Scale) -> f64 {
    let gold = parse_rating(gold).unwrap_or(f64::NAN);
    let predicted = parse_rating(prediction).unwrap_or(if (gold - scale.min).abs() > (gold - scale.max).abs() {
        scale.min
    } else {
        scale.max
    });
    (predicted - gold).abs()
}

/// `rouge_score`'s tokenizer without stemming.
pub fn rouge_tokens(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    lower
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn f_measure(overlap: f64, predicted: usize, reference: usize) -> f64 {
    if predicted == 0 || reference == 0 {
        return 0.0;
    }
    let precision = overlap / predicted as f64;
    let recall = overlap / reference as f64;
    if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) }
}

/// ROUGE-1 F-measure of a prediction against one reference.
pub fn rouge_1(prediction: &str, reference: &str) -> f64 {
    let (p, r) = (rouge_tokens(prediction), rouge_tokens(reference));
    let mut counts: HashMap<&str, (u32, u32)> = HashMap::new();
    for t in &p {
        counts.entry(t).or_default().0 += 1;
    }
    for t in &r {
        counts.entry(t).or_default().1 += 1;
    }
    let overlap: u32 = counts.values().map(|&(a, b)| a.min(b)).sum();
    f_measure(f64::from(overlap), p.len(), r.len())
}

/// ROUGE-L F-measure: the longest common subsequence of tokens.
pub fn rouge_l(prediction: &str, reference: &str) -> f64 {
    let (p, r) = (rouge_tokens(prediction), rouge_tokens(reference));
    // One row of the LCS table at a time.
    let mut previous = vec![0u32; r.len() + 1];
    let mut current = vec![0u32; r.len() + 1];
    for a in &p {
        for (j, b) in r.iter().enumerate() {
            current[j + 1] = if a == b { previous[j] + 1 } else { current[j].max(previous[j + 1]) };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    f_measure(f64::from(previous[r.len()]), p.len(), r.len())
}

/// A paired comparison of two pipelines on the same rows: the metric of each, their difference
/// (B − A), and a percentile bootstrap confidence interval of the difference.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Paired {
    pub metric: Metric,
    pub a: f64,
    pub b: f64,
    pub difference: f64,
    /// The interval's bounds, at `confidence`.
    pub low: f64,
    pub high: f64,
    pub confidence: f64,
    pub resamples: usize,
    /// Whether the interval excludes 0 (the difference is unlikely to be chance).
    pub significant: bool,
}

impl serde::Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Resamples the rows with replacement `resamples` times (the same rows for both pipelines, so
/// the comparison is paired) and takes the percentile interval of B − A. Deterministic for a
/// given `seed`.
#[allow(clippy::too_many_arguments)]
pub fn paired_bootstrap(
    metric: Metric,
    a: &[&str],
    b: &[&str],
    golds: &[&str],
    scale: Scale,
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Paired {
    assert!(a.len() == golds.len() && b.len() == golds.len(), "both pipelines score every row");
    let (score_a, score_b) = (score(metric, a, golds, scale), score(metric, b, golds, scale));
    let n = golds.len();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut differences = Vec::with_capacity(resamples);
    let (mut sa, mut sb, mut sg) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..resamples {
        sa.clear();
        sb.clear();
        sg.clear();
        for _ in 0..n {
            let i = rng.usize(..n);
            sa.push(a[i]);
            sb.push(b[i]);
            sg.push(golds[i]);
        }
        differences.push(score(metric, &sb, &sg, scale) - score(metric, &sa, &sg, scale));
    }
    differences.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        if differences.is_empty() {
            return f64::NAN;
        }
        let at = (q * (differences.len() - 1) as f64).round() as usize;
        differences[at.min(differences.len() - 1)]
    };
    let tail = (1.0 - confidence) / 2.0;
    let (low, high) = (quantile(tail), quantile(1.0 - tail));
    Paired {
        metric,
        a: score_a,
        b: score_b,
        difference: score_b - score_a,
        low,
        high,
        confidence,
        resamples,
        significant: low > 0.0 || high < 0.0,
    }
}

/// The `q`-quantile (0–1) of `values` by linear interpolation (`NaN` when empty).
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn accuracy_trims_and_ignores_case() {
        let s = score(
            Metric::Accuracy,
            &["[1]", " Comedy", "drama", "x"],
            &["[1]", "comedy", "action", "y"],
            Scale::default(),
        );
        assert!(close(s, 0.5), "{s}");
    }

    #[test]
    fn macro_f1_by_hand() {
        // gold:  a a b c      pred: a b b d
        // a: tp 1, fn 1, fp 0 → 2/3; b: tp 1, fp 1 → 2/3; c: fn 1 → 0. Mean 4/9.
        // `d` is no gold label: it counts against c's recall and for nothing.
        let s = score(Metric::MacroF1, &["a", "b", "b", "d"], &["a", "a", "b", "c"], Scale::default());
        assert!(close(s, 4.0 / 9.0), "{s}");
        let perfect = score(Metric::MacroF1, &["x", "y"], &["x", "y"], Scale::default());
        assert!(close(perfect, 1.0));
    }

    #[test]
    fn ratings_by_hand_with_unreadable_predictions_scored_farthest() {
        // errors: |4−5| = 1; "great" for gold 2 → farthest is 5 → 3; |3.5−3| = 0.5; "" for gold 4 → 1 → 3.
        let (p, g) = (["4", "great", " 3.5 ", ""], ["5", "2", "3", "4"]);
        let mae = score(Metric::Mae, &p, &g, Scale::default());
        assert!(close(mae, 7.5 / 4.0), "{mae}");
        let rmse = score(Metric::Rmse, &p, &g, Scale::default());
        assert!(close(rmse, ((1.0 + 9.0 + 0.25 + 9.0) / 4.0f64).sqrt()), "{rmse}");
        // gold exactly in the middle: LaMP picks the top of the scale
        assert!(close(rating_error("?", "3", Scale::default()), 2.0));
        for bad in ["nan", "inf", "4 stars", "1e3", "four"] {
            assert_eq!(parse_rating(bad), None, "{bad}");
        }
        assert_eq!(parse_rating("+2.0"), Some(2.0));
    }

    #[test]
    fn rouge_tokenizes_as_rouge_score_does() {
        assert_eq!(rouge_tokens("Don't stop-me NOW!!  café 3.14"), ["don", "t", "stop", "me", "now", "caf", "3", "14"]);
        assert!(rouge_tokens("… — !!").is_empty());
    }

    #[test]
    fn rouge_1_by_hand() {
        // pred: the cat the cat (4), ref: the cat sat (3); clipped overlap: the 1 + cat 1 = 2.
        // P 2/4, R 2/3, F = 2·(1/2)(2/3)/(1/2+2/3) = 4/7.
        assert!(close(rouge_1("The cat, the cat", "the cat sat"), 4.0 / 7.0));
        assert!(close(rouge_1("", "anything"), 0.0));
        assert!(close(rouge_1("It's", "it s"), 1.0), "punctuation splits tokens on both sides");
    }

    #[test]
    fn rouge_l_by_hand() {
        // pred: police killed the gunman (4); ref: police kill the gunman (4); LCS police the gunman = 3.
        assert!(close(rouge_l("police killed the gunman", "police kill the gunman"), 0.75));
        // order matters for L, not for 1: reversed tokens share an LCS of 1.
        assert!(close(rouge_l("a b c", "c b a"), 1.0 / 3.0));
        assert!(close(rouge_1("a b c", "c b a"), 1.0));
    }

    #[test]
    fn bootstrap_finds_a_real_difference_and_not_a_null_one() {
        let golds: Vec<String> = (0..200).map(|i| format!("label{}", i % 4)).collect();
        let golds: Vec<&str> = golds.iter().map(String::as_str).collect();
        let a: Vec<&str> = golds.iter().enumerate().map(|(i, g)| if i % 2 == 0 { *g } else { "wrong" }).collect();
        let b: Vec<&str> = golds.iter().enumerate().map(|(i, g)| if i % 10 == 0 { "wrong" } else { *g }).collect();
        let better = paired_bootstrap(Metric::Accuracy, &a, &b, &golds, Scale::default(), 1000, 0.95, 1);
        assert!(close(better.a, 0.5) && close(better.b, 0.9) && close(better.difference, 0.4), "{better:?}");
        assert!(better.significant && better.low > 0.25 && better.high < 0.55, "{better:?}");
        let same = paired_bootstrap(Metric::Accuracy, &a, &a, &golds, Scale::default(), 200, 0.95, 1);
        assert!(!same.significant && close(same.low, 0.0) && close(same.high, 0.0), "{same:?}");
        let again = paired_bootstrap(Metric::Accuracy, &a, &b, &golds, Scale::default(), 1000, 0.95, 1);
        assert_eq!(better, again, "deterministic for a seed");
    }

    #[test]
    fn percentiles_interpolate() {
        assert!(close(percentile(&[4.0, 1.0, 3.0, 2.0], 0.5), 2.5));
        assert!(close(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.99), 4.96));
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn metric_names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>(), Ok(m));
        }
        assert!("bleu".parse::<Metric>().unwrap_err().contains("rouge-l"));
    }
}
