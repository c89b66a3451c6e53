//! Running statistics for flows.

/// The spread of a series of samples: the sum of squared differences from their mean
/// ("M2" of Welford's online algorithm, numerically stable; one update is a few
/// floating-point operations and no allocation). Neither the count nor the mean is stored:
/// a flow already counts its samples exactly (packets, bytes, its age in ns), so the caller
/// passes the mean before and after each sample, taken from those counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    /// Sum of squared differences from the mean.
    pub m2: f64,
}

impl Spread {
    /// Add sample `x`, which moved the series' mean from `mean_before` (0 for the first
    /// sample) to `mean_after`.
    #[inline]
    pub fn push(&mut self, x: f64, mean_before: f64, mean_after: f64) {
        self.m2 += (x - mean_before) * (x - mean_after);
    }

    /// Population standard deviation over `n` samples (0 for fewer than two).
    pub fn std_dev(&self, n: u64) -> f64 {
        if n < 2 {
            0.0
        } else {
            (self.m2.max(0.0) / n as f64).sqrt()
        }
    }
}

/// `sum / n`, the mean of `n` samples adding up to `sum` (0 without samples).
#[inline]
pub fn mean(sum: f64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_std() {
        // The textbook series: mean 5, population standard deviation 2.
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let (mut s, mut sum) = (Spread::default(), 0.0);
        for (i, x) in xs.iter().enumerate() {
            let before = mean(sum, i as u64);
            sum += x;
            s.push(*x, before, mean(sum, i as u64 + 1));
        }
        assert_eq!(mean(sum, xs.len() as u64), 5.0);
        assert_eq!(s.std_dev(xs.len() as u64), 2.0);
    }
}
