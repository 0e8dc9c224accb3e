//! `drdsurv report`: the latest release of a period → `reports/<period>/`.
//!
//! - `reports/<period>/<area_code>/index.html`: the partnership's report, one self-contained
//!   page (inline CSS and SVG, no script, no external request; A4 print stylesheet);
//! - `reports/<period>/<area_code>/indicators.csv` and `.json`: the area's rows with its
//!   region's, its comparator group's and England's (the published columns);
//! - `reports/<period>/index.html` and `indicators.csv`/`.json` for every area.
//!
//! Documented rounding (stated in each page's methods): values and intervals are shown to one
//! decimal place, counts as whole numbers with thousands separators; the CSV and JSON carry
//! full precision. A suppressed or missing value is shown as an en dash with its note.
//! Quartiles in the spine chart are the 25th and 75th percentiles of the published partnership
//! values (linear interpolation).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use drd_store::Store;

use crate::Error;
use crate::release::{self, AlertRow, AreaRow, IndicatorRow, Release, TrendRow};
use crate::svg::{self, comparison_colours, esc, fmt1};

/// What `render` wrote.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The release rendered.
    pub release_id: String,
    /// Its period.
    pub period: String,
    /// Partnership reports written.
    pub areas: usize,
    /// The national index, relative to the store root.
    pub index: String,
}

/// Renders the latest release of `period` (the latest period when `None`); every partnership,
/// or only `area`.
pub async fn render(
    store: &Store,
    period: Option<&str>,
    area: Option<&str>,
) -> Result<Rendered, Error> {
    use tracing::Instrument as _;
    let span = tracing::info_span!(
        "render_reports",
        period = period.unwrap_or("latest"),
        release = tracing::field::Empty,
        areas = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let r = render_inner(store, period, area)
        .instrument(span.clone())
        .await?;
    span.record("release", r.release_id.as_str());
    span.record("areas", r.areas as u64);
    tracing::info!(
        parent: &span,
        histogram.drdsurv_report_render_seconds = started.elapsed().as_secs_f64(),
        monotonic_counter.drdsurv_reports_rendered = r.areas as u64,
        "reports rendered"
    );
    Ok(r)
}

async fn render_inner(
    store: &Store,
    period: Option<&str>,
    area: Option<&str>,
) -> Result<Rendered, Error> {
    let os = crate::publish::object_store(store)?;
    let id = release::latest_release(&os, period)
        .await?
        .ok_or_else(|| Error::NoRelease(period.unwrap_or("any period").to_string()))?;
    let rel = release::read_release(&os, &id).await?;
    let period = rel.manifest.period.clone();
    let root = format!("reports/{period}");
    let rendered_at = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let ctx = Context::new(&rel, rendered_at);
    let mut n = 0;
    for a in &rel.tables.areas {
        if area.is_some_and(|x| x != a.code) {
            continue;
        }
        let dir = format!("{root}/{}", a.code);
        let rows = ctx.area_file_rows(a);
        release::put(
            &os,
            &format!("{dir}/index.html"),
            ctx.area_page(a).into_bytes(),
        )
        .await?;
        release::put(
            &os,
            &format!("{dir}/indicators.csv"),
            release::to_csv(&release::indicator_schema(), &rows)?,
        )
        .await?;
        release::put(&os, &format!("{dir}/indicators.json"), json(&rows)?).await?;
        n += 1;
    }
    if let Some(code) = area
        && n == 0
    {
        return Err(Error::Release(format!(
            "{code} is not a partnership in release {id}"
        )));
    }
    if area.is_none() {
        release::put(
            &os,
            &format!("{root}/index.html"),
            ctx.index_page().into_bytes(),
        )
        .await?;
        release::put(
            &os,
            &format!("{root}/indicators.csv"),
            release::to_csv(&release::indicator_schema(), &rel.tables.indicators)?,
        )
        .await?;
        release::put(
            &os,
            &format!("{root}/indicators.json"),
            json(&rel.tables.indicators)?,
        )
        .await?;
    }
    Ok(Rendered {
        release_id: id,
        period,
        areas: n,
        index: format!("{root}/index.html"),
    })
}

fn json<T: serde::Serialize>(rows: &[T]) -> Result<Vec<u8>, Error> {
    serde_json::to_vec_pretty(rows).map_err(|e| Error::Release(e.to_string()))
}

/// Whether a row is an indicator's headline: persons, all ages, registration basis (deaths),
/// all substances, except treatment completion, which is published per drug group.
pub fn is_headline(r: &IndicatorRow) -> bool {
    r.sex == "persons"
        && r.age_band == "all"
        && (r.basis == "registration" || r.basis.is_empty())
        && (r.substance_group == "all" || r.indicator_id == "treatment_successful_completion")
}

/// The identity of a row within an area: indicator and breakdown.
pub fn row_key(r: &IndicatorRow) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        r.indicator_id, r.basis, r.sex, r.age_band, r.substance_group
    )
}

