//! Corruption: flip one bit of one file in the backing directory, at a chosen or random offset of a chosen or
//! random non-empty file — the silent error a disk's own checksums missed.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use rand::seq::IndexedRandom as _;

use super::DiskError;

/// Where a bit was flipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flipped {
    /// The file, relative to the data directory.
    pub file: PathBuf,
    /// Byte offset in the file.
    pub offset: u64,
    /// Bit within the byte (0 = least significant).
    pub bit: u8,
}

impl std::fmt::Display for Flipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "flipped bit {} of byte {} of {}",
            self.bit,
            self.offset,
            self.file.display()
        )
    }
}

/// Every non-empty regular file under `root`, relative to it, sorted, except those in `skip`.
fn data_files(root: &Path, skip: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                todo.push(e.path());
            } else if meta.is_file()
                && meta.len() > 0
                && let Ok(rel) = e.path().strip_prefix(root)
                && !skip.iter().any(|s| s == rel)
            {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Flips one bit of `file` (relative to `root`; when `None`, a random non-empty file not in `skip`) at
/// `offset` (random when `None`).
pub(crate) fn flip(
    root: &Path,
    file: Option<&Path>,
    offset: Option<u64>,
    skip: &[PathBuf],
    rng: &mut impl rand::Rng,
) -> Result<Flipped, DiskError> {
    let rel = match file {
        Some(f) => f.to_path_buf(),
        None => data_files(root, skip).choose(rng).cloned().ok_or_else(|| {
            DiskError::Refused(format!(
                "{} holds no non-empty data file to corrupt{}",
                root.display(),
                if skip.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (not counting {})",
                        skip.iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ))
        })?,
    };
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(DiskError::Refused(format!(
            "`{}` is not a path inside the node's data directory",
            rel.display()
        )));
    }
    let path = root.join(&rel);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|source| DiskError::Io {
            op: "open to corrupt",
            path: path.clone(),
            error: source,
        })?;
    let len = f
        .metadata()
        .map_err(|source| DiskError::Io {
            op: "stat",
            path: path.clone(),
            error: source,
        })?
        .len();
    if len == 0 {
        return Err(DiskError::Refused(format!(
            "{} is empty: no bit to flip",
            rel.display()
        )));
    }
    let offset = offset.unwrap_or_else(|| rng.random_range(0..len));
    if offset >= len {
        return Err(DiskError::Refused(format!(
            "offset {offset} is past the end of {} ({len} bytes)",
            rel.display()
        )));
    }
    let bit: u8 = rng.random_range(0..8);
    let mut byte = [0u8];
    let io = |op| {
        let path = path.clone();
        move |source| DiskError::Io {
            op,
            path,
            error: source,
        }
    };
    f.read_exact_at(&mut byte, offset).map_err(io("read"))?;
    byte[0] ^= 1 << bit;
    f.write_all_at(&byte, offset).map_err(io("write"))?;
    f.sync_all().map_err(io("fsync"))?;
    Ok(Flipped {
        file: rel,
        offset,
        bit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    #[test]
    fn flips_exactly_one_bit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/wal"), vec![0u8; 64]).unwrap();
        std::fs::write(dir.path().join("empty"), b"").unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let f = flip(dir.path(), None, None, &[], &mut rng).unwrap();
        assert_eq!(f.file, PathBuf::from("sub/wal"), "the only non-empty file");
        let bytes = std::fs::read(dir.path().join("sub/wal")).unwrap();
        let ones: u32 = bytes.iter().map(|b| b.count_ones()).sum();
        assert_eq!(ones, 1);
        assert_eq!(bytes[f.offset as usize], 1 << f.bit);

        let at = flip(
            dir.path(),
            Some(Path::new("sub/wal")),
            Some(3),
            &[],
            &mut rng,
        )
        .unwrap();
        assert_eq!(at.offset, 3);
        assert!(flip(dir.path(), Some(Path::new("empty")), None, &[], &mut rng).is_err());
        assert!(flip(dir.path(), Some(Path::new("../x")), None, &[], &mut rng).is_err());
        assert!(
            flip(
                dir.path(),
                Some(Path::new("sub/wal")),
                Some(64),
                &[],
                &mut rng
            )
            .is_err()
        );
    }

    /// F21: `disk N flip` without a file picked the node's `LOCK` file about half the time. Files in `skip`
    /// are never chosen, and a seed always picks the same file, byte and bit.
    #[test]
    fn a_random_flip_never_picks_a_skipped_file_and_a_seed_repeats_its_choice() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("LOCK"), b"12345\n").unwrap();
        std::fs::write(dir.path().join("wal.log"), vec![0u8; 4096]).unwrap();
        std::fs::write(dir.path().join("snapshot.bin"), vec![0u8; 4096]).unwrap();
        let skip = [PathBuf::from("LOCK")];
        let mut picked = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let pick = |s| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s);
                flip(dir.path(), None, None, &skip, &mut rng).unwrap()
            };
            let first = pick(seed);
            // Flipping the same bit again restores the byte, so both picks see the same files.
            let again = pick(seed);
            assert_eq!(
                first, again,
                "seed {seed} chose differently the second time"
            );
            assert_ne!(
                first.file,
                PathBuf::from("LOCK"),
                "seed {seed} picked the lock"
            );
            picked.insert(first.file);
        }
        assert_eq!(
            picked.into_iter().collect::<Vec<_>>(),
            vec![PathBuf::from("snapshot.bin"), PathBuf::from("wal.log")],
            "both data files get chosen"
        );
        let only_lock = tempfile::tempdir().unwrap();
        std::fs::write(only_lock.path().join("LOCK"), b"1").unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let e = flip(only_lock.path(), None, None, &skip, &mut rng).unwrap_err();
        assert!(e.to_string().contains("not counting LOCK"), "{e}");
    }
}
