//! Minimal SVG line charts for the benchmark report (no plotting crate: a few lines of
//! text are enough, and the output is diffable).

use std::fmt::Write;

/// One named line of `(x, y)` points.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points, in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// Axis scaling.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Base-10 logarithmic (values must be positive).
    Log,
}

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#7f7f7f",
];

fn project(v: f64, scale: Scale) -> f64 {
    match scale {
        Scale::Linear => v,
        Scale::Log => v.max(1e-12).log10(),
    }
}

/// The chart's size and margins: width, height, left, right, top, bottom.
const FRAME: (f64, f64, f64, f64, f64, f64) = (720.0, 420.0, 80.0, 170.0, 40.0, 60.0);

/// Opens an SVG of the frame's size: white background and the title.
fn open_svg(out: &mut String, title: &str) {
    let (w, h, left, right, ..) = FRAME;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{title}</text>"#,
        (w - right + left) / 2.0
    );
}

/// A tick label on a linear axis: scientific from 10^4 up.
fn linear_label(v: f64) -> String {
    if v.abs() >= 1e4 {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
}

/// The vertical axis label, rotated, at the left edge.
fn y_axis_label(out: &mut String, label: &str) {
    let h = FRAME.1;
    let _ = writeln!(
        out,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{label}</text>"#,
        h / 2.0,
        h / 2.0
    );
}

/// An SVG line chart, 720 × 420, with axes, ticks at the data's decades (log) or five
/// even steps (linear), and a legend.
pub fn line_chart(
    title: &str,
    (x_label, x_scale): (&str, Scale),
    (y_label, y_scale): (&str, Scale),
    series: &[Series],
) -> String {
    let (w, h, left, right, top, bottom) = FRAME;
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        let (px, py) = (project(x, x_scale), project(y, y_scale));
        x0 = x0.min(px);
        x1 = x1.max(px);
        y0 = y0.min(py);
        y1 = y1.max(py);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x_scale == Scale::Log {
        (x0, x1) = (x0.floor(), x1.ceil().max(x0.floor() + 1.0));
    }
    if y_scale == Scale::Log {
        (y0, y1) = (y0.floor(), y1.ceil().max(y0.floor() + 1.0));
    } else {
        y0 = y0.min(0.0);
    }
    let (xs, ys) = ((x1 - x0).max(1e-9), (y1 - y0).max(1e-9));
    let sx = |v: f64| left + (v - x0) / xs * (w - left - right);
    let sy = |v: f64| h - bottom - (v - y0) / ys * (h - top - bottom);
    let mut out = String::new();
    open_svg(&mut out, title);
    let ticks = |lo: f64, hi: f64, scale: Scale| -> Vec<f64> {
        match scale {
            Scale::Log => (lo as i64..=hi as i64).map(|d| d as f64).collect(),
            Scale::Linear => (0..=5)
                .map(|k| lo + (hi - lo) * f64::from(k) / 5.0)
                .collect(),
        }
    };
    let label = |v: f64, scale: Scale| match scale {
        Scale::Log => format!("1e{v}"),
        Scale::Linear => linear_label(v),
    };
    for t in ticks(x0, x1, x_scale) {
        let x = sx(t);
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{top}" x2="{x}" y2="{}" stroke="#ddd"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
            h - bottom,
            h - bottom + 16.0,
            label(t, x_scale)
        );
    }
    for t in ticks(y0, y1, y_scale) {
        let y = sy(t);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            w - right,
            left - 6.0,
            y + 4.0,
            label(t, y_scale)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{x_label}</text>"#,
        (w - right + left) / 2.0,
        h - 18.0
    );
    y_axis_label(&mut out, y_label);
    for (k, s) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    sx(project(x, x_scale)),
                    sy(project(y, y_scale))
                )
            })
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        let ly = top + 16.0 * k as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            w - right + 10.0,
            w - right + 30.0,
            w - right + 36.0,
            ly + 4.0,
            s.name
        );
    }
    out.push_str("</svg>\n");
    out
}

/// An SVG bar chart, 720 × 420: one group per label, one bar per series in each group,
/// values ≥ 0 on a linear axis from 0, and a legend.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    labels: &[&str],
    series: &[(&str, Vec<f64>)],
) -> String {
    let (w, h, left, right, top, bottom) = FRAME;
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let plot_w = w - left - right;
    let group = plot_w / labels.len().max(1) as f64;
    let bar = group * 0.8 / series.len().max(1) as f64;
    let sy = |v: f64| h - bottom - v.max(0.0) / max * (h - top - bottom);
    let mut out = String::new();
    open_svg(&mut out, title);
    for k in 0..=5 {
        let v = max * f64::from(k) / 5.0;
        let y = sy(v);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            w - right,
            left - 6.0,
            y + 4.0,
            linear_label(v)
        );
    }
    y_axis_label(&mut out, y_label);
    for (g, label) in labels.iter().enumerate() {
        let x0 = left + group * g as f64 + group * 0.1;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{label}</text>"#,
            x0 + group * 0.4,
            h - bottom + 16.0
        );
        for (k, (_, values)) in series.iter().enumerate() {
            let v = values.get(g).copied().unwrap_or(0.0);
            let (x, y) = (x0 + bar * k as f64, sy(v));
            let _ = writeln!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                bar * 0.95,
                (h - bottom - y).max(0.0),
                COLOURS[k % COLOURS.len()]
            );
        }
    }
    for (k, (name, _)) in series.iter().enumerate() {
        let ly = top + 16.0 * k as f64;
        let _ = writeln!(
            out,
            r#"<rect x="{}" y="{}" width="20" height="8" fill="{}"/><text x="{}" y="{}">{name}</text>"#,
            w - right + 10.0,
            ly - 4.0,
            COLOURS[k % COLOURS.len()],
            w - right + 36.0,
            ly + 4.0
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::{bar_chart, line_chart, Scale, Series};

    #[test]
    fn a_chart_has_one_polyline_per_series_and_survives_empty_input() {
        let s = vec![
            Series {
                name: "a".into(),
                points: vec![(1.0, 10.0), (10.0, 100.0)],
            },
            Series {
                name: "b".into(),
                points: vec![(1.0, 20.0)],
            },
        ];
        let svg = line_chart("t", ("x", Scale::Log), ("y", Scale::Log), &s);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        let empty = line_chart("t", ("x", Scale::Linear), ("y", Scale::Linear), &[]);
        assert!(!empty.contains("NaN"));
    }

    #[test]
    fn a_bar_chart_has_one_bar_per_value_and_scales_to_the_largest() {
        let svg = bar_chart(
            "t",
            "y",
            &["a", "b"],
            &[("s", vec![1.0, 4.0]), ("u", vec![2.0, 0.0])],
        );
        // Four bars, two legend swatches and the background.
        assert_eq!(svg.matches("<rect").count(), 7);
        assert!(
            svg.contains(r#"height="320.0""#),
            "the largest bar spans the plot"
        );
        assert!(!bar_chart("t", "y", &[], &[]).contains("NaN"));
    }
}
