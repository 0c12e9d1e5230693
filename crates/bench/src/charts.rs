//! SVG charts for `samsara-bench`, in the style of the Samsara paper's
//! figures: one panel per hart count, workloads along the x axis, one bar
//! per series (recording strategy) in each group, a line at 1 where the
//! figure is relative to a baseline.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A figure: panels side by side sharing the y axis's scale.
pub struct Chart {
    pub title: String,
    pub y_label: String,
    /// A horizontal line (the baseline, e.g. 1 for "relative to native").
    pub reference: Option<f64>,
    pub panels: Vec<Panel>,
}

/// One panel: groups of bars.
pub struct Panel {
    pub title: String,
    /// Group labels along the x axis (workloads, then "geomean").
    pub groups: Vec<String>,
    /// One bar per group for each series; `None` draws no bar.
    pub series: Vec<Series>,
}

pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// Bar colours, one per series (colour-blind-safe, after Okabe and Ito).
const PALETTE: [RGBColor; 5] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
];

/// Panels side by side while they have at most this many groups; above
/// it they are stacked, each as wide as its groups need.
const SIDE_BY_SIDE_GROUPS: usize = 8;
const PANEL_WIDTH: u32 = 520;
const HEIGHT: u32 = 440;
const GROUP_WIDTH: u32 = 95;
const STACKED_PANEL_HEIGHT: u32 = 300;

/// The x axis: group `g` is centred on `g`, labelled with its name, and
/// only the group centres are key points (no light grid lines).
struct GroupAxis {
    names: Vec<String>,
}

impl GroupAxis {
    fn count(&self) -> usize {
        self.names.len().max(1)
    }
}

impl Ranged for GroupAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let range = self.range();
        let frac = (value - range.start) / (range.end - range.start);
        limit.0 + (frac * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            (0..self.count()).map(|g| g as f64).collect()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        -0.5..self.count() as f64 - 0.5
    }
}

impl ValueFormatter<f64> for GroupAxis {
    fn format_ext(&self, value: &f64) -> String {
        let i = value.round();
        if (value - i).abs() < 1e-6 && i >= 0.0 {
            self.names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    }
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the chart: {e:?}")
}

impl Chart {
    /// The largest value drawn, for a y axis shared by all panels.
    fn y_max(&self) -> f64 {
        let top = self
            .panels
            .iter()
            .flat_map(|p| &p.series)
            .flat_map(|s| &s.values)
            .filter_map(|v| *v)
            .filter(|v| v.is_finite())
            .fold(self.reference.unwrap_or(0.0), f64::max);
        if top > 0.0 { top * 1.08 } else { 1.0 }
    }

