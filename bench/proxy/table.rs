//! The printed table. Each target's figure is the median of its rounds (a dip or a spike
//! from the machine's neighbours moves a median little and no other rule favours one
//! target). Coracle is compared with haproxy round by round: the two run back to back in
//! each round, so the drift of a shared VM hits both alike, and the median of the paired
//! differences, with their lowest and highest, says how far the comparison holds: better
//! or worse when every round agrees and the median is past `LEVEL`, level otherwise.

/// One figure: its rounds for each target (`direct` empty where the backend alone has
/// none, a single value for a figure read once).
pub struct Row {
    pub name: &'static str,
    pub direct: Vec<f64>,
    pub ours: Vec<f64>,
    pub theirs: Vec<f64>,
    /// Which way is better; none for a figure printed to explain the others (wrk's and
    /// the backend's CPU), which gets no verdict.
    pub higher_is_better: Option<bool>,
}

/// A median paired difference this small (in percent) is level: wrk's rates of two runs
/// of the same target differ by about this much on a quiet machine.
pub const LEVEL: f64 = 1.0;

/// The verdict on `ours` against `theirs`, both being the rounds of one figure.
pub fn verdict(ours: &[f64], theirs: &[f64], higher_is_better: bool) -> Option<(&'static str, f64, f64, f64)> {
    let (mid, lo, hi) = paired(ours, theirs)?;
    let sign = if higher_is_better { 1.0 } else { -1.0 };
    let (mid_good, worst, best) = (mid * sign, (lo * sign).min(hi * sign), (lo * sign).max(hi * sign));
    let word = if mid_good >= LEVEL && worst > 0.0 {
        "better"
    } else if mid_good <= -LEVEL && best < 0.0 {
        "worse"
    } else {
        "level"
    };
    Some((word, mid, lo, hi))
}

/// The median of `values`, NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Percent differences of `ours` from `theirs`, round by round: (median, lowest, highest).
pub fn paired(ours: &[f64], theirs: &[f64]) -> Option<(f64, f64, f64)> {
    let diffs: Vec<f64> =
        ours.iter().zip(theirs).filter(|(_, t)| **t != 0.0).map(|(o, t)| (o - t) / t * 100.0).collect();
    let (lo, hi) = diffs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), d| (lo.min(*d), hi.max(*d)));
    (!diffs.is_empty()).then(|| (median(&diffs), lo, hi))
}

pub fn print(rows: &[Row]) {
    println!(
        "{:<30} {:>12} {:>12} {:>12}  coracle vs haproxy: median of paired rounds [lowest, highest]",
        "figure", "direct", "coracle", "haproxy"
    );
    for row in rows {
        let cell = |v: f64| if v.is_nan() { "-".to_string() } else { format!("{v:.2}") };
        let comparison = match row.higher_is_better {
            Some(higher) => verdict(&row.ours, &row.theirs, higher),
            None => paired(&row.ours, &row.theirs).map(|(mid, lo, hi)| ("for reading:", mid, lo, hi)),
        };
        let comparison = match comparison {
            Some((word, mid, lo, hi)) => {
                let range = if row.ours.len() > 1 { format!(" [{lo:+.1}%, {hi:+.1}%]") } else { String::new() };
                format!("{word} {mid:+.1}%{range}")
            }
            None => "-".to_string(),
        };
        println!(
            "{:<30} {:>12} {:>12} {:>12}  {comparison}",
            row.name,
            cell(median(&row.direct)),
            cell(median(&row.ours)),
            cell(median(&row.theirs))
        );
    }
    println!(
        "(better or worse: every round agrees and the median is past {LEVEL}%; level otherwise. \
         \"for reading\" rows explain the others.)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_takes_the_middle_or_the_mean_of_the_two_middles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[5.0, f64::NAN]), 5.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn rounds_are_compared_in_pairs_not_as_medians_of_each_side() {
        // A drifting machine: each round is slower than the last, and ours is 10% ahead in
        // every one; the paired view says so whatever the drift.
        let theirs = [100.0, 80.0, 60.0];
        let ours = [110.0, 88.0, 66.0];
        let (mid, lo, hi) = paired(&ours, &theirs).unwrap();
        assert!((mid - 10.0).abs() < 1e-9 && (lo - 10.0).abs() < 1e-9 && (hi - 10.0).abs() < 1e-9);
        let (mid, lo, hi) = paired(&[90.0, 120.0, 100.0], &[100.0, 100.0, 100.0]).unwrap();
        assert_eq!((mid, lo, hi), (0.0, -10.0, 20.0));
        assert!(paired(&[1.0], &[0.0]).is_none());
    }

    #[test]
    fn a_verdict_needs_every_round_to_agree_and_a_median_past_level() {
        let theirs = [100.0, 100.0, 100.0];
        assert_eq!(verdict(&[105.0, 103.0, 104.0], &theirs, true).unwrap().0, "better");
        assert_eq!(verdict(&[105.0, 103.0, 104.0], &theirs, false).unwrap().0, "worse");
        // Ahead on the median, but one round behind: not shown to be better.
        assert_eq!(verdict(&[105.0, 99.0, 104.0], &theirs, true).unwrap().0, "level");
        // Behind in every round, by less than the machine's resolution.
        assert_eq!(verdict(&[99.5, 99.4, 99.6], &theirs, true).unwrap().0, "level");
        assert_eq!(verdict(&[90.0, 95.0, 92.0], &theirs, false).unwrap().0, "better");
        assert_eq!(verdict(&[110.0], &[100.0], true).unwrap().0, "better");
    }
}
