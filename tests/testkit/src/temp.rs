//! Temporary directories for tests: one per test, under the system's temporary
//! directory, named so that no other test (of this run or another) uses it, and removed
//! when dropped. Not a general temporary-file library: the tests run as one user on a
//! machine of their own, so it makes no promise against other users of `/tmp`.

use std::path::{Path, PathBuf};

/// A directory of its own for one test, removed with everything in it when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates an empty directory named after `prefix` (see [`crate::unique_name`]).
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(crate::unique_name(prefix));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("create the test directory {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// Creates one holding `files`: (path relative to the directory, content).
    pub fn with_files(prefix: &str, files: &[(&str, &str)]) -> TempDir {
        let dir = TempDir::new(prefix);
        for (relative, content) in files {
            dir.write(relative, content);
        }
        dir
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `relative` inside the directory (which need not exist).
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.0.join(relative)
    }

    /// Writes `content` to `relative`, creating the directories on the way; returns the
    /// file's path.
    pub fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

/// Makes a named pipe (FIFO) at `path`: a file whose open waits for a writer, for the
/// tests of a read that must not wait.
pub fn fifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_a_named_pipe() {
        use std::os::unix::fs::FileTypeExt;
        let dir = TempDir::new("testkit_fifo");
        let pipe = dir.join("pipe");
        fifo(&pipe);
        assert!(std::fs::metadata(&pipe).unwrap().file_type().is_fifo());
    }

    #[test]
    fn files_are_written_below_it_and_it_is_removed_when_dropped() {
        let dir = TempDir::with_files("testkit_temp", &[("a/b/c.txt", "deep"), ("top", "1")]);
        let root = dir.path().to_owned();
        assert_eq!(
            std::fs::read_to_string(dir.join("a/b/c.txt")).unwrap(),
            "deep"
        );
        assert_eq!(std::fs::read_to_string(root.join("top")).unwrap(), "1");
        drop(dir);
        assert!(!root.exists());
    }
}
