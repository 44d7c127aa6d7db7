//! The digest's four-panel chart, drawn in-process (plotters, bundled DejaVu Sans font: no
//! system font libraries needed): mentions by day stacked by sentiment, share answered
//! within SLA by site, average rating by site per day, and open cases by age.

use super::{share, DayRows, Names};
use crate::playbook::team::Team;
use crate::playbook::Sentiment;
use chrono::{Duration, NaiveDate};
use serde::Serialize;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// Width × height in pixels: four 600 × 380 panels under a title, with type large enough
/// to read when Slack shrinks the preview to half size.
pub const CHART_SIZE: (u32, u32) = (1200, 800);
/// Days the chart covers, ending on the digest's date.
pub const DAYS: i64 = 30;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DayCount {
    pub date: NaiveDate,
    pub negative: i64,
    pub neutral: i64,
    pub positive: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SiteShare {
    /// The site's name.
    pub site: String,
    pub within_sla_share: Option<f64>,
    /// Cases with a response clock that count (answered, or past due).
    pub with_clock: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SiteRatings {
    pub site: String,
    /// Mean rating of the rated mentions of the 7 days ending on each day of the chart.
    pub daily: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgeBucket {
    pub label: String,
    pub cases: i64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ChartData {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub timezone: String,
    pub days: Vec<DayCount>,
    pub sla_by_site: Vec<SiteShare>,
    pub rating_by_site: Vec<SiteRatings>,
    pub open_by_age: Vec<AgeBucket>,
}

/// Where one sentiment's part of a day's stacked bar starts and ends.
type Span = fn(&DayCount) -> (i64, i64);

/// Age buckets of open cases: upper bound in hours (exclusive) and label.
pub(super) const AGES: [(i64, &str); 5] =
    [(4, "< 4 h"), (24, "4–24 h"), (72, "1–3 d"), (168, "3–7 d"), (i64::MAX, "> 7 d")];

/// The age buckets' upper bounds in ms (the last bucket has none).
pub(super) fn age_bounds_ms() -> Vec<i64> {
    AGES.iter().filter(|(h, _)| *h != i64::MAX).map(|(h, _)| h * 3_600_000).collect()
}

pub(super) fn data(rows: &DayRows<'_>, team: &Team, names: &Names, _day_start: i64) -> ChartData {
    let from = rows.date - Duration::days(DAYS - 1);
    let dates: Vec<NaiveDate> = (0..DAYS).map(|i| from + Duration::days(i)).collect();
    let mut days: Vec<DayCount> = dates.iter().map(|d| DayCount { date: *d, ..Default::default() }).collect();
    let mut sla: std::collections::HashMap<Option<&str>, (i64, i64)> = Default::default();
    let mut ratings: std::collections::HashMap<(Option<&str>, usize), (i64, f64)> = Default::default();
    for g in rows.month {
        let Some(day) = days.get_mut(g.day) else { continue };
        match g.sentiment.parse::<Sentiment>() {
            Ok(Sentiment::Negative) => day.negative += g.cases,
            Ok(Sentiment::Neutral) => day.neutral += g.cases,
            Ok(Sentiment::Positive) => day.positive += g.cases,
            Err(_) => {}
        }
        let s = sla.entry(g.site.as_deref()).or_default();
        s.0 += g.with_clock;
        s.1 += g.in_time;
        let r = ratings.entry((g.site.as_deref(), g.day)).or_default();
        r.0 += g.rated;
        r.1 += g.rating_sum;
    }
    let sla_by_site = team
        .sites
        .iter()
        .map(|s| {
            let (with_clock, in_time) = sla.get(&Some(s.id.as_str())).copied().unwrap_or_default();
            SiteShare { site: s.name.clone(), within_sla_share: share(in_time, with_clock), with_clock }
        })
        .collect();
    // A trailing 7-day mean: one day's two or three reviews swing too much to read.
    let rating_by_site = team
        .sites
        .iter()
        .map(|s| {
            let daily = (0..dates.len())
                .map(|d| {
                    let (n, sum) = (d.saturating_sub(6)..=d)
                        .filter_map(|x| ratings.get(&(Some(s.id.as_str()), x)))
                        .fold((0, 0.0), |(n, sum), (k, v)| (n + k, sum + v));
                    share(1, n).map(|inv| sum * inv)
                })
                .collect();
            SiteRatings { site: names.site(Some(&s.id)).to_string(), daily }
        })
        .collect();
    let open_by_age = AGES
        .iter()
        .zip(&rows.open.by_age)
        .map(|((_, label), n)| AgeBucket { label: label.to_string(), cases: *n })
        .collect();
    ChartData {
        from: Some(from),
        to: Some(rows.date),
        timezone: rows.timezone.name().to_string(),
        days,
        sla_by_site,
        rating_by_site,
        open_by_age,
    }
}

/// The bar a segmented axis label stands under (labels sit at bar centres only).
fn segment(v: &plotters::prelude::SegmentValue<i32>) -> Option<i32> {
    match v {
        plotters::prelude::SegmentValue::CenterOf(i) => Some(*i),
        _ => None,
    }
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {e}")
}

const NEGATIVE: (u8, u8, u8) = (200, 70, 60);
const NEUTRAL: (u8, u8, u8) = (160, 160, 160);
const POSITIVE: (u8, u8, u8) = (60, 150, 90);
const SITE_COLOURS: [(u8, u8, u8); 6] =
    [(46, 109, 164), (230, 140, 30), (120, 80, 170), (40, 160, 160), (190, 60, 120), (110, 110, 40)];

/// Renders the four panels to an RGB PNG of `CHART_SIZE`.
pub fn render(c: &ChartData) -> anyhow::Result<Vec<u8>> {
    use plotters::prelude::SegmentValue::Exact;
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, VPos};
    use plotters::style::{register_font, FontStyle};
    let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    let (w, h) = CHART_SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let range = match (c.from, c.to) {
            (Some(f), Some(t)) => format!("{} – {} ({})", f.format("%-d %b"), t.format("%-d %b %Y"), c.timezone),
            _ => String::new(),
        };
        let root = root.titled(&format!("Patient-experience digest, {range}"), ("sans-serif", 30)).map_err(err)?;
        let panels = root.split_evenly((2, 2));
        let rgb_of = |(r, g, b): (u8, u8, u8)| RGBColor(r, g, b);
        let label = |x: &i32, dates: &[DayCount]| {
            dates.get(*x as usize).map(|d| d.date.format("%-d %b").to_string()).unwrap_or_default()
        };

        // 1. Mentions by day, stacked by sentiment.
        {
            let max = c.days.iter().map(|d| d.negative + d.neutral + d.positive).max().unwrap_or(0).max(1);
            let mut ch = ChartBuilder::on(&panels[0])
                .caption("Mentions per day by sentiment", ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d(
                    (0i32..(c.days.len() as i32 - 1).max(0)).into_segmented(),
                    0i64..(max + max / 4 + 1),
                )
                .map_err(err)?;
            ch.configure_mesh()
                .disable_x_mesh()
                .x_labels(6)
                .x_label_formatter(&|x| segment(x).map(|i| label(&i, &c.days)).unwrap_or_default())
                .y_desc("mentions")
                .light_line_style(TRANSPARENT)
                .label_style(("sans-serif", 16))
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(err)?;
            let layers: [(&str, (u8, u8, u8), Span); 3] = [
                ("negative", NEGATIVE, |d| (0, d.negative)),
                ("neutral", NEUTRAL, |d| (d.negative, d.negative + d.neutral)),
                ("positive", POSITIVE, |d| (d.negative + d.neutral, d.negative + d.neutral + d.positive)),
            ];
            for (name, colour, span) in layers {
                let colour = rgb_of(colour);
                ch.draw_series(c.days.iter().enumerate().filter_map(|(i, d)| {
                    let (lo, hi) = span(d);
                    let i = i as i32;
                    (hi > lo).then(|| {
                        let mut bar = Rectangle::new([(Exact(i), lo), (Exact(i + 1), hi)], colour.filled());
                        bar.set_margin(0, 0, 1, 1);
                        bar
                    })
                }))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
            }
            ch.configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 16))
                .draw()
                .map_err(err)?;
        }

        // 2. Share answered within SLA by site (30 days).
        {
            let n = c.sla_by_site.len() as i32;
            let mut ch = ChartBuilder::on(&panels[1])
                .caption("Answered within SLA by site, 30 days", ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d((0i32..(n - 1).max(0)).into_segmented(), 0f64..112.0)
                .map_err(err)?;
            let sites: Vec<String> = c.sla_by_site.iter().map(|s| s.site.clone()).collect();
            ch.configure_mesh()
                .disable_x_mesh()
                .x_labels(sites.len().max(1) + 1)
                .x_label_formatter(&|x| segment(x).and_then(|i| sites.get(i as usize).cloned()).unwrap_or_default())
                .y_desc("% within SLA")
                .y_labels(6)
                .y_label_formatter(&|v| if *v <= 100.0 { format!("{v:.0}%") } else { String::new() })
                .light_line_style(TRANSPARENT)
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(err)?;
            ch.draw_series(c.sla_by_site.iter().enumerate().filter_map(|(i, s)| {
                let v = s.within_sla_share? * 100.0;
                let colour = rgb_of(SITE_COLOURS[i % SITE_COLOURS.len()]);
                let i = i as i32;
                let mut bar = Rectangle::new([(Exact(i), 0.0), (Exact(i + 1), v)], colour.filled());
                bar.set_margin(0, 0, 24, 24);
                Some(bar)
            }))
            .map_err(err)?;
            ch.draw_series(c.sla_by_site.iter().enumerate().map(|(i, s)| {
                let text = match s.within_sla_share {
                    Some(v) => format!("{:.0}% of {}", v * 100.0, s.with_clock),
                    None => "no replies due yet".to_string(),
                };
                let y = s.within_sla_share.map_or(2.0, |v| v * 100.0 + 2.0);
                let style = TextStyle::from(("sans-serif", 16).into_font())
                    .pos(plotters::style::text_anchor::Pos::new(HPos::Center, VPos::Bottom));
                Text::new(text, (plotters::prelude::SegmentValue::CenterOf(i as i32), y), style)
            }))
            .map_err(err)?;
        }

        // 3. Average rating by site per day.
        {
            let mut ch = ChartBuilder::on(&panels[2])
                .caption("Average rating by site, 7-day rolling", ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d(0i32..c.days.len().max(1) as i32, 0f64..7.0)
                .map_err(err)?;
            ch.configure_mesh()
                .x_labels(6)
                .x_label_formatter(&|x| label(x, &c.days))
                .y_desc("stars")
                .y_labels(8)
                .y_label_formatter(&|v| if *v <= 5.0 { format!("{v:.0}") } else { String::new() })
                .light_line_style(TRANSPARENT)
                .label_style(("sans-serif", 16))
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(err)?;
            for (i, s) in c.rating_by_site.iter().enumerate() {
                let colour = rgb_of(SITE_COLOURS[i % SITE_COLOURS.len()]);
                let points: Vec<(i32, f64)> =
                    s.daily.iter().enumerate().filter_map(|(d, r)| Some((d as i32, (*r)?))).collect();
                ch.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                    .map_err(err)?
                    .label(s.site.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(3)));
                ch.draw_series(points.into_iter().map(|p| Circle::new(p, 4, colour.filled()))).map_err(err)?;
            }
            ch.configure_series_labels()
                .position(SeriesLabelPosition::UpperMiddle)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(err)?;
        }

        // 4. Open cases by age.
        {
            let max = c.open_by_age.iter().map(|b| b.cases).max().unwrap_or(0).max(1);
            let n = c.open_by_age.len() as i32;
            let mut ch = ChartBuilder::on(&panels[3])
                .caption("Open cases by age", ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d((0i32..(n - 1).max(0)).into_segmented(), 0i64..(max + max / 4 + 1))
                .map_err(err)?;
            let labels: Vec<String> = c.open_by_age.iter().map(|b| b.label.clone()).collect();
            ch.configure_mesh()
                .disable_x_mesh()
                .x_labels(labels.len().max(1) + 1)
                .x_label_formatter(&|x| segment(x).and_then(|i| labels.get(i as usize).cloned()).unwrap_or_default())
                .y_desc("open cases")
                .light_line_style(TRANSPARENT)
                .x_desc("age at the end of the day")
                .label_style(("sans-serif", 16))
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(err)?;
            let colour = RGBColor(46, 109, 164);
            ch.draw_series(c.open_by_age.iter().enumerate().map(|(i, b)| {
                let mut bar = Rectangle::new([(Exact(i as i32), 0), (Exact(i as i32 + 1), b.cases)], colour.filled());
                bar.set_margin(0, 0, 12, 12);
                bar
            }))
            .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    let mut png = Vec::new();
    let mut enc = png::Encoder::new(&mut png, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&rgb)?;
    Ok(png)
}