/// The index's key indicators.
const KEY_INDICATORS: [(&str, &str, &str); 5] = [
    (
        "drug_poisoning_dsr",
        "all",
        "Drug poisoning deaths per 100,000",
    ),
    ("drug_misuse_dsr", "all", "Drug misuse deaths per 100,000"),
    (
        "misuse_deaths_in_treatment_share",
        "all",
        "Misuse deaths in treatment (%)",
    ),
    (
        "treatment_successful_completion",
        "opiate",
        "Successful completion, opiate (%)",
    ),
    (
        "nsp_syringes_per_pwid",
        "all",
        "Syringes per person who injects drugs",
    ),
];

/// Funnel plots: death rates and treatment outcomes.
const FUNNELS: [(&str, &str); 5] = [
    ("drug_poisoning_dsr", "all"),
    ("drug_misuse_dsr", "all"),
    ("treatment_successful_completion", "opiate"),
    ("treatment_successful_completion", "non_opiate"),
    ("top_abstinent_opiate_crack", "all"),
];

struct Spread {
    min: f64,
    q1: f64,
    q3: f64,
    max: f64,
    shown: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (h - lo as f64)
}

struct Context<'a> {
    rel: &'a Release,
    rendered_at: String,
    by_area: HashMap<&'a str, Vec<&'a IndicatorRow>>,
    spread: HashMap<String, Spread>,
    trends: HashMap<(&'a str, &'a str), Vec<&'a TrendRow>>,
}

impl<'a> Context<'a> {
    fn new(rel: &'a Release, rendered_at: String) -> Context<'a> {
        let mut by_area: HashMap<&str, Vec<&IndicatorRow>> = HashMap::new();
        let mut values: HashMap<String, Vec<f64>> = HashMap::new();
        for r in &rel.tables.indicators {
            by_area.entry(r.area_code.as_str()).or_default().push(r);
            if r.area_type == "partnership"
                && let Some(v) = r.value
            {
                values.entry(row_key(r)).or_default().push(v);
            }
        }
        let spread = values
            .into_iter()
            .map(|(k, mut v)| {
                v.sort_by(f64::total_cmp);
                let s = Spread {
                    min: v[0],
                    q1: percentile(&v, 0.25),
                    q3: percentile(&v, 0.75),
                    max: v[v.len() - 1],
                    shown: v.len(),
                };
                (k, s)
            })
            .collect();
        let mut trends: HashMap<(&str, &str), Vec<&TrendRow>> = HashMap::new();
        for t in &rel.tables.trends {
            trends
                .entry((t.indicator_id.as_str(), t.area_code.as_str()))
                .or_default()
                .push(t);
        }
        for v in trends.values_mut() {
            v.sort_by_key(|t| std::cmp::Reverse(t.point));
        }
        Context {
            rel,
            rendered_at,
            by_area,
            spread,
            trends,
        }
    }

    fn rows_of(&self, code: &str) -> Vec<&'a IndicatorRow> {
        self.by_area.get(code).cloned().unwrap_or_default()
    }

