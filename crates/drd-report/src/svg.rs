//! The reports' charts as inline SVG: the spine chart row, trend lines and funnel plots.
//! Every chart has `role="img"`, a `<title>` and a text description; colour always comes with
//! text (the comparison is also written in the table) and shape (the area's mark is a larger,
//! outlined symbol).
//!
//! Marks carry `data-role` and `data-value` so that a test can check that each lies where its
//! value puts it.

use std::fmt::Write;

/// HTML/XML text escaping.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// A value to 1 decimal place (the reports' documented rounding), or an en dash.
pub fn fmt1(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{x:.1}"))
}

/// The fill colour for a comparison (Fingertips' palette, with text colours that keep a
/// contrast ratio above 4.5).
pub fn comparison_colours(c: &str) -> (&'static str, &'static str) {
    match c {
        "better" | "best" => ("#92d050", "#000000"),
        "similar" => ("#ffc000", "#000000"),
        "worse" | "worst" => ("#c00000", "#ffffff"),
        "higher" => ("#bed2ff", "#000000"),
        "lower" => ("#5555e6", "#ffffff"),
        _ => ("#ffffff", "#000000"),
    }
}

/// One spine-chart row: the range across partnerships, the interquartile band, England at
/// the centre and the area's mark. Worse is on the left and better on the right when the
/// indicator has a polarity (Fingertips' layout); lower on the left otherwise.
#[allow(clippy::too_many_arguments)]
pub fn spine(
    id: &str,
    label: &str,
    value: Option<f64>,
    england: Option<f64>,
    min: f64,
    q1: f64,
    q3: f64,
    max: f64,
    polarity: &str,
    comparison: &str,
) -> String {
    const W: f64 = 200.0;
    const H: f64 = 22.0;
    const HALF: f64 = 92.0;
    let centre = W / 2.0;
    let Some(e) = england else {
        return format!(
            r#"<svg class="spine" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{id}-t"><title id="{id}-t">{}: no England value to compare with</title></svg>"#,
            esc(label)
        );
    };
    let reach = [min, max, value.unwrap_or(e)]
        .iter()
        .map(|v| (v - e).abs())
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    // Low is good: higher values are worse, so they go left.
    let dir = if polarity == "low_is_good" { -1.0 } else { 1.0 };
    let x = |v: f64| centre + dir * (v - e) / reach * HALF;
    let (x_min, x_max) = (x(min), x(max));
    let (x_q1, x_q3) = (x(q1), x(q3));
    let mut s = String::new();
    let desc = match value {
        Some(v) => format!(
            "{label}: area {v:.1}, England {e:.1}, partnerships range {min:.1} to {max:.1} (middle half {q1:.1} to {q3:.1}); {comparison} compared with England"
        ),
        None => format!(
            "{label}: no value for the area; England {e:.1}, partnerships range {min:.1} to {max:.1}"
        ),
    };
    let _ = write!(
        s,
        r#"<svg class="spine" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{id}-t"><title id="{id}-t">{}</title>"#,
        esc(&desc)
    );
    let _ = write!(
        s,
        r##"<rect data-role="range" x="{:.2}" y="5" width="{:.2}" height="12" fill="#d9d9d9"/>"##,
        x_min.min(x_max),
        (x_max - x_min).abs()
    );
    let _ = write!(
        s,
        r##"<rect data-role="iqr" x="{:.2}" y="5" width="{:.2}" height="12" fill="#8c8c8c"/>"##,
        x_q1.min(x_q3),
        (x_q3 - x_q1).abs()
    );
    let _ = write!(
        s,
        r##"<line data-role="min" data-value="{min}" x1="{x_min:.2}" x2="{x_min:.2}" y1="3" y2="19" stroke="#595959"/><line data-role="max" data-value="{max}" x1="{x_max:.2}" x2="{x_max:.2}" y1="3" y2="19" stroke="#595959"/>"##
    );
    let _ = write!(
        s,
        r##"<line data-role="england" data-value="{e}" x1="{centre:.2}" x2="{centre:.2}" y1="0" y2="22" stroke="#000000" stroke-width="2"/>"##
    );
    if let Some(v) = value {
        let (fill, _) = comparison_colours(comparison);
        let _ = write!(
            s,
            r##"<circle data-role="area" data-value="{v}" cx="{:.2}" cy="11" r="6" fill="{fill}" stroke="#000000" stroke-width="1.5"/>"##,
            x(v)
        );
    }
    s.push_str("</svg>");
    s
}

