//! Points packed into one row: a minute of one series' raw points, or an hour
//! of its one-minute aggregates; a few bytes a value instead of a row (a
//! 16-byte key and redb's per-row overhead) each.
//!
//! **Raw points** ([`encode`]).
//! The layout, after a count (LEB128): the first point's offset in the
//! minute (LEB128 ms) and its value (8 bytes, little-endian); then for each
//! next point, the change in the gap between timestamps (zigzag LEB128: 0 for
//! a steady tick, one byte for jitter under 64 ms), and the value XORed with
//! the previous one (as in Gorilla, but whole bytes): a byte `0` for an
//! unchanged value, else a byte `1 + 8 × leading zero bytes + trailing zero
//! bytes` followed by the bytes between. Timestamps ascend, one point per
//! millisecond at most.

//!
//! **An hour of minute aggregates** ([`encode_minutes`]): a count, then for
//! each minute the minutes since the previous (since the hour's start for the
//! first; LEB128), its sample count (LEB128), and its min, max, sum and last,
//! each XORed with the previous minute's as above (the first with 0).

/// A minute's lowest, highest, sum and last sample, and how many there were.
pub type Minute = (f64, f64, f64, f64, u64);

const MINUTE_MS: u64 = 60_000;

/// Why a chunk could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a packed chunk of points ends early or holds a bad header byte")]
pub struct BadChunk;