    fn england_code(&self) -> Option<&'a str> {
        self.rel
            .tables
            .indicators
            .iter()
            .find(|r| r.area_type == "england")
            .map(|r| r.area_code.as_str())
    }

    /// The rows of an area's published files: the area, its region, its comparator group and
    /// England.
    fn area_file_rows(&self, a: &AreaRow) -> Vec<IndicatorRow> {
        let mut codes = vec![a.code.as_str(), a.region_code.as_str()];
        if let Some(g) = &a.comparator_group {
            codes.push(g.as_str());
        }
        if let Some(e) = self.england_code() {
            codes.push(e);
        }
        codes
            .iter()
            .flat_map(|c| self.rows_of(c))
            .cloned()
            .collect()
    }

    fn head(&self, title: &str) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
            esc(title)
        )
    }

    fn release_line(&self) -> String {
        let m = &self.rel.manifest;
        let mut s = format!(
            "<p class=\"meta\">Release <strong data-field=\"release_id\">{}</strong> · data as of {} · disclosure policy <code>{}</code> · rendered {}</p>",
            esc(&m.release_id),
            m.data_as_of.format("%d %B %Y"),
            esc(&m.policy),
            esc(&self.rendered_at)
        );
        if let Some(r) = &m.revision {
            let _ = write!(
                s,
                "<p class=\"revision\" role=\"note\"><strong>Revision note.</strong> {}</p>",
                esc(&r.note)
            );
        }
        if m.run_late {
            s.push_str("<p class=\"revision\" role=\"note\">The run behind this release finished after its deadline.</p>");
        }
        s
    }

    fn area_page(&self, a: &AreaRow) -> String {
        let m = &self.rel.manifest;
        let rows = self.rows_of(&a.code);
        let group = a.comparator_group.clone().unwrap_or_else(|| "none".into());
        let mut h = self.head(&format!(
            "{} drug-related deaths benchmark report, {}",
            a.name, m.period
        ));
        let provisional = rows.iter().filter(|r| r.provisional).count();
        let _ = write!(
            h,
            "<header><p class=\"kicker\">Drug-related death surveillance · benchmark report</p><h1>{} <span class=\"code\">({})</span></h1>\
             <dl class=\"facts\"><div><dt>Region</dt><dd>{}</dd></div><div><dt>Comparator group</dt><dd>{}</dd></div>\
             <div><dt>Period</dt><dd>{}</dd></div><div><dt>Provisional figures</dt><dd>{}</dd></div></dl>{}\
             <nav aria-label=\"Sections\"><a href=\"../index.html\">All partnerships</a> · <a href=\"indicators.csv\">indicators.csv</a> · <a href=\"indicators.json\">indicators.json</a></nav></header>\n<main>\n",
            esc(&a.name),
            esc(&a.code),
            esc(&a.region_name),
            esc(&group),
            esc(&m.period),
            if provisional == 0 {
                "none".to_string()
            } else {
                format!(
                    "{provisional} rows are provisional (deaths by date of occurrence, registration still under way)"
                )
            },
            self.release_line()
        );
        // Spine chart and headline table.
        let headline: Vec<&IndicatorRow> =
            rows.iter().copied().filter(|r| is_headline(r)).collect();
        let rest: Vec<&IndicatorRow> = rows.iter().copied().filter(|r| !is_headline(r)).collect();
        h.push_str("<section aria-labelledby=\"spine-h\"><h2 id=\"spine-h\">How the area compares</h2>\
            <p>Each row shows the area's value (circle) against England (black line), the range across all partnerships (light bar) and the middle half of partnerships (dark bar). \
            Where an indicator has a direction, worse is on the left and better on the right. The circle's colour shows the comparison with England, which is also written in the table: \
            <span class=\"key\" style=\"background:#92d050\">better</span> <span class=\"key\" style=\"background:#ffc000\">similar</span> <span class=\"key\" style=\"background:#c00000;color:#fff\">worse</span> \
            <span class=\"key\" style=\"background:#bed2ff\">higher</span> <span class=\"key\" style=\"background:#5555e6;color:#fff\">lower</span> <span class=\"key\">not compared</span>.</p>\n");
        h.push_str(&self.table(
            &headline,
            "spine-table",
            "Headline indicators with spine chart",
            true,
        ));
        h.push_str("</section>\n");
        h.push_str(&self.trends_section(a));
        h.push_str(&self.funnels_section(a));
        h.push_str("<section aria-labelledby=\"brk-h\"><h2 id=\"brk-h\">Breakdowns</h2><p>By sex, age band, substance and date of death (occurrence). Rates from fewer than 10 deaths are not calculated.</p>\n");
        h.push_str(&self.table(
            &rest,
            "breakdown-table",
            "Indicators by sex, age band, substance and basis",
            false,
        ));
        h.push_str("</section>\n");
        h.push_str(&self.alerts_section(Some(a)));
        h.push_str(&self.quality_section(&rows));
        h.push_str(&methods());
        h.push_str("</main>\n</body>\n</html>\n");
        h
    }

    fn table(&self, rows: &[&IndicatorRow], id: &str, caption: &str, spine: bool) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "<div class=\"scroll\" tabindex=\"0\"><table id=\"{id}\" class=\"ind\"><caption>{}</caption><thead><tr>\
             <th scope=\"col\">Indicator</th><th scope=\"col\">Period</th>{}\
             <th scope=\"col\">Count</th><th scope=\"col\">Value</th><th scope=\"col\">95% interval</th>\
             <th scope=\"col\">England</th><th scope=\"col\">Region</th><th scope=\"col\">Comparator group</th>\
             <th scope=\"col\">Compared with England</th><th scope=\"col\">Quintile</th><th scope=\"col\">Trend</th>{}<th scope=\"col\">Note</th></tr></thead><tbody>",
            esc(caption),
            if spine {
                ""
            } else {
                "<th scope=\"col\">Breakdown</th>"
            },
            if spine {
                "<th scope=\"col\">Spine chart</th>"
            } else {
                ""
            }
        );
        for (i, r) in rows.iter().enumerate() {
            let (bg, fg) = comparison_colours(&r.comparison);
            let interval = match (r.lower95, r.upper95) {
                (Some(l), Some(u)) => format!("{l:.1} to {u:.1}"),
                _ => "–".to_string(),
            };
            let _ = write!(
                s,
                "<tr data-key=\"{}\"><th scope=\"row\" data-col=\"indicator\">{}<span class=\"unit\"> ({})</span></th><td data-col=\"period\">{}</td>{}\
                 <td data-col=\"numerator\" data-kind=\"count\" class=\"n\">{}</td><td data-col=\"value\" class=\"n\">{}</td><td data-col=\"interval\" class=\"n\">{}</td>\
                 <td data-col=\"england_value\" class=\"n\">{}</td><td data-col=\"region_value\" class=\"n\">{}</td><td data-col=\"comparator_value\" class=\"n\">{}</td>\
                 <td data-col=\"comparison\"><span class=\"badge\" style=\"background:{bg};color:{fg}\">{}</span></td><td data-col=\"quintile\" class=\"n\">{}</td><td data-col=\"trend\">{}</td>",
                esc(&row_key(r)),
                esc(&if spine && r.substance_group != "all" {
                    format!(
                        "{}: {}",
                        r.indicator_name,
                        r.substance_group.replace('_', "-")
                    )
                } else {
                    r.indicator_name.clone()
                }),
                esc(&r.unit),
                esc(&r.period),
                if spine {
                    String::new()
                } else {
                    format!("<td data-col=\"breakdown\">{}</td>", esc(&breakdown(r)))
                },
                count_text(r.numerator),
                fmt1(r.value),
                interval,
                fmt1(r.england_value),
                fmt1(r.region_value),
                fmt1(r.comparator_value),
                esc(&r.comparison),
                r.quintile.map_or("–".to_string(), |q| q.to_string()),
                esc(&r.trend),
            );
            if spine {
                let cell = match self.spread.get(&row_key(r)) {
                    Some(sp) => svg::spine(
                        &format!("{id}-{i}"),
                        &r.indicator_name,
                        r.value,
                        r.england_value,
                        sp.min,
                        sp.q1,
                        sp.q3,
                        sp.max,
                        &r.polarity,
                        &r.comparison,
                    ),
                    None => "no published partnership values".to_string(),
                };
                let _ = write!(
                    s,
                    "<td class=\"spine-cell\" data-shown=\"{}\">{cell}</td>",
                    self.spread.get(&row_key(r)).map_or(0, |x| x.shown)
                );
            }
            let _ = writeln!(
                s,
                "<td data-col=\"note\">{}</td></tr>",
                esc(r.note.as_deref().unwrap_or(""))
            );
        }
        s.push_str("</tbody></table></div>\n");
        s
    }

    fn trends_section(&self, a: &AreaRow) -> String {
        let mut s = String::from(
            "<section aria-labelledby=\"trend-h\"><h2 id=\"trend-h\">Trends</h2><p>The area (solid line, circles) against its region (dashed, squares) and England (dotted, squares), one point a year. Death rates are 3-year pooled windows by year of registration; treatment and needle-and-syringe figures are 12-month windows.</p><div class=\"grid\">\n",
        );
        let Some(eng) = self.england_code() else {
            return String::new();
        };
        let mut ids: Vec<(&str, &str)> = self
            .rel
            .tables
            .trends
            .iter()
            .filter(|t| t.area_code == a.code)
            .map(|t| (t.indicator_id.as_str(), t.indicator_name.as_str()))
            .collect();
        ids.sort();
        ids.dedup();
        let mut k = 0;
        for (ind, name) in ids {
            let mine = self
                .trends
                .get(&(ind, a.code.as_str()))
                .cloned()
                .unwrap_or_default();
            if mine.len() < 3 {
                continue;
            }
            let periods: Vec<String> = mine.iter().map(|t| t.period.clone()).collect();
            let line = |code: &str| -> Vec<Option<f64>> {
                let pts = self.trends.get(&(ind, code)).cloned().unwrap_or_default();
                periods
                    .iter()
                    .map(|p| pts.iter().find(|t| &t.period == p).and_then(|t| t.value))
                    .collect()
            };
            let area_line = line(&a.code);
            let region_line = line(&a.region_code);
            let england_line = line(eng);
            let unit = mine[0].unit.clone();
            k += 1;
            let title = format!(
                "{name}, {}: trend for {}, {} and England",
                unit, a.name, a.region_name
            );
            let chart = svg::trend(
                &format!("trend-{k}"),
                &title,
                &periods,
                &[
                    ("area", &a.name, area_line.clone()),
                    ("region", &a.region_name, region_line.clone()),
                    ("england", "England", england_line.clone()),
                ],
                &unit,
            );
            let _ = write!(
                s,
                "<figure class=\"chart-fig\"><figcaption>{} <span class=\"unit\">({})</span></figcaption>{chart}\
                 <details><summary>Values</summary><table class=\"mini\"><caption>{}</caption><thead><tr><th scope=\"col\">Window</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">England</th></tr></thead><tbody>",
                esc(name),
                esc(&unit),
                esc(&title),
                esc(&a.name),
                esc(&a.region_name)
            );
            for (i, p) in periods.iter().enumerate() {
                let _ = write!(
                    s,
                    "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    esc(p),
                    fmt1(area_line[i]),
                    fmt1(region_line[i]),
                    fmt1(england_line[i])
                );
            }
            s.push_str("</tbody></table></details></figure>\n");
        }
        if k == 0 {
            s.push_str("<p>No trend series in this release.</p>");
        }
        s.push_str("</div></section>\n");
        s
    }

    fn funnels_section(&self, a: &AreaRow) -> String {
        let mut s = String::from(
            "<section aria-labelledby=\"funnel-h\"><h2 id=\"funnel-h\">Funnel plots</h2><p>Every partnership's value against the size of its population or cohort. The black line is England; dashed lines are 95% control limits and solid lines 99.8% limits. A point outside the limits differs from England by more than chance would explain. The area is the large dark diamond; suppressed values are not plotted.</p><div class=\"grid\">\n",
        );
        for (k, (ind, group)) in FUNNELS.iter().enumerate() {
            let rows: Vec<&IndicatorRow> = self
                .rel
                .tables
                .indicators
                .iter()
                .filter(|r| {
                    r.indicator_id == *ind
                        && r.substance_group == *group
                        && r.sex == "persons"
                        && r.age_band == "all"
                        && (r.basis == "registration" || r.basis.is_empty())
                })
                .collect();
            let Some(eng) = rows
                .iter()
                .find(|r| r.area_type == "england")
                .and_then(|r| r.value)
            else {
                continue;
            };
            let parts: Vec<&&IndicatorRow> = rows
                .iter()
                .filter(|r| r.area_type == "partnership")
                .collect();
            let points: Vec<(f64, f64, bool)> = parts
                .iter()
                .filter_map(|r| Some((r.denominator?, r.value?, r.area_code == a.code)))
                .filter(|p| p.0 > 0.0)
                .collect();
            if points.is_empty() {
                continue;
            }
            let name = parts.first().map_or(*ind, |r| r.indicator_name.as_str());
            let unit = parts.first().map_or("", |r| r.unit.as_str());
            let pct = unit == "%";
            let xmax = svg::nice_ceiling(points.iter().map(|p| p.0).fold(1.0_f64, f64::max));
            let limits: Vec<(f64, f64, f64, f64, f64)> = (1..=60)
                .filter_map(|i| {
                    let n = xmax * f64::from(i) / 60.0;
                    if pct {
                        let p = (eng / 100.0).clamp(0.0, 1.0);
                        let f = |lvl, up| {
                            drd_stats::ci::funnel_proportion_limit(p, n, lvl, up)
                                .ok()
                                .map(|v| v * 100.0)
                        };
                        Some((
                            n,
                            f(0.95, false)?,
                            f(0.95, true)?,
                            f(0.998, false)?,
                            f(0.998, true)?,
                        ))
                    } else {
                        // Rates: expected events at the England rate, Poisson limits
                        // (methods.md §8 method 6), back on the rate scale.
                        let e = eng * n / 100_000.0;
                        if e <= 0.0 {
                            return None;
                        }
                        let f = |lvl, up| {
                            drd_stats::ci::funnel_poisson_limit(e, lvl, up)
                                .ok()
                                .map(|c| c / n * 100_000.0)
                        };
                        Some((
                            n,
                            f(0.95, false)?,
                            f(0.95, true)?,
                            f(0.998, false)?,
                            f(0.998, true)?,
                        ))
                    }
                })
                .collect();
            let mine = parts.iter().find(|r| r.area_code == a.code);
            let where_ = match mine.and_then(|r| r.value) {
                Some(v) => format!("{} {v:.1}", a.name),
                None => format!("{}: not plotted (no published value)", a.name),
            };
            let label = if group == &"all" {
                name.to_string()
            } else {
                format!("{name} ({group})")
            };
            let title = format!(
                "Funnel plot, {label}: {} partnerships plotted, England {eng:.1}; {where_}",
                points.len()
            );
            let chart = svg::funnel(
                &format!("funnel-{k}"),
                &title,
                &points,
                &limits,
                eng,
                if pct {
                    "people in the cohort"
                } else {
                    "population"
                },
                unit,
            );
            let _ = writeln!(
                s,
                "<figure class=\"chart-fig\"><figcaption>{} <span class=\"unit\">({})</span> · {}</figcaption>{chart}</figure>",
                esc(&label),
                esc(unit),
                esc(&where_)
            );
        }
        s.push_str("</div></section>\n");
        s
    }

    fn alerts_section(&self, area: Option<&AreaRow>) -> String {
        let alerts: Vec<&AlertRow> = self
            .rel
            .tables
            .alerts
            .iter()
            .filter(|x| area.is_none_or(|a| a.region_code == x.region_code))
            .collect();
        let whom = area.map_or("England".to_string(), |a| a.region_name.clone());
        let mut s = format!(
            "<section aria-labelledby=\"alert-h\"><h2 id=\"alert-h\">Drug-alert signals for review</h2>\
             <p>Signals are statistical flags from weekly counts of drug-related deaths in {}. They are <strong>for review</strong> by the people who run local drug alert systems, not findings: a signal may reflect reporting patterns rather than a change in harm.</p>",
            esc(&whom)
        );
        if alerts.is_empty() {
            s.push_str("<p>No signals in this release.</p></section>\n");
            return s;
        }
        s.push_str("<div class=\"scroll\" tabindex=\"0\"><table class=\"mini\"><caption>Signals for review</caption><thead><tr><th scope=\"col\">Week</th><th scope=\"col\">Region</th><th scope=\"col\">Substance group</th><th scope=\"col\">Method</th><th scope=\"col\">Deaths that week</th><th scope=\"col\">Expected</th><th scope=\"col\">Threshold</th><th scope=\"col\">Status</th></tr></thead><tbody>");
        for x in alerts.iter().rev().take(40) {
            let _ = write!(
                s,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td class=\"n\" data-kind=\"count\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>for review ({})</td></tr>",
                esc(&x.week),
                esc(&x.region_name),
                esc(&x.substance_group),
                esc(&x.method),
                count_text(x.observed),
                fmt1(x.expected),
                fmt1(x.threshold),
                esc(&x.status)
            );
        }
        s.push_str("</tbody></table></div>");
        if alerts.len() > 40 {
            let _ = write!(
                s,
                "<p>The 40 most recent of {} signals are shown.</p>",
                alerts.len()
            );
        }
        s.push_str("</section>\n");
        s
    }

    fn quality_section(&self, rows: &[&IndicatorRow]) -> String {
        let q = &self.rel.tables.quality;
        let mut s =
            String::from("<section aria-labelledby=\"dq-h\"><h2 id=\"dq-h\">Data quality</h2>");
        let mut by_source: BTreeMap<&str, (usize, i64, i64, i64, i64, i64)> = BTreeMap::new();
        for r in q {
            let e = by_source.entry(r.source.as_str()).or_default();
            e.0 += 1;
            e.1 += r.files;
            e.2 += r.files_rejected;
            e.3 += r.rows_read;
            e.4 += r.rows_accepted;
            e.5 += r.rows_quarantined;
        }
        s.push_str("<table class=\"mini\"><caption>Submissions received up to the run (all submitters in England)</caption><thead><tr><th scope=\"col\">Source</th><th scope=\"col\">Submitters</th><th scope=\"col\">Files</th><th scope=\"col\">Files rejected whole</th><th scope=\"col\">Rows read</th><th scope=\"col\">Rows accepted</th><th scope=\"col\">Rows quarantined</th></tr></thead><tbody>");
        for (src, (subs, files, rej, read, acc, quar)) in &by_source {
            let label = match *src {
                "coroner" => "Coroners' reports",
                "top" => "Treatment Outcomes Profile",
                "nsp" => "Needle and syringe programmes",
                other => other,
            };
            let _ = write!(
                s,
                "<tr><th scope=\"row\">{label}</th><td class=\"n\">{subs}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                thousands(*files),
                thousands(*rej),
                thousands(*read),
                thousands(*acc),
                thousands(*quar)
            );
        }
        s.push_str("</tbody></table>");
        let provisional: Vec<&&IndicatorRow> = rows.iter().filter(|r| r.provisional).collect();
        let _ = write!(
            s,
            "<p>Quarantined rows are held back with a reason and returned to the submitter for correction; they are not in any figure. Data as of {}.</p>",
            self.rel.manifest.data_as_of.format("%d %B %Y")
        );
        if provisional.is_empty() {
            s.push_str("<p>No figure for this area is provisional.</p>");
        } else {
            let _ = write!(
                s,
                "<p>{} figures are provisional: deaths counted by date of occurrence in years where fewer than 90% of deaths have been registered yet. They will change as inquests conclude.</p>",
                provisional.len()
            );
        }
        s.push_str("</section>\n");
        s
    }

    fn index_page(&self) -> String {
        let m = &self.rel.manifest;
        let mut h = self.head(&format!(
            "Drug-related deaths: all partnerships, {}",
            m.period
        ));
        let _ = write!(
            h,
            "<header><p class=\"kicker\">Drug-related death surveillance · national index</p><h1>All partnerships, {}</h1>{}\
             <nav aria-label=\"Downloads\"><a href=\"indicators.csv\">indicators.csv</a> · <a href=\"indicators.json\">indicators.json</a> (every area, every indicator)</nav></header>\n<main>\n",
            esc(&m.period),
            self.release_line()
        );
        // England and regions.
        h.push_str("<section aria-labelledby=\"sum-h\"><h2 id=\"sum-h\">England and regions</h2>");
        let mut regions: Vec<(&str, &str)> = self
            .rel
            .tables
            .areas
            .iter()
            .map(|a| (a.region_code.as_str(), a.region_name.as_str()))
            .collect();
        regions.sort_by(|a, b| a.1.cmp(b.1));
        regions.dedup();
        h.push_str(&self.key_table_head(
            "summary",
            "England and regional values of the key indicators",
            "Area",
        ));
        if let Some(e) = self.england_code() {
            h.push_str(&self.key_row(e, "England", None));
        }
        for (code, name) in &regions {
            h.push_str(&self.key_row(code, name, None));
        }
        h.push_str("</tbody></table></div></section>\n");
        h.push_str("<section aria-labelledby=\"parts-h\"><h2 id=\"parts-h\">Partnerships by region</h2><p>Each value is followed by its comparison with England (better, similar, worse; higher or lower where an indicator has no direction). Follow an area's name to its report.</p>");
        for (code, name) in &regions {
            let _ = write!(h, "<h3 id=\"r-{}\">{}</h3>", esc(code), esc(name));
            h.push_str(&self.key_table_head(
                code,
                &format!("Partnerships in {name}"),
                "Partnership",
            ));
            let mut members: Vec<&AreaRow> = self
                .rel
                .tables
                .areas
                .iter()
                .filter(|a| a.region_code == *code)
                .collect();
            members.sort_by(|a, b| a.name.cmp(&b.name));
            for a in members {
                h.push_str(&self.key_row(
                    &a.code,
                    &a.name,
                    Some(&format!("{}/index.html", a.code)),
                ));
            }
            h.push_str("</tbody></table></div>\n");
        }
        h.push_str("</section>\n");
        h.push_str(&self.alerts_section(None));
        h.push_str(&methods());
        h.push_str("</main>\n</body>\n</html>\n");
        h
    }

    fn key_table_head(&self, id: &str, caption: &str, first: &str) -> String {
        let mut s = format!(
            "<div class=\"scroll\" tabindex=\"0\"><table class=\"ind key-table\" id=\"t-{}\"><caption>{}</caption><thead><tr><th scope=\"col\">{}</th>",
            esc(id),
            esc(caption),
            esc(first)
        );
        for (_, _, label) in KEY_INDICATORS {
            let _ = write!(s, "<th scope=\"col\">{}</th>", esc(label));
        }
        s.push_str("</tr></thead><tbody>");
        s
    }

    fn key_row(&self, code: &str, name: &str, link: Option<&str>) -> String {
        let rows = self.rows_of(code);
        let head = match link {
            Some(l) => format!("<a href=\"{}\">{}</a>", esc(l), esc(name)),
            None => esc(name),
        };
        let mut s = format!(
            "<tr data-area=\"{}\"><th scope=\"row\">{head}</th>",
            esc(code)
        );
        for (ind, group, _) in KEY_INDICATORS {
            let r = rows.iter().find(|r| {
                r.indicator_id == ind
                    && r.substance_group == group
                    && r.sex == "persons"
                    && r.age_band == "all"
                    && (r.basis == "registration" || r.basis.is_empty())
            });
            match r {
                Some(r) => {
                    let (bg, fg) = comparison_colours(&r.comparison);
                    let cmp = if r.area_type == "england" {
                        String::new()
                    } else {
                        format!(
                            " <span class=\"badge\" style=\"background:{bg};color:{fg}\">{}</span>",
                            esc(&r.comparison)
                        )
                    };
                    let _ = write!(
                        s,
                        "<td class=\"n\">{}{cmp}{}</td>",
                        fmt1(r.value),
                        r.note
                            .as_deref()
                            .map_or(String::new(), |n| format!("<br><small>{}</small>", esc(n)))
                    );
                }
                None => s.push_str("<td>–</td>"),
            }
        }
        s.push_str("</tr>");
        s
    }
}

