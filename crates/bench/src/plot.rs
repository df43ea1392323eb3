//! `ensemble bench plot`: throughput and p99 latency per workload and server,
//! as two bar charts in one SVG, from the JSON a comparison harness writes.
//!
//! The input is an object (at the top level, or under the key `plot`):
//!
//! ```json
//! {"title": "...", "subtitle": "...", "series": ["Ensemble", "ZooKeeper", "redis"],
//!  "workloads": [{"name": "read 64x16",
//!                 "servers": {"Ensemble": {"ops_per_s": 120000, "p99_ms": 4.1},
//!                             "ZooKeeper": {"ops_per_s": 50000, "p99_ms": 11.0}}}]}
//! ```
//!
//! `series` gives the order of the bars (default: the servers' names sorted);
//! a missing value leaves a gap. Text is written as SVG text with a generic
//! font family, so no font file is needed to draw or to view the chart.

use clap::Args;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 860;
/// Bar colours by series position: blue, orange, grey, then green and red.
const COLOURS: [RGBColor; 5] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
];

/// Options of `ensemble bench plot`.
#[derive(Args, Debug, Clone)]
pub struct PlotArgs {
    /// A results JSON (a harness's output, or the object described in the docs).
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the SVG.
    #[arg(long)]
    pub output: PathBuf,
    /// Replaces the title given in the input.
    #[arg(long)]
    pub title: Option<String>,
}

/// One workload's figures for one server.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Point {
    pub ops_per_s: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// One group of bars: a workload, one point per series.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub points: Vec<Option<Point>>,
}

/// What is drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotInput {
    pub title: String,
    pub subtitle: Option<String>,
    pub series: Vec<String>,
    pub rows: Vec<Row>,
}

