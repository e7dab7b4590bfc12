//! Properties of the duration parser: any input gives a value or an error, never a panic, and
//! what it accepts reads back as written.

use proptest::prelude::*;

use crate::duration::parse_duration;

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, ..ProptestConfig::default() })]

    #[test]
    fn durations_never_panic(text in "[0-9.hmsuµn]{0,30}|.{0,30}") {
        let _ = parse_duration(&text);
    }

    #[test]
    fn whole_units_read_back(n in 0u64..1_000_000, unit in prop::sample::select(vec![
        ("ns", 1u128), ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000),
        ("m", 60_000_000_000), ("h", 3_600_000_000_000),
    ])) {
        let parsed = parse_duration(&format!("{n}{}", unit.0)).expect("a whole number of a unit");
        prop_assert_eq!(parsed.as_nanos(), u128::from(n) * unit.1);
    }
}
