//! Why the app could not be started, from the first bytes of its file: what the kernel's
//! one word (`ENOENT`, `ENOEXEC`, `EACCES`) leaves out. The mistakes an image carries
//! most often: a program built for the other CPU (an image built on an ARM laptop, run
//! on x86-64 Fargate, answers "exec format error"), a script whose `#!` interpreter the
//! image lacks or whose `#!` line ends in a carriage return (Windows line endings: "no
//! such file or directory" for a file that is there), a binary linked for another C
//! library's loader (musl against glibc).
//!
//! [`read_head`] reads what the file says it is from its first [`HEAD_BYTES`] bytes,
//! whatever they hold (no panic, nothing read past them); [`looks_binary`] is the test
//! `bash` makes before it would run a file refused by `exec` as a shell script.
//!
//! Not here: finding the file and starting it (`process`), the message and exit code
//! (`supervise`).

/// How much of the file is read: the `#!` line, or an ELF header with its program
/// headers and, in a usual layout, the loader's path.
pub const HEAD_BYTES: usize = 4096;

/// What the first bytes of a file say it is.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// `#!INTERPRETER …`: the interpreter as written (a trailing carriage return
    /// removed and reported).
    Script {
        interpreter: Vec<u8>,
        carriage_return: bool,
    },
    /// An ELF file: its CPU, and the loader it asks for (`PT_INTERP`), when the head
    /// holds it.
    Elf {
        machine: u16,
        loader: Option<Vec<u8>>,
    },
    /// Neither.
    Other,
}

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const PT_INTERP: u32 = 3;

/// What `head` (the first bytes of a file) says the file is.
pub fn read_head(head: &[u8]) -> Head {
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = line.trim_ascii_start();
        let word = line
            .split(|&b| b == b' ' || b == b'\t')
            .next()
            .unwrap_or_default();
        let (interpreter, carriage_return) = match word.strip_suffix(b"\r") {
            Some(bare) => (bare, true),
            None => (word, false),
        };
        return Head::Script {
            interpreter: interpreter.to_vec(),
            carriage_return,
        };
    }
    match elf(head) {
        Some((machine, loader)) => Head::Elf { machine, loader },
        None => Head::Other,
    }
}

/// Whether a file `exec` refused (`ENOEXEC`) is a binary that must not be run as a
/// shell script: an ELF file, or a NUL byte in its first line (as `bash` checks).
pub fn looks_binary(head: &[u8]) -> bool {
    head.starts_with(ELF_MAGIC) || head.iter().take_while(|&&b| b != b'\n').any(|&b| b == 0)
}

/// Whether a file with this head may be a program for this CPU: anything but an ELF
/// file whose machine is another's.
pub fn runs_here(head: &[u8]) -> bool {
    match read_head(head) {
        Head::Elf { machine, .. } => own_machine().is_none_or(|own| own == machine),
        Head::Script { .. } | Head::Other => true,
    }
}

/// The machine and the loader of an ELF head, `None` when it is not one. Every field
/// is read with its bounds checked: a head cut short, or made up, gives `None` or no
/// loader.
fn elf(head: &[u8]) -> Option<(u16, Option<Vec<u8>>)> {
    if !head.starts_with(ELF_MAGIC) {
        return None;
    }
    let wide = match head.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let big = match head.get(5)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let number = |at: usize, len: usize| -> Option<u64> {
        let bytes = head.get(at..at.checked_add(len)?)?;
        let fold = |n: u64, b: &u8| (n << 8) | u64::from(*b);
        Some(if big {
            bytes.iter().fold(0, fold)
        } else {
            bytes.iter().rev().fold(0, fold)
        })
    };
    let machine = u16::try_from(number(18, 2)?).ok()?;
    let loader = (|| {
        let (phoff, entsize, count) = if wide {
            (number(32, 8)?, number(54, 2)?, number(56, 2)?)
        } else {
            (number(28, 4)?, number(42, 2)?, number(44, 2)?)
        };
        (0..count).find_map(|i| {
            let at = usize::try_from(phoff.checked_add(i.checked_mul(entsize)?)?).ok()?;
            if number(at, 4)? != u64::from(PT_INTERP) {
                return None;
            }
            let (offset, size) = if wide {
                (
                    number(at.checked_add(8)?, 8)?,
                    number(at.checked_add(32)?, 8)?,
                )
            } else {
                (
                    number(at.checked_add(4)?, 4)?,
                    number(at.checked_add(16)?, 4)?,
                )
            };
            let start = usize::try_from(offset).ok()?;
            let end = start.checked_add(usize::try_from(size).ok()?)?;
            let path = head.get(start..end)?;
            let path = path.split(|&b| b == 0).next().unwrap_or_default();
            (!path.is_empty()).then(|| path.to_vec())
        })
    })();
    Some((machine, loader))
}

/// The CPU an ELF `e_machine` names, as Linux and `docker buildx --platform` call it.
pub fn machine_name(machine: u16) -> Option<&'static str> {
    Some(match machine {
        0x03 => "i386",
        0x08 => "mips",
        0x14 => "ppc",
        0x15 => "ppc64",
        0x16 => "s390x",
        0x28 => "arm",
        0x3E => "x86_64",
        0xB7 => "aarch64",
        0xF3 => "riscv64",
        0x102 => "loongarch64",
        _ => return None,
    })
}

