//! The total order over [`Value`]s that filters, indexes and ordering share.
//!
//! Kinds rank `Null < Bool < number < string < bytes < ref < list < map`.
//! Within a kind:
//! - numbers: `Int` and `Float` compare numerically and exactly (`Int(3) ==
//!   Float(3.0)`, `i64::MAX < 2^63 as f64`); `-0.0 == 0.0`; every NaN equals
//!   every other NaN and is greater than every other number (`+inf` included);
//! - `String` and `Text` are one kind, compared by content (byte-wise UTF-8,
//!   i.e. by code point), so `String("a") == Text("a")`;
//! - bytes lexicographically; refs by `(space, object)` with a local ref
//!   (`space: None`) first; lists lexicographically element by element; maps
//!   as sorted `(key, value)` sequences.

use std::cmp::Ordering;

use crate::data::Value;

/// Rank of a value's kind in the total order.
pub(crate) fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Float(_) => 2,
        Value::String(_) | Value::Text(_) => 3,
        Value::Bytes(_) => 4,
        Value::Ref(_) => 5,
        Value::List(_) => 6,
        Value::Map(_) => 7,
    }
}

fn cmp_f64(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        // Neither is NaN: partial_cmp is total here and -0.0 == 0.0.
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Exact comparison of an integer with a float.
fn cmp_i64_f64(i: i64, f: f64) -> Ordering {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() || f >= TWO_63 {
        return Ordering::Less;
    }
    if f < -TWO_63 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    // In range [-2^63, 2^63): the truncation is exactly representable.
    match i.cmp(&(t as i64)) {
        Ordering::Equal => cmp_f64(t, f),
        o => o,
    }
}

/// The total order described in the module docs.
pub(crate) fn total_cmp(a: &Value, b: &Value) -> Ordering {
    use Value::*;
    let by_rank = rank(a).cmp(&rank(b));
    if by_rank != Ordering::Equal {
        return by_rank;
    }
    match (a, b) {
        (Bool(x), Bool(y)) => x.cmp(y),
        (Int(x), Int(y)) => x.cmp(y),
        (Float(x), Float(y)) => cmp_f64(*x, *y),
        (Int(x), Float(y)) => cmp_i64_f64(*x, *y),
        (Float(x), Int(y)) => cmp_i64_f64(*y, *x).reverse(),
        (String(x) | Text(x), String(y) | Text(y)) => x.cmp(y),
        (Bytes(x), Bytes(y)) => x.cmp(y),
        (Ref(x), Ref(y)) => x.cmp(y),
        (List(x), List(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = total_cmp(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Map(x), Map(y)) => {
            for ((kp, vp), (kq, vq)) in x.iter().zip(y) {
                let o = kp.cmp(kq).then_with(|| total_cmp(vp, vq));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        // Same rank: Null/Null, or unreachable combinations.
        _ => Ordering::Equal,
    }
}

/// Equality under the total order (`Int(3) == Float(3.0)`, NaN == NaN).
pub(crate) fn total_eq(a: &Value, b: &Value) -> bool {
    total_cmp(a, b) == Ordering::Equal
}

/// Missing (`None`) sorts before every value.
pub(crate) fn cmp_opt(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => total_cmp(x, y),
    }
}

/// A value as a key of an ordered index, ordered by [`total_cmp`].
#[derive(Clone, Debug)]
pub(crate) struct Key(pub Value);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        total_eq(&self.0, &other.0)
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        total_cmp(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn kinds_rank_in_documented_order() {
        let ordered = [
            Value::Null,
            Value::Bool(false),
            Value::Bool(true),
            Value::Float(f64::NEG_INFINITY),
            Value::Int(i64::MIN),
            Value::Int(-1),
            Value::Float(-0.5),
            Value::Int(0),
            Value::Float(0.5),
            Value::Int(i64::MAX),
            Value::Float(9_223_372_036_854_775_808.0),
            Value::Float(f64::INFINITY),
            Value::Float(f64::NAN),
            Value::String(String::new()),
            Value::Text("a".into()),
            Value::String("b".into()),
            Value::Bytes(vec![]),
            Value::Bytes(vec![0]),
            Value::Ref(crate::data::Reference::local(
                crate::data::ObjectId::from_bytes([0; 16]),
            )),
            Value::List(vec![]),
            Value::List(vec![Value::Int(1)]),
            Value::Map(BTreeMap::new()),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(total_cmp(a, b), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn numbers_compare_exactly_across_int_and_float() {
        assert!(total_eq(&Value::Int(3), &Value::Float(3.0)));
        assert!(total_eq(&Value::Float(-0.0), &Value::Int(0)));
        assert!(total_eq(&Value::Float(f64::NAN), &Value::Float(-f64::NAN)));
        // 2^53 + 1 is not representable as f64: the int is greater.
        let big = (1i64 << 53) + 1;
        assert_eq!(
            total_cmp(&Value::Int(big), &Value::Float((1i64 << 53) as f64)),
            Ordering::Greater
        );
        assert_eq!(
            total_cmp(&Value::Float(2.5), &Value::Int(2)),
            Ordering::Greater
        );
        assert_eq!(
            total_cmp(&Value::Float(-2.5), &Value::Int(-2)),
            Ordering::Less
        );
        assert!(total_eq(
            &Value::String("x".into()),
            &Value::Text("x".into())
        ));
    }
}