fn breakdown(r: &IndicatorRow) -> String {
    let mut parts = vec![r.sex.clone()];
    parts.push(if r.age_band == "all" {
        "all ages".into()
    } else {
        format!("aged {}", r.age_band)
    });
    if r.substance_group != "all" {
        parts.push(r.substance_group.replace('_', " "));
    }
    if !r.basis.is_empty() {
        parts.push(format!("by {}", r.basis));
    }
    parts.join(", ")
}

/// A count as shown: whole number with thousands separators, or an en dash.
pub fn count_text(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |x| thousands(x.round() as i64))
}

fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn methods() -> String {
    r#"<section aria-labelledby="methods-h" class="methods"><h2 id="methods-h">Methods and definitions</h2><ol>
<li><strong>Deaths related to drug poisoning</strong> and <strong>deaths from drug misuse</strong> follow the Office for National Statistics definitions (ICD-10 underlying cause codes for poisoning; misuse where a drug controlled under the Misuse of Drugs Act 1971 is involved or the cause is drug abuse or dependence). Source: ONS, Deaths related to drug poisoning in England and Wales, quality and methodology information.</li>
<li>Rates are directly age-standardised to the 2013 European Standard Population, per 100,000, pooled over 3 registration years, with Dobson 95% and 99.8% intervals. Rates are not calculated from fewer than 10 deaths, and rates from 10 to 19 deaths are marked unreliable. Source: Public Health England, Technical guide: confidence intervals.</li>
<li>Shares are percentages with Wilson score intervals. Treatment outcomes come from the Treatment Outcomes Profile (NDTMS) for the 12 months ending with the period; needle and syringe figures from programme returns over the same 12 months, per estimated person who injects drugs.</li>
<li>Comparisons use the area's 95% interval against England's value (Fingertips method). Better or worse applies where lower or higher is clearly good; otherwise higher or lower. Quintiles rank all partnerships (1 = lowest value). Trend compares the value with the previous window. Funnel limits follow the PHE funnel plot methods.</li>
<li><strong>Disclosure control.</strong> Under the default policy, sub-national counts from 1 to 7 are withheld and other counts are rounded to the nearest 5; a rate, share or interval derived from a withheld count is withheld too, with the note "suppressed small count". England's counts are not controlled. Values and intervals are calculated from the unrounded counts; the published counts are the rounded ones, so a rate recomputed from them will differ slightly.</li>
<li><strong>Rounding in this page.</strong> Values and intervals are shown to 1 decimal place and counts as whole numbers; indicators.csv and indicators.json carry full precision. An en dash marks a value that is withheld or not available; the note says why.</li>
<li>These figures describe people who use drugs and the services that support them. Every death counted is a person whose family, friends and community have been affected.</li>
</ol></section>
"#
    .to_string()
}

