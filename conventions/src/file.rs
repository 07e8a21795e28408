//! Files named by a setting or found in a folder the program is given: opened without
//! waiting, and read only when they are regular files. A named pipe would be waited on
//! for a writer for ever, and a device such as `/dev/zero` read without end.

use std::fs::{File, FileType};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What a file is when it is not a regular file, in words for an error that refuses it
/// (`it is a named pipe (FIFO)`); `None` for a regular file.
pub fn not_regular(kind: FileType) -> Option<&'static str> {
    if kind.is_file() {
        None
    } else if kind.is_fifo() {
        Some("a named pipe (FIFO)")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else if kind.is_dir() {
        Some("a folder")
    } else {
        Some("not a regular file")
    }
}

/// Opens `path` for reading without waiting (`O_NONBLOCK`: opening a named pipe
/// otherwise waits for a writer) and checks that what was opened is a regular file:
/// the check is on the open file itself, so a file swapped for a pipe or a device after
/// any earlier look is refused too. The error for another kind of file is
/// [`io::ErrorKind::InvalidInput`], `it is a named pipe (FIFO), not a regular file`.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    match not_regular(file.metadata()?.file_type()) {
        None => Ok(file),
        Some(what) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file"),
        )),
    }
}

/// A regular file's bytes ([`open_regular`]), refused when it holds more than `limit`
/// bytes (`it is larger than 16 MiB`, with the limit as `limit_words`): a setting
/// pointed at the wrong, huge file is an error, not the program's memory filled.
pub fn read_regular(path: &Path, limit: u64, limit_words: &str) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it is larger than {limit_words}"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f` on another thread, answered within a minute: the old reads of a pipe never
    /// returned.
    fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (answer, answered) = std::sync::mpsc::channel();
        std::thread::spawn(move || answer.send(f()));
        answered
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the read ends")
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "deckhand-conventions-file-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_pipe_a_device_a_socket_and_a_folder_are_refused_by_kind() {
        let dir = temp_dir("kinds");
        let pipe = dir.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&pipe).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", pipe.display());
        let socket = dir.join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let zero = dir.join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for (path, what) in [
            (pipe, "a named pipe (FIFO)"),
            (zero, "a device"),
            (dir.clone(), "a folder"),
        ] {
            let said = within_a_minute(move || read_regular(&path, 1 << 20, "1 MiB"))
                .unwrap_err()
                .to_string();
            assert_eq!(said, format!("it is {what}, not a regular file"));
        }
        // A socket cannot be opened at all: the system's own error says so.
        assert!(open_regular(&socket).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_regular_file_is_read_whole_up_to_the_limit_and_refused_past_it() {
        let dir = temp_dir("limit");
        let path = dir.join("bundle.pem");
        std::fs::write(&path, vec![b'x'; 1000]).unwrap();
        assert_eq!(read_regular(&path, 1000, "1000 bytes").unwrap().len(), 1000);
        let e = read_regular(&path, 999, "999 bytes").unwrap_err();
        assert_eq!(e.to_string(), "it is larger than 999 bytes");
        // Through a link, as a mounted secret's file often is.
        let link = dir.join("link.pem");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(read_regular(&link, 1000, "1000 bytes").unwrap().len(), 1000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
