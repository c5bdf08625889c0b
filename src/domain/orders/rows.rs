//! How a date's seats are cut into rows, and the blocks of adjacent free seats in one row, best
//! first. Pure: best available tries these blocks in order under lock.

use crate::db::ids::SeatNumber;

/// How a date's seats are cut into rows: `seats_per_row` seats each, numbered from the stage;
/// None, one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rows {
    pub seats_per_row: Option<u16>,
}

impl Rows {
    /// The row of seat `n`, from 1.
    pub fn row_of(self, n: SeatNumber) -> i32 {
        match self.seats_per_row {
            Some(per_row) if per_row > 0 => (n.as_i32() - 1) / i32::from(per_row) + 1,
            _ => 1,
        }
    }

    /// True when `a` and `b` sit side by side in one row.
    fn adjacent(self, a: SeatNumber, b: SeatNumber) -> bool {
        b.as_i32() == a.as_i32() + 1 && self.row_of(a) == self.row_of(b)
    }

    /// The runs of adjacent seats among `free` (sorted by number), each as a slice.
    fn runs(self, free: &[SeatNumber]) -> Vec<&[SeatNumber]> {
        let mut runs = Vec::new();
        let mut start = 0;
        for i in 1..=free.len() {
            if i == free.len() || !self.adjacent(free[i - 1], free[i]) {
                if start < i {
                    runs.push(&free[start..i]);
                }
                start = i;
            }
        }
        runs
    }

    /// Every block of `count` adjacent free seats in one row, best first (lowest first seat).
    pub fn blocks(self, free: &[SeatNumber], count: usize) -> Vec<Vec<SeatNumber>> {
        if count == 0 {
            return Vec::new();
        }
        let mut blocks = Vec::new();
        for run in self.runs(free) {
            for window in run.windows(count) {
                blocks.push(window.to_vec());
            }
        }
        blocks.sort_by_key(|b| b[0]);
        blocks
    }

    /// The most adjacent free seats in one row.
    pub fn largest_block(self, free: &[SeatNumber]) -> usize {
        self.runs(free).iter().map(|r| r.len()).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seats(numbers: &[i32]) -> Vec<SeatNumber> {
        numbers
            .iter()
            .map(|n| SeatNumber::new(*n).expect("seat"))
            .collect()
    }

    #[test]
    fn blocks_are_adjacent_in_one_row_and_lowest_first() {
        let rows = Rows {
            seats_per_row: Some(5),
        };
        // Row 1 is 1-5, row 2 is 6-10: 4,5,6,7 are consecutive but cross a row.
        let free = seats(&[2, 4, 5, 6, 7, 8, 9, 12]);
        let blocks = rows.blocks(&free, 3);
        assert_eq!(blocks, vec![seats(&[6, 7, 8]), seats(&[7, 8, 9])]);
        assert_eq!(rows.largest_block(&free), 4);
        assert!(rows.blocks(&free, 5).is_empty());
    }

    #[test]
    fn without_rows_the_whole_date_is_one_row() {
        let rows = Rows {
            seats_per_row: None,
        };
        let free = seats(&[4, 5, 6, 7, 9]);
        assert_eq!(rows.blocks(&free, 4), vec![seats(&[4, 5, 6, 7])]);
        assert_eq!(rows.largest_block(&free), 4);
        assert_eq!(rows.largest_block(&[]), 0);
        assert_eq!(rows.row_of(seats(&[900])[0]), 1);
    }
}
