//! Running statistics for flows.

/// Running mean and variance by Welford's online algorithm (numerically stable; one
/// update is a few floating-point operations and no allocation).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Welford {
    /// Number of samples.
    pub n: u64,
    /// Running mean.
    pub mean: f64,
    /// Sum of squared differences from the mean.
    pub m2: f64,
}

impl Welford {
    /// Add one sample.
    #[inline]
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Population standard deviation (0 for fewer than two samples).
    pub fn std_dev(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / self.n as f64).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_std() {
        let mut w = Welford::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            w.push(x);
        }
        assert_eq!(w.mean, 5.0);
        assert_eq!(w.std_dev(), 2.0);
    }
}
