//! The part plan of a multipart upload: which parts remain to be sent, and how many bytes the
//! server has already acknowledged. Pure, so that resuming is tested without a server.

use voxseal_core::store::outbox::DonePart;

/// What remains of an object of `size` bytes cut into parts of `part_size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PartPlan {
    /// Part numbers (1-based) still to send, in order.
    pub todo: Vec<i32>,
    /// Bytes of the parts already acknowledged.
    pub done_bytes: u64,
}

impl PartPlan {
    /// The plan given the parts the server acknowledged (`done`).
    pub fn new(size: u64, part_size: u64, done: &[DonePart]) -> Self {
        let count = size.div_ceil(part_size).max(1) as i32;
        let have: std::collections::HashSet<i32> = done.iter().map(|p| p.number).collect();
        PartPlan {
            todo: (1..=count).filter(|n| !have.contains(n)).collect(),
            done_bytes: have.iter().map(|&n| part_len(size, part_size, n)).sum(),
        }
    }
}

/// The length of part `n` (1-based): `part_size`, or what is left for the last one.
pub(super) fn part_len(size: u64, part_size: u64, n: i32) -> u64 {
    let start = (n as u64 - 1) * part_size;
    size.saturating_sub(start).min(part_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(numbers: &[i32]) -> Vec<DonePart> {
        (numbers.iter())
            .map(|&number| DonePart {
                number,
                etag: String::new(),
                checksum: String::new(),
            })
            .collect()
    }

    #[test]
    fn a_fresh_upload_sends_every_part_and_the_last_is_short() {
        let plan = PartPlan::new(25, 10, &[]);
        assert_eq!(
            plan,
            PartPlan {
                todo: vec![1, 2, 3],
                done_bytes: 0
            }
        );
        assert_eq!((part_len(25, 10, 1), part_len(25, 10, 3)), (10, 5));
    }

    #[test]
    fn a_resumed_upload_sends_only_what_was_not_acknowledged() {
        let plan = PartPlan::new(25, 10, &done(&[1, 3]));
        assert_eq!(
            plan,
            PartPlan {
                todo: vec![2],
                done_bytes: 15
            }
        );
        // A part acknowledged twice (a retried request) counts once.
        assert_eq!(PartPlan::new(25, 10, &done(&[2, 2])).done_bytes, 10);
    }

    #[test]
    fn an_empty_object_is_one_empty_part() {
        assert_eq!(
            PartPlan::new(0, 10, &[]),
            PartPlan {
                todo: vec![1],
                done_bytes: 0
            }
        );
    }
}
