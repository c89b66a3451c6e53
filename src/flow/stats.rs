//! Running statistics for flows.

/// Running mean and variance by Welford's online algorithm (numerically stable; one
/// update is a few floating-point operations and no allocation). The sample count is not
/// stored: the owner already counts its samples (a flow counts its packets), and passes it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Welford {
    /// Running mean.
    pub mean: f64,
    /// Sum of squared differences from the mean.
    pub m2: f64,
}

impl Welford {
    /// Add sample `x`, the `n`-th one (`n` ≥ 1 counts `x`).
    #[inline]
    pub fn push(&mut self, x: f64, n: u64) {
        let delta = x - self.mean;
        self.mean += delta / n.max(1) as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Population standard deviation over `n` samples (0 for fewer than two).
    pub fn std_dev(&self, n: u64) -> f64 {
        if n < 2 {
            0.0
        } else {
            (self.m2 / n as f64).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_std() {
        let mut w = Welford::default();
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        for (i, x) in xs.iter().enumerate() {
            w.push(*x, i as u64 + 1);
        }
        assert_eq!(w.mean, 5.0);
        assert_eq!(w.std_dev(xs.len() as u64), 2.0);
    }
}
