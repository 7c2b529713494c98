//! `tailor eval pipeline --report DIR`: a self-contained HTML page (the charts embedded as PNG
//! data, nothing fetched) and the same charts as PNG files beside it:
//!
//! - `metrics.png`: each metric, a bar per pipeline;
//! - `latency.png`: the histogram of per-row latency without LLM time, per pipeline;
//! - `stages.png`: each stage's median time, per pipeline.
//!
//! Charts are drawn with plotters into bitmaps, text in DejaVu Sans (shipped in `src/assets`, so
//! the report needs no fonts on the machine).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context as _, anyhow};
use base64::Engine as _;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// One pipeline's part of the report.
pub struct PipelineData {
    pub name: String,
    /// `(metric name, value)`, in the order asked for.
    pub metrics: Vec<(String, f64)>,
    /// Per-row latency without LLM time, ms.
    pub overhead_ms: Vec<f64>,
    /// `(stage label, median ms)`, in pipeline order.
    pub stages: Vec<(String, f64)>,
    /// The summary object printed on stdout.
    pub summary: serde_json::Value,
}

/// Bar colours, one per pipeline (tests look for the first in the screenshot).
pub const PALETTE: [RGBColor; 2] = [RGBColor(31, 119, 180), RGBColor(255, 127, 14)];
const FONT: &str = "sans-serif";

fn font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, include_bytes!("../assets/DejaVuSans.ttf")).is_ok()
    });
    if ok { Ok(()) } else { Err(anyhow!("the report's font (DejaVu Sans) did not load")) }
}

