//! `--shard K/N`: which share of a sweep's cells one machine runs. Cell `i` belongs to
//! shard `i % N`, so every shard gets cells from every part of the grid and about the
//! same work, whatever the order of the `--vary` lists.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Shard `index` of `count`: the cells whose index `i` has `i % count == index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// Why a `--shard` was refused; it names the flag, the value and what is allowed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("--shard {value:?}: expected K/N, two whole numbers with 0 <= K < N (e.g. 0/4)")]
    Form { value: String },
    #[error("--shard {value:?}: N = 0; N is the number of shards, at least 1")]
    NoShards { value: String },
    #[error(
        "--shard {value:?}: K = {index} is not below N = {count}; K runs from 0 to {count} - 1"
    )]
    OutOfRange {
        value: String,
        index: usize,
        count: usize,
    },
}

impl Shard {
    /// The whole sweep: one shard of one.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `K/N`.
    pub fn parse(value: &str) -> Result<Shard, ShardError> {
        let form = || ShardError::Form {
            value: value.to_string(),
        };
        let (k, n) = value.split_once('/').ok_or_else(form)?;
        let index: usize = k.trim().parse().map_err(|_| form())?;
        let count: usize = n.trim().parse().map_err(|_| form())?;
        if count == 0 {
            return Err(ShardError::NoShards {
                value: value.to_string(),
            });
        }
        if index >= count {
            return Err(ShardError::OutOfRange {
                value: value.to_string(),
                index,
                count,
            });
        }
        Ok(Shard { index, count })
    }

    /// Whether cell `cell` is this shard's.
    pub fn has(self, cell: usize) -> bool {
        cell % self.count == self.index
    }

    /// This shard's cells of a grid of `cells`, in order.
    pub fn cells(self, cells: usize) -> impl Iterator<Item = usize> {
        (self.index..cells).step_by(self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_of_n_takes_every_nth_cell_from_k() {
        let shard = Shard::parse("1/3").unwrap();
        assert_eq!(shard.cells(8).collect::<Vec<_>>(), [1, 4, 7]);
        assert!(shard.has(4) && !shard.has(5));
        assert_eq!(shard.to_string(), "1/3");
        assert_eq!(Shard::parse("0/1").unwrap(), Shard::WHOLE);
        // A shard past the last cell has none: a grid smaller than the shard count.
        assert_eq!(Shard::parse("5/6").unwrap().cells(3).count(), 0);
    }

    #[test]
    fn bad_shards_name_the_value_and_what_is_allowed() {
        let err = |v: &str| Shard::parse(v).unwrap_err().to_string();
        assert!(
            err("3/2").contains("K = 3 is not below N = 2"),
            "{}",
            err("3/2")
        );
        assert!(err("1/0").contains("N = 0"), "{}", err("1/0"));
        for bad in ["x", "1", "1/", "/2", "-1/2", "1/2/3", "a/b"] {
            assert!(err(bad).contains("expected K/N"), "{bad}: {}", err(bad));
        }
    }
}
