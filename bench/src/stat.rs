//! Median and spread of a figure over repeated runs.

#[derive(serde::Serialize, Debug, Clone, Copy)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    /// Median, min and max of `v` (which must not be empty).
    pub fn of(v: impl Iterator<Item = f64>) -> Stat {
        let mut v: Vec<f64> = v.collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stat {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    /// `median (min–max)` scaled by `scale`, or the median alone if all
    /// runs agree.
    pub fn show(&self, scale: f64, prec: usize) -> String {
        if self.min == self.max {
            format!("{:.prec$}", self.median * scale)
        } else {
            format!(
                "{:.prec$} ({:.prec$}–{:.prec$})",
                self.median * scale,
                self.min * scale,
                self.max * scale
            )
        }
    }
}