/// Writes `index.html` and the three charts into `dir` (created if missing).
pub fn write(
    dir: &Path,
    dataset: &str,
    rows: usize,
    pipelines: &[PipelineData],
    comparison: Option<&serde_json::Value>,
) -> anyhow::Result<()> {
    font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let charts = [
        ("metrics.png", "Metrics", metrics_chart as fn(&Path, &[PipelineData]) -> anyhow::Result<()>),
        ("latency.png", "Latency without LLM time", latency_chart),
        ("stages.png", "Median time per stage", stages_chart),
    ];
    let mut html = String::new();
    let title = pipelines.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(" vs ");
    write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tailor evaluation: {t}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}th{{background:#f3f3f3}}\
         td:first-child,th:first-child{{text-align:left}}img{{display:block;margin:1em 0;border:1px solid #ddd}}</style>\n\
         </head><body>\n<h1>Tailor evaluation: {t}</h1>\n<p>Dataset <code>{d}</code>, {rows} rows.</p>\n",
        t = escape(&title),
        d = escape(dataset),
    )?;
    html.push_str("<h2>Metrics</h2>\n<table><tr><th>pipeline</th>");
    for (name, _) in &pipelines[0].metrics {
        write!(html, "<th>{}</th>", escape(name))?;
    }
    html.push_str("<th>failed rows</th><th>p50 ms</th><th>p99 ms</th><th>p50 ms without LLM</th><th>prompt tokens</th><th>completion tokens</th></tr>\n");
    for p in pipelines {
        write!(html, "<tr><td>{}</td>", escape(&p.name))?;
        for (_, v) in &p.metrics {
            write!(html, "<td>{v:.4}</td>")?;
        }
        let s = &p.summary;
        let num = |v: &serde_json::Value| v.as_f64().map_or("–".to_owned(), |x| format!("{x:.2}"));
        writeln!(
            html,
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s["failed_rows"],
            num(&s["latency_ms"]["p50"]),
            num(&s["latency_ms"]["p99"]),
            num(&s["latency_without_llm_ms"]["p50"]),
            s["tokens"]["prompt"],
            s["tokens"]["completion"]
        )?;
    }
    html.push_str("</table>\n");
    if let Some(serde_json::Value::Array(paired)) = comparison {
        html.push_str(
            "<h2>Paired comparison (B − A)</h2>\n<table><tr><th>metric</th><th>A</th><th>B</th><th>B − A</th>\
             <th>95% interval</th><th>significant</th></tr>\n",
        );
        for c in paired {
            let f = |k: &str| c[k].as_f64().map_or("–".to_owned(), |x| format!("{x:.4}"));
            writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>[{}, {}]</td><td>{}</td></tr>",
                escape(c["metric"].as_str().unwrap_or("")),
                f("a"),
                f("b"),
                f("difference"),
                f("low"),
                f("high"),
                if c["significant"].as_bool() == Some(true) { "yes" } else { "no" }
            )?;
        }
        html.push_str("</table>\n");
    }
    for (file, heading, draw) in charts {
        let path = dir.join(file);
        draw(&path, pipelines).with_context(|| format!("drawing {}", path.display()))?;
        let png = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        write!(
            html,
            "<h2>{heading}</h2>\n<img alt=\"{heading}\" src=\"data:image/png;base64,{}\">\n",
            base64::engine::general_purpose::STANDARD.encode(png)
        )?;
    }
    // For tests and scripts: how many charts the browser decoded.
    html.push_str(
        "<script>window.addEventListener('load',()=>{document.body.dataset.chartsLoaded=\
         [...document.images].filter(i=>i.complete&&i.naturalWidth>0).length;});</script>\n</body></html>\n",
    );
    let index = dir.join("index.html");
    std::fs::write(&index, html).with_context(|| format!("writing {}", index.display()))?;
    Ok(())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("{e:?}")
}

fn metrics_chart(path: &Path, pipelines: &[PipelineData]) -> anyhow::Result<()> {
    let names: Vec<String> = pipelines[0].metrics.iter().map(|(n, _)| n.clone()).collect();
    let top =
        pipelines.iter().flat_map(|p| p.metrics.iter().map(|m| m.1)).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.2 } else { 1.0 };
    let root = BitMapBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..names.len() as f64 - 0.5, 0f64..top)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len().max(1))
        .x_label_formatter(&|x| tick(&names, *x))
        .y_desc("value")
        .label_style((FONT, 16))
        .draw()
        .map_err(plot_err)?;
    let width = 0.8 / pipelines.len() as f64;
    for (j, p) in pipelines.iter().enumerate() {
        let color = PALETTE[j % PALETTE.len()];
        let bars = p.metrics.iter().enumerate().filter(|(_, (_, v))| v.is_finite()).map(|(i, (_, v))| {
            let x0 = i as f64 - 0.4 + j as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width * 0.95, *v)], color.filled())
        });
        chart
            .draw_series(bars)
            .map_err(plot_err)?
            .label(p.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
        let labels = p.metrics.iter().enumerate().filter(|(_, (_, v))| v.is_finite()).map(|(i, (_, v))| {
            let x = i as f64 - 0.4 + j as f64 * width;
            Text::new(format!("{v:.3}"), (x, *v + top * 0.02), (FONT, 14))
        });
        chart.draw_series(labels).map_err(plot_err)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

fn latency_chart(path: &Path, pipelines: &[PipelineData]) -> anyhow::Result<()> {
    let all: Vec<f64> =
        pipelines.iter().flat_map(|p| p.overhead_ms.iter().copied()).filter(|v| v.is_finite()).collect();
    let high = all.iter().copied().fold(0.0, f64::max).max(1e-3) * 1.05;
    const BINS: usize = 24;
    let step = high / BINS as f64;
    let counts: Vec<Vec<usize>> = pipelines
        .iter()
        .map(|p| {
            let mut c = vec![0usize; BINS];
            for v in p.overhead_ms.iter().filter(|v| v.is_finite()) {
                c[((v / step) as usize).min(BINS - 1)] += 1;
            }
            c
        })
        .collect();
    let most = counts.iter().flatten().copied().max().unwrap_or(1).max(1);
    let root = BitMapBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..high, 0f64..most as f64 * 1.15)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("ms per row, without LLM time")
        .y_desc("rows")
        .label_style((FONT, 15))
        .draw()
        .map_err(plot_err)?;
    for (j, (p, c)) in pipelines.iter().zip(&counts).enumerate() {
        let color = PALETTE[j % PALETTE.len()];
        let bars = c.iter().enumerate().filter(|(_, n)| **n > 0).map(|(b, n)| {
            Rectangle::new([(b as f64 * step, 0.0), ((b + 1) as f64 * step, *n as f64)], color.mix(0.6).filled())
        });
        chart
            .draw_series(bars)
            .map_err(plot_err)?
            .label(p.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

fn stages_chart(path: &Path, pipelines: &[PipelineData]) -> anyhow::Result<()> {
    // Every stage label of every pipeline, in first-seen order.
    let mut labels: Vec<String> = Vec::new();
    for p in pipelines {
        for (l, _) in &p.stages {
            if !labels.contains(l) {
                labels.push(l.clone());
            }
        }
    }
    let high = pipelines.iter().flat_map(|p| p.stages.iter().map(|s| s.1)).fold(0.0, f64::max).max(1e-3) * 1.25;
    let height = (120 + 46 * labels.len().max(1)) as u32;
    let root = BitMapBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let n = labels.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(140)
        .build_cartesian_2d(0f64..high, -0.5f64..n - 0.5)
        .map_err(plot_err)?;
    let bottom_up: Vec<String> = labels.iter().rev().cloned().collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(labels.len().max(1))
        // Top to bottom in pipeline order.
        .y_label_formatter(&|y| tick(&bottom_up, *y))
        .x_desc("median ms")
        .label_style((FONT, 15))
        .draw()
        .map_err(plot_err)?;
    let width = 0.8 / pipelines.len() as f64;
    for (j, p) in pipelines.iter().enumerate() {
        let color = PALETTE[j % PALETTE.len()];
        let bars = p.stages.iter().map(|(l, ms)| {
            let row = labels.len() - 1 - labels.iter().position(|x| x == l).expect("collected above");
            let y0 = row as f64 - 0.4 + j as f64 * width;
            Rectangle::new([(0.0, y0), (*ms, y0 + width * 0.95)], color.filled())
        });
        chart
            .draw_series(bars)
            .map_err(plot_err)?
            .label(p.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

/// The label of an axis position that falls on an index of `labels`, none between them.
fn tick(labels: &[String], at: f64) -> String {
    let i = at.round();
    if (at - i).abs() < 1e-6 && i >= 0.0 { labels.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
}

/// The legend: each pipeline's colour and name (the series' labels), framed, at `position`.
fn legend<'a>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(plot_err)?;
    Ok(())
}
