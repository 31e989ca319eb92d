//! ECN across the tunnel, per RFC 6040 ("Tunnelling of Explicit Congestion
//! Notification").
//!
//! Encapsulation uses the normal mode of section 4.1: the outer header gets
//! a copy of the inner ECN field, CE included. Decapsulation combines the
//! inner and outer fields with the table of section 4.2 (figure 4), and
//! drops a frame whose outer header says CE over a not-ECT inner packet,
//! since that transport would never see the congestion signal.
//!
//! ```
//! use vxlan_core::ecn::{decapsulate, encapsulate, Ecn};
//!
//! assert_eq!(encapsulate(Ecn::Ce), Ecn::Ce);
//! assert_eq!(decapsulate(Ecn::Ect0, Ecn::Ce), Some(Ecn::Ce));
//! assert_eq!(decapsulate(Ecn::NotEct, Ecn::Ce), None); // drop
//! ```

/// The two ECN bits of an IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ecn {
    /// 00: not ECN-capable transport.
    NotEct,
    /// 01: ECN-capable transport, codepoint 1.
    Ect1,
    /// 10: ECN-capable transport, codepoint 0.
    Ect0,
    /// 11: congestion experienced.
    Ce,
}

impl Ecn {
    /// Every codepoint, in bit order.
    pub const ALL: [Ecn; 4] = [Ecn::NotEct, Ecn::Ect1, Ecn::Ect0, Ecn::Ce];

    /// From the low two bits of a TOS / traffic-class byte.
    #[inline]
    pub const fn from_bits(tos: u8) -> Ecn {
        match tos & 0x03 {
            0 => Ecn::NotEct,
            1 => Ecn::Ect1,
            2 => Ecn::Ect0,
            _ => Ecn::Ce,
        }
    }

    /// The two bits.
    #[inline]
    pub const fn bits(self) -> u8 {
        match self {
            Ecn::NotEct => 0,
            Ecn::Ect1 => 1,
            Ecn::Ect0 => 2,
            Ecn::Ce => 3,
        }
    }
}

/// The outer ECN field for an inner one (RFC 6040 normal mode: a copy).
#[inline]
pub const fn encapsulate(inner: Ecn) -> Ecn {
    inner
}

/// The ECN field to forward after decapsulation, or `None` when the frame
/// must be dropped (outer CE over a not-ECT inner packet).
///
/// | inner \ outer | Not-ECT | ECT(0) | ECT(1) | CE |
/// |---|---|---|---|---|
/// | Not-ECT | Not-ECT | Not-ECT | Not-ECT | drop |
/// | ECT(0) | ECT(0) | ECT(0) | ECT(1) | CE |
/// | ECT(1) | ECT(1) | ECT(1) | ECT(1) | CE |
/// | CE | CE | CE | CE | CE |
#[inline]
pub const fn decapsulate(inner: Ecn, outer: Ecn) -> Option<Ecn> {
    Some(match (inner, outer) {
        (Ecn::NotEct, Ecn::Ce) => return None,
        (Ecn::NotEct, _) => Ecn::NotEct,
        (Ecn::Ce, _) | (_, Ecn::Ce) => Ecn::Ce,
        (Ecn::Ect0, Ecn::Ect1) => Ecn::Ect1,
        (inner, _) => inner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ecn::*;

    /// RFC 6040 figure 4, all 16 cells, rows = inner, columns = outer
    /// (Not-ECT, ECT(0), ECT(1), CE).
    #[test]
    fn decap_table_in_full() {
        let table: [(Ecn, [Option<Ecn>; 4]); 4] = [
            (NotEct, [Some(NotEct), Some(NotEct), Some(NotEct), None]),
            (Ect0, [Some(Ect0), Some(Ect0), Some(Ect1), Some(Ce)]),
            (Ect1, [Some(Ect1), Some(Ect1), Some(Ect1), Some(Ce)]),
            (Ce, [Some(Ce), Some(Ce), Some(Ce), Some(Ce)]),
        ];
        for (inner, row) in table {
            for (outer, want) in [NotEct, Ect0, Ect1, Ce].into_iter().zip(row) {
                assert_eq!(
                    decapsulate(inner, outer),
                    want,
                    "inner {inner:?} outer {outer:?}"
                );
            }
        }
    }

    /// RFC 6040 section 4.1 normal mode, all 4 inner codepoints; and the
    /// round trip through an unmarking-free tunnel leaves the field as it
    /// was.
    #[test]
    fn encap_table_and_round_trip() {
        for inner in Ecn::ALL {
            let outer = encapsulate(inner);
            assert_eq!(outer, inner);
            assert_eq!(decapsulate(inner, outer), Some(inner));
        }
        for bits in 0..4u8 {
            assert_eq!(Ecn::from_bits(0xfc | bits).bits(), bits);
        }
    }
}
