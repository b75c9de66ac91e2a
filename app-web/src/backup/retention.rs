//! Grandfather-father-son retention: keep the newest backup of each of the last N days, N
//! weeks and N months that have backups, and always the newest backup of all.
//!
//! Days, ISO weeks and months are counted in UTC from each backup's start time, and only
//! periods that have a backup count, so a gap (a server that was off for a week) does not use
//! up the policy.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use super::manifest::Manifest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
}

/// What a prune would do.
#[derive(Debug)]
pub struct Plan<'a> {
    pub keep: Vec<&'a Manifest>,
    pub remove: Vec<&'a Manifest>,
}

/// Splits `backups` (any order) into those the policy keeps and those it drops, each newest
/// first.
pub fn plan<'a>(backups: &'a [Manifest], policy: &Policy) -> Plan<'a> {
    let times: Vec<OffsetDateTime> = backups.iter().map(|backup| backup.created_at).collect();
    let kept = kept_indices(&times, policy);
    let mut order: Vec<usize> = (0..backups.len()).collect();
    order.sort_by(|&a, &b| Manifest::newest_first(&backups[a], &backups[b]));
    let (keep, remove) = order
        .into_iter()
        .partition::<Vec<usize>, _>(|index| kept.contains(index));
    Plan {
        keep: keep.into_iter().map(|index| &backups[index]).collect(),
        remove: remove.into_iter().map(|index| &backups[index]).collect(),
    }
}

/// The calendar period (year and day, ISO week or month) a time falls in.
type PeriodOf = fn(OffsetDateTime) -> (i32, u32);

/// The indices into `times` that the policy keeps.
pub fn kept_indices(times: &[OffsetDateTime], policy: &Policy) -> BTreeSet<usize> {
    let mut newest_first: Vec<usize> = (0..times.len()).collect();
    newest_first.sort_by(|&a, &b| times[b].cmp(&times[a]).then(b.cmp(&a)));
    let mut kept = BTreeSet::new();
    if let Some(&newest) = newest_first.first() {
        kept.insert(newest);
    }
    let periods: [(usize, PeriodOf); 3] = [
        (policy.daily, |time| {
            (time.year(), u32::from(time.ordinal()))
        }),
        (policy.weekly, |time| {
            let (year, week, _) = time.to_iso_week_date();
            (year, u32::from(week))
        }),
        (policy.monthly, |time| {
            (time.year(), u32::from(u8::from(time.month())))
        }),
    ];
    for (count, period_of) in periods {
        let mut seen = BTreeSet::new();
        for &index in &newest_first {
            if seen.len() == count {
                break;
            }
            let period = period_of(times[index].to_offset(time::UtcOffset::UTC));
            if seen.insert(period) {
                kept.insert(index);
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime, time};

    fn policy(daily: usize, weekly: usize, monthly: usize) -> Policy {
        Policy {
            daily,
            weekly,
            monthly,
        }
    }

    fn kept_dates(times: &[OffsetDateTime], policy: &Policy) -> Vec<time::Date> {
        kept_indices(times, policy)
            .into_iter()
            .map(|index| times[index].date())
            .collect()
    }

    #[test]
    fn a_year_of_daily_backups_keeps_seven_days_four_weeks_and_twelve_months() {
        let first = date!(2025 - 01 - 01);
        let times: Vec<OffsetDateTime> = (0..365)
            .map(|day| {
                (first + time::Duration::days(day))
                    .with_time(time!(03:00))
                    .assume_utc()
            })
            .collect();
        let kept = kept_dates(&times, &policy(7, 4, 12));
        let expected = vec![
            // The newest of each month.
            date!(2025 - 01 - 31),
            date!(2025 - 02 - 28),
            date!(2025 - 03 - 31),
            date!(2025 - 04 - 30),
            date!(2025 - 05 - 31),
            date!(2025 - 06 - 30),
            date!(2025 - 07 - 31),
            date!(2025 - 08 - 31),
            date!(2025 - 09 - 30),
            date!(2025 - 10 - 31),
            date!(2025 - 11 - 30),
            // The newest of ISO weeks 50 and 51 (Sundays); weeks 52 and 1 fall in the days.
            date!(2025 - 12 - 14),
            date!(2025 - 12 - 21),
            // The last seven days, the newest of weeks 52 and 2026-W01 and of December among them.
            date!(2025 - 12 - 25),
            date!(2025 - 12 - 26),
            date!(2025 - 12 - 27),
            date!(2025 - 12 - 28),
            date!(2025 - 12 - 29),
            date!(2025 - 12 - 30),
            date!(2025 - 12 - 31),
        ];
        assert_eq!(kept, expected);
    }

    #[test]
    fn the_newest_backup_survives_a_policy_that_keeps_nothing() {
        let times = [
            datetime!(2026-01-01 03:00 UTC),
            datetime!(2026-01-03 03:00 UTC),
            datetime!(2026-01-02 03:00 UTC),
        ];
        assert_eq!(kept_indices(&times, &policy(0, 0, 0)), BTreeSet::from([1]));
    }

    #[test]
    fn several_backups_a_day_keep_the_newest_of_each_day() {
        let times = [
            datetime!(2026-01-01 03:00 UTC),
            datetime!(2026-01-01 15:00 UTC),
            datetime!(2026-01-02 03:00 UTC),
            datetime!(2026-01-02 15:00 UTC),
            datetime!(2026-01-03 03:00 UTC),
        ];
        assert_eq!(
            kept_indices(&times, &policy(2, 0, 0)),
            BTreeSet::from([3, 4])
        );
    }

    #[test]
    fn gaps_do_not_use_up_the_policy() {
        // Three backups a month apart: three days that have backups, so all are kept.
        let times = [
            datetime!(2026-01-01 03:00 UTC),
            datetime!(2026-02-01 03:00 UTC),
            datetime!(2026-03-01 03:00 UTC),
        ];
        assert_eq!(kept_indices(&times, &policy(3, 0, 0)).len(), 3);
    }

    #[test]
    fn no_backups_plan_nothing() {
        assert!(kept_indices(&[], &policy(7, 4, 12)).is_empty());
    }
}