    /// Write the chart to `path` as SVG.
    pub fn draw(&self, path: &Path) -> Result<()> {
        let n = self.panels.len().max(1);
        let groups = self
            .panels
            .iter()
            .map(|p| p.groups.len())
            .max()
            .unwrap_or(1);
        let stacked = groups > SIDE_BY_SIDE_GROUPS;
        let size = if stacked {
            (
                (100 + GROUP_WIDTH * groups as u32).max(900),
                70 + STACKED_PANEL_HEIGHT * n as u32,
            )
        } else {
            (PANEL_WIDTH * n as u32 + 40, HEIGHT)
        };
        let root = SVGBackend::new(path, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(&self.title, ("sans-serif", 20)).map_err(err)?;
        let (legend, root) = root.split_vertically(26);
        self.draw_legend(&legend)?;
        let y_max = self.y_max();
        let areas = root.split_evenly(if stacked { (n, 1) } else { (1, n) });
        for (i, (area, panel)) in areas.iter().zip(&self.panels).enumerate() {
            self.draw_panel(area, panel, y_max, stacked || i == 0)?;
        }
        root.present().map_err(err)?;
        Ok(())
    }

    /// One legend for all panels, in a strip under the title: the series
    /// of the panel that has the most.
    fn draw_legend<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<()> {
        let names: Vec<&str> = self
            .panels
            .iter()
            .max_by_key(|p| p.series.len())
            .map(|p| p.series.iter().map(|s| s.name.as_str()).collect())
            .unwrap_or_default();
        let style = ("sans-serif", 13)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let widths: Vec<i32> = names.iter().map(|n| 30 + 7 * n.len() as i32).collect();
        let total: i32 = widths.iter().sum();
        let (w, _) = area.dim_in_pixel();
        let mut x = ((w as i32 - total) / 2).max(10);
        for (i, (name, width)) in names.iter().zip(&widths).enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            area.draw(&Rectangle::new([(x, 7), (x + 14, 19)], colour.filled()))
                .map_err(err)?;
            area.draw(&Text::new(name.to_string(), (x + 19, 13), style.clone()))
                .map_err(err)?;
            x += width;
        }
        Ok(())
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        panel: &Panel,
        y_max: f64,
        y_desc: bool,
    ) -> Result<()> {
        let groups = panel.groups.len().max(1);
        let x = GroupAxis {
            names: panel.groups.clone(),
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(if y_desc { 64 } else { 44 })
            .build_cartesian_2d(x, 0f64..y_max)
            .map_err(err)?;
        let y_fmt = |y: &f64| {
            if y_max >= 100.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.1}")
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .y_label_formatter(&y_fmt)
            .x_label_style(("sans-serif", 12))
            .y_label_style(("sans-serif", 12))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(WHITE);
        if y_desc {
            mesh.y_desc(self.y_label.as_str());
        }
        mesh.draw().map_err(err)?;

        let k = panel.series.len().max(1);
        let slot = 0.8 / k as f64;
        for (si, series) in panel.series.iter().enumerate() {
            let colour = PALETTE[si % PALETTE.len()];
            let x0 = |g: usize| g as f64 - 0.4 + si as f64 * slot;
            chart
                .draw_series(series.values.iter().enumerate().filter_map(|(g, v)| {
                    v.filter(|v| v.is_finite()).map(|v| {
                        Rectangle::new(
                            [(x0(g) + slot * 0.05, 0.0), (x0(g) + slot * 0.95, v)],
                            colour.filled(),
                        )
                    })
                }))
                .map_err(err)?;
            // The value above each bar, small.
            let style = ("sans-serif", 9)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            chart
                .draw_series(series.values.iter().enumerate().filter_map(|(g, v)| {
                    v.filter(|v| v.is_finite())
                        .map(|v| Text::new(short(v), (x0(g) + slot * 0.5, v), style.clone()))
                }))
                .map_err(err)?;
        }
        if let Some(r) = self.reference {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(-0.5, r), (groups as f64 - 0.5, r)],
                    BLACK.stroke_width(1),
                )))
                .map_err(err)?;
        }
        Ok(())
    }
}

/// A bar's value in at most 4 characters or so.
fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 1000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_written_as_svg() {
        let dir = std::env::temp_dir().join(format!("samsara-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.svg");
        let chart = Chart {
            title: "T".into(),
            y_label: "y".into(),
            reference: Some(1.0),
            panels: vec![Panel {
                title: "2 harts".into(),
                groups: vec!["a".into(), "geomean".into()],
                series: vec![
                    Series {
                        name: "chunk".into(),
                        values: vec![Some(1.5), Some(1.2)],
                    },
                    Series {
                        name: "serial".into(),
                        values: vec![None, Some(2600.0)],
                    },
                ],
            }],
        };
        chart.draw(&path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("geomean") && svg.contains("chunk") && svg.contains("2.6k"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn short_values() {
        assert_eq!(short(1.234), "1.23");
        assert_eq!(short(12.34), "12.3");
        assert_eq!(short(123.4), "123");
        assert_eq!(short(2600.0), "2.6k");
        assert_eq!(short(26000.0), "26k");
    }
}