pub fn run(args: &PlotArgs) -> ExitCode {
    let result = std::fs::read_to_string(&args.input)
        .map_err(|e| format!("cannot read {}: {e}", args.input.display()))
        .and_then(|text| {
            serde_json::from_str::<Value>(&text)
                .map_err(|e| format!("{} is not JSON: {e}", args.input.display()))
        })
        .and_then(|json| parse(&json))
        .and_then(|mut input| {
            if let Some(title) = &args.title {
                input.title = title.clone();
            }
            render(&input)
        })
        .and_then(|svg| {
            std::fs::write(&args.output, svg)
                .map_err(|e| format!("cannot write {}: {e}", args.output.display()))
        });
    match result {
        Ok(()) => {
            eprintln!("wrote {}", args.output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ensemble bench plot: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the input object described in the module docs.
pub fn parse(json: &Value) -> Result<PlotInput, String> {
    let root = json.get("plot").unwrap_or(json);
    let workloads = root
        .get("workloads")
        .and_then(Value::as_array)
        .ok_or("the input has no \"workloads\" list (nor \"plot\": {\"workloads\": ...})")?;
    let mut series: Vec<String> = match root.get("series").and_then(Value::as_array) {
        Some(names) => names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect(),
        None => Vec::new(),
    };
    if series.is_empty() {
        let mut names: Vec<String> = workloads
            .iter()
            .filter_map(|w| w.get("servers").and_then(Value::as_object))
            .flat_map(|servers| servers.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        series = names;
    }
    let mut rows = Vec::new();
    for (i, w) in workloads.iter().enumerate() {
        let name = w
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("workload {i} has no \"name\""))?;
        let servers = w.get("servers").and_then(Value::as_object);
        let points = series
            .iter()
            .map(|s| {
                let p = servers?.get(s)?;
                let number = |key: &str| p.get(key).and_then(Value::as_f64);
                Some(Point {
                    ops_per_s: number("ops_per_s"),
                    p99_ms: number("p99_ms"),
                })
            })
            .collect();
        rows.push(Row {
            name: name.to_string(),
            points,
        });
    }
    Ok(PlotInput {
        title: root
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("throughput and p99 latency per workload")
            .to_string(),
        subtitle: root
            .get("subtitle")
            .and_then(Value::as_str)
            .map(str::to_string),
        series,
        rows,
    })
}

/// The chart as SVG text.
pub fn render(input: &PlotInput) -> Result<String, String> {
    if input.rows.is_empty() || input.series.is_empty() {
        return Err("nothing to plot: no workloads or no servers".into());
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let body = root
            .titled(&input.title, ("sans-serif", 22))
            .map_err(draw_error)?;
        let body = match &input.subtitle {
            Some(sub) => body.titled(sub, ("sans-serif", 13)).map_err(draw_error)?,
            None => body,
        };
        let panels = body.split_evenly((2, 1));
        panel(
            &panels[0],
            input,
            |p| p.ops_per_s,
            "throughput (ops/s, log scale): higher is better",
        )?;
        panel(
            &panels[1],
            input,
            |p| p.p99_ms,
            "p99 latency (ms, log scale): lower is better",
        )?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

fn draw_error<E: std::fmt::Debug>(e: E) -> String {
    format!("cannot draw the chart: {e:?}")
}

/// The range of a log axis: whole decades around the values.
fn decades(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    let mut lo = 10f64.powf(min.log10().floor());
    // A bar as short as the axis' start would not show.
    if min < lo * 1.5 {
        lo /= 10.0;
    }
    let mut hi = 10f64.powf(max.log10().ceil());
    if hi <= lo {
        hi = lo * 10.0;
    }
    // Room above the tallest bar for its ratio label and the legend.
    if max * 8.0 > hi {
        hi *= 10.0;
    }
    (lo, hi)
}

/// 1500 as "1.5k", 2000000 as "2M", 0.25 as "0.25".
fn human(v: f64) -> String {
    let (scaled, unit) = if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{unit}")
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    input: &PlotInput,
    metric: fn(&Point) -> Option<f64>,
    caption: &str,
) -> Result<(), String> {
    let value = |row: &Row, s: usize| {
        row.points
            .get(s)
            .copied()
            .flatten()
            .and_then(|p| metric(&p))
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let values: Vec<f64> = input
        .rows
        .iter()
        .flat_map(|row| (0..input.series.len()).filter_map(move |s| value(row, s)))
        .collect();
    if values.is_empty() {
        return Ok(());
    }
    let (lo, hi) = decades(&values);
    let n = input.rows.len();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..n as f64, (lo..hi).log_scale())
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|v| human(*v))
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(draw_error)?;

    // Each group is centred on its workload, over the series it has.
    let width = 0.8 / input.series.len() as f64;
    let slot = |row: &Row, s: usize| {
        let present = row.points.iter().filter(|p| p.is_some()).count();
        let before = row.points.iter().take(s).filter(|p| p.is_some()).count();
        0.5 - present as f64 * width / 2.0 + before as f64 * width
    };
    for (s, name) in input.series.iter().enumerate() {
        let colour = COLOURS[s % COLOURS.len()];
        chart
            .draw_series(input.rows.iter().enumerate().filter_map(|(i, row)| {
                let v = value(row, s)?;
                let x = i as f64 + slot(row, s) + width * 0.05;
                Some(Rectangle::new(
                    [(x, lo), (x + width * 0.9, v)],
                    colour.filled(),
                ))
            }))
            .map_err(draw_error)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(draw_error)?;

    // Workload names under the groups, and the ratio of the first two series
    // above them: drawn in pixels, outside the plotting area's clipping.
    let (base_x, base_y) = area.get_base_pixel();
    let name_style = TextStyle::from(("sans-serif", 13).into_font())
        .pos(Pos::new(HPos::Center, VPos::Top))
        .color(&BLACK);
    let ratio_style = TextStyle::from(("sans-serif", 12).into_font())
        .pos(Pos::new(HPos::Center, VPos::Bottom))
        .color(&RGBColor(0x40, 0x40, 0x40));
    for (i, row) in input.rows.iter().enumerate() {
        let centre = i as f64 + 0.5;
        let (x, y) = chart.backend_coord(&(centre, lo));
        area.draw(&Text::new(
            row.name.clone(),
            (x - base_x, y - base_y + 8),
            name_style.clone(),
        ))
        .map_err(draw_error)?;
        if let (Some(a), Some(b)) = (value(row, 0), value(row, 1)) {
            let (x, y) = chart.backend_coord(&(centre, a.max(b)));
            area.draw(&Text::new(
                format!("{:.2}x", a / b),
                (x - base_x, y - base_y - 3),
                ratio_style.clone(),
            ))
            .map_err(draw_error)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        serde_json::json!({"plot": {
        "title": "sample",
        "series": ["Ensemble", "ZooKeeper", "redis"],
        "workloads": [
            {"name": "read 64x16", "servers": {
                "Ensemble": {"ops_per_s": 120000.0, "p99_ms": 4.0},
                "ZooKeeper": {"ops_per_s": 50000.0, "p99_ms": 11.0}}},
            {"name": "write 1x1", "servers": {
                "Ensemble": {"ops_per_s": 1500.0, "p99_ms": 0.9},
                "ZooKeeper": {"ops_per_s": 1400.0}}},
            {"name": "redis GET 64x16", "servers": {
                "redis": {"ops_per_s": 900000.0, "p99_ms": 1.5}}}
        ]}})
    }

    #[test]
    fn parse_keeps_the_series_order_and_leaves_gaps() {
        let input = parse(&sample()).unwrap();
        assert_eq!(input.series, ["Ensemble", "ZooKeeper", "redis"]);
        assert_eq!(input.rows.len(), 3);
        assert_eq!(input.rows[1].points[1].unwrap().p99_ms, None);
        assert_eq!(input.rows[0].points[2], None);
    }

    #[test]
    fn series_default_to_the_sorted_server_names() {
        let json = serde_json::json!({"workloads": [
            {"name": "w", "servers": {"b": {"ops_per_s": 1.0}, "a": {"ops_per_s": 2.0}}}]});
        assert_eq!(parse(&json).unwrap().series, ["a", "b"]);
    }

    #[test]
    fn sample_renders_as_well_formed_svg_with_every_label() {
        let svg = render(&parse(&sample()).unwrap()).unwrap();
        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(str::trim))
            .collect();
        for label in [
            "sample",
            "read 64x16",
            "write 1x1",
            "redis GET 64x16",
            "2.40x",
        ] {
            assert!(texts.contains(&label), "no text {label:?} in {texts:?}");
        }
        // Bars: 2 + 2 + 1 throughput bars, 2 + 1 + 1 latency bars, and legends.
        let rects = doc.descendants().filter(|n| n.has_tag_name("rect")).count();
        assert!(rects >= 9, "only {rects} rects");
    }

    #[test]
    fn input_without_workloads_is_a_clear_error() {
        let err = parse(&serde_json::json!({"rows": []})).unwrap_err();
        assert!(err.contains("workloads"), "{err}");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(human(1500.0), "1.5k");
        assert_eq!(human(2_000_000.0), "2M");
        assert_eq!(human(0.25), "0.25");
        assert_eq!(decades(&[3.0, 450.0]), (1.0, 10000.0));
        assert_eq!(decades(&[0.1, 50.0]), (0.01, 1000.0));
    }
}
