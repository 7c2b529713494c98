//! `tailor plugin inspect`: what a component is, as the host sees it once it has loaded it
//! (compiled, ABI-checked, pre-linked, described): identity, file facts, ports, config, grants
//! and imports.

use std::path::Path;

use serde::Serialize;
use tailor_dsl::descriptor::{ConfigField, ConfigType, PortForm};
use tailor_dsl::types::{Value, to_json};
use tailor_engine::host::{ABI_VERSION, Plugin};

use crate::{Format, Outcome, plugins};

pub fn run(path: &Path, format: Format) -> anyhow::Result<Outcome> {
    let wasm = plugins::read_component(path)?;
    let plugin = match plugins::load_component(&wasm)? {
        Ok(plugin) => plugin,
        Err(e) => {
            eprintln!("error: {}: {}", path.display(), plugins::one_line(&e.to_string()));
            return Ok(Outcome::ConfigErrors);
        }
    };
    let report = Report::new(path, wasm.len(), &plugin);
    match format {
        Format::Human => print!("{}", report.human()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(Outcome::Ok)
}

/// One line about a loaded component, for `plugin build`.
pub fn summary(path: &Path, size: usize, plugin: &Plugin) -> String {
    let d = plugin.descriptor();
    format!(
        "{}: {} {} ({}), {}, ABI {}, sha256 {}",
        path.display(),
        d.name,
        d.version,
        d.kind,
        size_human(size),
        plugin.abi(),
        &plugin.sha256()[..12.min(plugin.sha256().len())]
    )
}

#[derive(Serialize)]
struct Report {
    name: String,
    version: String,
    kind: &'static str,
    summary: String,
    file: String,
    size: usize,
    sha256: String,
    /// The `tailor:plugin` version the component was built against.
    abi: String,
    inputs: Vec<JsonInput>,
    outputs: Vec<JsonOutput>,
    config: Vec<JsonConfigField>,
    grants: Vec<&'static str>,
    imports: Vec<String>,
}

#[derive(Serialize)]
struct JsonInput {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    required: bool,
    form: &'static str,
    doc: String,
}

#[derive(Serialize)]
struct JsonOutput {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    doc: String,
}

#[derive(Serialize)]
struct JsonConfigField {
    name: String,
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    integer: Option<bool>,
    /// The allowed words of a choice or a restricted text list.
    #[serde(skip_serializing_if = "Option::is_none")]
    words: Option<Vec<String>>,
    /// In the JSON form of spec/language.md §7.6; a duration in seconds.
    default: Option<serde_json::Value>,
    requires: Option<&'static str>,
    doc: String,
    /// Not in the JSON; the human form of `default`.
    #[serde(skip)]
    default_human: Option<String>,
    #[serde(skip)]
    ty_human: String,
}

impl Report {
    fn new(path: &Path, size: usize, plugin: &Plugin) -> Report {
        let d = plugin.descriptor();
        Report {
            name: d.name.clone(),
            version: d.version.to_string(),
            kind: d.kind.as_str(),
            summary: d.summary.clone(),
            file: path.display().to_string(),
            size,
            sha256: plugin.sha256().to_string(),
            abi: plugin.abi().to_string(),
            inputs: d
                .inputs
                .iter()
                .map(|p| JsonInput {
                    name: p.name.clone(),
                    ty: p.ty.to_string(),
                    required: p.required,
                    form: match p.form {
                        PortForm::Expression => "expression",
                        PortForm::Template => "template",
                    },
                    doc: p.doc.clone(),
                })
                .collect(),
            outputs: d
                .outputs
                .iter()
                .map(|p| JsonOutput { name: p.name.clone(), ty: p.ty.to_string(), doc: p.doc.clone() })
                .collect(),
            config: d.config.iter().map(config_field).collect(),
            grants: d.grants.iter().map(|c| c.as_str()).collect(),
            imports: plugin.imports().to_vec(),
        }
    }

    fn human(&self) -> String {
        let mut out = format!("{} {} ({})\n", self.name, self.version, self.kind);
        if !self.summary.is_empty() {
            out += &format!("{}\n", self.summary);
        }
        out += "\n";
        out += &table(&[
            vec!["file".into(), self.file.clone()],
            vec!["size".into(), format!("{} bytes ({})", self.size, size_human(self.size))],
            vec!["sha256".into(), self.sha256.clone()],
            vec!["abi".into(), format!("tailor:plugin@{} (this host: {ABI_VERSION})", self.abi)],
            vec!["grants".into(), if self.grants.is_empty() { "none needed".into() } else { self.grants.join(", ") }],
        ]);
        out += &section(
            "inputs",
            self.inputs
                .iter()
                .map(|p| {
                    let required = if p.required { "required" } else { "optional" };
                    vec![p.name.clone(), p.ty.clone(), required.into(), p.form.into(), p.doc.clone()]
                })
                .collect(),
        );
        out += &section(
            "outputs",
            self.outputs.iter().map(|p| vec![p.name.clone(), p.ty.clone(), p.doc.clone()]).collect(),
        );
        out += &section(
            "config",
            self.config
                .iter()
                .map(|f| {
                    vec![
                        f.name.clone(),
                        f.ty_human.clone(),
                        f.default_human.as_ref().map_or_else(String::new, |d| format!("default {d}")),
                        f.requires.map_or_else(String::new, |c| format!("requires {c}")),
                        f.doc.clone(),
                    ]
                })
                .collect(),
        );
        out += &section("imports", self.imports.iter().map(|i| vec![i.clone()]).collect());
        out
    }
}

fn config_field(f: &ConfigField) -> JsonConfigField {
    let (ty, ty_human, min, max, integer, words) = match &f.ty {
        ConfigType::Text => ("text", "text".to_string(), None, None, None, None),
        ConfigType::Number { min, max, integer } => {
            let name = if *integer { "integer" } else { "number" };
            let human = format!("{name} {}–{}", number(*min), number(*max));
            ("number", human, Some(*min), Some(*max), Some(*integer), None)
        }
        ConfigType::Bool => ("bool", "bool".to_string(), None, None, None, None),
        ConfigType::Choice(words) => ("choice", format!("choice {}", words.join("|")), None, None, None, Some(words)),
        ConfigType::TextList { choices: None } => ("text-list", "text list".to_string(), None, None, None, None),
        ConfigType::TextList { choices: Some(words) } => {
            ("text-list", format!("text list of {}", words.join("|")), None, None, None, Some(words))
        }
        ConfigType::Duration => ("duration", "duration".to_string(), None, None, None, None),
        ConfigType::ItemFilter => ("item-filter", "item filter".to_string(), None, None, None, None),
    };
    let default_human = f.default.as_ref().map(|v| match (v, &f.ty) {
        (Value::Number(seconds), ConfigType::Duration) => duration(*seconds),
        (v, _) => to_json(v),
    });
    JsonConfigField {
        name: f.name.clone(),
        ty,
        min,
        max,
        integer,
        words: words.cloned(),
        default: f
            .default
            .as_ref()
            .map(|v| serde_json::from_str(&to_json(v)).expect("invariant: `to_json` writes valid JSON")),
        requires: f.requires.map(|c| c.as_str()),
        doc: f.doc.clone(),
        default_human,
        ty_human,
    }
}

/// A heading and its rows, or nothing when there are none.
fn section(title: &str, rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return format!("\n{title}: none\n");
    }
    let body: String = table(&rows).lines().map(|l| format!("  {l}\n")).collect();
    format!("\n{title}\n{body}")
}

/// Rows with each column padded to its widest cell; trailing blanks dropped.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c].saturating_sub(cell.chars().count());
            line.push_str(cell);
            if c + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// Seconds in the language's duration syntax, in the largest unit that divides them.
fn duration(seconds: f64) -> String {
    const UNITS: [(&str, f64); 5] = [("w", 604_800.0), ("d", 86_400.0), ("h", 3_600.0), ("m", 60.0), ("s", 1.0)];
    if seconds == 0.0 {
        return "0".into();
    }
    UNITS
        .iter()
        .find(|(_, unit)| seconds >= *unit && (seconds / unit).fract() == 0.0)
        .map_or_else(|| format!("{}s", number(seconds)), |(name, unit)| format!("{}{name}", number(seconds / unit)))
}

fn size_human(bytes: usize) -> String {
    if bytes < 1024 { format!("{bytes} B") } else { format!("{:.1} KiB", bytes as f64 / 1024.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_largest_whole_unit() {
        assert_eq!(duration(30.0 * 86_400.0), "30d");
        assert_eq!(duration(14.0 * 86_400.0), "2w");
        assert_eq!(duration(90.0), "90s");
        assert_eq!(duration(1.5), "1.5s");
        assert_eq!(duration(0.0), "0");
    }

    #[test]
    fn table_pads_columns_and_drops_trailing_blanks() {
        let rows = vec![
            vec!["a".into(), String::new(), "x".into(), String::new()],
            vec!["ccc".into(), "d".into(), "e".into(), String::new()],
        ];
        assert_eq!(table(&rows), "a       x\nccc  d  e\n");
    }
}
