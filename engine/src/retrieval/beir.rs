//! Reading a BEIR dataset folder: `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv`.
//!
//! Corpus lines are `{"_id", "title", "text"}` (title optional), query lines `{"_id", "text"}`;
//! other keys are ignored and ids may be strings or integers. The qrels file is tab-separated
//! `query-id corpus-id score` with a header line. As in BEIR's own loader, only the queries that
//! the split judges are kept, and judgments of queries missing from `queries.jsonl` are dropped
//! (and counted), so every kept query can be run and scored.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use super::metrics::Qrels;

/// One corpus document.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BeirDoc {
    #[serde(rename = "_id", deserialize_with = "id")]
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub text: String,
}

impl BeirDoc {
    /// What BEIR's retrievers index: the title, a space, the text.
    pub fn indexed_text(&self) -> String {
        if self.title.is_empty() { self.text.clone() } else { format!("{} {}", self.title, self.text) }
    }
}

/// One query.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BeirQuery {
    #[serde(rename = "_id", deserialize_with = "id")]
    pub id: String,
    pub text: String,
}

/// A dataset with the queries and judgments of one split.
#[derive(Debug, Clone, PartialEq)]
pub struct BeirDataset {
    pub corpus: Vec<BeirDoc>,
    /// The queries that `qrels` judges, in file order.
    pub queries: Vec<BeirQuery>,
    pub qrels: Qrels,
    /// Judged queries that `queries.jsonl` does not have, left out of `qrels`.
    pub missing_queries: usize,
}

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BeirError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a valid record")]
    Json {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}:{line}: expected `query-id<TAB>corpus-id<TAB>score` with an integer score")]
    Qrels { path: PathBuf, line: usize },
}

/// Reads the dataset in `dir` with the judgments of `split` (`qrels/<split>.tsv`).
pub fn load_beir(dir: &Path, split: &str) -> Result<BeirDataset, BeirError> {
    let corpus = load_jsonl(&dir.join("corpus.jsonl"))?;
    let mut qrels = load_qrels(&dir.join("qrels").join(format!("{split}.tsv")))?;
    let queries: Vec<BeirQuery> = load_jsonl::<BeirQuery>(&dir.join("queries.jsonl"))?
        .into_iter()
        .filter(|q| qrels.contains_key(&q.id))
        .collect();
    let known: HashSet<&str> = queries.iter().map(|q| q.id.as_str()).collect();
    let before = qrels.len();
    qrels.retain(|id, _| known.contains(id.as_str()));
    Ok(BeirDataset { corpus, missing_queries: before - qrels.len(), queries, qrels })
}

/// One record per non-blank line.
pub fn load_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, BeirError> {
    let mut records = Vec::new();
    for (i, line) in lines(path)?.enumerate() {
        let line = line.map_err(|source| BeirError::Read { path: path.to_owned(), source })?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|source| BeirError::Json {
            path: path.to_owned(),
            line: i + 1,
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}

/// A qrels file: a header line, then `query-id<TAB>corpus-id<TAB>score` lines.
pub fn load_qrels(path: &Path) -> Result<Qrels, BeirError> {
    let mut qrels = Qrels::new();
    for (i, line) in lines(path)?.enumerate() {
        let line = line.map_err(|source| BeirError::Read { path: path.to_owned(), source })?;
        let line = line.trim_end_matches(['\r', '\n']);
        if i == 0 || line.trim().is_empty() {
            continue;
        }
        let bad = || BeirError::Qrels { path: path.to_owned(), line: i + 1 };
        let mut columns = line.split('\t');
        let (Some(query), Some(doc), Some(score), None) =
            (columns.next(), columns.next(), columns.next(), columns.next())
        else {
            return Err(bad());
        };
        let score: i32 = score.trim().parse().map_err(|_| bad())?;
        qrels.entry(query.to_owned()).or_default().insert(doc.to_owned(), score);
    }
    Ok(qrels)
}

fn lines(path: &Path) -> Result<std::io::Lines<BufReader<File>>, BeirError> {
    let file = File::open(path).map_err(|source| BeirError::Read { path: path.to_owned(), source })?;
    Ok(BufReader::new(file).lines())
}

/// An id written as a string or an integer.
fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("an id must be a string or a number, not {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(label: &str, files: &[(&str, &str)]) -> Dir {
            let dir = std::env::temp_dir().join(format!("tailor-beir-{label}-{}", std::process::id()));
            std::fs::remove_dir_all(&dir).ok();
            std::fs::create_dir_all(dir.join("qrels")).expect("temporary directory");
            for (name, text) in files {
                std::fs::write(dir.join(name), text).expect("writable");
            }
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    const CORPUS: &str = "{\"_id\": \"d1\", \"title\": \"Title\", \"text\": \"Body.\", \"metadata\": {}}\n\n\
                          {\"_id\": 2, \"text\": \"No title.\"}\n";
    const QUERIES: &str = "{\"_id\": \"q1\", \"text\": \"first\"}\n{\"_id\": \"q2\", \"text\": \"unjudged\"}\n";

    #[test]
    fn reads_corpus_queries_and_qrels() {
        let qrels = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\t2\t0\nq9\td1\t1\n";
        let dir = Dir::new("ok", &[("corpus.jsonl", CORPUS), ("queries.jsonl", QUERIES), ("qrels/test.tsv", qrels)]);
        let data = load_beir(&dir.0, "test").expect("loads");
        assert_eq!(data.corpus.len(), 2);
        assert_eq!(data.corpus[0].indexed_text(), "Title Body.");
        assert_eq!(data.corpus[1].id, "2");
        assert_eq!(data.corpus[1].indexed_text(), "No title.");
        assert_eq!(data.queries, vec![BeirQuery { id: "q1".into(), text: "first".into() }]);
        assert_eq!(data.qrels.len(), 1);
        assert_eq!(data.qrels["q1"]["d1"], 2);
        assert_eq!(data.qrels["q1"]["2"], 0);
        assert_eq!(data.missing_queries, 1);
    }

    #[test]
    fn reports_where_a_file_is_broken() {
        let dir = Dir::new(
            "bad-json",
            &[("corpus.jsonl", "{\"_id\": \"d1\", \"text\": \"ok\"}\n{\"_id\": [], \"text\": \"x\"}\n")],
        );
        let err = load_jsonl::<BeirDoc>(&dir.0.join("corpus.jsonl")).unwrap_err();
        assert!(matches!(err, BeirError::Json { line: 2, .. }), "{err:?}");

        let dir = Dir::new("bad-qrels", &[("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\tx\n")]);
        let err = load_qrels(&dir.0.join("qrels/test.tsv")).unwrap_err();
        assert!(matches!(err, BeirError::Qrels { line: 2, .. }), "{err:?}");
        let dir = Dir::new("short-qrels", &[("qrels/test.tsv", "header\nq1\td1\n")]);
        assert!(matches!(load_qrels(&dir.0.join("qrels/test.tsv")), Err(BeirError::Qrels { line: 2, .. })));
    }

    #[test]
    fn reports_a_missing_split() {
        let dir = Dir::new("no-split", &[("corpus.jsonl", CORPUS), ("queries.jsonl", QUERIES)]);
        let err = load_beir(&dir.0, "dev").unwrap_err();
        assert!(matches!(&err, BeirError::Read { path, .. } if path.ends_with("qrels/dev.tsv")), "{err:?}");
    }
}