/// A trend chart: the area, its region and England over the windows given (oldest first).
pub fn trend(
    id: &str,
    title: &str,
    periods: &[String],
    series: &[(&str, &str, Vec<Option<f64>>)],
    unit: &str,
) -> String {
    const W: f64 = 440.0;
    const H: f64 = 200.0;
    let (l, r, t, b) = (48.0, 40.0, 12.0, 48.0);
    let vals: Vec<f64> = series
        .iter()
        .flat_map(|s| s.2.iter().flatten().copied())
        .collect();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{id}-t"><title id="{id}-t">{}</title>"#,
        esc(title)
    );
    if vals.is_empty() || periods.is_empty() {
        s.push_str(r##"<text x="20" y="100" fill="#000000">No published values</text></svg>"##);
        return s;
    }
    let hi = vals.iter().copied().fold(f64::MIN, f64::max);
    let top = nice_ceiling(hi.max(1e-9));
    let n = periods.len();
    let x = |i: usize| {
        if n == 1 {
            l + (W - l - r) / 2.0
        } else {
            l + (W - l - r) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| t + (H - t - b) * (1.0 - v / top);
    // Axes and gridlines.
    for k in 0..=4 {
        let v = top * f64::from(k) / 4.0;
        gridline(&mut s, l, W - r, y(v), v);
    }
    for (i, p) in periods.iter().enumerate() {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle" fill="#000000">{}</text>"##,
            x(i),
            H - b + 14.0 + if i % 2 == 1 { 11.0 } else { 0.0 },
            esc(p)
        );
    }
    let _ = write!(
        s,
        r##"<text x="4" y="{:.1}" font-size="9" fill="#000000">{}</text>"##,
        H - 4.0,
        esc(unit)
    );
    let styles = [
        ("#0b0c0c", "", 4.0),
        ("#1d70b8", "6 3", 3.0),
        ("#6f3a97", "2 3", 3.0),
    ];
    for (k, (role, _name, pts)) in series.iter().enumerate() {
        let (colour, dash, rad) = styles[k % styles.len()];
        let mut path = String::new();
        let mut pen_up = true;
        for (i, v) in pts.iter().enumerate() {
            match v {
                Some(v) => {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1} ",
                        if pen_up { "M" } else { "L" },
                        x(i),
                        y(*v)
                    );
                    pen_up = false;
                }
                None => pen_up = true,
            }
        }
        let _ = write!(
            s,
            r#"<path data-role="{role}" d="{}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>"#,
            path.trim()
        );
        for (i, v) in pts.iter().enumerate() {
            if let Some(v) = v {
                if k == 0 {
                    let _ = write!(
                        s,
                        r#"<circle data-role="{role}-point" data-value="{v}" cx="{:.1}" cy="{:.1}" r="{rad}" fill="{colour}"/>"#,
                        x(i),
                        y(*v)
                    );
                } else {
                    let _ = write!(
                        s,
                        r#"<rect data-role="{role}-point" data-value="{v}" x="{:.1}" y="{:.1}" width="{}" height="{}" fill="{colour}"/>"#,
                        x(i) - rad,
                        y(*v) - rad,
                        2.0 * rad,
                        2.0 * rad
                    );
                }
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// One step of a funnel's control limits: (x, lower 95%, upper 95%, lower 99.8%, upper 99.8%).
pub type Limit = (f64, f64, f64, f64, f64);

/// A funnel plot: every partnership's value against its denominator, the England line, and
/// the 95% and 99.8% control limits; the area is the large dark diamond.
pub fn funnel(
    id: &str,
    title: &str,
    points: &[(f64, f64, bool)],
    limits: &[Limit],
    reference: f64,
    x_label: &str,
    y_label: &str,
) -> String {
    const W: f64 = 440.0;
    const H: f64 = 240.0;
    let (l, r, t, b) = (48.0, 30.0, 24.0, 36.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{id}-t"><title id="{id}-t">{}</title>"#,
        esc(title)
    );
    let xmax = nice_ceiling(points.iter().map(|p| p.0).fold(0.0_f64, f64::max).max(1.0));
    let ymax = nice_ceiling(
        points
            .iter()
            .map(|p| p.1)
            .chain(std::iter::once(reference))
            .fold(0.0_f64, f64::max)
            .max(1e-9)
            * 1.15,
    );
    let x = |v: f64| l + (W - l - r) * (v / xmax).clamp(0.0, 1.0);
    let y = |v: f64| t + (H - t - b) * (1.0 - (v / ymax).clamp(0.0, 1.0));
    for k in 0..=4 {
        let v = ymax * f64::from(k) / 4.0;
        gridline(&mut s, l, W - r, y(v), v);
        let xv = xmax * f64::from(k) / 4.0;
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#000000">{}</text>"##,
            x(xv),
            H - b + 13.0,
            short(xv)
        );
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#000000">{}</text><text x="4" y="11" font-size="10" fill="#000000">{}</text>"##,
        l + (W - l - r) / 2.0,
        H - 4.0,
        esc(x_label),
        esc(y_label)
    );
    let line = |s: &mut String, pick: &dyn Fn(&Limit) -> f64, dash: &str, role: &str| {
        let d: Vec<String> = limits
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "{}{:.1},{:.1}",
                    if i == 0 { "M" } else { "L" },
                    x(p.0),
                    y(pick(p))
                )
            })
            .collect();
        let _ = write!(
            s,
            r##"<path data-role="{role}" d="{}" fill="none" stroke="#505a5f" stroke-width="1.2" stroke-dasharray="{dash}"/>"##,
            d.join(" ")
        );
    };
    line(&mut s, &|p| p.1, "4 3", "lower95");
    line(&mut s, &|p| p.2, "4 3", "upper95");
    line(&mut s, &|p| p.3, "", "lower998");
    line(&mut s, &|p| p.4, "", "upper998");
    let _ = write!(
        s,
        r##"<line data-role="england" x1="{l}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#000000" stroke-width="1.5"/>"##,
        W - r,
        y(reference),
        y(reference)
    );
    for (px, py, me) in points.iter().filter(|p| !p.2) {
        let _ = me;
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#9a9a9a"/>"##,
            x(*px),
            y(*py)
        );
    }
    for (px, py, _) in points.iter().filter(|p| p.2) {
        let (cx, cy) = (x(*px), y(*py));
        let _ = write!(
            s,
            r##"<path data-role="area" data-value="{py}" d="M{cx:.1},{:.1} L{:.1},{cy:.1} L{cx:.1},{:.1} L{:.1},{cy:.1} Z" fill="#0b0c0c" stroke="#ffffff" stroke-width="1"/>"##,
            cy - 7.0,
            cx + 7.0,
            cy + 7.0,
            cx - 7.0
        );
    }
    s.push_str("</svg>");
    s
}

/// A horizontal gridline from `left` to `right` at height `y`, labelled `value` on the left.
fn gridline(s: &mut String, left: f64, right: f64, y: f64, value: f64) {
    let _ = write!(
        s,
        r##"<line x1="{left}" x2="{right:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#000000">{}</text>"##,
        left - 4.0,
        y + 3.0,
        short(value)
    );
}

/// The smallest "nice" number (1, 2 or 5 × 10^k) at or above `v`.
pub fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

/// An axis label: integers with thousands shortened.
fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