/// The `e_machine` of programs this agent's own CPU runs (its build's architecture).
pub fn own_machine() -> Option<u16> {
    match std::env::consts::ARCH {
        "x86_64" => Some(0x3E),
        "aarch64" => Some(0xB7),
        "x86" => Some(0x03),
        "arm" => Some(0x28),
        "riscv64" => Some(0xF3),
        "s390x" => Some(0x16),
        "powerpc64" => Some(0x15),
        _ => None,
    }
}

/// The platform name `docker buildx build --platform` takes for this CPU.
pub fn platform() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "linux/amd64",
        "aarch64" => "linux/arm64",
        _ => std::env::consts::ARCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A little-endian ELF64 head: `machine`, and a `PT_INTERP` naming `loader`.
    fn elf64(machine: u16, loader: Option<&[u8]>) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..4].copy_from_slice(ELF_MAGIC);
        h[4] = 2;
        h[5] = 1;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h[32..40].copy_from_slice(&64u64.to_le_bytes());
        h[54..56].copy_from_slice(&56u16.to_le_bytes());
        h[56..58].copy_from_slice(&2u16.to_le_bytes());
        // The first program header is PT_LOAD, the second PT_INTERP.
        h[64..68].copy_from_slice(&1u32.to_le_bytes());
        if let Some(path) = loader {
            let at = 64 + 56;
            h[at..at + 4].copy_from_slice(&PT_INTERP.to_le_bytes());
            h[at + 8..at + 16].copy_from_slice(&300u64.to_le_bytes());
            h[at + 32..at + 40].copy_from_slice(&(path.len() as u64 + 1).to_le_bytes());
            h[300..300 + path.len()].copy_from_slice(path);
        }
        h
    }

    #[test]
    fn a_script_names_its_interpreter_and_a_carriage_return() {
        assert_eq!(
            read_head(b"#!/bin/bash -e\necho hi\n"),
            Head::Script {
                interpreter: b"/bin/bash".to_vec(),
                carriage_return: false
            }
        );
        assert_eq!(
            read_head(b"#! /bin/sh\r\necho hi\r\n"),
            Head::Script {
                interpreter: b"/bin/sh".to_vec(),
                carriage_return: true
            }
        );
        assert_eq!(read_head(b"echo hi\n"), Head::Other);
    }

    #[test]
    fn an_elf_head_gives_its_machine_and_loader() {
        let loader: &[u8] = b"/lib/ld-musl-x86_64.so.1";
        assert_eq!(
            read_head(&elf64(0xB7, Some(loader))),
            Head::Elf {
                machine: 0xB7,
                loader: Some(loader.to_vec())
            }
        );
        assert_eq!(
            read_head(&elf64(0x3E, None)),
            Head::Elf {
                machine: 0x3E,
                loader: None
            }
        );
        // Cut short: the machine, no loader.
        assert_eq!(
            read_head(&elf64(0x3E, Some(loader))[..200]),
            Head::Elf {
                machine: 0x3E,
                loader: None
            }
        );
        assert_eq!(machine_name(0xB7), Some("aarch64"));
    }

    #[test]
    fn this_binary_reads_as_a_program_for_this_machine() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let head = &me[..HEAD_BYTES.min(me.len())];
        assert!(looks_binary(head));
        match read_head(head) {
            Head::Elf { machine, .. } => assert_eq!(Some(machine), own_machine()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_an_elf_file_for_another_cpu_does_not_run_here() {
        let own = own_machine().unwrap();
        let other = if own == 0xB7 { 0x3E } else { 0xB7 };
        assert!(runs_here(&elf64(own, None)));
        assert!(!runs_here(&elf64(other, None)));
        assert!(runs_here(b"#!/bin/sh\n"));
        assert!(runs_here(b"echo hi\n"));
    }

    #[test]
    fn binary_is_elf_or_a_nul_in_the_first_line() {
        assert!(looks_binary(b"\x7fELF\x02"));
        assert!(looks_binary(b"MZ\0\0"));
        assert!(!looks_binary(b"echo hi\n\0"));
        assert!(!looks_binary(b"#!/bin/sh\n"));
        assert!(!looks_binary(b""));
    }

    proptest! {
        #[test]
        fn any_head_is_read_without_panic_and_within_itself(
            head in prop::collection::vec(any::<u8>(), 0..600),
            elf_prefix in any::<bool>(),
        ) {
            let mut head = head;
            if elf_prefix {
                let mut h = elf64(0x3E, Some(b"/lib64/ld.so"));
                let n = head.len().min(h.len());
                // Random bytes over a real header: fields pointing anywhere.
                for (i, b) in head.iter().take(n).enumerate() {
                    if i % 3 == 0 { h[i] = *b; }
                }
                head = h;
            }
            let _ = looks_binary(&head);
            match read_head(&head) {
                Head::Script { interpreter, .. } => {
                    prop_assert!(interpreter.len() < head.len());
                    prop_assert!(!interpreter.contains(&b'\n'));
                }
                Head::Elf { loader: Some(loader), .. } => {
                    prop_assert!(!loader.is_empty() && loader.len() <= head.len());
                    prop_assert!(!loader.contains(&0));
                }
                Head::Elf { loader: None, .. } | Head::Other => {}
            }
        }
    }
}
