//! `--plot FILE.svg`: usage over time with the target, lower and upper bound lines for each
//! container of a replay.

use crate::replay::ReplayOutput;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

const GREY: RGBColor = RGBColor(120, 120, 120);

/// At most this many containers are drawn, to keep the file usable.
pub const MAX_PLOTTED_CONTAINERS: usize = 40;

type Line = Vec<(f64, f64)>;

/// Draws the plot; returns how many containers were drawn.
pub fn write_svg(out: &ReplayOutput, path: &Path) -> Result<usize, String> {
    let start = out
        .series
        .values()
        .filter_map(|s| s.points.first().map(|p| p.0))
        .min()
        .ok_or("the trace has no usage samples to plot")?;
    let hours = |t: vpa_core::time::Timestamp| t.since(start).as_nanos_f64() / 3.6e12;

    // Recommendation lines per container: (target, lower, upper) for cpu and memory.
    let mut lines: BTreeMap<(&str, &str, &str), [[Line; 3]; 2]> = BTreeMap::new();
    for e in &out.recommendations {
        let r = &e.recommendation;
        let entry = lines
            .entry((&*e.namespace, &*e.workload, r.container_name.as_str()))
            .or_default();
        let x = hours(e.time);
        for (i, q) in [&r.target, &r.lower_bound, &r.upper_bound]
            .into_iter()
            .enumerate()
        {
            let a = q.amounts();
            if let Some(c) = a.cpu {
                entry[0][i].push((x, c as f64 / 1000.0));
            }
            if let Some(m) = a.memory {
                entry[1][i].push((x, m as f64 / 1048576.0));
            }
        }
    }

    let drawn: Vec<_> = out.series.iter().take(MAX_PLOTTED_CONTAINERS).collect();
    let n = drawn.len().max(1);
    let root = SVGBackend::new(path, (1200, 320 * n as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let rows = root.split_evenly((n, 2));
    for (i, ((ns, workload, container), series)) in drawn.iter().enumerate() {
        let rec = lines.get(&(&**ns, &**workload, container.as_str()));
        for (res, area) in [0usize, 1]
            .into_iter()
            .zip([&rows[2 * i], &rows[2 * i + 1]])
        {
            let usage: Line = series
                .points
                .iter()
                .filter_map(|p| {
                    let v = if res == 0 {
                        p.1.map(|c| c as f64 / 1000.0)
                    } else {
                        p.2.map(|m| m as f64 / 1048576.0)
                    };
                    v.map(|v| (hours(p.0), v))
                })
                .collect();
            let bounds = rec.map(|r| &r[res]);
            let x_max = usage
                .iter()
                .chain(bounds.into_iter().flatten().flatten())
                .map(|p| p.0)
                .fold(1.0_f64, f64::max);
            // Scale to usage and target; the upper bound starts huge before there is history.
            let y_max = usage
                .iter()
                .chain(bounds.map(|b| b[0].iter()).into_iter().flatten())
                .map(|p| p.1)
                .fold(0.0_f64, f64::max)
                * 1.8
                + 1e-3;
            let unit = if res == 0 { "cores" } else { "MiB" };
            let mut chart = ChartBuilder::on(area)
                .caption(
                    format!(
                        "{ns}/{workload} {container}: {}",
                        if res == 0 { "cpu" } else { "memory" }
                    ),
                    ("sans-serif", 16),
                )
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..x_max, 0.0..y_max)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("hours since the start of the trace")
                .y_desc(unit)
                .draw()
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(LineSeries::new(usage, GREY))
                .map_err(|e| e.to_string())?
                .label("usage (max per bucket)")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], GREY));
            if let Some(b) = bounds {
                let clip = |l: &Line| {
                    l.iter()
                        .map(|&(x, y)| (x, y.min(y_max)))
                        .collect::<Vec<_>>()
                };
                chart
                    .draw_series(LineSeries::new(clip(&b[0]), BLUE.stroke_width(2)))
                    .map_err(|e| e.to_string())?
                    .label("target")
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE));
                chart
                    .draw_series(LineSeries::new(clip(&b[1]), GREEN))
                    .map_err(|e| e.to_string())?
                    .label("lower bound")
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], GREEN));
                chart
                    .draw_series(LineSeries::new(clip(&b[2]), RED))
                    .map_err(|e| e.to_string())?
                    .label("upper bound")
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(drawn.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::replay::{ReplaySettings, replay_reader};
    use vpa_core::model::{AggregationsConfig, Resources};
    use vpa_core::recommendation::OutputFormat;
    use vpa_core::recommender::PodResourceRecommender;
    use vpa_core::time::Duration;

    #[test]
    fn draws_usage_and_bounds() {
        let mut trace = format!("{}\n", crate::trace::HEADER);
        for i in 0..600 {
            trace.push_str(&format!(
                "{},ns,web,web-1,app,0.{:03},{},\n",
                1_700_000_000 + i * 60,
                100 + i % 400,
                300 << 20
            ));
        }
        let settings = ReplaySettings {
            aggregations: AggregationsConfig::default(),
            recommender: PodResourceRecommender::default(),
            format: OutputFormat::default(),
            global_max_allowed: Resources::default(),
            every: Some(Duration::from_hours(1)),
            series_resolution: Some(Duration::from_minutes(15)),
        };
        let out = replay_reader(trace.as_bytes(), settings).unwrap();
        let path = std::env::temp_dir().join(format!("vpa-plot-test-{}.svg", std::process::id()));
        assert_eq!(write_svg(&out, &path).unwrap(), 1);
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(svg.starts_with("<svg"), "{}", &svg[..50.min(svg.len())]);
        assert!(svg.contains("ns/web app: cpu"));
        assert!(svg.contains("ns/web app: memory"));
        assert!(svg.contains("target") && svg.contains("upper bound"));
        assert!(
            svg.matches("<polyline").count() >= 8,
            "usage and three bounds, twice"
        );
    }
}