/// Packs `points` (timestamps ascending, each above the previous) of the
/// minute that starts at `minute_ms`.
pub fn encode(minute_ms: u64, points: &[(u64, f64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + points.len() * 4);
    put_varint(&mut out, points.len() as u64);
    let Some(&(first_ms, first)) = points.first() else {
        return out;
    };
    put_varint(&mut out, first_ms - minute_ms);
    out.extend_from_slice(&first.to_bits().to_le_bytes());
    let (mut last_ms, mut last_gap, mut last_bits) = (first_ms, 0i64, first.to_bits());
    for &(at_ms, value) in &points[1..] {
        let gap = (at_ms - last_ms) as i64;
        put_varint(&mut out, zigzag(gap - last_gap));
        let bits = value.to_bits();
        let xor = bits ^ last_bits;
        if xor == 0 {
            out.push(0);
        } else {
            put_xor(&mut out, xor);
        }
        (last_ms, last_gap, last_bits) = (at_ms, gap, bits);
    }
    out
}

/// `xor` (not 0) as a header byte and its bytes between the zero bytes.
fn put_xor(out: &mut Vec<u8>, xor: u64) {
    let (lead, trail) = (xor.leading_zeros() / 8, xor.trailing_zeros() / 8);
    out.push((1 + 8 * lead + trail) as u8);
    out.extend_from_slice(&xor.to_be_bytes()[lead as usize..(8 - trail) as usize]);
}

/// The next value: `last` XORed with what the input holds.
fn take_xor(input: &mut &[u8], last: u64) -> Result<u64, BadChunk> {
    let header = *take(input, 1)?.first().expect("1 byte");
    if header == 0 {
        return Ok(last);
    }
    let (lead, trail) = (((header - 1) / 8) as usize, ((header - 1) % 8) as usize);
    if lead + trail >= 8 {
        return Err(BadChunk);
    }
    let mut word = [0u8; 8];
    word[lead..8 - trail].copy_from_slice(take(input, 8 - lead - trail)?);
    Ok(last ^ u64::from_be_bytes(word))
}

/// Packs the minute aggregates (minutes ascending, each starting a minute)
/// of the hour that starts at `hour_ms`.
pub fn encode_minutes(hour_ms: u64, minutes: &[(u64, Minute)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + minutes.len() * 16);
    put_varint(&mut out, minutes.len() as u64);
    let (mut last_minute, mut last) = (hour_ms, [0u64; 4]);
    for &(minute_ms, (min, max, sum, lastv, count)) in minutes {
        put_varint(&mut out, (minute_ms - last_minute) / MINUTE_MS);
        put_varint(&mut out, count);
        let bits = [min.to_bits(), max.to_bits(), sum.to_bits(), lastv.to_bits()];
        for (column, value) in bits.iter().enumerate() {
            match value ^ last[column] {
                0 => out.push(0),
                xor => put_xor(&mut out, xor),
            }
        }
        (last_minute, last) = (minute_ms, bits);
    }
    out
}

/// The minute aggregates of an hour packed by [`encode_minutes`].
pub fn decode_minutes(hour_ms: u64, bytes: &[u8]) -> Result<Vec<(u64, Minute)>, BadChunk> {
    let mut input = bytes;
    let count = take_varint(&mut input)?;
    let mut out = Vec::with_capacity((count as usize).min(input.len() / 6 + 1));
    let (mut minute_ms, mut last) = (hour_ms, [0u64; 4]);
    for _ in 0..count {
        let step = take_varint(&mut input)?.checked_mul(MINUTE_MS).ok_or(BadChunk)?;
        minute_ms = minute_ms.checked_add(step).ok_or(BadChunk)?;
        let samples = take_varint(&mut input)?;
        for value in &mut last {
            *value = take_xor(&mut input, *value)?;
        }
        let [min, max, sum, lastv] = last.map(f64::from_bits);
        out.push((minute_ms, (min, max, sum, lastv, samples)));
    }
    Ok(out)
}

/// The points of a chunk of the minute that starts at `minute_ms`.
pub fn decode(minute_ms: u64, bytes: &[u8]) -> Result<Vec<(u64, f64)>, BadChunk> {
    let mut input = bytes;
    let count = take_varint(&mut input)?;
    // No point takes less than two bytes; a count beyond that is a bad chunk, not an allocation.
    let mut out = Vec::with_capacity((count as usize).min(input.len() / 2 + 1));
    if count == 0 {
        return Ok(out);
    }
    let first_ms = minute_ms.checked_add(take_varint(&mut input)?).ok_or(BadChunk)?;
    let mut last_bits = u64::from_le_bytes(take(&mut input, 8)?.try_into().expect("8 bytes"));
    out.push((first_ms, f64::from_bits(last_bits)));
    let (mut last_ms, mut last_gap) = (first_ms, 0i64);
    for _ in 1..count {
        let gap = last_gap.checked_add(unzigzag(take_varint(&mut input)?)).ok_or(BadChunk)?;
        let at_ms = last_ms.checked_add_signed(gap).ok_or(BadChunk)?;
        last_bits = take_xor(&mut input, last_bits)?;
        out.push((at_ms, f64::from_bits(last_bits)));
        (last_ms, last_gap) = (at_ms, gap);
    }
    Ok(out)
}

/// How many points a chunk holds, without reading them.
pub fn count(bytes: &[u8]) -> Result<u64, BadChunk> {
    take_varint(&mut &bytes[..])
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

// LEB128 by hand: two short functions over a byte slice, where a crate's
// reader and writer traits would be more code at the call sites.
fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn take_varint(input: &mut &[u8]) -> Result<u64, BadChunk> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *take(input, 1)?.first().expect("1 byte");
        n |= u64::from(byte & 0x7f).checked_shl(shift).ok_or(BadChunk)?;
        if byte & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err(BadChunk)
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], BadChunk> {
    if input.len() < n {
        return Err(BadChunk);
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MINUTE: u64 = 1_700_000_040_000;

    fn same(a: &[(u64, f64)], b: &[(u64, f64)]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
    }

    #[test]
    fn a_steady_tick_takes_a_few_bytes_a_point() {
        let cpu: Vec<(u64, f64)> = (0..60).map(|i| (MINUTE + i * 1_000 + i % 3, 10.0 + (i % 7) as f64 * 0.5)).collect();
        let packed = encode(MINUTE, &cpu);
        assert!(same(&decode(MINUTE, &packed).unwrap(), &cpu));
        assert!(packed.len() < 60 * 5, "{} bytes for 60 points", packed.len());
        let flat: Vec<(u64, f64)> = (0..60).map(|i| (MINUTE + i * 1_000, 42.0)).collect();
        // The first gap takes two bytes; then an unchanged value and gap take two in all.
        assert_eq!(encode(MINUTE, &flat).len(), 1 + 1 + 8 + 3 + 58 * 2);
        assert_eq!(count(&encode(MINUTE, &flat)).unwrap(), 60);
        assert!(decode(MINUTE, &encode(MINUTE, &[])).unwrap().is_empty());
    }

    #[test]
    fn an_hour_of_a_steady_gauge_takes_a_few_bytes_a_minute() {
        let hour = MINUTE - MINUTE % 3_600_000;
        let minutes: Vec<(u64, Minute)> =
            (0..60).map(|m| (hour + m * 60_000, (40.0, 42.5, 2_475.0, 41.0 + (m % 2) as f64, 60))).collect();
        let packed = encode_minutes(hour, &minutes);
        assert_eq!(decode_minutes(hour, &packed).unwrap(), minutes);
        assert!(packed.len() < 60 * 10, "{} bytes for 60 minutes", packed.len());
    }

    #[test]
    fn odd_values_come_back_bit_for_bit() {
        let odd = [f64::NAN, -0.0, 0.0, f64::INFINITY, f64::MIN_POSITIVE, f64::MAX, -1.5, 5e-324];
        let points: Vec<(u64, f64)> = odd.iter().enumerate().map(|(i, v)| (MINUTE + i as u64 * 7_000, *v)).collect();
        assert!(same(&decode(MINUTE, &encode(MINUTE, &points)).unwrap(), &points));
    }

    proptest! {
        #[test]
        fn whatever_is_packed_reads_back(
            gaps in proptest::collection::vec(1u64..60_000, 0..300),
            values in proptest::collection::vec(any::<f64>(), 300),
            offset in 0u64..1_000,
        ) {
            let mut at = MINUTE + offset;
            let points: Vec<(u64, f64)> = gaps.iter().zip(&values).map(|(gap, v)| { at += gap; (at, *v) }).collect();
            let packed = encode(MINUTE, &points);
            prop_assert!(same(&decode(MINUTE, &packed).unwrap(), &points));
            prop_assert_eq!(count(&packed).unwrap(), points.len() as u64);
        }

        #[test]
        fn damaged_bytes_are_an_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(MINUTE, &bytes);
            let _ = decode_minutes(MINUTE, &bytes);
            let _ = count(&bytes);
        }

        #[test]
        fn an_hour_of_minutes_reads_back(
            minutes in proptest::collection::btree_map(0u64..60, (any::<f64>(), any::<f64>(), any::<f64>(), any::<f64>(), any::<u64>()), 0..60),
        ) {
            let hour = MINUTE - MINUTE % 3_600_000;
            let minutes: Vec<(u64, Minute)> = minutes.into_iter().map(|(m, agg)| (hour + m * 60_000, agg)).collect();
            let packed = encode_minutes(hour, &minutes);
            let back = decode_minutes(hour, &packed).unwrap();
            prop_assert_eq!(back.len(), minutes.len());
            for ((a, x), (b, y)) in back.iter().zip(&minutes) {
                prop_assert_eq!(a, b);
                prop_assert_eq!([x.0.to_bits(), x.1.to_bits(), x.2.to_bits(), x.3.to_bits(), x.4], [y.0.to_bits(), y.1.to_bits(), y.2.to_bits(), y.3.to_bits(), y.4]);
            }
            prop_assert_eq!(count(&packed).unwrap(), minutes.len() as u64);
        }

        #[test]
        fn a_cut_chunk_is_an_error(n in 2usize..40, cut in any::<prop::sample::Index>()) {
            let points: Vec<(u64, f64)> = (0..n as u64).map(|i| (MINUTE + i * 1_000, i as f64 * 1.1)).collect();
            let packed = encode(MINUTE, &points);
            let cut = cut.index(packed.len());
            prop_assert_eq!(decode(MINUTE, &packed[..cut]), Err(BadChunk));
        }
    }
}