/// The stylesheet: screen, then A4 portrait print.
const CSS: &str = r#"
*{box-sizing:border-box}
body{font-family:Arial,Helvetica,sans-serif;color:#0b0c0c;background:#fff;margin:0;line-height:1.4;font-size:15px}
header,main{max-width:1220px;margin:0 auto;padding:0 16px}
header{border-bottom:4px solid #1d70b8;padding-bottom:8px;margin-bottom:12px}
h1{font-size:28px;margin:6px 0}
h2{font-size:21px;margin:24px 0 8px;border-top:1px solid #b1b4b6;padding-top:12px}
h3{font-size:18px;margin:16px 0 6px}
.kicker{color:#505a5f;margin:12px 0 0}
.code{color:#505a5f;font-weight:normal;font-size:18px}
.facts{display:flex;flex-wrap:wrap;gap:4px 24px;margin:6px 0}
.facts div{display:flex;gap:6px}.facts dt{font-weight:bold}.facts dd{margin:0}
.meta{color:#0b0c0c;margin:4px 0}
.revision{background:#fff7bf;border-left:4px solid #ffdd00;padding:6px 10px}
a{color:#1d70b8}a:visited{color:#4c2c92}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
caption{text-align:left;font-weight:bold;padding:4px 0}
th,td{border-bottom:1px solid #b1b4b6;padding:3px 6px;vertical-align:middle;text-align:left}
thead th{background:#f3f2f1}
td.n{text-align:right;white-space:nowrap}
.unit{color:#505a5f;font-weight:normal}
.badge{display:inline-block;padding:0 5px;border:1px solid #0b0c0c;border-radius:3px;white-space:nowrap}
.key{display:inline-block;padding:0 5px;border:1px solid #0b0c0c;border-radius:3px}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.chart-fig{margin:0;border:1px solid #b1b4b6;padding:6px;max-width:460px}
.chart-fig figcaption{font-weight:bold;font-size:14px}
svg{max-width:100%;height:auto}
.spine-cell{min-width:210px}
th[data-col=indicator]{min-width:170px}
.mini{font-size:12px}
.methods li{margin-bottom:6px}
@media print{
 @page{size:A4 portrait;margin:12mm}
 body{font-size:9.5pt}
 header,main{max-width:none;padding:0}
 nav{display:none}
 h2{break-after:avoid}
 .scroll{overflow:visible}
 table{font-size:6.5pt;width:100%}
 th,td{padding:1px 2px}
 th[data-col=indicator]{min-width:0;max-width:110px}
 td.n,.badge{white-space:normal}
 tr,figure,.chart-fig{break-inside:avoid}
 .chart-fig{max-width:48%}
 .spine-cell{min-width:0;width:104px}
 svg.spine{width:100px;height:auto}
 details{display:block}
 details>*{display:block}
 a{color:#0b0c0c;text-decoration:none}
}
"#;
