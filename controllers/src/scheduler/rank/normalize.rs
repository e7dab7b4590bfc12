//! Score normalization (Nomad's `ScoreNormalizationIterator`): the final score is the average
//! of the scores the scorers reported.

use crate::scheduler::metrics::ScoreCard;

/// Sets `card.normalized` to the mean of the scores that count. A reschedule penalty of 0 does
/// not count (Nomad only appends it when the node is penalized).
pub fn normalize(card: &mut ScoreCard) {
    let mut sum = 0.0;
    let mut n = 0u32;
    for (i, part) in card.parts.iter().enumerate() {
        let Some(score) = part else { continue };
        let penalty_slot = i == crate::scheduler::metrics::Scorer::ReschedulePenalty as usize;
        if penalty_slot && *score == 0.0 {
            continue;
        }
        sum += score;
        n += 1;
    }
    card.normalized = if n == 0 { 0.0 } else { sum / f64::from(n) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::metrics::Scorer;

    #[test]
    fn average_of_reported_scores() {
        let mut card = ScoreCard::default();
        card.set(Scorer::Binpack, 0.8);
        card.set(Scorer::ReschedulePenalty, 0.0);
        normalize(&mut card);
        assert_eq!(card.normalized, 0.8);
        card.set(Scorer::JobAntiAffinity, -0.4);
        card.set(Scorer::ReschedulePenalty, -1.0);
        normalize(&mut card);
        assert!((card.normalized - (0.8 - 0.4 - 1.0) / 3.0).abs() < 1e-12);
    }
}
