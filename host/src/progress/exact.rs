//! Exact sums of `f64`s and of products of two `f64`s.
//!
//! A parent keeps running sums over its children (see [`super::aggregate`])
//! and changes them child by child: subtract what the child counted for,
//! add what it counts for now. In floating point that drifts, and with
//! children of very different sizes (a total of 1e300 beside one of 1) one
//! subtraction can wipe out the rest of the sum. Every finite `f64` is an
//! integer times a power of two, and so is the product of two, so the sums
//! are kept as such, exactly: adding and removing in any order gives the same
//! number, bit for bit, as summing the children afresh.

use num_bigint::BigInt;
use num_traits::{Signed, ToPrimitive, Zero};
use serde::{Deserialize, Serialize};

/// `m × 2^e`, with `m` odd (or zero, with `e` 0), so equal numbers are equal values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exact {
    m: BigInt,
    e: i32,
}

impl Exact {
    /// `x`, exactly; not-finite values count as 0 (callers filter them first).
    pub fn of(x: f64) -> Exact {
        let (m, e) = parts(x);
        Exact::new(BigInt::from(m), e)
    }

    /// `a × b`, exactly.
    pub fn product(a: f64, b: f64) -> Exact {
        let ((ma, ea), (mb, eb)) = (parts(a), parts(b));
        Exact::new(BigInt::from(ma) * BigInt::from(mb), ea + eb)
    }

    fn new(m: BigInt, e: i32) -> Exact {
        let mut x = Exact { m, e };
        x.normalise();
        x
    }

    pub fn is_zero(&self) -> bool {
        self.m.is_zero()
    }

    pub fn is_positive(&self) -> bool {
        self.m.is_positive()
    }

    /// Adds `sign × other` (`sign` is 1 or -1).
    pub fn add(&mut self, other: &Exact, sign: i8) {
        if other.is_zero() {
            return;
        }
        let e = self.e.min(other.e);
        let mut ours = std::mem::take(&mut self.m) << (self.e - e) as u32;
        let theirs = other.m.clone() << (other.e - e) as u32;
        if sign < 0 {
            ours -= theirs;
        } else {
            ours += theirs;
        }
        *self = Exact::new(ours, e);
    }

    /// `self / other` as the nearest `f64` (within an ulp or two); 0 when
    /// `other` is not positive.
    pub fn ratio(&self, other: &Exact) -> f64 {
        if !other.is_positive() {
            return 0.0;
        }
        // Scale the numerator so that the integer quotient keeps 64 bits or more.
        let shift = other.m.bits() as i64 - self.m.bits() as i64 + 64;
        let (num, den) = if shift >= 0 {
            (self.m.clone() << shift as u32, other.m.clone())
        } else {
            (self.m.clone(), other.m.clone() << (-shift) as u32)
        };
        let q = (num / den).to_f64().unwrap_or(0.0);
        scale(q, self.e as i64 - other.e as i64 - shift)
    }
}

/// `x` as `(m, e)` with `x = m × 2^e`.
fn parts(x: f64) -> (i64, i32) {
    if !x.is_finite() || x == 0.0 {
        return (0, 0);
    }
    let bits = x.to_bits();
    let sign = if bits >> 63 == 0 { 1 } else { -1 };
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = (bits & ((1 << 52) - 1)) as i64;
    if exponent == 0 {
        (sign * fraction, -1074) // subnormal
    } else {
        (sign * (fraction | (1 << 52)), exponent - 1075)
    }
}

/// `x × 2^exp`, in steps so that no factor overflows.
fn scale(mut x: f64, mut exp: i64) -> f64 {
    let step = 2f64.powi(1000);
    while exp > 1000 && x.is_finite() {
        x *= step;
        exp -= 1000;
    }
    while exp < -1000 && x != 0.0 {
        x /= step;
        exp += 1000;
    }
    x * 2f64.powi(exp as i32)
}

impl Exact {
    fn normalise(&mut self) {
        match self.m.trailing_zeros() {
            None => self.e = 0,
            Some(zeros) if zeros > 0 => {
                self.m >>= zeros;
                self.e += zeros as i32;
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn any_finite() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(5e-324),
            0.0..1.0f64,
            0.0..1e6f64,
            1e300..f64::MAX,
            -1e6..0.0f64,
        ]
    }

    #[test]
    fn values_and_ratios_come_back() {
        for x in [1.0, 0.1, 3.5, 1e300, f64::MAX, 5e-324, f64::MIN_POSITIVE, 0.362935536260554] {
            assert_eq!(Exact::of(x).ratio(&Exact::of(1.0)), x, "{x}");
            assert_eq!(Exact::of(x).ratio(&Exact::of(x)), 1.0, "{x}");
        }
        assert_eq!(Exact::product(0.5, 1e300).ratio(&Exact::of(1e300)), 0.5);
        assert_eq!(Exact::of(1.0).ratio(&Exact::of(3.0)), 1.0 / 3.0);
        assert_eq!(Exact::of(1.0).ratio(&Exact::default()), 0.0, "nothing to divide by");
    }

    #[test]
    fn nothing_is_lost_beside_a_huge_value() {
        let mut sum = Exact::of(1e300);
        sum.add(&Exact::of(1.0), 1);
        sum.add(&Exact::of(1e300), -1);
        sum.add(&Exact::of(1.0), 1);
        assert_eq!(sum, Exact::of(2.0), "floating point would say 1");
        let mut twice_max = Exact::of(f64::MAX);
        twice_max.add(&Exact::of(f64::MAX), 1);
        assert_eq!(twice_max.ratio(&Exact::of(f64::MAX)), 2.0, "no overflow");
    }

    proptest! {
        #[test]
        fn adding_then_removing_in_any_order_is_exact(
            values in proptest::collection::vec((any_finite(), any_finite()), 0..20),
            gone in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let mut all = Exact::default();
            for (a, b) in &values {
                all.add(&Exact::product(*a, *b), 1);
            }
            let mut kept: Vec<(f64, f64)> = values.clone();
            for index in gone {
                if kept.is_empty() {
                    break;
                }
                let (a, b) = kept.remove(index.index(kept.len()));
                all.add(&Exact::product(a, b), -1);
            }
            let mut fresh = Exact::default();
            for (a, b) in kept.iter().rev() {
                fresh.add(&Exact::product(*a, *b), 1);
            }
            prop_assert_eq!(all, fresh);
        }
    }
}
